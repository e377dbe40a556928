"""`link_records_pubsub`: the events function behind an Eventarc trigger on the requests topic.

Returning acks the event; raising an HTTP error has Eventarc deliver it again. A message that
needs a person is dead-lettered as on the push subscription (`DEAD_LETTER_TOPIC`); without that
topic, such a message is logged whole (for replay) and acked, as Eventarc cannot dead-letter.
"""

from __future__ import annotations

import json
import time
from typing import Any

import flask
from cloudevents.http.event import CloudEvent

from function import instance, logs
from function.core.dead_letters import verdict
from function.edge.answers import render, response
from function.edge.http import execution_id, new_request_id, run
from function.edge.log_lines import log_outcome
from function.edge.messages import link_message
from function.edge.payloads import parse_pubsub_message
from function.model.results import Result, failed

# Cloud Logging refuses entries over 256 KiB; a longer message is logged cut short and marked.
LOGGED_DATA_LIMIT = 128 * 1024


def handle(event: CloudEvent) -> None:
    """Serve one Eventarc Pub/Sub event."""
    started = time.monotonic()
    # functions-framework serves a CloudEvent inside a Flask request, and the CloudEvent object
    # does not carry the HTTP headers we need (execution id, trace): read them from there.
    headers = flask.request.headers
    rid = new_request_id()
    data = event.get_data()
    message: Any = data.get("message") if isinstance(data, dict) else None
    subscription = data.get("subscription") if isinstance(data, dict) else None
    with logs.scope(
        requestId=rid,
        executionId=execution_id(headers),
        messageId=event["id"],
        subscription=subscription,
    ):

        def link() -> Result:
            built = instance.current().events_function()
            logs.bind(**logs.trace_fields(headers, built.settings.project))
            deadline = built.new_deadline()
            return link_message(built, parse_pubsub_message(message), None, deadline)

        outcome, crash = run(link)
        if not failed(outcome):
            log_outcome(outcome, started)
            return
        if verdict(outcome, None, float("inf")) == "dead_letter":
            # No dead-letter topic (else it would be DeadLettered): the log line is the dead
            # letter, holding the message exactly as received so it can be replayed.
            log_outcome(
                outcome, started, severity="ERROR", acked=True, **_as_received(message, data)
            )
            return
        log_outcome(outcome, started, crash=crash)
    flask.abort(response(render(outcome, rid)))


def _as_received(message: Any, data: Any) -> dict[str, Any]:
    """The undeliverable message for the log, cut at `LOGGED_DATA_LIMIT` characters."""
    if isinstance(message, dict):
        received: Any = message.get("data")
        extra: dict[str, Any] = {"messageAttributes": message.get("attributes")}
    else:
        received, extra = data, {}
    text = received if isinstance(received, str) else json.dumps(received, default=repr)
    if len(text) > LOGGED_DATA_LIMIT:
        extra["messageDataTruncated"] = True
        text = text[:LOGGED_DATA_LIMIT]
    return {"messageData": text, **extra}
