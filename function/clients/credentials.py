"""The Tulip API token: read from Secret Manager through the cache (`TulipCredentials`), or given
(`TULIP_API_KEY`/`TULIP_API_SECRET`, local runs); held for one request's links (`RequestToken`);
read again after a 401. A value that is not a token is `ConfigError`; no message shows it.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
from dataclasses import dataclass
from typing import TypeGuard

from function.clients.secret_manager import SecretCache
from function.model.errors import ConfigError
from function.timing import Deadline


@dataclass(frozen=True)
class ApiToken:
    """A Tulip API key and secret, for HTTP Basic auth. Its repr shows neither."""

    api_key: str
    api_secret: str

    def __repr__(self) -> str:
        return "ApiToken(<redacted>)"

    @property
    def basic(self) -> str:
        """The `Authorization` header value: `Basic base64(key:secret)`."""
        return "Basic " + base64.b64encode(f"{self.api_key}:{self.api_secret}".encode()).decode()


def parse_token(value: str, origin: str) -> ApiToken:
    """Read a token written as JSON `{"apiKey", "apiSecret"}`, `key:secret` or `Basic <base64>`.

    `origin` names where the value came from, for the error message (which never shows it).
    """
    text = value.strip()
    key = secret = None
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if isinstance(data, dict):
            key, secret = data.get("apiKey"), data.get("apiSecret")
    elif text[:6].lower() == "basic ":
        try:
            pair = base64.b64decode(text[6:].strip(), validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            pair = ""
        key, _, secret = pair.partition(":")
    else:
        key, _, secret = text.partition(":")
    return make_token(key, secret, origin)


def make_token(key: object, secret: object, origin: str) -> ApiToken:
    """An `ApiToken` from its two parts, refused (`ConfigError`) unless both are usable."""
    if _printable(key) and _printable(secret) and ":" not in key:
        return ApiToken(key, secret)
    raise ConfigError(
        f"{origin} is not a usable Tulip API token: expected JSON "
        '{"apiKey": ..., "apiSecret": ...}, "apikey.2_...:secret" or "Basic <base64>", '
        "both parts printable ASCII without spaces, and no ':' in the key"
    )


def _printable(part: object) -> TypeGuard[str]:
    # Basic auth sends bytes; anything outside printable ASCII would be mangled or refused.
    return isinstance(part, str) and part != "" and all(0x20 < ord(c) < 0x7F for c in part)


class TulipCredentials:
    """The Tulip API token: read from the secret version `secret` (a full name) through the
    cache, or the `token` given."""

    def __init__(
        self, cache: SecretCache, *, secret: str | None = None, token: ApiToken | None = None
    ) -> None:
        assert (secret is None) != (token is None), "a secret or a token, not both"
        self._cache = cache
        self._secret = secret
        self._static = token

    def get(self, deadline: Deadline) -> ApiToken:
        """The token to call Tulip with."""
        if self._static is not None:
            return self._static
        assert self._secret is not None
        return parse_token(self._cache.get(self._secret, deadline), f"The secret {self._secret}")

    def refresh(self, rejected: ApiToken, deadline: Deadline) -> ApiToken:
        """Tulip refused `rejected` (401): read the token again, in case it was rotated."""
        if self._secret is not None:
            origin = f"The secret {self._secret}"
            self._cache.invalidate(self._secret, lambda raw: parse_token(raw, origin) == rejected)
        return self.get(deadline)


class RequestToken:
    """The token for one request: read once (before any call), shared by all its links.

    After a 401 the first link to see it reads the token again; links refused with the same old
    token then get the new one instead of reading again each.
    """

    def __init__(self, credentials: TulipCredentials, deadline: Deadline) -> None:
        self._credentials = credentials
        self._lock = threading.Lock()
        self._token = credentials.get(deadline)

    def get(self, deadline: Deadline) -> ApiToken:
        """The request's token."""
        return self._token

    def refresh(self, rejected: ApiToken, deadline: Deadline) -> ApiToken:
        """Tulip refused `rejected` (401): the token read again, once per rotation."""
        with self._lock:
            if self._token == rejected:
                self._token = self._credentials.refresh(rejected, deadline)
            return self._token
