"""`make fuzz`: schemathesis against `openapi.yaml`, on the function as `make run` serves it.

    python -m devtools.checks.fuzz [--examples 300] [--seed 1] [--delivery direct|queue|both]
                            [other `schemathesis run` options]

The function (`WEBHOOK_AUTH=none`, every other setting at its default, whatever the shell
holds) and the Tulip simulator run on free loopback ports, once in direct mode and once in queue
mode (with the Pub/Sub simulator and the events function behind it, as `make run` has them; and
`WEBHOOK_ALLOWED_ORIGINS=*`, so that the handshake's consent is fuzzed there, its refusal in
direct mode); each
mode is fuzzed in turn, and the worst exit status is the answer. schemathesis runs every phase and
every check it has, with a fixed seed, a bounded number of examples, and neither its example
database nor its cache of earlier failures, so that each run, in CI too, tries the same cases.

Reaching the core: random ids almost always stop at Tulip's 404, so schemathesis is given
dictionaries drawn from the simulator's seed: the id of a many-to-many table link and of its
records (linking them never conflicts), and base64 requests for a push envelope's
`message.data`. A dictionary value replaces a generated one only in cases meant to be valid, and
only sometimes (`PROBABILITY`), so valid ids of every shape are still tried.

Two expectations differ from schemathesis's defaults: a body within every bound of the schema
may still be over `MAX_BODY_BYTES`, which a JSON Schema cannot say, so 413 is an expected
answer to valid and to invalid data alike; and the handshake's `OPTIONS` without its required
`WebHook-Request-Origin` is any other `OPTIONS`, so 405, as every method but POST.

One rule the document states in words only: both spellings of a field (`tableLinkId` and
`table_link_id`) may be sent with the same value, which a schema cannot say, so the schema allows
one spelling per field. A negative case that only adds the second spelling with the same value
is therefore valid to the function: in direct mode Tulip's 404 for its random ids hid that, in
queue mode the intake queues it. The `map_body` hook here (schemathesis loads this module as
`SCHEMATHESIS_HOOKS`) gives such a second spelling a different value, so the case stays one the
schema can judge, and the function must refuse it.

The exit status is schemathesis's: 0 when nothing failed.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import schemathesis

from devtools import ROOT
from devtools.runner.children import LOOPBACK, NotReady
from devtools.runner.run import (
    Ports,
    Servers,
    Stopped,
    StopSignals,
    check_settings,
    function_environment,
    start_servers,
    without_settings,
)
from devtools.simulators.pubsub import Queue
from devtools.simulators.tulip import DEFAULT_SEED

# How often a dictionary value replaces a generated one: a known table link mostly, known records
# less often, so that valid ids of every shape are tried too.
PROBABILITY = {"links": 0.9, "left": 0.6, "right": 0.6}
LOG_TAIL_LINES = 60
# schemathesis's defaults for these checks, plus 413 and the handshake's 405 (see above).
EXPECTED_STATUSES = {
    "positive_data_acceptance": ["2xx", "3xx", "401", "403", "404", "409", "413", "429", "5xx"],
    "negative_data_rejection": ["400", "401", "403", "404", "405", "406", "409", "413", "415",
                                "422", "428", "429", "5xx"],
    "missing_required_header": ["400", "401", "403", "405", "406", "415", "422"],
}  # fmt: skip
FIELDS = {"tableLinkId": "links", "leftRecord": "left", "rightRecord": "right"}
SNAKE = {"tableLinkId": "table_link_id", "leftRecord": "left_record", "rightRecord": "right_record"}


def differing_spellings(body: Any) -> Any:
    """`body` with every second spelling that equals the first (at the top, in `links` items)
    changed to differ from it."""
    if not isinstance(body, dict):
        return body
    links = body.get("links")
    for item in [
        body,
        *(i for i in (links if isinstance(links, list) else []) if isinstance(i, dict)),
    ]:
        for camel, snake in SNAKE.items():
            if camel in item and snake in item and item[camel] == item[snake]:
                first = item[camel]
                item[snake] = f"{first}-other" if isinstance(first, str) else "other"
    return body


@schemathesis.hook("map_body")
def _map_body(context: Any, body: Any) -> Any:
    return differing_spellings(body)


def dictionaries(seed: dict[str, Any]) -> dict[str, list[str]]:
    """What to fill requests with: one many-to-many table link of `seed`, its records, and push
    envelope data that links them."""
    link_id, link = next(
        (name, link)
        for name, link in seed["tableLinks"].items()
        if link["relationshipType"] == "many-to-many"
    )
    left = seed["tables"][link["leftTable"]]["records"]
    right = seed["tables"][link["rightTable"]]["records"]
    single = {"tableLinkId": link_id, "leftRecord": left[0], "rightRecord": right[0]}
    batch = {
        "tableLinkId": link_id,
        "links": [{"leftRecord": a, "rightRecord": b} for a, b in zip(left, right, strict=False)],
    }
    data = [base64.b64encode(json.dumps(body).encode()).decode() for body in (single, batch)]
    return {"links": [link_id], "left": left, "right": right, "data": data}


def config(seed: dict[str, Any]) -> str:
    """schemathesis.toml for this run."""
    # No cache: schemathesis would replay the failures of earlier runs first.
    lines = ["[cache]", "enabled = false", "", "[dictionaries]"]
    for name, values in dictionaries(seed).items():
        lines.append(f"{name} = {{ values = {json.dumps(values)} }}")
    lines += ["", "[parameters]"]
    for field, dictionary in FIELDS.items():
        binding = f'{{ dictionary = "{dictionary}", probability = {PROBABILITY[dictionary]} }}'
        for name in (field, SNAKE[field]):
            for path in (f"body.{name}", f"body.links[*].{name}"):
                lines.append(f'"{path}" = {binding}')
    lines.append('"body.message.data" = { dictionary = "data", probability = 1.0 }')
    for check, expected in EXPECTED_STATUSES.items():
        lines += ["", f"[checks.{check}]", f"expected-statuses = {json.dumps(expected)}"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Serve, fuzz, stop, in each mode; the worst of schemathesis's exit statuses."""
    parser = argparse.ArgumentParser(prog="python -m devtools.checks.fuzz", description=__doc__)
    parser.add_argument("--examples", type=int, default=300, help="most cases per phase")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--delivery", choices=("direct", "queue", "both"), default="both")
    args, extra = parser.parse_known_args(argv)  # anything else goes to `schemathesis run`
    modes = ("direct", "queue") if args.delivery == "both" else (args.delivery,)
    return max(fuzz(mode, args.examples, args.seed, extra) for mode in modes)


def fuzz(delivery: str, examples: int, seed: int, extra: list[str]) -> int:
    """One mode: serve it, run schemathesis against it, stop; schemathesis's exit status."""
    ports = Ports(0, 0, 0, 0, 0, 0)  # the kernel's choice: each piece reports its own
    queue = Queue() if delivery == "queue" else None
    env, _ = function_environment(
        without_settings(os.environ)
        | {"WEBHOOK_AUTH": "none", "WEBHOOK_DELIVERY": delivery}
        | ({"WEBHOOK_ALLOWED_ORIGINS": "*"} if delivery == "queue" else {}),
        f"http://{LOOPBACK}:1",  # where the simulator is: start_servers says
        queue=queue,
        pubsub_host=f"{LOOPBACK}:1",
    )
    check_settings(env)
    print(f"--- make fuzz: WEBHOOK_DELIVERY={delivery} ---", flush=True)
    stop = StopSignals()
    with tempfile.TemporaryDirectory() as scratch, Path(scratch, "servers.log").open("w+b") as log:
        config_file = Path(scratch, "schemathesis.toml")
        config_file.write_text(config(json.loads(DEFAULT_SEED.read_text())))
        servers = Servers(stop.check, output=log)
        status = 1
        try:
            ports, env = start_servers(
                servers, host=LOOPBACK, ports=ports, simulator=True, queue=queue, env=env
            )
            command = [
                str(Path(sys.executable).with_name("schemathesis")),
                "--config-file", str(config_file),
                "run", "openapi.yaml",
                "--url", f"http://{LOOPBACK}:{ports.function}",
                "--checks", "all",
                "--max-examples", str(examples),
                "--seed", str(seed),
                "--workers", "1",
                "--generation-database", "none",
                *extra,
            ]  # fmt: skip
            hooks = os.environ | {
                "SCHEMATHESIS_HOOKS": "devtools.checks.fuzz",
                "PYTHONPATH": str(ROOT),
            }
            status = subprocess.run(command, cwd=ROOT, env=hooks, check=False).returncode
        except Stopped:
            status = 130
        except NotReady as failure:
            print(f"Not started: {failure}")
        finally:
            stop.ignore_further()
            servers.stop()
            if status != 0:  # the servers' own account of what went wrong
                log.seek(0)
                tail = log.read().decode(errors="replace").splitlines()[-LOG_TAIL_LINES:]
                print("\n".join(["--- the servers' last lines ---", *tail]))
        return status


if __name__ == "__main__":
    sys.exit(main())
