"""`make bench`: tulip-link side by side with a minimal and a naive function, on loopback.

    .venv/bin/python -m devtools.bench [--rounds 3] [--seconds 5] [--json bench.json]

Every variant is served as deployed (functions-framework with gunicorn) against the same stub
Tulip (`devtools.bench.stub`: fast, or taking 2 s to answer), the same Secret Manager simulator and,
in queue mode, the same Pub/Sub simulator (`devtools.simulators.pubsub`, whose requests topic has no
subscription here: the bench measures the intake, which never calls Tulip), one at a time, in
rounds whose order rotates; each figure is the median over the rounds. Per variant: requests per second
and p50/p99 latency at 1 and at 16 connections (`wrk` when installed, else a small Python
client: the table says which), the cold start (process launch to the first 200, which for
tulip-link includes reading its secrets), upstream TCP connections and Secret Manager reads per
1,000 requests, and the RSS of the serving processes (gunicorn's master and worker). `bare`
(the framework and the same libraries, answering at once) is the cold-start baseline. The
variants: `minimal`, `naive`, `tulip-link` (direct mode, as before queue mode), `tulip-link
(queue)` (as `infra/` deploys the webhook function), both tulip-link modes again against the
slow Tulip, and queue mode with a delivery id on every request (`X-GitHub-Delivery`, a new one
each time, as a sender sends them) without and with deduplication against Google's Firestore
emulator (`DEDUP_DATABASE`; skipped, saying so, where the emulator is not installed).

Not part of the tests: the numbers depend on the machine. The targets are in docs/performance.md.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devtools import ROOT
from devtools.runner.children import FIRESTORE, Child, fixed_ports
from devtools.runner.firestore_emulator import emulator
from devtools.runner.run import without_settings
from devtools.simulators.pubsub import PubsubSimulator
from devtools.simulators.secret_manager import SecretManagerSimulator
from function.auth.authenticator import AuthMode
from ops.sign import signed_headers

FUNCTIONS = "devtools/bench/functions.py"
TOKEN_SECRET = "projects/bench/secrets/tulip-token"
WEBHOOK_SECRET = "projects/bench/secrets/webhook-secret"
WEBHOOK_KEY = "whsec_YmVuY2ggb25seTogbm90IGEgcmVhbCBzZWNyZXQ="
API_KEY, API_SECRET = "apikey.2_BENCH", "bench-secret"
TOPIC = "projects/bench/topics/tulip-link-requests"
BODY = json.dumps({"tableLinkId": "Bench_1", "leftRecord": "WO-1", "rightRecord": "SN-1"}).encode()
READY_SECONDS = 60


SLOW_TULIP_SECONDS = 2.0
QUEUE_WITH_IDS = "tulip-link (queue), delivery ids"
DEDUP_DATABASE = "projects/tulip-link-bench/databases/bench-dedup"
DELIVERY_HEADER = "X-GitHub-Delivery"


@dataclass(frozen=True)
class Variant:
    """One function to measure: its source, target and settings."""

    name: str
    source: str
    target: str
    env: Mapping[str, str]
    signed: bool = False  # tulip-link authenticates its callers, as deployed
    auth: AuthMode = "standard-webhooks"  # how a signed variant's requests are signed
    loaded: bool = True  # False: cold start only
    accepted: int = 200  # the status of a request done (queue mode: 202)
    slow: bool = False  # against the slow Tulip: its upstream figures are not compared
    delivery_ids: bool = False  # each request a new delivery: a fresh X-GitHub-Delivery


@dataclass
class Load:
    """What one load run measured."""

    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int

    @property
    def rps(self) -> float:
        return self.requests / self.seconds


@dataclass
class Measured:
    """Every figure of one variant in one round."""

    cold_start_s: float
    rss_mb: float
    loads: dict[int, Load] = field(default_factory=dict)
    upstream_per_1000: float | None = None
    secret_reads_per_1000: float | None = None


def main(argv: list[str] | None = None) -> int:
    """Measure, print the table, write the JSON; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m devtools.bench", description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=5, help="per load run (whole seconds)")
    parser.add_argument("--json", type=Path, default=ROOT / "bench.json")
    args = parser.parse_args(argv)

    wrk = shutil.which("wrk")
    generator = _wrk_version(wrk) if wrk else "Python client (wrk is not installed)"
    print(f"Load generator: {generator}", flush=True)
    with (
        _secret_manager() as emulator,
        _stub() as stub,
        _stub(SLOW_TULIP_SECONDS) as slow,
        _pubsub() as pubsub,
        _firestore() as firestore,
    ):
        if firestore is None:
            print("Deduplication not measured: the Firestore emulator is not installed")
        variants = _variants(emulator.host, stub.url, slow.url, pubsub.host, firestore)
        results: dict[str, list[Measured]] = {v.name: [] for v in variants}
        for round_number in range(args.rounds):
            order = (
                variants[round_number % len(variants) :] + variants[: round_number % len(variants)]
            )
            for variant in order:
                print(f"round {round_number + 1}/{args.rounds}: {variant.name}", flush=True)
                measured = _measure(variant, emulator, stub, wrk, args.seconds)
                results[variant.name].append(measured)
    report = _report(results, generator, args)
    print(_table(report))
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nWritten: {args.json}")
    return 0


def _variants(
    secret_manager: str, tulip: str, slow_tulip: str, pubsub: str, firestore: str | None
) -> list[Variant]:
    common = {"TULIP_BASE_URL": tulip, "SECRET_MANAGER_EMULATOR_HOST": secret_manager}
    # As infra/ deploys the webhook function (defaults for everything else).
    webhook = {
        **common,
        "TULIP_CREDENTIALS_SECRET": TOKEN_SECRET,
        "WEBHOOK_AUTH": "standard-webhooks",
        "WEBHOOK_SECRET": WEBHOOK_SECRET,
        "GOOGLE_CLOUD_PROJECT": "bench",
        "LOG_EXECUTION_ID": "true",
    }
    queue = {"WEBHOOK_DELIVERY": "queue", "WEBHOOK_QUEUE_TOPIC": TOPIC}
    queue |= {"PUBSUB_EMULATOR_HOST": pubsub}
    slow = {"TULIP_BASE_URL": slow_tulip}
    link = ("main.py", "link_records")
    # A GitHub-style sender: the body signed, its delivery id in a header of its own.
    github = webhook | queue | {"WEBHOOK_AUTH": "hmac-sha256"}

    def with_ids(name: str, env: Mapping[str, str]) -> Variant:
        return Variant(name, *link, env, True, "hmac-sha256", accepted=202, delivery_ids=True)

    dedup = []
    if firestore is not None:
        on = {"FIRESTORE_EMULATOR_HOST": firestore, "DEDUP_DATABASE": DEDUP_DATABASE}
        dedup.append(with_ids(f"{QUEUE_WITH_IDS}, dedup", github | on))
    return [
        Variant(
            "minimal",
            FUNCTIONS,
            "minimal",
            {**common, "TULIP_API_KEY": API_KEY, "TULIP_API_SECRET": API_SECRET},
        ),
        Variant("naive", FUNCTIONS, "naive", {**common, "TULIP_CREDENTIALS_SECRET": TOKEN_SECRET}),
        Variant("tulip-link", *link, webhook | {"WEBHOOK_DELIVERY": "direct"}, signed=True),
        Variant("tulip-link (queue)", *link, webhook | queue, signed=True, accepted=202),
        Variant(
            f"tulip-link, Tulip {SLOW_TULIP_SECONDS:g} s",
            *link,
            webhook | slow | {"WEBHOOK_DELIVERY": "direct"},
            signed=True,
            slow=True,
        ),
        Variant(
            f"tulip-link (queue), Tulip {SLOW_TULIP_SECONDS:g} s",
            *link,
            webhook | queue | slow,
            signed=True,
            accepted=202,
            slow=True,
        ),
        with_ids(QUEUE_WITH_IDS, github),
        *dedup,
        Variant("bare", FUNCTIONS, "bare", common, loaded=False),
    ]


def _measure(
    variant: Variant,
    emulator: SecretManagerSimulator,
    stub: _Stub,
    wrk: str | None,
    seconds: int,
) -> Measured:
    reads_before, stub_before = len(emulator.calls), stub.stats()
    [port] = fixed_ports(1)
    with _serving(variant, port) as (process, cold_start):
        measured = Measured(cold_start, 0.0)
        if variant.loaded:
            # Against the slow Tulip, long enough for several answers on one connection.
            duration = max(seconds, 5 * round(SLOW_TULIP_SECONDS)) if variant.slow else seconds
            for connections in (1, 16):
                headers = _headers(variant)
                if not variant.slow:  # warm up, not counted
                    _load(wrk, port, headers, 1, 1, variant.accepted, variant.delivery_ids)
                load = _load(
                    wrk, port, headers, connections, duration, variant.accepted,
                    delivery_ids=variant.delivery_ids,
                )  # fmt: skip
                if load.errors:  # the figures would measure failures, not links
                    raise SystemExit(f"{variant.name} answered {load.errors} requests non-2xx")
                measured.loads[connections] = load
        measured.rss_mb = _rss_mb(process.pid)
    if variant.loaded and not variant.slow:  # the slow stub is not the one counted
        served = sum(load.requests for load in measured.loads.values())
        stub_after = stub.stats()
        # Everything the process did, its warm-ups and cold start included, per 1,000 measured.
        measured.upstream_per_1000 = (
            1000 * (stub_after["connections"] - stub_before["connections"]) / served
        )
        measured.secret_reads_per_1000 = 1000 * (len(emulator.calls) - reads_before) / served
    return measured


@contextlib.contextmanager
def _serving(variant: Variant, port: int) -> Iterator[tuple[subprocess.Popen[bytes], float]]:
    """The variant served on `port`; yields the process and its cold start in seconds."""
    env = without_settings(os.environ) | dict(variant.env)
    started = time.monotonic()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "functions_framework",
            "--target",
            variant.target,
            "--source",
            variant.source,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        yield process, _first_success(process, port, variant, started)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _first_success(
    process: subprocess.Popen[bytes], port: int, variant: Variant, started: float
) -> float:
    """Seconds from launch to the first 200, polling the port as fast as it refuses."""
    while time.monotonic() - started < READY_SECONDS:
        if process.poll() is not None:
            raise SystemExit(f"{variant.name} exited with {process.returncode} before serving")
        try:
            status = _post(port, _headers(variant))
        except OSError:
            time.sleep(0.002)
            continue
        if status == variant.accepted:
            return time.monotonic() - started
        raise SystemExit(f"{variant.name} answered {status} to its first request")
    raise SystemExit(f"{variant.name} did not serve within {READY_SECONDS} s")


def _post(port: int, headers: Mapping[str, str], body: bytes = BODY) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("POST", "/", body, dict(headers))
        answer = connection.getresponse()
        answer.read()
        return answer.status
    finally:
        connection.close()


def _headers(variant: Variant, body: bytes = BODY) -> dict[str, str]:
    headers = {"Content-Type": "application/json"}
    if variant.signed:  # signed now: valid for WEBHOOK_TOLERANCE_SECONDS, longer than a run
        headers |= signed_headers(variant.auth, WEBHOOK_KEY, body, now=time.time())
    if variant.delivery_ids:
        headers[DELIVERY_HEADER] = uuid.uuid4().hex
    return headers


def _load(
    wrk: str | None,
    port: int,
    headers: Mapping[str, str],
    connections: int,
    seconds: int,
    accepted: int,
    delivery_ids: bool = False,
) -> Load:
    """`delivery_ids`: each request with a `DELIVERY_HEADER` of its own."""
    if wrk is not None:  # wrk counts what is not 2xx; a 200 for a 202 would be a failure anyway
        return _load_wrk(wrk, port, headers, connections, seconds, delivery_ids)
    return _load_python(port, headers, connections, seconds, accepted, delivery_ids)


# Each wrk thread numbers its requests, after a prefix of its own: no two share a delivery id.
_NEW_DELIVERY_IDS = f"""
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("prefix", string.format("%d-%d-", os.time(), threads))
end
local sent = 0
function request()
  sent = sent + 1
  wrk.headers["{DELIVERY_HEADER}"] = prefix .. sent
  return wrk.format()
end
"""


def _load_wrk(
    wrk: str,
    port: int,
    headers: Mapping[str, str],
    connections: int,
    seconds: int,
    delivery_ids: bool,
) -> Load:
    with tempfile.TemporaryDirectory() as scratch:
        script = Path(scratch) / "post.lua"
        lines = ['wrk.method = "POST"', f"wrk.body = [==[{BODY.decode()}]==]"]
        lines += [f'wrk.headers["{name}"] = [==[{value}]==]' for name, value in headers.items()]
        if delivery_ids:
            lines.append(_NEW_DELIVERY_IDS)
        script.write_text("\n".join(lines) + "\n")
        output = subprocess.run(
            [
                wrk,
                f"-t{min(connections, 2)}",
                f"-c{connections}",
                f"-d{seconds}s",
                "--timeout",
                "30s",  # wrk's own 2 s would drop every answer of the slow Tulip
                "--latency",
                "-s",
                str(script),
                f"http://127.0.0.1:{port}/",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    return parse_wrk(output)


def parse_wrk(output: str) -> Load:
    """The figures in wrk's `--latency` report."""
    total = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", output)
    if total is None:
        raise SystemExit(f"Cannot read wrk's report:\n{output}")
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return Load(
        requests=int(total.group(1)),
        seconds=_seconds(total.group(2), total.group(3)),
        p50_ms=_percentile_ms(output, "50"),
        p99_ms=_percentile_ms(output, "99"),
        errors=int(errors.group(1)) if errors else 0,
    )


def _percentile_ms(output: str, percent: str) -> float:
    match = re.search(rf"^\s+{percent}%\s+([\d.]+)(us|ms|s|m)\s*$", output, re.MULTILINE)
    if match is None:
        raise SystemExit(f"wrk's report has no {percent}% latency:\n{output}")
    return 1000 * _seconds(match.group(1), match.group(2))


def _seconds(value: str, unit: str) -> float:
    return float(value) * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[unit]


def _load_python(
    port: int,
    headers: Mapping[str, str],
    connections: int,
    seconds: float,
    accepted: int,
    delivery_ids: bool = False,
) -> Load:
    """A closed loop per connection (keep-alive), as wrk does, for when wrk is not installed."""
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def client() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine: list[float] = []
        while time.monotonic() < stop_at:
            sent = dict(headers)
            if delivery_ids:
                sent[DELIVERY_HEADER] = uuid.uuid4().hex
            began = time.perf_counter()
            connection.request("POST", "/", BODY, sent)
            answer = connection.getresponse()
            answer.read()
            mine.append(time.perf_counter() - began)
            if answer.status != accepted:
                with lock:
                    errors[0] += 1
        connection.close()
        with lock:
            latencies.extend(mine)

    began = time.monotonic()
    threads = [threading.Thread(target=client) for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - began
    quantiles = statistics.quantiles(latencies, n=100, method="inclusive")
    return Load(len(latencies), elapsed, 1000 * quantiles[49], 1000 * quantiles[98], errors[0])


def _rss_mb(pid: int) -> float:
    """The resident memory of `pid` and its children (gunicorn's master and worker), in MB."""
    total_kb = 0
    for candidate in Path("/proc").iterdir():
        if not candidate.name.isdigit():
            continue
        try:
            status = (candidate / "status").read_text()
        except OSError:
            continue  # gone meanwhile
        parent = re.search(r"^PPid:\s+(\d+)", status, re.MULTILINE)
        rss = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
        if rss and parent and pid in (int(candidate.name), int(parent.group(1))):
            total_kb += int(rss.group(1))
    return total_kb / 1024


class _Stub:
    """The stub Tulip, a process of its own so that it does not share this one's GIL."""

    def __init__(self, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self._port = port

    def stats(self) -> dict[str, int]:
        connection = http.client.HTTPConnection("127.0.0.1", self._port, timeout=10)
        try:
            connection.request("GET", "/_stats")
            stats: dict[str, int] = json.loads(connection.getresponse().read())
            return stats
        finally:
            connection.close()


@contextlib.contextmanager
def _stub(delay: float = 0.0) -> Iterator[_Stub]:
    [port] = fixed_ports(1)
    process = subprocess.Popen(
        [sys.executable, "-m", "devtools.bench.stub", str(port), str(delay)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        if process.stdout.readline().strip() != b"ready":
            raise SystemExit("The stub Tulip did not start")
        yield _Stub(port)
    finally:
        process.terminate()
        process.wait(timeout=10)


@contextlib.contextmanager
def _pubsub() -> Iterator[PubsubSimulator]:
    emulator = PubsubSimulator()
    emulator.add_topic(TOPIC)
    try:
        yield emulator
    finally:
        emulator.stop()


@contextlib.contextmanager
def _firestore() -> Iterator[str | None]:
    """Google's Firestore emulator's `host:port`, or None where it is not installed."""
    if emulator() is None:
        yield None
        return
    [port] = fixed_ports(1)
    args = ["devtools.runner.firestore_emulator", "--port", str(port)]
    child = Child("the Firestore emulator", FIRESTORE, args, without_settings(os.environ))
    try:
        child.wait_until_ready()
        yield f"127.0.0.1:{port}"
    finally:
        child.stop()


@contextlib.contextmanager
def _secret_manager() -> Iterator[SecretManagerSimulator]:
    emulator = SecretManagerSimulator()
    emulator.put(f"{TOKEN_SECRET}/versions/latest", f"{API_KEY}:{API_SECRET}")
    emulator.put(f"{WEBHOOK_SECRET}/versions/latest", WEBHOOK_KEY)
    try:
        yield emulator
    finally:
        emulator.stop()


def _wrk_version(wrk: str) -> str:
    first = subprocess.run([wrk, "--version"], check=False, capture_output=True, text=True).stdout
    return " ".join(first.split()[:2]) or "wrk"


def _median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def _report(
    results: Mapping[str, list[Measured]], generator: str, args: argparse.Namespace
) -> dict[str, Any]:
    """Medians per variant, and each as a ratio to `minimal` (cold start: to `bare`)."""
    rows: dict[str, dict[str, float | None]] = {}
    for name, rounds in results.items():
        slow = "Tulip " in name  # its first answer waits for the slow Tulip: no cold start
        row: dict[str, float | None] = {
            "cold_start_s": None if slow else _median([m.cold_start_s for m in rounds]),
            "rss_mb": _median([m.rss_mb for m in rounds]),
            "upstream_connections_per_1000": _median([m.upstream_per_1000 for m in rounds]),
            "secret_reads_per_1000": _median([m.secret_reads_per_1000 for m in rounds]),
        }
        for connections in (1, 16):
            loads = [m.loads.get(connections) for m in rounds]
            row[f"rps_{connections}"] = _median([x.rps if x else None for x in loads])
            row[f"p50_ms_{connections}"] = _median([x.p50_ms if x else None for x in loads])
            row[f"p99_ms_{connections}"] = _median([x.p99_ms if x else None for x in loads])
            row[f"errors_{connections}"] = (
                sum(x.errors for x in loads if x) if rounds[0].loads else None
            )
        rows[name] = row
    base, bare = rows["minimal"], rows["bare"]
    for row in rows.values():
        row["rps_16_vs_minimal"] = _ratio(row["rps_16"], base["rps_16"])
        row["rps_1_vs_minimal"] = _ratio(row["rps_1"], base["rps_1"])
        row["cold_start_vs_bare"] = _ratio(row["cold_start_s"], bare["cold_start_s"])
    rows["tulip-link"]["rps_16_vs_naive"] = _ratio(
        rows["tulip-link"]["rps_16"], rows["naive"]["rps_16"]
    )
    return {
        "machine": {
            "cpus": os.cpu_count(),
            "cpu": _cpu_model(),
            "python": platform.python_version(),
            "system": platform.platform(),
        },
        "load_generator": generator,
        "rounds": args.rounds,
        "seconds_per_run": args.seconds,
        "date": time.strftime("%Y-%m-%d"),
        "variants": rows,
    }


def _ratio(value: float | None, base: float | None) -> float | None:
    return None if value is None or not base else round(value / base, 2)


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _rate(value: float) -> str:
    return f"{value:,.0f}" if value >= 10 else f"{value:.1f}"  # a slow Tulip's few answers


def _table(report: Mapping[str, Any]) -> str:
    """docs/performance.md's table: one row per variant, ratios to `minimal` (cold start: to `bare`)."""
    columns: list[tuple[str, str, Callable[[Any], str]]] = [
        ("req/s, 1 conn", "rps_1", _rate),
        ("p50 / p99 ms, 1", "p50_ms_1", lambda v: f"{v:.1f}"),
        ("req/s, 16 conns", "rps_16", _rate),
        ("p50 / p99 ms, 16", "p50_ms_16", lambda v: f"{v:.1f}"),
        ("cold start s", "cold_start_s", lambda v: f"{v:.2f}"),
        ("upstream conns / 1k", "upstream_connections_per_1000", lambda v: f"{v:.1f}"),
        ("secret reads / 1k", "secret_reads_per_1000", lambda v: f"{v:.1f}"),
        ("RSS MB", "rss_mb", lambda v: f"{v:.0f}"),
    ]
    lines = ["| variant | " + " | ".join(title for title, _, _ in columns) + " |"]
    lines.append("|---" * (len(columns) + 1) + "|")
    for name, row in report["variants"].items():
        cells = []
        for _, key, show in columns:
            value = row.get(key)
            if value is None:
                cells.append("")
                continue
            cell = show(value)
            if key.startswith("p50"):
                cell += f" / {row[key.replace('p50', 'p99')]:.1f}"
            ratio = {
                "rps_1": row.get("rps_1_vs_minimal"),
                "rps_16": row.get("rps_16_vs_minimal"),
                "cold_start_s": row.get("cold_start_vs_bare"),
            }.get(key)
            if ratio is not None and name not in ("minimal", "bare"):
                cell += f" ({ratio:.2f}x)"
            cells.append(cell)
        lines.append(f"| `{name}` | " + " | ".join(cells) + " |")
    machine = report["machine"]
    lines.append(
        f"\n{machine['cpus']} CPUs ({machine['cpu']}), Python {machine['python']}; "
        f"{report['load_generator']}; median of {report['rounds']} rounds of "
        f"{report['seconds_per_run']:g} s per load run, {report['date']}."
    )
    return "\n".join(lines)
