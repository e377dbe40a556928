"""Process lifetime: what one instance builds once from its environment and shares between requests.

An instance (a serving process) has one `LinkService` (settings, secret cache, Tulip connection
pool) and, for the HTTP entry point only, one `Authenticator` and, in queue mode, one `Intake`
(with its Pub/Sub publisher). Each is built on first use, so that the CloudEvent entry point never
reads the webhook settings, direct mode never imports the Pub/Sub library, and a bad setting is
reported by the request that needs it. `current()` is the instance; `reset()` starts a new one (tests;
`clock=` runs it on a fake clock) and closes the old one's clients.

Module-level state in the package: the instance here, the watchdog's one thread and its queue of
limits (`watchdog`), and the log scope and write lock (`logs`). Nothing else outlives a request.
"""

from __future__ import annotations

import atexit
import os
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

from .auth import Authenticator
from .config import WebhookSettings, load_settings, load_webhook_settings
from .errors import ConfigError
from .intake import Intake
from .pubsub import Publisher
from .secret_manager import SecretCache
from .service import LinkService
from .timing import SYSTEM_CLOCK, Clock

_T = TypeVar("_T")


class Once(Generic[_T]):
    """A value built on first use.

    A `ConfigError` is remembered too: every later call raises it again without re-reading, so
    an instance with bad settings refuses every request the same way until it is redeployed.
    """

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


class Instance:
    """The long-lived objects of one serving process."""

    def __init__(self, clock: Clock) -> None:
        self._service = Once(lambda: LinkService(load_settings(os.environ), clock=clock))
        self._webhook = Once(lambda: load_webhook_settings(os.environ))
        self._authenticator = Once(self._build_authenticator)
        self._publisher = Once(self._build_publisher)
        self._intake = Once(self._build_intake)

    def service(self) -> LinkService:
        """The core, with the settings every entry point needs."""
        return self._service.get()

    def authenticator(self) -> Authenticator:
        """How HTTP callers are checked (`WEBHOOK_AUTH`), sharing the service's secret cache."""
        return self._authenticator.get()

    def webhook(self) -> WebhookSettings:
        """The HTTP entry point's own settings (`WEBHOOK_*`)."""
        return self._webhook.get()

    def intake(self) -> Intake | None:
        """Queue mode's intake (`WEBHOOK_DELIVERY=queue`); None in direct mode."""
        if self._webhook.get().delivery != "queue":
            return None
        return self._intake.get()

    def close(self) -> None:
        """Close every client built (channels, connection pools, the publisher): the one place a
        process, or a test, shuts them down."""
        if (publisher := self._publisher.built()) is not None:
            publisher.close()
        if (service := self._service.built()) is not None:
            service.close()

    def _build_authenticator(self) -> Authenticator:
        core = self.service()
        return authenticator(self._webhook.get(), core.secrets, core.clock)

    def _build_publisher(self) -> Publisher:
        topic = self._webhook.get().topic_name
        assert topic is not None, "the settings require a topic in queue mode"
        return Publisher(topic)

    def _build_intake(self) -> Intake:
        webhook = self._webhook.get()
        return Intake(
            self.service(), self._publisher.get(), webhook.publish_timeout, webhook.sender
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
