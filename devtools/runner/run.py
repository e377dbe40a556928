"""Run the function locally: `make run` (serve until stopped) and `make demo` (two requests, shown).

The deployed shape, by default (`WEBHOOK_DELIVERY=queue`): the webhook function in queue mode
publishes to the Pub/Sub simulator (`devtools.simulators.pubsub`), whose push subscription delivers to
the events function, which calls Tulip; retries, the dead-letter topic and its subscription are
set as `infra/` sets them (`--min-backoff`, `--max-backoff` and `--max-delivery-attempts` change
them for demos and tests). `WEBHOOK_DELIVERY=direct` runs the webhook function alone, calling
Tulip while the caller waits.

`devtools.runner.console` serves a page that shows all of it at work (on 127.0.0.1 only: its buttons act
without the webhook's secret); the functions' stdout passes through this process on its way to
the terminal, so that the page can show what they answered.

Settings come from the environment, then from `.env` (`KEY=value` lines); a setting you gave is
never replaced by a default.

- Without `TULIP_BASE_URL` the Tulip simulator starts, and the function calls it with the
  simulator's development token. Tulip credentials given without `TULIP_BASE_URL` are refused:
  they would be meant for a real Tulip.
- Callers are checked as the function always checks them. Unless you set `WEBHOOK_AUTH` it is
  `standard-webhooks`, keyed, against the simulator, with the development secret below (it is
  published, and reaches nothing but the simulator) and, against a real Tulip, with a random
  secret made for this run. A secret you give (`WEBHOOK_SECRET_VALUE`, or `WEBHOOK_SECRET` in
  Secret Manager) is used as it is. The development secret never guards a real Tulip. Any other
  secret known here is written to a file only you may read, for the run (the printed curl
  command names that file; no secret but the development one is ever printed or put on a
  command line).
- Each delivery is applied once (`DEDUP_DATABASE`) against Google's Firestore emulator where it
  is installed (`google-cloud-cli-firestore-emulator`, with Java), started and stopped with the
  rest; elsewhere the run goes on without deduplication, and says so.
- Everything listens on 127.0.0.1. `--host` (`make run HOST=0.0.0.0`) moves the webhook function
  alone, which authenticates its callers: then a real Tulip may not be reached with
  `WEBHOOK_AUTH=none`. The pieces that do not authenticate their callers stay on 127.0.0.1 and
  answer nothing a web page sends them (`devtools/local_only.py`); the events function takes
  only the Pub/Sub simulator's pushes (`devtools/runner/events_front.py`).
- The settings are checked before anything starts, with the function's own messages.
- SIGINT (Ctrl-C), SIGTERM and SIGHUP (the terminal closing), however many arrive, stop
  everything within a few seconds; the children are killed with this process even when it is
  killed outright (Linux: `PR_SET_PDEATHSIG`).
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import json
import os
import secrets
import shlex
import shutil
import signal
import socket
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

from devtools import ROOT
from devtools.runner.children import (
    FIRESTORE,
    FUNCTION,
    LOOPBACK,
    PUBSUB,
    SIMULATOR,
    Child,
    Kind,
    NotReady,
    fixed_ports,
)
from devtools.runner.console import LocalRun, RequestLog, replay_dead_letters
from devtools.runner.console import serve as serve_console
from devtools.runner.firestore_emulator import emulator
from devtools.simulators.pubsub import DEFAULT_PORT as DEFAULT_PUBSUB_PORT
from devtools.simulators.pubsub import Queue
from function.auth import standard_webhooks
from function.auth.common import secret_lines
from function.auth.hmac_sha256 import DEFAULT_SIGNATURE_HEADER
from function.config import environment_variables, load_settings, load_webhook_settings
from function.model.errors import Failure
from ops.sign import auth_mode, signed_headers

EXAMPLE = Path("devtools/examples/link-request.json")
BATCH_EXAMPLE = Path("devtools/examples/batch-request.json")
DEV_API_KEY = "apikey.2_DEVLOCALKEY"  # seeded in devtools/simulators/seed.json; local only
DEV_API_SECRET = "dev-local-secret-not-for-production"
DEV_WEBHOOK_SECRET = "whsec_ZGV2ZWxvcG1lbnQgb25seTogbm90IGEgcmVhbCBzZWNyZXQh"  # simulator only
DEDUP_DATABASE = "projects/tulip-link-local/databases/tulip-link-dedup"  # on the emulator
READY_TIMEOUT_SECONDS = 30
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
TULIP_CREDENTIALS = ("TULIP_API_KEY", "TULIP_API_SECRET", "TULIP_CREDENTIALS_SECRET")


class Stopped(Exception):
    """A stop signal arrived while waiting."""


def without_settings(environ: Mapping[str, str]) -> dict[str, str]:
    """`environ` without any variable the function reads as a setting: for tools and tests that
    set the function's settings themselves, whatever the shell they run in holds."""
    settings = environment_variables()
    return {k: v for k, v in environ.items() if k not in settings}


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


def function_environment(
    given: Mapping[str, str],
    simulator_url: str | None,
    *,
    host: str = LOOPBACK,
    queue: Queue | None = None,
    pubsub_host: str | None = None,
) -> tuple[dict[str, str], str | None]:
    """The webhook function's environment: what was given, with the defaults for what was not
    (with `queue`, queue mode on the Pub/Sub simulator at `pubsub_host`). Also the webhook secret made
    for this run, if one was (to be shown). `SystemExit` when the settings given cannot be run as
    they are."""
    env = {k: v for k, v in given.items() if v.strip()}  # empty means unset, as in the function
    if simulator_url is not None:
        stray = [name for name in TULIP_CREDENTIALS if name in env]
        if stray:
            raise SystemExit(
                f"{', '.join(stray)} set without TULIP_BASE_URL: set TULIP_BASE_URL too to "
                "call that Tulip, or remove them to use the simulator"
            )
        env |= {"TULIP_BASE_URL": simulator_url, "TULIP_API_KEY": DEV_API_KEY}
        env |= {"TULIP_API_SECRET": DEV_API_SECRET}
    made = None
    has_secret = "WEBHOOK_SECRET" in env or "WEBHOOK_SECRET_VALUE" in env
    if "WEBHOOK_AUTH" not in env:
        env["WEBHOOK_AUTH"] = "standard-webhooks"
        if not has_secret and simulator_url is not None:
            env["WEBHOOK_SECRET_VALUE"] = DEV_WEBHOOK_SECRET
        elif not has_secret:
            made = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
            env["WEBHOOK_SECRET_VALUE"] = made
    if simulator_url is None and host != LOOPBACK and env["WEBHOOK_AUTH"] == "none":
        raise SystemExit(
            f"WEBHOOK_AUTH=none would let anyone who reaches {host} link records in "
            f"{env.get('TULIP_BASE_URL')}: keep the default host (127.0.0.1), or set "
            "WEBHOOK_AUTH and its secret"
        )
    if queue is not None:
        env.setdefault("WEBHOOK_DELIVERY", "queue")
        env.setdefault("WEBHOOK_QUEUE_TOPIC", queue.requests_topic)
        env.setdefault("WEBHOOK_SENDER", "webhook")  # infra/'s name for the one sender
        env["PUBSUB_EMULATOR_HOST"] = str(pubsub_host)  # the runner's Pub/Sub, never Google's
    return env, made


def events_environment(webhook: Mapping[str, str], queue: Queue) -> dict[str, str]:
    """The events function's environment, as `infra/` sets it: the webhook function's, without
    its webhook settings, mapping and deduplication (what the intake queues is in our own
    shape, and was deduplicated), and the queue's dead-letter topic (a setting given wins)."""
    dropped = {name for name in webhook if name.startswith(("WEBHOOK_", "DEDUP_"))}
    dropped |= {"LINK_MAPPING", "FIRESTORE_EMULATOR_HOST"}
    env = {k: v for k, v in webhook.items() if k not in dropped}
    return {"DEAD_LETTER_TOPIC": queue.dead_letter_topic} | env


def check_settings(env: Mapping[str, str], *, webhook_function: bool = True) -> None:
    """Refuse what the function would refuse on every request (or on every call of Tulip, for a
    function without a token that makes them), with its own message (the webhook settings only
    for a webhook function)."""
    try:
        settings = load_settings(env)
        settings.api_token()  # also checks a token given as TULIP_API_KEY/SECRET
        if not webhook_function or env.get("WEBHOOK_DELIVERY") != "queue":
            settings.require_token()  # it calls Tulip
        if not webhook_function:
            return
        webhook = load_webhook_settings(env)
        if webhook.mode == "standard-webhooks":
            for secret in secret_lines(env.get("WEBHOOK_SECRET_VALUE", "")):
                standard_webhooks.key(secret)
    except Failure as failure:
        raise SystemExit(f"Not started: {failure.message}") from None


def curl_command(
    url: str, env: Mapping[str, str], example: Path = EXAMPLE, secret_file: Path | None = None
) -> str | None:
    """A one-line bash command that signs the example request when it runs, its headers handed
    to curl through a pipe (a token is never on curl's command line). It names where the secret
    is, `secret_file`, and shows none but the published development secret; None when the
    secret is not known here (it lives in Secret Manager)."""
    mode = auth_mode(env.get("WEBHOOK_AUTH", "none"))
    data = shlex.join(["--data-binary", f"@{example}"])
    if mode == "none":
        return f"curl -sS {url} -H 'Content-Type: application/json' {data}"
    sign = [".venv/bin/python", "-m", "ops.sign", "--mode", mode]
    if first_secret(env) == DEV_WEBHOOK_SECRET:
        prefix = f"WEBHOOK_SECRET_VALUE={DEV_WEBHOOK_SECRET} "
    elif secret_file is not None:
        prefix, sign = "", [*sign, "--secret-file", str(secret_file)]
    else:
        return None
    if mode == "hmac-sha256":
        sign += ["--header", env.get("WEBHOOK_SIGNATURE_HEADER", DEFAULT_SIGNATURE_HEADER)]
    if mode == "token" and env.get("WEBHOOK_TOKEN_HEADER"):
        sign += ["--token-header", env["WEBHOOK_TOKEN_HEADER"]]
    sign.append(str(example))
    return f"curl -sS {url} -H @<({prefix}{shlex.join(sign)}) {data}"


def first_secret(env: Mapping[str, str]) -> str | None:
    """The first webhook secret given as a value (None when it lives in Secret Manager)."""
    lines = secret_lines(env.get("WEBHOOK_SECRET_VALUE", ""))
    return lines[0] if lines else None


@dataclasses.dataclass(frozen=True)
class Ports:
    """Where each piece listens (`events` and the Pub/Sub simulator's two only in queue mode)."""

    function: int
    simulator: int
    events: int
    pubsub: int
    pubsub_state: int  # the Pub/Sub simulator's GET /state, which the console reads
    console: int
    firestore: int = 0  # Google's Firestore emulator, for deduplication, where it is installed


def reach(host: str, port: int) -> str:
    """The URL at which this machine reaches a server listening on `host:port`."""
    reached = LOOPBACK if host in ("0.0.0.0", "::", "") else host
    return f"http://{reached}:{port}"


def main(argv: list[str] | None = None) -> int:
    """Start what is needed, then serve (or run the demo); returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m devtools.runner",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    defaults = Queue()
    parser.add_argument("--host", default=LOOPBACK, help="where the servers listen")
    parser.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("PORT") or 8080),
        help="the webhook function's; any port given as 0 is one the kernel chooses, printed",
    )
    parser.add_argument("--simulator-port", type=int, default=8081)
    parser.add_argument("--events-port", type=int, default=8082, help="queue mode")
    parser.add_argument("--pubsub-port", type=int, default=DEFAULT_PUBSUB_PORT, help="queue mode")
    parser.add_argument(
        "--pubsub-state-port", type=int, default=8084, help="queue mode: its state, as JSON"
    )
    parser.add_argument("--console-port", type=int, default=8083, help="the page to watch")
    parser.add_argument(
        "--firestore-port",
        type=int,
        default=8086,
        help="Firestore emulator, for deduplication (where it is installed; 0: a free port)",
    )
    parser.add_argument(
        "--min-backoff",
        type=float,
        default=defaults.min_backoff,
        help="seconds before the first redelivery (default, as infra/: %(default)g)",
    )
    parser.add_argument(
        "--max-backoff",
        type=float,
        default=defaults.max_backoff,
        help="the longest wait between deliveries (default, as infra/: %(default)g)",
    )
    parser.add_argument(
        "--max-delivery-attempts",
        type=int,
        default=defaults.max_delivery_attempts,
        help="deliveries before a message is dead-lettered (default, as infra/: %(default)d)",
    )
    parser.add_argument("--env-file", type=Path, default=ROOT / ".env")
    parser.add_argument(
        "--example",
        type=Path,
        default=EXAMPLE,
        help="the payload the printed command sends (default: %(default)s)",
    )
    parser.add_argument(
        "--demo", action="store_true", help="send two example requests, show before/after, stop"
    )
    args = parser.parse_args(argv)

    given = {**read_env_file(args.env_file), **os.environ}
    use_simulator = not given.get("TULIP_BASE_URL", "").strip()
    # Where the simulator will be, for checking the settings; it reports its port once it runs.
    simulator_url = f"http://{LOOPBACK}:{args.simulator_port or 1}" if use_simulator else None
    # Deduplication against Google's emulator, where it is installed (its port must be known
    # before it starts), unless a DEDUP_DATABASE was given.
    dedup = "DEDUP_DATABASE" not in given and emulator() is not None
    firestore_port = (args.firestore_port or fixed_ports(1)[0]) if dedup else 0
    ports = Ports(
        args.port,
        args.simulator_port,
        args.events_port,
        args.pubsub_port,
        args.pubsub_state_port,
        args.console_port,
        firestore_port,
    )
    queue = None
    if (given.get("WEBHOOK_DELIVERY", "").strip() or "queue") == "queue":
        queue = Queue(
            min_backoff=args.min_backoff,
            max_backoff=args.max_backoff,
            max_delivery_attempts=args.max_delivery_attempts,
        )
    env, made_secret = function_environment(
        given, simulator_url, host=args.host, queue=queue, pubsub_host=f"{LOOPBACK}:{ports.pubsub}"
    )
    check_settings(env)
    if queue is not None:
        check_settings(events_environment(env, queue), webhook_function=False)
    needed = [(args.host, ports.function, "the webhook function", "PORT")]
    if use_simulator:
        needed.append((LOOPBACK, ports.simulator, "the simulator", "SIMULATOR_PORT"))
    if queue is not None:
        needed.append((LOOPBACK, ports.events, "the events function", "EVENTS_PORT"))
        needed.append((LOOPBACK, ports.pubsub, "the Pub/Sub simulator", "PUBSUB_PORT"))
        needed.append(
            (LOOPBACK, ports.pubsub_state, "the Pub/Sub simulator's state", "PUBSUB_STATE_PORT")
        )
    if not args.demo:
        needed.append((LOOPBACK, ports.console, "the console", "CONSOLE_PORT"))
    if dedup:
        needed.append((LOOPBACK, ports.firestore, "the Firestore emulator", "FIRESTORE_PORT"))
    given_ports = [(where, port, what, variable) for where, port, what, variable in needed if port]
    for where, port, what, variable in given_ports:
        sharing = [f"{w} ({v})" for _, p, w, v in given_ports if p == port]
        if len(sharing) > 1:
            raise SystemExit(f"Port {port} is given to {' and '.join(sharing)}: give each its own")
        if not port_is_free(where, port):
            raise SystemExit(
                f"Port {port} (for {what}) is in use: stop what uses it, or choose another "
                f"(make run {variable}=...)"
            )

    stop = StopSignals()
    servers = Servers(stop.check)
    requests = RequestLog()
    console = None
    private = Path(tempfile.mkdtemp(prefix="tulip-link-run-"))  # 0700: this user's only
    try:
        secret_file = write_secret(env, private)
        ports, env = start_servers(
            servers,
            host=args.host,
            ports=ports,
            simulator=use_simulator,
            queue=queue,
            env=env,
            requests=requests,
        )
        simulator_url = env["TULIP_BASE_URL"] if use_simulator else None
        function_url = reach(args.host, ports.function)
        if args.demo:
            return demo(function_url, env, simulator_url, queued=queue is not None)
        console = serve_console(
            LocalRun(
                requests=requests,
                simulator_url=simulator_url,
                pubsub_state_url=(
                    None if queue is None else f"http://{LOOPBACK}:{ports.pubsub_state}/state"
                ),
                send_example=lambda: send_example(function_url, env, args.example),
                replay=None
                if queue is None
                else replay_dead_letters(
                    f"{LOOPBACK}:{ports.pubsub}",
                    queue.dead_letter_subscription,
                    queue.requests_topic,
                ),
            ),
            LOOPBACK,  # never wider: its buttons act without the webhook's secret
            ports.console,
        )
        ports = dataclasses.replace(ports, console=console.server_address[1])
        explain(
            args.host,
            ports,
            env,
            simulator_url,
            queue,
            made_secret is not None,
            secret_file,
            args.example,
        )
        servers.wait_any()
        return 1  # a child stopped on its own
    except Stopped:
        return 0
    except NotReady as failure:
        raise SystemExit(f"Not started: {failure}") from None
    finally:
        stop.ignore_further()  # nothing may interrupt the cleanup below
        if console is not None:
            console.shutdown()
            console.server_close()
        servers.stop()
        shutil.rmtree(private, ignore_errors=True)


def start_servers(
    servers: Servers,
    *,
    host: str,
    ports: Ports,
    simulator: bool,
    queue: Queue | None,
    env: Mapping[str, str],
    requests: RequestLog | None = None,
    events_source: str = "main.py",
) -> tuple[Ports, dict[str, str]]:
    """Start the simulator (with `simulator`), then, with `queue`, the Pub/Sub simulator and the
    events function, and the webhook function with `env` (the lines both functions write also
    go to `requests`), each ready before the next starts; then create the queue's topics and
    subscriptions. With `ports.firestore`, Google's Firestore emulator first, and the webhook
    function deduplicates against it. The webhook function listens on `host`, everything else
    on 127.0.0.1; the Pub/Sub simulator signs its pushes with a token made for the run, and the
    events function's front lets nothing else in. `events_source`: where the events function
    comes from (a bench's variant). Returns where each listens (a port 0 becomes the one it
    reported) and the webhook function's environment, the simulator's and Pub/Sub's actual
    addresses in it."""
    env = dict(env)
    simulator_port = events_port = pubsub_port = state_port = 0
    if ports.firestore:
        servers.start(
            "The Firestore emulator",
            FIRESTORE,
            ["devtools.runner.firestore_emulator", "--port", str(ports.firestore)],
            os.environ,
        )
        env["FIRESTORE_EMULATOR_HOST"] = f"{LOOPBACK}:{ports.firestore}"  # never Google's
        env["DEDUP_DATABASE"] = DEDUP_DATABASE
    if simulator:
        [simulator_port] = servers.start(
            "The Tulip simulator",
            SIMULATOR,
            ["devtools.simulators.tulip", "--port", str(ports.simulator)],
            os.environ,
        )
        env["TULIP_BASE_URL"] = f"http://{LOOPBACK}:{simulator_port}"
    if queue is not None:
        push_token = {"LOCAL_PUSH_TOKEN": secrets.token_urlsafe(32)}
        pubsub_port, state_port = servers.start(
            "The Pub/Sub simulator",
            PUBSUB,
            ["devtools.simulators.pubsub", "--port", str(ports.pubsub),
             "--state-port", str(ports.pubsub_state)],
            {**os.environ, **push_token},
        )  # fmt: skip
        env["PUBSUB_EMULATOR_HOST"] = f"{LOOPBACK}:{pubsub_port}"  # never Google's
        [events_port] = servers.start(
            "The events function",
            FUNCTION,
            ["devtools.runner.events_front", "--target", "link_records_push",
             "--source", events_source, "--port", str(ports.events)],
            {**events_environment(env, queue), **push_token},
            on_line=None if requests is None else requests.feed_delivery,
        )  # fmt: skip
    [function_port] = servers.start(
        "The webhook function",
        FUNCTION,
        function_args(host, ports.function, "link_records"),
        env,
        on_line=None if requests is None else requests.feed,
    )
    if queue is not None:
        queue.create(f"{LOOPBACK}:{pubsub_port}", f"http://{LOOPBACK}:{events_port}/")
    started = Ports(
        function_port,
        simulator_port,
        events_port,
        pubsub_port,
        state_port,
        ports.console,
        ports.firestore,
    )
    return started, env


def function_args(host: str, port: int, target: str, source: str = "main.py") -> list[str]:
    """`source`'s `target` served as deployed (functions-framework with gunicorn)."""
    return ["functions_framework", "--target", target, "--source", source,
            "--host", host, "--port", str(port)]  # fmt: skip


def write_secret(env: Mapping[str, str], directory: Path) -> Path | None:
    """The webhook secret given as a value, written to a file only this user may read (None
    for the development secret, which is published, and for one in Secret Manager)."""
    value = env.get("WEBHOOK_SECRET_VALUE", "")
    if not secret_lines(value) or first_secret(env) == DEV_WEBHOOK_SECRET:
        return None
    path = directory / "webhook-secret"
    path.touch(mode=0o600)
    path.write_text(value)
    return path


class StopSignals:
    """Records SIGINT, SIGTERM and SIGHUP instead of raising where they land: the waits poll
    `requested`, so a signal (or several, as `make` passes them on) never interrupts cleanup."""

    def __init__(self) -> None:
        self.requested: int | None = None
        for number in STOP_SIGNALS:
            # Set explicitly: a shell that starts us in the background passes SIGINT on ignored.
            signal.signal(number, self._record)

    def _record(self, number: int, frame: object) -> None:
        self.requested = self.requested or number

    def check(self) -> None:
        """Raise `Stopped` if a stop signal has arrived."""
        if self.requested is not None:
            raise Stopped

    def ignore_further(self) -> None:
        for number in STOP_SIGNALS:
            signal.signal(number, signal.SIG_IGN)


class Servers:
    """The children of one run, started one after the other, each ready before the next starts
    (`devtools.runner.children`), each killed by the kernel should this process die. Their output goes
    to `output` (default: ours)."""

    def __init__(self, check: Callable[[], None], output: IO[bytes] | None = None) -> None:
        self._check = check  # called while waiting; raises to stop (`StopSignals.check`)
        self._output = output or sys.stdout.buffer
        self._children: list[Child] = []

    def start(
        self,
        what: str,
        kind: Kind,
        args: list[str],
        env: Mapping[str, str],
        on_line: Callable[[bytes], None] | None = None,
    ) -> tuple[int, ...]:
        """Start a child and wait until it is ready: the ports it reported. `NotReady` (with its
        last lines) if it cannot start; `Stopped` if a stop signal arrives meanwhile."""
        child = Child(
            what, kind, args, env, output=self._output, on_line=on_line, die_with_parent=True
        )
        self._children.append(child)
        return child.wait_until_ready(seconds=READY_TIMEOUT_SECONDS, check=self._check)

    def wait_any(self) -> None:
        """Until a child exits or a stop signal arrives (`Stopped`)."""
        while all(child.process.poll() is None for child in self._children):
            self._check()
            time.sleep(0.1)

    def stop(self) -> None:
        """Stop every child, all at once (`Child.stop`)."""
        for child in self._children:
            child.interrupt()
        for child in self._children:
            child.stop()


def port_is_free(host: str, port: int) -> bool:
    """Whether a server could listen on `host:port` now."""
    with socket.socket() as probe:
        # As the servers do: a port held only by closed connections (TIME_WAIT) is free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def show_links(simulator_url: str, table_link: str) -> list[list[str]]:
    with urllib.request.urlopen(f"{simulator_url}/_sim/state", timeout=5) as answer:
        state: dict[str, Any] = json.load(answer)
    links: list[list[str]] = state["tableLinks"][table_link]["links"]
    return links


def send_example(url: str, env: Mapping[str, str], example: Path = EXAMPLE) -> tuple[int, Any]:
    """POST an example request to the webhook function at `url`, signed as it expects."""
    body = (ROOT / example).read_bytes()
    headers = {"Content-Type": "application/json"}
    secret = first_secret(env)
    if secret is not None:
        headers |= signed_headers(
            auth_mode(env["WEBHOOK_AUTH"]),
            secret,
            body,
            header=env.get("WEBHOOK_SIGNATURE_HEADER", DEFAULT_SIGNATURE_HEADER),
            token_header=env.get("WEBHOOK_TOKEN_HEADER") or None,
            now=time.time(),
        )
    request = urllib.request.Request(url, body, headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, json.load(answer)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def explain(
    host: str,
    ports: Ports,
    env: Mapping[str, str],
    simulator_url: str | None,
    queue: Queue | None,
    made_secret: bool,
    secret_file: Path | None,
    example: Path,
) -> None:
    """Say what runs where, and how to try it."""
    where = "localhost" if host == LOOPBACK else host
    url = f"http://{where}:{ports.function}"
    mode = f"WEBHOOK_AUTH={env['WEBHOOK_AUTH']}, WEBHOOK_DELIVERY={env.get('WEBHOOK_DELIVERY')}"
    rows = [("webhook function", url, mode)]
    if queue is not None:
        retries = (
            f"fed by {queue.push_subscription}: redelivered after {queue.min_backoff:g} s to "
            f"{queue.max_backoff:g} s, up to {queue.max_delivery_attempts} deliveries; a refusal "
            "is dead-lettered at once"
        )
        rows += [
            (
                "Pub/Sub simulator",
                f"{LOOPBACK}:{ports.pubsub}",
                f"topic {env['WEBHOOK_QUEUE_TOPIC']}",
            ),
            ("  its state", f"http://{LOOPBACK}:{ports.pubsub_state}/state", "as JSON"),
            ("events function", f"http://{LOOPBACK}:{ports.events}", retries),
        ]
    if simulator_url:
        rows.append(
            ("Tulip simulator", f"{simulator_url}/", "its tables and links (JSON: /_sim/state)")
        )
    else:
        rows.append(("Tulip", env["TULIP_BASE_URL"], "the real one"))
    if ports.firestore:
        rows.append(
            ("Firestore emulator", f"{LOOPBACK}:{ports.firestore}", "each delivery applied once")
        )
    print("\nRunning:")
    width = max(len(what) for what, _, _ in rows)
    for what, address, note in rows:
        print(f"  {what:<{width}} {address:<32} {note}")
    if "DEDUP_DATABASE" not in env:
        print(
            "Without deduplication: the Firestore emulator is not installed "
            "(google-cloud-cli-firestore-emulator), so a delivery sent twice is accepted twice."
        )
    if host != LOOPBACK:
        print(
            f"Only the webhook function listens on {host}, and it authenticates its "
            "callers; the rest stay on 127.0.0.1."
        )
    if queue is not None:
        tool = (
            f"PUBSUB_EMULATOR_HOST={LOOPBACK}:{ports.pubsub} .venv/bin/python -m ops.dead_letters"
        )
        print(
            f"Dead letters wait in {queue.dead_letter_subscription}; list and replay them with\n"
            f"  {tool} list {queue.dead_letter_subscription}\n"
            f"  {tool} replay {queue.dead_letter_subscription} --to {queue.requests_topic}"
        )
    if made_secret:
        print(
            f"Callers must sign with the Standard Webhooks secret made for this run, in\n"
            f"  {secret_file}\n(readable by you only, removed when the run ends; set "
            "WEBHOOK_AUTH and WEBHOOK_SECRET_VALUE to choose your own)."
        )
    command = curl_command(url, env, example, secret_file)
    if command is None:
        print(
            "\nThe webhook secret is in Secret Manager: sign requests with\n"
            "  .venv/bin/python -m ops.sign --mode "
            f"{env['WEBHOOK_AUTH']} --secret-file FILE_WITH_THE_SECRET PAYLOAD"
        )
    else:
        print("\nLink two records (from the repository's root; the command signs when it runs):\n")
        print(f"  {command}\n")
    print(
        f"Watch it work, and send, fail and replay with a click: http://localhost:{ports.console}/\n"
    )
    print("Press Ctrl-C to stop.\n", flush=True)


def demo(
    function_url: str, env: Mapping[str, str], simulator_url: str | None, *, queued: bool
) -> int:
    """Send the example request, then a batch; show the links they touch before and after (when
    queued, once the events function has made them)."""
    failed = False
    for example in (EXAMPLE, BATCH_EXAMPLE):
        body = json.loads((ROOT / example).read_text())
        named = {body.get("tableLinkId")} | {
            link.get("tableLinkId") for link in body.get("links", [])
        }
        table_links = sorted(named - {None})
        before = {}
        if simulator_url:
            for table_link in table_links:
                before[table_link] = show_links(simulator_url, table_link)
                print(f"\nBefore: {table_link} links {before[table_link]}")
        print(f"Sending {example}: {json.dumps(body)}")
        status, answer = send_example(function_url, env, example)
        print(f"Answer: {status} {json.dumps(answer)}")
        if simulator_url and queued and status == 202:
            print("Queued: waiting for the events function to make the links...")
            wait_for_change(simulator_url, before)
        if simulator_url:
            for table_link in table_links:
                print(f"After:  {table_link} links {show_links(simulator_url, table_link)}")
        failed |= status != (202 if queued else 200)
    return 1 if failed else 0


def wait_for_change(simulator_url: str, before: Mapping[str, list[list[str]]]) -> None:
    """Poll the simulator until every table link in `before` holds something new (or 30 s)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        now = {link: show_links(simulator_url, link) for link in before}
        if all(now[link] != before[link] for link in before):
            return
        time.sleep(0.1)


if __name__ == "__main__":
    sys.exit(main())
