"""A backlog after an outage, drained into a rate-limited Tulip: how fast, and what is lost.

    .venv/bin/python -m devtools.bench.backlog [--links 300] [--rate 10] [--outage-deliveries 3]
                                               [--min-backoff 1] [--max-backoff 10]

`make run`'s deployed shape (the webhook function in queue mode, the Pub/Sub simulator, the
events function) against the Tulip simulator seeded with one many-to-many table link whose two
tables hold enough records. Tulip is down while `--links` links to that table are accepted (202)
and until each has been delivered and refused `--outage-deliveries` times; then Tulip comes back,
rate-limiting the table at `--rate` calls per second (the simulator's switch, a sliding window of
one second), once answering with `Retry-After` (the simulator's) and once without (what Tulip
documents). For each, it reports the time from Tulip's return to the last link made, against
the ideal (links / rate), the dead letters (which must be 0), and the most deliveries any message
needed.

Side by side in the same run: the events function as deployed, and as it was before (a delivery
spent up to `TULIP_MAX_ATTEMPTS`, 4, tries and waited out any `Retry-After` within its deadline;
Pub/Sub dead-lettered after 5 deliveries). The redelivery backoff is short here (the runner's
flags), as in the tests: after a real outage Pub/Sub's 10 s to 600 s backoff adds its own wait.

Not part of the tests: the numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devtools.runner.children import LOOPBACK, SIMULATOR, Child
from devtools.runner.run import (
    DEV_API_KEY,
    DEV_API_SECRET,
    Ports,
    Servers,
    function_environment,
    start_servers,
    without_settings,
)
from devtools.simulators.pubsub import Queue
from devtools.simulators.tulip import DEFAULT_SEED

TABLE_LINK = "BacklogLinks"
LEFT, RIGHT = "BacklogOrders", "BacklogSerials"


@dataclass(frozen=True)
class Drained:
    """One drain: seconds from Tulip's return to the last link, dead letters, most deliveries."""

    seconds: float
    dead_letters: int
    most_deliveries: int


def seed(links: int) -> dict[str, Any]:
    """The simulator's seed, plus one many-to-many table link with room for `links` pairs."""
    base: dict[str, Any] = json.loads(DEFAULT_SEED.read_text())
    lefts = [f"ORD-{n:03d}" for n in range(links // 10 + 1)]
    rights = [f"SER-{n:02d}" for n in range(10)]
    base["tables"] |= {
        LEFT: {"label": "Backlog orders", "records": lefts},
        RIGHT: {"label": "Backlog serials", "records": rights},
    }
    base["tableLinks"][TABLE_LINK] = {
        "leftTable": LEFT,
        "rightTable": RIGHT,
        "relationshipType": "many-to-many",
        "links": [],
    }
    return base


def pairs(links: int) -> list[dict[str, str]]:
    return [
        {
            "tableLinkId": TABLE_LINK,
            "leftRecord": f"ORD-{n // 10:03d}",
            "rightRecord": f"SER-{n % 10:02d}",
        }
        for n in range(links)
    ]


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as answer:
        return json.load(answer)


def _post(url: str, body: Any) -> tuple[int, Any]:
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, json.load(answer)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def drain(args: argparse.Namespace, *, retry_after: bool, before: bool, scratch: Path) -> Drained:
    """One run: the backlog made during an outage, then drained; its figures."""
    seed_file = scratch / "seed.json"
    seed_file.write_text(json.dumps(seed(args.links)))
    queue = Queue(
        min_backoff=args.min_backoff,
        max_backoff=args.max_backoff,
        max_delivery_attempts=5 if before else 100,
    )
    with (scratch / f"servers-{retry_after}-{before}.log").open("w+b") as log:
        servers = Servers(lambda: None, output=log)
        simulator = Child(
            "the Tulip simulator",
            SIMULATOR,
            ["devtools.simulators.tulip", "--port", "0", "--seed", str(seed_file)],
            os.environ,
            output=log,
        )
        try:
            [tulip_port] = simulator.wait_until_ready()
            tulip = f"http://{LOOPBACK}:{tulip_port}"
            given = without_settings(os.environ) | {
                "TULIP_BASE_URL": tulip,
                "TULIP_API_KEY": DEV_API_KEY,
                "TULIP_API_SECRET": DEV_API_SECRET,
                "WEBHOOK_AUTH": "none",
            }
            env, _ = function_environment(given, None, queue=queue, pubsub_host=f"{LOOPBACK}:1")
            ports, env = start_servers(
                servers,
                host=LOOPBACK,
                ports=Ports(0, 0, 0, 0, 0, 0),
                simulator=False,
                queue=queue,
                env=env,
                events_source="devtools/bench/before.py" if before else "main.py",
            )
            _post(f"{tulip}/_sim/faults", {"status": 503, "count": 10**7})
            webhook = f"http://{LOOPBACK}:{ports.function}"
            for pair in pairs(args.links):
                status, answer = _post(webhook, pair)
                assert status == 202, answer
            state = f"http://{LOOPBACK}:{ports.pubsub_state}/state"
            _until(lambda: _all_delivered(_get(state), queue, args.outage_deliveries), 300)
            _post(
                f"{tulip}/_sim/rate-limit",
                {"table": RIGHT, "limit": args.rate, "windowSeconds": 1, "retryAfter": retry_after},
            )
            started = time.monotonic()
            _post(f"{tulip}/_sim/faults/clear", {})

            def made() -> int:
                links: list[Any] = _get(f"{tulip}/_sim/state")["tableLinks"][TABLE_LINK]["links"]
                return len(links)

            def settled() -> bool:
                current = _get(state)["subscriptions"]
                dead = len(current[queue.dead_letter_subscription]["messages"])
                return bool(made() + dead >= args.links)

            _until(settled, 600)
            seconds = time.monotonic() - started
            dead = len(_get(state)["subscriptions"][queue.dead_letter_subscription]["messages"])
        finally:
            servers.stop()
            simulator.stop()
        log.seek(0)
        most = _most_deliveries(log.read())
    return Drained(seconds, dead, most)


def _all_delivered(state: dict[str, Any], queue: Queue, times: int) -> bool:
    messages = state["subscriptions"][queue.push_subscription]["messages"]
    return bool(messages) and all(m["deliveryAttempts"] >= times for m in messages)


def _most_deliveries(output: bytes) -> int:
    """The highest `deliveryAttempt` on an events function's line that linked."""
    most = 0
    for raw in output.splitlines():
        try:
            line = json.loads(raw)
        except ValueError:
            continue
        if isinstance(line, dict) and line.get("event") == "link.done":
            most = max(most, int(line.get("deliveryAttempt") or 0))
    return most


def _until(condition: Any, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"not done within {seconds} s")
        time.sleep(0.1)


def main(argv: list[str] | None = None) -> int:
    """Run the four drains, print the table; the exit status is 1 when anything was lost."""
    parser = argparse.ArgumentParser(
        prog="python -m devtools.bench.backlog",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--links", type=int, default=300)
    parser.add_argument("--rate", type=int, default=10, help="Tulip's limit, calls per second")
    parser.add_argument(
        "--outage-deliveries", type=int, default=3, help="deliveries each message fails first"
    )
    parser.add_argument("--min-backoff", type=float, default=1.0)
    parser.add_argument("--max-backoff", type=float, default=10.0)
    args = parser.parse_args(argv)
    ideal = args.links / args.rate
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for before in (False, True):
            for retry_after in (True, False):
                drained = drain(args, retry_after=retry_after, before=before, scratch=Path(scratch))
                rows.append((before, retry_after, drained))
                print(f"done: before={before} retryAfter={retry_after}: {drained}", flush=True)
    print(
        f"\n{args.links} links queued during an outage, then Tulip rate-limiting their table at "
        f"{args.rate}/s (ideal drain: {ideal:g} s); each message failed "
        f"{args.outage_deliveries} deliveries first; redelivery after {args.min_backoff:g} s "
        f"doubling to {args.max_backoff:g} s\n"
    )
    print(
        "| events function | Retry-After | drained in | of the limit | dead letters | most deliveries |"
    )
    print("|---|---|---:|---:|---:|---:|")
    for before, retry_after, drained in rows:
        print(
            f"| {'before (5 deliveries)' if before else 'now'} | {'yes' if retry_after else 'no'} "
            f"| {drained.seconds:.1f} s | {ideal / drained.seconds:.2f} | {drained.dead_letters} "
            f"| {drained.most_deliveries} |"
        )
    lost = any(d.dead_letters for before, _, d in rows if not before)
    return 1 if lost else 0


if __name__ == "__main__":
    sys.exit(main())
