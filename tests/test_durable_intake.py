"""Durable intake, end to end: `make run`'s deployed shape as real processes (the webhook function
in queue mode, the Pub/Sub simulator, its push subscription, the events function, the simulator),
with short retry backoffs and the deployed number of deliveries. Whatever Tulip does, a webhook
is answered at once and its link is made, waited for, or dead-lettered with its reason: never
lost, never made twice. An outage is waited out; only what needs a person is dead-lettered."""

from __future__ import annotations

import http.client
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
from devtools.runner.firestore_emulator import emulator
from devtools.runner.run import DEV_API_KEY, DEV_API_SECRET, DEV_WEBHOOK_SECRET
from devtools.simulators.pubsub import PubsubSimulator
from ops.dead_letters import Pubsub
from ops.sign import signed_headers
from tests import processes
from tests.helpers import ROOT, push_envelope
from tests.processes import Running, runner, until

pytestmark = pytest.mark.processes  # real processes: `make quick` skips them

MIN_BACKOFF, MAX_BACKOFF, OLD_ATTEMPTS = 0.1, 0.5, 5
# Short waits, the deployed 100 deliveries (the runner's default, as infra/'s).
RETRIES = ("--min-backoff", str(MIN_BACKOFF), "--max-backoff", str(MAX_BACKOFF))
# How long a message survived a failing Tulip with the old 5 deliveries at these waits.
OLD_WINDOW = sum(min(MAX_BACKOFF, MIN_BACKOFF * 2**n) for n in range(OLD_ATTEMPTS - 1))
NOT_FOUND_SECONDS = 2
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
    with runner(
        *RETRIES,
        TULIP_DEADLINE_SECONDS="5",
        TULIP_NOT_FOUND_RETRY_SECONDS=str(NOT_FOUND_SECONDS),
    ) as started:
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


def deliveries(stack: Running) -> list[int]:
    """How often each message waiting in the push subscription was delivered so far."""
    url = f"http://127.0.0.1:{stack.ports.pubsub_state}/state"
    with urllib.request.urlopen(url, timeout=10) as answer:
        state = json.load(answer)
    push = state["subscriptions"]["projects/tulip-link-local/subscriptions/tulip-link-push"]
    return [message["deliveryAttempts"] for message in push["messages"]]


def test_an_outage_five_times_longer_than_the_old_retries_is_waited_out(stack):
    """Tulip down until every message was delivered more often than the old 5 deliveries, and
    for five times as long as they lasted: no dead letter; once Tulip is back every link is made
    once, and a link and then an unlink of one pair end unlinked."""
    pair = ("SerialTestReport", "SN-0001", "TR-9002")  # not among PAIRS
    stack.simulator_call("/_sim/faults", OUTAGE)
    started = time.monotonic()
    for sent in [*PAIRS, pair]:
        status, answer, seconds = timed_post(stack, link(*sent))
        assert status == 202 and answer["status"] == "queued", answer
        assert seconds < 1, f"{sent} took {seconds:.2f} s to be accepted"
    assert stack.post(link(*pair, action="unlink"))[0] == 202

    def outlasted() -> bool:
        # The unlink waits, undelivered, behind its pair's link: one message per pair at a time.
        counts = deliveries(stack)
        delivered = [count for count in counts if count]
        return (
            len(counts) == len(PAIRS) + 2
            and len(delivered) == len(PAIRS) + 1
            and min(delivered) > OLD_ATTEMPTS
            and time.monotonic() - started > 5 * OLD_WINDOW
        )

    until(outlasted, "every message delivered more often, and longer, than before", seconds=120)
    assert made(stack) == [] and dead_letters(stack) == []  # waiting, nothing lost
    stack.simulator_call("/_sim/faults/clear", {})
    until(lambda: made(stack, "unlink") != [], "the unlink, once Tulip answers", seconds=60)
    until(lambda: len(made(stack)) >= len(PAIRS) + 1, "every link", seconds=60)
    for table_link, left, right in PAIRS:
        assert [left, right] in stack.links(table_link)
    assert sorted(made(stack)) == sorted([*PAIRS, pair])  # each made exactly once
    assert [pair[1], pair[2]] not in stack.links(pair[0])  # in the order they were accepted
    log = stack.simulator_call("/_sim/state")["log"]
    ended = [
        call["action"]
        for call in log
        if call["status"] == 204
        and call["leftRecord"] == pair[1]
        and call["rightRecord"] == pair[2]
    ]
    assert ended == ["link", "unlink"]
    assert dead_letters(stack) == []


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


def wait_for_dead_letter(stack: Running) -> Any:
    found: list[Any] = []

    def dead_lettered() -> bool:
        found.extend(dead_letters(stack))
        return bool(found)

    until(dead_lettered, "the dead letter", seconds=60)
    [message] = found
    return message


def test_a_link_tulip_refuses_for_good_is_dead_lettered_at_its_first_delivery(stack):
    # SN-0004 already has its work order (one-to-many): Tulip answers 409 every time.
    refused = link("WorkOrderSerials", "WO-1001", "SN-0004")
    status, answer = stack.post(refused)
    assert status == 202
    message = wait_for_dead_letter(stack)
    assert json.loads(message.data) == refused
    attributes = dict(message.attributes)
    assert attributes["format"] == "tulip-link/v1"
    assert attributes["intakeRequestId"] == answer["requestId"]
    assert (attributes["errorCode"], attributes["tulipStatus"]) == ("TULIP_REJECTED", "409")
    assert attributes["deliveryAttempt"] == "1"
    assert attributes["deadLetterReason"].startswith("Tulip answered 409")
    assert "CloudPubSubDeadLetterSourceDeliveryCount" not in attributes  # not Pub/Sub's doing
    log = stack.simulator_call("/_sim/state")["log"]
    assert [call["status"] for call in log] == [409]  # one call, one delivery


def test_a_record_tulip_does_not_know_is_retried_then_dead_lettered_once_old(stack):
    unknown = link("WorkOrderSerials", "WO-1001", "SN-9999")  # no such serial: 404
    started = time.monotonic()
    assert stack.post(unknown)[0] == 202
    message = wait_for_dead_letter(stack)
    assert time.monotonic() - started >= NOT_FOUND_SECONDS
    assert (message.attributes["errorCode"], message.attributes["tulipStatus"]) == (
        "TULIP_REJECTED",
        "404",
    )
    assert int(message.attributes["deliveryAttempt"]) > 1  # retried while it was young
    log = stack.simulator_call("/_sim/state")["log"]
    assert len(log) == int(message.attributes["deliveryAttempt"])  # a 404 is one call a delivery


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
    shown = listed()
    assert answer["requestId"] in shown  # the intake's, to find its log lines by
    assert "refused at delivery 1" in shown and "TULIP_REJECTED" in shown
    assert "reason: Tulip answered 409" in shown
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


def test_the_events_function_takes_only_the_pubsub_simulators_pushes(stack):
    """Its front stands in for Cloud Run IAM: a push envelope posted by anyone else (a web page
    through DNS rebinding, a local process) is refused before the function sees it."""
    forged = push_envelope(link("SerialProduct", "SN-0002", "PUMP-B"))
    port = stack.ports.events
    attempts = [
        {},  # no token: 401
        {"Authorization": "Bearer guessed"},  # 403
        {"Host": f"evil.example:{port}"},  # 401 too: no token
    ]
    for headers in attempts:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request("POST", "/", json.dumps(forged),
                           {"Content-Type": "application/json", **headers})  # fmt: skip
        assert connection.getresponse().status in (401, 403), headers
        connection.close()
    assert made(stack) == []
    status, _ = stack.post(link("SerialProduct", "SN-0002", "PUMP-B"))  # the real way in
    assert status == 202
    until(lambda: made(stack) == [("SerialProduct", "SN-0002", "PUMP-B")], "the link")


@pytest.mark.skipif(emulator() is None, reason="the Firestore emulator is not installed")
def test_the_runner_applies_each_delivery_once_against_the_firestore_emulator(stack):
    assert "Firestore emulator" in stack.printed
    body = json.dumps(link("SerialTickets", "SN-0003", "QA-8")).encode()
    headers = {"Content-Type": "application/json",
               **signed_headers("standard-webhooks", DEV_WEBHOOK_SECRET, body, now=time.time())}  # fmt: skip
    answers = []
    for _ in range(2):  # the same delivery, sent again (its answer lost, say)
        request = urllib.request.Request(stack.function, body, headers, method="POST")
        with urllib.request.urlopen(request, timeout=30) as answer:
            answers.append((answer.status, json.load(answer)))
    (first, queued), (again, duplicate) = answers
    assert (first, again) == (202, 200)
    assert duplicate == {"status": "duplicate", "requestId": queued["requestId"]}
    until(lambda: made(stack) == [("SerialTickets", "SN-0003", "QA-8")], "the one link")
