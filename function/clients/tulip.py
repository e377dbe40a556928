"""The Tulip Tables API client: link, unlink, and (for a dry run) describe a table link.

Each call is tried again on the answers the status table marks `retry_tulip`, within
`TULIP_MAX_ATTEMPTS` and the request's deadline, and each attempt ends within its own time limit
(`attempt_limit`); a 401 reads the token again once. The call on the wire: docs/api.md, "How
Tulip is called"; why: docs/design.md.
"""

from __future__ import annotations

import email.utils
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol
from urllib.parse import quote

import requests
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict

from function import __version__, logs
from function.clients import attempt_limit
from function.clients.attempt_limit import GuardedAdapter
from function.clients.credentials import ApiToken
from function.model.errors import TulipError
from function.model.link import Link
from function.model.status_table import (
    DEFAULT_RETRY_AFTER_SECONDS,
    RULES,
    Outcome,
    outcome_for_tulip_status,
)
from function.timing import Backoff, Clock, Deadline

USER_AGENT = f"tulip-link/{__version__}"
# Connections kept alive; a busier moment opens more, closed after use. Above what an instance
# uses at once as deployed: 4 requests at a time, each up to TULIP_BATCH_CONCURRENCY (4) calls.
POOL_SIZE = 64
BODY_LIMIT = 64 * 1024  # the most we read of an answer's body
DETAILS_LIMIT = 500
_ERROR_UNIQUE_ID = re.compile(r"[a-zA-Z0-9+/]{1,200}")
_DELTA_SECONDS = re.compile(r"[0-9]{1,10}")


# Told how long Tulip asked us to wait (seconds) each time it answers 429.
RateLimited = Callable[[float], None]


class TokenSource(Protocol):
    """Where the client gets its token, and a fresh one after a 401."""

    def get(self, deadline: Deadline) -> ApiToken: ...

    def refresh(self, rejected: ApiToken, deadline: Deadline) -> ApiToken: ...


@dataclass(frozen=True)
class Accepted:
    """Tulip accepted the call: its status, after how many attempts, and for a GET of a table
    link its `leftTableId` and `rightTableId`, and when and by whom it was deleted, if it was."""

    status: int
    attempts: int
    tables: dict[str, str] = field(default_factory=dict)
    deleted_at: str | None = None
    deleted_by: str | None = None


@dataclass(frozen=True)
class _AttemptResult:
    """The result of one attempt: its outcome, and what Tulip said if it answered."""

    outcome: Outcome
    message: str
    status: int | None = None
    retry_after: float | None = None
    body: dict[str, Any] | None = None


def new_adapter() -> HTTPAdapter:
    """A connection pool fit to be shared by every thread of the process, whose attempts end
    within their time limit however slowly an answer arrives."""
    return GuardedAdapter(pool_connections=2, pool_maxsize=POOL_SIZE, max_retries=0)


def _prepared(
    method: Literal["GET", "PUT"], url: str, body: bytes | None, token: ApiToken
) -> requests.PreparedRequest:
    """The request, prepared by hand (see the module's docstring). `url` is built from
    validated parts only, so it needs none of requests' URL repair."""
    prepared = requests.PreparedRequest()
    prepared.method = method
    prepared.url = url
    prepared.headers = CaseInsensitiveDict(
        {"User-Agent": USER_AGENT, "Accept": "application/json", "Authorization": token.basic}
    )
    if body is not None:
        prepared.headers["Content-Type"] = "application/json"
        prepared.headers["Content-Length"] = str(len(body))
    prepared.body = body
    return prepared


class TulipClient:
    """Links and unlinks records through Tulip's table links API, trying each call at most
    `max_attempts` times and waiting at most `longest_wait` seconds (None: any) between tries."""

    def __init__(
        self,
        *,
        base_url: str,
        workspace_id: str | None,
        timeout: float,
        max_attempts: int,
        clock: Clock,
        backoff: Backoff,
        longest_wait: float | None = None,
        adapter: HTTPAdapter | None = None,
    ) -> None:
        prefix = f"{base_url}/api/v3"
        if workspace_id is not None:
            prefix += f"/w/{quote(workspace_id, safe='')}"
        self._prefix = prefix
        self._timeout = timeout
        self._max_attempts = max_attempts
        self._clock = clock
        self._backoff = backoff
        self._longest_wait = longest_wait  # a longer wait makes the last answer final
        self._adapter = adapter or new_adapter()

    def close(self) -> None:
        """Close the pooled connections (a later call opens new ones)."""
        self._adapter.close()

    def change_link(
        self,
        link: Link,
        *,
        tokens: TokenSource,
        deadline: Deadline,
        on_rate_limited: RateLimited | None = None,
    ) -> Accepted:
        """PUT the link or unlink; returns on any 2xx, raises `TulipError` otherwise."""
        url = f"{self._prefix}/tableLinks/{link.table_link_id}/{link.action}"
        records = {"leftRecord": link.left_record, "rightRecord": link.right_record}
        return self._call(
            "PUT", url, json.dumps(records).encode(), tokens, deadline, on_rate_limited
        )

    def describe_link(
        self,
        *,
        table_link_id: str,
        tokens: TokenSource,
        deadline: Deadline,
        on_rate_limited: RateLimited | None = None,
    ) -> Accepted:
        """GET the table link (a dry run's proof that the token works and the link exists);
        `Accepted.tables` holds its table ids when Tulip gave them."""
        url = f"{self._prefix}/tableLinks/{table_link_id}"
        return self._call("GET", url, None, tokens, deadline, on_rate_limited)

    def _call(
        self,
        method: Literal["GET", "PUT"],
        url: str,
        body: bytes | None,
        tokens: TokenSource,
        deadline: Deadline,
        on_rate_limited: RateLimited | None,
    ) -> Accepted:
        token = tokens.get(deadline)
        attempts = 0  # as counted against TULIP_MAX_ATTEMPTS: the call after a 401 is not one
        refreshed = False
        while True:
            if deadline.remaining() <= 0:
                raise TulipError(
                    "No attempt to call Tulip could start within the request's deadline",
                    outcome=Outcome.TULIP_TIMEOUT,
                    attempts=attempts,
                )
            tried = self._attempt(method, url, body, token, deadline)
            if tried.status == 401 and not refreshed:
                # Maybe the token was rotated: read it again and try once more, uncounted.
                refreshed = True
                token = tokens.refresh(token, deadline)
                logs.emit(
                    "INFO",
                    "tulip.retry",
                    "Tulip refused the token; retrying with a fresh read",
                    tulipStatus=401,
                )
                continue
            attempts += 1
            if tried.outcome is Outcome.DONE:
                assert tried.status is not None
                described = tried.body or {}
                return Accepted(
                    tried.status,
                    attempts,
                    _tables(described),
                    deleted_at=_text(described.get("deletedAt")),
                    deleted_by=_text(described.get("deletedBy")),
                )
            if on_rate_limited is not None and tried.outcome is Outcome.TULIP_RATE_LIMITED:
                on_rate_limited(tried.retry_after or DEFAULT_RETRY_AFTER_SECONDS)
            delay = self._wait_before_retry(tried, attempts, deadline)
            if delay is None:
                raise self._error(tried, token, attempts)
            logs.emit(
                "WARNING",
                "tulip.retry",
                f"Tulip attempt {attempts} failed ({tried.message}); retrying in {delay:.1f} s",
                tulipStatus=tried.status,
                attempt=attempts,
            )
            self._clock.sleep(delay)

    def _attempt(
        self,
        method: Literal["GET", "PUT"],
        url: str,
        body: bytes | None,
        token: ApiToken,
        deadline: Deadline,
    ) -> _AttemptResult:
        timeout = min(self._timeout, deadline.remaining())
        # The whole attempt, not each read, ends within `timeout` (attempt_limit.py).
        with attempt_limit.limit(timeout) as attempt:
            try:
                response = self._adapter.send(
                    _prepared(method, url, body, token), timeout=(timeout, timeout), stream=True
                )
            except requests.Timeout:
                return _late(timeout)
            except requests.RequestException as error:
                if attempt.expired:
                    return _late(timeout)
                return _AttemptResult(
                    Outcome.TULIP_UNAVAILABLE, f"Could not reach Tulip ({type(error).__name__})"
                )
            with response:
                # Read the body even when it is not needed: an answer closed unread takes its
                # connection with it, and the next call would pay a new TCP and TLS handshake.
                try:
                    raw = _read_capped(response)
                except requests.RequestException:
                    if attempt.expired:
                        return _late(timeout)
                    raw = None  # a body that broke off: the status is still Tulip's answer
        outcome = outcome_for_tulip_status(response.status_code)
        message = f"Tulip answered {response.status_code}"
        if outcome is Outcome.DONE:
            # The body of a link's 204 is never parsed; a GET's is the link's description.
            described = _json_object(raw) if method == "GET" else None
            return _AttemptResult(outcome, message, response.status_code, body=described)
        return _AttemptResult(
            outcome,
            message,
            status=response.status_code,
            retry_after=parse_retry_after(response.headers.get("Retry-After"), self._clock),
            body=_error_fields(_json_object(raw) or {}),
        )

    def _wait_before_retry(
        self, failure: _AttemptResult, attempts: int, deadline: Deadline
    ) -> float | None:
        """Seconds to wait before trying again, or None when this answer is final."""
        if not RULES[failure.outcome].retry_tulip or attempts >= self._max_attempts:
            return None
        delay = failure.retry_after
        if delay is None:
            delay = self._backoff.delay(attempts)
        if self._longest_wait is not None and delay > self._longest_wait:
            return None
        return delay if deadline.allows_wait(delay) else None

    @staticmethod
    def _error(failure: _AttemptResult, token: ApiToken, attempts: int) -> TulipError:
        body: dict[str, Any] = {}
        if failure.status is not None:
            body["tulipStatus"] = failure.status
        for key, value in (failure.body or {}).items():
            body[key] = _mask(value, token) if isinstance(value, str) else value
        message = failure.message
        if "tulipErrorCode" in body:
            message += f": {body['tulipErrorCode']}"
        if "details" in body:
            message += f" ({body['details']})"
        return TulipError(
            message,
            outcome=failure.outcome,
            tulip_status=failure.status,
            retry_after=failure.retry_after,
            attempts=attempts,
            body=body,
        )


def parse_retry_after(value: str | None, clock: Clock) -> float | None:
    """Seconds from a `Retry-After` header: delta-seconds or an HTTP date; None if absent/bad."""
    if value is None:
        return None
    value = value.strip()
    if _DELTA_SECONDS.fullmatch(value):
        return float(value)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        return None
    return max(0.0, moment.timestamp() - clock.wall())


def _mask(text: str, token: ApiToken) -> str:
    """`text` with our credentials, in any form we sent them, replaced."""
    header = token.basic.removeprefix("Basic ")
    for secret in (header, token.api_secret, token.api_key):
        text = text.replace(secret, "[redacted]")
    return text


def _late(timeout: float) -> _AttemptResult:
    return _AttemptResult(
        Outcome.TULIP_TIMEOUT, f"Tulip's answer did not arrive within {timeout:.1f} s"
    )


def _read_capped(response: requests.Response) -> bytes | None:
    """The whole body, or None when it is larger than `BODY_LIMIT` (then the rest is left
    unread and the connection closed). A body that breaks off raises `RequestException`."""
    chunks = []
    size = 0
    for chunk in response.iter_content(16 * 1024):
        size += len(chunk)
        if size > BODY_LIMIT:
            return None  # larger than anything Tulip sends us
        chunks.append(chunk)
    return b"".join(chunks)


def _json_object(raw: bytes | None) -> dict[str, Any] | None:
    """`raw` as a JSON object; None if it is anything else."""
    try:
        data = json.loads(raw) if raw else None
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _error_fields(data: Mapping[str, Any]) -> dict[str, Any]:
    """Tulip's `{errorCode, errorUniqueID, details}`, under our names, checked and capped."""
    fields: dict[str, Any] = {}
    if isinstance(code := data.get("errorCode"), str):
        fields["tulipErrorCode"] = code[:100]
    unique_id = data.get("errorUniqueID")
    if isinstance(unique_id, str) and _ERROR_UNIQUE_ID.fullmatch(unique_id):
        fields["tulipErrorUniqueID"] = unique_id
    if isinstance(details := data.get("details"), str):
        fields["details"] = details[:DETAILS_LIMIT]
    return fields


def _text(value: object) -> str | None:
    """A string field of Tulip's answer, capped; None when absent, null or not a string."""
    return value[:200] if isinstance(value, str) and value else None


def _tables(described: Mapping[str, Any]) -> dict[str, str]:
    """A table link's `leftTableId` and `rightTableId`, those that are strings."""
    return {
        k: v[:200]
        for k in ("leftTableId", "rightTableId")
        if isinstance(v := described.get(k), str)
    }
