"""`link_records`: a sender's webhook, authenticated, read, and linked or queued.

Its order of work: settings; a CloudEvents validation handshake (`OPTIONS` with
`WebHook-Request-Origin`); method, media type (JSON, or a form) and announced size; the caller's
credentials as its headers present them (401 before any byte of the body is read); the body,
verified over its exact raw bytes; the dry-run flag; then parsing. Slack's `url_verification` is
answered with its challenge once verified. In queue mode the intake publishes the links (a dry
run still goes to the core). A Pub/Sub push envelope is not a webhook: without `LINK_MAPPING` it
is refused, naming `link_records_push`; with one it is the sender's JSON like any other body.
"""

from __future__ import annotations

import re
from collections.abc import Set as AbstractSet

import flask

from function import instance, logs
from function.edge.http import check_post, read_body, refuse_announced_size, serve
from function.edge.payloads import is_push_envelope, parse_form, parse_json_object
from function.model.errors import MalformedRequest, OriginNotAllowed
from function.model.results import Handshake, Result

_ORIGIN = re.compile(r"[!-~]{1,255}")  # CloudEvents: "a DNS expression identifying the sender"
_RATE = re.compile(r"[1-9][0-9]{0,8}")  # CloudEvents: a positive integer, requests a minute


def handle(request: flask.Request) -> flask.Response:
    """Serve one webhook request."""
    return serve(request, lambda request_id: _link(request, request_id))


def _link(request: flask.Request, request_id: str) -> Result:
    built = instance.current().webhook_function()
    settings = built.settings
    logs.bind(**logs.trace_fields(request.headers, settings.project))
    logs.bind(sender=built.webhook.sender)
    deadline = built.new_deadline()
    origin = request.headers.get("WebHook-Request-Origin")
    if request.method == "OPTIONS" and origin is not None:
        return _consent(
            origin, request.headers.get("WebHook-Request-Rate"), built.webhook.allowed_origins
        )
    media = check_post(request, forms=True)
    refuse_announced_size(request, settings.max_body_bytes)
    presented = built.authenticator.read(request.headers)  # before the body is read
    raw = read_body(request, settings.max_body_bytes, deadline)
    presented.verify(raw, deadline)  # before anything parses it
    dry_run = _dry_run(request)
    body = parse_form(raw) if media == "form" else parse_json_object(raw)
    if built.authenticator.mode == "slack" and body.get("type") == "url_verification":
        return _slack_challenge(body)
    if settings.link_mapping is None and is_push_envelope(body):
        raise MalformedRequest(
            "The body is a Pub/Sub push envelope: a push subscription delivers to the events "
            "function's entry point, link_records_push; link_records takes a sender's webhooks"
        )
    # Only a mapping's rules read the headers (lower-case names): no copy made for nothing.
    headers = None
    if settings.link_mapping is not None:
        headers = {name.lower(): value for name, value in request.headers.items()}
    delivery = built.authenticator.delivery_id(request.headers, body)
    logs.bind(webhookId=None if delivery is None else delivery.value)
    return built.acceptance.accept(
        body, deadline, request_id=request_id, delivery=delivery, dry_run=dry_run, headers=headers
    )


def _consent(origin: str, rate: str | None, allowed: AbstractSet[str]) -> Handshake:
    """The CloudEvents validation handshake: consent for an origin `WEBHOOK_ALLOWED_ORIGINS`
    lists (or `*`), at the rate asked; `OriginNotAllowed` for any other origin, and
    `MalformedRequest` for an origin that names no host or a rate that is not the specification's
    positive whole number (nothing is consented to that cannot be read)."""
    origin = origin.strip()
    if not _ORIGIN.fullmatch(origin):
        raise MalformedRequest(
            "WebHook-Request-Origin must name the host that will deliver (printable, no spaces)"
        )
    if "*" not in allowed and origin.lower() not in allowed:
        raise OriginNotAllowed(
            f"The origin {origin[:200]!r} may not deliver here: add it to "
            "WEBHOOK_ALLOWED_ORIGINS (comma-separated; * for any) to consent"
        )
    asked = None if rate is None else rate.strip()
    if asked is not None and not _RATE.fullmatch(asked):
        raise MalformedRequest(
            "WebHook-Request-Rate must be a positive whole number: requests a minute"
        )
    return Handshake(origin=origin, rate=asked)


def _slack_challenge(body: dict[str, object]) -> Handshake:
    """Slack's url_verification, verified: its challenge, echoed; nothing else happens."""
    challenge = body.get("challenge")
    if not isinstance(challenge, str) or not challenge:
        raise MalformedRequest("Slack's url_verification has no challenge string")
    return Handshake(challenge=challenge)


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
