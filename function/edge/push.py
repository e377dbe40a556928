"""`link_records_push`: the events function behind the Pub/Sub push subscription.

It takes push envelopes only. Cloud Run IAM admits the push subscription's account alone, so an
intake message's `format` attribute is trusted because of where it arrived. The answer's status
is Pub/Sub's cue: a 2xx acks the message, anything else has it delivered again.
"""

from __future__ import annotations

import flask

from function import instance, logs
from function.edge.http import check_post_json, read_body, serve
from function.edge.messages import from_intake
from function.edge.payloads import (
    is_push_envelope,
    message_payload,
    parse_json_object,
    parse_push_envelope,
)
from function.model.errors import MalformedRequest
from function.model.results import Result


def handle(request: flask.Request) -> flask.Response:
    """Serve one push delivery."""
    return serve(request, lambda request_id: _link(request))


def _link(request: flask.Request) -> Result:
    built = instance.current().events_function()
    settings = built.settings
    logs.bind(**logs.trace_fields(request.headers, settings.project))
    deadline = built.new_deadline()
    check_post_json(request)
    body = parse_json_object(read_body(request, settings.max_body_bytes))
    if not is_push_envelope(body):
        raise MalformedRequest(
            'link_records_push takes Pub/Sub push envelopes ({"message": {...}, '
            '"subscription": ...}); a sender\'s webhook goes to link_records'
        )
    envelope = parse_push_envelope(body)
    logs.bind(
        messageId=envelope.message.message_id,
        deliveryAttempt=envelope.delivery_attempt,
        subscription=envelope.subscription,
    )
    intake_message = from_intake(envelope.message.attributes)
    payload = message_payload(envelope.message, settings.max_body_bytes)
    return built.service.handle(payload, deadline, from_intake=intake_message)
