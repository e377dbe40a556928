"""Standard Webhooks v1 (Svix and its peers, GitLab's signing token): an HMAC-SHA256 of
`{id}.{timestamp}.{body}`, keyed with the base64 part of a `whsec_...` secret, in
`webhook-signature` (a space-separated list of `v1,<base64>`); `webhook-id` and
`webhook-timestamp` beside it (or their `svix-*` spellings)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass

from function.auth.common import (
    MISMATCH_HINT,
    REPEATED,
    Headers,
    Verify,
    any_equal,
    check_timestamp,
    one_of,
)
from function.model.errors import ConfigError, Unauthenticated


def key(secret: str) -> bytes:
    """The HMAC key of a Standard Webhooks secret (`whsec_` and base64, or base64 alone)."""
    encoded = secret.removeprefix("whsec_")
    try:
        decoded = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        decoded = b""
    if not decoded:
        raise ConfigError(
            "The webhook secret is not a Standard Webhooks secret (whsec_ followed by base64)"
        )
    return decoded


def digest(signing_key: bytes, message_id: str, timestamp: str, body: bytes) -> bytes:
    """What Standard Webhooks v1 signs: `{id}.{timestamp}.{body}`, the timestamp as sent."""
    return hmac.digest(signing_key, f"{message_id}.{timestamp}.".encode() + body, hashlib.sha256)


@dataclass(frozen=True)
class StandardWebhooks:
    """The scheme, with the tolerance its timestamp is held to."""

    tolerance: int

    def read(self, headers: Headers, now: float) -> Verify:
        """The headers, checked for form and for the timestamp's age."""
        message_id = one_of(headers, "webhook-id", "svix-id")
        timestamp = one_of(headers, "webhook-timestamp", "svix-timestamp")
        listed = one_of(headers, "webhook-signature", "svix-signature", commas=True)
        check_timestamp(timestamp, now, self.tolerance)
        signatures = []
        for entry in listed.split(" "):
            version, comma, encoded = entry.partition(",")
            if "," in encoded:
                raise Unauthenticated(f"webhook-signature {REPEATED}")
            if not (version and comma and encoded):
                raise Unauthenticated("signature list has a malformed entry")
            if version != "v1":
                continue  # another scheme's signature: not ours to judge
            try:
                signatures.append(base64.b64decode(encoded, validate=True))
            except (binascii.Error, ValueError):
                raise Unauthenticated("signature list has a malformed entry") from None
        if not signatures:
            raise Unauthenticated("no v1 signature")

        def verify(body: bytes, secrets: list[str]) -> None:
            expected = [digest(key(s), message_id, timestamp, body) for s in secrets]
            if not any_equal(expected, signatures):
                raise Unauthenticated(
                    "no signature matches",
                    MISMATCH_HINT
                    + ", and that webhook-id and webhook-timestamp are the signed ones",
                )

        return verify
