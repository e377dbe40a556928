"""Cloud Functions entry points. Thin on purpose: the work is in the `function` package."""

import flask
import functions_framework
from cloudevents.http.event import CloudEvent

from function import handlers


@functions_framework.http
def link_records(request: flask.Request) -> flask.Response:
    """HTTP: a JSON link request, or a Pub/Sub push envelope carrying one."""
    return handlers.handle_http(request)


@functions_framework.cloud_event
def link_records_pubsub(event: CloudEvent) -> None:
    """Eventarc: a Pub/Sub `messagePublished` event carrying a link request."""
    handlers.handle_cloud_event(event)
