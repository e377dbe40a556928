"""The Eventarc entry point: a Pub/Sub `messagePublished` CloudEvent, through the real app.

Eventarc cannot dead-letter: a message that can never succeed is logged whole at ERROR and
acked (200); anything that may succeed later answers non-2xx so Eventarc delivers it again.
"""

from __future__ import annotations

import json

import pytest
import requests

from function.core import service
from tests.helpers import b64, link_url, log_lines, request_body

MESSAGE_ID = "1234567890"


def post_event(event_client, data: object, *, message: dict | None = None):
    body = {
        "message": message or {"data": data, "messageId": MESSAGE_ID, "attributes": {"a": "b"}},
        "subscription": "projects/p/subscriptions/eventarc-sub",
    }
    return event_client.post(
        "/",
        json=body,
        headers={
            "ce-id": MESSAGE_ID,
            "ce-specversion": "1.0",
            "ce-type": "google.cloud.pubsub.topic.v1.messagePublished",
            "ce-source": "//pubsub.googleapis.com/projects/p/topics/tulip-link",
            "Function-Execution-Id": "evt1",
        },
    )


def test_a_message_is_linked_and_acked(event_client, tulip, capsys):
    call = tulip.put(link_url(), status=204)
    response = post_event(event_client, b64(request_body()))
    assert response.status_code == 200
    assert json.loads(call.calls[0].request.body)["leftRecord"] == "WO-1001"
    [line] = log_lines(capsys.readouterr().out)
    assert line["event"] == "link.done"
    assert line["messageId"] == MESSAGE_ID and line["executionId"] == "evt1"
    assert line["requestId"] != "evt1"


@pytest.mark.parametrize(
    "data",
    [
        "%%% not base64",
        b64(b"not json"),
        b64(b"[]"),
        b64({"leftRecord": "only one"}),
        b64({"tableLinkId": "bad id", "leftRecord": "a", "rightRecord": "b"}),
    ],
)
def test_a_message_that_can_never_succeed_is_logged_whole_and_acked(event_client, capsys, data):
    response = post_event(event_client, data)
    assert response.status_code == 200
    [line] = log_lines(capsys.readouterr().out)
    assert line["severity"] == "ERROR" and line["event"] == "link.rejected"
    assert line["messageId"] == MESSAGE_ID
    assert line["messageData"] == data  # exactly as received, to replay it
    assert line["messageAttributes"] == {"a": "b"}
    assert line["acked"] is True


def test_a_message_without_data_is_acked_with_what_was_received(event_client, capsys):
    response = post_event(event_client, None, message={"messageId": MESSAGE_ID})
    assert response.status_code == 200
    [line] = log_lines(capsys.readouterr().out)
    assert line["event"] == "link.rejected" and line["errorCode"] == "MALFORMED_REQUEST"


@pytest.mark.parametrize("status", [400, 409, 422])
def test_tulip_refusing_the_values_is_permanent(event_client, tulip, capsys, status):
    tulip.put(link_url(), status=status, json={"errorCode": "X", "errorUniqueID": "abc"})
    data = b64(request_body())
    assert post_event(event_client, data).status_code == 200
    [line] = log_lines(capsys.readouterr().out)
    assert line["event"] == "link.rejected" and line["severity"] == "ERROR"
    assert line["messageData"] == data and line["tulipErrorUniqueID"] == "abc"


@pytest.mark.parametrize(
    ("status", "expected"),
    [(404, 404), (401, 502), (403, 502), (429, 429), (500, 502), (503, 502)],
)
def test_failures_that_may_pass_later_are_retried_by_eventarc(
    event_client, tulip, capsys, status, expected
):
    for _ in range(4):
        tulip.put(link_url(), status=status)
    response = post_event(event_client, b64(request_body()))
    assert response.status_code == expected
    assert "X-Google-Status" not in response.headers  # not the framework's crash path
    out, err = capsys.readouterr()
    outcome_lines = [line for line in log_lines(out) if line["event"] != "tulip.retry"]
    assert len(outcome_lines) == 1 and outcome_lines[0]["event"] in {"link.failed", "link.rejected"}
    assert err == ""
    tulip.reset()


def test_a_timeout_is_retried_by_eventarc(event_client, tulip):
    for _ in range(4):
        tulip.put(link_url(), body=requests.ReadTimeout())
    assert post_event(event_client, b64(request_body())).status_code == 504


def test_bad_settings_are_retried_not_dropped(event_client, env, capsys):
    env.set(TULIP_BASE_URL=None)
    response = post_event(event_client, b64(request_body()))
    assert response.status_code == 500
    assert response.json["errorCode"] == "MISCONFIGURED"


def test_webhook_auth_does_not_apply_to_events(event_client, tulip, env):
    env.set(WEBHOOK_AUTH=None)
    tulip.put(link_url(), status=204)
    assert post_event(event_client, b64(request_body())).status_code == 200


def test_a_bug_is_retried_with_one_log_line_and_no_framework_traceback(
    event_client, capsys, monkeypatch
):
    def broken(*args, **kwargs):
        raise RuntimeError("bug")

    monkeypatch.setattr(service.LinkService, "handle", broken)
    response = post_event(event_client, b64(request_body()))
    assert response.status_code == 500
    assert response.json["errorCode"] == "INTERNAL"
    out, err = capsys.readouterr()
    [line] = log_lines(out)
    assert line["severity"] == "ERROR" and "RuntimeError: bug" in line["stack_trace"]
    assert err == ""


def test_a_huge_undeliverable_message_is_logged_cut_short(event_client, capsys, env):
    env.set(MAX_BODY_BYTES="1000")
    data = b64({"padding": "x" * 200_000})
    assert post_event(event_client, data).status_code == 200
    [line] = log_lines(capsys.readouterr().out)
    assert line["errorCode"] == "PAYLOAD_TOO_LARGE"
    assert line["messageDataTruncated"] is True
    assert data.startswith(line["messageData"]) and len(line["messageData"]) == 128 * 1024
