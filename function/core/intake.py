"""Queue mode's intake: a request's links, validated, published to Pub/Sub, answered 202.

`Intake.queue` answers only once Pub/Sub confirmed every link (else 503 `QUEUE_UNAVAILABLE`,
listing which were confirmed). One message per link, an intake message:

- data: `Link.as_json()`, the link in our own shape, after mapping and validation;
- attributes: `format` (`tulip-link/v1`: in our own shape), `intakeRequestId` (this request's
  `requestId`), `webhookId` (the sender's delivery id, where it gave one), `sender`
  (`WEBHOOK_SENDER`);
- ordering key: the pair, hashed (`ordering_key`), so one pair's messages keep their order.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

from function import logs
from function.clients.pubsub import Message, Publisher
from function.core.links import Plan
from function.model.errors import QueueUnavailable
from function.model.link import Link
from function.model.results import Batch, LinkResult, LinkStatus, Result
from function.timing import Deadline

FORMAT_ATTRIBUTE = "format"
FORMAT = "tulip-link/v1"
INTAKE_REQUEST_ID = "intakeRequestId"
WEBHOOK_ID = "webhookId"
SENDER = "sender"


def ordering_key(link: Link) -> str:
    """The key that keeps one pair's messages in order: SHA-256 (hex) of the pair, within
    Pub/Sub's 1 KB limit on keys whatever the records."""
    return hashlib.sha256(json.dumps(list(link.pair)).encode()).hexdigest()


def intake_message(link: Link, attributes: Mapping[str, str]) -> Message:
    """The message that carries `link`."""
    return Message(json.dumps(link.as_json()).encode(), attributes, ordering_key(link))


class Intake:
    """Puts validated requests into the queue, through `publisher`."""

    def __init__(self, publisher: Publisher, timeout: float, sender: str | None = None) -> None:
        self._publisher = publisher
        self._timeout = timeout
        self._sender = sender

    def queue(
        self, plan: Plan, deadline: Deadline, *, request_id: str, webhook_id: str | None
    ) -> Result:
        """Publish `plan`'s links (validated); `QueueUnavailable` when a single link was not
        confirmed, a `Batch` with the unconfirmed links failed when several were asked for."""
        if not plan.batch:
            logs.bind(**plan.links[0].as_json())  # as the direct mode's line carries them
        attributes = {FORMAT_ATTRIBUTE: FORMAT, INTAKE_REQUEST_ID: request_id}
        if webhook_id:
            attributes[WEBHOOK_ID] = webhook_id[:1024]  # Pub/Sub's limit on an attribute value
        if self._sender:
            attributes[SENDER] = self._sender
        messages = [intake_message(link, attributes) for link in plan.links]
        timeout = min(self._timeout, deadline.remaining())
        published = self._publisher.publish(messages, timeout)
        results = []
        for link, outcome in zip(plan.links, published, strict=True):
            failure = None
            if outcome.message_id is None:
                failure = QueueUnavailable(
                    f"The link was not queued: {outcome.error}; send the request again"
                )
            status: LinkStatus = "queued" if failure is None else "failed"
            results.append(LinkResult(link, status, failure=failure, message_id=outcome.message_id))
        if plan.batch:
            return Batch(tuple(results), dry_run=False)
        [result] = results
        if result.failure is not None:
            raise result.failure
        return result
