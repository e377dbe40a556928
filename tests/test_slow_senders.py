"""Callers that announce a body and do not send it, over raw sockets, against the function as
deployed (functions-framework's gunicorn): refused before the body is read, its reading bounded
by the request's deadline, and no worker thread held by them."""

from __future__ import annotations

import base64
import contextlib
import http.client
import socket
import time
from collections.abc import Iterator

import pytest

from ops.sign import signed_headers
from tests import processes

pytestmark = pytest.mark.processes

SECRET = "whsec_" + base64.b64encode(b"a secret for the slow callers!!!").decode()
SETTINGS = {
    "WEBHOOK_AUTH": "standard-webhooks",
    "WEBHOOK_SECRET_VALUE": SECRET,
    "MAX_BODY_BYTES": "26214400",  # infra/'s default: 25 MiB
    "TULIP_BASE_URL": "http://127.0.0.1:1",
    "TULIP_API_KEY": "apikey.2_x",
    "TULIP_API_SECRET": "s",
    "TULIP_DEADLINE_SECONDS": "2",
    "THREADS": "2",  # functions-framework's worker threads: few, so that holding them shows
}


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    with processes.function(SETTINGS) as served:
        served.wait_until_ready()
        yield served.port


# How long a test waits for what the function does at once. Generous for a loaded machine, and
# well below the seconds gunicorn itself gives a connection it was left to drain (5 s or more):
# past it, the function did not do it.
PROMPTLY = 3.0


def send_head(port: int, length: int, headers: dict[str, str], body: bytes = b"") -> socket.socket:
    """A POST's head announcing `length` bytes, and `body`'s first bytes; the rest never comes."""
    connection = socket.create_connection(("127.0.0.1", port), timeout=PROMPTLY)
    lines = ["POST / HTTP/1.1", f"Host: 127.0.0.1:{port}", "Content-Type: application/json",
             f"Content-Length: {length}", *(f"{k}: {v}" for k, v in headers.items())]  # fmt: skip
    connection.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
    return connection


def status_of(connection: socket.socket) -> int:
    """The status of the next answer on `connection`, read whole."""
    answer = http.client.HTTPResponse(connection)
    answer.begin()
    answer.read()
    return answer.status


def test_a_caller_without_credentials_is_answered_401_without_sending_its_body(port):
    with contextlib.closing(send_head(port, 26_214_400, {})) as connection:
        assert status_of(connection) == 401
        # ... and the connection is shut at once rather than left waiting for 25 MiB.
        while connection.recv(65536):
            pass


def test_callers_that_announce_a_body_and_stall_hold_no_thread(port):
    stalled = [send_head(port, 26_214_400, {}, b"{") for _ in range(6)]  # three times the threads
    try:
        assert [status_of(connection) for connection in stalled] == [401] * 6
        body = b"[]"  # signed, read whole, refused by its content: no Tulip needed
        signed = signed_headers("standard-webhooks", SECRET, body, now=time.time())
        with contextlib.closing(send_head(port, len(body), signed, body)) as connection:
            assert status_of(connection) == 400
    finally:
        for connection in stalled:
            connection.close()


def test_a_signed_body_that_stops_coming_is_408_at_the_deadline(port):
    body = b'{"tableLinkId": "L1", "leftRecord": "WO-1", "rightRecord": "SN-1"}'
    signed = signed_headers("standard-webhooks", SECRET, body, now=time.time())
    with contextlib.closing(send_head(port, len(body), signed, body[:10])) as connection:
        connection.settimeout(float(SETTINGS["TULIP_DEADLINE_SECONDS"]) + PROMPTLY)
        assert status_of(connection) == 408  # TULIP_DEADLINE_SECONDS after it arrived


def test_a_small_body_refused_unread_is_read_after_the_answer_and_the_connection_lives_on(port):
    """A sender with a wrong secret sends its whole (small) body: it gets its 401 whole, and its
    connection, drained, serves the next request instead of being reset."""
    body = b"[]"
    signed = signed_headers("standard-webhooks", SECRET, body, now=time.time())
    with contextlib.closing(send_head(port, len(body), {}, body)) as connection:
        assert status_of(connection) == 401
        lines = ["POST / HTTP/1.1", f"Host: 127.0.0.1:{port}", "Content-Type: application/json",
                 f"Content-Length: {len(body)}", *(f"{k}: {v}" for k, v in signed.items())]  # fmt: skip
        connection.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        assert status_of(connection) == 400  # the second request, on the same connection
