"""Queue mode's intake: a webhook accepted in milliseconds, its links carried by Pub/Sub.

With `WEBHOOK_DELIVERY=queue` the HTTP function still does, synchronously, everything that can
refuse a request (method, content type, size, caller, parsing, `LINK_MAPPING`, validation, the
allow-list: `handlers` and `LinkService.plan`); then `Intake.accept` publishes one message per
link to `WEBHOOK_QUEUE_TOPIC` and answers only once Pub/Sub confirmed every one (202 `queued`).
The events function, behind the push subscription with its retries and dead-letter topic, makes
the Tulip calls. Nothing here reads the Tulip token: a dry run stays synchronous (the service).

The message:

- `data`: the link in our own shape, after mapping and normalisation, as JSON:
  `{"tableLinkId", "leftRecord", "rightRecord", "action"}`.
- attributes: `format` = `tulip-link/v1` says the data is already in that shape, so the events
  function never applies its own `LINK_MAPPING` to it (it counts only where a message can only
  have come through Pub/Sub: see `handlers`); `intakeRequestId`, this request's `requestId`, so
  one webhook can be followed to its Tulip call; `webhookId`, the sender's delivery id where its
  authentication mode has one (`webhook-id`); `sender`, the webhook's `WEBHOOK_SENDER`, so the
  events function's lines name the system the link came from.
- ordering key: the pair (table link and both records, whatever the action), hashed (SHA-256,
  hex) to stay within Pub/Sub's 1 KB limit on keys. A link and a later unlink of one pair are
  then delivered in the order they were accepted.

Pub/Sub unreachable, refusing, or not confirming within `WEBHOOK_PUBLISH_TIMEOUT_SECONDS` (or
the request's deadline, if sooner): 503 `QUEUE_UNAVAILABLE`. A batch of which only some links
were confirmed answers 503 too, listing which were: the sender sends it again, and a link queued
twice is linked twice, which is harmless (linking is idempotent).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from . import logs
from .errors import QueueUnavailable
from .links import LinkRequest
from .pubsub import Message, Publisher
from .results import Batch, Ignored, LinkResult, Result
from .service import LinkService
from .timing import Deadline

FORMAT_ATTRIBUTE = "format"
FORMAT = "tulip-link/v1"
INTAKE_REQUEST_ID = "intakeRequestId"
WEBHOOK_ID = "webhookId"
SENDER = "sender"


def ordering_key(link: LinkRequest) -> str:
    """The key that keeps one pair's messages in order."""
    return hashlib.sha256(json.dumps(list(link.pair)).encode()).hexdigest()


def message_of(link: LinkRequest, attributes: Mapping[str, str]) -> Message:
    """The message that carries `link`."""
    data = {
        "tableLinkId": link.link_id,
        "leftRecord": link.left,
        "rightRecord": link.right,
        "action": link.action,
    }
    return Message(json.dumps(data).encode(), attributes, ordering_key(link))


class Intake:
    """Accepts requests into the queue: validated by `service`, published by `publisher`."""

    def __init__(
        self,
        service: LinkService,
        publisher: Publisher,
        timeout: float,
        sender: str | None = None,
    ) -> None:
        self._service = service
        self._publisher = publisher
        self._timeout = timeout
        self._sender = sender

    def accept(
        self,
        data: Mapping[str, Any],
        deadline: Deadline,
        *,
        request_id: str,
        webhook_id: str | None,
    ) -> Result:
        """Validate `data` and queue its links; `QueueUnavailable` when a single link was not
        confirmed, a `Batch` with the unconfirmed links failed when several were asked for."""
        plan = self._service.plan(data)
        if isinstance(plan, Ignored):
            return plan
        if not plan.batch:
            logs.bind(**plan.links[0].log_fields())  # as the direct mode's line carries them
        attributes = {FORMAT_ATTRIBUTE: FORMAT, INTAKE_REQUEST_ID: request_id}
        if webhook_id:
            attributes[WEBHOOK_ID] = webhook_id[:1024]  # Pub/Sub's limit on an attribute value
        if self._sender:
            attributes[SENDER] = self._sender
        messages = [message_of(link, attributes) for link in plan.links]
        timeout = min(self._timeout, deadline.remaining())
        published = self._publisher.publish(messages, timeout)
        results = []
        for link, outcome in zip(plan.links, published, strict=True):
            failure = None
            if outcome.message_id is None:
                failure = QueueUnavailable(
                    f"The link was not queued: {outcome.error}; send the request again"
                )
            results.append(
                LinkResult(
                    link.link_id,
                    link.left,
                    link.right,
                    link.action,
                    "queued" if failure is None else "failed",
                    failure=failure,
                    message_id=outcome.message_id,
                )
            )
        if plan.batch:
            return Batch(tuple(results), dry_run=False)
        [result] = results
        if result.failure is not None:
            raise result.failure
        return result
