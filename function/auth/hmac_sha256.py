"""An HMAC-SHA256 of the raw body (GitHub, Shopify, Jira and most home-grown senders), keyed with
the secret's UTF-8 bytes, in one header (`WEBHOOK_SIGNATURE_HEADER`), as 64 hex digits or
base64, optionally after `sha256=`. No timestamp: a captured request can be sent again."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from dataclasses import dataclass

from function.auth.common import MISMATCH_HINT, Headers, Verify, any_equal, required
from function.model.errors import Unauthenticated

DEFAULT_SIGNATURE_HEADER = "X-Hub-Signature-256"
_HEX_SIGNATURE = re.compile(r"[0-9a-fA-F]{64}")


def hex_digest(secret: bytes, body: bytes) -> str:
    """The hex HMAC-SHA256 of a body."""
    return hmac.new(secret, body, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class HmacSha256:
    """The scheme, with the header the signature comes in."""

    header: str = DEFAULT_SIGNATURE_HEADER

    def read(self, headers: Headers, now: float) -> Verify:
        """The signature, checked for form."""
        value = required(headers, self.header)
        if value[:7].lower() == "sha256=":
            value = value[7:]
        if _HEX_SIGNATURE.fullmatch(value):
            given = bytes.fromhex(value)
        else:
            try:
                given = base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                raise Unauthenticated(f"{self.header} is neither hex nor base64") from None

        def verify(body: bytes, secrets: list[str]) -> None:
            expected = [hmac.digest(s.encode(), body, hashlib.sha256) for s in secrets]
            if not any_equal(expected, [given]):
                raise Unauthenticated("the signature does not match", MISMATCH_HINT)

        return verify
