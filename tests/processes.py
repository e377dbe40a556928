"""Real processes on loopback for the tests: the function as deployed (functions-framework, whose
gunicorn master forks a worker), the Tulip simulator, and the local runner (`make run`), each on
free ports."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from devtools.runner.children import FUNCTION, SIMULATOR, Child
from devtools.runner.run import DEV_WEBHOOK_SECRET, Ports, without_settings
from ops.sign import signed_headers
from tests.helpers import ROOT

# Set for each test by conftest.py: whether it is marked `processes`.
allowed = False


@contextlib.contextmanager
def serve(child: Callable[[], Child]) -> Iterator[Child]:
    """The child `child()` starts, every line it prints kept, stopped when the block ends."""
    assert allowed, "this test starts a real process: mark it @pytest.mark.processes"
    started = child()
    try:
        yield started
    finally:
        started.stop()


def until(condition: Callable[[], bool], what: str, seconds: float = 30) -> None:
    """Poll `condition` (never a fixed sleep) until it holds; fail after `seconds`."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def clean_environment(settings: Mapping[str, str]) -> dict[str, str]:
    """This process's environment without any of the function's settings, plus `settings`."""
    return without_settings(os.environ) | dict(settings)


@contextlib.contextmanager
def function(
    settings: Mapping[str, str], target: str = "link_records", port: int = 0
) -> Iterator[Child]:
    """main.py's `target` served as deployed, with exactly `settings` for the function, on
    `port` (0: the kernel's choice). Returns as soon as it is started: `wait_until_ready` when
    the test needs it served."""
    args = ["functions_framework", "--target", target, "--source", "main.py",
            "--host", "127.0.0.1", "--port", str(port)]  # fmt: skip
    env = clean_environment(settings)
    with serve(lambda: Child(target, FUNCTION, args, env, keep_all=True)) as served:
        yield served


@contextlib.contextmanager
def simulator(port: int = 0) -> Iterator[Child]:
    """The Tulip simulator (devtools/simulators/tulip.py) with its seed, ready, on `port` (0: the
    kernel's choice; `fixed_ports` for one it must start on again)."""
    args = ["devtools.simulators.tulip", "--port", str(port)]
    env = clean_environment({})
    with serve(lambda: Child("the Tulip simulator", SIMULATOR, args, env, keep_all=True)) as served:
        served.wait_until_ready()
        yield served


RUNNER_READY_SECONDS = 60


@dataclass
class Running:
    """`python -m devtools.runner` serving: where each piece listens, and the command it printed."""

    function: str
    simulator: str
    curl: str
    process: subprocess.Popen[str]
    ports: Ports
    lines: queue.Queue[str]  # what it prints once ready
    printed: str  # what it printed until then

    def post(self, payload: Any, *, sign: bool = True) -> tuple[int, dict[str, Any]]:
        return self.post_bytes(json.dumps(payload).encode(), sign=sign)

    def post_bytes(self, body: bytes, *, sign: bool = True) -> tuple[int, dict[str, Any]]:
        headers = {"Content-Type": "application/json"}
        if sign:
            headers |= signed_headers(
                "standard-webhooks", DEV_WEBHOOK_SECRET, body, now=time.time()
            )
        request = urllib.request.Request(self.function, body, headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                result: dict[str, Any] = json.load(answer)
                return answer.status, result
        except urllib.error.HTTPError as error:
            return error.code, json.load(error)

    def simulator_call(self, path: str, payload: Any = None) -> Any:
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(
            f"{self.simulator}{path}", data, {"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            return json.load(answer)

    def links(self, table_link: str) -> list[list[str]]:
        found: list[list[str]] = self.simulator_call("/_sim/state")["tableLinks"][table_link][
            "links"
        ]
        return found


@contextlib.contextmanager
def runner(*args: str, **settings: str) -> Iterator[Running]:
    """`python -m devtools.runner` on free ports with `settings` in its environment, until the
    block ends; then Ctrl-C (unless the block stopped it), and every port must be free."""
    assert allowed, "this test starts a real process: mark it @pytest.mark.processes"
    env = without_settings(os.environ)
    env["TULIP_MAX_ATTEMPTS"] = "2"  # keeps real backoff waits short
    env |= settings
    # Every port 0: each piece listens where the kernel says, and the runner prints where.
    process = subprocess.Popen(
        [sys.executable, "-m", "devtools.runner", "--port", "0", "--simulator-port", "0",
         "--events-port", "0", "--pubsub-port", "0", "--pubsub-state-port", "0",
         "--console-port", "0", "--firestore-port", "0", "--env-file", os.devnull, *args],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )  # fmt: skip
    lines: queue.Queue[str] = queue.Queue()
    output = process.stdout
    assert output is not None

    def forward() -> None:
        for line in output:
            lines.put(line)

    threading.Thread(target=forward, daemon=True).start()
    curl, seen = None, []
    deadline = time.monotonic() + RUNNER_READY_SECONDS
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=deadline - time.monotonic())
        except queue.Empty:
            break
        seen.append(line)
        if line.strip().startswith("curl "):
            curl = line.strip()
        if "Press Ctrl-C" in line:
            break
    else:
        os.killpg(process.pid, signal.SIGKILL)
        raise AssertionError("the runner did not get ready:\n" + "".join(seen))
    assert curl is not None, "".join(seen)
    ports = printed_ports("".join(seen))
    running = Running(
        f"http://127.0.0.1:{ports.function}",
        f"http://127.0.0.1:{ports.simulator}",
        curl,
        process,
        ports,
        lines,
        "".join(seen),
    )
    try:
        yield running
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C does
            assert process.wait(timeout=20) == 0
    assert_free(*(port for port in dataclasses.astuple(ports) if port))


_PRINTED = {
    "function": r"webhook function +http://\S+:(\d+)",
    "simulator": r"Tulip simulator +http://\S+:(\d+)/",
    "events": r"events function +http://\S+:(\d+)",
    "pubsub": r"Pub/Sub simulator +\S+:(\d+)",
    "pubsub_state": r"its state +http://\S+:(\d+)/state",
    "console": r"Watch it work.*http://localhost:(\d+)/",
    "firestore": r"Firestore emulator +\S+:(\d+)",
}


def printed_ports(printed: str) -> Ports:
    """Where the runner says each piece listens (0: a piece it did not start)."""
    found = {name: re.search(pattern, printed) for name, pattern in _PRINTED.items()}
    return Ports(**{name: int(match.group(1)) if match else 0 for name, match in found.items()})


def assert_free(*ports: int, seconds: float = 10) -> None:
    """Every port refuses connections (polled: a killed process's sockets close just after)."""
    deadline = time.monotonic() + seconds
    for port in ports:
        while True:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) != 0:
                    break
            assert time.monotonic() < deadline, f"port {port} still served"
            time.sleep(0.05)
