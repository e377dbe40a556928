"""The Tulip client over real HTTP on loopback: what goes on the wire, and what must not."""

from __future__ import annotations

import base64
import random
import socket
import threading
import time

import pytest

from function import __version__
from function.clients.credentials import ApiToken
from function.clients.tulip import TulipClient, parse_retry_after
from function.model.errors import TulipError
from function.model.link import Action, Link
from function.model.status_table import Outcome
from function.timing import Backoff, Deadline
from tests.doubles import FakeClock, Scripted

TOKEN = ApiToken("apikey.2_WIRE", "wire-secret")


class Tokens:
    def __init__(self, *tokens: ApiToken) -> None:
        self.tokens = list(tokens)
        self.refreshed = 0

    def get(self, deadline):
        return self.tokens[0]

    def refresh(self, rejected, deadline):
        self.refreshed += 1
        if len(self.tokens) > 1:
            self.tokens.pop(0)
        return self.tokens[0]


def make_client(
    url: str,
    clock: FakeClock,
    *,
    workspace_id: str | None = None,
    timeout: float = 5.0,
    max_attempts: int = 4,
) -> TulipClient:
    return TulipClient(
        base_url=url,
        workspace_id=workspace_id,
        timeout=timeout,
        max_attempts=max_attempts,
        clock=clock.clock(),
        backoff=Backoff(rng=random.Random(1)),
    )


def change(
    client: TulipClient,
    clock: FakeClock,
    tokens=None,
    *,
    action: Action = "link",
    left_record: str = "L",
):
    return client.change_link(
        Link("LinkA", left_record, "R", action),
        tokens=tokens or Tokens(TOKEN),
        deadline=Deadline(clock.clock(), 30),
    )


def test_the_request_on_the_wire(tulip_server, clock):
    answer = change(make_client(tulip_server.url, clock), clock, left_record="é 1")
    assert (answer.status, answer.attempts) == (204, 1)
    [sent] = tulip_server.requests
    assert sent.method == "PUT" and sent.path == "/api/v3/tableLinks/LinkA/link"
    assert sent.json() == {"leftRecord": "é 1", "rightRecord": "R"}
    assert sent.headers["Content-Type"] == "application/json"
    assert sent.headers["User-Agent"] == f"tulip-link/{__version__}"
    expected = base64.b64encode(b"apikey.2_WIRE:wire-secret").decode()
    assert sent.headers["Authorization"] == f"Basic {expected}"


def test_netrc_and_proxy_variables_cannot_change_the_call(
    tulip_server, clock, tmp_path, monkeypatch
):
    netrc = tmp_path / ".netrc"
    netrc.write_text("machine 127.0.0.1 login intruder password stolen\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    change(make_client(tulip_server.url, clock), clock)
    [sent] = tulip_server.requests
    assert "intruder" not in base64.b64decode(sent.headers["Authorization"][6:]).decode()


def test_connections_are_kept_alive(tulip_server, clock):
    client = make_client(tulip_server.url, clock)
    change(client, clock)
    change(client, clock)
    assert all(
        r.headers.get("Connection", "keep-alive") == "keep-alive" for r in tulip_server.requests
    )
    # Counted by the server: urllib3's own count stays 1 even when it reconnects a closed one.
    assert tulip_server.connections == 1


def test_redirects_are_not_followed(tulip_server, clock):
    tulip_server.script = [Scripted(307, {"Location": "/api/v3/elsewhere"})]
    with pytest.raises(TulipError) as caught:
        change(make_client(tulip_server.url, clock), clock)
    assert caught.value.outcome is Outcome.TULIP_UNAVAILABLE_UNEXPECTED_STATUS
    assert len(tulip_server.requests) == 1


def test_cookies_from_tulip_are_not_kept(tulip_server, clock):
    tulip_server.script = [Scripted(204, {"Set-Cookie": "session=abc; Path=/"})]
    client = make_client(tulip_server.url, clock)
    change(client, clock)
    change(client, clock)
    assert "Cookie" not in tulip_server.requests[1].headers


def test_the_workspace_path(tulip_server, clock):
    change(make_client(tulip_server.url, clock, workspace_id="DEFAULT"), clock, action="unlink")
    assert tulip_server.requests[0].path == "/api/v3/w/DEFAULT/tableLinks/LinkA/unlink"


def test_a_refused_token_is_replaced_once(tulip_server, clock):
    tulip_server.script = [Scripted(401), Scripted(204)]
    tokens = Tokens(TOKEN, ApiToken("apikey.2_NEW", "new"))
    change(make_client(tulip_server.url, clock), clock, tokens)
    assert tokens.refreshed == 1
    second = base64.b64decode(tulip_server.requests[1].headers["Authorization"][6:])
    assert second == b"apikey.2_NEW:new"


def test_max_attempts_one_means_no_retry(tulip_server, clock):
    tulip_server.script = [Scripted(503)]
    with pytest.raises(TulipError):
        change(make_client(tulip_server.url, clock, max_attempts=1), clock)
    assert len(tulip_server.requests) == 1 and clock.sleeps == []


def test_a_silent_server_times_out(clock):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)  # accepts connections, never answers
    try:
        client = make_client(f"http://127.0.0.1:{listener.getsockname()[1]}", clock, timeout=0.2)
        with pytest.raises(TulipError) as caught:
            change(client, clock)
    finally:
        listener.close()
    assert caught.value.outcome is Outcome.TULIP_TIMEOUT
    assert caught.value.attempts == 4


def test_a_closed_port_is_unavailable(clock):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(TulipError) as caught:
        change(make_client(f"http://127.0.0.1:{port}", clock, max_attempts=2), clock)
    assert caught.value.outcome is Outcome.TULIP_UNAVAILABLE


def test_one_session_serves_concurrent_calls(tulip_server, clock):
    barrier = threading.Barrier(12, timeout=10)

    def respond(recorded):
        barrier.wait()  # every call is in flight at once
        return Scripted(204)

    tulip_server.respond = respond
    client = make_client(tulip_server.url, clock)
    results, errors = [], []

    def call(n: int) -> None:
        try:
            results.append(change(client, clock, left_record=f"L{n}").status)
        except Exception as error:  # noqa: BLE001 - collected and asserted below
            errors.append(error)

    threads = [threading.Thread(target=call, args=(n,)) for n in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    assert errors == [] and results == [204] * 12
    assert sorted(r.json()["leftRecord"] for r in tulip_server.requests) == sorted(
        f"L{n}" for n in range(12)
    )


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("7", 7.0),
        (" 0 ", 0.0),
        ("Fri, 27 Nov 2026 05:00:10 GMT", 10.0),
        ("Fri, 27 Nov 2026 04:59:00 GMT", 0.0),
        ("soon", None),
        ("-3", None),
        ("1.5", None),
        (None, None),
    ],
)
def test_retry_after_parsing(header, seconds):
    clock = FakeClock()
    clock.wall_now = 1_795_755_600.0  # 2026-11-27 05:00:00 UTC
    assert parse_retry_after(header, clock.clock()) == seconds


def test_backoff_doubles_with_jitter_up_to_the_cap():
    backoff = Backoff(rng=random.Random(7))
    for retry, (low, high) in enumerate([(0.25, 0.5), (0.5, 1), (1, 2), (2, 4), (4, 8)], 1):
        assert low <= backoff.delay(retry) <= high
    assert 4 <= backoff.delay(30) <= 8


class Trickler:
    """A server that answers one byte at a time, each byte well within a read timeout."""

    def __init__(self, answer: bytes, every: float = 0.05) -> None:
        self.answer, self.every = answer, every
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(8)
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            with connection:
                connection.recv(65536)
                try:
                    for byte in self.answer:
                        connection.sendall(bytes([byte]))
                        time.sleep(self.every)  # the point of this server: a slow sender
                except OSError:
                    continue  # the client gave up, as it should


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nX-Padding: " + b"x" * 80 + b"\r\n\r\n",
        b"HTTP/1.1 409 Conflict\r\nContent-Length: 100\r\n\r\n" + b"{" * 100,
    ],
    ids=["status and headers trickle", "body trickles"],
)
def test_an_answer_that_trickles_in_ends_with_the_attempts_time_limit(clock, answer):
    server = Trickler(answer)  # the whole answer would take more than 5 s
    client = make_client(server.url, clock, timeout=0.5, max_attempts=1)
    began = time.monotonic()
    with pytest.raises(TulipError) as caught:
        change(client, clock)
    elapsed = time.monotonic() - began
    server.listener.close()
    assert caught.value.outcome is Outcome.TULIP_TIMEOUT
    assert "did not arrive within 0.5 s" in caught.value.message
    assert elapsed < 3  # not the 5 s the trickle would have held it
