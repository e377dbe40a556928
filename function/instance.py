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

from function import logs
from function.auth.authenticator import Authenticator
from function.clients.credentials import TulipCredentials
from function.clients.firestore import DeliveryStore
from function.clients.pubsub import Publisher
from function.clients.secret_manager import SecretCache, SecretManager
from function.clients.tulip import TulipClient
from function.config import (
    Settings,
    WebhookSettings,
    load_events_settings,
    load_settings,
    load_webhook_settings,
)
from function.core.acceptance import Acceptance
from function.core.dead_letters import DeadLetters
from function.core.deliveries import Deliveries
from function.core.intake import Intake
from function.core.service import LinkService
from function.model.errors import ConfigError
from function.model.status_table import DEFAULT_RETRY_AFTER_SECONDS
from function.timing import SYSTEM_CLOCK, Backoff, Clock, Deadline

_T = TypeVar("_T")


class Once(Generic[_T]):
    """A value built on first use. A `ConfigError` is remembered too: every later call raises it
    again without re-reading, until the instance is replaced."""

    def __init__(self, build: Callable[[], _T]) -> None:
        self._build = build
        self._lock = threading.Lock()
        self._built: list[_T] = []  # the value, once built (which may be None)
        self._error: str | None = None

    def get(self) -> _T:
        """The value, built now if this is the first call."""
        with self._lock:
            if not self._built and self._error is None:
                try:
                    self._built.append(self._build())
                except ConfigError as error:
                    self._error = error.message
            if self._error is not None:
                raise ConfigError(self._error)
            return self._built[0]

    def built(self) -> _T | None:
        """The value if it was built, without building it."""
        with self._lock:
            return self._built[0] if self._built else None


@dataclass(frozen=True)
class EventsFunction:
    """What the events function needs (Pub/Sub push, and Eventarc)."""

    settings: Settings
    service: LinkService
    dead_letters: DeadLetters
    new_deadline: Callable[[], Deadline]


@dataclass(frozen=True)
class WebhookFunction:
    """What a webhook function needs."""

    settings: Settings
    webhook: WebhookSettings
    authenticator: Authenticator
    acceptance: Acceptance
    new_deadline: Callable[[], Deadline]


@dataclass(frozen=True)
class Clients:
    """The clients both functions share."""

    secret_manager: SecretManager
    secrets: SecretCache
    credentials: TulipCredentials | None  # None: no Tulip token configured


# One delivery of the events function lasts at most DELIVERY_SECONDS (or TULIP_DEADLINE_SECONDS,
# if shorter) and waits at most Tulip's default Retry-After between tries: a longer wait, or an
# outage, is Pub/Sub's backoff, which costs no instance time. A short rate limit is waited out.
DELIVERY_SECONDS = 10.0
DELIVERY_LONGEST_WAIT_SECONDS = float(DEFAULT_RETRY_AFTER_SECONDS)


class Instance:
    """The long-lived objects of one serving process."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._settings = Once(lambda: load_settings(os.environ))
        self._webhook_settings = Once(lambda: load_webhook_settings(os.environ))
        self._events_settings = Once(lambda: load_events_settings(os.environ))
        self._clients = Once(self._build_clients)
        self._webhook_service = Once(lambda: self._build_service(events=False))
        self._events_service = Once(lambda: self._build_service(events=True))
        self._publisher = Once(self._build_publisher)
        self._deliveries = Once(self._build_deliveries)
        self._dead_letter_publisher = Once(self._build_dead_letter_publisher)
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
        for publisher in (self._publisher.built(), self._dead_letter_publisher.built()):
            if publisher is not None:
                publisher.close()
        for service in (self._webhook_service.built(), self._events_service.built()):
            if service is not None:
                service.close()
        if (deliveries := self._deliveries.built()) is not None:
            deliveries.close()
        if (clients := self._clients.built()) is not None:
            clients.secret_manager.close()

    def _deadline(self) -> Deadline:
        return Deadline(self._clock, self._settings.get().deadline)

    def _delivery_deadline(self) -> Deadline:
        return Deadline(self._clock, min(self._settings.get().deadline, DELIVERY_SECONDS))

    def _build_clients(self) -> Clients:
        settings = self._settings.get()
        manager = SecretManager(
            emulator_host=settings.secret_manager_emulator_host,
            clock=self._clock,
            backoff=Backoff(),
        )
        secrets = SecretCache(manager.read, settings.secret_cache_ttl, self._clock)
        credentials = None
        if settings.has_token:
            credentials = TulipCredentials(
                secrets, secret=settings.credentials_secret_version, token=settings.api_token()
            )
        return Clients(manager, secrets, credentials)

    def _build_service(self, *, events: bool) -> LinkService:
        settings = self._settings.get()
        tulip = TulipClient(
            base_url=settings.tulip_base_url,
            workspace_id=settings.workspace_id,
            timeout=settings.timeout,
            max_attempts=settings.max_attempts,
            longest_wait=DELIVERY_LONGEST_WAIT_SECONDS if events else None,
            clock=self._clock,
            backoff=Backoff(),
        )
        return LinkService(
            policy=settings.policy,
            mapping=settings.link_mapping,
            credentials=self._clients.get().credentials,
            tulip=tulip,
            batch_concurrency=settings.batch_concurrency,
            clock=self._clock,
        )

    def _build_publisher(self) -> Publisher:
        topic = self._webhook_settings.get().topic_name
        assert topic is not None, "the settings require a topic in queue mode"
        return Publisher(topic)

    def _build_dead_letter_publisher(self) -> Publisher | None:
        topic = self._events_settings.get().dead_letter_topic_name
        if topic is None:
            logs.emit(
                "WARNING",
                "settings.warning",
                "DEAD_LETTER_TOPIC is not set: a message that can never succeed is answered "
                "non-2xx like any failure, so it reaches the dead letters only once Pub/Sub gives "
                "up after its retries (max_delivery_attempts)",
            )
            return None
        return Publisher(topic)

    def _build_events_function(self) -> EventsFunction:
        self._settings.get().require_token()
        dead_letters = DeadLetters(
            self._dead_letter_publisher.get(),
            not_found_retry=self._events_settings.get().not_found_retry,
            clock=self._clock,
        )
        return EventsFunction(
            self._settings.get(), self._events_service.get(), dead_letters, self._delivery_deadline
        )

    def _build_webhook_function(self) -> WebhookFunction:
        settings, webhook = self._settings.get(), self._webhook_settings.get()
        if webhook.delivery == "direct":
            settings.require_token()
        intake = None
        if webhook.delivery == "queue":
            intake = Intake(self._publisher.get(), webhook.publish_timeout, webhook.sender)
        acceptance = Acceptance(self._webhook_service.get(), intake, self._deliveries.get())
        return WebhookFunction(
            settings,
            webhook,
            authenticator(webhook, self._clients.get().secrets, self._clock),
            acceptance,
            self._deadline,
        )

    def _build_deliveries(self) -> Deliveries | None:
        webhook = self._webhook_settings.get()
        if webhook.dedup_database is None:
            return None
        return Deliveries(
            DeliveryStore(webhook.dedup_database),
            window=webhook.dedup_window,
            # A claim older than the request deadline was left by an instance that died.
            stale_after=self._settings.get().deadline,
            sender=webhook.sender,
            clock=self._clock,
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
        token_header=webhook.token_header,
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
