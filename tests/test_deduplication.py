"""Each delivery applied once (`DEDUP_DATABASE`), against Google's own Firestore emulator: the
webhook function through the real app (and, for two instances at once, as two real processes),
publishing to the Pub/Sub simulator or linking in the Tulip simulator.

Skipped, saying so, where the emulator is not installed (`google-cloud-cli-firestore-emulator`,
which this project's CI machines have).
"""

from __future__ import annotations

import base64
import concurrent.futures
import http.client
import json
import threading
import time
import uuid
from collections.abc import Iterator

import grpc
import pytest

from devtools.runner.children import FIRESTORE, Child, fixed_ports
from devtools.runner.firestore_emulator import emulator
from devtools.simulators.pubsub import PubsubSimulator
from function.auth import standard_webhooks
from function.clients.firestore import Claim, DeliveryStore
from function.core.deliveries import Deliveries
from function.model.delivery import DeliveryId
from function.timing import SYSTEM_CLOCK
from ops.sign import signed_headers, standard_webhooks_signature
from tests import processes
from tests.helpers import log_lines

pytestmark = [
    pytest.mark.processes,
    pytest.mark.skipif(emulator() is None, reason="the Firestore emulator is not installed"),
]

SECRET = "whsec_" + base64.b64encode(b"thirty-two bytes of dedup secret").decode()
TOPIC = "projects/p/topics/tulip-link-requests"
OBSERVED = "projects/p/subscriptions/observed"
PROJECT = "tulip-link-test"
LINK = {"tableLinkId": "StationOperators", "leftRecord": "ST-ASSEMBLY-1", "rightRecord": "OP-BOB"}


def start_emulator() -> Child:
    [port] = fixed_ports(1)
    args = ["devtools.runner.firestore_emulator", "--port", str(port)]
    child = Child("the Firestore emulator", FIRESTORE, args, processes.clean_environment({}))
    child.wait_until_ready()
    return child


@pytest.fixture(scope="module")
def firestore() -> Iterator[str]:
    """The emulator's `host:port`, for the module."""
    with processes.serve(start_emulator) as served:
        yield f"127.0.0.1:{served.port}"


@pytest.fixture
def database(env, firestore, monkeypatch) -> str:
    """A database of this test's own on the emulator, and the webhook function set to use it."""
    name = f"projects/{PROJECT}/databases/dedup-{uuid.uuid4().hex[:12]}"
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", firestore)
    env.set(DEDUP_DATABASE=name, WEBHOOK_AUTH="standard-webhooks", WEBHOOK_SECRET_VALUE=SECRET)
    return name


@pytest.fixture
def pubsub(env, monkeypatch) -> Iterator[PubsubSimulator]:
    emulator = PubsubSimulator()
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", emulator.host)
    emulator.add_topic(TOPIC)
    emulator.add_subscription(OBSERVED, TOPIC)
    env.set(WEBHOOK_DELIVERY="queue", WEBHOOK_QUEUE_TOPIC=TOPIC, WEBHOOK_SENDER="mes")
    yield emulator
    emulator.stop()


def queued(pubsub: PubsubSimulator) -> list[dict]:
    return [json.loads(d.message.data) for d in pubsub.deliveries(OBSERVED)]


def delivery(body: dict, clock, message_id: str | None = None) -> tuple[bytes, dict[str, str]]:
    """A Standard Webhooks delivery, its id `message_id` (else a new one), signed now: its body
    and headers, to be sent as often as a test likes."""
    raw = json.dumps(body).encode()
    message_id = message_id or f"msg_{uuid.uuid4().hex}"
    now = int(clock.wall_now)
    signature = standard_webhooks_signature(standard_webhooks.key(SECRET), message_id, now, raw)
    headers = {"webhook-id": message_id, "webhook-timestamp": str(now),
               "webhook-signature": signature}  # fmt: skip
    return raw, {"Content-Type": "application/json", **headers}


def send(client, sent: tuple[bytes, dict[str, str]], query: str = ""):
    raw, headers = sent
    return client.post(f"/{query}", data=raw, headers=headers)


def test_the_same_delivery_twice_is_queued_once_and_answered_duplicate(
    client, database, pubsub, clock, capsys
):
    sent = delivery(LINK, clock)
    first = send(client, sent)
    assert (first.status_code, first.json["status"]) == (202, "queued")
    again = send(client, sent)
    assert again.status_code == 200
    assert again.json == {"status": "duplicate", "requestId": first.json["requestId"]}
    assert again.headers["X-Request-Id"] != first.json["requestId"]  # its own, in the header
    assert queued(pubsub) == [{**LINK, "action": "link"}]
    lines = log_lines(capsys.readouterr().out)
    assert [line["event"] for line in lines] == ["link.queued", "link.duplicate"]
    assert lines[1]["firstRequestId"] == first.json["requestId"]
    assert lines[0]["deduplicated"] is True and lines[1]["webhookId"] == lines[0]["webhookId"]


def test_a_replayed_unlink_changes_nothing(client, database, simulator, clock):
    """Link, unlink, link again; then the captured unlink, sent again: the pair stays linked."""
    pair = {"tableLinkId": "StationOperators", "leftRecord": "ST-TEST-1", "rightRecord": "OP-CHEN"}
    unlink = delivery({**pair, "action": "unlink"}, clock)
    for sent in (delivery(pair, clock), unlink, delivery(pair, clock)):
        assert send(client, sent).status_code == 200
    replayed = send(client, unlink)
    assert (replayed.status_code, replayed.json["status"]) == (200, "duplicate")
    assert ["ST-TEST-1", "OP-CHEN"] in simulator.links("StationOperators")


def test_the_queue_down_on_the_first_try_lets_the_retry_through(client, database, pubsub, clock):
    down = {"now": True}
    pubsub.on_publish = lambda request: grpc.StatusCode.UNAVAILABLE if down["now"] else None
    sent = delivery(LINK, clock)
    first = send(client, sent)
    assert (first.status_code, first.json["errorCode"]) == (503, "QUEUE_UNAVAILABLE")
    down["now"] = False
    retried = send(client, sent)  # the claim was released
    assert (retried.status_code, retried.json["status"]) == (202, "queued")
    assert queued(pubsub) == [{**LINK, "action": "link"}]
    assert send(client, sent).json["status"] == "duplicate"


def test_a_dry_run_neither_reads_nor_writes_the_store(
    client, database, pubsub, clock, env, monkeypatch
):
    env.set(TULIP_API_KEY=None, TULIP_API_SECRET=None)  # checks all but Tulip: no Tulip here
    [nothing] = fixed_ports(1)
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", f"127.0.0.1:{nothing}")  # unreachable
    sent = delivery(LINK, clock)
    checked = send(client, sent, "?dryRun=true")
    assert (checked.status_code, checked.json["status"]) == (200, "valid")
    # ... while the real run, which must ask the store, cannot.
    refused = send(client, sent)
    assert (refused.status_code, refused.json["errorCode"]) == (503, "DEDUP_UNAVAILABLE")
    assert refused.headers["Retry-After"]
    assert queued(pubsub) == []


def test_a_delivery_without_an_id_is_accepted_as_it_comes_and_says_so(
    client, database, pubsub, env, capsys
):
    env.set(WEBHOOK_AUTH="token", WEBHOOK_SECRET_VALUE="t0ken")
    for _ in range(2):
        answer = client.post("/", json=LINK, headers={"X-Webhook-Token": "t0ken"})
        assert answer.json["status"] == "queued"
    assert len(queued(pubsub)) == 2
    lines = log_lines(capsys.readouterr().out)
    assert [line["deduplicated"] for line in lines] == [False, False]


def test_a_claim_in_progress_is_503_and_an_abandoned_one_is_taken_over(
    client, database, pubsub, clock, env
):
    env.set(TULIP_DEADLINE_SECONDS="30")
    sent = delivery(LINK, clock)
    store = DeliveryStore(database)
    try:
        deliveries = Deliveries(
            store, window=3600, stale_after=30, sender="mes", clock=clock.clock()
        )
        key = deliveries.key(DeliveryId(sent[1]["webhook-id"], signed=True))
        now = clock.wall_now
        assert store.claim(key, Claim("r-other", now - 5, now + 3600, "mes", True), 5) is None
        busy = send(client, sent)
        assert (busy.status_code, busy.json["errorCode"]) == (503, "QUEUE_UNAVAILABLE")
        assert "being accepted by another request" in busy.json["message"]
        assert busy.headers["Retry-After"]
        clock.advance(30)  # the other request's instance died: its claim is now 35 s old
        sent = delivery(LINK, clock, message_id=sent[1]["webhook-id"])  # signed afresh
        taken = send(client, sent)
        assert (taken.status_code, taken.json["status"]) == (202, "queued")
        assert send(client, sent).json == {
            "status": "duplicate",
            "requestId": taken.json["requestId"],
        }
    finally:
        store.close()


def test_a_delivery_past_the_window_is_a_new_one(client, database, pubsub, clock, env):
    env.set(DEDUP_WINDOW_SECONDS="60")
    sent = delivery(LINK, clock)
    assert send(client, sent).status_code == 202
    clock.advance(61)  # Firestore deletes it later; the function already treats it as gone
    sent = delivery(LINK, clock, message_id=sent[1]["webhook-id"])
    assert send(client, sent).json["status"] == "queued"
    assert len(queued(pubsub)) == 2


def test_firestore_stopped_is_503_and_nothing_queued(client, env, pubsub, clock, monkeypatch):
    own = start_emulator()
    try:
        monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", f"127.0.0.1:{own.port}")
        env.set(DEDUP_DATABASE=f"projects/{PROJECT}/databases/stopped",
                WEBHOOK_AUTH="standard-webhooks", WEBHOOK_SECRET_VALUE=SECRET)  # fmt: skip
        assert send(client, delivery(LINK, clock)).status_code == 202
        own.kill()
        answer = send(client, delivery({**LINK, "rightRecord": "OP-ALICE"}, clock))
        assert (answer.status_code, answer.json["errorCode"]) == (503, "DEDUP_UNAVAILABLE")
        assert answer.headers["Retry-After"]
        assert len(queued(pubsub)) == 1  # only the first
    finally:
        own.stop()


def test_two_instances_given_the_same_delivery_at_once_queue_it_exactly_once(firestore):
    """Two webhook functions, as deployed (gunicorn), on one database: the same signed delivery
    sent to both at the same moment, many times over; each time exactly one queues it."""
    pubsub = PubsubSimulator()
    try:
        pubsub.add_topic(TOPIC)
        pubsub.add_subscription(OBSERVED, TOPIC)
        settings = {
            "WEBHOOK_AUTH": "standard-webhooks",
            "WEBHOOK_SECRET_VALUE": SECRET,
            "WEBHOOK_DELIVERY": "queue",
            "WEBHOOK_QUEUE_TOPIC": TOPIC,
            "PUBSUB_EMULATOR_HOST": pubsub.host,
            "FIRESTORE_EMULATOR_HOST": firestore,
            "DEDUP_DATABASE": f"projects/{PROJECT}/databases/two-instances",
            "TULIP_BASE_URL": "http://127.0.0.1:1",
            "TULIP_API_KEY": "apikey.2_x",
            "TULIP_API_SECRET": "s",
        }
        with processes.function(settings) as one, processes.function(settings) as two:
            ports = [one.wait_until_ready()[0], two.wait_until_ready()[0]]
            rounds = 10
            for n in range(rounds):
                raw = json.dumps({**LINK, "rightRecord": f"OP-{n}"}).encode()
                headers = {"Content-Type": "application/json",
                           **signed_headers("standard-webhooks", SECRET, raw, now=time.time())}  # fmt: skip
                start = threading.Barrier(2)
                with concurrent.futures.ThreadPoolExecutor(2) as pool:
                    posts = [pool.submit(post, port, raw, headers, start) for port in ports]
                    statuses = [answer.result() for answer in posts]
                # One queued it (202); the other found it done (200 duplicate) or still being
                # accepted (503, to come back), never a second 202.
                assert statuses.count(202) == 1 and set(statuses) <= {200, 202, 503}, statuses
        assert len(pubsub.deliveries(OBSERVED)) == rounds
    finally:
        pubsub.stop()


def post(port: int, raw: bytes, headers: dict[str, str], start: threading.Barrier) -> int:
    """POST `raw` to the function on `port` once every poster is ready; the answer's status."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    start.wait()
    connection.request("POST", "/", raw, headers)
    status = connection.getresponse().status
    connection.close()
    return status


def test_a_store_shared_by_two_clients_lets_one_claim_win(firestore, monkeypatch):
    """The claim's atomicity itself: many claims of one key at once, by separate clients (as
    separate instances have), and exactly one succeeds."""
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", firestore)
    database = f"projects/{PROJECT}/databases/claims"
    stores = [DeliveryStore(database) for _ in range(4)]
    try:
        now = SYSTEM_CLOCK.wall()
        start = threading.Barrier(len(stores))

        def claim(index: int) -> bool:
            start.wait()
            claim = Claim(f"r{index}", now, now + 60, None, True)
            return stores[index].claim("one-key", claim, 10) is None

        with concurrent.futures.ThreadPoolExecutor(len(stores)) as pool:
            won = list(pool.map(claim, range(len(stores))))
        assert won.count(True) == 1
    finally:
        for store in stores:
            store.close()
