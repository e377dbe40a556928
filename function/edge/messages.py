"""What both entry points of the events function do with a Pub/Sub message: read it as received,
tell whether an intake published it (then its data is in our own shape, and its attributes join
the log), link what it asks for, and settle the delivery (`DeadLetters`)."""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping

from function import logs
from function.core.dead_letters import Received
from function.core.intake import FORMAT, FORMAT_ATTRIBUTE, INTAKE_REQUEST_ID, SENDER, WEBHOOK_ID
from function.edge.http import run
from function.edge.payloads import PubsubMessage, message_data, message_payload
from function.instance import EventsFunction
from function.model.errors import Failure
from function.model.results import Result
from function.timing import Deadline

# RFC 3339 as Pub/Sub writes it; Python reads at most 6 digits of a second's fraction.
_RFC3339 = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)")


def link_message(
    built: EventsFunction, message: PubsubMessage, delivery_attempt: int | None, deadline: Deadline
) -> Result:
    """Link what `message` asks for and settle its delivery: the result to answer, or the
    `Failure` raised (a broken wrapping, which cannot be dead-lettered, is raised before)."""
    received = Received(
        data=message_data(message),
        attributes=message.attributes,
        ordering_key=message.ordering_key,
        published=_moment(message.publish_time),
        delivery_attempt=delivery_attempt,
    )
    intake_message = from_intake(message.attributes)

    def link() -> Result:
        payload = message_payload(received.data, built.settings.max_body_bytes)
        return built.service.handle(payload, deadline, from_intake=intake_message)

    outcome, crash = run(link)
    if crash is not None:
        raise crash  # a bug: INTERNAL at the edge, with its traceback; delivered again
    settled = built.dead_letters.settle(outcome, received, deadline)
    if isinstance(settled, Failure):
        raise settled
    return settled


def from_intake(attributes: Mapping[str, str]) -> bool:
    """Whether a message's attributes say an intake published it; if so, they join the log.
    Trusted because only Pub/Sub reaches these entry points (Cloud Run IAM, Eventarc)."""
    if attributes.get(FORMAT_ATTRIBUTE) != FORMAT:
        return False
    logs.bind(
        intakeRequestId=attributes.get(INTAKE_REQUEST_ID),
        webhookId=attributes.get(WEBHOOK_ID),
        sender=attributes.get(SENDER),
    )
    return True


def _moment(text: str | None) -> datetime.datetime | None:
    """A publish time; None when absent or unreadable (then the message's age is unknown)."""
    found = _RFC3339.fullmatch(text or "")
    if found is None:
        return None
    whole, fraction, zone = found.groups()
    normalised = f"{whole}.{(fraction or '0')[:6]}{'+00:00' if zone == 'Z' else zone}"
    try:
        return datetime.datetime.fromisoformat(normalised)
    except ValueError:
        return None
