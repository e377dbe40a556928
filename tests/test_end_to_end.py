"""End to end, direct mode: `WEBHOOK_DELIVERY=direct python -m devtools.runner` starts the simulator
and the function (gunicorn, as in production) as real processes on free loopback ports; requests
go over real HTTP, and the caller waits for Tulip. Queue mode, the runner's default, is proved in
test_durable_intake.py."""

from __future__ import annotations

import contextlib
import dataclasses
import http.client
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator

import pytest

from devtools.runner.run import DEV_WEBHOOK_SECRET
from ops.sign import signed_headers
from tests.helpers import ROOT
from tests.processes import Running, runner

pytestmark = pytest.mark.processes  # real processes: `make quick` skips them


LOOPBACK, LOOPBACK_IN_IPV6 = "0100007F", "0000000000000000FFFF00000100007F"  # /proc/net's hex


def listening_addresses(port: int) -> set[str]:
    """The local addresses a socket listens on for `port`, from the kernel's table (Linux)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as rows:
            for row in list(rows)[1:]:
                local, state = row.split()[1], row.split()[3]
                address, _, port_hex = local.rpartition(":")
                if state == "0A" and int(port_hex, 16) == port:  # 0A: LISTEN
                    found.add(address)
    return found


@pytest.fixture(scope="module")
def running() -> Iterator[Running]:
    with runner(WEBHOOK_DELIVERY="direct") as started:
        yield started


@pytest.fixture(autouse=True)
def clean_simulator(running):
    running.simulator_call("/_sim/reset", {})


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_the_printed_curl_command_links(running):
    result = subprocess.run(
        ["bash", "-c", running.curl.replace("localhost:", "127.0.0.1:")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert json.loads(result.stdout)["status"] == "linked"
    assert ["WO-1001", "SN-0001"] in running.links("WorkOrderSerials")


def test_link_then_unlink(running):
    pair = {
        "tableLinkId": "StationOperators",
        "leftRecord": "ST-ASSEMBLY-2",
        "rightRecord": "OP-BOB",
    }
    assert running.post(pair)[0] == 200
    assert running.post(pair)[0] == 200  # linking again changes nothing
    assert ["ST-ASSEMBLY-2", "OP-BOB"] in running.links("StationOperators")
    status, body = running.post({**pair, "action": "unlink"})
    assert (status, body["status"]) == (200, "unlinked")
    assert ["ST-ASSEMBLY-2", "OP-BOB"] not in running.links("StationOperators")


def test_a_passing_fault_is_retried_away(running):
    running.simulator_call("/_sim/faults", {"status": 503, "count": 1, "retryAfter": 0})
    status, _ = running.post(
        {"tableLinkId": "SerialProduct", "leftRecord": "SN-0001", "rightRecord": "PUMP-A"}
    )
    assert status == 200
    assert running.links("SerialProduct") == [["SN-0001", "PUMP-A"]]


def test_a_lasting_fault_is_502_and_links_nothing(running):
    running.simulator_call("/_sim/faults", {"status": 503, "count": 2, "retryAfter": 0})
    status, body = running.post(
        {"tableLinkId": "SerialProduct", "leftRecord": "SN-0001", "rightRecord": "PUMP-A"}
    )
    assert (status, body["errorCode"]) == (502, "TULIP_UNAVAILABLE")
    assert running.links("SerialProduct") == []


def test_a_rate_limit_without_retry_after_is_429_with_ours(running):
    running.simulator_call(
        "/_sim/rate-limit", {"table": "Products", "limit": 0, "retryAfter": False}
    )
    request = {"tableLinkId": "SerialProduct", "leftRecord": "SN-0001", "rightRecord": "PUMP-A"}
    body = json.dumps(request).encode()
    headers = {"Content-Type": "application/json"}
    headers |= signed_headers("standard-webhooks", DEV_WEBHOOK_SECRET, body, now=time.time())
    connection = http.client.HTTPConnection(running.function.removeprefix("http://"), timeout=60)
    connection.request("POST", "/", body, headers)
    answer = connection.getresponse()
    connection.close()
    assert answer.status == 429 and answer.getheader("Retry-After") == "5"


def test_a_cardinality_conflict_keeps_tulips_409(running):
    status, body = running.post(
        {"tableLinkId": "WorkOrderSerials", "leftRecord": "WO-1001", "rightRecord": "SN-0004"}
    )
    assert (status, body["errorCode"], body["tulipErrorCode"]) == (
        409,
        "TULIP_REJECTED",
        "LINK_CARDINALITY_VIOLATION",
    )
    assert body["tulipErrorUniqueID"]


def test_an_unsigned_request_is_401(running):
    status, body = running.post(
        {"tableLinkId": "SerialProduct", "leftRecord": "a", "rightRecord": "b"}, sign=False
    )
    assert (status, body["errorCode"]) == (401, "UNAUTHENTICATED")


def test_a_chunked_body_over_the_cap_is_413_from_the_production_server(running):
    connection = http.client.HTTPConnection(running.function.removeprefix("http://"), timeout=30)
    chunks = (b"x" * 8192 for _ in range(16))  # 128 KiB, no Content-Length
    # Signed, as a sender would: an unsigned request is refused before its body is read.
    signed = signed_headers(
        "standard-webhooks", DEV_WEBHOOK_SECRET, b"x" * 8192 * 16, now=time.time()
    )
    headers = {"Content-Type": "application/json", **signed}
    connection.request("POST", "/", chunks, headers, encode_chunked=True)
    answer = connection.getresponse()
    body = json.load(answer)
    connection.close()
    assert (answer.status, body["errorCode"]) == (413, "PAYLOAD_TOO_LARGE")


def test_a_readme_third_party_payload_links_through_make_run():
    examples = ROOT / "devtools" / "examples"
    with runner(
        WEBHOOK_DELIVERY="direct", LINK_MAPPING=(examples / "mes-mapping.json").read_text()
    ) as mapped:
        status, body = mapped.post_bytes((examples / "mes-serials-assigned.json").read_bytes())
        assert (status, body["status"]) == (200, "done"), body
        assert sorted(mapped.links("WorkOrderSerials")) == [
            ["WO-1001", "SN-0001"],
            ["WO-1001", "SN-0002"],
            ["WO-1002", "SN-0004"],
        ]
        assert sorted(mapped.links("SerialProduct")) == [
            ["SN-0001", "PUMP-A"],
            ["SN-0002", "PUMP-A"],
        ]


@pytest.mark.skipif(not os.path.exists("/proc/net/tcp"), reason="reads Linux's socket table")
def test_every_server_listens_on_loopback_only():
    with runner() as started:  # queue mode: all four of them
        for port in dataclasses.astuple(started.ports):
            # 127.0.0.1, nothing else (gRPC's socket says so in IPv6's words: ::ffff:127.0.0.1)
            assert listening_addresses(port) in ({LOOPBACK}, {LOOPBACK_IN_IPV6})


@pytest.mark.parametrize("times", [1, 2])
@pytest.mark.parametrize("number", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_every_stop_signal_stops_everything_however_often_it_comes(number, times):
    with runner() as started:
        for _ in range(times):  # make passes a signal on a second time
            os.killpg(started.process.pid, number)
        assert started.process.wait(timeout=10) == 0  # within a few seconds
    # runner() has found every port free


def test_the_servers_die_with_the_runner_even_when_it_is_killed():
    with runner() as started:
        os.kill(started.process.pid, signal.SIGKILL)  # no chance to clean up
        started.process.wait(timeout=10)
    # runner() has found every port free: the kernel killed the children


@pytest.mark.skipif(not os.path.exists("/proc/net/tcp"), reason="reads Linux's socket table")
def test_with_a_host_only_the_webhook_function_moves_and_ctrl_c_still_stops_all():
    """`--host` on another loopback address: the webhook function listens there, and everything
    that does not authenticate its callers stays on 127.0.0.1, as the runner says."""
    with runner("--host", "127.0.0.2") as started:
        assert listening_addresses(started.ports.function) == {"0200007F"}  # 127.0.0.2
        others = dataclasses.astuple(dataclasses.replace(started.ports, function=0))
        for port in filter(None, others):
            assert listening_addresses(port) in ({LOOPBACK}, {LOOPBACK_IN_IPV6})
        assert "Only the webhook function listens on 127.0.0.2" in started.printed
        moved = dataclasses.replace(started, function=f"http://127.0.0.2:{started.ports.function}")
        status, body = moved.post(
            {"tableLinkId": "WorkOrderSerials", "leftRecord": "WO-1003", "rightRecord": "SN-0005"}
        )
        assert (status, body["status"]) == (202, "queued")
    # runner() sent Ctrl-C, saw it exit 0 and found every port free
