"""What both entry points of the events function do with a Pub/Sub message: read whether an
intake published it (then its data is in our own shape, and its attributes join the log)."""

from __future__ import annotations

from collections.abc import Mapping

from function import logs
from function.core.intake import FORMAT, FORMAT_ATTRIBUTE, INTAKE_REQUEST_ID, SENDER, WEBHOOK_ID


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
