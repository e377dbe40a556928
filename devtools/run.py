"""Run the function locally: `make run` (serve until Ctrl-C) and `make demo` (one request, shown).

With no settings at all it starts the Tulip simulator and wires the function to it with the
simulator's development token and a development Standard Webhooks secret, then prints a `curl`
command that links two seeded records (it signs at send time, so it still works when pasted
hours later) and where to see the result.

With `TULIP_BASE_URL` set (in the environment or in `.env`, `KEY=value` lines) it starts no
simulator: the function calls that Tulip with the credentials you give (`TULIP_API_KEY` and
`TULIP_API_SECRET`, or `TULIP_CREDENTIALS_SECRET`). `WEBHOOK_AUTH` and its secret default to the
development ones unless set. Variables already in the environment win over `.env`.

Ctrl-C stops everything this started.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from devtools.sign import auth_mode, signed_headers
from function.auth import secret_lines
from function.config import DEFAULT_SIGNATURE_HEADER

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = Path("devtools/example-request.json")
BATCH_EXAMPLE = Path("devtools/examples/batch-request.json")
DEV_API_KEY = "apikey.2_DEVLOCALKEY"  # seeded in devtools/seed.json; local only
DEV_API_SECRET = "dev-local-secret-not-for-production"
DEV_WEBHOOK_SECRET = "whsec_ZGV2ZWxvcG1lbnQgb25seTogbm90IGEgcmVhbCBzZWNyZXQh"  # local only
READY_TIMEOUT_SECONDS = 30


def read_env_file(path: Path) -> dict[str, str]:
    """`KEY=value` lines; `#` comments, blank lines, `export ` and surrounding quotes allowed."""
    values: dict[str, str] = {}
    if not path.exists():
        return values
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.removeprefix("export ").partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def function_environment(base: Mapping[str, str], simulator_url: str | None) -> dict[str, str]:
    """The function's environment: `base`, with the development defaults filled in."""
    env = dict(base)
    if simulator_url is not None:
        env.update(TULIP_BASE_URL=simulator_url, TULIP_API_KEY=DEV_API_KEY)
        env.update(TULIP_API_SECRET=DEV_API_SECRET)
        env.pop("TULIP_CREDENTIALS_SECRET", None)
    if not env.get("WEBHOOK_AUTH"):
        env.update(WEBHOOK_AUTH="standard-webhooks", WEBHOOK_SECRET_VALUE=DEV_WEBHOOK_SECRET)
    return env


def wait_for_port(port: int, process: subprocess.Popen[bytes], what: str) -> None:
    """Poll until something accepts connections on `port`; fail if `process` exits first."""
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{what} exited with status {process.returncode} before it was ready")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"{what} did not listen on port {port} within {READY_TIMEOUT_SECONDS} s")


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        # As the servers do: a port held only by closed connections (TIME_WAIT) is free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def first_secret(env: Mapping[str, str]) -> str | None:
    """The first webhook secret given as a value (None when it lives in Secret Manager)."""
    lines = secret_lines(env.get("WEBHOOK_SECRET_VALUE", ""))
    return lines[0] if lines else None


def curl_command(port: int, env: Mapping[str, str], example: Path = EXAMPLE) -> str | None:
    """A one-line curl command that signs the example request when it runs (None when the
    secret is not known here)."""
    url = f"http://localhost:{port}"
    mode = env.get("WEBHOOK_AUTH", "none")
    data = shlex.join(["--data-binary", f"@{example}"])
    if mode == "none":
        return f"curl -sS {url} -H 'Content-Type: application/json' {data}"
    secret = first_secret(env)
    if secret is None:
        return None
    sign = [".venv/bin/python", "-m", "devtools.sign", "--mode", mode, "--secret", secret]
    if mode == "hmac-sha256":
        sign += ["--header", env.get("WEBHOOK_SIGNATURE_HEADER", DEFAULT_SIGNATURE_HEADER)]
    sign += ["--curl-args", str(example)]
    return f"curl -sS {url} $({shlex.join(sign)}) {data}"


def show_links(simulator_url: str, table_link: str) -> list[list[str]]:
    with urllib.request.urlopen(f"{simulator_url}/_sim/state", timeout=5) as answer:
        state: dict[str, Any] = json.load(answer)
    links: list[list[str]] = state["tableLinks"][table_link]["links"]
    return links


def send_example(port: int, env: Mapping[str, str], example: Path = EXAMPLE) -> tuple[int, Any]:
    """POST an example request, signed as the function expects."""
    body = (ROOT / example).read_bytes()
    headers = {"Content-Type": "application/json"}
    secret = first_secret(env)
    if secret is not None:
        headers |= signed_headers(
            auth_mode(env["WEBHOOK_AUTH"]),
            secret,
            body,
            header=env.get("WEBHOOK_SIGNATURE_HEADER", DEFAULT_SIGNATURE_HEADER),
            now=time.time(),
        )
    request = urllib.request.Request(f"http://127.0.0.1:{port}", body, headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, json.load(answer)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def main(argv: list[str] | None = None) -> int:
    """Start what is needed, then serve (or run the demo); returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m devtools.run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT") or 8080))
    parser.add_argument("--simulator-port", type=int, default=8081)
    parser.add_argument("--env-file", type=Path, default=ROOT / ".env")
    parser.add_argument(
        "--example",
        type=Path,
        default=EXAMPLE,
        help="the payload the printed command sends (default: %(default)s)",
    )
    parser.add_argument(
        "--demo", action="store_true", help="send the example request, show before/after, stop"
    )
    args = parser.parse_args(argv)

    base = {**read_env_file(args.env_file), **os.environ}
    use_simulator = not base.get("TULIP_BASE_URL")
    for port, what in [(args.port, "the function")] + (
        [(args.simulator_port, "the simulator")] if use_simulator else []
    ):
        if not port_is_free(port):
            raise SystemExit(
                f"Port {port} (for {what}) is in use: stop what uses it, or pass another port"
            )

    children = Children()
    # Ctrl-C, and `kill`, stop the children too; SIGINT is set explicitly because a shell that
    # starts us in the background passes it on ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        simulator_url = None
        if use_simulator:
            simulator_url = f"http://127.0.0.1:{args.simulator_port}"
            simulator = children.start(
                ["devtools.tulip_simulator", "--port", str(args.simulator_port)], os.environ
            )
            wait_for_port(args.simulator_port, simulator, "The Tulip simulator")
        env = function_environment(base, simulator_url)
        function = children.start(
            [
                "functions_framework",
                "--target",
                "link_records",
                "--source",
                "main.py",
                "--port",
                str(args.port),
            ],
            env,
        )
        wait_for_port(args.port, function, "The function")
        if args.demo:
            return demo(args.port, env, simulator_url)
        explain(args.port, env, simulator_url, args.example)
        children.wait_any()
        return 1  # a child stopped on its own
    except KeyboardInterrupt:
        return 0
    finally:
        children.stop()


class Children:
    """The processes this run started, each in its own process group so that stopping one
    stops its own children too (gunicorn's workers)."""

    def __init__(self) -> None:
        self._processes: list[subprocess.Popen[bytes]] = []

    def start(self, module_and_args: list[str], env: Mapping[str, str]) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            [sys.executable, "-m", *module_and_args],
            cwd=ROOT,
            env=dict(env),
            start_new_session=True,
        )
        self._processes.append(process)
        return process

    def wait_any(self) -> None:
        while all(process.poll() is None for process in self._processes):
            time.sleep(0.2)

    def stop(self) -> None:
        # SIGINT: the simulator stops serving, gunicorn shuts down at once.
        for process in self._processes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGINT)
        for process in self._processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=5)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)


def explain(
    port: int, env: Mapping[str, str], simulator_url: str | None, example: Path = EXAMPLE
) -> None:
    """Say what runs where, and how to try it."""
    print(
        f"\nThe function is serving on http://localhost:{port} "
        f"(WEBHOOK_AUTH={env['WEBHOOK_AUTH']})."
    )
    if simulator_url:
        print(
            f"It calls the Tulip simulator; see its tables and links at {simulator_url}/ "
            f"(JSON: {simulator_url}/_sim/state)."
        )
    else:
        print(f"It calls the real Tulip at {env['TULIP_BASE_URL']}.")
    command = curl_command(port, env, example)
    if command is None:
        print("\nSign requests with: python -m devtools.sign --secret <secret> --curl URL FILE")
    else:
        print("\nLink two records (from the repository's root; the command signs when it runs):\n")
        print(f"  {command}\n")
    print("Press Ctrl-C to stop.\n", flush=True)


def demo(port: int, env: Mapping[str, str], simulator_url: str | None) -> int:
    """Send the example request, then a batch; show the links they touch before and after."""
    failed = False
    for example in (EXAMPLE, BATCH_EXAMPLE):
        body = json.loads((ROOT / example).read_text())
        table_links = sorted(
            {body.get("tableLinkId")}
            | {link.get("tableLinkId") for link in body.get("links", [])} - {None}
        )
        if simulator_url:
            for table_link in table_links:
                print(f"\nBefore: {table_link} links {show_links(simulator_url, table_link)}")
        print(f"Sending {example}: {json.dumps(body)}")
        status, answer = send_example(port, env, example)
        print(f"Answer: {status} {json.dumps(answer)}")
        if simulator_url:
            for table_link in table_links:
                print(f"After:  {table_link} links {show_links(simulator_url, table_link)}")
        failed |= status != 200
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
