"""The one table that decides every answer, and the one place that renders it.

Each situation the function can end in is an `Outcome`; `RULES` maps it to our HTTP status, the
`errorCode`, the log event and severity, whether a `Retry-After` goes with it, whether Tulip is
retried on it, and whether the Eventarc path may drop (ack) the message because retrying the
same message cannot succeed. Errors are `Failure` exceptions raised where the situation is
known; `render_failure` and `render_success` turn outcomes into an `HttpReply`.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, get_args

from .logs import Event, Severity

if TYPE_CHECKING:  # models raises the failures defined here: no import at run time
    from .models import Action

DEFAULT_RETRY_AFTER_SECONDS = 5


class Outcome(enum.Enum):
    """Every way a request can end. Where two outcomes answer the same `errorCode`, the second
    is named `<errorCode>_<what differs>`, so a search for a logged `errorCode` finds both."""

    DONE = "done"
    VALID = "valid"
    IGNORED = "ignored"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    MALFORMED_REQUEST = "malformed_request"
    INVALID_PAYLOAD = "invalid_payload"
    UNAUTHENTICATED = "unauthenticated"
    TULIP_REJECTED = "tulip_rejected"
    TULIP_REJECTED_NOT_FOUND = "tulip_rejected_not_found"
    TULIP_AUTH_REJECTED = "tulip_auth_rejected"
    TULIP_RATE_LIMITED = "tulip_rate_limited"
    TULIP_UNAVAILABLE = "tulip_unavailable"
    TULIP_UNAVAILABLE_UNEXPECTED_STATUS = "tulip_unavailable_unexpected_status"
    TULIP_TIMEOUT = "tulip_timeout"
    CREDENTIALS_UNAVAILABLE = "credentials_unavailable"
    MISCONFIGURED = "misconfigured"
    INTERNAL = "internal"


@dataclass(frozen=True)
class Rule:
    """What an outcome means for the caller, the logs and the retry logic."""

    status: int | None  # None: Tulip's own status passes through
    error_code: str | None  # None only for success
    event: Event
    severity: Severity
    retry_after: bool = False  # answer with a Retry-After header
    permanent: bool = False  # the same message can never succeed: Eventarc acks it
    tulip_statuses: frozenset[int] = frozenset()  # Tulip answers that lead here
    retry_tulip: bool = False  # try Tulip again (within attempts and deadline)
    headers: tuple[tuple[str, str], ...] = ()  # fixed headers of the answer


RULES: Mapping[Outcome, Rule] = {
    Outcome.DONE: Rule(200, None, "link.done", "INFO"),
    # A dry run: the link could be made (nothing was linked).
    Outcome.VALID: Rule(200, None, "link.valid", "INFO"),
    # No LINK_MAPPING rule applies to the event: acked, so a sender is not pushed to retry.
    Outcome.IGNORED: Rule(200, None, "link.ignored", "INFO"),
    # The caller's request is wrong: retrying the same request cannot help.
    Outcome.METHOD_NOT_ALLOWED: Rule(
        405,
        "METHOD_NOT_ALLOWED",
        "link.rejected",
        "WARNING",
        permanent=True,
        headers=(("Allow", "POST"),),
    ),
    Outcome.UNSUPPORTED_MEDIA_TYPE: Rule(
        415, "UNSUPPORTED_MEDIA_TYPE", "link.rejected", "WARNING", permanent=True
    ),
    Outcome.PAYLOAD_TOO_LARGE: Rule(
        413, "PAYLOAD_TOO_LARGE", "link.rejected", "WARNING", permanent=True
    ),
    Outcome.MALFORMED_REQUEST: Rule(
        400, "MALFORMED_REQUEST", "link.rejected", "WARNING", permanent=True
    ),
    Outcome.INVALID_PAYLOAD: Rule(
        422, "INVALID_PAYLOAD", "link.rejected", "WARNING", permanent=True
    ),
    # The caller did not prove who it is (WEBHOOK_AUTH); the reason is logged, never answered.
    Outcome.UNAUTHENTICATED: Rule(
        401, "UNAUTHENTICATED", "link.rejected", "WARNING", permanent=True
    ),
    # Tulip refused the values: its status passes through.
    Outcome.TULIP_REJECTED: Rule(
        None,
        "TULIP_REJECTED",
        "link.rejected",
        "WARNING",
        permanent=True,
        tulip_statuses=frozenset({400, 409, 422}),
    ),
    # The same errorCode, but not permanent: the record may simply not exist *yet* (events
    # arrive out of order), so a message is retried rather than dropped.
    Outcome.TULIP_REJECTED_NOT_FOUND: Rule(
        None, "TULIP_REJECTED", "link.rejected", "WARNING", tulip_statuses=frozenset({404})
    ),
    # Our token is refused (after one refresh for 401): the operator must act; the caller may
    # retry later. 502, not 401/403: the caller's own credentials were fine.
    Outcome.TULIP_AUTH_REJECTED: Rule(
        502, "TULIP_AUTH_REJECTED", "link.failed", "ERROR", tulip_statuses=frozenset({401, 403})
    ),
    Outcome.TULIP_RATE_LIMITED: Rule(
        429,
        "TULIP_RATE_LIMITED",
        "link.failed",
        "WARNING",
        retry_after=True,
        tulip_statuses=frozenset({429}),
        retry_tulip=True,
    ),
    # Also the outcome of a connection error (no status at all).
    Outcome.TULIP_UNAVAILABLE: Rule(
        502,
        "TULIP_UNAVAILABLE",
        "link.failed",
        "ERROR",
        retry_after=True,
        tulip_statuses=frozenset({500, 502, 503, 504}),
        retry_tulip=True,
    ),
    # The same errorCode for any status not listed above (3xx, 405, 501, ...), not retried.
    Outcome.TULIP_UNAVAILABLE_UNEXPECTED_STATUS: Rule(
        502, "TULIP_UNAVAILABLE", "link.failed", "ERROR", retry_after=True
    ),
    Outcome.TULIP_TIMEOUT: Rule(504, "TULIP_TIMEOUT", "link.failed", "ERROR", retry_tulip=True),
    Outcome.CREDENTIALS_UNAVAILABLE: Rule(
        503, "CREDENTIALS_UNAVAILABLE", "link.failed", "ERROR", retry_after=True
    ),
    Outcome.MISCONFIGURED: Rule(500, "MISCONFIGURED", "link.failed", "ERROR"),
    Outcome.INTERNAL: Rule(500, "INTERNAL", "link.failed", "ERROR"),
}


def outcome_for_tulip_status(status: int) -> Outcome:
    """The outcome of one answer from Tulip: any 2xx is success."""
    if 200 <= status < 300:
        return Outcome.DONE
    for outcome, rule in RULES.items():
        if status in rule.tulip_statuses:
            return outcome
    return Outcome.TULIP_UNAVAILABLE_UNEXPECTED_STATUS


class Failure(Exception):
    """A request that ends without a link: raised where the reason is known.

    Subclasses name their usual outcome; `outcome=` overrides it where one class covers several
    rows (the Tulip client). `body` holds extra, credential-free fields for the error body;
    `log` holds extra fields for the log line only.
    """

    outcome: Outcome = Outcome.INTERNAL

    def __init__(
        self,
        message: str,
        *,
        outcome: Outcome | None = None,
        body: Mapping[str, Any] | None = None,
        log: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        if outcome is not None:
            self.outcome = outcome
        self.message = message
        self.body = dict(body or {})
        self.log = dict(log or {})

    @property
    def rule(self) -> Rule:
        """This failure's row of the table."""
        return RULES[self.outcome]

    @property
    def status(self) -> int:
        """The HTTP status we answer with."""
        assert self.rule.status is not None, f"{self.outcome} passes on a status it lacks"
        return self.rule.status

    def retry_after_seconds(self) -> float:
        """How long a caller should wait before retrying, when the rule sends `Retry-After`."""
        return DEFAULT_RETRY_AFTER_SECONDS


LinkStatus = Literal["linked", "unlinked", "valid", "failed", "not_attempted"]
LINK_STATUSES: tuple[LinkStatus, ...] = get_args(LinkStatus)


class NotAttempted(Failure):
    """The request's deadline passed (or would have, waiting out a rate limit) before this link
    of a batch could start; it counts as a timeout."""

    outcome = Outcome.TULIP_TIMEOUT

    def __init__(self) -> None:
        super().__init__("The request's deadline came before this link could be tried")


@dataclass(frozen=True)
class LinkResult:
    """What became of one link: done, valid (a dry run), failed, or not attempted.

    `tulip_status` and `attempts` describe Tulip's accepting answer; a failure carries its own.
    `tables` are the link's left and right table ids, as a dry run's GET found them.
    """

    table_link_id: str
    left_record: str
    right_record: str
    action: Action
    status: LinkStatus
    failure: Failure | None = None
    tulip_status: int | None = None
    attempts: int | None = None
    tables: Mapping[str, str] = field(default_factory=dict)

    @property
    def outcome(self) -> Outcome:
        """This link's row of the table."""
        if self.failure is not None:
            return self.failure.outcome
        return Outcome.VALID if self.status == "valid" else Outcome.DONE


@dataclass(frozen=True)
class Ignored:
    """No mapping rule's `when` held: nothing to link, and nothing wrong."""

    when: tuple[str, ...]
    outcome: Outcome = field(default=Outcome.IGNORED, init=False)


@dataclass(frozen=True)
class Batch:
    """Every link of a batch (or of a dry run) succeeded."""

    results: tuple[LinkResult, ...]
    dry_run: bool
    outcome: Outcome = field(default=Outcome.DONE, init=False)


Result = LinkResult | Ignored | Batch


class BatchFailed(Failure):
    """Some links of a batch (or of a dry run) did not succeed.

    The answer is the one the worst link would have had alone: a retryable link (one whose
    outcome is not permanent) beats a permanent one, and among equals the first in order wins.
    Then a sender retries the whole batch (re-linking the pairs already done is harmless), and
    never gets a 2xx while a link failed. Where the answer's row sends `Retry-After`, it is the
    largest any retryable link asks for.
    """

    def __init__(self, results: tuple[LinkResult, ...], *, dry_run: bool) -> None:
        failed = [(i, r.failure) for i, r in enumerate(results) if r.failure is not None]
        assert failed, "a batch with no failure did not fail"
        retryable = [(i, f) for i, f in failed if not f.rule.permanent]
        index, worst = (retryable or failed)[0]
        super().__init__(
            f"{len(failed)} of {len(results)} links did not succeed; the answer is that of "
            f"results[{index}]: {worst.message}",
            outcome=worst.outcome,
            body={"results": [render_result(r) for r in results]}
            | ({"dryRun": True} if dry_run else {}),
        )
        self.results = results
        self.dry_run = dry_run
        self._worst = worst
        self._retryable = [f for _, f in retryable]

    @property
    def status(self) -> int:
        """The worst link's status, as it would have answered alone."""
        return self._worst.status

    def retry_after_seconds(self) -> float:
        """The longest wait any retryable link asks for."""
        waits = [f.retry_after_seconds() for f in self._retryable if f.rule.retry_after]
        return max(waits, default=super().retry_after_seconds())


@dataclass(frozen=True)
class HttpReply:
    """What we answer the caller: status, JSON body, headers; free of any web framework."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str]


def render_success(result: Result, request_id: str) -> HttpReply:
    """The 200 answer: one link done, an ignored event, or a batch (or dry run) that succeeded."""
    body: dict[str, Any]
    if isinstance(result, LinkResult):
        body = {
            "status": result.status,
            "tableLinkId": result.table_link_id,
            "leftRecord": result.left_record,
            "rightRecord": result.right_record,
        }
    elif isinstance(result, Ignored):
        body = {"status": "ignored"}
    elif result.dry_run:
        body = {
            "status": "valid",
            "dryRun": True,
            "results": list(map(render_result, result.results)),
        }
    else:
        body = {"status": "done", "results": list(map(render_result, result.results))}
    return HttpReply(200, {**body, "requestId": request_id}, {"X-Request-Id": request_id})


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
    failure = result.failure
    if failure is not None and result.status == "failed":
        body |= {
            "errorCode": failure.rule.error_code,
            "httpStatus": failure.status,
            "message": failure.message,
            **failure.body,
        }
    return body


def render_failure(failure: Failure, request_id: str) -> HttpReply:
    """The error body and headers for a failure, per its row of `RULES`."""
    rule = failure.rule
    body: dict[str, Any] = {
        "errorCode": rule.error_code,
        "message": failure.message,
        "requestId": request_id,
        **failure.body,
    }
    headers = {"X-Request-Id": request_id, **dict(rule.headers)}
    if rule.retry_after:
        headers["Retry-After"] = str(max(0, math.ceil(failure.retry_after_seconds())))
    return HttpReply(failure.status, body, headers)
