"""`link_records_push`: the events function behind the Pub/Sub push subscription.

It takes push envelopes only. Cloud Run IAM admits the push subscription's account alone, so an
intake message's `format` attribute is trusted because of where it arrived. The answer's status
is Pub/Sub's cue: a 2xx acks the message (linked, ignored, or dead-lettered with its reason),
anything else has it delivered again after the subscription's backoff.
"""

from __future__ import annotations

import flask

from function import instance, logs
from function.edge.http import check_post, read_body, serve
from function.edge.messages import link_message
from function.edge.payloads import is_push_envelope, parse_json_object, parse_push_envelope
from function.model.errors import MalformedRequest
from function.model.results import Result


def envelope_limit(max_body_bytes: int) -> int:
    """The largest envelope read: one whose data, decoded, may be `MAX_BODY_BYTES` (base64 adds a
    third) with room for its attributes, so that a message over the limit is refused as one
    (413, dead-lettered) rather than unread."""
    return max_body_bytes * 4 // 3 + 128 * 1024


def handle(request: flask.Request) -> flask.Response:
    """Serve one push delivery."""
    return serve(request, lambda request_id: _link(request))


def _link(request: flask.Request) -> Result:
    built = instance.current().events_function()
    settings = built.settings
    logs.bind(**logs.trace_fields(request.headers, settings.project))
    deadline = built.new_deadline()
    check_post(request, forms=False)
    body = parse_json_object(read_body(request, envelope_limit(settings.max_body_bytes), deadline))
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
    return link_message(built, envelope.message, envelope.delivery_attempt, deadline)
