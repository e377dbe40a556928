"""The fault matrix, end to end: one row per fault of Tulip or Secret Manager, each delivered
four ways to real processes on loopback: a direct HTTP request to `link_records`, a Pub/Sub push
envelope to `link_records_push`, an Eventarc CloudEvent to `link_records_pubsub`, and a webhook
to a function in queue mode, whose link the Pub/Sub simulator pushes to the events function.

Each delivery has a stack of its own (the Tulip simulator, the function as deployed, a Secret
Manager simulator; for the events function's deliveries, also the Pub/Sub simulator with the
dead-letter topic; for the queue, also the events function), so the four run at once. Every row
says what a message that meets its fault comes to (`events`: done, transient, or dead-lettered)
and asserts, for each delivery: the answer and its `Retry-After`, the calls Tulip received, the
Secret Manager reads, whether the message is acked (2xx), delivered again, or dead-lettered with
its reason at once, the log line, and that the answer came within the deadline. Through the
queue, the webhook's answer is 202 within a second whatever the fault, the intake reads no
secret, and the row's answer is the events function's to the push (the backoff is long, so a
row sees only the first delivery; test_durable_intake.py follows messages further).

Small settings keep it quick: 2 attempts of at most 1 s each, a 3 s deadline, no secret cache
(so each request reads Secret Manager and meets its faults).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal

import grpc
import pytest

from devtools.runner.children import Child, fixed_ports
from devtools.runner.run import DEV_API_KEY, DEV_API_SECRET
from devtools.simulators.pubsub import Delivery as Pushed
from devtools.simulators.pubsub import PubsubSimulator
from devtools.simulators.secret_manager import SecretManagerSimulator
from function.clients.secret_manager import READ_TRIES
from tests import processes
from tests.helpers import b64

pytestmark = pytest.mark.processes  # real processes: `make quick` skips them

Delivery = Literal["http", "push", "eventarc", "queue"]
DELIVERIES: tuple[Delivery, ...] = ("http", "push", "eventarc", "queue")
TOPIC = "projects/p/topics/tulip-link-requests"
PUSH = "projects/p/subscriptions/tulip-link-push"
DEAD_TOPIC = "projects/p/topics/tulip-link-dead-letter"
DEAD = "projects/p/subscriptions/tulip-link-dead-letter"
DEADLINE = 3.0
# What an answer may take beyond the function's deadline: the HTTP exchange on loopback, and a
# busy CI machine scheduling the processes.
SLACK = 0.75
SETTINGS = {
    "TULIP_MAX_ATTEMPTS": "2",
    "TULIP_TIMEOUT_SECONDS": "1",
    "TULIP_DEADLINE_SECONDS": str(DEADLINE),
    "SECRET_CACHE_TTL_SECONDS": "0",
    "WEBHOOK_AUTH": "none",
}
TOKEN_VERSION = "projects/p/secrets/tulip-token/versions/latest"
TOKEN = f"{DEV_API_KEY}:{DEV_API_SECRET}"
PAIR = ("SerialProduct", "SN-0001", "PUMP-A")
REQUEST = {"tableLinkId": PAIR[0], "leftRecord": PAIR[1], "rightRecord": PAIR[2]}


@dataclass
class Answer:
    status: int
    body: Any
    retry_after: str | None
    seconds: float
    request_id: str


@dataclass
class Stack:
    """One delivery's simulator, function and Secret Manager."""

    delivery: Delivery
    secrets: SecretManagerSimulator
    exits: contextlib.ExitStack
    simulator: Child
    function: Child = field(init=False)
    events: Child | None = None  # the queue's: behind the push subscription
    pubsub: PubsubSimulator | None = None

    def sim(self, path: str, payload: object = None) -> Any:
        connection = http.client.HTTPConnection("127.0.0.1", self.simulator.port, timeout=10)
        body = None if payload is None else json.dumps(payload).encode()
        connection.request(
            "GET" if body is None else "POST", path, body, {"Content-Type": "application/json"}
        )
        return json.loads(connection.getresponse().read())

    def tulip_calls(self) -> int:
        calls: int = self.sim("/_sim/state")["calls"]
        return calls

    def restart_simulator(self) -> None:
        self.simulator.stop()
        self.simulator = self.exits.enter_context(processes.simulator(self.simulator.port))

    def send(self) -> Answer:
        """REQUEST, delivered this stack's way; timed from the first byte sent."""
        message_id = uuid.uuid4().hex
        headers = {"Content-Type": "application/json"}
        message = {"data": b64(REQUEST), "messageId": message_id, "attributes": {}}
        subscription = "projects/p/subscriptions/tulip-link-push"
        if self.delivery in ("http", "queue"):
            body: object = REQUEST
        elif self.delivery == "push":
            body = {"message": message, "subscription": subscription, "deliveryAttempt": 1}
        else:
            body = {"message": message, "subscription": subscription}
            headers |= {
                "ce-id": message_id,
                "ce-specversion": "1.0",
                "ce-type": "google.cloud.pubsub.topic.v1.messagePublished",
                "ce-source": "//pubsub.googleapis.com/projects/p/topics/tulip-link",
            }
        connection = http.client.HTTPConnection("127.0.0.1", self.function.port, timeout=30)
        started = time.monotonic()
        connection.request("POST", "/", json.dumps(body).encode(), headers)
        response = connection.getresponse()
        raw = response.read()
        seconds = time.monotonic() - started
        try:
            parsed: Any = json.loads(raw)
        except ValueError:
            parsed = raw.decode()
        # The answer names its request; an Eventarc event acked answers nothing: its message id
        # is on its log line too.
        request_id = response.getheader("X-Request-Id") or message_id
        return Answer(
            response.status, parsed, response.getheader("Retry-After"), seconds, request_id
        )

    def log_line(self, request_id: str) -> dict[str, Any]:
        """The function's outcome line for `request_id` (polled: it is written as it answers);
        through the queue, the events function's line for the message the intake queued."""
        served = self.events or self.function
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            for line in list(served.lines):
                if request_id in line and '"link.' in line:
                    found: dict[str, Any] = json.loads(line)
                    return found
            time.sleep(0.01)
        raise AssertionError(f"no outcome line for {request_id}")

    def dead_letters(self) -> list[Pushed]:
        """What the events function dead-lettered (its subscription keeps it)."""
        assert self.pubsub is not None
        return self.pubsub.deliveries(DEAD)

    def pushed(self) -> Pushed | None:
        """Through the queue: once the events function has answered the first push, the
        message's delivery if Pub/Sub still holds it (None: acked)."""
        assert self.pubsub is not None
        pubsub = self.pubsub

        def answered() -> bool:
            held = pubsub.deliveries(PUSH)
            return held == [] or held[0].state == "waiting"

        processes.until(answered, "the events function's answer to the push")
        held = pubsub.deliveries(PUSH)
        return held[0] if held else None


@contextlib.contextmanager
def stack(delivery: Delivery) -> Iterator[Stack]:
    with contextlib.ExitStack() as exits:
        secrets = SecretManagerSimulator()
        exits.callback(secrets.stop)
        secrets.put(TOKEN_VERSION, TOKEN)
        # A port it can be started on again (test_tulip_stopped_mid_call_then_started_again).
        [port] = fixed_ports(1)
        simulator = exits.enter_context(processes.simulator(port))
        built = Stack(delivery, secrets, exits, simulator)
        settings = SETTINGS | {
            "TULIP_BASE_URL": simulator.url,
            "TULIP_CREDENTIALS_SECRET": TOKEN_VERSION,
            "SECRET_MANAGER_EMULATOR_HOST": secrets.host,
        }
        if delivery != "http":  # the events function's: it dead-letters what needs a person
            built.pubsub = pubsub = PubsubSimulator()
            exits.callback(pubsub.stop)
            pubsub.add_topic(DEAD_TOPIC)
            pubsub.add_subscription(DEAD, DEAD_TOPIC)
            settings = settings | {
                "DEAD_LETTER_TOPIC": DEAD_TOPIC,
                "PUBSUB_EMULATOR_HOST": pubsub.host,
            }
        if delivery == "queue":
            assert built.pubsub is not None
            pubsub = built.pubsub
            pubsub.add_topic(TOPIC)
            built.events = exits.enter_context(processes.function(settings, "link_records_push"))
            built.events.wait_until_ready()
            # A long backoff: a row sees the first delivery only, and the next row purges.
            pubsub.add_subscription(
                PUSH, TOPIC, push_endpoint=built.events.url, ordering=True,
                dead_letter_topic="projects/p/topics/dead", min_backoff=300, ack_deadline=30,
            )  # fmt: skip
            settings = settings | {"WEBHOOK_DELIVERY": "queue", "WEBHOOK_QUEUE_TOPIC": TOPIC}
        target = {"eventarc": "link_records_pubsub", "push": "link_records_push"}.get(
            delivery, "link_records"
        )
        built.function = exits.enter_context(processes.function(settings, target))
        built.function.wait_until_ready()
        yield built


@pytest.fixture(scope="module")
def stacks() -> Iterator[dict[Delivery, Stack]]:
    with contextlib.ExitStack() as exits, ThreadPoolExecutor(len(DELIVERIES)) as pool:
        started = list(pool.map(lambda d: exits.enter_context(stack(d)), DELIVERIES))
        yield dict(zip(DELIVERIES, started, strict=True))


@pytest.fixture(autouse=True)
def fresh(stacks: dict[Delivery, Stack]) -> None:
    for each in stacks.values():
        if each.pubsub is not None:
            each.pubsub.purge(DEAD)
            if each.delivery == "queue":
                each.pubsub.purge(PUSH)
        each.sim("/_sim/reset", {})
        each.secrets.put(TOKEN_VERSION, TOKEN)
        each.secrets.failures.clear()
        each.secrets.calls.clear()


def on_each(stacks: dict[Delivery, Stack], work: Callable[[Stack], None]) -> None:
    """`work` on every delivery's stack at once; the first failure is raised."""
    with ThreadPoolExecutor(len(stacks)) as pool:
        for done in [pool.submit(work, each) for each in stacks.values()]:
            done.result()


def faults(*specs: dict[str, Any]) -> Callable[[Stack], None]:
    def arrange(each: Stack) -> None:
        for spec in specs:
            each.sim("/_sim/faults", spec)

    return arrange


def redirect(each: Stack) -> None:
    # To the very call it came for: following it would be a second call the simulator counts.
    again = f"{each.simulator.url}/api/v3/tableLinks/{PAIR[0]}/link"
    each.sim("/_sim/faults", {"status": 307, "location": again, "body": "empty"})


def secret_failures(*codes: grpc.StatusCode) -> Callable[[Stack], None]:
    def arrange(each: Stack) -> None:
        each.secrets.failures.extend(codes)

    return arrange


def secret_missing(each: Stack) -> None:
    del each.secrets.values[TOKEN_VERSION]


def secret_malformed(each: Stack) -> None:
    each.secrets.put(TOKEN_VERSION, "a token without its secret")


@dataclass(frozen=True)
class Row:
    fault: str
    arrange: Callable[[Stack], None]
    status: int
    error_code: str | None
    retry_after: str | None
    tulip_calls: int
    secret_reads: int = 1
    # What a message meeting it comes to: acked, delivered again, or dead-lettered at once.
    events: Literal["done", "transient", "dead-lettered"] = "transient"

    def __str__(self) -> str:
        return self.fault


UNAVAILABLE = ("TULIP_UNAVAILABLE", "5")
ROWS = [
    Row("no fault", faults(), 200, None, None, 1, events="done"),
    Row("one 503, then success",
        faults({"status": 503, "retryAfter": 0}), 200, None, None, 2, events="done"),
    Row("429 with Retry-After",
        faults({"status": 429, "retryAfter": 1, "count": 2}), 429, "TULIP_RATE_LIMITED", "1", 2),
    Row("429 without Retry-After",
        faults({"status": 429, "count": 2}), 429, "TULIP_RATE_LIMITED", "5", 2),
    Row("429 whose Retry-After passes the deadline",
        faults({"status": 429, "retryAfter": 10}), 429, "TULIP_RATE_LIMITED", "10", 1),
    Row("500", faults({"status": 500, "count": 2}), 502, *UNAVAILABLE, 2),
    Row("502", faults({"status": 502, "count": 2}), 502, *UNAVAILABLE, 2),
    Row("503", faults({"status": 503, "count": 2}), 502, *UNAVAILABLE, 2),
    Row("504", faults({"status": 504, "count": 2}), 502, *UNAVAILABLE, 2),
    Row("502 with an HTML page",
        faults({"status": 502, "body": "html", "count": 2}), 502, *UNAVAILABLE, 2),
    Row("503 with an empty body",
        faults({"status": 503, "body": "empty", "count": 2}), 502, *UNAVAILABLE, 2),
    Row("404 with an empty body",
        faults({"status": 404, "body": "empty"}), 404, "TULIP_REJECTED", None, 1),
    Row("409 (for good)",
        faults({"status": 409}), 409, "TULIP_REJECTED", None, 1, events="dead-lettered"),
    Row("dropped connection", faults({"drop": True, "count": 2}), 502, *UNAVAILABLE, 2),
    Row("slower than the timeout",
        faults({"delaySeconds": 1.5, "count": 2}), 504, "TULIP_TIMEOUT", None, 2),
    Row("trickling in, a byte at a time",
        faults({"trickleSeconds": 6, "count": 2}), 504, "TULIP_TIMEOUT", None, 2),
    Row("redirect", redirect, 502, *UNAVAILABLE, 1),
    Row("Secret Manager unavailable",
        secret_failures(*[grpc.StatusCode.UNAVAILABLE] * READ_TRIES),
        503, "CREDENTIALS_UNAVAILABLE", "5", 0, secret_reads=READ_TRIES),
    Row("Secret Manager denies access",
        secret_failures(grpc.StatusCode.PERMISSION_DENIED),
        503, "CREDENTIALS_UNAVAILABLE", "5", 0),
    Row("the secret is missing", secret_missing, 503, "CREDENTIALS_UNAVAILABLE", "5", 0),
    Row("the secret is not a token", secret_malformed, 500, "MISCONFIGURED", None, 0),
]  # fmt: skip


@pytest.mark.parametrize("row", ROWS, ids=str)
def test_fault(stacks: dict[Delivery, Stack], row: Row) -> None:
    def check(each: Stack) -> None:
        row.arrange(each)
        if each.delivery == "queue":
            check_queued(each, row)
            return
        answer = each.send()
        where = f"{each.delivery}: {answer}"
        acked = 200 <= answer.status < 300
        if each.delivery != "http" and row.events == "dead-lettered":
            assert answer.status == 200, where  # acked
            if each.delivery == "push":  # Eventarc's answer has no body
                assert answer.body["status"] == "dead_lettered", where
                assert answer.body["errorCode"] == row.error_code, where
            [letter] = each.dead_letters()
            assert letter.message.attributes["errorCode"] == row.error_code, where
        else:
            assert answer.status == row.status, where
            assert acked == (row.events == "done"), where
            if row.error_code is not None:
                assert answer.body["errorCode"] == row.error_code, where
            assert answer.retry_after == row.retry_after, where
            if each.delivery != "http":
                assert each.dead_letters() == [], where
        assert each.tulip_calls() == row.tulip_calls, where
        assert len(each.secrets.calls) == row.secret_reads, where
        assert answer.seconds < DEADLINE + SLACK, where
        line = each.log_line(answer.request_id)
        assert line["event"] == ("link.done" if row.status == 200 else f"link.{kind(row)}"), line

    on_each(stacks, check)


def check_queued(each: Stack, row: Row) -> None:
    """The row, through the queue: accepted at once, then met by the events function."""
    intake = each.send()
    where = f"queue: {intake}"
    assert intake.status == 202 and intake.body["status"] == "queued", where
    assert intake.seconds < 1 + SLACK, where
    line = each.log_line(intake.request_id)  # the events function's, by intakeRequestId
    held = each.pushed()
    where = f"queue: {line}"
    assert line["status"] == row.status and line.get("errorCode") == row.error_code, where
    assert line["event"] == ("link.done" if row.status == 200 else f"link.{kind(row)}"), where
    if row.events == "done":
        assert held is None, where  # acked
    elif row.events == "dead-lettered":
        assert held is None and len(each.dead_letters()) == 1, where  # in the dead letters
    else:  # handed back, to be delivered again
        assert held is not None and (held.attempts, held.last_status) == (1, row.status), where
        assert each.dead_letters() == [], where
    assert each.tulip_calls() == row.tulip_calls, where
    assert len(each.secrets.calls) == row.secret_reads, where  # all the events function's
    assert line["latencyMs"] < (DEADLINE + SLACK) * 1000, where


def kind(row: Row) -> str:
    return "rejected" if row.error_code == "TULIP_REJECTED" else "failed"


def test_tulip_stopped_mid_call_then_started_again(stacks: dict[Delivery, Stack]) -> None:
    """The call in flight when Tulip goes away is 502 and delivered again; once it is back, the
    next delivery links (the dead pooled connection is not reused). Through the queue, the same
    is test_durable_intake.py's outage."""

    def check(each: Stack) -> None:
        # Every call waits while this Tulip lives (longer than an attempt may), so none is
        # answered before it vanishes, however late that is on a loaded machine.
        each.sim("/_sim/faults", {"delaySeconds": 2, "count": 100})
        answers: list[Answer] = []
        sending = threading.Thread(target=lambda: answers.append(each.send()))
        sending.start()
        processes.until(lambda: each.tulip_calls() == 1, "the call to reach Tulip")
        each.simulator.kill()  # gone at once, the call in flight cut off
        sending.join(timeout=30)
        [answer] = answers
        where = f"{each.delivery}: {answer}"
        assert (answer.status, answer.retry_after) == (502, "5"), where
        assert answer.body["errorCode"] == "TULIP_UNAVAILABLE", where
        assert answer.seconds < DEADLINE + SLACK, where

        each.restart_simulator()
        again = each.send()
        assert again.status == 200, f"{each.delivery}: {again}"
        assert each.tulip_calls() == 1
        links = each.sim("/_sim/state")["tableLinks"][PAIR[0]]["links"]
        assert links == [[PAIR[1], PAIR[2]]]

    on_each({d: each for d, each in stacks.items() if d != "queue"}, check)
