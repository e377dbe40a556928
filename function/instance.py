"""Process lifetime: what one instance builds once from its environment and shares between requests.

An instance (a serving process) has one `LinkService` (settings, secret cache, Tulip connection
pool) and, for the HTTP entry point only, one `Authenticator`. Each is built on first use, so
that the CloudEvent entry point never reads the webhook settings, and a bad setting is reported
by the request that needs it. `current()` is the instance; `reset()` starts a new one (tests;
`clock=` runs it on a fake clock). This is the only module-level state in the package.

Cold start (`prepare_process`, called when `main.py` is imported). On Cloud Functions the first
request would otherwise also wait for the Secret Manager library's import (half a second), the
secret reads and a TLS handshake with Tulip. functions-framework imports `main.py` in
gunicorn's master process, then forks the worker that serves: threads do not survive a fork
and gRPC channels must not cross one. So the master only imports the library (the worker
inherits it), and each forked worker starts the reads and the first Tulip connection in a
thread of its own at once; the first request finds them done, or waits for the read in progress
rather than reading again. A failure there is logged once (`instance.warm_up_failed`) and the
first request reads and reports as it always did. Local runs with `TULIP_API_KEY` (no secret in
Secret Manager) start nothing.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from typing import Generic, TypeVar

from . import logs, secret_manager
from .auth import Authenticator
from .config import ConfigError, load_settings, load_webhook_settings
from .service import LinkService
from .timing import SYSTEM_CLOCK, Clock

# The settings that name a secret in Secret Manager; without any, nothing is warmed up.
_SECRET_SETTINGS = ("TULIP_CREDENTIALS_SECRET", "WEBHOOK_SECRET")

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


class Instance:
    """The long-lived objects of one serving process."""

    def __init__(self, clock: Clock) -> None:
        self._service = Once(lambda: LinkService(load_settings(os.environ), clock=clock))
        self._authenticator = Once(self._build_authenticator)

    def service(self) -> LinkService:
        """The core, with the settings every entry point needs."""
        return self._service.get()

    def authenticator(self) -> Authenticator:
        """How HTTP callers are checked (`WEBHOOK_AUTH`), sharing the service's secret cache."""
        return self._authenticator.get()

    def _build_authenticator(self) -> Authenticator:
        core = self.service()
        return Authenticator(load_webhook_settings(os.environ), core.secrets, core.clock)

    def warm_up(self) -> None:
        """Read the secrets and connect to Tulip now, ahead of the first request."""
        self.service().warm_up()
        if os.environ.get("WEBHOOK_SECRET", "").strip():
            self.authenticator().warm_up(self.service().deadline())


_current = Instance(SYSTEM_CLOCK)
_prepared = False


def current() -> Instance:
    """This process's instance."""
    return _current


def reset(clock: Clock = SYSTEM_CLOCK) -> None:
    """Forget everything built, so the next request reads the environment again."""
    global _current
    _current = Instance(clock)


def uses_secret_manager(environ: Mapping[str, str]) -> bool:
    """Whether any setting names a secret in Secret Manager (so there is something to warm)."""
    return any(environ.get(name, "").strip() for name in _SECRET_SETTINGS)


def prepare_process() -> None:
    """At import, in gunicorn's master: preload the Secret Manager library and have every
    forked worker warm itself up. Once per process; never raises."""
    global _prepared
    if _prepared or not uses_secret_manager(os.environ):
        return
    _prepared = True
    try:
        secret_manager.preload()
    except ImportError as error:  # the first request reports it, as it always has
        logs.emit("WARNING", "instance.warm_up_failed", f"Could not preload: {error}")
        return
    os.register_at_fork(after_in_child=_start_warm_up)


def _start_warm_up() -> None:
    threading.Thread(target=_warm_up, name="tulip-link-warm-up", daemon=True).start()


def _warm_up() -> None:
    try:
        current().warm_up()
    except Exception as error:  # noqa: BLE001 - logged once; the first request reports it
        logs.emit(
            "WARNING",
            "instance.warm_up_failed",
            f"Warming up failed ({type(error).__name__}: {error}); the first request will "
            "read the secrets and connect itself",
        )
