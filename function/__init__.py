"""tulip-link: link (or unlink) two Tulip table records from a webhook or a Pub/Sub message.

`main.py` holds the entry points; this package does the work, in packages that point one way
(each imports only from those below it; `make test` holds it to that):

    edge/       HTTP and CloudEvents in, answers and log lines out: one module per entry point
    instance    the one place an instance's long-lived objects are built from its settings
    config      the settings, read from the environment and validated once
    auth/core   who the caller is | plain data in, a result out (plan, validate, map, intake)
    clients/    Tulip, Secret Manager, Pub/Sub: everything that leaves the process
    model/      the status table, the errors, the results, the link: what every layer shares
    logs/timing JSON log lines | clock, deadline, backoff

docs/development.md says where a new module goes, docs/design.md why it is built as it is.
"""

__version__ = "0.1.0"
