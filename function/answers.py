"""The one place an outcome becomes an answer: status, JSON body and headers, per `RULES`.

`render` takes what a request came to (a `Result`, or the `Failure` raised) and returns an
`HttpReply`, free of any web framework:

- one link done: `200 {"status": "linked" | "unlinked", "tableLinkId", "leftRecord",
  "rightRecord"}`; queued (queue mode): `202 {"status": "queued", ...the same, "action",
  "messageId"}`; an ignored event: `200 {"status": "ignored"}`;
- a batch: `200 {"status": "done", "results"}` (a dry run: `{"status": "valid", "dryRun": true,
  "results"}`; queued: `202 {"status": "queued", "results"}`) when every link succeeded, else the
  error body of its worst link, with `results`;
- a failure: `{"errorCode", "message", ...its body}` with its row's status, fixed headers and,
  where the row says so, `Retry-After` (whole seconds, rounded up).

Every answer carries `requestId` in its body and `X-Request-Id` as a header.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .errors import Failure
from .outcomes import RULES, Outcome
from .results import Batch, Ignored, LinkResult, Result


@dataclass(frozen=True)
class HttpReply:
    """What we answer the caller: status, JSON body, headers."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str]


def render(outcome: Result | Failure, request_id: str) -> HttpReply:
    """The answer to a request that came to `outcome`."""
    if isinstance(outcome, Failure):
        return _error(outcome, request_id)
    if isinstance(outcome, Batch) and outcome.worst is not None:
        return _error(outcome, request_id)
    body: dict[str, Any]
    if isinstance(outcome, LinkResult):
        body = {
            "status": outcome.status,
            "tableLinkId": outcome.table_link_id,
            "leftRecord": outcome.left_record,
            "rightRecord": outcome.right_record,
        }
        if outcome.message_id is not None:
            body |= {"action": outcome.action, "messageId": outcome.message_id}
    elif isinstance(outcome, Ignored):
        body = {"status": "ignored"}
    elif outcome.dry_run:
        body = {"status": "valid", "dryRun": True, "results": _results(outcome)}
    else:
        queued = outcome.outcome is Outcome.QUEUED
        body = {"status": "queued" if queued else "done", "results": _results(outcome)}
    status = RULES[outcome.outcome].status
    assert status is not None, "a success has a status of its own"
    return HttpReply(status, {**body, "requestId": request_id}, {"X-Request-Id": request_id})


def render_result(result: LinkResult) -> dict[str, Any]:
    """One link in a batch's `results`."""
    body: dict[str, Any] = {
        "tableLinkId": result.table_link_id,
        "leftRecord": result.left_record,
        "rightRecord": result.right_record,
        "action": result.action,
        "status": result.status,
        **result.tables,
    }
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


def _error(failed: Failure | Batch, request_id: str) -> HttpReply:
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
    return HttpReply(status, body, headers)
