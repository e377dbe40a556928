"""Test doubles for what lies outside this machine, run for real on loopback (the Secret Manager
one is `devtools.simulators.secret_manager`, shared with `make bench`).

- `TulipDouble`: a threaded HTTP server on 127.0.0.1 that records each request and answers
  from a script (status, headers, body), for tests that need real sockets.
- `SimulatorDouble`: devtools' Tulip simulator served on 127.0.0.1, for tests that need a Tulip
  with state (links that exist, cardinality, idempotent calls).
- `PushEndpoint`: what a Pub/Sub push subscription delivers to, recording each envelope.
- `FakeClock`: time that moves only when told to, or when something sleeps.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from devtools.simulators.tulip import DEFAULT_SEED, TulipSimulator, make_server
from function.timing import Clock


class FakeClock:
    """A clock for tests: `sleep` records the wait and moves time forward instantly."""

    def __init__(self) -> None:
        self.now = 1_000.0
        self.wall_now = 1_800_000_000.0
        self.sleeps: list[float] = []

    def advance(self, seconds: float) -> None:
        self.now += seconds
        self.wall_now += seconds

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.advance(seconds)

    def clock(self) -> Clock:
        return Clock(monotonic=lambda: self.now, wall=lambda: self.wall_now, sleep=self.sleep)


@dataclass
class Recorded:
    """One request the Tulip double received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Scripted:
    """One answer of the Tulip double."""

    status: int = 204
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    close: bool = False


class TulipDouble:
    """A real HTTP server on 127.0.0.1 that records requests and plays scripted answers.

    With no script left it answers 204. `respond` may be replaced to compute an answer from the
    request (for concurrency tests). `connections` counts the TCP connections it accepted, `open`
    those its client has not closed yet; a
    scripted answer with `close=True` closes its connection after answering.
    """

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.connections = 0
        self.open = 0
        self.script: list[Scripted] = []
        self.respond: Callable[[Recorded], Scripted] | None = None
        self._lock = threading.Lock()
        double = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_PUT(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                recorded = Recorded(self.command, self.path, dict(self.headers), body)
                with double._lock:
                    double.requests.append(recorded)
                    answer = double.script.pop(0) if double.script else None
                if answer is None:
                    answer = double.respond(recorded) if double.respond else Scripted()
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.body)))
                if answer.close:
                    self.send_header("Connection", "close")
                    self.close_connection = True
                self.end_headers()
                self.wfile.write(answer.body)

            do_GET = do_PUT

            def log_message(self, *args: object) -> None:
                pass

        class Server(ThreadingHTTPServer):
            def process_request(self, request: Any, client_address: Any) -> None:
                with double._lock:
                    double.connections += 1
                    double.open += 1
                super().process_request(request, client_address)

            def shutdown_request(self, request: Any) -> None:  # the connection has ended
                with double._lock:
                    double.open -= 1
                super().shutdown_request(request)

        self._server = Server(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._server.block_on_close = False  # keep-alive connections must not hold up stop()
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class SimulatorDouble:
    """The Tulip simulator on a free loopback port, in a thread of the test process."""

    def __init__(self) -> None:
        self.simulator = TulipSimulator(json.loads(DEFAULT_SEED.read_text()))
        self._server = make_server(self.simulator, 0)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def links(self, table_link: str) -> list[list[str]]:
        """The pairs a table link holds now."""
        links: list[list[str]] = self.simulator.state()["tableLinks"][table_link]["links"]
        return links

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class PushEndpoint:
    """A real HTTP server on 127.0.0.1 that a push subscription delivers to: records each
    envelope (and its `Authorization`) and answers with the next status of `statuses` (then
    `default`)."""

    def __init__(self, *statuses: int, default: int = 204) -> None:
        self.envelopes: list[dict[str, Any]] = []
        self.authorizations: list[str | None] = []
        self.statuses = list(statuses)
        self.default = default
        # Replaces the script; called with the lock held, so it must not call `data()`.
        self.respond: Callable[[dict[str, Any]], int] | None = None
        self.hold: threading.Event | None = None  # set: each answer waits until it is set
        self._lock = threading.Lock()
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                envelope = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with endpoint._lock:
                    endpoint.envelopes.append(envelope)
                    endpoint.authorizations.append(self.headers.get("Authorization"))
                    if endpoint.respond is not None:
                        status = endpoint.respond(envelope)
                    elif endpoint.statuses:
                        status = endpoint.statuses.pop(0)
                    else:
                        status = endpoint.default
                if endpoint.hold is not None:
                    endpoint.hold.wait(30)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._server.block_on_close = False
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/"
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def data(self) -> list[Any]:
        """Each delivered message's data, decoded, in delivery order."""
        with self._lock:
            return [json.loads(base64.b64decode(e["message"]["data"])) for e in self.envelopes]

    def stop(self) -> None:
        if self.hold is not None:
            self.hold.set()
        self._server.shutdown()
        self._server.server_close()
