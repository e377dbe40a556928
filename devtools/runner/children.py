"""Servers in child processes, for the local runner and the tests: started, known ready, stopped.

A child is given a port, 0 to let the kernel choose one nothing else holds, and says in its own
output which port it bound (gunicorn's "Listening at", our servers' first line): no port is
probed and released for another to take. It is ready once it said so and answers there as itself
(a request only that kind of server answers as expected). One that exits first, or is not ready
in time, fails with its last lines (an "address already in use" among them).

`fixed_ports` is for the few servers that must know their port before they start, or start again
on it: ports below the kernel's ephemeral range, where neither a port-0 bind nor an outgoing
connection ever lands.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from devtools import ROOT

LOOPBACK = "127.0.0.1"
READY_SECONDS = 60
STOP_SECONDS = 3  # then SIGKILL: gunicorn can take far longer to stop on its own
KEPT_LINES = 200


class NotReady(Exception):
    """A child exited, or did not become ready, in time; the message has its last lines."""


def _answers_json(url: str, check: Callable[[object], bool]) -> bool:
    """Whether `url` answers (any status) a JSON body that `check` accepts."""
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            body = answer.read()
    except urllib.error.HTTPError as error:
        body = error.read()
    except OSError:
        return False
    try:
        return check(json.loads(body))
    except ValueError:
        return False


@dataclass(frozen=True)
class Kind:
    """A kind of server: the line in which it reports the ports it bound (a group each; a group
    named `pid`, if any, must be the child's own; one named `host`, where it listens, else
    127.0.0.1), whether, given its host and ports, it answers as itself, and what its
    environment needs for that."""

    listening: re.Pattern[str]
    answers: Callable[[str, tuple[int, ...]], bool]
    env: Mapping[str, str] = field(default_factory=dict)
    quiet: re.Pattern[str] | None = None  # lines kept, but not copied to the output


def _function_accepts(host: str, ports: tuple[int, ...]) -> bool:
    # Its report names its own pid, so the port is its; any request would be logged as a
    # caller's (and shown on the console): a connection it accepts is enough.
    with socket.socket() as probe:
        return probe.connect_ex((host, ports[0])) == 0


def _simulator_answers(host: str, ports: tuple[int, ...]) -> bool:
    return _answers_json(
        f"http://{host}:{ports[0]}/_sim/state",
        lambda body: isinstance(body, dict) and "tableLinks" in body,
    )


def _pubsub_answers(host: str, ports: tuple[int, ...]) -> bool:
    # Its gRPC port is its own report; its state port answers as only it does.
    return _answers_json(
        f"http://{host}:{ports[1]}/state",
        lambda body: isinstance(body, dict) and "subscriptions" in body,
    )


# gunicorn says where it listens, and its pid, at INFO; functions-framework sets ERROR unless told.
# Its INFO lines are for this module, not for the terminal.
FUNCTION = Kind(
    re.compile(r"Listening at: http://(?P<host>\S+):(\d+) \((?P<pid>\d+)\)"),
    _function_accepts,
    {"GUNICORN_LOG_LEVEL": "info"},
    re.compile(r"\[[^\]]+\] \[\d+\] \[INFO\] "),
)
SIMULATOR = Kind(re.compile(r"Tulip simulator on http://\S+:(\d+)"), _simulator_answers)
PUBSUB = Kind(
    re.compile(r"Pub/Sub simulator on \S+:(\d+), its state on http://\S+:(\d+)/"), _pubsub_answers
)


def _firestore_answers(host: str, ports: tuple[int, ...]) -> bool:
    try:
        with urllib.request.urlopen(f"http://{host}:{ports[0]}/", timeout=2) as answer:
            return bool(answer.read().strip() == b"Ok")  # what only the emulator's root says
    except OSError:
        return False


# Google's Firestore emulator (devtools/runner/firestore_emulator.py), on a port given to it. Its
# lines (Java's logging, how to point a client at it) are for this module, not for the terminal.
FIRESTORE = Kind(
    re.compile(r"API endpoint: http://(?P<host>[^\s:]+):(\d+)"),
    _firestore_answers,
    quiet=re.compile(""),
)


class Child:
    """`python -m <args>` in a process group of its own (so that stopping it stops its own
    children, gunicorn's worker), its output read as it comes: kept (`lines`, the last
    `KEPT_LINES` unless `keep_all`), copied to `output`, and handed to `on_line`.
    `die_with_parent`: the kernel kills it should this process die (Linux)."""

    def __init__(
        self,
        what: str,
        kind: Kind,
        args: list[str],
        env: Mapping[str, str],
        *,
        output: IO[bytes] | None = None,
        on_line: Callable[[bytes], None] | None = None,
        die_with_parent: bool = False,
        keep_all: bool = False,
    ) -> None:
        self.what = what
        self.kind = kind
        guard = ["devtools.runner.orphan_guard", str(os.getpid())] if die_with_parent else []
        self.process = subprocess.Popen(
            [sys.executable, "-m", *guard, *args],
            cwd=ROOT,
            env={**env, **kind.env},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.lines: collections.deque[str] = collections.deque(
            maxlen=None if keep_all else KEPT_LINES
        )
        self.ports: tuple[int, ...] | None = None
        self.host = LOOPBACK  # where it listens, once it said (the report's `host`)
        self._output = output
        self._on_line = on_line
        self._interrupted = False
        self._copying = threading.Thread(target=self._copy, name=f"output of {what}", daemon=True)
        self._copying.start()

    @property
    def port(self) -> int:
        """The (first) port it reported; only once it is ready."""
        assert self.ports is not None, f"{self.what} has not reported its port yet"
        return self.ports[0]

    @property
    def url(self) -> str:
        """`http://<host>:<port>`; only once it is ready."""
        return f"http://{self.host}:{self.port}"

    def _copy(self) -> None:
        assert self.process.stdout is not None
        quiet = self.kind.quiet
        for raw in self.process.stdout:
            text = raw.decode(errors="replace")
            if self._output is not None and not (quiet and quiet.match(text)):
                self._output.write(raw)
                self._output.flush()
            self.lines.append(text)
            if self.ports is None:
                self._take_report(text)
            if self._on_line is not None:
                self._on_line(raw)

    def _take_report(self, line: str) -> None:
        """The host and ports `line` reports this child bound, if it is its report."""
        found = self.kind.listening.search(line)
        named = found.groupdict() if found else {}
        if found is None or named.get("pid") not in (None, str(self.process.pid)):
            return
        self.host = named.get("host") or LOOPBACK
        groups = set(found.re.groupindex.values())
        self.ports = tuple(
            int(found.group(i)) for i in range(1, found.re.groups + 1) if i not in groups
        )

    def wait_until_ready(
        self, *, seconds: float = READY_SECONDS, check: Callable[[], None] = lambda: None
    ) -> tuple[int, ...]:
        """Poll (never a fixed sleep) until it reported its ports and answers as itself; its
        ports. `NotReady` if it exits first or takes longer than `seconds`; `check` is called
        on each round and may raise to stop waiting."""
        deadline = time.monotonic() + seconds
        while True:
            check()
            if self.process.poll() is not None:
                self._copying.join(timeout=5)  # its last words
                raise NotReady(
                    f"{self.what} exited with status {self.process.returncode} before it was "
                    f"ready: {self._tail()}"
                )
            if self.ports is not None and self.kind.answers(self.host, self.ports):
                return self.ports
            if time.monotonic() > deadline:
                raise NotReady(f"{self.what} was not ready within {seconds:g} s: {self._tail()}")
            time.sleep(0.02)

    def _tail(self) -> str:
        last = "".join(list(self.lines)[-15:]).rstrip()
        return f"its last lines:\n{last}" if last else "it printed nothing"

    def interrupt(self) -> None:
        """SIGINT to its group (the simulator stops, gunicorn shuts down quickly), once."""
        if not self._interrupted:
            self._interrupted = True
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGINT)

    def stop(self) -> None:
        """`interrupt`, then SIGKILL to what is left after `STOP_SECONDS`; then its output is
        read to the end."""
        self.interrupt()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=STOP_SECONDS)
        self.kill()

    def kill(self) -> None:
        """SIGKILL to its group, at once: when this returns it is gone, its sockets closed (a
        server that vanishes mid-answer); then its output is read to the end."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        # A daemon thread still writing to stdout at exit can make Python abort: let it finish.
        self._copying.join(timeout=STOP_SECONDS)


_handed_out: set[int] = set()
_handing_out = threading.Lock()


def fixed_ports(count: int) -> list[int]:
    """`count` loopback ports, free when chosen, different from each other and from every port
    this process was given before, and below the kernel's ephemeral range."""
    low = _ephemeral_low()
    candidates = list(range(max(1024, low - 10_000), low))
    random.shuffle(candidates)
    chosen: list[socket.socket] = []
    with _handing_out:
        try:
            for port in candidates:
                if len(chosen) == count:
                    break
                if port in _handed_out:
                    continue
                probe = socket.socket()
                # As the servers do: a port held only by closed connections (TIME_WAIT) is free.
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    probe.bind((LOOPBACK, port))
                except OSError:
                    probe.close()
                    continue
                chosen.append(probe)  # held until all are chosen
            ports = [probe.getsockname()[1] for probe in chosen]
            _handed_out.update(ports)
        finally:
            for probe in chosen:
                probe.close()
    if len(ports) < count:
        raise OSError(f"found only {len(ports)} free ports below {low}")
    return ports


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default
