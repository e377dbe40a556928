"""The Pub/Sub simulator (devtools/simulators/pubsub.py) does what Pub/Sub does where tulip-link relies
on it, driven by Google's own client: publish, pull, ack, hand back, push with its envelope,
retries with backoff, dead letters with their attributes, and one outstanding message per
ordering key."""

from __future__ import annotations

import base64
import http.client
import json
from collections.abc import Iterator

import pytest

from devtools.simulators.pubsub import DEAD_LETTER_ATTRIBUTES, PubsubSimulator, Queue, serve_state
from ops.dead_letters import Pubsub
from tests.doubles import PushEndpoint
from tests.processes import until

TOPIC = "projects/p/topics/requests"
PULL = "projects/p/subscriptions/pull"
PUSH = "projects/p/subscriptions/push"
DEAD_TOPIC = "projects/p/topics/dead"
DEAD = "projects/p/subscriptions/dead"


@pytest.fixture
def pubsub() -> Iterator[PubsubSimulator]:
    emulator = PubsubSimulator()
    emulator.add_topic(TOPIC)
    yield emulator
    emulator.stop()


@pytest.fixture
def clients(pubsub) -> Iterator[Pubsub]:
    """Google's clients, on a channel of their own to this test's Pub/Sub, closed after it."""
    with Pubsub(pubsub.host) as both:
        yield both


@pytest.fixture
def endpoint() -> Iterator[PushEndpoint]:
    double = PushEndpoint()
    yield double
    double.stop()


def publish(clients: Pubsub, data: dict, key: str = "", **attributes: str) -> str:
    message_id: str = clients.publisher.publish(
        TOPIC, json.dumps(data).encode(), ordering_key=key, **attributes
    ).result(timeout=10)
    return message_id


def pull(clients: Pubsub, subscription: str, most: int = 10) -> list:
    response = clients.subscriber.pull(subscription=subscription, max_messages=most, timeout=10)
    return list(response.received_messages)


def data_of(envelope: dict) -> dict:
    data: dict = json.loads(base64.b64decode(envelope["message"]["data"]))
    return data


def test_publish_pull_ack(clients, pubsub):
    pubsub.add_subscription(PULL, TOPIC)
    first, second = publish(clients, {"n": 1}, x="1"), publish(clients, {"n": 2})
    assert first != second
    received = pull(clients, PULL)
    assert [json.loads(r.message.data) for r in received] == [{"n": 1}, {"n": 2}]
    assert received[0].message.attributes["x"] == "1"
    assert received[0].delivery_attempt == 0  # no dead-letter policy: not counted, as on Google
    assert pull(clients, PULL) == []  # outstanding until acked or handed back
    clients.subscriber.acknowledge(subscription=PULL, ack_ids=[received[0].ack_id])
    clients.subscriber.modify_ack_deadline(
        subscription=PULL, ack_ids=[received[1].ack_id], ack_deadline_seconds=0
    )
    [again] = pull(clients, PULL)
    assert json.loads(again.message.data) == {"n": 2}
    assert [d.state for d in pubsub.deliveries(PULL)] == ["outstanding"]


def test_a_message_not_acked_in_time_is_delivered_again(clients, pubsub):
    pubsub.add_subscription(PULL, TOPIC, ack_deadline=0.2, min_backoff=0.05)
    publish(clients, {"n": 1})
    assert len(pull(clients, PULL)) == 1
    until(lambda: pull(clients, PULL) != [], "the redelivery after the ack deadline", seconds=10)
    assert pubsub.deliveries(PULL)[0].attempts == 2


def test_push_delivers_the_envelope_pubsub_sends_and_a_2xx_acks(clients, pubsub, endpoint):
    pubsub.add_topic(DEAD_TOPIC)
    pubsub.add_subscription(PUSH, TOPIC, push_endpoint=endpoint.url, dead_letter_topic=DEAD_TOPIC)
    message_id = publish(clients, {"n": 1}, key="pair", source="mes")
    until(lambda: pubsub.deliveries(PUSH) == [], "the ack")
    [envelope] = endpoint.envelopes
    message = envelope["message"]
    assert json.loads(base64.b64decode(message["data"])) == {"n": 1}
    assert message["attributes"] == {"source": "mes"}
    assert message["messageId"] == message["message_id"] == message_id
    assert message["publishTime"].endswith("Z") and message["orderingKey"] == "pair"
    assert envelope["subscription"] == PUSH and envelope["deliveryAttempt"] == 1


def test_without_a_dead_letter_policy_a_push_has_no_delivery_attempt(clients, pubsub, endpoint):
    pubsub.add_subscription(PUSH, TOPIC, push_endpoint=endpoint.url)
    publish(clients, {"n": 1})
    until(lambda: endpoint.envelopes != [], "the push")
    assert "deliveryAttempt" not in endpoint.envelopes[0]
    assert "orderingKey" not in endpoint.envelopes[0]["message"]  # none was given


def test_a_nack_is_retried_with_backoff_then_dead_lettered_with_pubsubs_attributes(
    clients, pubsub, endpoint
):
    endpoint.default = 503
    pubsub.add_topic(DEAD_TOPIC)
    pubsub.add_subscription(DEAD, DEAD_TOPIC)
    pubsub.add_subscription(
        PUSH,
        TOPIC,
        push_endpoint=endpoint.url,
        dead_letter_topic=DEAD_TOPIC,
        max_attempts=5,
        min_backoff=0.05,
        max_backoff=0.2,
    )
    publish(clients, {"n": 1}, key="pair", source="mes")
    until(lambda: pull(clients, DEAD) != [] or False, "the dead letter", seconds=20)
    assert [e["deliveryAttempt"] for e in endpoint.envelopes] == [1, 2, 3, 4, 5]
    assert pubsub.deliveries(PUSH) == []  # the source subscription is done with it
    [dead] = [d.message for d in pubsub.deliveries(DEAD)]
    assert json.loads(dead.data) == {"n": 1} and dead.ordering_key == "pair"
    assert dead.attributes["source"] == "mes"
    assert set(DEAD_LETTER_ATTRIBUTES) <= set(dead.attributes)
    assert dead.attributes["CloudPubSubDeadLetterSourceDeliveryCount"] == "5"
    assert dead.attributes["CloudPubSubDeadLetterSourceSubscription"] == "push"
    assert dead.attributes["CloudPubSubDeadLetterSourceSubscriptionProject"] == "p"


def test_backoff_doubles_up_to_its_maximum(pubsub):
    pubsub.add_subscription(PUSH, TOPIC, push_endpoint="http://x", min_backoff=1, max_backoff=5)
    [sub] = [s for name, s in pubsub._subscriptions.items() if name == PUSH]
    assert [sub.backoff(n) for n in range(1, 6)] == [1, 2, 4, 5, 5]


def test_one_outstanding_message_per_ordering_key_in_publish_order(clients, pubsub, endpoint):
    failures = {"left": 2}

    def respond(envelope: dict) -> int:  # the first message fails twice, then all pass
        if data_of(envelope) == {"n": 0} and failures["left"]:
            failures["left"] -= 1
            return 503
        return 204

    endpoint.respond = respond
    pubsub.add_subscription(
        PUSH, TOPIC, push_endpoint=endpoint.url, ordering=True, min_backoff=0.05, max_backoff=0.1
    )
    for n in range(3):
        publish(clients, {"n": n}, key="pair")
    publish(clients, {"other": 1}, key="other")
    until(lambda: pubsub.deliveries(PUSH) == [], "every ack", seconds=20)
    pair = [d["n"] for d in endpoint.data() if "n" in d]
    assert pair == [0, 0, 0, 1, 2]  # the later ones waited for the first
    assert {"other": 1} in endpoint.data()


def test_a_dead_letter_lets_the_later_messages_of_its_key_go(clients, pubsub, endpoint):
    endpoint.respond = lambda envelope: 503 if data_of(envelope) == {"n": 0} else 204
    pubsub.add_topic(DEAD_TOPIC)
    pubsub.add_subscription(DEAD, DEAD_TOPIC)
    pubsub.add_subscription(
        PUSH,
        TOPIC,
        push_endpoint=endpoint.url,
        ordering=True,
        dead_letter_topic=DEAD_TOPIC,
        max_attempts=5,
        min_backoff=0.02,
        max_backoff=0.05,
    )
    publish(clients, {"n": 0}, key="pair")
    publish(clients, {"n": 1}, key="pair")
    until(lambda: pubsub.deliveries(PUSH) == [], "both done", seconds=20)
    assert endpoint.data() == [{"n": 0}] * 5 + [{"n": 1}]
    assert [json.loads(d.message.data) for d in pubsub.deliveries(DEAD)] == [{"n": 0}]


def test_the_layout_is_created_as_infra_sets_it(pubsub, endpoint):
    layout = Queue(project="p", min_backoff=0.5, max_backoff=2, max_delivery_attempts=7)
    layout.create(pubsub.host, endpoint.url)
    push = pubsub._subscriptions[layout.push_subscription]
    assert (push.topic, push.push_endpoint) == (layout.requests_topic, endpoint.url)
    assert push.ordering and push.dead_letter_topic == layout.dead_letter_topic
    assert (push.min_backoff, push.max_backoff, push.max_attempts) == (0.5, 2, 7)
    assert push.ack_deadline == 60
    dead = pubsub._subscriptions[layout.dead_letter_subscription]
    assert dead.topic == layout.dead_letter_topic and dead.retain_acked


def test_an_unknown_topic_is_not_found(clients, pubsub):
    with pytest.raises(Exception, match="Topic not found"):
        clients.publisher.publish("projects/p/topics/nothing", b"{}").result(timeout=10)


def test_a_subscription_with_an_oidc_token_signs_its_pushes_with_the_push_token(endpoint):
    """As Google signs a push for infra/'s invoker account; a subscription without one is not."""
    signing = PubsubSimulator(push_token="the-runs-token")
    try:
        layout = Queue(project="p")
        layout.create(signing.host, endpoint.url)
        signing.add_subscription(PUSH, layout.requests_topic, push_endpoint=endpoint.url)
        with Pubsub(signing.host) as clients:
            clients.publisher.publish(layout.requests_topic, b"{}").result(timeout=10)
        until(lambda: len(endpoint.authorizations) == 2, "both pushes")
        assert sorted(endpoint.authorizations, key=str) == ["Bearer the-runs-token", None]
    finally:
        signing.stop()


def test_the_state_port_answers_only_to_its_own_name(pubsub):
    served = serve_state(pubsub, "127.0.0.1", 0)
    port = served.server_address[1]
    try:
        for host, status in ((f"evil.example:{port}", 403), (f"localhost:{port}", 200)):
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            connection.request("GET", "/state", headers={"Host": host})
            answer = connection.getresponse()
            assert answer.status == status, host
            body = answer.read()
            assert (b"subscriptions" in body) == (status == 200)
            connection.close()
    finally:
        served.shutdown()
        served.server_close()
