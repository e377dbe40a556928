"""Durable intake, end to end: `make run`'s deployed shape as real processes (the webhook function
in queue mode, the Pub/Sub simulator, its push subscription, the events function, the simulator),
with short retry backoffs. Whatever Tulip does, a webhook is answered at once and its link is
made, retried, or dead-lettered: never lost, never made twice."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from devtools.runner.children import Child
from devtools.runner.run import DEV_API_KEY, DEV_API_SECRET
from devtools.simulators.pubsub import PubsubSimulator
from ops.dead_letters import Pubsub
from tests import processes
from tests.helpers import ROOT
from tests.processes import Running, runner, until

pytestmark = pytest.mark.processes  # real processes: `make quick` skips them

RETRIES = ("--min-backoff", "0.2", "--max-backoff", "1", "--max-delivery-attempts", "5")
DEAD_LETTERS = "projects/tulip-link-local/subscriptions/tulip-link-dead-letter"
REQUESTS_TOPIC = "projects/tulip-link-local/topics/tulip-link-requests"
OUTAGE = {"drop": True, "count": 100_000}  # every call dropped until /_sim/faults/clear

# Twenty pairs no two of which conflict: nine station-operator and ten serial-ticket pairs
# (both many-to-many) and a serial's product.
PAIRS = (
    [("StationOperators", s, o) for s in ("ST-ASSEMBLY-1", "ST-ASSEMBLY-2", "ST-TEST-1")
     for o in ("OP-ALICE", "OP-BOB", "OP-CHEN")]
    + [("SerialTickets", f"SN-000{n}", t) for n in range(1, 6) for t in ("QA-7", "QA-8")]
    + [("SerialProduct", "SN-0001", "PUMP-A")]
)  # fmt: skip


@pytest.fixture(scope="module")
def stack() -> Iterator[Running]:
    with runner(*RETRIES, TULIP_DEADLINE_SECONDS="5") as started:
        yield started


@pytest.fixture(autouse=True)
def fresh(stack):
    stack.simulator_call("/_sim/reset", {})
    dead_letters(stack, keep=False)  # each test starts with none


def link(table_link: str, left: str, right: str, action: str = "link") -> dict[str, str]:
    return {"tableLinkId": table_link, "leftRecord": left, "rightRecord": right, "action": action}


def timed_post(stack: Running, body: dict[str, Any]) -> tuple[int, dict[str, Any], float]:
    started = time.monotonic()
    status, answer = stack.post(body)
    return status, answer, time.monotonic() - started


def made(stack: Running, action: str = "link") -> list[tuple[str, str, str]]:
    """Every call of `action` Tulip accepted (204), in order: (table link, left, right)."""
    log = stack.simulator_call("/_sim/state")["log"]
    return [
        (call["tableLinkId"], call["leftRecord"], call["rightRecord"])
        for call in log
        if call["action"] == action and call["status"] == 204
    ]


def test_an_outage_loses_nothing_and_links_nothing_twice(stack):
    stack.simulator_call("/_sim/faults", OUTAGE)
    for pair in PAIRS:
        status, answer, seconds = timed_post(stack, link(*pair))
        assert status == 202 and answer["status"] == "queued", answer
        assert seconds < 1, f"{pair} took {seconds:.2f} s to be accepted"
    # The events function is failing them all meanwhile: nothing is linked, nothing is lost.
    until(lambda: len(stack.simulator_call("/_sim/state")["log"]) >= 20, "the failing calls")
    assert made(stack) == []
    stack.simulator_call("/_sim/faults/clear", {})
    until(lambda: len(made(stack)) >= len(PAIRS), "every link, once Tulip answers", seconds=60)
    for table_link, left, right in PAIRS:
        assert [left, right] in stack.links(table_link)
    assert sorted(made(stack)) == sorted(PAIRS)  # each made exactly once


def test_a_link_and_its_unlink_sent_during_an_outage_end_unlinked(stack):
    pair = ("StationOperators", "ST-ASSEMBLY-2", "OP-BOB")
    stack.simulator_call("/_sim/faults", OUTAGE)
    assert stack.post(link(*pair))[0] == 202
    assert stack.post(link(*pair, action="unlink"))[0] == 202
    stack.simulator_call("/_sim/faults/clear", {})
    until(lambda: made(stack, "unlink") != [], "the unlink", seconds=60)
    assert [pair[1], pair[2]] not in stack.links(pair[0])
    log = stack.simulator_call("/_sim/state")["log"]
    done = [call["action"] for call in log if call["status"] == 204]
    assert done == ["link", "unlink"]  # in the order they were accepted


def dead_letters(stack: Running, *, keep: bool = True) -> list[Any]:
    """What waits in the runner's dead-letter subscription: handed back after reading, or
    (`keep=False`) acknowledged."""
    with Pubsub(f"127.0.0.1:{stack.ports.pubsub}") as clients:
        client = clients.subscriber
        received = list(
            client.pull(subscription=DEAD_LETTERS, max_messages=10, timeout=10).received_messages
        )
        if received and keep:
            client.modify_ack_deadline(
                subscription=DEAD_LETTERS,
                ack_ids=[r.ack_id for r in received],
                ack_deadline_seconds=0,
            )
        elif received:
            client.acknowledge(subscription=DEAD_LETTERS, ack_ids=[r.ack_id for r in received])
        return [r.message for r in received]


def test_a_link_tulip_refuses_for_good_is_dead_lettered_intact(stack):
    # SN-0004 already has its work order (one-to-many): Tulip answers 409 every time.
    refused = link("WorkOrderSerials", "WO-1001", "SN-0004")
    status, answer = stack.post(refused)
    assert status == 202
    found: list[Any] = []

    def dead_lettered() -> bool:
        found.extend(dead_letters(stack))
        return bool(found)

    until(dead_lettered, "the dead letter", seconds=60)
    [message] = found
    assert json.loads(message.data) == refused
    attributes = dict(message.attributes)
    assert attributes["format"] == "tulip-link/v1"
    assert attributes["intakeRequestId"] == answer["requestId"]
    assert attributes["CloudPubSubDeadLetterSourceDeliveryCount"] == "5"
    assert attributes["CloudPubSubDeadLetterSourceSubscription"] == "tulip-link-push"
    log = stack.simulator_call("/_sim/state")["log"]
    assert [call["status"] for call in log] == [409] * 5  # one call per delivery, no more


def test_what_is_refused_publishes_nothing(stack):
    refused = [
        stack.post(link("StationOperators", "ST-TEST-1", "OP-CHEN"), sign=False),  # 401
        stack.post_bytes(b'{"tableLinkId": "StationOperators",'),  # 400
        stack.post(link("StationOperators", "ST-TEST-1", "")),  # 422
    ]
    assert [status for status, _ in refused] == [401, 400, 422]
    accepted = link("StationOperators", "ST-TEST-1", "OP-BOB")
    assert stack.post(accepted)[0] == 202
    until(lambda: made(stack) != [], "the one accepted link")
    # Had a refusal been published, it would have been pushed before the link sent after it.
    assert made(stack) == [tuple(accepted.values())[:3]]
    assert len(stack.simulator_call("/_sim/state")["log"]) == 1


def test_pubsub_stopped_is_503_and_nothing_is_claimed(simulator_process):
    pubsub = PubsubSimulator()
    topic = "projects/p/topics/requests"
    pubsub.add_topic(topic)
    settings = {
        "TULIP_BASE_URL": simulator_process.url,
        "TULIP_API_KEY": DEV_API_KEY,
        "TULIP_API_SECRET": DEV_API_SECRET,
        "WEBHOOK_AUTH": "none",
        "WEBHOOK_DELIVERY": "queue",
        "WEBHOOK_QUEUE_TOPIC": topic,
        "WEBHOOK_PUBLISH_TIMEOUT_SECONDS": "1",
        "PUBSUB_EMULATOR_HOST": pubsub.host,
    }
    body = json.dumps(link("StationOperators", "ST-TEST-1", "OP-BOB")).encode()
    try:
        with processes.function(settings) as served:
            served.wait_until_ready()
            assert post(served.url, body)[0] == 202
            pubsub.stop()
            started = time.monotonic()
            status, answer, headers = post(served.url, body)
            assert time.monotonic() - started < 2  # the publish timeout, plus a second
    finally:
        pubsub.stop()
    assert (status, answer["errorCode"], headers["Retry-After"]) == (503, "QUEUE_UNAVAILABLE", "5")


def post(url: str, body: bytes) -> tuple[int, dict[str, Any], dict[str, str]]:
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, json.load(answer), dict(answer.headers)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error), dict(error.headers)


@pytest.fixture
def simulator_process() -> Iterator[Child]:
    with processes.simulator() as served:
        yield served


def test_a_dead_letter_is_listed_then_linked_by_replay_once_its_cause_is_gone(stack):
    """What an operator does: the tool against make run's own Pub/Sub, as real processes."""
    refused = link("WorkOrderSerials", "WO-1003", "SN-0004")  # SN-0004 has WO-1002: 409
    status, answer = stack.post(refused)
    assert status == 202
    tool = [sys.executable, "-m", "ops.dead_letters"]
    env = os.environ | {"PUBSUB_EMULATOR_HOST": f"127.0.0.1:{stack.ports.pubsub}"}

    def listed() -> str:
        done = subprocess.run([*tool, "list", DEAD_LETTERS], env=env, cwd=ROOT,
                              capture_output=True, text=True, check=True)  # fmt: skip
        return done.stdout

    until(lambda: "WO-1003 → SN-0004" in listed(), "the dead letter, listed", seconds=60)
    assert answer["requestId"] in listed()  # the intake's, to find its log lines by
    # The cause removed: SN-0004 leaves its work order.
    assert stack.post(link("WorkOrderSerials", "WO-1002", "SN-0004", "unlink"))[0] == 202
    until(lambda: ["WO-1002", "SN-0004"] not in stack.links("WorkOrderSerials"), "the unlink")
    replay = subprocess.run(
        [*tool, "replay", DEAD_LETTERS, "--to", REQUESTS_TOPIC],
        env=env, cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert replay.returncode == 0 and "replayed 1, skipped 0, failed 0." in replay.stdout
    until(lambda: ["WO-1003", "SN-0004"] in stack.links("WorkOrderSerials"), "the replayed link")
    assert "No messages" in listed()
