"""Secrets: Secret Manager reads with a per-instance cache, and the Tulip API token they hold.

- `SecretManager` reads one secret version. Its client is created on first use, once per process
  (the library costs about half a second to import, which local runs with `TULIP_API_KEY` never
  pay). The library's own retry (a minute on UNAVAILABLE) is replaced by ours: at most three
  tries, each bounded by the request's deadline, so a Secret Manager outage answers 503 in time.
- `SecretCache` keeps each value for `TULIP_CREDENTIALS_TTL_SECONDS`. Concurrent requests for an
  expired value wait for one read instead of all reading (Secret Manager is billed per access).
- `TulipCredentials` turns the secret's text into an `ApiToken`, and drops the cached token when
  Tulip answers 401, so a rotated token takes effect without a redeploy.

A failure to read is `CredentialsUnavailable` (503, retry later); a value that is not a token is
`ConfigError` (500: an operator must fix the secret). Neither message echoes a secret value.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .config import ConfigError, Settings
from .outcomes import Failure, Outcome
from .timing import Backoff, Clock, Deadline

ATTEMPT_TIMEOUT_SECONDS = 5.0
MAX_ATTEMPTS = 3


class CredentialsUnavailable(Failure):
    """Secret Manager could not be read (unreachable, denied, not found)."""

    outcome = Outcome.CREDENTIALS_UNAVAILABLE


@dataclass(frozen=True)
class ApiToken:
    """A Tulip API key and secret, for HTTP Basic auth. Its repr shows neither."""

    api_key: str
    api_secret: str

    def __repr__(self) -> str:
        return "ApiToken(<redacted>)"


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
    if not (_printable(key) and _printable(secret)) or ":" in key:  # type: ignore[operator]
        raise ConfigError(
            f"{origin} is not a usable Tulip API token: expected JSON "
            '{"apiKey": ..., "apiSecret": ...}, "apikey.2_...:secret" or "Basic <base64>", '
            "both parts printable ASCII without spaces, and no ':' in the key"
        )
    return ApiToken(key, secret)  # type: ignore[arg-type]


def _printable(part: object) -> bool:
    # Basic auth sends bytes; anything outside printable ASCII would be mangled or refused.
    return isinstance(part, str) and part != "" and all(0x20 < ord(c) < 0x7F for c in part)


class SecretManager:
    """Reads secret versions from Google Secret Manager, or from a local emulator."""

    def __init__(self, *, emulator_host: str | None, clock: Clock, backoff: Backoff) -> None:
        self._emulator_host = emulator_host
        self._clock = clock
        self._backoff = backoff
        self._client: Any = None
        self._client_lock = threading.Lock()

    def read(self, name: str, deadline: Deadline) -> str:
        """The text of secret version `name` (projects/P/secrets/S/versions/V)."""
        from google.api_core import exceptions as api
        from google.auth import exceptions as auth

        retryable = (
            api.ServiceUnavailable,
            api.DeadlineExceeded,
            api.InternalServerError,
            api.TooManyRequests,
            auth.TransportError,
        )
        attempt = 0
        while True:
            attempt += 1
            remaining = deadline.remaining()
            if remaining <= 0:
                raise CredentialsUnavailable(
                    f"Secret Manager did not answer for {name} within the request's deadline"
                )
            try:
                response = self._get_client().access_secret_version(
                    name=name, retry=None, timeout=min(ATTEMPT_TIMEOUT_SECONDS, remaining)
                )
                break
            except retryable as error:
                delay = self._backoff.delay(attempt)
                if attempt >= MAX_ATTEMPTS or not deadline.allows_wait(delay):
                    raise CredentialsUnavailable(
                        f"Secret Manager is unreachable for {name} ({type(error).__name__})"
                    ) from None
                self._clock.sleep(delay)
            except api.NotFound:
                raise CredentialsUnavailable(f"Secret Manager has no secret {name}") from None
            except api.PermissionDenied:
                raise CredentialsUnavailable(
                    f"Secret Manager denied access to {name}: the function's service account "
                    "needs roles/secretmanager.secretAccessor on it"
                ) from None
            except (api.GoogleAPICallError, auth.GoogleAuthError) as error:
                raise CredentialsUnavailable(
                    f"Secret Manager refused to read {name} ({type(error).__name__})"
                ) from None
        try:
            return response.payload.data.decode("utf-8")
        except UnicodeDecodeError:
            raise ConfigError(f"The secret {name} is not UTF-8 text") from None

    def _get_client(self) -> Any:
        with self._client_lock:
            if self._client is None:
                self._client = self._create_client()
            return self._client

    def _create_client(self) -> Any:
        from google.auth import exceptions as auth
        from google.cloud import secretmanager

        if self._emulator_host:
            import grpc
            from google.auth.credentials import AnonymousCredentials
            from google.cloud.secretmanager_v1.services.secret_manager_service.transports import (
                SecretManagerServiceGrpcTransport,
            )

            transport = SecretManagerServiceGrpcTransport(
                channel=grpc.insecure_channel(self._emulator_host),
                credentials=AnonymousCredentials(),
            )
            return secretmanager.SecretManagerServiceClient(transport=transport)
        try:
            return secretmanager.SecretManagerServiceClient()
        except auth.DefaultCredentialsError:
            raise CredentialsUnavailable(
                "No Google credentials to read Secret Manager with (Application Default "
                "Credentials are missing)"
            ) from None


@dataclass
class _Entry:
    value: str
    expires: float


class SecretCache:
    """Secret values kept for `ttl` seconds; one read at a time per secret."""

    def __init__(self, read: Callable[[str, Deadline], str], ttl: float, clock: Clock) -> None:
        self._read = read
        self._ttl = ttl
        self._clock = clock
        self._entries: dict[str, _Entry] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def get(self, name: str, deadline: Deadline) -> str:
        """The value of `name`, read again when older than the TTL."""
        if (value := self._fresh(name)) is not None:
            return value
        with self._guard:
            lock = self._locks.setdefault(name, threading.Lock())
        if not lock.acquire(timeout=deadline.remaining()):
            raise CredentialsUnavailable(
                f"Timed out waiting for another request's Secret Manager read of {name}"
            )
        try:
            if (value := self._fresh(name)) is not None:
                return value
            value = self._read(name, deadline)
            self._entries[name] = _Entry(value, self._clock.monotonic() + self._ttl)
            return value
        finally:
            lock.release()

    def invalidate(self, name: str, is_stale: Callable[[str], bool]) -> None:
        """Drop the cached value of `name` if `is_stale` says so.

        The test matters under concurrency: when two requests are refused with the same old
        value, the second must not throw away the new value the first one just read.
        """
        with self._guard:
            entry = self._entries.get(name)
            if entry is not None and is_stale(entry.value):
                del self._entries[name]

    def _fresh(self, name: str) -> str | None:
        entry = self._entries.get(name)
        if entry is not None and self._clock.monotonic() < entry.expires:
            return entry.value
        return None


class TulipCredentials:
    """The Tulip API token: from Secret Manager through the cache, or from the environment."""

    def __init__(self, settings: Settings, cache: SecretCache) -> None:
        self._cache = cache
        self._secret = None
        self._static = None
        if settings.credentials_secret is not None:
            self._secret = settings.credentials_secret_version
        else:
            assert settings.api_key is not None and settings.api_secret is not None
            self._static = make_token(
                settings.api_key.get_secret_value(),
                settings.api_secret.get_secret_value(),
                "TULIP_API_KEY/TULIP_API_SECRET",
            )

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
