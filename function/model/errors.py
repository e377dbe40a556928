"""Every exception the package raises, in one place.

A request that ends without a link raises a `Failure` where the reason is known; the edge
renders it in one place (`edge.answers`), by its row of `RULES`. Each class names its usual outcome;
`outcome=` overrides it where one class covers several rows (the Tulip client).

    Failure                      any request that ends without a link (a bug: INTERNAL)
    ├── ConfigError              a setting or a stored secret is unusable       MISCONFIGURED
    ├── CredentialsUnavailable   Secret Manager could not be read               CREDENTIALS_UNAVAILABLE
    ├── QueueUnavailable         Pub/Sub did not confirm a link in time, or     QUEUE_UNAVAILABLE
    │                            another instance is accepting the delivery
    ├── DedupUnavailable         DEDUP_DATABASE could not be read or written    DEDUP_UNAVAILABLE
    ├── MethodNotAllowed         not POST                                       METHOD_NOT_ALLOWED
    ├── OriginNotAllowed         a CloudEvents handshake from an unlisted origin ORIGIN_NOT_ALLOWED
    ├── UnsupportedMediaType     the body is neither JSON nor a form            UNSUPPORTED_MEDIA_TYPE
    ├── PayloadTooLarge          over MAX_BODY_BYTES                            PAYLOAD_TOO_LARGE
    ├── BodyTooSlow              the body did not arrive before the deadline    REQUEST_TIMEOUT
    ├── Unauthenticated          the caller did not prove who it is             UNAUTHENTICATED
    ├── MalformedRequest         not a JSON object, or a broken Pub/Sub wrapping MALFORMED_REQUEST
    ├── InvalidPayload           the fields are wrong; `problems` lists them    INVALID_PAYLOAD
    ├── TulipError               Tulip did not link: its answer, or none        TULIP_* (by answer)
    ├── TableLinkDeleted         a dry run found the table link deleted          TULIP_REJECTED (422)
    └── NotAttempted             a batch's link found no time left to start     TULIP_TIMEOUT

    MappingError (ValueError)    LINK_MAPPING is unusable; read as a ConfigError on every request

`body` holds extra, credential-free fields for the error body; `log` extra fields for the log
line only. No message here, or built by a caller, may hold a secret.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypedDict

from function.model.status_table import DEFAULT_RETRY_AFTER_SECONDS, RULES, Outcome, Rule


class FieldProblem(TypedDict):
    """One invalid field, as the 422 body lists it."""

    field: str
    problem: str


class Failure(Exception):
    """A request that ends without a link, raised where the reason is known."""

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


class ConfigError(Failure):
    """A setting is missing or invalid (or a secret holds something unusable): every request is
    refused until an operator fixes it. The message names the setting, never a secret value."""

    outcome = Outcome.MISCONFIGURED


class CredentialsUnavailable(Failure):
    """Secret Manager could not be read (unreachable, denied, not found)."""

    outcome = Outcome.CREDENTIALS_UNAVAILABLE


class QueueUnavailable(Failure):
    """Queue mode: Pub/Sub did not confirm a link (unreachable, denied, no topic, too slow); or
    another instance is accepting the same delivery right now."""

    outcome = Outcome.QUEUE_UNAVAILABLE


class DedupUnavailable(Failure):
    """`DEDUP_DATABASE` (Firestore) could not be read or written: the message says why."""

    outcome = Outcome.DEDUP_UNAVAILABLE


class MethodNotAllowed(Failure):
    """Only POST links anything."""

    outcome = Outcome.METHOD_NOT_ALLOWED


class OriginNotAllowed(Failure):
    """A CloudEvents validation handshake from an origin `WEBHOOK_ALLOWED_ORIGINS` does not list:
    the answer carries no `WebHook-Allowed-Origin`, so the sender does not deliver."""

    outcome = Outcome.ORIGIN_NOT_ALLOWED


class UnsupportedMediaType(Failure):
    """The body is declared as neither JSON nor a form."""

    outcome = Outcome.UNSUPPORTED_MEDIA_TYPE


class PayloadTooLarge(Failure):
    """The body (or a Pub/Sub message's data) is over `MAX_BODY_BYTES`."""

    outcome = Outcome.PAYLOAD_TOO_LARGE

    def __init__(self, limit: int) -> None:
        super().__init__(f"The payload is larger than MAX_BODY_BYTES ({limit} bytes)")


class BodyTooSlow(Failure):
    """The body did not arrive in full before the request's deadline."""

    outcome = Outcome.REQUEST_TIMEOUT

    def __init__(self, received: int) -> None:
        super().__init__(
            f"The body did not arrive in time ({received} bytes received before the deadline); "
            "nothing was linked"
        )


# Answered for every authentication failure, so a caller learns nothing of which part failed.
UNAUTHENTICATED_MESSAGE = "The request could not be authenticated"


class Unauthenticated(Failure):
    """The caller did not prove who it is. `reason` (and `hint`) go to the log line only."""

    outcome = Outcome.UNAUTHENTICATED

    def __init__(self, reason: str, hint: str | None = None) -> None:
        super().__init__(UNAUTHENTICATED_MESSAGE, log={"reason": reason, "hint": hint})


class MalformedRequest(Failure):
    """The body is not a JSON object, or a Pub/Sub wrapping around it is broken."""

    outcome = Outcome.MALFORMED_REQUEST


class InvalidPayload(Failure):
    """The JSON object is fine, its fields are not; `problems` lists every one found. The answer
    names the first `LISTED_PROBLEMS` and counts the rest (`moreFields`), so a refusal stays
    smaller than the request that caused it."""

    outcome = Outcome.INVALID_PAYLOAD
    LISTED_PROBLEMS = 50

    def __init__(self, problems: list[FieldProblem]) -> None:
        listed, more = problems[: self.LISTED_PROBLEMS], len(problems) - self.LISTED_PROBLEMS
        summary = "; ".join(f"{p['field']} {p['problem']}" for p in listed)
        body: dict[str, Any] = {"fields": listed}
        if more > 0:
            summary += f"; and {more} more"
            body["moreFields"] = more
        super().__init__(f"The request's fields are invalid: {summary}", body=body)
        self.problems = problems


class TulipError(Failure):
    """Tulip did not link: its answer, a connection error or a timeout (see `outcome`).

    `tulip_status` is Tulip's last status (None when it never answered), `retry_after` its
    `Retry-After` in seconds (None when it gave none), `attempts` as counted against
    `TULIP_MAX_ATTEMPTS` (the extra call after a 401 is not one).
    """

    def __init__(
        self,
        message: str,
        *,
        outcome: Outcome,
        attempts: int,
        tulip_status: int | None = None,
        retry_after: float | None = None,
        body: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(
            message,
            outcome=outcome,
            body=body,
            log={
                "tulipStatus": tulip_status,
                "attempts": attempts,
                "tulipErrorUniqueID": (body or {}).get("tulipErrorUniqueID"),
            },
        )
        self.tulip_status = tulip_status
        self.retry_after = retry_after
        self.attempts = attempts

    @property
    def status(self) -> int:
        """Ours, or Tulip's own where the rule passes it through."""
        if self.rule.status is None and self.tulip_status is not None:
            return self.tulip_status
        return super().status

    def retry_after_seconds(self) -> float:
        """Tulip's `Retry-After` when it gave one, else ours."""
        if self.retry_after is not None:
            return self.retry_after
        return super().retry_after_seconds()


class TableLinkDeleted(Failure):
    """A dry run: Tulip described the table link as deleted; a real run would be refused."""

    outcome = Outcome.TULIP_REJECTED_DELETED

    def __init__(self, table_link_id: str, deleted_at: str, deleted_by: str | None) -> None:
        by = f" by {deleted_by}" if deleted_by else ""
        super().__init__(
            f"The table link {table_link_id} was deleted in Tulip at {deleted_at}{by}: a real "
            "run would be refused; use a table link that exists",
            body={"deletedAt": deleted_at},
        )


class NotAttempted(Failure):
    """The request's deadline passed (or would have, waiting out a rate limit) before this link
    of a batch could start; it counts as a timeout."""

    outcome = Outcome.TULIP_TIMEOUT

    def __init__(self) -> None:
        super().__init__("The request's deadline came before this link could be tried")


class MappingError(ValueError):
    """`LINK_MAPPING` is not a usable mapping; the message names the key at fault."""
