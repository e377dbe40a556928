"""tulip-link: link (or unlink) two Tulip table records from a webhook or a Pub/Sub message.

`main.py` holds the Cloud Functions entry points; this package does the work, one module a job:

- `config`: settings from the environment, validated once
- `models`: payloads (JSON, Pub/Sub wrappings, the link request)
- `auth`: proving who an HTTP caller is (`WEBHOOK_AUTH`)
- `secret_manager`: Secret Manager reads and the per-instance cache
- `credentials`: the Tulip API token
- `tulip`: the upstream client (session, retries, errors)
- `outcomes`: the status table, and the rendering of answers
- `service`: the core, a request object in and one Tulip call out
- `instance`: what a process builds once and shares between requests
- `handlers`: HTTP and CloudEvent glue
- `logs`, `timing`: JSON log lines; clock, deadline, backoff

Tools for people (the simulator, the local runner, the signing tool) are in `devtools/`, which is
not deployed.
"""

__version__ = "0.1.0"
