"""tulip-link: link (or unlink) two Tulip table records from a webhook or a Pub/Sub message.

`main.py` holds the Cloud Functions entry points; this package does the work, one module a job:
`config` (settings), `models` (payloads), `credentials` (Secret Manager and its cache), `tulip`
(the upstream client), `outcomes` (the status table), `service` (the core), `handlers` (HTTP and
CloudEvent glue), `logs` (JSON log lines), `timing` (clock, deadline, backoff).
"""

__version__ = "0.1.0"
