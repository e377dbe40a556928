"""The events function settles each delivery through the real app, publishing with the real
client to the Pub/Sub simulator: done is acked; a transient failure is answered non-2xx, so
Pub/Sub delivers it again; a refusal for good is dead-lettered at its first delivery, with its
reason, and acked only once Pub/Sub confirmed the dead letter; a record Tulip does not know is
retried until the message is TULIP_NOT_FOUND_RETRY_SECONDS old. The same through Eventarc."""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterator

import grpc
import pytest
import requests

from devtools.simulators.pubsub import PubsubSimulator
from function.instance import DELIVERY_LONGEST_WAIT_SECONDS, DELIVERY_SECONDS
from tests.helpers import b64, link_url, log_lines, request_body

DEAD_TOPIC = "projects/p/topics/tulip-link-dead-letter"
DEAD = "projects/p/subscriptions/tulip-link-dead-letter"
KEY = "pair-key"
ATTEMPTS = 4  # TULIP_MAX_ATTEMPTS's default
CLOUD_EVENT = {
    "ce-id": "m-1",
    "ce-specversion": "1.0",
    "ce-type": "google.cloud.pubsub.topic.v1.messagePublished",
    "ce-source": "//pubsub.googleapis.com/projects/p/topics/tulip-link-requests",
}


@pytest.fixture
def pubsub(env, monkeypatch) -> Iterator[PubsubSimulator]:
    """The Pub/Sub simulator with the dead-letter topic and the subscription that keeps it."""
    simulator = PubsubSimulator()
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", simulator.host)
    simulator.add_topic(DEAD_TOPIC)
    simulator.add_subscription(DEAD, DEAD_TOPIC, retain_acked=True)
    env.set(DEAD_LETTER_TOPIC=DEAD_TOPIC, TULIP_NOT_FOUND_RETRY_SECONDS="60")
    yield simulator
    simulator.stop()


def message(clock, payload=None, *, age: float = 0, **attributes: str) -> dict:
    """A message as Pub/Sub delivers it, published `age` seconds before the fake clock's now."""
    published = datetime.datetime.fromtimestamp(clock.wall_now - age, datetime.UTC)
    return {
        "data": b64(payload or request_body()),
        "attributes": {"format": "tulip-link/v1", "intakeRequestId": "r-1", **attributes},
        "messageId": "m-1",
        "publishTime": published.isoformat().replace("+00:00", "Z"),
        "orderingKey": KEY,
    }


def push(push_client, delivered: dict, attempt: int = 1):
    envelope = {"message": delivered, "subscription": "projects/p/subscriptions/push"}
    return push_client.post("/", json=envelope | {"deliveryAttempt": attempt})


def dead_letters(pubsub: PubsubSimulator) -> list:
    return [delivery.message for delivery in pubsub.deliveries(DEAD)]


def test_a_refusal_is_dead_lettered_at_its_first_delivery_with_its_reason(
    push_client, pubsub, tulip, clock, capsys
):
    tulip.put(link_url(), status=409, json={"errorCode": "CONFLICT", "errorUniqueID": "abc123"})
    sent = message(clock, source="mes")
    response = push(push_client, sent)
    assert response.status_code == 200  # acked: Pub/Sub is done with it
    assert response.json["status"] == "dead_lettered"
    assert response.json["errorCode"] == "TULIP_REJECTED"
    [letter] = dead_letters(pubsub)
    assert response.json["deadLetterMessageId"] == letter.message_id
    assert json.loads(letter.data) == request_body()  # its data, unchanged
    assert letter.ordering_key == KEY
    attributes = dict(letter.attributes)
    assert attributes.pop("deadLetterReason").startswith("Tulip answered 409")
    assert attributes == {
        "format": "tulip-link/v1",
        "intakeRequestId": "r-1",
        "source": "mes",
        "errorCode": "TULIP_REJECTED",
        "tulipStatus": "409",
        "tulipErrorUniqueID": "abc123",
        "deliveryAttempt": "1",
    }
    [line] = log_lines(capsys.readouterr().out)
    assert (line["event"], line["severity"], line["errorCode"]) == (
        "link.rejected",
        "ERROR",
        "TULIP_REJECTED",
    )
    assert line["deadLetterMessageId"] == letter.message_id


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({"leftRecord": "only one side"}, "INVALID_PAYLOAD"),
        ({"not": "a link", "links": "nope"}, "INVALID_PAYLOAD"),
    ],
)
def test_a_message_that_is_not_a_valid_link_request_is_dead_lettered(
    push_client, pubsub, clock, payload, code
):
    response = push(push_client, message(clock, payload))
    assert (response.status_code, response.json["errorCode"]) == (200, code)
    [letter] = dead_letters(pubsub)
    assert json.loads(letter.data) == payload and letter.attributes["errorCode"] == code
    assert "tulipStatus" not in letter.attributes


@pytest.mark.parametrize(
    ("answer", "status"),
    [
        ({"status": 503}, 502),
        ({"status": 429, "headers": {"Retry-After": "30"}}, 429),
        ({"status": 401}, 502),
        ({"body": requests.ConnectionError()}, 502),
    ],
)
def test_a_transient_failure_is_delivered_again_not_dead_lettered(
    push_client, pubsub, tulip, clock, answer, status
):
    for _ in range(ATTEMPTS + 1):  # +1: the call after a 401 reads the token again
        tulip.put(link_url(), **answer)
    response = push(push_client, message(clock, age=10**6))  # however old
    assert response.status_code == status
    assert dead_letters(pubsub) == []
    tulip.reset()


def test_a_delivery_is_short_and_waits_only_briefly_in_the_function(
    push_client, pubsub, tulip, clock, env
):
    """Tulip slow to fail: the tries stop at the delivery's own deadline (DELIVERY_SECONDS, not
    TULIP_DEADLINE_SECONDS), and the waiting is Pub/Sub's. A rate limit asking for 30 s: one
    call, and no wait at all."""
    env.set(TULIP_DEADLINE_SECONDS="60", TULIP_MAX_ATTEMPTS="10")

    def slow_503(request):
        clock.advance(3)  # each answer takes 3 s
        return (503, {}, "")

    tulip.add_callback("PUT", link_url(), callback=slow_503)
    assert push(push_client, message(clock)).status_code == 502
    ended = 3 * len(tulip.calls) + sum(clock.sleeps)
    assert ended - 3 < DELIVERY_SECONDS  # the last try started within the delivery's deadline
    # ... and the tries stopped there: a wait (jittered, at most the longest) no longer fitted,
    # or the last try ran past it.
    assert DELIVERY_SECONDS - DELIVERY_LONGEST_WAIT_SECONDS < ended < DELIVERY_SECONDS + 3
    assert len(tulip.calls) < 10  # TULIP_MAX_ATTEMPTS did not decide
    assert all(wait <= DELIVERY_LONGEST_WAIT_SECONDS for wait in clock.sleeps)
    tulip.reset()
    calls, sleeps = len(tulip.calls), len(clock.sleeps)
    tulip.put(link_url(), status=429, headers={"Retry-After": "30"})
    assert push(push_client, message(clock)).status_code == 429
    assert len(clock.sleeps) == sleeps  # no wait at all
    assert len(tulip.calls) == calls + 1


def test_a_short_rate_limit_is_waited_out_in_the_delivery(push_client, pubsub, tulip, clock):
    tulip.put(link_url(), status=429, headers={"Retry-After": "2"})
    tulip.put(link_url(), status=204)
    assert push(push_client, message(clock)).status_code == 200
    assert clock.sleeps == [2.0]


def test_a_record_not_found_is_retried_until_the_message_is_old(push_client, pubsub, tulip, clock):
    tulip.put(link_url(), status=404)
    tulip.put(link_url(), status=404)
    assert push(push_client, message(clock, age=59)).status_code == 404  # may exist later
    assert dead_letters(pubsub) == []
    response = push(push_client, message(clock, age=61), attempt=7)
    assert (response.status_code, response.json["status"]) == (200, "dead_lettered")
    [letter] = dead_letters(pubsub)
    assert letter.attributes["tulipStatus"] == "404"
    assert letter.attributes["deliveryAttempt"] == "7"


def test_a_batch_is_dead_lettered_only_when_every_failure_is_for_good(
    push_client, pubsub, tulip, clock
):
    links = {"links": [{"tableLinkId": t, "leftRecord": "L", "rightRecord": "R"} for t in "AB"]}
    tulip.put(link_url("A"), status=409)
    for _ in range(ATTEMPTS):
        tulip.put(link_url("B"), status=503)
    assert push(push_client, message(clock, links)).status_code == 502  # B may still pass
    assert dead_letters(pubsub) == []
    tulip.put(link_url("A"), status=409)
    tulip.put(link_url("B"), status=204)
    response = push(push_client, message(clock, links))
    assert response.json["status"] == "dead_lettered"
    [letter] = dead_letters(pubsub)
    assert letter.attributes["deadLetterReason"].startswith("1 of 2 links did not succeed")


def test_a_dead_letter_not_confirmed_leaves_the_message_unacked(push_client, pubsub, tulip, clock):
    pubsub.on_publish = lambda request: grpc.StatusCode.PERMISSION_DENIED
    tulip.put(link_url(), status=422)
    response = push(push_client, message(clock))
    assert (response.status_code, response.json["errorCode"]) == (503, "QUEUE_UNAVAILABLE")
    assert "TULIP_REJECTED" in response.json["message"]  # what it would have been
    assert "not dead-lettered" in response.json["message"]
    assert dead_letters(pubsub) == []
    pubsub.on_publish = None  # the next delivery of the same message
    tulip.put(link_url(), status=422)
    assert push(push_client, message(clock)).json["status"] == "dead_lettered"


def test_without_a_dead_letter_topic_a_refusal_is_left_to_pubsub_and_said_once(
    push_client, env, tulip, clock, capsys
):
    env.set(DEAD_LETTER_TOPIC=None)
    for _ in range(2):
        tulip.put(link_url(), status=409)
        assert push(push_client, message(clock)).status_code == 409  # not acked
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    warnings = [line for line in lines if line["event"] == "settings.warning"]
    assert len(warnings) == 1 and "DEAD_LETTER_TOPIC" in warnings[0]["message"]


def test_eventarc_dead_letters_a_refusal_the_same_way(event_client, pubsub, tulip, clock):
    tulip.put(link_url(), status=409)
    data = {"message": message(clock), "subscription": "projects/p/subscriptions/eventarc"}
    assert event_client.post("/", json=data, headers=CLOUD_EVENT).status_code == 200
    [letter] = dead_letters(pubsub)
    assert letter.attributes["errorCode"] == "TULIP_REJECTED" and letter.ordering_key == KEY
    assert "deliveryAttempt" not in letter.attributes  # Eventarc does not say


def test_eventarc_retries_a_transient_failure_and_a_failed_dead_letter(
    event_client, pubsub, tulip, clock
):
    data = {"message": message(clock), "subscription": "projects/p/subscriptions/eventarc"}
    for _ in range(ATTEMPTS):
        tulip.put(link_url(), status=503)
    assert event_client.post("/", json=data, headers=CLOUD_EVENT).status_code == 502
    pubsub.on_publish = lambda request: grpc.StatusCode.PERMISSION_DENIED
    tulip.put(link_url(), status=409)
    assert event_client.post("/", json=data, headers=CLOUD_EVENT).status_code == 503
    assert dead_letters(pubsub) == []
