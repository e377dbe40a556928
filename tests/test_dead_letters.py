"""ops/dead_letters.py with the real client against the Pub/Sub simulator: listing changes
nothing; replay moves exactly the chosen messages, intact, acking only what it republished."""

from __future__ import annotations

import datetime
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import grpc
import pytest

from devtools.simulators.pubsub import PubsubSimulator
from ops import dead_letters
from tests.doubles import PushEndpoint
from tests.helpers import ROOT
from tests.processes import until

REQUESTS = "projects/p/topics/tulip-link-requests"
PUSH = "projects/p/subscriptions/tulip-link-push"
OBSERVED = "projects/p/subscriptions/observed"
DEAD_TOPIC = "projects/p/topics/tulip-link-dead-letter"
DEAD = "projects/p/subscriptions/tulip-link-dead-letter"


@pytest.fixture
def pubsub(monkeypatch) -> Iterator[PubsubSimulator]:
    emulator = PubsubSimulator()
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", emulator.host)
    for topic in (REQUESTS, DEAD_TOPIC):
        emulator.add_topic(topic)
    emulator.add_subscription(OBSERVED, REQUESTS, ordering=True)
    emulator.add_subscription(DEAD, DEAD_TOPIC, ack_deadline=60, retain_acked=True)
    yield emulator
    emulator.stop()


def link(right: str, table_link: str = "WorkOrderSerials") -> dict[str, str]:
    return {"tableLinkId": table_link, "leftRecord": "WO-1001", "rightRecord": right,
            "action": "link"}  # fmt: skip


def dead_letter(
    pubsub: PubsubSimulator, right: str, *, replays: int = 0, age_minutes: int = 5, **extra: str
) -> str:
    """A message as Pub/Sub dead-letters it (what the intake queued, plus Pub/Sub's marks)."""
    first = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=age_minutes)
    attributes = {
        "format": "tulip-link/v1",
        "intakeRequestId": f"req-{right}",
        "CloudPubSubDeadLetterSourceDeliveryCount": "5",
        "CloudPubSubDeadLetterSourceSubscription": "tulip-link-push",
        "CloudPubSubDeadLetterSourceSubscriptionProject": "p",
        "CloudPubSubDeadLetterSourceTopicPublishTime": first.isoformat().replace("+00:00", "Z"),
        **({"replayCount": str(replays)} if replays else {}),
        **extra,
    }
    return pubsub.publish(DEAD_TOPIC, json.dumps(link(right)).encode(), attributes, f"key-{right}")


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    status = dead_letters.main(list(argv), out)
    return status, out.getvalue()


def waiting(pubsub: PubsubSimulator) -> list:
    """What the dead-letter subscription still holds and has not had acknowledged."""
    return [d for d in pubsub.deliveries(DEAD) if d.state != "acked"]


def republished(pubsub: PubsubSimulator) -> list:
    return [d.message for d in pubsub.deliveries(OBSERVED)]


def test_a_real_dead_letter_is_listed_whole_and_listing_changes_nothing(pubsub):
    endpoint = PushEndpoint(default=409)  # refused for good
    try:
        pubsub.add_subscription(
            PUSH, REQUESTS, push_endpoint=endpoint.url, ordering=True,
            dead_letter_topic=DEAD_TOPIC, max_attempts=5, min_backoff=0.01, max_backoff=0.02,
        )  # fmt: skip
        pubsub.publish(REQUESTS, json.dumps(link("SN-0004")).encode(),
                       {"format": "tulip-link/v1", "intakeRequestId": "req-1"}, "k")  # fmt: skip
        until(lambda: waiting(pubsub) != [], "the dead letter")
    finally:
        endpoint.stop()
    status, shown = run("list", DEAD)
    assert status == 0
    assert "WorkOrderSerials" in shown and "WO-1001 → SN-0004" in shown and "req-1" in shown
    assert 'jsonPayload.intakeRequestId="req-1"' in shown
    assert 'jsonPayload.rightRecord="SN-0004"' in shown
    assert "1 message; the oldest waited" in shown
    status, listed = run("list", DEAD, "--json")
    [message] = json.loads(listed)["messages"]
    assert message["deliveryAttempts"] == 5 and message["replayCount"] == 0
    assert message["requestId"] == "req-1" and message["action"] == "link"
    # Nothing was acked, and everything was handed back at once: it can be pulled again now.
    [held] = waiting(pubsub)
    assert held.state == "waiting"


def test_replay_moves_the_chosen_messages_intact_and_acks_them_after(pubsub):
    for right in ("SN-1", "SN-2"):
        dead_letter(pubsub, right)
    dead_letter(pubsub, "SN-3", replays=1)
    status, shown = run("replay", DEAD, "--to", REQUESTS)
    assert status == 0 and "replayed 3, skipped 0, failed 0." in shown
    assert waiting(pubsub) == []
    by_right = {json.loads(m.data)["rightRecord"]: m for m in republished(pubsub)}
    assert sorted(by_right) == ["SN-1", "SN-2", "SN-3"]
    first = by_right["SN-1"]
    assert json.loads(first.data) == link("SN-1") and first.ordering_key == "key-SN-1"
    assert first.attributes["intakeRequestId"] == "req-SN-1"
    assert first.attributes["format"] == "tulip-link/v1"
    assert (
        first.attributes["replayCount"] == "1" and by_right["SN-3"].attributes["replayCount"] == "2"
    )


def test_a_failing_publish_leaves_its_message_where_it_was(pubsub):
    dead_letter(pubsub, "SN-1")
    pubsub.on_publish = lambda request: grpc.StatusCode.PERMISSION_DENIED
    status, shown = run("replay", DEAD, "--to", REQUESTS)
    assert status == 1 and "FAILED" in shown and "failed 1." in shown
    [held] = waiting(pubsub)
    assert held.state == "waiting"  # handed back, not acked


def test_a_message_replayed_too_often_is_skipped_unless_forced(pubsub):
    dead_letter(pubsub, "SN-1", replays=3)
    status, shown = run("replay", DEAD, "--to", REQUESTS)
    assert status == 0 and "skipped" in shown and "--force" in shown
    assert len(waiting(pubsub)) == 1 and republished(pubsub) == []
    status, shown = run("replay", DEAD, "--to", REQUESTS, "--max-replays", "5")
    assert "replayed 1" in shown
    dead_letter(pubsub, "SN-2", replays=3)
    status, shown = run("replay", DEAD, "--to", REQUESTS, "--force")
    assert "replayed 1" in shown and waiting(pubsub) == []


def test_the_filters_choose_what_is_replayed(pubsub):
    dead_letter(pubsub, "SN-1", age_minutes=120)
    dead_letter(pubsub, "SN-2", age_minutes=1)
    pubsub.publish(DEAD_TOPIC, json.dumps(link("OP-1", "StationOperators")).encode(), {}, "")
    run("replay", DEAD, "--to", REQUESTS, "--table-link", "StationOperators")
    assert [json.loads(m.data)["rightRecord"] for m in republished(pubsub)] == ["OP-1"]
    run("replay", DEAD, "--to", REQUESTS, "--older-than", "1h")
    assert sorted(json.loads(m.data)["rightRecord"] for m in republished(pubsub)) == [
        "OP-1",
        "SN-1",
    ]
    dead_letter(pubsub, "SN-3")
    run("replay", DEAD, "--to", REQUESTS, "--limit", "1")
    assert len(republished(pubsub)) == 3 and len(waiting(pubsub)) == 1


REFUSED = {
    "errorCode": "TULIP_REJECTED",
    "deadLetterReason": "Tulip answered 409: LINK_CARDINALITY_VIOLATION (SN-0004 has WO-1002)",
    "tulipStatus": "409",
    "tulipErrorUniqueID": "abc123",
    "deliveryAttempt": "1",
}


def refused(pubsub: PubsubSimulator, right: str, **reason: str) -> str:
    """A message as the events function dead-letters it: its own attributes, and the reason."""
    attributes = {"format": "tulip-link/v1", "intakeRequestId": f"req-{right}"}
    return pubsub.publish(
        DEAD_TOPIC, json.dumps(link(right)).encode(), attributes | REFUSED | reason, f"key-{right}"
    )


def test_list_says_how_each_got_there_and_why(pubsub):
    refused(pubsub, "SN-0004")
    dead_letter(pubsub, "SN-1")  # Pub/Sub gave up on it after 5 deliveries
    status, shown = run("list", DEAD)
    assert status == 0
    assert "refused at delivery 1" in shown and "TULIP_REJECTED" in shown
    assert "reason: Tulip answered 409: LINK_CARDINALITY_VIOLATION" in shown
    assert "Pub/Sub gave up after 5 deliveries" in shown
    status, listed = run("list", DEAD, "--json")
    by_right = {m["rightRecord"]: m for m in json.loads(listed)["messages"]}
    assert by_right["SN-0004"]["deadLetteredBy"] == "events function"
    assert by_right["SN-0004"]["errorCode"] == "TULIP_REJECTED"
    assert by_right["SN-0004"]["tulipStatus"] == "409"
    assert by_right["SN-0004"]["deliveryAttempts"] == 1
    assert (by_right["SN-1"]["deadLetteredBy"], by_right["SN-1"]["errorCode"]) == ("Pub/Sub", None)
    assert by_right["SN-1"]["deliveryAttempts"] == 5


def test_the_error_code_filter_and_a_replay_without_the_reason(pubsub):
    refused(pubsub, "SN-0004")
    refused(pubsub, "SN-0005", errorCode="INVALID_PAYLOAD")
    dead_letter(pubsub, "SN-1")
    status, shown = run("list", DEAD, "--error-code", "TULIP_REJECTED")
    assert "SN-0004" in shown and "SN-0005" not in shown and "SN-1" not in shown
    status, shown = run("replay", DEAD, "--to", REQUESTS, "--error-code", "TULIP_REJECTED")
    assert status == 0 and "replayed 1, skipped 0, failed 0." in shown
    [again] = republished(pubsub)
    assert dict(again.attributes) == {
        "format": "tulip-link/v1",
        "intakeRequestId": "req-SN-0004",
        "replayCount": "1",
    }  # the reason stays behind: the events function judges the message afresh
    assert again.ordering_key == "key-SN-0004"
    assert len(waiting(pubsub)) == 2


def test_a_dry_run_changes_nothing(pubsub):
    dead_letter(pubsub, "SN-1")
    status, shown = run("replay", DEAD, "--to", REQUESTS, "--dry-run")
    assert status == 0 and "would replay" in shown and "would replay 1" in shown
    assert republished(pubsub) == [] and len(waiting(pubsub)) == 1


def test_short_names_take_the_project(pubsub):
    dead_letter(pubsub, "SN-1")
    status, _ = run(
        "--project", "p", "replay", "tulip-link-dead-letter", "--to", "tulip-link-requests"
    )
    assert status == 0 and len(republished(pubsub)) == 1
    with pytest.raises(SystemExit, match="--project"):
        dead_letters.resource_name("tulip-link-dead-letter", "subscriptions", None)


@pytest.mark.parametrize(
    ("text", "seconds"), [("90s", 90), ("30m", 1800), ("2h", 7200), ("7d", 604800), ("1h30m", 5400)]
)
def test_durations(text, seconds):
    assert dead_letters.duration(text).total_seconds() == seconds
    with pytest.raises(Exception, match="duration"):
        dead_letters.duration("2 hours")


@pytest.mark.processes
@pytest.mark.parametrize("signals", [1, 2])
def test_an_interrupted_replay_acks_nothing_it_did_not_republish(pubsub, signals):
    for n in range(5):
        dead_letter(pubsub, f"SN-{n}")
    tool: list[subprocess.Popen[str]] = []
    sent = threading.Event()

    def interrupt(request):  # at the first publish: Ctrl-C (once or twice) while it is in hand
        if not sent.is_set():
            sent.set()
            os.kill(tool[0].pid, signal.SIGINT)
            if signals == 2:  # apart, or the kernel merges them into one
                time.sleep(0.5)
                os.kill(tool[0].pid, signal.SIGINT)

    pubsub.on_publish = interrupt
    env = os.environ | {"PUBSUB_EMULATOR_HOST": pubsub.host}
    tool.append(subprocess.Popen(
        [sys.executable, "-m", "ops.dead_letters", "replay", DEAD, "--to", REQUESTS],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    ))  # fmt: skip
    output, _ = tool[0].communicate(timeout=60)
    assert tool[0].returncode == (0 if signals == 1 else 130), output
    assert "Traceback" not in output, output
    acked = {json.loads(d.message.data)["rightRecord"] for d in pubsub.deliveries(DEAD)
             if d.state == "acked"}  # fmt: skip
    sent_again = {json.loads(m.data)["rightRecord"] for m in republished(pubsub)}
    assert acked <= sent_again, output  # nothing acked that is not on the topic
    assert len(acked) <= 1 and len(waiting(pubsub)) >= 4, output  # it stopped at once
    assert all(d.state == "waiting" for d in waiting(pubsub)), output  # the rest handed back
