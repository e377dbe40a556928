"""Stripe's webhook signatures: `Stripe-Signature: t=<timestamp>,v1=<hex HMAC-SHA256 of
"{t}.{body}">` (several `v1` while a secret rolls; other schemes ignored), keyed with the whole
endpoint secret `whsec_...` as UTF-8 (not base64-decoded, unlike Standard Webhooks), the
timestamp held to `WEBHOOK_TOLERANCE_SECONDS`."""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass

from function.auth.common import MISMATCH_HINT, Headers, Verify, any_equal, check_timestamp
from function.model.errors import Unauthenticated

_HEX = re.compile(r"[0-9a-fA-F]{64}")


def digest(secret: str, timestamp: str, body: bytes) -> bytes:
    """What Stripe signs: `{timestamp}.{body}`."""
    return hmac.digest(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """The hex `v1` Stripe sends for `body` at `timestamp`."""
    return digest(secret, timestamp, body).hex()


@dataclass(frozen=True)
class Stripe:
    """The scheme, with the tolerance its timestamp is held to."""

    tolerance: int

    def read(self, headers: Headers, now: float) -> Verify:
        """The header's timestamp and `v1` signatures, checked for form and age."""
        value = headers.get("Stripe-Signature")
        if value is None:
            raise Unauthenticated("Stripe-Signature is missing")
        timestamps, signatures = [], []
        for item in value.split(","):
            name, equals, given = item.strip().partition("=")
            if not equals:
                raise Unauthenticated("Stripe-Signature has a malformed entry")
            if name == "t":
                timestamps.append(given)
            elif name == "v1":
                if not _HEX.fullmatch(given):
                    raise Unauthenticated("Stripe-Signature has a malformed v1 entry")
                signatures.append(bytes.fromhex(given))
        # Two `t=`: the header was sent twice (the server joined them with a comma).
        if len(timestamps) != 1:
            raise Unauthenticated("Stripe-Signature has no single timestamp")
        [timestamp] = timestamps
        check_timestamp(timestamp, now, self.tolerance)
        if not signatures:
            raise Unauthenticated("Stripe-Signature has no v1 signature")

        def verify(body: bytes, secrets: list[str]) -> None:
            expected = [digest(s, timestamp, body) for s in secrets]
            if not any_equal(expected, signatures):
                raise Unauthenticated("no signature matches", MISMATCH_HINT)

        return verify
