"""The Tulip simulator: each documented behaviour, cardinality, and the fault switches."""

from __future__ import annotations

import base64
import http.client
import json
import threading
import urllib.error
import urllib.request

import pytest

from devtools.simulators.tulip import DEFAULT_SEED, ApiError, TulipSimulator, make_server

SEED = json.loads(DEFAULT_SEED.read_text())
WRITER = (
    "Basic "
    + base64.b64encode(b"apikey.2_DEVLOCALKEY:dev-local-secret-not-for-production").decode()
)
READER = "Basic " + base64.b64encode(b"apikey.2_READONLYKEY:read-only-secret").decode()


class Now:
    def __init__(self) -> None:
        self.value = 0.0

    def __call__(self) -> float:
        return self.value


@pytest.fixture
def now() -> Now:
    return Now()


@pytest.fixture
def sim(now) -> TulipSimulator:
    return TulipSimulator(SEED, clock=now)


def put(sim, link_id, left, right, action="link", auth=WRITER, workspace=None):
    prefix = f"/api/v3/w/{workspace}" if workspace else "/api/v3"
    body = json.dumps({"leftRecord": left, "rightRecord": right}).encode()
    return sim.handle("PUT", f"{prefix}/tableLinks/{link_id}/{action}", auth, body)


def refused(call, *args, **kwargs) -> ApiError:
    with pytest.raises(ApiError) as caught:
        call(*args, **kwargs)
    return caught.value


def links(sim, link_id):
    return sim.state()["tableLinks"][link_id]["links"]


def test_link_and_unlink(sim):
    assert put(sim, "StationOperators", "ST-ASSEMBLY-2", "OP-BOB")[0] == 204
    assert ["ST-ASSEMBLY-2", "OP-BOB"] in links(sim, "StationOperators")
    assert put(sim, "StationOperators", "ST-ASSEMBLY-2", "OP-BOB", "unlink")[0] == 204
    assert ["ST-ASSEMBLY-2", "OP-BOB"] not in links(sim, "StationOperators")


def test_both_calls_are_idempotent(sim):
    before = links(sim, "StationOperators")
    assert put(sim, "StationOperators", "ST-ASSEMBLY-1", "OP-ALICE")[0] == 204
    assert links(sim, "StationOperators") == before
    assert put(sim, "StationOperators", "ST-ASSEMBLY-2", "OP-CHEN", "unlink")[0] == 204
    assert links(sim, "StationOperators") == before


def test_the_workspace_path_is_accepted(sim):
    assert put(sim, "SerialProduct", "SN-0001", "PUMP-A", workspace="DEFAULT")[0] == 204


# Tulip's API reference, GET /tableLinks/{tableLinkId} ("link info fetched"): every field it
# lists, written out here rather than taken from the simulator, so that a field the simulator
# adds by mistake (one a client could come to depend on) fails this test.
DOCUMENTED_FIELDS = {
    "id",
    "createdAt",
    "createdBy",
    "updatedAt",
    "updatedBy",
    "deletedAt",
    "deletedBy",
    "leftTableId",
    "leftTableColumnId",
    "rightTableId",
    "rightTableColumnId",
}


def test_get_answers_exactly_tulips_documented_fields(sim):
    for link_id in SEED["tableLinks"]:
        status, _, body = sim.handle("GET", f"/api/v3/tableLinks/{link_id}", READER, b"")
        assert status == 200 and set(body) == DOCUMENTED_FIELDS, link_id
    status, _, body = sim.handle("GET", "/api/v3/tableLinks/SerialTestReport", READER, b"")
    assert body["id"] == "SerialTestReport" and body["deletedAt"] is None
    assert body["leftTableId"] == "SerialNumbers" and body["rightTableId"] == "TestReports"
    assert body["leftTableColumnId"] == "SerialTestReport_link_left_column"
    workspace = sim.handle("GET", "/api/v3/w/DEFAULT/tableLinks/SerialTestReport", READER, b"")
    assert workspace[0] == 200


def test_the_simulators_own_state_keeps_the_type_and_the_links(sim):
    state = sim.state()["tableLinks"]["SerialTestReport"]
    assert state["relationshipType"] == "one-to-one"
    assert state["links"] == [["SN-0004", "TR-9001"]]


def test_the_seed_uses_tulips_relationship_names():
    kinds = {link["relationshipType"] for link in SEED["tableLinks"].values()}
    assert kinds == {"one-to-one", "one-to-many", "many-to-one", "many-to-many"}
    with pytest.raises(ValueError, match="relationshipType"):
        TulipSimulator({**SEED, "tableLinks": {"X": {**SEED["tableLinks"]["SerialProduct"],
                                                "relationshipType": "1:n"}}})  # fmt: skip


def test_a_deleted_table_link_is_described_deleted_and_refuses_links(sim):
    status, _, body = sim.handle("GET", "/api/v3/tableLinks/RetiredStationOperators", READER, b"")
    assert status == 200
    assert (body["deletedAt"], body["deletedBy"]) == (
        "2026-10-05T14:00:00.000Z",
        "user_quality_admin",
    )
    error = refused(put, sim, "RetiredStationOperators", "ST-TEST-1", "OP-BOB")
    assert (error.status, error.code) == (422, "TABLE_LINK_DELETED")


def test_get_refuses_an_unknown_link_and_bad_credentials(sim):
    unknown = refused(sim.handle, "GET", "/api/v3/tableLinks/Nope", READER, b"")
    assert (unknown.status, unknown.code) == (404, "TABLE_LINK_NOT_FOUND")
    assert refused(sim.handle, "GET", "/api/v3/tableLinks/SerialProduct", None, b"").status == 401


@pytest.mark.parametrize(
    ("auth", "status"),
    [
        (None, 401),
        ("Bearer x", 401),
        ("Basic !!!", 401),
        ("Basic " + base64.b64encode(b"apikey.2_DEVLOCALKEY:wrong").decode(), 401),
        (READER, 403),
    ],
)
def test_authentication(sim, auth, status):
    assert refused(put, sim, "SerialProduct", "SN-0001", "PUMP-A", auth=auth).status == status


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[]", b'{"leftRecord": "SN-0001"}', b'{"leftRecord": 1, "rightRecord": 2}'],
)
def test_a_malformed_body_is_400(sim, body):
    error = refused(sim.handle, "PUT", "/api/v3/tableLinks/SerialProduct/link", WRITER, body)
    assert error.status == 400


def test_unknown_links_and_records_are_404(sim):
    assert refused(put, sim, "NoSuchLink", "a", "b").code == "TABLE_LINK_NOT_FOUND"
    assert refused(put, sim, "SerialProduct", "SN-9999", "PUMP-A").code == "RECORD_NOT_FOUND"
    # order matters: a left-table record on the right is unknown there
    assert refused(put, sim, "SerialProduct", "PUMP-A", "SN-0001").status == 404


@pytest.mark.parametrize(
    ("link_id", "left", "right"),
    [
        ("WorkOrderSerials", "WO-1001", "SN-0004"),  # SN-0004 already has its work order
        ("SerialTestReport", "SN-0004", "TR-9002"),  # SN-0004 already has its report
        ("SerialTestReport", "SN-0001", "TR-9001"),  # TR-9001 already has its serial
    ],
)
def test_cardinality_is_enforced(sim, link_id, left, right):
    error = refused(put, sim, link_id, left, right)
    assert (error.status, error.code) == (409, "LINK_CARDINALITY_VIOLATION")


def test_many_to_one_allows_many_lefts_but_one_right(sim):
    put(sim, "SerialProduct", "SN-0001", "PUMP-A")
    put(sim, "SerialProduct", "SN-0002", "PUMP-A")
    assert refused(put, sim, "SerialProduct", "SN-0001", "PUMP-B").status == 409


def test_one_to_many_allows_many_rights_per_left(sim):
    put(sim, "WorkOrderSerials", "WO-1001", "SN-0001")
    put(sim, "WorkOrderSerials", "WO-1001", "SN-0002")
    assert len(links(sim, "WorkOrderSerials")) == 3


def test_an_unlinked_slot_can_be_linked_again(sim):
    put(sim, "WorkOrderSerials", "WO-1002", "SN-0004", "unlink")
    assert put(sim, "WorkOrderSerials", "WO-1001", "SN-0004")[0] == 204


def test_injected_faults_for_the_next_calls(sim):
    sim.add_fault({"status": 503, "count": 2, "retryAfter": 1})
    first = refused(put, sim, "SerialProduct", "SN-0001", "PUMP-A")
    assert (first.status, first.headers) == (503, {"Retry-After": "1"})
    assert refused(put, sim, "SerialProduct", "SN-0001", "PUMP-A").status == 503
    assert put(sim, "SerialProduct", "SN-0001", "PUMP-A")[0] == 204


def test_an_injected_delay(sim, monkeypatch):
    slept: list[float] = []
    monkeypatch.setattr("devtools.simulators.tulip.time.sleep", slept.append)
    sim.add_fault({"delaySeconds": 2.5, "count": 1})
    assert put(sim, "SerialProduct", "SN-0001", "PUMP-A")[0] == 204
    assert slept == [2.5]


@pytest.mark.parametrize(("retry_after", "header"), [(True, {"Retry-After": "61"}), (False, {})])
def test_a_per_table_rate_limit(sim, now, retry_after, header):
    sim.set_rate_limit(
        {"table": "Products", "limit": 2, "windowSeconds": 60, "retryAfter": retry_after}
    )
    put(sim, "SerialProduct", "SN-0001", "PUMP-A")
    put(sim, "SerialProduct", "SN-0002", "PUMP-A")
    error = refused(put, sim, "SerialProduct", "SN-0003", "PUMP-A")
    assert (error.status, error.headers) == (429, header)
    assert put(sim, "StationOperators", "ST-TEST-1", "OP-BOB")[0] == 204  # other tables are free
    now.value = 61
    assert put(sim, "SerialProduct", "SN-0003", "PUMP-A")[0] == 204


def test_reset_returns_to_the_seed(sim):
    put(sim, "SerialProduct", "SN-0001", "PUMP-A")
    sim.add_fault({"status": 500, "count": 5})
    sim.reset()
    assert links(sim, "SerialProduct") == []
    assert put(sim, "SerialProduct", "SN-0001", "PUMP-A")[0] == 204


def test_over_http_errors_have_tulips_shape_and_state_is_visible(sim):
    server = make_server(sim, 0)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        request = urllib.request.Request(
            f"{base}/api/v3/tableLinks/SerialProduct/link",
            data=b'{"leftRecord": "SN-0001", "rightRecord": "PUMP-A"}',
            headers={"Content-Type": "application/json"},
            method="PUT",
        )
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(request, timeout=5)
        body = json.load(caught.value)
        assert caught.value.code == 401
        assert set(body) == {"errorCode", "errorUniqueID", "details"}
        request.add_header("Authorization", WRITER)
        with urllib.request.urlopen(request, timeout=5) as answer:
            assert answer.status == 204
        with urllib.request.urlopen(f"{base}/_sim/state", timeout=5) as answer:
            assert json.load(answer)["tableLinks"]["SerialProduct"]["links"] == [
                ["SN-0001", "PUMP-A"]
            ]
        with urllib.request.urlopen(f"{base}/", timeout=5) as answer:
            page = answer.read().decode()
        assert "SN-0001 &harr; PUMP-A" in page
        switch = urllib.request.Request(
            f"{base}/_sim/faults",
            data=b'{"status": 502}',
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(switch, timeout=5) as answer:
            assert json.load(answer)["status"] == 502
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    ("method", "path", "headers"),
    [
        ("GET", "/_sim/state", {"Host": "evil.example:{port}"}),  # DNS rebinding
        ("GET", "/", {"Host": "127.0.0.1:1"}),
        ("POST", "/_sim/faults", {"Origin": "https://evil.example"}),  # a form of another site
        ("POST", "/_sim/faults", {"Origin": "null"}),
        ("POST", "/_sim/faults", {"Sec-Fetch-Site": "cross-site"}),
        ("POST", "/_sim/faults", {"Content-Type": "text/plain"}),  # needs no preflight
        ("POST", "/_sim/reset", {"Content-Type": "application/x-www-form-urlencoded"}),
        ("PUT", "/api/v3/tableLinks/SerialProduct/link", {"Origin": "https://evil.example"}),
    ],
)
def test_a_request_from_another_site_or_by_another_name_is_refused_and_changes_nothing(
    sim, method, path, headers
):
    server = make_server(sim, 0)
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    ).start()
    port = server.server_address[1]
    sent = {
        "Content-Type": "application/json",
        "Authorization": WRITER,
        "Host": f"127.0.0.1:{port}",
    }
    sent |= {name: value.format(port=port) for name, value in headers.items()}
    body = b'{"leftRecord": "SN-0001", "rightRecord": "PUMP-A", "status": 503, "count": 9}'
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        connection.request(method, path, body if method != "GET" else None, sent)
        answer = connection.getresponse()
        assert (answer.status, json.load(answer)["errorCode"]) == (403, "LOCAL_ONLY")
        connection.close()
        assert sim.state()["faultsPending"] == 0 and links(sim, "SerialProduct") == []
        ours = {"Origin": f"http://localhost:{port}", "Sec-Fetch-Site": "same-origin"}
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        connection.request("POST", "/_sim/faults", body, {**sent, **ours, "Host": f"localhost:{port}",
                                                          "Content-Type": "application/json"})  # fmt: skip
        assert connection.getresponse().status == 200  # its own page, by its other name
        connection.close()
    finally:
        server.shutdown()
        server.server_close()
