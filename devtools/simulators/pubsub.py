"""The Pub/Sub simulator: Google's Publisher and Subscriber gRPC APIs on 127.0.0.1, with push, retries,
ordering and dead letters as Pub/Sub has them.

    python -m devtools.simulators.pubsub [--port 8085] [--state-port 8084]   (0: any free port)

The real `google-cloud-pubsub` client reaches it through `PUBSUB_EMULATOR_HOST` (plaintext gRPC,
no credentials), so the function, the runner and `ops.dead_letters` use the same client they
use against Google. Used by `make run` (the deployed shape, locally), the tests and `make bench`.
Not deployed.

As Pub/Sub does it (what tulip-link relies on):

- Topics and subscriptions: CreateTopic, GetTopic, DeleteTopic, CreateSubscription,
  GetSubscription, DeleteSubscription. Publish gives each message an id and a publish time, and
  every subscription of the topic a copy.
- Pull, Acknowledge, ModifyAckDeadline (0 hands a message back at once); a message not acked
  within its ack deadline is delivered again.
- Push: a POST of the envelope Pub/Sub sends (`message` with base64 `data`, `attributes`,
  `messageId`, `publishTime`, `orderingKey`; `subscription`; `deliveryAttempt`), waiting at most
  the ack deadline. 102, 200, 201, 202 and 204 ack; anything else, or no answer in time, is a
  nack, delivered again after the retry policy's backoff (`minimumBackoff` doubling per attempt,
  at most `maximumBackoff`; without a retry policy, at once).
- Dead letters: after `maxDeliveryAttempts` deliveries, a nacked message is published to the
  dead-letter topic (a new message id) with Pub/Sub's `CloudPubSubDeadLetterSource*` attributes,
  and its source subscription is done with it. `deliveryAttempt` (push) and `delivery_attempt`
  (pull) are set only where a dead-letter policy is, as on Google.
- Ordering (`enableMessageOrdering`): the messages of one ordering key go out in publish order,
  at most one outstanding at a time; a later one waits until the earlier is acked or
  dead-lettered.

Authentication: none on its gRPC API. A push subscription created with an `oidcToken` (as
`infra/` creates its own) carries `Authorization: Bearer <push token>` on each push, the token
given as `push_token` (`LOCAL_PUSH_TOKEN` for the command): the stand-in for Google's signed
token, which the runner's front of the events function checks as Cloud Run IAM checks Google's.
Its state port answers only to its loopback name (`devtools/local_only.py`).

Where it differs: no filters, exactly-once,
seek or snapshots, no StreamingPull (the client's `subscribe()`; `pull()` works), everything in
memory; the backoff is exact where Google's is best effort.

Why this simulator and not Google's emulator (`google-cloud-cli-pubsub-emulator`): that one never
dead-letters (after the attempts a message vanishes, and later messages of its ordering key are
never delivered), its push envelopes carry neither `deliveryAttempt` nor `orderingKey`, it needs
Java and takes seconds to start, and most CI machines do not have it. This one starts in well
under a second wherever `pip install` works.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import datetime
import itertools
import json
import os
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from concurrent import futures
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

import grpc
from google.pubsub_v1.types import (
    AcknowledgeRequest,
    DeleteSubscriptionRequest,
    DeleteTopicRequest,
    GetSubscriptionRequest,
    GetTopicRequest,
    ModifyAckDeadlineRequest,
    PublishRequest,
    PublishResponse,
    PubsubMessage,
    PullRequest,
    PullResponse,
    ReceivedMessage,
    Subscription,
    Topic,
)

from devtools.local_only import refusal
from function.clients.local_grpc import local_channel

ACK_STATUSES = frozenset({102, 200, 201, 202, 204})
DEFAULT_PORT = 8085
DEFAULT_STATE_PORT = 8084
DEAD_LETTER_ATTRIBUTES = (
    "CloudPubSubDeadLetterSourceDeliveryCount",
    "CloudPubSubDeadLetterSourceSubscription",
    "CloudPubSubDeadLetterSourceSubscriptionProject",
    "CloudPubSubDeadLetterSourceTopicPublishTime",
)
State = Literal["waiting", "outstanding", "acked", "dead_lettered"]


@dataclass
class Delivery:
    """One message on one subscription, and where it stands."""

    message: PubsubMessage
    published: datetime.datetime
    attempts: int = 0
    state: State = "waiting"
    ack_id: str | None = None
    due: float = 0.0  # waiting: deliverable from; outstanding: its ack deadline (monotonic)
    last_status: int | None = None  # what the push endpoint answered last (None: no answer)


@dataclass
class _Subscription:
    name: str
    topic: str
    ack_deadline: float
    push_endpoint: str | None
    ordering: bool
    dead_letter_topic: str | None
    max_attempts: int
    min_backoff: float
    max_backoff: float
    retain_acked: bool
    signed_pushes: bool = False  # created with an OIDC token: pushes carry the push token
    deliveries: list[Delivery] = field(default_factory=list)

    def backoff(self, attempts: int) -> float:
        """The wait before delivery number `attempts + 1`."""
        return min(self.max_backoff, self.min_backoff * 2.0 ** max(0, attempts - 1))


class PubsubSimulator:
    """Pub/Sub on 127.0.0.1 (`port` 0: any free port). `stop()` ends it; the state is lost."""

    def __init__(
        self, port: int = 0, host: str = "127.0.0.1", *, push_token: str | None = None
    ) -> None:
        self._lock = threading.Condition()
        self._push_token = push_token
        self._topics: dict[str, list[str]] = {}  # topic -> its subscriptions
        self._subscriptions: dict[str, _Subscription] = {}
        self._ids = itertools.count(1)
        self._stopped = False
        self.published = 0
        # Tests: called before each Publish; a status it returns fails that call (it may also wait).
        self.on_publish: Callable[[PublishRequest], grpc.StatusCode | None] | None = None
        publisher = grpc.method_handlers_generic_handler(
            "google.pubsub.v1.Publisher",
            {
                "CreateTopic": _unary(self._create_topic, Topic, Topic),
                "GetTopic": _unary(self._get_topic, GetTopicRequest, Topic),
                "DeleteTopic": _unary(self._delete_topic, DeleteTopicRequest, None),
                "Publish": _unary(self._publish, PublishRequest, PublishResponse),
            },
        )
        subscriber = grpc.method_handlers_generic_handler(
            "google.pubsub.v1.Subscriber",
            {
                "CreateSubscription": _unary(self._create_subscription, Subscription, Subscription),
                "GetSubscription": _unary(
                    self._get_subscription, GetSubscriptionRequest, Subscription
                ),
                "DeleteSubscription": _unary(
                    self._delete_subscription, DeleteSubscriptionRequest, None
                ),
                "Pull": _unary(self._pull, PullRequest, PullResponse),
                "Acknowledge": _unary(self._acknowledge, AcknowledgeRequest, None),
                "ModifyAckDeadline": _unary(
                    self._modify_ack_deadline, ModifyAckDeadlineRequest, None
                ),
            },
        )
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
        self._server.add_generic_rpc_handlers((publisher, subscriber))
        self.port = self._server.add_insecure_port(f"{host}:{port}")
        if self.port == 0:
            raise OSError(f"could not listen on {host}:{port}")
        self._pushes = futures.ThreadPoolExecutor(max_workers=16, thread_name_prefix="push")
        self._server.start()
        self._dispatcher = threading.Thread(target=self._dispatch, name="dispatch", daemon=True)
        self._dispatcher.start()

    @property
    def host(self) -> str:
        """What `PUBSUB_EMULATOR_HOST` must say."""
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        """Stop serving and pushing at once (no grace: as if the service went away)."""
        with self._lock:
            self._stopped = True
            self._lock.notify_all()
        self._server.stop(grace=None)
        self._pushes.shutdown(wait=False, cancel_futures=True)

    def add_topic(self, name: str) -> None:
        """Create a topic, in process (tests; `Queue.create` goes through the client)."""
        with self._lock:
            self._topics.setdefault(name, [])

    def add_subscription(
        self,
        name: str,
        topic: str,
        *,
        push_endpoint: str | None = None,
        ordering: bool = False,
        dead_letter_topic: str | None = None,
        max_attempts: int = 5,
        min_backoff: float = 10.0,
        max_backoff: float = 600.0,
        ack_deadline: float = 10.0,
        retain_acked: bool = False,
    ) -> None:
        """Create a subscription, in process, with Pub/Sub's defaults unless told otherwise."""
        with self._lock:
            self._subscriptions[name] = _Subscription(
                name, topic, ack_deadline, push_endpoint, ordering, dead_letter_topic,
                max_attempts, min_backoff, max_backoff, retain_acked,
            )  # fmt: skip
            self._topics[topic].append(name)
            self._lock.notify_all()

    def publish(
        self, topic: str, data: bytes, attributes: dict[str, str], ordering_key: str = ""
    ) -> str:
        """Publish one message, in process (tests); its id."""
        message = PubsubMessage(data=data, attributes=attributes, ordering_key=ordering_key)
        with self._lock:
            return self._add(topic, message)

    def purge(self, subscription: str) -> None:
        """Drop everything `subscription` holds (Pub/Sub's seek to now), in-flight pushes too."""
        with self._lock:
            sub = self._subscriptions[subscription]
            for delivery in sub.deliveries:
                delivery.state = "acked"  # an answer still on its way now changes nothing
            sub.deliveries.clear()

    def deliveries(self, subscription: str) -> list[Delivery]:
        """A copy of what `subscription` holds now, in publish order (acked ones only when it
        retains them)."""
        with self._lock:
            return [
                Delivery(**{**d.__dict__, "message": PubsubMessage(d.message)})
                for d in self._subscriptions[subscription].deliveries
            ]

    def state(self) -> dict[str, Any]:
        """Topics, subscriptions and every message they hold, as JSON."""
        with self._lock:
            return {
                "topics": {name: list(subs) for name, subs in self._topics.items()},
                "subscriptions": {
                    name: {
                        "topic": sub.topic,
                        "push": sub.push_endpoint,
                        "messages": [_describe(d) for d in sub.deliveries],
                    }
                    for name, sub in self._subscriptions.items()
                },
            }

    # --- Publisher -----------------------------------------------------------------------------

    def _create_topic(self, topic: Topic, context: grpc.ServicerContext) -> Topic:
        with self._lock:
            if topic.name in self._topics:
                context.abort(grpc.StatusCode.ALREADY_EXISTS, "Topic already exists")
            self._topics[topic.name] = []
        return topic

    def _get_topic(self, request: GetTopicRequest, context: grpc.ServicerContext) -> Topic:
        with self._lock:
            if request.topic not in self._topics:
                context.abort(grpc.StatusCode.NOT_FOUND, "Topic not found")
        return Topic(name=request.topic)

    def _delete_topic(self, request: DeleteTopicRequest, context: grpc.ServicerContext) -> None:
        with self._lock:
            if self._topics.pop(request.topic, None) is None:
                context.abort(grpc.StatusCode.NOT_FOUND, "Topic not found")

    def _publish(self, request: PublishRequest, context: grpc.ServicerContext) -> PublishResponse:
        failure = self.on_publish(request) if self.on_publish is not None else None
        if failure is not None:
            context.abort(failure, "scripted failure")
        with self._lock:
            if request.topic not in self._topics:
                context.abort(grpc.StatusCode.NOT_FOUND, "Topic not found")
            ids = [self._add(request.topic, message) for message in request.messages]
        return PublishResponse(message_ids=ids)

    def _add(self, topic: str, message: PubsubMessage) -> str:
        """Publish `message` to `topic` (the lock held): its id."""
        stored = PubsubMessage(message)
        stored.message_id = str(next(self._ids))
        now = datetime.datetime.now(datetime.UTC)
        stored.publish_time = now
        self.published += 1
        for name in self._topics[topic]:
            self._subscriptions[name].deliveries.append(Delivery(PubsubMessage(stored), now))
        self._lock.notify_all()
        return stored.message_id

    # --- Subscriber ----------------------------------------------------------------------------

    def _create_subscription(
        self, subscription: Subscription, context: grpc.ServicerContext
    ) -> Subscription:
        policy, retry = subscription.dead_letter_policy, subscription.retry_policy
        # Without a retry policy Pub/Sub redelivers at once; with one, its defaults are 10 s, 600 s.
        has_retry = Subscription.pb(subscription).HasField("retry_policy")
        with self._lock:
            if subscription.name in self._subscriptions:
                context.abort(grpc.StatusCode.ALREADY_EXISTS, "Subscription already exists")
            if subscription.topic not in self._topics:
                context.abort(grpc.StatusCode.NOT_FOUND, "Topic not found")
            self._subscriptions[subscription.name] = _Subscription(
                name=subscription.name,
                topic=subscription.topic,
                ack_deadline=float(subscription.ack_deadline_seconds or 10),
                push_endpoint=subscription.push_config.push_endpoint or None,
                signed_pushes=bool(subscription.push_config.oidc_token.service_account_email),
                ordering=subscription.enable_message_ordering,
                dead_letter_topic=policy.dead_letter_topic or None,
                max_attempts=policy.max_delivery_attempts or 5,
                min_backoff=_seconds(retry.minimum_backoff, 10.0) if has_retry else 0.0,
                max_backoff=_seconds(retry.maximum_backoff, 600.0) if has_retry else 0.0,
                retain_acked=subscription.retain_acked_messages,
            )
            self._topics[subscription.topic].append(subscription.name)
        return subscription

    def _get_subscription(
        self, request: GetSubscriptionRequest, context: grpc.ServicerContext
    ) -> Subscription:
        with self._lock:
            sub = self._subscriptions.get(request.subscription)
            if sub is None:
                context.abort(grpc.StatusCode.NOT_FOUND, "Subscription does not exist")
            return Subscription(name=sub.name, topic=sub.topic)

    def _delete_subscription(
        self, request: DeleteSubscriptionRequest, context: grpc.ServicerContext
    ) -> None:
        with self._lock:
            sub = self._subscriptions.pop(request.subscription, None)
            if sub is None:
                context.abort(grpc.StatusCode.NOT_FOUND, "Subscription does not exist")
            self._topics.get(sub.topic, []).remove(sub.name)

    def _pull(self, request: PullRequest, context: grpc.ServicerContext) -> PullResponse:
        with self._lock:
            sub = self._subscription(request.subscription, context)
            received: list[ReceivedMessage] = []
            for delivery in self._deliverable(sub, time.monotonic()):
                if len(received) >= (request.max_messages or 1):
                    break
                self._hand_out(sub, delivery)
                received.append(
                    ReceivedMessage(
                        ack_id=delivery.ack_id,
                        message=delivery.message,
                        delivery_attempt=delivery.attempts if sub.dead_letter_topic else 0,
                    )
                )
        return PullResponse(received_messages=received)

    def _acknowledge(self, request: AcknowledgeRequest, context: grpc.ServicerContext) -> None:
        with self._lock:
            sub = self._subscription(request.subscription, context)
            for delivery in self._outstanding(sub, request.ack_ids):
                self._ack(sub, delivery)

    def _modify_ack_deadline(
        self, request: ModifyAckDeadlineRequest, context: grpc.ServicerContext
    ) -> None:
        with self._lock:
            sub = self._subscription(request.subscription, context)
            for delivery in self._outstanding(sub, request.ack_ids):
                if request.ack_deadline_seconds == 0:
                    self._nack(sub, delivery, backoff=False)
                else:
                    delivery.due = time.monotonic() + request.ack_deadline_seconds

    # --- Delivery (the lock held throughout) ---------------------------------------------------

    def _subscription(self, name: str, context: grpc.ServicerContext) -> _Subscription:
        sub = self._subscriptions.get(name)
        if sub is None:
            context.abort(grpc.StatusCode.NOT_FOUND, "Subscription does not exist")
        return sub

    @staticmethod
    def _outstanding(sub: _Subscription, ack_ids: Any) -> list[Delivery]:
        wanted = set(ack_ids)
        return [d for d in sub.deliveries if d.state == "outstanding" and d.ack_id in wanted]

    def _deliverable(self, sub: _Subscription, now: float) -> Iterator[Delivery]:
        blocked: set[str] = set()  # ordering keys with an earlier message not yet done
        for delivery in list(sub.deliveries):
            key = delivery.message.ordering_key
            if delivery.state == "outstanding" and now >= delivery.due:
                self._nack(sub, delivery, backoff=True)  # its ack deadline passed
            if delivery.state not in ("waiting", "outstanding"):
                continue
            if sub.ordering and key:
                if key in blocked:
                    continue
                blocked.add(key)
            if delivery.state == "waiting" and now >= delivery.due:
                yield delivery

    def _hand_out(self, sub: _Subscription, delivery: Delivery) -> None:
        delivery.state = "outstanding"
        delivery.attempts += 1
        delivery.ack_id = uuid.uuid4().hex
        delivery.due = time.monotonic() + sub.ack_deadline

    def _ack(self, sub: _Subscription, delivery: Delivery) -> None:
        delivery.state = "acked"
        if not sub.retain_acked and delivery in sub.deliveries:
            sub.deliveries.remove(delivery)
        self._lock.notify_all()

    def _nack(self, sub: _Subscription, delivery: Delivery, *, backoff: bool) -> None:
        if sub.dead_letter_topic and delivery.attempts >= sub.max_attempts:
            self._dead_letter(sub, delivery)
        else:
            delivery.state = "waiting"
            delivery.ack_id = None
            delivery.due = time.monotonic() + (sub.backoff(delivery.attempts) if backoff else 0)
        self._lock.notify_all()

    def _dead_letter(self, sub: _Subscription, delivery: Delivery) -> None:
        project, _, short = sub.name.removeprefix("projects/").partition("/subscriptions/")
        forwarded = PubsubMessage(delivery.message)
        forwarded.attributes.update(
            dict(
                zip(
                    DEAD_LETTER_ATTRIBUTES,
                    (str(delivery.attempts), short, project, _rfc3339(delivery.published)),
                    strict=True,
                )
            )
        )
        delivery.state = "dead_lettered"
        sub.deliveries.remove(delivery)
        if sub.dead_letter_topic in self._topics:
            self._add(sub.dead_letter_topic, forwarded)

    def _dispatch(self) -> None:
        """Push what is due, expire what is overdue; sleep until the next thing is due."""
        with self._lock:
            while not self._stopped:
                now = time.monotonic()
                wake = now + 1.0
                for sub in list(self._subscriptions.values()):
                    for delivery in self._deliverable(sub, now):
                        if sub.push_endpoint is None:
                            continue
                        self._hand_out(sub, delivery)
                        self._pushes.submit(self._push, sub, delivery, delivery.ack_id)
                    pending = [
                        d.due for d in sub.deliveries if d.state in ("waiting", "outstanding")
                    ]
                    wake = min([wake, *[due for due in pending if due > now]])
                self._lock.wait(max(0.0, wake - time.monotonic()))

    def _push(self, sub: _Subscription, delivery: Delivery, ack_id: str | None) -> None:
        message = delivery.message
        envelope: dict[str, Any] = {
            "message": {
                "data": base64.b64encode(message.data).decode(),
                "attributes": dict(message.attributes),
                "messageId": message.message_id,
                "message_id": message.message_id,
                "publishTime": _rfc3339(delivery.published),
                "publish_time": _rfc3339(delivery.published),
            },
            "subscription": sub.name,
        }
        if message.ordering_key:
            envelope["message"]["orderingKey"] = message.ordering_key
        if sub.dead_letter_topic:
            envelope["deliveryAttempt"] = delivery.attempts
        headers = {"Content-Type": "application/json"}
        if sub.signed_pushes and self._push_token is not None:
            headers["Authorization"] = f"Bearer {self._push_token}"
        request = urllib.request.Request(
            str(sub.push_endpoint), json.dumps(envelope).encode(), headers, method="POST"
        )
        status: int | None = None
        try:
            with urllib.request.urlopen(request, timeout=sub.ack_deadline) as answer:
                status = answer.status
                answer.read()
        except urllib.error.HTTPError as error:
            status = error.code
        except (OSError, ValueError):
            status = None  # refused, dropped or too slow: no answer
        with self._lock:
            if delivery.state != "outstanding" or delivery.ack_id != ack_id:
                return  # its ack deadline passed meanwhile: already handed back
            delivery.last_status = status
            if status in ACK_STATUSES:
                self._ack(sub, delivery)
            else:
                self._nack(sub, delivery, backoff=True)


@dataclass(frozen=True)
class Queue:
    """The topics and subscriptions of a deployment, named and set as `infra/` sets them (the
    defaults are Terraform's): the requests topic, its push subscription to the events function
    with ordering, a retry backoff and a dead-letter policy, and the dead-letter topic with the
    subscription that keeps what reaches it."""

    project: str = "tulip-link-local"
    prefix: str = "tulip-link"
    min_backoff: float = 10.0
    max_backoff: float = 600.0
    max_delivery_attempts: int = 100
    ack_deadline: int = 60  # infra/: the function's timeout

    @property
    def invoker(self) -> str:
        """The account the pushes are signed for (infra/'s `<prefix>-invoker`)."""
        return f"{self.prefix}-invoker@{self.project}.iam.gserviceaccount.com"

    @property
    def requests_topic(self) -> str:
        return f"projects/{self.project}/topics/{self.prefix}-requests"

    @property
    def push_subscription(self) -> str:
        return f"projects/{self.project}/subscriptions/{self.prefix}-push"

    @property
    def dead_letter_topic(self) -> str:
        return f"projects/{self.project}/topics/{self.prefix}-dead-letter"

    @property
    def dead_letter_subscription(self) -> str:
        return f"projects/{self.project}/subscriptions/{self.prefix}-dead-letter"

    def create(self, host: str, push_endpoint: str) -> None:
        """Create all of it on the Pub/Sub at `host` (this simulator), through Google's own client."""
        from google.auth.credentials import AnonymousCredentials
        from google.pubsub_v1 import PublisherClient, SubscriberClient
        from google.pubsub_v1.services.publisher.transports import PublisherGrpcTransport
        from google.pubsub_v1.services.subscriber.transports import SubscriberGrpcTransport

        with local_channel(host) as channel:
            credentials = AnonymousCredentials()
            topics = PublisherClient(
                transport=PublisherGrpcTransport(channel=channel, credentials=credentials)
            )
            subscriptions = SubscriberClient(
                transport=SubscriberGrpcTransport(channel=channel, credentials=credentials)
            )
            for topic in (self.requests_topic, self.dead_letter_topic):
                topics.create_topic(request={"name": topic}, timeout=10)
            subscriptions.create_subscription(
                request={
                    "name": self.push_subscription,
                    "topic": self.requests_topic,
                    # As infra/: pushes signed for the invoker account (here, the push token).
                    "push_config": {
                        "push_endpoint": push_endpoint,
                        "oidc_token": {
                            "service_account_email": self.invoker,
                            "audience": push_endpoint,
                        },
                    },
                    "ack_deadline_seconds": self.ack_deadline,
                    "enable_message_ordering": True,
                    "retry_policy": {
                        "minimum_backoff": _duration(self.min_backoff),
                        "maximum_backoff": _duration(self.max_backoff),
                    },
                    "dead_letter_policy": {
                        "dead_letter_topic": self.dead_letter_topic,
                        "max_delivery_attempts": self.max_delivery_attempts,
                    },
                },
                timeout=10,
            )
            subscriptions.create_subscription(
                request={
                    "name": self.dead_letter_subscription,
                    "topic": self.dead_letter_topic,
                    "ack_deadline_seconds": 60,
                    "retain_acked_messages": True,
                },
                timeout=10,
            )


def _duration(seconds: float) -> dict[str, int]:
    whole = int(seconds)
    return {"seconds": whole, "nanos": round((seconds - whole) * 1e9)}


def _unary(
    method: Callable[..., Any], request: Any, response: Any
) -> grpc.RpcMethodHandler[Any, Any]:
    def serialize(value: Any) -> bytes:
        # None: the method answers google.protobuf.Empty, whose encoding is no bytes at all.
        return b"" if response is None else bytes(response.serialize(value))

    return grpc.unary_unary_rpc_method_handler(
        method, request_deserializer=request.deserialize, response_serializer=serialize
    )


def _seconds(value: datetime.timedelta | None, default: float) -> float:
    return value.total_seconds() if value else default


def _rfc3339(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _describe(delivery: Delivery) -> dict[str, Any]:
    message = delivery.message
    try:
        data: Any = json.loads(message.data)
    except ValueError:
        data = base64.b64encode(message.data).decode()
    return {
        "messageId": message.message_id,
        "data": data,
        "attributes": dict(message.attributes),
        "orderingKey": message.ordering_key or None,
        "publishTime": _rfc3339(delivery.published),
        "state": delivery.state,
        "deliveryAttempts": delivery.attempts,
        "lastStatus": delivery.last_status,
    }


def main() -> None:
    """Serve until interrupted."""
    parser = argparse.ArgumentParser(
        prog="python -m devtools.simulators.pubsub",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="0: any free port")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument(
        "--state-port",
        type=int,
        default=DEFAULT_STATE_PORT,
        help="where GET /state (state() as JSON) is served; 0: any free port",
    )
    args = parser.parse_args()
    emulator = PubsubSimulator(
        args.port, args.host, push_token=os.environ.get("LOCAL_PUSH_TOKEN") or None
    )
    state_server = serve_state(emulator, args.host, args.state_port)
    state_port = state_server.server_address[1]
    print(
        f"Pub/Sub simulator on {args.host}:{emulator.port}, its state on "
        f"http://{args.host}:{state_port}/state",
        flush=True,
    )
    with contextlib.suppress(KeyboardInterrupt):
        threading.Event().wait()
    state_server.shutdown()
    state_server.server_close()
    emulator.stop()


def serve_state(emulator: PubsubSimulator, host: str, port: int) -> ThreadingHTTPServer:
    """`GET /state` on `host:port`: `emulator.state()` as JSON, for the local console (it reads
    what the messages are doing without pulling one). Serves in a thread of its own."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            reason = refusal("GET", self.headers, server.server_port)
            if reason is not None:
                self.send_error(403, explain=reason)
                return
            if self.path != "/state":
                self.send_error(404)
                return
            body = json.dumps(emulator.state()).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass  # polled every second: not worth a line each

    server = ThreadingHTTPServer((host, port), Handler)
    threading.Thread(target=server.serve_forever, name="state", daemon=True).start()
    return server


if __name__ == "__main__":
    main()
