"""HTTP and CloudEvent glue: unwrap the request, call the core, answer and log the outcome.

`handle_http` serves direct JSON requests and Pub/Sub push envelopes; its order of work is
settings, method, content type, size cap, caller authentication over the exact raw bytes, then
parsing, so nothing is parsed, logged or sent upstream before the caller is known. A push
envelope is authenticated like any other body.

A dry run (`?dryRun=true` or `X-Dry-Run: true`, HTTP only) is read after authentication: `true`
or `false` in any letter case; any other value, or a query and header that disagree, is 400 and
never a real link.

In queue mode (`WEBHOOK_DELIVERY=queue`) a request that passed every check is handed to the
intake, which publishes its links and answers 202; a dry run still goes to the service.

A Pub/Sub message whose `format` attribute says it was published by an intake holds a link in
our own shape: `LINK_MAPPING` does not apply to it, and its `intakeRequestId` joins the log
lines. The attribute counts only where a message can only have come through Pub/Sub: on the
CloudEvent entry point (Eventarc), and on an HTTP function that does not authenticate its callers
itself (`WEBHOOK_AUTH=none`, behind Cloud Run IAM). Elsewhere it means nothing, so a sender cannot
skip the mapping by wrapping its body in a marked envelope. Such a message reaching a function in
queue mode would be queued again, for ever: it is refused as a misconfiguration.

`handle_cloud_event` serves Eventarc's Pub/Sub events: a message that can never succeed (for a
batch: every failed link failed permanently) is logged whole (for replay) and acked, anything
else is answered non-2xx so Eventarc delivers it again.

The answer is rendered in `answers`, the outcome's log lines written in `report`; every line of
the request carries its `requestId`.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Mapping
from typing import Any

import flask
from cloudevents.http.event import CloudEvent

from . import instance, logs
from .answers import HttpReply, render
from .errors import (
    ConfigError,
    Failure,
    MalformedRequest,
    MethodNotAllowed,
    PayloadTooLarge,
    UnsupportedMediaType,
)
from .intake import FORMAT, FORMAT_ATTRIBUTE, INTAKE_REQUEST_ID, SENDER, WEBHOOK_ID
from .outcomes import RULES
from .payloads import (
    is_push_envelope,
    message_payload,
    parse_json_object,
    parse_pubsub_message,
    parse_push_envelope,
)
from .report import log_outcome
from .results import Result, failed

_JSON_MEDIA_TYPE = re.compile(r"application/(?:[^/;\s]+\+)?json")
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
# Cloud Logging refuses entries over 256 KiB; a longer message is logged cut short and marked.
LOGGED_DATA_LIMIT = 128 * 1024


def handle_http(request: flask.Request) -> flask.Response:
    """Serve one HTTP request: a direct JSON request or a Pub/Sub push envelope."""
    started = time.monotonic()
    request_id = _request_id(request.headers)
    with logs.scope(requestId=request_id):
        crash = None
        try:
            core = instance.current().service()
            logs.bind(**logs.trace_fields(request.headers, core.settings.project))
            logs.bind(sender=instance.current().webhook().sender)
            caller = instance.current().authenticator()
            intake = instance.current().intake()
            deadline = core.deadline()
            if request.method != "POST":
                raise MethodNotAllowed(f"Use POST, not {request.method}")
            if not _JSON_MEDIA_TYPE.fullmatch(request.mimetype or ""):
                raise UnsupportedMediaType(
                    "Send the body as JSON, with Content-Type: application/json"
                )
            raw = _read_body(request, core.settings.max_body_bytes)
            caller.check(request.headers, raw, deadline)  # before anything reads the body
            dry_run = _dry_run(request)
            body = parse_json_object(raw)
            queued = False  # the body is a message an intake published
            if is_push_envelope(body):
                envelope = parse_push_envelope(body)
                logs.bind(
                    messageId=envelope.message.message_id,
                    deliveryAttempt=envelope.delivery_attempt,
                    subscription=envelope.subscription,
                )
                queued = not caller.checks_callers and _from_intake(envelope.message.attributes)
                if queued and intake is not None:
                    raise ConfigError(
                        "A message an intake queued reached a function in queue mode, which "
                        "would queue it again: the function fed by the push subscription must "
                        "run with WEBHOOK_DELIVERY=direct"
                    )
                body = message_payload(envelope.message, core.settings.max_body_bytes)
            outcome: Result | Failure
            if intake is not None and not dry_run:
                webhook_id = caller.delivery_id(request.headers)
                outcome = intake.accept(
                    body, deadline, request_id=request_id, webhook_id=webhook_id
                )
            else:
                outcome = core.handle(body, deadline, dry_run=dry_run, in_our_shape=queued)
        except Failure as failure:
            outcome = failure
        except Exception as error:  # noqa: BLE001 - the edge: any bug becomes INTERNAL
            outcome, crash = _internal_error(), error
        log_outcome(outcome, started, crash=crash)
        return _response(render(outcome, request_id))


def handle_cloud_event(event: CloudEvent) -> None:
    """Serve one Eventarc Pub/Sub event; returning acks it, raising an HTTP error retries it."""
    started = time.monotonic()
    # functions-framework serves a CloudEvent inside a Flask request, and the CloudEvent object
    # does not carry the HTTP headers we need (execution id, trace): read them from there.
    headers = flask.request.headers
    request_id = _request_id(headers)
    data = event.get_data()
    message: Any = data.get("message") if isinstance(data, dict) else None
    subscription = data.get("subscription") if isinstance(data, dict) else None
    with logs.scope(requestId=request_id, messageId=event["id"], subscription=subscription):
        crash = None
        try:
            core = instance.current().service()
            logs.bind(**logs.trace_fields(headers, core.settings.project))
            deadline = core.deadline()
            parsed = parse_pubsub_message(message)
            queued = _from_intake(parsed.attributes)  # only Eventarc reaches this entry point
            payload = message_payload(parsed, core.settings.max_body_bytes)
            outcome: Result | Failure = core.handle(payload, deadline, in_our_shape=queued)
        except Failure as failure:
            outcome = failure
        except Exception as error:  # noqa: BLE001 - the edge: any bug becomes INTERNAL
            outcome, crash = _internal_error(), error
        if not failed(outcome):
            log_outcome(outcome, started)
            return
        if RULES[outcome.outcome].permanent:
            # Retrying cannot help and Eventarc cannot dead-letter: the log line is the dead
            # letter, holding the message exactly as received so it can be replayed.
            log_outcome(
                outcome, started, severity="ERROR", acked=True, **_as_received(message, data)
            )
            return
        log_outcome(outcome, started, crash=crash)
    flask.abort(_response(render(outcome, request_id)))


def _from_intake(attributes: Mapping[str, str]) -> bool:
    """Whether a message's attributes say an intake published it; if so, they join the log."""
    if attributes.get(FORMAT_ATTRIBUTE) != FORMAT:
        return False
    logs.bind(
        intakeRequestId=attributes.get(INTAKE_REQUEST_ID),
        webhookId=attributes.get(WEBHOOK_ID),
        sender=attributes.get(SENDER),
    )
    return True


def _internal_error() -> Failure:
    # A bug: the body says nothing about it, the log line holds the traceback.
    return Failure("Internal error; the log line with this requestId has the details")


def _request_id(headers: logs.HeaderGetter) -> str:
    given = headers.get("Function-Execution-Id", "")
    return given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex


def _read_body(request: flask.Request, limit: int) -> bytes:
    """The raw body, refused past `limit` bytes whether or not a Content-Length announced it."""
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(limit)
    # A read may return less than asked (the body can arrive in several segments): read to EOF.
    chunks: list[bytes] = []
    size = 0
    while chunk := request.stream.read(min(64 * 1024, limit + 1 - size)):
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(limit)
    return b"".join(chunks)


def _dry_run(request: flask.Request) -> bool:
    """Whether the request asks for a dry run; a value we cannot read is `MalformedRequest`."""
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


def _response(reply: HttpReply) -> flask.Response:
    response = flask.Response(
        json.dumps(reply.body), status=reply.status, mimetype="application/json"
    )
    response.headers.update(reply.headers)
    response.headers["Cache-Control"] = "no-store"
    return response


def _as_received(message: Any, data: Any) -> dict[str, Any]:
    """The undeliverable message for the log, cut at `LOGGED_DATA_LIMIT` characters."""
    if isinstance(message, dict):
        received: Any = message.get("data")
        extra: dict[str, Any] = {"messageAttributes": message.get("attributes")}
    else:
        received, extra = data, {}
    text = received if isinstance(received, str) else json.dumps(received, default=repr)
    if len(text) > LOGGED_DATA_LIMIT:
        extra["messageDataTruncated"] = True
        text = text[:LOGGED_DATA_LIMIT]
    return {"messageData": text, **extra}
