"""`link_records`: a sender's webhook, authenticated, read, and linked or queued.

Its order of work: settings, method, content type, size, the caller's authentication over the
exact raw bytes, the dry-run flag, then parsing; nothing is parsed, logged or sent on before the
caller is known. In queue mode the intake publishes the links (a dry run still goes to the core).
A Pub/Sub push envelope is not a webhook: without `LINK_MAPPING` it is refused, naming
`link_records_push`; with one it is the sender's JSON like any other body.
"""

from __future__ import annotations

import flask

from function import instance, logs
from function.edge.http import check_post_json, read_body, serve
from function.edge.payloads import is_push_envelope, parse_json_object
from function.model.errors import MalformedRequest
from function.model.results import Result


def handle(request: flask.Request) -> flask.Response:
    """Serve one webhook request."""
    return serve(request, lambda request_id: _link(request, request_id))


def _link(request: flask.Request, request_id: str) -> Result:
    built = instance.current().webhook_function()
    settings = built.settings
    logs.bind(**logs.trace_fields(request.headers, settings.project))
    logs.bind(sender=built.webhook.sender)
    deadline = built.new_deadline()
    check_post_json(request)
    raw = read_body(request, settings.max_body_bytes)
    built.authenticator.check(request.headers, raw, deadline)  # before anything reads it
    dry_run = _dry_run(request)
    body = parse_json_object(raw)
    if settings.link_mapping is None and is_push_envelope(body):
        raise MalformedRequest(
            "The body is a Pub/Sub push envelope: a push subscription delivers to the events "
            "function's entry point, link_records_push; link_records takes a sender's webhooks"
        )
    if built.intake is not None and not dry_run:
        webhook_id = built.authenticator.delivery_id(request.headers)
        return built.intake.accept(body, deadline, request_id=request_id, webhook_id=webhook_id)
    return built.service.handle(body, deadline, dry_run=dry_run)


def _dry_run(request: flask.Request) -> bool:
    """Whether the request asks for a dry run (`?dryRun=true` or `X-Dry-Run: true`, any letter
    case); any other value, or a query and header that disagree, is `MalformedRequest`."""
    given = request.headers.get("X-Dry-Run")  # a repeated header arrives comma-joined
    values = {given.lower()} if given is not None else set()
    if request.query_string:  # parsed only when there is one
        values |= {value.lower() for value in request.args.getlist("dryRun")}
    if not values <= {"true", "false"}:
        raise MalformedRequest(
            "dryRun (in the URL) and X-Dry-Run (a header) must be true or false; nothing was linked"
        )
    if len(values) > 1:
        raise MalformedRequest(
            "dryRun (in the URL) and X-Dry-Run (a header) disagree; nothing was linked"
        )
    return values == {"true"}
