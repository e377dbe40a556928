"""Structured logs: one JSON object per line on stdout, with `severity` for Cloud Logging.

A request opens a `scope` (its `requestId`, trace); fields bound later (`bind`) join every line
written inside it. `Severity` and `Event` are the fixed words a line may carry. Callers pass only
credential-free fields: nothing here knows what a secret looks like.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import re
import sys
import threading
import traceback
from collections.abc import Iterator
from typing import Any, Literal, Protocol

Severity = Literal["DEBUG", "INFO", "WARNING", "ERROR"]
# Every `event` a log line can carry: one name per situation, searchable in Cloud Logging.
Event = Literal[
    "link.done",
    "link.valid",
    "link.rejected",
    "link.failed",
    "link.ignored",
    "link.duplicate",
    "link.queued",
    "link.batch",
    "tulip.retry",
    "mapping.when_failed",
    "settings.warning",
    "dedup.warning",
    "webhook.handshake",
]


class HeaderGetter(Protocol):
    """Request headers as both Flask and a plain dict offer them."""

    def get(self, key: str, default: str, /) -> str: ...


_scope: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "tulip_link_log_scope", default=None
)

TRACE_FIELD = "logging.googleapis.com/trace"
SPAN_FIELD = "logging.googleapis.com/spanId"
_TRACEPARENT = re.compile(r"[0-9a-f]{2}-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}")
_CLOUD_TRACE = re.compile(r"([0-9a-fA-F]{32})(?:/(\d{1,20}))?(?:;o=[01])?")


_write_lock = threading.Lock()

# Cloud Logging refuses an entry over 256 KiB, the entry's own metadata included: a line longer
# than this is cut to fit, its largest fields first, each cut one marked and named in `cutFields`.
LINE_LIMIT = 200 * 1024
_KEPT_WHOLE = ("severity", "event")


def emit(
    severity: Severity,
    event: Event,
    message: str,
    *,
    exc: BaseException | None = None,
    **fields: Any,
) -> None:
    """Write one line. `None` fields are left out; `exc` adds that exception's traceback."""
    line: dict[str, Any] = {"severity": severity, "message": message, "event": event}
    line.update(_scope.get() or {})
    line.update({k: v for k, v in fields.items() if v is not None})
    if exc is not None:
        # Error Reporting reads `stack_trace`; inside JSON it stays one line.
        line["stack_trace"] = "".join(traceback.format_exception(exc))
    text = _fitted(line) + "\n"
    with _write_lock:
        sys.stdout.write(text)
        sys.stdout.flush()


def _encoded(value: Any) -> str:
    return json.dumps(value, default=str, separators=(",", ":"))


def _fitted(line: dict[str, Any]) -> str:
    """The line as JSON within `LINE_LIMIT` characters: whole when it fits; else its largest
    fields cut (a structured one to its JSON text), each ending in a marker that says so."""
    text = _encoded(line)
    if len(text) <= LINE_LIMIT:
        return text
    fitted, cut = dict(line), []
    for key in sorted(fitted, key=lambda k: len(_encoded(fitted[k])), reverse=True):
        over = len(text) - LINE_LIMIT
        if over <= 0:
            break
        if key in _KEPT_WHOLE:
            continue
        value = fitted[key] if isinstance(fitted[key], str) else _encoded(fitted[key])
        # A character is at least one in JSON: cutting `over` of them (and room for the marker
        # and the list of cut fields) brings the line within the limit.
        keep = max(0, len(value) - over - 256)
        fitted[key] = f"{value[:keep]}... [cut: {len(value)} characters in all]"
        cut.append(key)
        fitted["cutFields"] = cut
        text = _encoded(fitted)
    return text


@contextlib.contextmanager
def scope(**fields: Any) -> Iterator[None]:
    """Fields for every line written until the block ends (a request, or one link of a batch:
    an inner scope adds to the outer one, and `bind` inside it does not reach the outer)."""
    outer = _scope.get() or {}
    token = _scope.set(outer | {k: v for k, v in fields.items() if v is not None})
    try:
        yield
    finally:
        _scope.reset(token)


def bind(**fields: Any) -> None:
    """Add fields to the current scope (no-op outside one)."""
    current = _scope.get()
    if current is not None:
        current.update({k: v for k, v in fields.items() if v is not None})


def trace_fields(headers: HeaderGetter, project: str | None) -> dict[str, str]:
    """Cloud Logging's trace and span fields from `traceparent` or `X-Cloud-Trace-Context`."""
    trace = span = None
    if match := _TRACEPARENT.fullmatch(headers.get("traceparent", "").strip()):
        trace, span = match.group(1), match.group(2)
    elif match := _CLOUD_TRACE.fullmatch(headers.get("X-Cloud-Trace-Context", "").strip()):
        # Its span id is decimal; Cloud Logging wants 16 hex digits.
        trace = match.group(1).lower()
        span = format(int(match.group(2)) % 2**64, "016x") if match.group(2) else None
    if not trace or not project:
        return {}
    fields = {TRACE_FIELD: f"projects/{project}/traces/{trace}"}
    if span:
        fields[SPAN_FIELD] = span
    return fields
