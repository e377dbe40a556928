"""The log lines that end a request, one place for all of them.

A single link writes one line (`link.done`, `link.queued`, `link.rejected` or `link.failed`) with
its latency; a batch or dry run writes one per link (with `itemIndex` and its pair; `link.valid`
for a dry run's) and then a `link.batch` summary with `links` and `counts`; an ignored event writes
`link.ignored` with the `when` expressions; a failure writes its row's event with `errorCode`
and `status`. Every line carries the request's scope (`requestId`, ...), from `logs`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from function import logs
from function.logs import Event, Severity
from function.model.errors import Failure
from function.model.results import (
    LINK_STATUSES,
    Batch,
    DeadLettered,
    Duplicate,
    Handshake,
    Ignored,
    LinkResult,
    Result,
)
from function.model.status_table import RULES


def log_outcome(
    outcome: Result | Failure,
    started: float,
    *,
    severity: Severity | None = None,
    crash: BaseException | None = None,
    **extra: Any,
) -> None:
    """The request's outcome lines, its latency counted from `started` (`time.monotonic`);
    `severity` and `extra` go on its last line, `crash` adds a traceback. A dead-lettered
    message writes its refusal's lines, the last at ERROR with `deadLetterMessageId`."""
    if isinstance(outcome, DeadLettered):
        log_outcome(
            outcome.refusal,
            started,
            severity=RULES[outcome.outcome].severity,
            crash=crash,
            deadLetterMessageId=outcome.message_id,
            **extra,
        )
        return
    rule = RULES[outcome.outcome]
    latency = round((time.monotonic() - started) * 1000, 1)
    fields: dict[str, Any]
    if isinstance(outcome, Batch):
        for index, result in enumerate(outcome.results):
            _log_link(result, {"itemIndex": index, **result.link.as_json()})
        counts = dict.fromkeys(LINK_STATUSES, 0)
        for result in outcome.results:
            counts[result.status] += 1
        message = ", ".join(f"{n} {status.replace('_', ' ')}" for status, n in counts.items() if n)
        fields = {
            "links": len(outcome.results),
            "counts": counts,
            "dryRun": outcome.dry_run or None,
            "tulipChecked": outcome.tulip_checked if outcome.dry_run else None,
        }
        if outcome.worst is not None:
            fields |= {"errorCode": rule.error_code, "status": outcome.worst[1].status}
        event: Event = "link.batch"
    elif isinstance(outcome, Handshake):
        if outcome.challenge is not None:
            message = "Answered Slack's url_verification with its challenge; nothing linked"
            fields = {}
        else:
            message = f"Allowed {outcome.origin} to deliver (the CloudEvents validation)"
            fields = {"origin": outcome.origin, "rate": outcome.rate}
        event = rule.event
    elif isinstance(outcome, Ignored):
        message = "No LINK_MAPPING rule applies to this event; nothing was linked"
        fields, event = {"when": list(outcome.when)}, rule.event
    elif isinstance(outcome, Duplicate):
        message = f"Accepted before, by request {outcome.first_request_id}; nothing queued or linked again"
        fields = {"firstRequestId": outcome.first_request_id, "status": rule.status}
        event = rule.event
    elif isinstance(outcome, Failure):
        message = outcome.message
        fields = {"errorCode": rule.error_code, "status": outcome.status, **outcome.log}
        event = rule.event
    else:
        _log_link(outcome, {"latencyMs": latency, **extra}, exc=crash)
        return
    logs.emit(
        severity or rule.severity,
        event,
        message,
        exc=crash,
        outcome=outcome.outcome.value,
        latencyMs=latency,
        **fields,
        **extra,
    )


def _log_link(
    result: LinkResult, fields: Mapping[str, Any], exc: BaseException | None = None
) -> None:
    """One link's line, `fields` on it: done (or valid), rejected, failed or not attempted."""
    rule = RULES[result.outcome]
    failure = result.failure
    action = result.link.action
    details: dict[str, Any]
    if failure is None:
        message = {
            "valid": "Dry run: the table link exists and the token may read it",
            "queued": f"Queued: Pub/Sub confirmed the {action}; the events function makes it",
        }.get(result.status, f"Tulip accepted the {action}")
        details = {
            "status": rule.status,
            "tulipStatus": result.tulip_status,
            "attempts": result.attempts,
            "messageId": result.message_id,
        }
    else:
        message = failure.message
        details = {"errorCode": rule.error_code, "status": failure.status, **failure.log}
    logs.emit(
        rule.severity,
        rule.event,
        message,
        exc=exc,
        outcome=result.outcome.value,
        **{"tableLinkId": result.link.table_link_id, "action": action, **fields},
        **details,
    )
