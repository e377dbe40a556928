"""Dry runs (`?dryRun=true`, `X-Dry-Run: true`): everything up to the Tulip call, then one GET per
distinct table link, and nothing linked."""

from __future__ import annotations

import json

import pytest

from function import instance
from tests.helpers import BASE_URL, LINK_ID, log_lines, request_body

DESCRIBED = {"id": LINK_ID, "leftTableId": "WorkOrders", "rightTableId": "SerialNumbers"}


def describe_url(link_id: str = LINK_ID) -> str:
    return f"{BASE_URL}/api/v3/tableLinks/{link_id}"


def test_a_dry_run_gets_the_link_and_links_nothing(client, tulip):
    get = tulip.get(describe_url(), json=DESCRIBED)
    response = client.post("/?dryRun=true", json=request_body())
    assert response.status_code == 200
    assert response.json == {
        "status": "valid",
        "dryRun": True,
        "tulipChecked": True,
        "results": [
            {
                "tableLinkId": LINK_ID,
                "leftRecord": "WO-1001",
                "rightRecord": "SN-1",
                "action": "link",
                "status": "valid",
                "leftTableId": "WorkOrders",
                "rightTableId": "SerialNumbers",
            }
        ],
        "requestId": response.json["requestId"],
    }
    assert get.calls[0].request.headers["Authorization"].startswith("Basic ")
    assert len(tulip.calls) == 1  # no PUT


@pytest.mark.parametrize(
    ("query", "header"),
    [("?dryRun=TRUE", None), ("", "true"), ("", "True"), ("?dryRun=true", "TRUE")],
)
def test_true_in_any_letter_case_by_query_or_header(client, tulip, query, header):
    tulip.get(describe_url(), json=DESCRIBED)
    headers = {"X-Dry-Run": header} if header else {}
    assert client.post(f"/{query}", json=request_body(), headers=headers).json["dryRun"] is True


@pytest.mark.parametrize(("query", "header"), [("?dryRun=false", None), ("", "FALSE")])
def test_false_is_a_real_run(client, tulip, query, header):
    tulip.put(f"{BASE_URL}/api/v3/tableLinks/{LINK_ID}/link", status=204)
    headers = {"X-Dry-Run": header} if header else {}
    assert client.post(f"/{query}", json=request_body(), headers=headers).json["status"] == "linked"


@pytest.mark.parametrize(
    ("query", "header"),
    [
        ("?dryRun=yes", None),
        ("?dryRun=", None),
        ("", "1"),
        ("?dryRun=true", "false"),
        ("?dryRun=true&dryRun=false", None),
    ],
)
def test_anything_else_is_400_and_never_a_real_link(client, tulip, query, header):
    headers = {"X-Dry-Run": header} if header else {}
    response = client.post(f"/{query}", json=request_body(), headers=headers)
    assert (response.status_code, response.json["errorCode"]) == (400, "MALFORMED_REQUEST")
    assert "dryRun" in response.json["message"]
    assert len(tulip.calls) == 0


def test_each_distinct_table_link_is_got_once(client, tulip):
    tulip.get(describe_url("A"), json={"leftTableId": "L"})
    tulip.get(describe_url("B"), json=[])  # not an object: no table ids, still valid
    actions = ["link", "link", "unlink", "link"]
    links = [
        {"tableLinkId": t, "leftRecord": "L", "rightRecord": f"R{n}", "action": actions[n]}
        for n, t in enumerate("ABAA")
    ]
    response = client.post("/", json={"links": links}, headers={"X-Dry-Run": "true"})
    assert response.status_code == 200
    results = response.json["results"]
    assert [r["rightRecord"] for r in results] == ["R0", "R1", "R2", "R3"]
    assert [r["action"] for r in results] == actions
    assert [r.get("leftTableId") for r in results] == ["L", None, "L", "L"]
    assert len(tulip.calls) == 2


def test_an_unknown_link_is_tulip_rejected_404(client, tulip):
    tulip.get(describe_url(), status=404, json={"errorCode": "NOT_FOUND", "errorUniqueID": "x1"})
    response = client.post("/?dryRun=true", json=request_body())
    assert (response.status_code, response.json["errorCode"]) == (404, "TULIP_REJECTED")
    assert response.json["dryRun"] is True
    [result] = response.json["results"]
    assert result["status"] == "failed" and result["tulipStatus"] == 404
    assert result["tulipErrorUniqueID"] == "x1"


def test_with_several_links_the_worst_decides(client, tulip):
    tulip.get(describe_url("A"), status=404)
    tulip.get(describe_url("B"), status=403)
    links = [{"tableLinkId": t, "leftRecord": "L", "rightRecord": "R"} for t in "AB"]
    response = client.post("/?dryRun=true", json={"links": links})
    # A 404 may still appear (retryable); a refused token needs an operator (also retryable):
    # both retryable, so the first in order answers.
    assert (response.status_code, response.json["errorCode"]) == (404, "TULIP_REJECTED")
    assert [r["status"] for r in response.json["results"]] == ["failed", "failed"]


def test_a_dry_run_is_validated_and_authenticated_first(client, tulip, env):
    response = client.post("/?dryRun=true", json=request_body(leftRecord=""))
    assert response.status_code == 422
    env.set(WEBHOOK_AUTH="token", WEBHOOK_SECRET_VALUE="t0ken")
    instance.reset()
    assert client.post("/?dryRun=yes", json=request_body()).status_code == 401
    assert len(tulip.calls) == 0


def test_a_dry_run_against_the_simulator(client, simulator):
    body = {"links": [{"tableLinkId": "SerialProduct", "leftRecord": "SN-1", "rightRecord": "P"}]}
    response = client.post("/?dryRun=true", json=body)
    assert response.status_code == 200
    [result] = response.json["results"]
    assert (result["leftTableId"], result["rightTableId"]) == ("SerialNumbers", "Products")
    unknown = client.post("/?dryRun=true", json={**body, "tableLinkId": "Nope", "links": [
        {"tableLinkId": "Nope", "leftRecord": "a", "rightRecord": "b"}]})  # fmt: skip
    assert unknown.status_code == 404
    assert simulator.links("SerialProduct") == []


def test_a_deleted_table_link_is_a_permanent_refusal_naming_it(client, simulator, capsys):
    body = {"tableLinkId": "RetiredStationOperators", "leftRecord": "ST-TEST-1", "rightRecord": "OP-BOB"}  # fmt: skip
    response = client.post("/?dryRun=true", json=body)
    assert response.status_code == 422 and response.json["errorCode"] == "TULIP_REJECTED"
    [result] = response.json["results"]
    assert result["status"] == "failed" and result["httpStatus"] == 422
    assert result["deletedAt"] == "2026-10-05T14:00:00.000Z"
    assert "tulipStatus" not in result  # Tulip answered the GET with 200: nothing to pass on
    assert "RetiredStationOperators" in result["message"]
    assert "2026-10-05T14:00:00.000Z" in result["message"]
    [line] = [x for x in log_lines(capsys.readouterr().out) if x["event"] == "link.rejected"]
    assert line["outcome"] == "tulip_rejected_deleted"


def test_a_deleted_link_is_permanent_so_a_retryable_link_beside_it_decides(client, tulip):
    tulip.get(
        "https://acme.tulip.co/api/v3/tableLinks/Gone",
        json={"id": "Gone", "deletedAt": "2026-10-05T14:00:00.000Z", "leftTableId": "L"},
    )
    tulip.get("https://acme.tulip.co/api/v3/tableLinks/Down", status=503)
    tulip.get("https://acme.tulip.co/api/v3/tableLinks/Down", status=503)
    tulip.get("https://acme.tulip.co/api/v3/tableLinks/Down", status=503)
    tulip.get("https://acme.tulip.co/api/v3/tableLinks/Down", status=503)
    links = [
        {"tableLinkId": "Gone", "leftRecord": "a", "rightRecord": "b"},
        {"tableLinkId": "Down", "leftRecord": "a", "rightRecord": "b"},
    ]
    response = client.post("/?dryRun=true", json={"links": links})
    assert response.status_code == 502 and response.json["errorCode"] == "TULIP_UNAVAILABLE"
    assert [r["httpStatus"] for r in response.json["results"]] == [422, 502]


def test_a_dry_run_of_an_ignored_event_is_ignored(client, tulip, env):
    env.set(
        LINK_MAPPING=json.dumps({"when": "go", "leftRecord": "a", "rightRecord": "b"}),
        TULIP_TABLE_LINK_ID="T",
    )
    assert client.post("/?dryRun=true", json={"go": False}).json["status"] == "ignored"


def test_a_dry_run_reads_the_token(client, env, secret_manager):
    env.set(
        TULIP_API_KEY=None,
        TULIP_API_SECRET=None,
        TULIP_CREDENTIALS_SECRET="projects/p/secrets/tok",
        SECRET_MANAGER_EMULATOR_HOST=secret_manager.host,
    )
    response = client.post("/?dryRun=true", json=request_body())  # the secret does not exist
    assert (response.status_code, response.json["errorCode"]) == (503, "CREDENTIALS_UNAVAILABLE")


def test_a_dry_run_logs_valid_lines_not_done(client, tulip, capsys):
    tulip.get(describe_url(), json=DESCRIBED)
    client.post("/?dryRun=true", json=request_body())
    item, summary = log_lines(capsys.readouterr().out)
    assert item["event"] == "link.valid" and summary["event"] == "link.batch"
    assert summary["dryRun"] is True and summary["counts"]["valid"] == 1


def test_without_the_tulip_token_a_dry_run_checks_everything_but_tulip_and_says_so(
    client, tulip, env, capsys
):
    """A webhook function in queue mode that may not read the Tulip token (infra/'s default)."""
    env.set(TULIP_API_KEY=None, TULIP_API_SECRET=None, WEBHOOK_DELIVERY="queue",
            WEBHOOK_QUEUE_TOPIC="projects/p/topics/link-requests",
            TULIP_ALLOWED_TABLE_LINK_IDS=LINK_ID)  # fmt: skip
    response = client.post("/?dryRun=true", json=request_body())
    assert response.status_code == 200
    assert (response.json["status"], response.json["tulipChecked"]) == ("valid", False)
    assert [r["status"] for r in response.json["results"]] == ["valid"]
    assert len(tulip.calls) == 0
    # Everything else is still checked: an id the settings do not allow is refused.
    refused = client.post("/?dryRun=true", json=request_body(tableLinkId="Other"))
    assert (refused.status_code, refused.json["errorCode"]) == (422, "INVALID_PAYLOAD")
    lines = log_lines(capsys.readouterr().out)
    assert lines[0]["event"] == "link.valid" and lines[-2]["tulipChecked"] is False


def test_a_function_that_calls_tulip_without_a_token_is_misconfigured(client, tulip, env):
    env.set(TULIP_API_KEY=None, TULIP_API_SECRET=None)  # direct mode: it calls Tulip
    response = client.post("/", json=request_body())
    assert (response.status_code, response.json["errorCode"]) == (500, "MISCONFIGURED")
    assert "TULIP_CREDENTIALS_SECRET is not set" in response.json["message"]
    assert len(tulip.calls) == 0
