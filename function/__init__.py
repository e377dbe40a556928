"""tulip-link: link (or unlink) two Tulip table records from a webhook or a Pub/Sub message.

`main.py` holds the Cloud Functions entry points; this package does the work, one module a job:

- `config`: settings from the environment, validated once
- `models`: payloads (JSON, Pub/Sub wrappings, the link request, batches)
- `mapping`: `LINK_MAPPING`, a third-party sender's JSON read with JMESPath
- `auth`: proving who an HTTP caller is (`WEBHOOK_AUTH`)
- `secret_manager`: Secret Manager reads and the per-instance cache
- `credentials`: the Tulip API token
- `tulip`: the upstream client (session, retries, errors)
- `outcomes`: the status table, and the rendering of answers
- `service`: the core, a request object in and its Tulip calls out
- `batch`: a request's links run in order, a few at once, within its deadline
- `instance`: what a process builds once and shares between requests
- `handlers`: HTTP and CloudEvent glue
- `logs`, `timing`, `watchdog`: JSON log lines; clock, deadline, backoff; an attempt's time limit

Tools for people (the simulator, the local runner, the signing tool) are in `devtools/`, which is
not deployed.
"""

__version__ = "0.1.0"
