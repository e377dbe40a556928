"""What becomes of a message the events function could not link: delivered again, or, when it
needs a person, published to the dead-letter topic with its reason.

`verdict` reads the status table: a refusal that can never succeed (a permanent row) is
dead-lettered at once, a record Tulip does not know (`retried_until_old`) once the message is
`TULIP_NOT_FOUND_RETRY_SECONDS` old, anything else is Pub/Sub's to deliver again. `DeadLetters`
publishes the message as it was received, with the reason added (`REASON_ATTRIBUTES`), and the
delivery may be acked only once Pub/Sub confirmed that publish.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from function.clients.pubsub import Message, Publisher
from function.model.errors import Failure, QueueUnavailable, TulipError
from function.model.results import Batch, DeadLettered, Result
from function.timing import Clock, Deadline

# Added to a dead letter (the message's own attributes are kept as they were).
ERROR_CODE = "errorCode"
DEAD_LETTER_REASON = "deadLetterReason"
TULIP_STATUS = "tulipStatus"
TULIP_ERROR_UNIQUE_ID = "tulipErrorUniqueID"
DELIVERY_ATTEMPT = "deliveryAttempt"
REASON_ATTRIBUTES = (
    ERROR_CODE,
    DEAD_LETTER_REASON,
    TULIP_STATUS,
    TULIP_ERROR_UNIQUE_ID,
    DELIVERY_ATTEMPT,
)
ATTRIBUTE_LIMIT = 1024  # bytes: Pub/Sub's most for an attribute value
PUBLISH_SECONDS = 10.0  # the longest a delivery waits for its dead letter's confirmation

Verdict = Literal["done", "retry", "dead_letter"]


@dataclass(frozen=True)
class Received:
    """A Pub/Sub message as delivered: what a dead letter must carry unchanged, and how old and
    how often delivered it is."""

    data: bytes
    attributes: Mapping[str, str]
    ordering_key: str
    published: datetime.datetime | None
    delivery_attempt: int | None


def verdict(outcome: Result | Failure, age: float | None, not_found_retry: float) -> Verdict:
    """Done (ack), retry (Pub/Sub delivers it again), or dead_letter: every link that failed
    failed for good, or waited long enough for a record (`age` in seconds; None: unknown)."""
    if isinstance(outcome, Failure):
        failures = [outcome]
    elif isinstance(outcome, Batch):
        failures = [failure for _, failure in outcome.failures]
    else:
        return "done"
    if not failures:
        return "done"
    old = age is not None and age >= not_found_retry
    hopeless = (f.rule.permanent or (f.rule.retried_until_old and old) for f in failures)
    return "dead_letter" if all(hopeless) else "retry"


class DeadLetters:
    """Settles a delivery: its outcome as it was, or, when it needs a person, `DeadLettered` once
    the dead letter is confirmed (`QueueUnavailable` when it is not). Without a `publisher`
    (no `DEAD_LETTER_TOPIC`) nothing is dead-lettered here."""

    def __init__(
        self, publisher: Publisher | None, *, not_found_retry: float, clock: Clock
    ) -> None:
        self._publisher = publisher
        self._not_found_retry = not_found_retry
        self._clock = clock

    @property
    def publishes(self) -> bool:
        """Whether refusals are dead-lettered here (else only by Pub/Sub, after its attempts)."""
        return self._publisher is not None

    def settle(
        self, outcome: Result | Failure, received: Received, deadline: Deadline
    ) -> Result | Failure:
        """What the delivery answers: `outcome`, `DeadLettered`, or `QueueUnavailable`."""
        age = None
        if received.published is not None:
            age = self._clock.wall() - received.published.timestamp()
        if self._publisher is None or verdict(outcome, age, self._not_found_retry) != "dead_letter":
            return outcome
        assert isinstance(outcome, Failure | Batch), "only a failure is dead-lettered"
        attributes = {**received.attributes, **_reason(outcome, received.delivery_attempt)}
        message = Message(received.data, attributes, received.ordering_key)
        timeout = min(PUBLISH_SECONDS, deadline.remaining())
        [published] = self._publisher.publish([message], timeout)
        if published.message_id is None:
            return QueueUnavailable(
                f"The message needs a person ({attributes[ERROR_CODE]}: "
                f"{attributes[DEAD_LETTER_REASON]}) but was not dead-lettered: {published.error}; "
                "Pub/Sub will deliver it again"
            )
        return DeadLettered(outcome, published.message_id)


def _reason(refusal: Failure | Batch, delivery_attempt: int | None) -> dict[str, str]:
    """The attributes that say why a message is a dead letter."""
    if isinstance(refusal, Batch):
        worst = refusal.worst
        assert worst is not None
        failure, message = worst[1], refusal.summary()
    else:
        failure, message = refusal, refusal.message
    reason = {
        ERROR_CODE: str(failure.rule.error_code),
        DEAD_LETTER_REASON: _cut(message),
    }
    if isinstance(failure, TulipError) and failure.tulip_status is not None:
        reason[TULIP_STATUS] = str(failure.tulip_status)
    if unique_id := failure.log.get("tulipErrorUniqueID"):
        reason[TULIP_ERROR_UNIQUE_ID] = str(unique_id)
    if delivery_attempt is not None:
        reason[DELIVERY_ATTEMPT] = str(delivery_attempt)
    return reason


def _cut(text: str) -> str:
    """`text` within Pub/Sub's limit on an attribute value, cut on a character boundary."""
    encoded = text.encode()
    if len(encoded) <= ATTRIBUTE_LIMIT:
        return text
    return encoded[: ATTRIBUTE_LIMIT - 3].decode(errors="ignore") + "..."
