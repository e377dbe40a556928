"""How much memory a large body costs, tulip-link side by side with a function that only parses it.

    .venv/bin/python -m devtools.bench.bodies [--sizes 1,5,25] [--concurrency 4]

The webhook function reads a body whole (its signature covers every byte) and parses it before
`LINK_MAPPING` reads it, so its memory grows with the largest body it accepts times the requests
one instance serves at once. This measures that growth, to size `max_body_bytes` against an
instance's memory (infra/README.md, "Bodies and memory"): for each size, a fresh process serves
as deployed (functions-framework with gunicorn, 4 threads), `--concurrency` requests of that
size arrive at once, and the worker's peak resident memory (`VmHWM`) is read before and after.
The figure is the growth divided by the bytes in flight (size times concurrency): bytes of memory
per byte of body.

The body is a GitHub push as its documentation shows one (commits with their file lists), made
as large as asked; tulip-link checks its HMAC signature (`hmac-sha256`, as GitHub signs), maps it
with a `LINK_MAPPING` and queues one link to the Pub/Sub simulator. `parse only` (the framework,
`request.get_data()` and `json.loads`, answering at once) is what any function that reads the
body pays: the baseline. Both are served, and their secrets held, as `make bench` serves and
holds them (`devtools.bench.measure`).

Not part of the tests: the numbers depend on the machine and the Python build.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import json
import re
import sys
from pathlib import Path

from devtools.bench.measure import (
    FUNCTIONS,
    TOKEN_SECRET,
    TOPIC,
    WEBHOOK_SECRET,
    Variant,
    _headers,
    _post,
    _pubsub,
    _secret_manager,
    _serving,
)
from devtools.runner.children import fixed_ports

MIB = 1024 * 1024
MAPPING = {
    "when": "ref == 'refs/heads/main'",
    "tableLinkId": "'Bench_1'",
    "leftRecord": "head_commit.id",
    "rightRecord": "repository.full_name",
}


def push_event(size: int) -> bytes:
    """A GitHub push event of about `size` bytes: commits with their added and modified files."""

    def commit(n: int) -> dict[str, object]:
        return {
            "id": f"{n:040x}",
            "message": f"Change {n}: adjust the routing of work order WO-{n}",
            "timestamp": "2026-12-01T09:00:00Z",
            "author": {"name": "Dana", "email": "dana@acme.example", "username": "dana"},
            "added": [f"src/cells/line-{n % 7}/station-{i}.py" for i in range(20)],
            "modified": [f"docs/stations/{n}-{i}.md" for i in range(20)],
            "removed": [],
        }

    head = commit(0)
    event: dict[str, object] = {
        "ref": "refs/heads/main",
        "repository": {"full_name": "acme/line-config"},
        "head_commit": head,
        "commits": [],
    }
    per_commit = len(json.dumps(head))
    event["commits"] = [commit(n) for n in range(max(1, size // per_commit))]
    return json.dumps(event).encode()


def main(argv: list[str] | None = None) -> int:
    """Measure each size for both functions and print a table; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m devtools.bench.bodies", description=__doc__)
    parser.add_argument("--sizes", default="1,5,25", help="body sizes in MiB, comma-separated")
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args(argv)
    sizes = [float(size) for size in args.sizes.split(",")]

    rows = []
    with _secret_manager() as secrets, _pubsub() as pubsub:
        tulip_link = {
            "TULIP_BASE_URL": "http://127.0.0.1:9",  # queue mode: never called
            "TULIP_CREDENTIALS_SECRET": TOKEN_SECRET,
            "SECRET_MANAGER_EMULATOR_HOST": secrets.host,
            "PUBSUB_EMULATOR_HOST": pubsub.host,
            "GOOGLE_CLOUD_PROJECT": "bench",
            "WEBHOOK_AUTH": "hmac-sha256",
            "WEBHOOK_SECRET": WEBHOOK_SECRET,
            "WEBHOOK_DELIVERY": "queue",
            "WEBHOOK_QUEUE_TOPIC": TOPIC,
            "LINK_MAPPING": json.dumps(MAPPING),
            "MAX_BODY_BYTES": str(32 * MIB),
        }
        # Both answer make bench's small body 200: not a push event, so the mapping ignores it.
        variants = (
            Variant("parse only", FUNCTIONS, "parse_only", {}),
            Variant(
                "tulip-link", "main.py", "link_records", tulip_link, signed=True, auth="hmac-sha256"
            ),
        )
        for size in sizes:
            body = push_event(int(size * MIB))
            row = {"size_mib": round(len(body) / MIB, 2)}
            for variant in variants:
                row[variant.name] = _growth(variant, body, args.concurrency)
                print(
                    f"{row['size_mib']} MiB x {args.concurrency}: {variant.name} "
                    f"{row[variant.name]}",
                    flush=True,
                )
            rows.append(row)

    print(f"\nPeak memory growth per byte of body in flight, {args.concurrency} at once")
    print("| body | parse only | tulip-link |")
    print("|---:|---:|---:|")
    for row in rows:
        print(f"| {row['size_mib']} MiB | {row['parse only']:.1f} | {row['tulip-link']:.1f} |")
    return 0


def _growth(variant: Variant, body: bytes, concurrency: int) -> float:
    [port] = fixed_ports(1)

    def post(what: bytes) -> None:
        status = _post(port, _headers(variant, what), what)
        if status >= 300:
            raise SystemExit(f"{variant.name} answered {status}")

    with _serving(variant, port) as (process, _):
        post(push_event(4096))  # first a small one: imports, clients, secrets, a publish
        worker = _worker(process.pid)  # forked by now: it answered
        before = _memory_kb(worker, "VmRSS")
        with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
            list(pool.map(lambda _: post(body), range(concurrency)))
        peak = _memory_kb(worker, "VmHWM")
    return (peak - before) * 1024 / (len(body) * concurrency)


def _worker(master: int) -> int:
    """gunicorn's worker: the master's child (the one process that serves)."""
    for candidate in Path("/proc").iterdir():
        if candidate.name.isdigit():
            with contextlib.suppress(OSError):
                status = (candidate / "status").read_text()
                if re.search(rf"^PPid:\s+{master}$", status, re.MULTILINE):
                    return int(candidate.name)
    return master  # no gunicorn (the framework's development server serves in-process)


def _memory_kb(pid: int, field: str) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    found = re.search(rf"^{field}:\s+(\d+) kB", status, re.MULTILINE)
    assert found, field
    return int(found.group(1))


if __name__ == "__main__":
    sys.exit(main())
