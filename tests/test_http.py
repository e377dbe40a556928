"""The HTTP entry point, row by row of the status table, through the real functions-framework app.

Tulip is mocked with `responses`; an unexpected Tulip call fails the test.
"""

from __future__ import annotations

import io
import json

import pytest
import requests

from function.core import service
from tests.helpers import (
    API_KEY,
    API_SECRET,
    LINK_ID,
    b64,
    link_url,
    log_lines,
    push_envelope,
    request_body,
)


def test_link_answers_200_with_what_was_linked(client, tulip, capsys):
    call = tulip.put(link_url(), status=204)
    response = client.post(
        "/", json=request_body(leftRecord="  WO-1001\t", rightRecord=42), headers={}
    )
    assert response.status_code == 200
    request_id = response.headers["X-Request-Id"]
    assert response.json == {
        "status": "linked",
        "tableLinkId": LINK_ID,
        "leftRecord": "WO-1001",
        "rightRecord": "42",
        "requestId": request_id,
    }
    sent = call.calls[0].request
    assert json.loads(sent.body) == {"leftRecord": "WO-1001", "rightRecord": "42"}
    assert sent.headers["Content-Type"] == "application/json"
    assert sent.headers["User-Agent"].startswith("tulip-link/")
    [line] = log_lines(capsys.readouterr().out)
    assert line["event"] == "link.done" and line["severity"] == "INFO"
    assert line["requestId"] == request_id and line["tulipStatus"] == 204


def test_unlink_calls_the_unlink_endpoint(client, tulip):
    tulip.put(link_url(action="unlink"), status=204)
    response = client.post("/", json=request_body(action="unlink"))
    assert response.status_code == 200
    assert response.json["status"] == "unlinked"


def test_any_2xx_from_tulip_is_success(client, tulip):
    tulip.put(link_url(), status=200, json={"unexpected": "body"})
    assert client.post("/", json=request_body()).status_code == 200


def test_the_request_id_is_always_ours_and_the_platforms_execution_id_is_logged_beside_it(
    client, tulip, capsys
):
    tulip.put(link_url(), status=204)
    first = client.post("/", json=request_body(), headers={"Function-Execution-Id": "exec42"})
    again = client.post("/", json=request_body(), headers={"Function-Execution-Id": "exec42"})
    ids = {first.headers["X-Request-Id"], again.headers["X-Request-Id"]}
    assert len(ids) == 2 and "exec42" not in ids  # a caller cannot pass for another request
    assert first.json["requestId"] == first.headers["X-Request-Id"]
    lines = log_lines(capsys.readouterr().out)
    assert [(line["requestId"], line["executionId"]) for line in lines] == [
        (first.json["requestId"], "exec42"),
        (again.json["requestId"], "exec42"),
    ]


def test_the_default_table_link_is_used_when_the_request_has_none(client, tulip, env):
    env.set(TULIP_TABLE_LINK_ID="DefaultLink_1")
    tulip.put(link_url("DefaultLink_1"), status=204)
    response = client.post("/", json=request_body(tableLinkId=...))
    assert response.status_code == 200
    assert response.json["tableLinkId"] == "DefaultLink_1"


def test_a_workspace_goes_into_the_path_percent_encoded(client, tulip, env):
    env.set(TULIP_WORKSPACE_ID="ws/1?é")
    tulip.put(f"https://acme.tulip.co/api/v3/w/ws%2F1%3F%C3%A9/tableLinks/{LINK_ID}/link")
    assert client.post("/", json=request_body()).status_code == 200


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE"])
def test_other_methods_get_405_with_allow(client, method):
    response = client.open("/", method=method, json=request_body())
    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"
    assert response.json["errorCode"] == "METHOD_NOT_ALLOWED"


def test_head_gets_405_with_allow_and_no_body(client):
    response = client.head("/")
    assert (response.status_code, response.headers["Allow"]) == (405, "POST")
    assert response.data == b""


@pytest.mark.parametrize("content_type", [None, "text/plain", "multipart/form-data"])
def test_a_body_neither_json_nor_a_form_gets_415(client, content_type):
    headers = {"Content-Type": content_type} if content_type else {}
    response = client.post("/", data=json.dumps(request_body()), headers=headers)
    assert response.status_code == 415
    assert response.json["errorCode"] == "UNSUPPORTED_MEDIA_TYPE"
    assert "application/x-www-form-urlencoded" in response.json["message"]


def test_a_push_function_takes_no_form(push_client):
    response = push_client.post("/", data="a=1", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "Application/JSON; charset=utf-8", "application/vnd.acme+json"],
)
def test_json_content_types_are_accepted(client, tulip, content_type):
    tulip.put(link_url(), status=204)
    response = client.post("/", data=json.dumps(request_body()), content_type=content_type)
    assert response.status_code == 200


def test_a_body_over_the_cap_gets_413(client, env):
    env.set(MAX_BODY_BYTES="100")
    response = client.post("/", json=request_body(padding="x" * 200))
    assert response.status_code == 413
    assert response.json["errorCode"] == "PAYLOAD_TOO_LARGE"


def test_a_chunked_body_over_the_cap_gets_413(client, env):
    env.set(MAX_BODY_BYTES="100")
    body = json.dumps(request_body(padding="x" * 200)).encode()
    response = client.post(
        "/",
        input_stream=io.BytesIO(body),
        content_type="application/json",
        headers={"Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert response.status_code == 413


def test_a_body_at_the_cap_is_read(client, tulip, env):
    body = json.dumps(request_body()).encode()
    env.set(MAX_BODY_BYTES=str(len(body)))
    tulip.put(link_url(), status=204)
    response = client.post(
        "/",
        input_stream=io.BytesIO(body),
        content_type="application/json",
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "must be a JSON object, not an array"),
        (b'"text"', "not a string"),
        (b"\xff\xfe{}", "not UTF-8"),
        (b'{"leftRecord": "a", "leftRecord": "b"}', "appears twice"),
        (b'{"leftRecord": NaN}', "NaN"),
        (b"", "not valid JSON"),
        (b"[" * 100_000, "nested too deeply"),
    ],
)
def test_a_body_that_is_not_a_json_object_gets_400(client, env, body, fragment):
    env.set(MAX_BODY_BYTES=str(1_000_000))
    response = client.post("/", data=body, content_type="application/json")
    assert response.status_code == 400
    assert response.json["errorCode"] == "MALFORMED_REQUEST"
    assert fragment in response.json["message"]


def test_invalid_fields_get_422_listing_each(client):
    response = client.post(
        "/", json={"tableLinkId": "abc\n", "leftRecord": True, "right_record": 1.5, "action": "X"}
    )
    assert response.status_code == 422
    assert response.json["errorCode"] == "INVALID_PAYLOAD"
    fields = {item["field"]: item["problem"] for item in response.json["fields"]}
    assert set(fields) == {"tableLinkId", "leftRecord", "right_record", "action"}
    assert "boolean" in fields["leftRecord"]


def test_a_table_link_outside_the_allowed_list_gets_422(client, env):
    env.set(TULIP_ALLOWED_TABLE_LINK_IDS="OnlyThis, OrThat")
    response = client.post("/", json=request_body())
    assert response.status_code == 422
    assert response.json["fields"][0]["field"] == "tableLinkId"


def test_an_allowed_table_link_passes(client, tulip, env):
    env.set(TULIP_ALLOWED_TABLE_LINK_IDS=f"Other,{LINK_ID}")
    tulip.put(link_url(), status=204)
    assert client.post("/", json=request_body()).status_code == 200


@pytest.mark.parametrize("status", [400, 404, 409, 422])
def test_tulip_refusals_keep_their_status_and_tulip_details(client, tulip, status):
    tulip.put(
        link_url(),
        status=status,
        json={"errorCode": "RECORD_NOT_FOUND", "errorUniqueID": "aq21mSKC1rbO/+4", "details": "x"},
    )
    response = client.post("/", json=request_body())
    assert response.status_code == status
    body = response.json
    assert body["errorCode"] == "TULIP_REJECTED"
    assert body["tulipErrorCode"] == "RECORD_NOT_FOUND"
    assert body["tulipErrorUniqueID"] == "aq21mSKC1rbO/+4"
    assert body["details"] == "x"
    assert len(tulip.calls) == 1  # never retried


def test_tulip_details_are_capped_and_a_bad_unique_id_dropped(client, tulip):
    tulip.put(
        link_url(),
        status=400,
        json={"errorCode": "E", "errorUniqueID": "bad id\n", "details": "d" * 5000},
    )
    body = client.post("/", json=request_body()).json
    assert len(body["details"]) == 500
    assert "tulipErrorUniqueID" not in body


def test_a_non_json_tulip_error_body_still_maps(client, tulip):
    tulip.put(link_url(), status=400, body="<html>oops</html>", content_type="text/html")
    response = client.post("/", json=request_body())
    assert response.status_code == 400
    assert response.json["tulipStatus"] == 400


def test_403_is_auth_rejected_without_retry(client, tulip):
    tulip.put(link_url(), status=403, json={"errorCode": "FORBIDDEN"})
    response = client.post("/", json=request_body())
    assert response.status_code == 502
    assert response.json["errorCode"] == "TULIP_AUTH_REJECTED"
    assert len(tulip.calls) == 1


def test_401_is_tried_once_more_then_auth_rejected(client, tulip):
    tulip.put(link_url(), status=401)
    tulip.put(link_url(), status=401)
    response = client.post("/", json=request_body())
    assert response.status_code == 502
    assert response.json["errorCode"] == "TULIP_AUTH_REJECTED"
    assert len(tulip.calls) == 2


def test_401_then_success_links(client, tulip):
    tulip.put(link_url(), status=401)
    tulip.put(link_url(), status=204)
    assert client.post("/", json=request_body()).status_code == 200


def test_the_401_retry_is_outside_the_attempt_count(client, tulip, env, capsys):
    env.set(TULIP_MAX_ATTEMPTS="2")
    tulip.put(link_url(), status=503)
    tulip.put(link_url(), status=401)
    tulip.put(link_url(), status=204)
    assert client.post("/", json=request_body()).status_code == 200
    assert len(tulip.calls) == 3
    # `attempts` is reported as TULIP_MAX_ATTEMPTS counts: the 503 and the 204, not the 401.
    done = log_lines(capsys.readouterr().out)[-1]
    assert (done["event"], done["attempts"]) == ("link.done", 2)


def test_a_failure_reports_the_attempts_counted(client, tulip, env, capsys):
    env.set(TULIP_MAX_ATTEMPTS="2")
    tulip.put(link_url(), status=401)
    tulip.put(link_url(), status=503)
    tulip.put(link_url(), status=503)
    assert client.post("/", json=request_body()).status_code == 502
    failed = log_lines(capsys.readouterr().out)[-1]
    assert (failed["event"], failed["attempts"], failed["tulipStatus"]) == ("link.failed", 2, 503)


def test_errors_that_are_not_tulips_carry_no_tulip_fields(client, capsys):
    response = client.get("/")
    assert response.status_code == 405
    assert not {"tulipStatus", "attempts"} & set(response.json)
    [line] = log_lines(capsys.readouterr().out)
    assert not {"tulipStatus", "attempts"} & set(line)


def test_rate_limit_is_retried_then_answered_429_with_tulips_retry_after(client, tulip, clock):
    for _ in range(4):
        tulip.put(link_url(), status=429, headers={"Retry-After": "2"})
    response = client.post("/", json=request_body())
    assert response.status_code == 429
    assert response.json["errorCode"] == "TULIP_RATE_LIMITED"
    assert response.headers["Retry-After"] == "2"
    assert clock.sleeps == [2.0, 2.0, 2.0]  # Retry-After replaced the backoff
    assert len(tulip.calls) == 4


def test_rate_limit_without_retry_after_uses_backoff_and_default_header(client, tulip, clock):
    for _ in range(4):
        tulip.put(link_url(), status=429)
    response = client.post("/", json=request_body())
    assert response.headers["Retry-After"] == "5"
    first, second, third = clock.sleeps
    assert 0.25 <= first <= 0.5 and 0.5 <= second <= 1.0 and 1.0 <= third <= 2.0


def test_retry_after_as_an_http_date(client, tulip, clock):
    from email.utils import formatdate

    when = formatdate(clock.wall_now + 3, usegmt=True)
    tulip.put(link_url(), status=503, headers={"Retry-After": when})
    tulip.put(link_url(), status=204)
    assert client.post("/", json=request_body()).status_code == 200
    assert clock.sleeps == [3.0]


def test_a_wait_past_the_deadline_is_not_started(client, tulip, clock):
    tulip.put(link_url(), status=429, headers={"Retry-After": "3600"})
    response = client.post("/", json=request_body())
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "3600"
    assert clock.sleeps == []


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_are_retried_then_502_with_retry_after(client, tulip, status):
    for _ in range(4):
        tulip.put(link_url(), status=status, body="<html>Bad gateway</html>")
    response = client.post("/", json=request_body())
    assert response.status_code == 502
    assert response.json["errorCode"] == "TULIP_UNAVAILABLE"
    assert response.headers["Retry-After"] == "5"
    assert len(tulip.calls) == 4


def test_a_server_error_then_success_links(client, tulip):
    tulip.put(link_url(), status=503)
    tulip.put(link_url(), status=204)
    response = client.post("/", json=request_body())
    assert response.status_code == 200


def test_connection_errors_are_retried_then_502(client, tulip):
    for _ in range(4):
        tulip.put(link_url(), body=requests.ConnectionError("refused"))
    response = client.post("/", json=request_body())
    assert response.status_code == 502
    assert response.json["errorCode"] == "TULIP_UNAVAILABLE"
    assert len(tulip.calls) == 4


@pytest.mark.parametrize("status", [301, 302, 405, 418, 501])
def test_any_other_status_is_502_unavailable_without_retry(client, tulip, status):
    tulip.put(link_url(), status=status, headers={"Location": "https://elsewhere.example/"})
    response = client.post("/", json=request_body())
    assert response.status_code == 502
    assert response.json["errorCode"] == "TULIP_UNAVAILABLE"
    assert response.json["tulipStatus"] == status
    assert len(tulip.calls) == 1  # and the redirect was not followed


def test_timeouts_are_retried_then_504(client, tulip):
    for _ in range(4):
        tulip.put(link_url(), body=requests.ReadTimeout("slow"))
    response = client.post("/", json=request_body())
    assert response.status_code == 504
    assert response.json["errorCode"] == "TULIP_TIMEOUT"
    assert "Retry-After" not in response.headers


def test_no_attempt_after_the_deadline_is_504(client, tulip, clock, env):
    env.set(TULIP_DEADLINE_SECONDS="5")

    def slow_401(request):
        clock.advance(6)  # Tulip took longer than the whole deadline
        return (401, {}, "")

    tulip.add_callback("PUT", link_url(), callback=slow_401)
    response = client.post("/", json=request_body())
    assert response.status_code == 504
    assert "deadline" in response.json["message"]
    assert len(tulip.calls) == 1


def test_the_timeout_per_attempt_never_exceeds_the_time_left(client, tulip, env, clock):
    env.set(TULIP_TIMEOUT_SECONDS="10", TULIP_DEADLINE_SECONDS="4")
    seen = []

    def record(request):
        seen.append(request.req_kwargs["timeout"])
        return (204, {}, "")

    tulip.add_callback("PUT", link_url(), callback=record)
    assert client.post("/", json=request_body()).status_code == 200
    assert seen == [(4.0, 4.0)]


@pytest.mark.parametrize(
    ("variables", "named"),
    [
        ({"TULIP_BASE_URL": None}, "TULIP_BASE_URL"),
        ({"TULIP_BASE_URL": "http://acme.tulip.co"}, "TULIP_BASE_URL"),
        ({"TULIP_TIMEOUT_SECONDS": "ten"}, "TULIP_TIMEOUT_SECONDS"),
        ({"TULIP_MAX_ATTEMPTS": "0"}, "TULIP_MAX_ATTEMPTS"),
        ({"MAX_BODY_BYTES": "-1"}, "MAX_BODY_BYTES"),
        (
            {"TULIP_TABLE_LINK_ID": "A", "TULIP_ALLOWED_TABLE_LINK_IDS": "B,C"},
            "TULIP_TABLE_LINK_ID",
        ),
        ({"TULIP_API_SECRET": None}, "TULIP_API_KEY and TULIP_API_SECRET"),
        ({"TULIP_API_KEY": None, "TULIP_API_SECRET": None}, "TULIP_CREDENTIALS_SECRET"),
        ({"WEBHOOK_AUTH": None}, "WEBHOOK_AUTH"),
        ({"WEBHOOK_AUTH": ""}, "WEBHOOK_AUTH"),
        ({"WEBHOOK_AUTH": "maybe"}, "WEBHOOK_AUTH"),
    ],
)
def test_bad_settings_refuse_every_request_with_500(client, env, variables, named):
    env.set(**variables)
    for _ in range(2):
        response = client.post("/", json=request_body())
        assert response.status_code == 500
        assert response.json["errorCode"] == "MISCONFIGURED"
        assert named in response.json["message"]
    # checked before anything else, the method included
    assert client.get("/").status_code == 500


def test_a_secret_setting_is_never_echoed(client, env):
    env.set(TULIP_API_KEY="has:colon-SECRETVALUE")
    response = client.post("/", json=request_body())
    assert response.status_code == 500
    assert "SECRETVALUE" not in response.get_data(as_text=True)


def test_a_bug_is_500_internal_with_the_traceback_only_in_one_log_line(
    client, tulip, capsys, monkeypatch
):
    def broken(*args, **kwargs):
        raise ZeroDivisionError("surprise")

    monkeypatch.setattr(service.LinkService, "act", broken)
    response = client.post("/", json=request_body())
    assert response.status_code == 500
    assert response.json["errorCode"] == "INTERNAL"
    assert "surprise" not in response.get_data(as_text=True)
    out, err = capsys.readouterr()
    [line] = log_lines(out)
    assert line["severity"] == "ERROR" and "ZeroDivisionError" in line["stack_trace"]
    assert err == ""


# --- Pub/Sub push envelopes ----------------------------------------------------------------------


def test_a_push_envelope_is_unwrapped_and_its_ids_logged(push_client, tulip, capsys):
    tulip.put(link_url(), status=204)
    response = push_client.post("/", json=push_envelope(request_body(), "m-77", attempt=3))
    assert response.status_code == 200
    [line] = log_lines(capsys.readouterr().out)
    assert line["messageId"] == "m-77" and line["deliveryAttempt"] == 3
    assert line["subscription"].endswith("tulip-link-events")


@pytest.mark.parametrize(
    ("status", "expected"), [(503, 502), (429, 429), (422, 422), (404, 404), (401, 502)]
)
def test_a_push_envelope_that_fails_is_not_acked(push_client, tulip, status, expected):
    for _ in range(4):
        tulip.put(link_url(), status=status)
    response = push_client.post("/", json=push_envelope(request_body()))
    assert response.status_code == expected
    tulip.reset()


def test_an_invalid_payload_in_an_envelope_is_422_so_it_is_dead_lettered(push_client):
    response = push_client.post("/", json=push_envelope({"leftRecord": "a"}))
    assert response.status_code == 422


@pytest.mark.parametrize(
    "envelope",
    [
        {"message": {"messageId": "1"}, "subscription": "s"},
        {"message": {"messageId": "1", "data": "%%%"}, "subscription": "s"},
        {"message": {"messageId": "1", "data": b64(b"[1]")}, "subscription": "s"},
        {"message": {"messageId": "1", "data": b64(b"\xff")}, "subscription": "s"},
        {"message": {"messageId": 1, "data": b64({})}, "subscription": "s"},
        {"message": {"messageId": "1", "data": b64({}), "attributes": []}, "subscription": "s"},
    ],
)
def test_a_broken_envelope_is_400(push_client, envelope):
    response = push_client.post("/", json=envelope)
    assert response.status_code == 400
    assert response.json["errorCode"] == "MALFORMED_REQUEST"


def test_a_body_that_only_looks_like_an_envelope_is_a_direct_request(client):
    # `subscription` is not a string, so this is a direct request with fields missing.
    response = client.post("/", json={"message": {"messageId": "1"}, "subscription": 5})
    assert response.status_code == 422


def test_a_message_over_the_cap_is_413(push_client, env):
    env.set(MAX_BODY_BYTES="300")
    envelope = push_envelope(request_body(padding="x" * 300))
    response = push_client.post("/", json=envelope)
    assert response.status_code == 413


def test_credentials_never_appear_in_answers_or_output(client, tulip, capfd):
    tulip.put(link_url(), status=401, json={"details": f"key {API_KEY} secret {API_SECRET}"})
    tulip.put(link_url(), status=401, json={"details": f"key {API_KEY} secret {API_SECRET}"})
    response = client.post("/", json=request_body())
    text = response.get_data(as_text=True)
    out, err = capfd.readouterr()
    import base64

    header = base64.b64encode(f"{API_KEY}:{API_SECRET}".encode()).decode()
    for secret in (API_KEY, API_SECRET, header):
        assert secret not in text and secret not in out and secret not in err
    assert "[redacted]" in text
