"""The one place an instance (a serving process) builds its long-lived objects, from its settings.

Each entry point takes what it needs in one piece, `webhook_function()` or `events_function()`,
built on first use and shared by every request: the events function never reads the webhook
settings, direct mode never imports the Pub/Sub library, and a bad setting is refused by every
request that needs it, the same way (`Once`). `reset()` starts a new instance (tests; `clock=`),
closing the old one's clients; a serving process closes them as it exits.
"""

from __future__ import annotations

import atexit
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from function.auth import Authenticator
from function.clients.credentials import TulipCredentials
from function.clients.pubsub import Publisher
from function.clients.secret_manager import SecretCache, SecretManager
from function.clients.tulip import TulipClient
from function.config import Settings, WebhookSettings, load_settings, load_webhook_settings
from function.core.intake import Intake
from function.core.service import LinkService
from function.model.errors import ConfigError
from function.timing import SYSTEM_CLOCK, Backoff, Clock, Deadline

_T = TypeVar("_T")


class Once(Generic[_T]):
    """A value built on first use. A `ConfigError` is remembered too: every later call raises it
    again without re-reading, until the instance is replaced."""

    def __init__(self, build: Callable[[], _T]) -> None:
        self._build = build
        self._lock = threading.Lock()
        self._value: _T | None = None
        self._error: str | None = None

    def get(self) -> _T:
        """The value, built now if this is the first call."""
        with self._lock:
            if self._value is None and self._error is None:
                try:
                    self._value = self._build()
                except ConfigError as error:
                    self._error = error.message
            if self._error is not None:
                raise ConfigError(self._error)
            assert self._value is not None
            return self._value

    def built(self) -> _T | None:
        """The value if it was built, without building it."""
        with self._lock:
            return self._value


@dataclass(frozen=True)
class EventsFunction:
    """What the events function needs (Pub/Sub push, and Eventarc)."""

    settings: Settings
    service: LinkService
    new_deadline: Callable[[], Deadline]


@dataclass(frozen=True)
class WebhookFunction:
    """What a webhook function needs; `intake` only in queue mode."""

    settings: Settings
    webhook: WebhookSettings
    authenticator: Authenticator
    service: LinkService
    intake: Intake | None
    new_deadline: Callable[[], Deadline]


@dataclass(frozen=True)
class Clients:
    """The clients every entry point shares."""

    secret_manager: SecretManager
    secrets: SecretCache
    credentials: TulipCredentials
    tulip: TulipClient


class Instance:
    """The long-lived objects of one serving process."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._settings = Once(lambda: load_settings(os.environ))
        self._webhook_settings = Once(lambda: load_webhook_settings(os.environ))
        self._clients = Once(self._build_clients)
        self._service = Once(self._build_service)
        self._publisher = Once(self._build_publisher)
        self._events_function = Once(self._build_events_function)
        self._webhook_function = Once(self._build_webhook_function)

    def events_function(self) -> EventsFunction:
        """The events function's objects."""
        return self._events_function.get()

    def webhook_function(self) -> WebhookFunction:
        """A webhook function's objects."""
        return self._webhook_function.get()

    def clients(self) -> Clients:
        """The shared clients (built by either function)."""
        return self._clients.get()

    def close(self) -> None:
        """Close every client built (channels, connection pools, the publisher): the one place a
        process, or a test, shuts them down."""
        if (publisher := self._publisher.built()) is not None:
            publisher.close()
        if (clients := self._clients.built()) is not None:
            clients.secret_manager.close()
            clients.tulip.close()

    def _deadline(self) -> Deadline:
        return Deadline(self._clock, self._settings.get().deadline)

    def _build_clients(self) -> Clients:
        settings = self._settings.get()
        backoff = Backoff()
        manager = SecretManager(
            emulator_host=settings.secret_manager_emulator_host, clock=self._clock, backoff=backoff
        )
        secrets = SecretCache(manager.read, settings.secret_cache_ttl, self._clock)
        credentials = TulipCredentials(
            secrets, secret=settings.credentials_secret_version, token=settings.api_token()
        )
        tulip = TulipClient(
            base_url=settings.tulip_base_url,
            workspace_id=settings.workspace_id,
            timeout=settings.timeout,
            max_attempts=settings.max_attempts,
            clock=self._clock,
            backoff=backoff,
        )
        return Clients(manager, secrets, credentials, tulip)

    def _build_service(self) -> LinkService:
        settings, clients = self._settings.get(), self._clients.get()
        return LinkService(
            policy=settings.policy,
            mapping=settings.link_mapping,
            credentials=clients.credentials,
            tulip=clients.tulip,
            batch_concurrency=settings.batch_concurrency,
            clock=self._clock,
        )

    def _build_publisher(self) -> Publisher:
        topic = self._webhook_settings.get().topic_name
        assert topic is not None, "the settings require a topic in queue mode"
        return Publisher(topic)

    def _build_events_function(self) -> EventsFunction:
        return EventsFunction(self._settings.get(), self._service.get(), self._deadline)

    def _build_webhook_function(self) -> WebhookFunction:
        settings, webhook = self._settings.get(), self._webhook_settings.get()
        intake = None
        if webhook.delivery == "queue":
            intake = Intake(
                self._service.get(), self._publisher.get(), webhook.publish_timeout, webhook.sender
            )
        return WebhookFunction(
            settings,
            webhook,
            authenticator(webhook, self._clients.get().secrets, self._clock),
            self._service.get(),
            intake,
            self._deadline,
        )


def authenticator(webhook: WebhookSettings, cache: SecretCache, clock: Clock) -> Authenticator:
    """The `Authenticator` the webhook settings describe, reading its secret through `cache`."""
    assert webhook.mode is not None, "the settings refuse an unset mode"
    return Authenticator(
        webhook.mode,
        cache=cache,
        clock=clock,
        secret_name=webhook.secret_version,
        secret_value=webhook.secret_value.get_secret_value() if webhook.secret_value else None,
        tolerance=webhook.tolerance,
        signature_header=webhook.signature_header,
    )


_current = Instance(SYSTEM_CLOCK)


def current() -> Instance:
    """This process's instance."""
    return _current


def reset(clock: Clock = SYSTEM_CLOCK) -> None:
    """Close and forget everything built, so the next request reads the environment again."""
    global _current
    previous, _current = _current, Instance(clock)
    previous.close()


# A serving process closes its clients as it exits (gunicorn's worker exits through sys.exit).
atexit.register(lambda: _current.close())
