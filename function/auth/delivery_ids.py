"""The sender's own id of a delivery, where it gives one: the `webhookId` of log lines and Pub/Sub
attributes, and what a retry or a replay of the same delivery carries again."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from function.auth.common import Headers
from function.model.delivery import DeliveryId

# Headers senders name a delivery in; no sender signs them.
DELIVERY_HEADERS = (
    "X-GitHub-Delivery",
    "X-Gitlab-Event-UUID",
    "X-Shopify-Webhook-Id",
    "X-Atlassian-Webhook-Identifier",
    "ce-id",  # a CloudEvent in binary mode
)
_PRINTABLE = re.compile(r"[\x21-\x7e]{1,256}")


def delivery_id(
    headers: Headers, body: Mapping[str, Any] | None, *, signed_headers: bool, signed_body: bool
) -> DeliveryId | None:
    """The id this delivery carries: Standard Webhooks' `webhook-id` (covered by its signature
    when `signed_headers`), a sender's delivery header, or in the body Slack's `event_id`,
    Stripe's `id` or a structured CloudEvent's `id` (covered when `signed_body`)."""
    for name in ("webhook-id", "svix-id"):
        if found := _usable(headers.get(name)):
            return DeliveryId(found, signed_headers)
    for name in DELIVERY_HEADERS:
        if found := _usable(headers.get(name)):
            return DeliveryId(found, False)
    if body is not None:
        if found := _usable(body.get("event_id")):  # Slack's Events API
            return DeliveryId(found, signed_body)
        # Stripe's event, or a CloudEvent in structured mode.
        is_event = body.get("object") == "event" or "specversion" in body
        if is_event and (found := _usable(body.get("id"))):
            return DeliveryId(found, signed_body)
    return None


def _usable(value: object) -> str | None:
    """An id fit for a log line and a Pub/Sub attribute: printable ASCII, at most 256."""
    return value if isinstance(value, str) and _PRINTABLE.fullmatch(value) else None
