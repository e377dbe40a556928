"""Real processes on loopback for the tests: the function as deployed (functions-framework, whose
gunicorn master forks a worker) and the Tulip simulator, each on a free port."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from devtools.run import free_port, without_settings
from tests.helpers import ROOT

READY_SECONDS = 60
# Set for each test by conftest.py: whether it is marked `processes`.
allowed = False


@dataclass
class Served:
    """A process serving on `port`; `lines` is what it printed so far."""

    port: int
    process: subprocess.Popen[str]
    lines: list[str]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_until_listening(self, seconds: float = READY_SECONDS) -> None:
        """Poll the port (never a fixed sleep); fail if the process exits first."""
        deadline = time.monotonic() + seconds
        while True:
            assert self.process.poll() is None, "exited early:\n" + "".join(self.lines)
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            assert time.monotonic() < deadline, "never listened:\n" + "".join(self.lines)
            time.sleep(0.02)

    def stop(self) -> None:
        """SIGTERM to the whole process group, and wait for it."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
        self.process.wait(timeout=20)


@contextlib.contextmanager
def serve(args: list[str], env: Mapping[str, str], port: int) -> Iterator[Served]:
    """`python <args>` in its own process group, until the block ends."""
    assert allowed, "this test starts a real process: mark it @pytest.mark.processes"
    process = subprocess.Popen(
        [sys.executable, *args], cwd=ROOT, env=dict(env), stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip
    lines: list[str] = []
    output = process.stdout
    assert output is not None
    threading.Thread(target=lambda: lines.extend(output), daemon=True).start()
    served = Served(port, process, lines)
    try:
        yield served
    finally:
        served.stop()


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
    settings: Mapping[str, str], target: str = "link_records", port: int | None = None
) -> Iterator[Served]:
    """main.py's `target` served as deployed, with exactly `settings` for the function. Returns
    as soon as it is started: `wait_until_listening` when the test needs it served."""
    port = port or free_port()
    args = ["-m", "functions_framework", "--target", target, "--source", "main.py",
            "--host", "127.0.0.1", "--port", str(port)]  # fmt: skip
    with serve(args, clean_environment(settings), port) as served:
        yield served


@contextlib.contextmanager
def simulator(port: int | None = None) -> Iterator[Served]:
    """The Tulip simulator (devtools/tulip_simulator.py) with its seed, listening."""
    port = port or free_port()
    args = ["-m", "devtools.tulip_simulator", "--port", str(port)]
    with serve(args, clean_environment({}), port) as served:
        served.wait_until_listening()
        yield served
