"""The log lines that end a request, one place for all of them.

A single link writes one line (`link.done`, `link.queued`, `link.rejected` or `link.failed`) with
its latency; a batch or dry run writes one per link (with `itemIndex` and its pair; `link.valid`
for a dry run's) and then a `link.batch` summary with `links` and `counts`; an ignored event writes
`link.ignored` with the `when` expressions; a failure writes its row's event with `errorCode`
and `status`. Every line carries the request's scope (`requestId`, ...), from `logs`.
"""

from __future__ import annotations

import time
from typing import Any

from . import logs
from .errors import Failure
from .outcomes import LINK_STATUSES, RULES, Event, Severity
from .results import Batch, Ignored, LinkResult, Result


def log_outcome(
    outcome: Result | Failure,
    started: float,
    *,
    severity: Severity | None = None,
    crash: BaseException | None = None,
    **extra: Any,
) -> None:
    """The request's outcome lines, its latency counted from `started` (`time.monotonic`);
    `severity` and `extra` go on its last line, `crash` adds a traceback."""
    rule = RULES[outcome.outcome]
    latency = round((time.monotonic() - started) * 1000, 1)
    fields: dict[str, Any]
    if isinstance(outcome, Batch):
        for index, link in enumerate(outcome.results):
            _log_link(
                link, itemIndex=index, leftRecord=link.left_record, rightRecord=link.right_record
            )
        counts = dict.fromkeys(LINK_STATUSES, 0)
        for link in outcome.results:
            counts[link.status] += 1
        message = ", ".join(f"{n} {status.replace('_', ' ')}" for status, n in counts.items() if n)
        fields = {
            "links": len(outcome.results),
            "counts": counts,
            "dryRun": outcome.dry_run or None,
        }
        if outcome.worst is not None:
            fields |= {"errorCode": rule.error_code, "status": outcome.worst[1].status}
        event: Event = "link.batch"
    elif isinstance(outcome, Ignored):
        message = "No LINK_MAPPING rule applies to this event; nothing was linked"
        fields, event = {"when": list(outcome.when)}, rule.event
    elif isinstance(outcome, Failure):
        message = outcome.message
        fields = {"errorCode": rule.error_code, "status": outcome.status, **outcome.log}
        event = rule.event
    else:
        _log_link(outcome, latencyMs=latency, exc=crash, **extra)
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


def _log_link(link: LinkResult, *, exc: BaseException | None = None, **fields: Any) -> None:
    """One link's line: done (or valid), rejected, failed or not attempted."""
    rule = RULES[link.outcome]
    failure = link.failure
    details: dict[str, Any]
    if failure is None:
        message = {
            "valid": "Dry run: the table link exists and the token may read it",
            "queued": f"Queued: Pub/Sub confirmed the {link.action}; the events function makes it",
        }.get(link.status, f"Tulip accepted the {link.action}")
        details = {
            "status": rule.status,
            "tulipStatus": link.tulip_status,
            "attempts": link.attempts,
            "messageId": link.message_id,
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
