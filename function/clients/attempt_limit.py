"""A time limit on a whole HTTP attempt, not just on each read: past it, the attempt's socket is
shut down and the attempt reports it ran out of time (`limit`, and `GuardedAdapter` for the
connection pool). Why: docs/design.md.
"""

from __future__ import annotations

import contextlib
import contextvars
import heapq
import itertools
import math
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool


class Limit:
    """One attempt's time limit, and the connection it is using now."""

    def __init__(self, seconds: float) -> None:
        self.expires = time.monotonic() + seconds
        self.expired = False
        self._connection: _Guarded | None = None
        self._lock = threading.Lock()

    def use(self, connection: _Guarded) -> None:
        with self._lock:
            self._connection = connection
        connection.limit = self

    def release(self, connection: _Guarded) -> None:
        with self._lock:
            if self._connection is connection:
                self._connection = None

    def expire(self) -> None:
        """Shut the socket in use down (any read on it ends), if the attempt is still on it."""
        with self._lock:
            self.expired = True
            sock = getattr(self._connection, "sock", None)
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


class _Watchdog:
    """One thread for the whole process, sleeping until the next limit expires."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Limit]] = []
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None
        self._waking_at = math.inf  # when the thread wakes next, unless told otherwise

    def watch(self, limit: Limit) -> None:
        with self._wake:
            heapq.heappush(self._heap, (limit.expires, next(self._order), limit))
            if self._thread is None or not self._thread.is_alive():  # also after a fork
                self._thread = threading.Thread(
                    target=self._run, name="tulip-link-watchdog", daemon=True
                )
                self._thread.start()
            if limit.expires < self._waking_at:  # else it wakes in time anyway: no switch
                self._wake.notify()

    def forget(self, limit: Limit) -> None:
        with self._wake:
            self._heap = [entry for entry in self._heap if entry[2] is not limit]
            heapq.heapify(self._heap)

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._heap or self._heap[0][0] > time.monotonic():
                    self._waking_at = self._heap[0][0] if self._heap else math.inf
                    self._wake.wait(None if not self._heap else self._waking_at - time.monotonic())
                self._waking_at = -math.inf  # busy expiring: anyone may notify
                _, _, limit = heapq.heappop(self._heap)
            limit.expire()


_WATCHDOG = _Watchdog()
_current: contextvars.ContextVar[Limit | None] = contextvars.ContextVar(
    "tulip_link_attempt_limit", default=None
)


@contextlib.contextmanager
def limit(seconds: float) -> Iterator[Limit]:
    """Everything the block does on a guarded connection ends within `seconds`."""
    attempt = Limit(seconds)
    token = _current.set(attempt)
    _WATCHDOG.watch(attempt)
    try:
        yield attempt
    finally:
        _current.reset(token)
        _WATCHDOG.forget(attempt)


class _Guarded(HTTPConnection):
    """A connection that tells the attempt using it which socket to shut down."""

    limit: Limit | None = None

    def request(self, *args: Any, **kwargs: Any) -> None:
        attempt = _current.get()
        if attempt is not None:
            attempt.use(self)
        super().request(*args, **kwargs)


class _GuardedHTTPConnection(_Guarded):
    pass


class _GuardedHTTPSConnection(_Guarded, HTTPSConnection):
    pass


def _release(connection: _Guarded | None) -> None:
    if connection is not None and connection.limit is not None:
        connection.limit.release(connection)


class _GuardedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _GuardedHTTPConnection

    def _put_conn(self, conn: Any) -> None:
        _release(conn)
        super()._put_conn(conn)


class _GuardedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _GuardedHTTPSConnection

    def _put_conn(self, conn: Any) -> None:
        _release(conn)
        super()._put_conn(conn)


class GuardedAdapter(HTTPAdapter):
    """A requests adapter whose connections honour `limit`."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _GuardedHTTPPool,
            "https": _GuardedHTTPSPool,
        }
