"""The status table: every way a request can end (`Outcome`), and what each means (`RULES`).

A row gives our HTTP status, the `errorCode`, the log event and severity, whether a
`Retry-After` goes with it, whether Tulip is tried again on it, and what becomes of a Pub/Sub
message that ends so: permanent (it can never succeed: dead-lettered at its first delivery),
retried until old (`TULIP_NOT_FOUND_RETRY_SECONDS`), or retried by Pub/Sub. Errors and results
name their outcome; the edge renders its row.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from function.logs import Event, Severity

DEFAULT_RETRY_AFTER_SECONDS = 5


class Outcome(enum.Enum):
    """Every way a request can end. Where two outcomes answer the same `errorCode`, the second
    is named `<errorCode>_<what differs>`, so a search for a logged `errorCode` finds both."""

    DONE = "done"
    VALID = "valid"
    QUEUED = "queued"
    IGNORED = "ignored"
    HANDSHAKE = "handshake"
    DUPLICATE = "duplicate"
    DEAD_LETTERED = "dead_lettered"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    ORIGIN_NOT_ALLOWED = "origin_not_allowed"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    REQUEST_TIMEOUT = "request_timeout"
    MALFORMED_REQUEST = "malformed_request"
    INVALID_PAYLOAD = "invalid_payload"
    QUEUE_UNAVAILABLE = "queue_unavailable"
    UNAUTHENTICATED = "unauthenticated"
    TULIP_REJECTED = "tulip_rejected"
    TULIP_REJECTED_NOT_FOUND = "tulip_rejected_not_found"
    TULIP_REJECTED_DELETED = "tulip_rejected_deleted"
    TULIP_AUTH_REJECTED = "tulip_auth_rejected"
    TULIP_RATE_LIMITED = "tulip_rate_limited"
    TULIP_UNAVAILABLE = "tulip_unavailable"
    TULIP_UNAVAILABLE_UNEXPECTED_STATUS = "tulip_unavailable_unexpected_status"
    TULIP_TIMEOUT = "tulip_timeout"
    CREDENTIALS_UNAVAILABLE = "credentials_unavailable"
    DEDUP_UNAVAILABLE = "dedup_unavailable"
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
    permanent: bool = False  # the same message can never succeed: dead-lettered at once
    retried_until_old: bool = False  # a message is dead-lettered once it is too old to wait on
    tulip_statuses: frozenset[int] = frozenset()  # Tulip answers that lead here
    retry_tulip: bool = False  # try Tulip again (within attempts and deadline)
    headers: tuple[tuple[str, str], ...] = ()  # fixed headers of the answer


RULES: Mapping[Outcome, Rule] = {
    Outcome.DONE: Rule(200, None, "link.done", "INFO"),
    # A dry run: the link could be made (nothing was linked).
    Outcome.VALID: Rule(200, None, "link.valid", "INFO"),
    # Queue mode: Pub/Sub confirmed every link; the events function makes the Tulip calls.
    Outcome.QUEUED: Rule(202, None, "link.queued", "INFO"),
    # No LINK_MAPPING rule applies to the event: acked, so a sender is not pushed to retry.
    Outcome.IGNORED: Rule(200, None, "link.ignored", "INFO"),
    # A sender's handshake answered (Slack's url_verification, the CloudEvents validation):
    # nothing linked, nothing queued.
    Outcome.HANDSHAKE: Rule(200, None, "webhook.handshake", "INFO"),
    # A delivery accepted before (DEDUP_DATABASE remembers it): nothing queued or linked again;
    # a 2xx, so that a sender that lost the first answer stops retrying.
    Outcome.DUPLICATE: Rule(200, None, "link.duplicate", "INFO"),
    # The events function: a message that needs a person is in the dead-letter topic, with its
    # reason (Pub/Sub confirmed it), so Pub/Sub is done with it. Its line is the refusal's.
    Outcome.DEAD_LETTERED: Rule(200, None, "link.rejected", "ERROR"),
    # The caller's request is wrong: retrying the same request cannot help.
    Outcome.METHOD_NOT_ALLOWED: Rule(
        405,
        "METHOD_NOT_ALLOWED",
        "link.rejected",
        "WARNING",
        permanent=True,
        headers=(("Allow", "POST"),),
    ),
    # A CloudEvents validation handshake from an origin WEBHOOK_ALLOWED_ORIGINS does not list.
    Outcome.ORIGIN_NOT_ALLOWED: Rule(
        403, "ORIGIN_NOT_ALLOWED", "link.rejected", "WARNING", permanent=True
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
    # The body did not arrive before the request's deadline: a slow or stalled sender. Sending
    # it again may well work.
    Outcome.REQUEST_TIMEOUT: Rule(408, "REQUEST_TIMEOUT", "link.rejected", "WARNING"),
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
    # arrive out of order), so a message is retried until it is TULIP_NOT_FOUND_RETRY_SECONDS old.
    Outcome.TULIP_REJECTED_NOT_FOUND: Rule(
        None,
        "TULIP_REJECTED",
        "link.rejected",
        "WARNING",
        retried_until_old=True,
        tulip_statuses=frozenset({404}),
    ),
    # A dry run: Tulip's GET found the table link, deleted (200 with deletedAt). A real run would
    # be refused for good, so permanent, unlike the 404 row: a deleted link does not come back by
    # waiting. 422, Tulip's documented "could not be processed" for the link call, is the closest
    # to what that real run would meet; Tulip answered 200, so there is no tulipStatus.
    Outcome.TULIP_REJECTED_DELETED: Rule(
        422, "TULIP_REJECTED", "link.rejected", "WARNING", permanent=True
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
    # Queue mode: Pub/Sub did not confirm every link in time (unreachable, denied, no topic);
    # or another instance is accepting the same delivery right now (DEDUP_DATABASE).
    Outcome.QUEUE_UNAVAILABLE: Rule(
        503, "QUEUE_UNAVAILABLE", "link.failed", "ERROR", retry_after=True
    ),
    # DEDUP_DATABASE could not be read or written: nothing is queued or linked unchecked.
    Outcome.DEDUP_UNAVAILABLE: Rule(
        503, "DEDUP_UNAVAILABLE", "link.failed", "ERROR", retry_after=True
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
