"""Slack's request signing (v0): `X-Slack-Signature: v0=<hex HMAC-SHA256 of
"v0:{timestamp}:{body}">`, keyed with the app's signing secret, and `X-Slack-Request-Timestamp`,
held to `WEBHOOK_TOLERANCE_SECONDS`. A verified `url_verification` request is answered with its
challenge at the edge."""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass

from function.auth.common import (
    MISMATCH_HINT,
    Headers,
    Verify,
    any_equal,
    check_timestamp,
    required,
)
from function.model.errors import Unauthenticated

_SIGNATURE = re.compile(r"v0=([0-9a-fA-F]{64})")


def digest(secret: str, timestamp: str, body: bytes) -> bytes:
    """What Slack signs: `v0:{timestamp}:{body}`."""
    return hmac.digest(secret.encode(), f"v0:{timestamp}:".encode() + body, hashlib.sha256)


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """`v0=<hex>`: what Slack sends for `body` at `timestamp`."""
    return "v0=" + digest(secret, timestamp, body).hex()


@dataclass(frozen=True)
class Slack:
    """The scheme, with the tolerance its timestamp is held to."""

    tolerance: int

    def read(self, headers: Headers, now: float) -> Verify:
        """The signature and timestamp, checked for form and age."""
        timestamp = required(headers, "X-Slack-Request-Timestamp")
        check_timestamp(timestamp, now, self.tolerance)
        found = _SIGNATURE.fullmatch(required(headers, "X-Slack-Signature"))
        if found is None:
            raise Unauthenticated("X-Slack-Signature is not v0=<64 hex digits>")
        given = bytes.fromhex(found.group(1))

        def verify(body: bytes, secrets: list[str]) -> None:
            expected = [digest(s, timestamp, body) for s in secrets]
            if not any_equal(expected, [given]):
                raise Unauthenticated("the signature does not match", MISMATCH_HINT)

        return verify
