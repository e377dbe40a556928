"""HTTP and CloudEvent glue: unwrap the request, call the core, render and log the outcome.

`handle_http` serves direct JSON requests and Pub/Sub push envelopes; its order of work is
settings, method, content type, size cap, caller authentication over the exact raw bytes, then
parsing, so nothing is parsed, logged or sent upstream before the caller is known. A push
envelope is authenticated like any other body.

A dry run (`?dryRun=true` or `X-Dry-Run: true`, HTTP only) is read after authentication: `true`
or `false` in any letter case; any other value, or a query and header that disagree, is 400 and
never a real link.

`handle_cloud_event` serves Eventarc's Pub/Sub events: a message that can never succeed (for a
batch: every failed link failed permanently) is logged whole (for replay) and acked, anything
else is answered non-2xx so Eventarc delivers it again.

A single link writes one outcome line (`link.done`, `link.rejected` or `link.failed`) with its
latency; a batch writes one per link (with `itemIndex` and its pair) and a `link.batch` summary;
an ignored event writes `link.ignored`. Every line of the request carries its `requestId`.
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
from .models import (
    MalformedRequest,
    PayloadTooLarge,
    is_push_envelope,
    message_payload,
    parse_json_object,
    parse_pubsub_message,
    parse_push_envelope,
)
from .outcomes import (
    LINK_STATUSES,
    RULES,
    Batch,
    BatchFailed,
    Failure,
    HttpReply,
    Ignored,
    LinkResult,
    Outcome,
    Result,
    render_failure,
    render_success,
)

_JSON_MEDIA_TYPE = re.compile(r"application/(?:[^/;\s]+\+)?json")
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
# Cloud Logging refuses entries over 256 KiB; a longer message is logged cut short and marked.
LOGGED_DATA_LIMIT = 128 * 1024


class MethodNotAllowed(Failure):
    """Only POST links anything."""

    outcome = Outcome.METHOD_NOT_ALLOWED


class UnsupportedMediaType(Failure):
    """The body is not declared as JSON."""

    outcome = Outcome.UNSUPPORTED_MEDIA_TYPE


class HeaderIndex:
    """Every value of every request header, by lower-case name, read from the WSGI environment
    in one pass: each lookup in Flask's own headers object scans the whole environment again,
    which costs more than the rest of a request's own work."""

    def __init__(self, environ: Mapping[str, Any]) -> None:
        self._values: dict[str, list[str]] = {}
        for key, value in environ.items():
            if key.startswith("HTTP_"):
                name = key[5:].replace("_", "-").lower()
            elif key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                name = key.replace("_", "-").lower()
            else:
                continue
            self._values.setdefault(name, []).append(value)

    def getlist(self, key: str) -> list[str]:
        """Every value of `key` (any letter case); empty when absent."""
        return self._values.get(key.lower(), [])

    def get(self, key: str, default: str, /) -> str:
        """The first value of `key`, or `default`."""
        values = self._values.get(key.lower())
        return values[0] if values else default


def handle_http(request: flask.Request) -> flask.Response:
    """Serve one HTTP request: a direct JSON request or a Pub/Sub push envelope."""
    started = time.monotonic()
    headers = HeaderIndex(request.environ)
    request_id = _request_id(headers)
    with logs.scope(requestId=request_id):
        crash = None
        try:
            core = instance.current().service()
            logs.bind(**logs.trace_fields(headers, core.settings.project))
            caller = instance.current().authenticator()
            deadline = core.deadline()
            if request.method != "POST":
                raise MethodNotAllowed(f"Use POST, not {request.method}")
            if not _JSON_MEDIA_TYPE.fullmatch(request.mimetype or ""):
                raise UnsupportedMediaType(
                    "Send the body as JSON, with Content-Type: application/json"
                )
            raw = _read_body(request, core.settings.max_body_bytes)
            caller.check(headers, raw, deadline)  # before anything reads the body
            dry_run = _dry_run(request, headers)
            body = parse_json_object(raw)
            if is_push_envelope(body):
                envelope = parse_push_envelope(body)
                logs.bind(
                    messageId=envelope.message.message_id,
                    deliveryAttempt=envelope.delivery_attempt,
                    subscription=envelope.subscription,
                )
                body = message_payload(envelope.message, core.settings.max_body_bytes)
            result: Result | Failure = core.handle(body, deadline, dry_run=dry_run)
        except Failure as failure:
            result = failure
        except Exception as error:  # noqa: BLE001 - the edge: any bug becomes INTERNAL
            result, crash = _internal_error(), error
        _log_outcome(result, started, crash=crash)
        return _response(_render(result, request_id))


def handle_cloud_event(event: CloudEvent) -> None:
    """Serve one Eventarc Pub/Sub event; returning acks it, raising an HTTP error retries it."""
    started = time.monotonic()
    # functions-framework serves a CloudEvent inside a Flask request, and the CloudEvent object
    # does not carry the HTTP headers we need (execution id, trace): read them from there.
    headers = HeaderIndex(flask.request.environ)
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
            payload = message_payload(parse_pubsub_message(message), core.settings.max_body_bytes)
            _log_outcome(core.handle(payload, deadline), started)
            return
        except Failure as failure:
            result = failure
        except Exception as error:  # noqa: BLE001 - the edge: any bug becomes INTERNAL
            result, crash = _internal_error(), error
        if result.rule.permanent:
            # Retrying cannot help and Eventarc cannot dead-letter: the log line is the dead
            # letter, holding the message exactly as received so it can be replayed.
            _log_outcome(
                result, started, severity="ERROR", acked=True, **_as_received(message, data)
            )
            return
        _log_outcome(result, started, crash=crash)
    flask.abort(_response(render_failure(result, request_id)))


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


def _dry_run(request: flask.Request, headers: HeaderIndex) -> bool:
    """Whether the request asks for a dry run; a value we cannot read is `MalformedRequest`."""
    given = headers.getlist("X-Dry-Run")
    if request.query_string:  # parsed only when there is one
        given += request.args.getlist("dryRun")
    values = {value.lower() for value in given}
    if not values <= {"true", "false"}:
        raise MalformedRequest(
            "dryRun (in the URL) and X-Dry-Run (a header) must be true or false; nothing was linked"
        )
    if len(values) > 1:
        raise MalformedRequest(
            "dryRun (in the URL) and X-Dry-Run (a header) disagree; nothing was linked"
        )
    return values == {"true"}


def _render(result: Result | Failure, request_id: str) -> HttpReply:
    if isinstance(result, Failure):
        return render_failure(result, request_id)
    return render_success(result, request_id)


def _response(reply: HttpReply) -> flask.Response:
    response = flask.Response(
        json.dumps(reply.body), status=reply.status, mimetype="application/json"
    )
    response.headers.update(reply.headers)
    response.headers["Cache-Control"] = "no-store"
    return response


def _log_outcome(
    result: Result | Failure,
    started: float,
    *,
    severity: logs.Severity | None = None,
    crash: BaseException | None = None,
    **extra: Any,
) -> None:
    """The request's outcome lines; `severity` and `extra` go on its last line."""
    rule = RULES[result.outcome]
    latency = round((time.monotonic() - started) * 1000, 1)
    fields: dict[str, Any]
    if isinstance(result, Batch | BatchFailed):
        for index, link in enumerate(result.results):
            _log_link(
                link, itemIndex=index, leftRecord=link.left_record, rightRecord=link.right_record
            )
        counts = dict.fromkeys(LINK_STATUSES, 0)
        for link in result.results:
            counts[link.status] += 1
        message = ", ".join(f"{n} {status.replace('_', ' ')}" for status, n in counts.items() if n)
        fields = {"links": len(result.results), "counts": counts, "dryRun": result.dry_run or None}
        if isinstance(result, BatchFailed):
            fields |= {"errorCode": rule.error_code, "status": result.status}
        event: logs.Event = "link.batch"
    elif isinstance(result, Ignored):
        message = "No LINK_MAPPING rule applies to this event; nothing was linked"
        fields, event = {"when": list(result.when)}, rule.event
    elif isinstance(result, Failure):
        message = result.message
        fields = {"errorCode": rule.error_code, "status": result.status, **result.log}
        event = rule.event
    else:
        _log_link(result, latencyMs=latency, exc=crash, **extra)
        return
    logs.emit(
        severity or rule.severity,
        event,
        message,
        exc=crash,
        outcome=result.outcome.value,
        latencyMs=latency,
        **fields,
        **extra,
    )


def _log_link(link: LinkResult, *, exc: BaseException | None = None, **fields: Any) -> None:
    """One link's line: done (or valid), rejected, failed or not attempted."""
    rule = RULES[link.outcome]
    failure = link.failure
    details: dict[str, Any]
    if failure is None:
        message = (
            "Dry run: the table link exists and the token may read it"
            if link.status == "valid"
            else f"Tulip accepted the {link.action}"
        )
        details = {
            "status": rule.status,
            "tulipStatus": link.tulip_status,
            "attempts": link.attempts,
        }
    else:
        message = failure.message
        details = {"errorCode": rule.error_code, "status": failure.status, **failure.log}
    logs.emit(
        rule.severity,
        rule.event,
        message,
        exc=exc,
        outcome=link.outcome.value,
        tableLinkId=link.table_link_id,
        action=link.action,
        **details,
        **fields,
    )


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
