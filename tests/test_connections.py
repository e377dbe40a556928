"""Keep-alive to Tulip, counted where it matters: the TCP connections a loopback Tulip accepts."""

from __future__ import annotations

import json
import threading

import pytest

from tests.doubles import Scripted
from tests.helpers import request_body

ERROR_BODY = json.dumps({"errorCode": "DOWN", "errorUniqueID": "u1", "details": "x"}).encode()


@pytest.fixture
def tulip_here(env, tulip_server):
    env.set(TULIP_BASE_URL=tulip_server.url)
    return tulip_server


def test_sequential_requests_share_one_connection(client, tulip_here):
    for _ in range(50):
        assert client.post("/", json=request_body()).status_code == 200
    assert len(tulip_here.requests) == 50
    assert tulip_here.connections == 1


def test_concurrent_requests_use_at_most_one_connection_each(client, tulip_here):
    in_flight = threading.Barrier(16, timeout=10)

    def respond(recorded):
        in_flight.wait()  # all sixteen calls are open at once
        return Scripted(204)

    tulip_here.respond = respond
    statuses = []

    def send():
        statuses.append(client.application.test_client().post("/", json=request_body()).status_code)

    threads = [threading.Thread(target=send) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert statuses == [200] * 16
    assert tulip_here.connections <= 16
    tulip_here.respond = None
    for _ in range(10):  # and afterwards the pool serves from those connections
        client.post("/", json=request_body())
    assert tulip_here.connections <= 16


@pytest.mark.parametrize(
    "error",
    [
        Scripted(503, {"Content-Type": "application/json"}, ERROR_BODY),
        Scripted(500, {"Content-Type": "text/html"}, b"<html>" + b"x" * 5000 + b"</html>"),
        Scripted(429, {"Retry-After": "0"}),
    ],
)
def test_the_connection_survives_an_error_answer(client, tulip_here, error):
    tulip_here.script = [error]
    assert client.post("/", json=request_body()).status_code == 200  # retried, then 204
    assert client.post("/", json=request_body()).status_code == 200
    assert len(tulip_here.requests) == 3
    assert tulip_here.connections == 1


def test_a_refusal_keeps_the_connection_too(client, tulip_here):
    tulip_here.script = [Scripted(409, {"Content-Type": "application/json"}, ERROR_BODY)]
    response = client.post("/", json=request_body())
    assert (response.status_code, response.json["tulipErrorCode"]) == (409, "DOWN")
    assert client.post("/", json=request_body()).status_code == 200
    assert tulip_here.connections == 1


def test_no_more_than_64_kib_of_an_error_body_is_read(client, tulip_here):
    huge = b'{"errorCode": "BIG", "details": "' + b"x" * (1024 * 1024) + b'"}'
    tulip_here.script = [Scripted(409, {"Content-Type": "application/json"}, huge)]
    response = client.post("/", json=request_body())
    assert response.status_code == 409
    assert "tulipErrorCode" not in response.json  # not parsed: larger than any Tulip error
    # The rest was left unread, so that connection could not go back to the pool.
    assert client.post("/", json=request_body()).status_code == 200
    assert tulip_here.connections == 2


def test_a_server_that_closes_is_simply_reconnected(client, tulip_here):
    tulip_here.script = [Scripted(204, close=True)]
    for _ in range(3):
        assert client.post("/", json=request_body()).status_code == 200
    assert tulip_here.connections == 2
