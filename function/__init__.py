"""tulip-link: link (or unlink) two Tulip table records from a webhook or a Pub/Sub message.

`main.py` holds the Cloud Functions entry points; this package does the work, one module a job,
in layers that point one way: a module imports only from the layers below its own, and modules
that share a layer do not import each other. `make test` holds the code to this drawing
(import-linter's layers contract in `pyproject.toml`; `tests/test_layout.py` holds the two
together).

    handlers                      the edge: Flask and CloudEvents in, answers out
    answers | report              an outcome rendered as an answer | as its log lines
    instance                      what one process builds once and shares
    intake                        queue mode: a request's links published, answered 202
    service                       the core: a JSON object in, a result out
    batch                         a request's links in order, a few at once, within its deadline
    config                        settings from the environment, validated once
    auth | tulip | pubsub         who the caller is | the Tulip client | the Pub/Sub publisher
    credentials                   the Tulip API token
    secret_manager                Secret Manager reads and the per-instance cache
    mapping                       LINK_MAPPING: a sender's own JSON read with JMESPath
    links                         the link request, and the one way links are validated
    payloads                      the body as a JSON object; the Pub/Sub wrappings
    results                       what a request achieved: plain data
    errors                        every exception, drawn as a tree
    logs | timing | watchdog | local_grpc  log lines | time | an attempt's limit | local gRPC
    outcomes                      the status table (RULES) and the words every module shares

Tools for people (the simulator, the local runner, the signing tool) are in `devtools/`, which is
not deployed.
"""

__version__ = "0.1.0"
