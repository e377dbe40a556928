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
    required,
    within_tolerance,
)
from function.model.errors import Unauthenticated

_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_SIGNATURE = re.compile(r"v0=([0-9a-fA-F]{64})")


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """`v0=<hex>`: what Slack sends for `body` at `timestamp`."""
    signed = f"v0:{timestamp}:".encode() + body
    return "v0=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Slack:
    """The scheme, with the tolerance its timestamp is held to."""

    tolerance: int

    def read(self, headers: Headers, now: float) -> Verify:
        """The signature and timestamp, checked for form and age."""
        timestamp = required(headers, "X-Slack-Request-Timestamp")
        if not _TIMESTAMP.fullmatch(timestamp):
            raise Unauthenticated("timestamp is not an integer")
        within_tolerance(int(timestamp), now, self.tolerance)
        found = _SIGNATURE.fullmatch(required(headers, "X-Slack-Signature"))
        if found is None:
            raise Unauthenticated("X-Slack-Signature is not v0=<64 hex digits>")
        given = bytes.fromhex(found.group(1))

        def verify(body: bytes, secrets: list[str]) -> None:
            expected = [
                bytes.fromhex(signature(s, timestamp, body).removeprefix("v0=")) for s in secrets
            ]
            if not any_equal(expected, [given]):
                raise Unauthenticated("the signature does not match", MISMATCH_HINT)

        return verify
