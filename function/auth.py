"""Inbound authentication: prove an HTTP request came from the configured sender (`WEBHOOK_AUTH`).

The secret comes from Secret Manager (`WEBHOOK_SECRET`, cached like the Tulip token) or, locally,
`WEBHOOK_SECRET_VALUE`; it may hold several secrets, one per line, any of which verifies. Every
failure is `Unauthenticated` (401, one generic message; the reason goes to the log line only).
Comparisons are constant-time; nothing here logs or returns a signature or a secret. The schemes:
docs/senders.md; why they are built so: docs/design.md.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import re
from collections.abc import Callable
from typing import Literal, Protocol, get_args

from function.clients.secret_manager import SecretCache
from function.model.errors import ConfigError, Unauthenticated
from function.timing import Clock, Deadline

SigningMode = Literal["standard-webhooks", "hmac-sha256", "token"]
AuthMode = Literal[SigningMode, "none"]
SIGNING_MODES: tuple[SigningMode, ...] = get_args(SigningMode)
WEBHOOK_AUTH_MODES: tuple[AuthMode, ...] = get_args(AuthMode)
DEFAULT_SIGNATURE_HEADER = "X-Hub-Signature-256"
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_HEX_SIGNATURE = re.compile(r"[0-9a-fA-F]{64}")


class Headers(Protocol):
    """What a verifier needs of the request headers: a value by name, case-insensitive."""

    def get(self, key: str, /) -> str | None: ...


# Logged (never answered) when a well-formed signature does not match: the usual causes.
MISMATCH_HINT = (
    "check that the body arrives byte for byte as it was signed (curl -d strips newlines: "
    "send files with --data-binary @file; a proxy must not re-encode the JSON) and that both "
    "sides hold the same secret (mid-rotation, the new one must be added here first)"
)
# Why a comma is refused where a header's syntax has none: see the module's docstring.
REPEATED = "is given more than once (a comma where none belongs)"


def secret_lines(value: str) -> list[str]:
    """The secrets in a secret value: one per line, trimmed, blank lines skipped."""
    return [line.strip() for line in value.splitlines() if line.strip()]


def standard_webhooks_key(secret: str) -> bytes:
    """The HMAC key of a Standard Webhooks secret (`whsec_` and base64, or base64 alone)."""
    encoded = secret.removeprefix("whsec_")
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if not key:
        raise ConfigError(
            "The webhook secret is not a Standard Webhooks secret (whsec_ followed by base64)"
        )
    return key


def standard_webhooks_digest(key: bytes, message_id: str, timestamp: str, body: bytes) -> bytes:
    """What Standard Webhooks v1 signs: `{id}.{timestamp}.{body}`, the timestamp as sent."""
    return hmac.digest(key, f"{message_id}.{timestamp}.".encode() + body, hashlib.sha256)


def verify_standard_webhooks(
    headers: Headers, body: bytes, keys: list[bytes], now: float, tolerance: int
) -> None:
    """Raise `Unauthenticated` unless the Standard Webhooks headers sign `body` with a key."""
    message_id = _one_of(headers, "webhook-id", "svix-id")
    timestamp_text = _one_of(headers, "webhook-timestamp", "svix-timestamp")
    signatures_text = _one_of(headers, "webhook-signature", "svix-signature", commas=True)
    if not _TIMESTAMP.fullmatch(timestamp_text):
        raise Unauthenticated("timestamp is not an integer")
    timestamp = int(timestamp_text)
    if abs(now - timestamp) > tolerance:
        raise Unauthenticated("timestamp is outside the tolerance")
    signatures = []
    for entry in signatures_text.split(" "):
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
    expected = [standard_webhooks_digest(k, message_id, timestamp_text, body) for k in keys]
    if not _any_equal(expected, signatures):
        raise Unauthenticated(
            "no signature matches",
            MISMATCH_HINT + ", and that webhook-id and webhook-timestamp are the signed ones",
        )


def verify_hmac_sha256(headers: Headers, body: bytes, keys: list[bytes], header: str) -> None:
    """Raise `Unauthenticated` unless `header` holds an HMAC-SHA256 of `body` with a key."""
    value = _single(headers, header)
    if value is None:
        raise Unauthenticated(f"{header} is missing")
    if value[:7].lower() == "sha256=":
        value = value[7:]
    if _HEX_SIGNATURE.fullmatch(value):
        given = bytes.fromhex(value)
    else:
        try:
            given = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise Unauthenticated(f"{header} is neither hex nor base64") from None
    expected = [hmac.digest(key, body, hashlib.sha256) for key in keys]
    if not _any_equal(expected, [given]):
        raise Unauthenticated("the signature does not match", MISMATCH_HINT)


def verify_token(headers: Headers, tokens: list[str]) -> None:
    """Raise `Unauthenticated` unless a bearer or `X-Webhook-Token` header holds a token."""
    presented = set()
    # A token is whatever the secret holds, commas included: a repeated header simply fails to
    # match (the hint says why it may have).
    authorization = headers.get("Authorization")
    if authorization is not None:
        scheme, _, credentials = authorization.partition(" ")
        if scheme.lower() != "bearer" or not credentials.strip():
            raise Unauthenticated("Authorization is not a bearer token")
        presented.add(credentials.strip())
    header_token = headers.get("X-Webhook-Token")
    if header_token is not None:
        presented.add(header_token.strip())
    if len(presented) != 1:
        raise Unauthenticated("no token, or two different tokens")
    given = presented.pop().encode()
    if not _any_equal([token.encode() for token in tokens], [given]):
        hint = (
            f"a header sent twice arrives joined with a comma: {REPEATED}"
            if b"," in given
            else None
        )
        raise Unauthenticated("the token does not match", hint)


class Authenticator:
    """Checks each HTTP request against the configured `WEBHOOK_AUTH` mode.

    The secret is read from Secret Manager through `cache` (`secret_name`, a full version name)
    or given as `secret_value` (local runs); a signing mode needs one of them.
    """

    def __init__(
        self,
        mode: AuthMode,
        *,
        cache: SecretCache,
        clock: Clock,
        secret_name: str | None = None,
        secret_value: str | None = None,
        tolerance: int = 300,
        signature_header: str = DEFAULT_SIGNATURE_HEADER,
    ) -> None:
        self._cache = cache
        self._clock = clock
        self._secret_name = secret_name
        self._secret_value = secret_value
        self._tolerance = tolerance
        self._signature_header = signature_header
        verifiers: dict[SigningMode, Callable[[Headers, bytes, list[str]], None]] = {
            "standard-webhooks": self._standard_webhooks,
            "hmac-sha256": self._hmac_sha256,
            "token": lambda headers, body, secrets: verify_token(headers, secrets),
        }
        self._mode = mode
        self._verify = None if mode == "none" else verifiers[mode]
        assert mode == "none" or secret_name or secret_value is not None, "checked by config"

    @property
    def checks_callers(self) -> bool:
        """Whether this function proves its callers itself (False: `none`, behind Cloud Run IAM)."""
        return self._verify is not None

    def delivery_id(self, headers: Headers) -> str | None:
        """The sender's own id for this delivery, where the mode has one (Standard Webhooks'
        `webhook-id`, which the signature covers)."""
        if self._mode != "standard-webhooks":
            return None
        return headers.get("webhook-id") or headers.get("svix-id")

    def check(self, headers: Headers, body: bytes, deadline: Deadline) -> None:
        """Raise `Unauthenticated` unless the request proves its sender (over the raw `body`)."""
        if self._verify is not None:
            self._verify(headers, body, self._current_secrets(deadline))

    def _current_secrets(self, deadline: Deadline) -> list[str]:
        if self._secret_name is not None:
            value = self._cache.get(self._secret_name, deadline)
        else:
            assert self._secret_value is not None
            value = self._secret_value
        secrets = secret_lines(value)
        if not secrets:
            raise ConfigError("The webhook secret is empty")
        return secrets

    def _standard_webhooks(self, headers: Headers, body: bytes, secrets: list[str]) -> None:
        keys = [standard_webhooks_key(secret) for secret in secrets]
        verify_standard_webhooks(headers, body, keys, self._clock.wall(), self._tolerance)

    def _hmac_sha256(self, headers: Headers, body: bytes, secrets: list[str]) -> None:
        keys = [secret.encode() for secret in secrets]
        verify_hmac_sha256(headers, body, keys, self._signature_header)


def _single(headers: Headers, name: str) -> str | None:
    """A header whose syntax has no comma, given at most once."""
    value = headers.get(name)
    if value is not None and "," in value:
        raise Unauthenticated(f"{name} {REPEATED}")
    return value


def _one_of(headers: Headers, name: str, alias: str, *, commas: bool = False) -> str:
    """The header under `name` or `alias` (under both: the same value). Unless its syntax has
    commas (`commas`), a comma in it means it was given more than once."""
    read = headers.get if commas else functools.partial(_single, headers)
    values = {v for v in (read(name), read(alias)) if v is not None}
    if len(values) != 1:
        raise Unauthenticated(f"{name} is missing, or disagrees with {alias}")
    return values.pop()


def _any_equal(expected: list[bytes], given: list[bytes]) -> bool:
    # Every pair is compared, in constant time, so timing tells nothing about which one matched.
    matched = False
    for candidate in expected:
        for presented in given:
            matched |= hmac.compare_digest(candidate, presented)
    return matched
