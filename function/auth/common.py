"""What every scheme shares: the headers a verifier reads, the secrets a value holds, constant-time
comparison, and the words its refusals use (logged, never answered)."""

from __future__ import annotations

import functools
import hmac
import re
from collections.abc import Callable
from typing import Protocol

from function.model.errors import Unauthenticated


class Headers(Protocol):
    """What a verifier needs of the request headers: a value by name, case-insensitive."""

    def get(self, key: str, /) -> str | None: ...


# The second phase of a check: the body and the current secrets in; `Unauthenticated` out.
Verify = Callable[[bytes, list[str]], None]


class Scheme(Protocol):
    """A `WEBHOOK_AUTH` mode: reads the request's credentials from its headers, checked for
    form (and a signed timestamp for age) before the body is read: the check's first phase."""

    def read(self, headers: Headers, now: float, /) -> Verify: ...


# Logged (never answered) when a well-formed signature does not match: the usual causes.
MISMATCH_HINT = (
    "check that the body arrives byte for byte as it was signed (curl -d strips newlines: "
    "send files with --data-binary @file; a proxy must not re-encode the JSON) and that both "
    "sides hold the same secret (mid-rotation, the new one must be added here first)"
)
# A server joins a header sent twice into one value with commas: where its syntax has none, a
# comma means it was repeated.
REPEATED = "is given more than once (a comma where none belongs)"


def secret_lines(value: str) -> list[str]:
    """The secrets in a secret value: one per line, trimmed, blank lines skipped."""
    return [line.strip() for line in value.splitlines() if line.strip()]


def single(headers: Headers, name: str) -> str | None:
    """A header whose syntax has no comma, given at most once."""
    value = headers.get(name)
    if value is not None and "," in value:
        raise Unauthenticated(f"{name} {REPEATED}")
    return value


def required(headers: Headers, name: str) -> str:
    """`single`, and present."""
    value = single(headers, name)
    if value is None:
        raise Unauthenticated(f"{name} is missing")
    return value


def one_of(headers: Headers, name: str, alias: str, *, commas: bool = False) -> str:
    """The header under `name` or `alias` (under both: the same value). Unless its syntax has
    commas (`commas`), a comma in it means it was given more than once."""
    read = headers.get if commas else functools.partial(single, headers)
    values = {v for v in (read(name), read(alias)) if v is not None}
    if len(values) != 1:
        raise Unauthenticated(f"{name} is missing, or disagrees with {alias}")
    return values.pop()


_TIMESTAMP = re.compile(r"[0-9]{1,12}")


def check_timestamp(timestamp: str, now: float, tolerance: int) -> None:
    """A signed timestamp, as sent: whole seconds since the epoch, at most `tolerance` seconds
    from now, past or future."""
    if not _TIMESTAMP.fullmatch(timestamp):
        raise Unauthenticated("timestamp is not an integer")
    if abs(now - int(timestamp)) > tolerance:
        raise Unauthenticated("timestamp is outside the tolerance")


def authorization(value: str, scheme: str) -> str | None:
    """The credentials of an `Authorization` value in `scheme` (`Basic`, `Bearer`; any letter
    case), trimmed; None when it is another scheme or holds none."""
    given, _, credentials = value.partition(" ")
    if given.lower() != scheme.lower():
        return None
    return credentials.strip() or None


def any_equal(expected: list[bytes], given: list[bytes]) -> bool:
    """Whether any presented value equals any expected one. Every pair is compared, in constant
    time, so timing tells nothing about which one matched."""
    matched = False
    for candidate in expected:
        for presented in given:
            matched |= hmac.compare_digest(candidate, presented)
    return matched
