"""The one place an outcome becomes an answer: status, JSON body and headers, per `RULES`.

`render` takes what a request came to (a `Result`, or the `Failure` raised) and returns an
`Answer`; `response` makes it Flask's. The bodies are docs/api.md's; every answer carries
`requestId` in its body and `X-Request-Id` as a header.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import flask

from function.model.errors import Failure
from function.model.results import (
    Batch,
    DeadLettered,
    Duplicate,
    Handshake,
    Ignored,
    LinkResult,
    Result,
)
from function.model.status_table import RULES, Outcome


@dataclass(frozen=True)
class Answer:
    """What we answer the caller: status, JSON body, headers (free of any web framework)."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str]


def render(outcome: Result | Failure, request_id: str) -> Answer:
    """The answer to a request that came to `outcome`."""
    if isinstance(outcome, Failure):
        return _error(outcome, request_id)
    if isinstance(outcome, Batch) and outcome.worst is not None:
        return _error(outcome, request_id)
    body: dict[str, Any]
    if isinstance(outcome, Handshake):
        return _handshake(outcome, request_id)
    if isinstance(outcome, Duplicate):
        # The first request's id, so the sender can find what was done (this one's is in the
        # X-Request-Id header, and on its log line beside the first's).
        body = {"status": "duplicate", "requestId": outcome.first_request_id}
        return Answer(200, body, {"X-Request-Id": request_id})
    if isinstance(outcome, DeadLettered):
        # The refusal's body, as a 2xx: Pub/Sub is done with the message.
        refused = _error(outcome.refusal, request_id).body
        body = {"status": "dead_lettered", **refused, "deadLetterMessageId": outcome.message_id}
        return Answer(200, body, {"X-Request-Id": request_id})
    if isinstance(outcome, LinkResult):
        link = outcome.link.as_json()
        if outcome.message_id is None:
            del link["action"]  # a link done or refused answers without it, as it always has
        body = {"status": outcome.status, **link}
        if outcome.message_id is not None:
            body["messageId"] = outcome.message_id
    elif isinstance(outcome, Ignored):
        body = {"status": "ignored"}
    elif outcome.dry_run:
        body = {"status": "valid", "dryRun": True, "tulipChecked": outcome.tulip_checked}
        body["results"] = _results(outcome)
    else:
        queued = outcome.outcome is Outcome.QUEUED
        body = {"status": "queued" if queued else "done", "results": _results(outcome)}
    status = RULES[outcome.outcome].status
    assert status is not None, "a success has a status of its own"
    return Answer(status, {**body, "requestId": request_id}, {"X-Request-Id": request_id})


def _handshake(handshake: Handshake, request_id: str) -> Answer:
    """Slack's challenge, echoed as Slack asks; or the CloudEvents consent, in its headers."""
    headers = {"X-Request-Id": request_id}
    if handshake.challenge is not None:
        return Answer(200, {"challenge": handshake.challenge}, headers)
    assert handshake.origin is not None
    headers |= {"WebHook-Allowed-Origin": handshake.origin, "Allow": "POST"}
    if handshake.rate is not None:
        headers["WebHook-Allowed-Rate"] = handshake.rate
    body = {"status": "allowed", "origin": handshake.origin, "requestId": request_id}
    return Answer(200, body, headers)


def render_result(result: LinkResult) -> dict[str, Any]:
    """One link in a batch's `results`."""
    body: dict[str, Any] = {**result.link.as_json(), "status": result.status, **result.tables}
    if result.message_id is not None:
        body["messageId"] = result.message_id
    failure = result.failure
    if failure is not None and result.status == "failed":
        body |= {
            "errorCode": failure.rule.error_code,
            "httpStatus": failure.status,
            "message": failure.message,
            **failure.body,
        }
    return body


def _results(batch: Batch) -> list[dict[str, Any]]:
    return [render_result(result) for result in batch.results]


def _error(failed: Failure | Batch, request_id: str) -> Answer:
    """A failure's answer, or that of a batch whose worst link failed (with every link's)."""
    if isinstance(failed, Batch):
        worst = failed.worst
        assert worst is not None
        status, message = worst[1].status, failed.summary()
        extra = {"results": _results(failed)} | ({"dryRun": True} if failed.dry_run else {})
    else:
        status, message, extra = failed.status, failed.message, failed.body
    rule = failed.rule
    body = {"errorCode": rule.error_code, "message": message, "requestId": request_id, **extra}
    headers = {"X-Request-Id": request_id, **dict(rule.headers)}
    if rule.retry_after:
        headers["Retry-After"] = str(max(0, math.ceil(failed.retry_after_seconds())))
    return Answer(status, body, headers)


def response(answer: Answer) -> flask.Response:
    """`answer` as Flask's response; never cached. Streamed (its one chunk given as an
    iterator), because functions-framework reads the whole request body before any other
    answer, which would make a refusal wait for the body it refuses."""
    data = json.dumps(answer.body).encode()
    flask_response = flask.Response(iter([data]), status=answer.status, mimetype="application/json")
    flask_response.headers.update(answer.headers)
    flask_response.headers["Content-Length"] = str(len(data))
    flask_response.headers["Cache-Control"] = "no-store"
    return flask_response
