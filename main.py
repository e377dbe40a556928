"""Cloud Functions entry points, one per kind of caller. Thin on purpose: the work is in the
`function` package."""

import flask
import functions_framework
from cloudevents.http.event import CloudEvent

from function.edge import eventarc, push, webhook


@functions_framework.http
def link_records(request: flask.Request) -> flask.Response:
    """A sender's webhook: its own JSON (or ours), authenticated as WEBHOOK_AUTH says."""
    return webhook.handle(request)


@functions_framework.http
def link_records_push(request: flask.Request) -> flask.Response:
    """The events function behind the Pub/Sub push subscription: push envelopes only."""
    return push.handle(request)


@functions_framework.cloud_event
def link_records_pubsub(event: CloudEvent) -> None:
    """The events function behind an Eventarc trigger: Pub/Sub `messagePublished` events."""
    eventarc.handle(event)
