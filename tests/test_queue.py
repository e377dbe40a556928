"""Queue mode (`WEBHOOK_DELIVERY=queue`) through the real app, publishing with the real
`google-cloud-pubsub` client to the Pub/Sub simulator; and the events side, which reads what the
intake queued as our own shape."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
import time
from collections.abc import Iterator

import grpc
import pytest

from devtools.simulators.pubsub import PubsubSimulator
from function import instance
from ops.sign import signed_headers
from tests.helpers import (
    LINK_ID,
    ROOT,
    link_url,
    log_lines,
    push_envelope,
    request_body,
    schema,
)

TOPIC = "projects/p/topics/tulip-link-requests"
OBSERVED = "projects/p/subscriptions/observed"
SECRET = "whsec_" + base64.b64encode(b"a queue mode secret of 32 bytes!").decode()


@pytest.fixture
def pubsub(env, monkeypatch) -> Iterator[PubsubSimulator]:
    """The Pub/Sub simulator, with the requests topic and a subscription that keeps what arrives."""
    emulator = PubsubSimulator()
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", emulator.host)
    emulator.add_topic(TOPIC)
    emulator.add_subscription(OBSERVED, TOPIC, ordering=True)
    env.set(
        WEBHOOK_DELIVERY="queue",
        WEBHOOK_QUEUE_TOPIC=TOPIC,
        WEBHOOK_PUBLISH_TIMEOUT_SECONDS="1",
    )
    yield emulator
    emulator.stop()


def queued(pubsub: PubsubSimulator) -> list:
    """What the intake published, in order."""
    return [delivery.message for delivery in pubsub.deliveries(OBSERVED)]


def pair_key(link_id: str, left: str, right: str) -> str:
    return hashlib.sha256(json.dumps([link_id, left, right]).encode()).hexdigest()


def test_one_link_is_published_and_answered_202(client, pubsub, capsys):
    response = client.post("/", json=request_body())
    assert response.status_code == 202
    [message] = queued(pubsub)
    assert response.json == {
        "status": "queued",
        "tableLinkId": LINK_ID,
        "leftRecord": "WO-1001",
        "rightRecord": "SN-1",
        "action": "link",
        "messageId": message.message_id,
        "requestId": response.headers["X-Request-Id"],
    }
    assert json.loads(message.data) == {
        "tableLinkId": LINK_ID,
        "leftRecord": "WO-1001",
        "rightRecord": "SN-1",
        "action": "link",
    }
    assert dict(message.attributes) == {
        "format": "tulip-link/v1",
        "intakeRequestId": response.headers["X-Request-Id"],
    }
    assert message.ordering_key == pair_key(LINK_ID, "WO-1001", "SN-1")
    [line] = log_lines(capsys.readouterr().out)
    assert (line["event"], line["status"], line["messageId"]) == (
        "link.queued",
        202,
        message.message_id,
    )


def test_the_data_is_normalised_and_a_link_and_its_unlink_share_a_key(client, pubsub):
    client.post("/", json={"table_link_id": LINK_ID, "left_record": "  WO-1\t", "rightRecord": 7})
    client.post("/", json=request_body(leftRecord="WO-1", rightRecord="7", action="unlink"))
    client.post("/", json=request_body(leftRecord="WO-1", rightRecord="8"))
    first, second, other = queued(pubsub)
    assert json.loads(first.data) == {
        "tableLinkId": LINK_ID,
        "leftRecord": "WO-1",
        "rightRecord": "7",
        "action": "link",
    }
    assert json.loads(second.data)["action"] == "unlink"
    assert first.ordering_key == second.ordering_key != other.ordering_key
    assert len(first.ordering_key) == 64  # however long the records, within Pub/Sub's 1 KB


def test_a_batch_answers_with_results_even_with_one_item(client, pubsub):
    response = client.post("/", json={"tableLinkId": LINK_ID, "links": [request_body()]})
    assert response.status_code == 202
    [message] = queued(pubsub)
    assert response.json == {
        "status": "queued",
        "results": [
            {
                "tableLinkId": LINK_ID,
                "leftRecord": "WO-1001",
                "rightRecord": "SN-1",
                "action": "link",
                "status": "queued",
                "messageId": message.message_id,
            }
        ],
        "requestId": response.headers["X-Request-Id"],
    }


def test_a_fan_out_publishes_one_message_per_link(client, pubsub, env, capsys):
    env.set(
        LINK_MAPPING=json.dumps(
            {"tableLinkId": f"'{LINK_ID}'", "leftRecord": "order", "rightRecord": "serials"}
        )
    )
    response = client.post("/", json={"order": "WO-9", "serials": ["SN-1", "SN-2", "SN-3"]})
    assert response.status_code == 202
    # One ordering key per pair: across keys, Pub/Sub (and the client) keep no order.
    published = {json.loads(m.data)["rightRecord"]: m.message_id for m in queued(pubsub)}
    results = {r["rightRecord"]: r["messageId"] for r in response.json["results"]}
    assert [r["rightRecord"] for r in response.json["results"]] == ["SN-1", "SN-2", "SN-3"]
    assert results == published
    [summary] = [x for x in log_lines(capsys.readouterr().out) if x["event"] == "link.batch"]
    assert summary["counts"]["queued"] == 3


def test_the_senders_delivery_id_is_kept(client, pubsub, env, clock):
    env.set(WEBHOOK_AUTH="standard-webhooks", WEBHOOK_SECRET_VALUE=SECRET)
    clock.wall_now = time.time()
    body = json.dumps(request_body()).encode()
    headers = signed_headers("standard-webhooks", SECRET, body, now=clock.wall_now)
    response = client.post("/", data=body, headers=headers, content_type="application/json")
    assert response.status_code == 202
    [message] = queued(pubsub)
    assert message.attributes["webhookId"] == headers["webhook-id"]


IGNORING = json.dumps({"when": "no", "tableLinkId": "'L'", "leftRecord": "a", "rightRecord": "b"})


IGNORING = json.dumps({"when": "no", "tableLinkId": "'L'", "leftRecord": "a", "rightRecord": "b"})


@pytest.mark.parametrize(
    ("arrange", "request_kwargs", "status"),
    [
        ({"WEBHOOK_AUTH": "token", "WEBHOOK_SECRET_VALUE": "t"}, {"json": request_body()}, 401),
        ({}, {"data": b"{}", "content_type": "text/plain"}, 415),
        ({"MAX_BODY_BYTES": "10"}, {"json": request_body()}, 413),
        ({}, {"data": b"{not json", "content_type": "application/json"}, 400),
        ({}, {"json": request_body(leftRecord="")}, 422),
        ({"TULIP_ALLOWED_TABLE_LINK_IDS": "Other"}, {"json": request_body()}, 422),
        ({"LINK_MAPPING": IGNORING}, {"json": {}}, 200),
    ],
    ids=["401", "415", "413", "400", "422", "allow-list", "ignored"],
)
def test_what_is_refused_or_ignored_publishes_nothing(
    client, pubsub, env, arrange, request_kwargs, status
):
    env.set(**arrange)
    response = client.post("/", **request_kwargs)
    assert response.status_code == status
    assert queued(pubsub) == []


def test_a_dry_run_stays_synchronous_and_publishes_nothing(client, pubsub, tulip):
    tulip.get(
        f"https://acme.tulip.co/api/v3/tableLinks/{LINK_ID}",
        json={"id": LINK_ID, "leftTableId": "L", "rightTableId": "R"},
    )
    response = client.post("/?dryRun=true", json=request_body())
    assert response.status_code == 200 and response.json["status"] == "valid"
    assert queued(pubsub) == []


def test_intake_reads_no_tulip_token(client, pubsub, env, secret_manager):
    version = "projects/p/secrets/tulip/versions/latest"
    secret_manager.put(version, "apikey.2_x:y")
    env.set(
        TULIP_API_KEY=None,
        TULIP_API_SECRET=None,
        TULIP_CREDENTIALS_SECRET=version,
        SECRET_MANAGER_EMULATOR_HOST=secret_manager.host,
    )
    assert client.post("/", json=request_body()).status_code == 202
    assert secret_manager.calls == []


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"WEBHOOK_DELIVERY": "later"}, "WEBHOOK_DELIVERY"),
        ({"WEBHOOK_QUEUE_TOPIC": None}, "WEBHOOK_QUEUE_TOPIC"),
        ({"WEBHOOK_QUEUE_TOPIC": "requests"}, "GOOGLE_CLOUD_PROJECT"),
        ({"WEBHOOK_QUEUE_TOPIC": "projects/p/topics/x y"}, "WEBHOOK_QUEUE_TOPIC"),
        ({"WEBHOOK_PUBLISH_TIMEOUT_SECONDS": "0"}, "WEBHOOK_PUBLISH_TIMEOUT_SECONDS"),
    ],
)
def test_a_bad_queue_setting_is_misconfigured_naming_it(client, pubsub, env, settings, named):
    env.set(**settings)
    response = client.post("/", json=request_body())
    assert (response.status_code, response.json["errorCode"]) == (500, "MISCONFIGURED")
    assert named in response.json["message"]
    assert queued(pubsub) == []


def test_a_bare_topic_takes_the_project(client, pubsub, env):
    env.set(WEBHOOK_QUEUE_TOPIC="tulip-link-requests", GOOGLE_CLOUD_PROJECT="p")
    assert client.post("/", json=request_body()).status_code == 202
    assert len(queued(pubsub)) == 1


def assert_queue_unavailable(response, within: float, started: float) -> None:
    assert response.status_code == 503, response.json
    assert response.json["errorCode"] == "QUEUE_UNAVAILABLE"
    assert response.headers["Retry-After"] == "5"
    assert time.monotonic() - started < within + 1  # the timeout, plus a second


def test_pubsub_stopped_is_503_within_the_timeout(client, pubsub):
    pubsub.stop()
    started = time.monotonic()
    response = client.post("/", json=request_body())
    assert_queue_unavailable(response, 1, started)
    assert "did not confirm" in response.json["message"]


def test_a_missing_topic_or_a_denied_publish_is_503(client, pubsub, env):
    env.set(WEBHOOK_QUEUE_TOPIC="projects/p/topics/nothing")
    response = client.post("/", json=request_body())
    assert response.status_code == 503 and "NotFound" in response.json["message"]
    instance.reset()
    env.set(WEBHOOK_QUEUE_TOPIC=TOPIC)
    pubsub.on_publish = lambda request: grpc.StatusCode.PERMISSION_DENIED
    response = client.post("/", json=request_body())
    assert response.status_code == 503 and "PermissionDenied" in response.json["message"]


def test_a_slow_pubsub_is_503_within_the_timeout(client, pubsub):
    pubsub.on_publish = lambda request: time.sleep(2)
    started = time.monotonic()
    assert_queue_unavailable(client.post("/", json=request_body()), 1, started)


def test_a_batch_only_partly_confirmed_is_503_listing_which(client, pubsub, capsys):
    refused = pair_key(LINK_ID, "WO-1", "SN-2")
    pubsub.on_publish = lambda request: (
        grpc.StatusCode.PERMISSION_DENIED
        if any(m.ordering_key == refused for m in request.messages)
        else None
    )
    links = [{"leftRecord": "WO-1", "rightRecord": f"SN-{n}"} for n in range(1, 4)]
    response = client.post("/", json={"tableLinkId": LINK_ID, "links": links})
    assert response.status_code == 503 and response.json["errorCode"] == "QUEUE_UNAVAILABLE"
    assert [r["status"] for r in response.json["results"]] == ["queued", "failed", "queued"]
    assert len(queued(pubsub)) == 2
    lines = log_lines(capsys.readouterr().out)
    [summary] = [line for line in lines if line["event"] == "link.batch"]
    assert summary["counts"]["queued"] == 2 and summary["counts"]["failed"] == 1
    assert [line["event"] for line in lines if "itemIndex" in line] == [
        "link.queued",
        "link.failed",
        "link.queued",
    ]


def test_after_a_failed_publish_the_pair_is_published_again(client, pubsub):
    # The client pauses an ordering key after a failure: it must be resumed, or every later
    # request for this pair would fail at once.
    failures = [grpc.StatusCode.PERMISSION_DENIED]
    pubsub.on_publish = lambda request: failures.pop() if failures else None
    assert client.post("/", json=request_body()).status_code == 503
    assert client.post("/", json=request_body()).status_code == 202
    assert len(queued(pubsub)) == 1


@pytest.mark.processes
def test_direct_mode_never_imports_the_pubsub_library():
    code = (
        "import os, sys;"
        "os.environ.update(TULIP_BASE_URL='https://a.tulip.co', TULIP_API_KEY='k', "
        "TULIP_API_SECRET='s', WEBHOOK_AUTH='none');"
        "import functions_framework, responses;"
        "mock = responses.RequestsMock(); mock.start();"
        "mock.put('https://a.tulip.co/api/v3/tableLinks/L/link', status=204);"
        "app = functions_framework.create_app('link_records', 'main.py');"
        "body = {'tableLinkId': 'L', 'leftRecord': 'a', 'rightRecord': 'b'};"
        "assert app.test_client().post('/', json=body).status_code == 200;"
        "print(any(name.startswith(('google.cloud.pubsub', 'google.pubsub')) for name in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip().splitlines()[-1] == "False"


# --- the events side ---------------------------------------------------------------------------


def marked(payload: dict, request_id: str = "intake-1") -> dict:
    envelope = push_envelope(payload)
    envelope["message"]["attributes"] = {"format": "tulip-link/v1", "intakeRequestId": request_id}
    return envelope


SENDER_MAPPING = json.dumps({"leftRecord": "order", "rightRecord": "serial"})


def test_the_events_function_reads_a_queued_link_as_ours_and_logs_the_intake(
    push_client, env, tulip, capsys
):
    env.set(LINK_MAPPING=SENDER_MAPPING, TULIP_TABLE_LINK_ID=LINK_ID)
    tulip.put(link_url(), status=204)
    response = push_client.post("/", json=marked(request_body(), "intake-42"))
    assert response.status_code == 200 and response.json["status"] == "linked"
    [line] = log_lines(capsys.readouterr().out)
    assert line["intakeRequestId"] == "intake-42" and line["event"] == "link.done"


def test_the_marker_means_nothing_where_the_function_checks_its_callers(client, env):
    # A sender must not skip the mapping by wrapping its body in a marked envelope.
    env.set(
        LINK_MAPPING=SENDER_MAPPING,
        TULIP_TABLE_LINK_ID=LINK_ID,
        WEBHOOK_AUTH="token",
        WEBHOOK_SECRET_VALUE="t",
    )
    response = client.post("/", json=marked(request_body()), headers={"Authorization": "Bearer t"})
    assert response.status_code == 422  # read through the mapping, which finds no `order`
    assert "order gave null" in response.json["message"]


def test_validation_and_the_allow_list_apply_to_queued_links_too(push_client, env):
    env.set(TULIP_ALLOWED_TABLE_LINK_IDS="Other")
    response = push_client.post("/", json=marked(request_body()))
    assert response.status_code == 422
    assert response.json["fields"][0]["field"] == "tableLinkId"


def test_a_queued_link_sent_back_to_a_webhook_is_refused_not_queued_again(client, pubsub):
    response = client.post("/", json=marked(request_body()))
    assert (response.status_code, response.json["errorCode"]) == (400, "MALFORMED_REQUEST")
    assert "link_records_push" in response.json["message"]
    assert queued(pubsub) == []


def test_eventarc_reads_a_queued_link_as_ours(event_client, env, tulip, capsys):
    env.set(LINK_MAPPING=SENDER_MAPPING, TULIP_TABLE_LINK_ID=LINK_ID)
    tulip.put(link_url(), status=204)
    message = marked(request_body(), "intake-7")["message"]
    response = event_client.post(
        "/",
        json={"message": message, "subscription": "projects/p/subscriptions/eventarc"},
        headers={
            "ce-id": "m-1",
            "ce-specversion": "1.0",
            "ce-type": "google.cloud.pubsub.topic.v1.messagePublished",
            "ce-source": "//pubsub.googleapis.com/projects/p/topics/t",
        },
    )
    assert response.status_code == 200
    [line] = log_lines(capsys.readouterr().out)
    assert line["event"] == "link.done" and line["intakeRequestId"] == "intake-7"


def test_queued_answers_fit_their_documented_schemas(client, pubsub):
    schema("Queued").validate(client.post("/", json=request_body()).json)
    batch = client.post("/", json={"tableLinkId": LINK_ID, "links": [request_body()]})
    schema("BatchQueued").validate(batch.json)
    pubsub.stop()
    schema("Error").validate(client.post("/", json=request_body()).json)


def test_the_senders_name_is_on_every_line_and_travels_with_the_link(client, pubsub, env, capsys):
    env.set(WEBHOOK_SENDER="mes")
    assert client.post("/", json=request_body()).status_code == 202
    [message] = queued(pubsub)
    assert message.attributes["sender"] == "mes"
    [line] = log_lines(capsys.readouterr().out)
    assert line["sender"] == "mes"


def test_the_events_function_logs_the_sender_of_a_queued_link(push_client, env, tulip, capsys):
    tulip.put(link_url(), status=204)
    envelope = marked(request_body())
    envelope["message"]["attributes"]["sender"] = "jira"
    assert push_client.post("/", json=envelope).status_code == 200
    [line] = log_lines(capsys.readouterr().out)
    assert line["sender"] == "jira"


def test_a_sender_name_that_cannot_go_into_names_is_misconfigured(client, env):
    env.set(WEBHOOK_SENDER="MES system")
    response = client.post("/", json=request_body())
    assert response.status_code == 500 and "WEBHOOK_SENDER" in response.json["message"]


def test_a_queued_links_line_names_its_pair_as_a_direct_ones_does(client, pubsub, capsys):
    body = request_body()
    assert client.post("/", json=body).status_code == 202
    [line] = log_lines(capsys.readouterr().out)
    assert (line["event"], line["leftRecord"], line["rightRecord"]) == (
        "link.queued",
        body["leftRecord"],
        body["rightRecord"],
    )
