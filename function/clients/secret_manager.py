"""Secret Manager: reading secret versions (`SecretManager`), and the per-instance cache in front
of it (`SecretCache`), for the Tulip token and the webhook secret.

A failure to read is `CredentialsUnavailable` (503, retry later); a value that is not UTF-8 is
`ConfigError` (500). No message echoes a secret value. Why our own retry, and the cache's
rules: docs/design.md.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from function.clients.local_grpc import local_channel
from function.model.errors import ConfigError, CredentialsUnavailable
from function.timing import Backoff, Clock, Deadline

READ_TRY_TIMEOUT_SECONDS = 5.0
READ_TRIES = 3


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
        tries = 0
        while True:
            tries += 1
            remaining = deadline.remaining()
            if remaining <= 0:
                raise CredentialsUnavailable(
                    f"Secret Manager did not answer for {name} within the request's deadline"
                )
            try:
                response = self._get_client().access_secret_version(
                    name=name, retry=None, timeout=min(READ_TRY_TIMEOUT_SECONDS, remaining)
                )
                break
            except retryable as error:
                delay = self._backoff.delay(tries)
                if tries >= READ_TRIES or not deadline.allows_wait(delay):
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
        data: bytes = response.payload.data
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise ConfigError(f"The secret {name} is not UTF-8 text") from None

    def close(self) -> None:
        """Close the client's connections, if it was created; a later read creates it again."""
        with self._client_lock:
            client, self._client = self._client, None
        if client is not None:
            client.transport.close()

    def _get_client(self) -> Any:
        with self._client_lock:
            if self._client is None:
                self._client = self._create_client()
            return self._client

    def _create_client(self) -> Any:
        from google.auth import exceptions as auth
        from google.cloud import secretmanager

        if self._emulator_host:
            from google.auth.credentials import AnonymousCredentials
            from google.cloud.secretmanager_v1.services.secret_manager_service.transports import (
                SecretManagerServiceGrpcTransport,
            )

            transport = SecretManagerServiceGrpcTransport(
                channel=local_channel(self._emulator_host),
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
