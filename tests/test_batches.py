"""Batches `{"links": [...]}` through the real app: validation before any call, the worst-link
answer, order and concurrency, the shared rate-limit pause, the deadline, and the logs."""

from __future__ import annotations

import json
import threading

import pytest

from tests.doubles import Recorded, Scripted
from tests.helpers import b64, link_url, log_lines, push_envelope

PAIRS = [("WO-1001", "SN-0001"), ("WO-1001", "SN-0002"), ("WO-1003", "SN-0003")]


def batch(*pairs, **top):
    return {"links": [{"leftRecord": a, "rightRecord": b} for a, b in pairs], **top}


def test_a_batch_links_every_pair_and_answers_each_result(client, simulator):
    response = client.post("/", json=batch(*PAIRS, tableLinkId="WorkOrderSerials"))
    assert response.status_code == 200
    body = response.json
    assert body["status"] == "done" and body["requestId"] == response.headers["X-Request-Id"]
    assert body["results"] == [
        {
            "tableLinkId": "WorkOrderSerials",
            "leftRecord": a,
            "rightRecord": b,
            "action": "link",
            "status": "linked",
        }
        for a, b in PAIRS
    ]
    assert sorted(map(tuple, simulator.links("WorkOrderSerials"))) == sorted(
        [("WO-1002", "SN-0004"), *PAIRS]
    )


def test_top_level_table_link_and_action_are_defaults_items_may_override(client, tulip):
    tulip.put(link_url("Top", "unlink"), status=204)
    tulip.put(link_url("Own", "link"), status=204)
    body = {
        "table_link_id": "Top",
        "action": "unlink",
        "links": [
            {"leftRecord": "L1", "rightRecord": "R1"},
            {"tableLinkId": "Own", "action": "link", "left_record": "L2", "rightRecord": "R2"},
        ],
        "leftRecord": "ignored: only tableLinkId and action are defaults",
    }
    response = client.post("/", json=body)
    assert response.status_code == 200
    assert [(r["tableLinkId"], r["action"], r["status"]) for r in response.json["results"]] == [
        ("Top", "unlink", "unlinked"),
        ("Own", "link", "linked"),
    ]


@pytest.mark.parametrize("links", [[], {}, "x", [1], [{"leftRecord": "a"}, "b"], None])
def test_links_must_be_a_non_empty_array_of_objects(client, links):
    response = client.post("/", json={"tableLinkId": "T", "links": links})
    assert response.status_code == 422
    assert response.json["fields"] == [
        {"field": "links", "problem": "must be a non-empty array of objects"}
    ]


def test_more_than_max_batch_links_is_422_with_no_call(client, env):
    env.set(MAX_BATCH_LINKS="2")
    response = client.post("/", json=batch(*PAIRS, tableLinkId="T"))
    assert response.status_code == 422
    [problem] = response.json["fields"]
    assert problem["field"] == "links" and "MAX_BATCH_LINKS (2)" in problem["problem"]


def test_one_invalid_item_refuses_the_whole_batch_naming_it(client):
    links = [{"leftRecord": "WO-1", "rightRecord": f"SN-{n}"} for n in range(4)]
    links[3]["rightRecord"] = "bad\x07"
    links[1]["action"] = "delete"
    response = client.post("/", json={"tableLinkId": "T", "links": links})
    assert response.status_code == 422
    assert [p["field"] for p in response.json["fields"]] == [
        "links[1].action",
        "links[3].rightRecord",
    ]
    assert "control characters" in response.json["fields"][1]["problem"]


def test_a_bad_top_level_default_is_named(client):
    response = client.post("/", json=batch(*PAIRS, tableLinkId="no spaces", action=None))
    assert response.status_code == 422
    assert {p["field"] for p in response.json["fields"]} == {"tableLinkId", "action"}


def test_a_transient_failure_answers_retryable_and_the_redelivery_links_nothing_twice(
    client, simulator, capsys
):
    # The second call (the second pair) fails at every attempt; the others succeed.
    calls = {"n": 0}
    original = simulator.simulator.handle

    def flaky(method, path, authorization, body):
        if method == "PUT" and json.loads(body)["rightRecord"] == "SN-0002":
            calls["n"] += 1
            from devtools.simulators.tulip import ApiError

            raise ApiError(503, "INJECTED_FAULT", "down for a moment")
        return original(method, path, authorization, body)

    simulator.simulator.handle = flaky
    request = batch(*PAIRS, tableLinkId="WorkOrderSerials")
    response = client.post("/", json=request)
    assert response.status_code == 502
    body = response.json
    assert body["errorCode"] == "TULIP_UNAVAILABLE" and "results[1]" in body["message"]
    assert [r["status"] for r in body["results"]] == ["linked", "failed", "linked"]
    failed = body["results"][1]
    assert failed["errorCode"] == "TULIP_UNAVAILABLE" and failed["httpStatus"] == 502
    assert failed["tulipStatus"] == 503 and failed["tulipErrorCode"] == "INJECTED_FAULT"
    assert response.headers["Retry-After"] == "5"
    assert calls["n"] == 4  # TULIP_MAX_ATTEMPTS for that link alone

    simulator.simulator.handle = original  # Tulip is back: the sender retries the batch
    assert client.post("/", json=request).status_code == 200
    links = simulator.links("WorkOrderSerials")
    assert sorted(map(tuple, links)) == sorted([("WO-1002", "SN-0004"), *PAIRS])
    assert len(links) == len(set(map(tuple, links)))  # nothing twice


def test_a_retryable_link_beats_a_permanent_one_and_the_first_among_equals_wins(client, tulip, env):
    env.set(TULIP_MAX_ATTEMPTS="1")
    tulip.put(link_url("A"), status=409, json={"errorCode": "TAKEN"})
    tulip.put(link_url("B"), status=422, json={"errorCode": "BAD"})
    tulip.put(link_url("C"), status=429, headers={"Retry-After": "7"})
    tulip.put(link_url("D"), status=503, headers={"Retry-After": "30"})
    links = [{"tableLinkId": t, "leftRecord": "L", "rightRecord": "R"} for t in "ABCD"]
    response = client.post("/", json={"links": links})
    # C is the first retryable link: its 429 decides; Retry-After is the largest retryable wait.
    assert (response.status_code, response.json["errorCode"]) == (429, "TULIP_RATE_LIMITED")
    assert response.headers["Retry-After"] == "30"
    statuses = [(r["httpStatus"], r["errorCode"]) for r in response.json["results"]]
    assert statuses == [
        (409, "TULIP_REJECTED"),
        (422, "TULIP_REJECTED"),
        (429, "TULIP_RATE_LIMITED"),
        (502, "TULIP_UNAVAILABLE"),
    ]
    assert "tulipStatus" not in response.json  # Tulip's fields stay in the items


def test_only_permanent_failures_answer_as_the_first(client, tulip):
    tulip.put(link_url("A"), status=204)
    tulip.put(link_url("B"), status=409, json={"errorCode": "TAKEN"})
    tulip.put(link_url("C"), status=400)
    links = [{"tableLinkId": t, "leftRecord": "L", "rightRecord": "R"} for t in "ABC"]
    response = client.post("/", json={"links": links})
    assert (response.status_code, response.json["errorCode"]) == (409, "TULIP_REJECTED")
    assert "Retry-After" not in response.headers


def test_the_deadline_cuts_a_batch_short(client, tulip, env, clock):
    env.set(TULIP_DEADLINE_SECONDS="10", TULIP_BATCH_CONCURRENCY="1")

    def slow(request):
        clock.advance(6)  # each call takes 6 s of the request's 10
        return (204, {}, "")

    tulip.add_callback("PUT", link_url("A"), callback=slow)
    tulip.add_callback("PUT", link_url("B"), callback=slow)
    links = [{"tableLinkId": t, "leftRecord": "L", "rightRecord": "R"} for t in "ABC"]
    response = client.post("/", json={"links": links})
    assert (response.status_code, response.json["errorCode"]) == (504, "TULIP_TIMEOUT")
    assert [r["status"] for r in response.json["results"]] == ["linked", "linked", "not_attempted"]
    assert len(tulip.calls) == 2


def test_after_a_429_links_not_yet_started_wait_for_its_retry_after(client, tulip, env, clock):
    env.set(TULIP_BATCH_CONCURRENCY="1", TULIP_MAX_ATTEMPTS="1")
    tulip.put(link_url("A"), status=429, headers={"Retry-After": "3"})
    tulip.put(link_url("B"), status=204)
    links = [{"tableLinkId": t, "leftRecord": "L", "rightRecord": "R"} for t in "AB"]
    response = client.post("/", json={"links": links})
    assert response.status_code == 429
    assert clock.sleeps == [3.0]  # B waited out A's Retry-After before calling Tulip
    assert [r["status"] for r in response.json["results"]] == ["failed", "linked"]


def test_a_rate_limit_wait_past_the_deadline_leaves_the_rest_not_attempted(
    client, tulip, env, clock
):
    env.set(TULIP_BATCH_CONCURRENCY="1", TULIP_MAX_ATTEMPTS="1", TULIP_DEADLINE_SECONDS="10")
    tulip.put(link_url("A"), status=429, headers={"Retry-After": "60"})
    links = [{"tableLinkId": t, "leftRecord": "L", "rightRecord": "R"} for t in "AB"]
    response = client.post("/", json={"links": links})
    # Both are retryable (not attempted counts as a 504): the first in order answers.
    assert response.status_code == 429 and response.headers["Retry-After"] == "60"
    assert [r["status"] for r in response.json["results"]] == ["failed", "not_attempted"]
    assert clock.sleeps == []


def test_the_token_is_read_once_per_request(client, env, secret_manager, tulip):
    version = "projects/p/secrets/tok/versions/latest"
    env.set(
        TULIP_API_KEY=None,
        TULIP_API_SECRET=None,
        TULIP_CREDENTIALS_SECRET=version,
        SECRET_MANAGER_EMULATOR_HOST=secret_manager.host,
        SECRET_CACHE_TTL_SECONDS="0",  # every read would go to Secret Manager
    )
    secret_manager.put(version, "apikey.2_K:s")
    for name in "ABC":
        tulip.put(link_url(name), status=204)
    links = [{"tableLinkId": t, "leftRecord": "L", "rightRecord": "R"} for t in "ABC"]
    assert client.post("/", json={"links": links}).status_code == 200
    assert secret_manager.calls == [version]


def test_same_pair_links_never_overlap_and_keep_their_order(client, env, tulip_server):
    env.set(TULIP_BASE_URL=tulip_server.url, TULIP_BATCH_CONCURRENCY="4")
    lock = threading.Lock()
    in_flight: dict[str, int] = {}
    most = {"pairs": 0, "all": 0}
    order: list[tuple[str, str]] = []
    # The first four calls meet here: they must all be in flight at once. Were a pair's link and
    # unlink allowed to run together, two of those four would be the same pair.
    first_four = threading.Barrier(4, timeout=10)
    arrived = []

    def respond(recorded: Recorded) -> Scripted:
        pair = recorded.json()["leftRecord"] + "/" + recorded.json()["rightRecord"]
        with lock:
            in_flight[pair] = in_flight.get(pair, 0) + 1
            most["pairs"] = max(most["pairs"], in_flight[pair])
            most["all"] = max(most["all"], sum(in_flight.values()))
            order.append((pair, recorded.path.rsplit("/", 1)[1]))
            arrived.append(pair)
            meet = len(arrived) <= 4
        if meet:
            first_four.wait()
        with lock:
            in_flight[pair] -= 1
        return Scripted(204)

    tulip_server.respond = respond
    links = []
    for n in range(6):
        links += [
            {"leftRecord": "L", "rightRecord": f"R{n}", "action": "link"},
            {"leftRecord": "L", "rightRecord": f"R{n}", "action": "unlink"},
        ]
    response = client.post("/", json={"tableLinkId": "T", "links": links})
    assert response.status_code == 200
    assert most == {"pairs": 1, "all": 4}  # concurrent up to TULIP_BATCH_CONCURRENCY, no more
    for n in range(6):
        assert [a for p, a in order if p == f"L/R{n}"] == ["link", "unlink"]
    assert [r["status"] for r in response.json["results"]] == ["linked", "unlinked"] * 6


def test_a_batch_logs_one_line_per_link_and_a_summary(client, tulip, capsys):
    tulip.put(link_url("A"), status=204)
    tulip.put(link_url("B"), status=409, json={"errorCode": "TAKEN"})
    links = [{"tableLinkId": t, "leftRecord": "L", "rightRecord": f"R{t}"} for t in "AB"]
    response = client.post("/", json={"links": links})
    lines = log_lines(capsys.readouterr().out)
    done, rejected, summary = lines
    assert (done["event"], done["itemIndex"], done["rightRecord"]) == ("link.done", 0, "RA")
    assert (rejected["event"], rejected["itemIndex"]) == ("link.rejected", 1)
    assert rejected["tulipStatus"] == 409 and rejected["tableLinkId"] == "B"
    assert summary["event"] == "link.batch" and summary["status"] == 409
    assert summary["counts"]["linked"] == 1 and summary["counts"]["failed"] == 1
    assert {line["requestId"] for line in lines} == {response.json["requestId"]}


def test_a_push_envelope_carrying_a_batch_is_redelivered_unless_every_link_succeeded(
    push_client, tulip
):
    tulip.put(link_url("A"), status=204)
    tulip.put(link_url("B"), status=404)
    links = [{"tableLinkId": t, "leftRecord": "L", "rightRecord": "R"} for t in "AB"]
    response = push_client.post("/", json=push_envelope({"links": links}))
    assert response.status_code == 404  # not an ack: Pub/Sub delivers it again


@pytest.mark.parametrize(
    ("second", "acked"),
    [(409, True), (503, False), (204, True)],
)
def test_eventarc_acks_a_batch_only_when_every_failure_is_permanent(
    event_client, tulip, env, capsys, second, acked
):
    env.set(TULIP_MAX_ATTEMPTS="1")
    tulip.put(link_url("A"), status=204)
    tulip.put(link_url("B"), status=second)
    links = [{"tableLinkId": t, "leftRecord": "L", "rightRecord": "R"} for t in "AB"]
    data = {"message": {"data": b64({"links": links}), "messageId": "m1"}, "subscription": "s"}
    response = event_client.post(
        "/",
        json=data,
        headers={
            "ce-id": "m1",
            "ce-specversion": "1.0",
            "ce-source": "//pubsub.googleapis.com/projects/p/topics/t",
            "ce-type": "google.cloud.pubsub.topic.v1.messagePublished",
        },
    )
    assert (response.status_code == 200) is acked
    summary = log_lines(capsys.readouterr().out)[-1]
    assert summary["event"] == "link.batch"
    if second == 409:  # acked with a failure: the summary is the dead letter
        assert summary["acked"] is True and summary["severity"] == "ERROR"
        assert json.loads(__import__("base64").b64decode(summary["messageData"]))["links"]
    else:
        assert "messageData" not in summary


def test_retry_lines_from_concurrent_links_name_their_request_and_link(client, tulip, capsys):
    tulip.put(link_url("A"), status=503)
    tulip.put(link_url("A"), status=204)
    tulip.put(link_url("B"), status=204)
    links = [{"tableLinkId": t, "leftRecord": "L", "rightRecord": "R"} for t in "AB"]
    response = client.post("/", json={"links": links})
    [retry] = [x for x in log_lines(capsys.readouterr().out) if x["event"] == "tulip.retry"]
    assert retry["requestId"] == response.json["requestId"]
    assert (retry["itemIndex"], retry["tableLinkId"]) == (0, "A")


def test_a_refusal_names_fifty_problems_and_counts_the_rest(client, capsys):
    """21,000 empty links in 63 KB: the answer stays far smaller than the request's problems."""
    body = json.dumps({"tableLinkId": "A", "links": [{}] * 21_000}, separators=(",", ":"))
    assert len(body) < 65_536  # within MAX_BODY_BYTES: the refusal is the 422's
    response = client.post("/", data=body, content_type="application/json")
    assert response.status_code == 422
    assert len(response.data) < 64 * 1024
    answer = response.json
    assert len(answer["fields"]) == 50
    assert answer["moreFields"] == 1 + 2 * 21_000 - 50  # the batch's size, then two per link
    assert answer["message"].endswith(f"; and {answer['moreFields']} more")
    [line] = log_lines(capsys.readouterr().out)
    assert len(json.dumps(line)) < 64 * 1024
