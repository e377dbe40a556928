"""The Tulip token from Secret Manager: the real client against the Secret Manager simulator on loopback."""

from __future__ import annotations

import base64
import json
import subprocess
import sys

import grpc
import pytest

from devtools.simulators.secret_manager import SecretManagerSimulator
from function.clients.secret_manager import SecretManager
from function.model.errors import CredentialsUnavailable
from function.timing import SYSTEM_CLOCK, Backoff, Deadline
from tests.helpers import ROOT, link_url, request_body

VERSION = "projects/acme-prod/secrets/tulip-token/versions/latest"
KEY, SECRET = "apikey.2_FROMSECRETMGR", "sm-secret-value-1"


def basic(key: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{key}:{secret}".encode()).decode()


@pytest.fixture
def from_secret_manager(env, secret_manager):
    env.set(
        TULIP_API_KEY=None,
        TULIP_API_SECRET=None,
        TULIP_CREDENTIALS_SECRET="projects/acme-prod/secrets/tulip-token",
        SECRET_MANAGER_EMULATOR_HOST=secret_manager.host,
    )
    secret_manager.put(VERSION, f"{KEY}:{SECRET}")
    return secret_manager


@pytest.mark.parametrize(
    "value",
    [
        json.dumps({"apiKey": KEY, "apiSecret": SECRET}),
        f"  {KEY}:{SECRET}\n",
        basic(KEY, SECRET),
        "  basic   " + base64.b64encode(f"{KEY}:{SECRET}".encode()).decode() + "\n",
    ],
)
def test_each_secret_format_gives_the_same_basic_auth(client, tulip, from_secret_manager, value):
    from_secret_manager.put(VERSION, value)
    call = tulip.put(link_url(), status=204)
    assert client.post("/", json=request_body()).status_code == 200
    assert call.calls[0].request.headers["Authorization"] == basic(KEY, SECRET)


@pytest.mark.parametrize(
    "value",
    ["just-a-key", '{"apiKey": "k"}', "Basic !!!", ":hidden-value", "key:", "key:with space"],
)
def test_a_secret_that_is_not_a_token_is_misconfigured_and_not_echoed(
    client, from_secret_manager, value
):
    from_secret_manager.put(VERSION, value)
    response = client.post("/", json=request_body())
    assert response.status_code == 500
    assert response.json["errorCode"] == "MISCONFIGURED"
    assert VERSION in response.json["message"]
    assert value.strip() not in response.get_data(as_text=True)


def test_the_token_is_cached_between_requests(client, tulip, from_secret_manager):
    tulip.put(link_url(), status=204)
    tulip.put(link_url(), status=204)
    assert client.post("/", json=request_body()).status_code == 200
    assert client.post("/", json=request_body()).status_code == 200
    assert from_secret_manager.calls == [VERSION]


def test_the_token_is_read_again_after_the_ttl(client, tulip, from_secret_manager, env, clock):
    env.set(SECRET_CACHE_TTL_SECONDS="60")
    for _ in range(3):
        tulip.put(link_url(), status=204)
    client.post("/", json=request_body())
    clock.advance(59)
    client.post("/", json=request_body())
    assert len(from_secret_manager.calls) == 1
    clock.advance(2)
    client.post("/", json=request_body())
    assert len(from_secret_manager.calls) == 2


def test_a_401_reads_the_rotated_token_and_tries_once_more(client, tulip, from_secret_manager):
    tulip.put(link_url(), status=204)
    assert client.post("/", json=request_body()).status_code == 200  # token now cached
    from_secret_manager.put(VERSION, f"{KEY}:rotated-secret")
    # the cache still holds the old token; Tulip refuses it, the new one is read and used
    tulip.put(link_url(), status=401)
    retried = tulip.put(link_url(), status=204)
    assert client.post("/", json=request_body()).status_code == 200
    assert retried.calls[0].request.headers["Authorization"] == basic(KEY, "rotated-secret")
    assert len(from_secret_manager.calls) == 2


@pytest.mark.parametrize(
    ("code", "fragment"),
    [
        (grpc.StatusCode.NOT_FOUND, "has no secret"),
        (grpc.StatusCode.PERMISSION_DENIED, "secretAccessor"),
        (grpc.StatusCode.FAILED_PRECONDITION, "refused"),
    ],
)
def test_secret_manager_refusals_are_503_saying_which(client, from_secret_manager, code, fragment):
    from_secret_manager.failures = [code]
    response = client.post("/", json=request_body())
    assert response.status_code == 503
    assert response.json["errorCode"] == "CREDENTIALS_UNAVAILABLE"
    assert fragment in response.json["message"]
    assert response.headers["Retry-After"] == "5"
    assert len(from_secret_manager.calls) == 1  # not retried


def test_an_outage_is_retried_briefly_then_503(client, from_secret_manager, clock):
    from_secret_manager.failures = [grpc.StatusCode.UNAVAILABLE] * 5
    response = client.post("/", json=request_body())
    assert response.status_code == 503
    assert "unreachable" in response.json["message"]
    assert len(from_secret_manager.calls) == 3
    assert len(clock.sleeps) == 2


def test_a_transient_outage_recovers(client, tulip, from_secret_manager):
    from_secret_manager.failures = [grpc.StatusCode.UNAVAILABLE]
    tulip.put(link_url(), status=204)
    assert client.post("/", json=request_body()).status_code == 200
    assert len(from_secret_manager.calls) == 2


def test_an_unreachable_server_is_503(client, from_secret_manager):
    from_secret_manager.stop()
    response = client.post("/", json=request_body())
    assert response.status_code == 503


def test_secret_manager_waits_stay_inside_the_deadline(client, from_secret_manager, env, clock):
    env.set(TULIP_DEADLINE_SECONDS="2")
    from_secret_manager.failures = [grpc.StatusCode.UNAVAILABLE] * 5
    from_secret_manager.on_call = lambda: clock.advance(1.8)
    response = client.post("/", json=request_body())
    assert response.status_code == 503
    assert clock.sleeps == []  # the one wait that could follow would pass the deadline


def test_each_read_carries_a_grpc_deadline_within_the_requests(
    client, tulip, from_secret_manager, env
):
    env.set(TULIP_DEADLINE_SECONDS="3")
    tulip.put(link_url(), status=204)
    assert client.post("/", json=request_body()).status_code == 200
    [allowed] = from_secret_manager.deadlines
    # The request's 3 s, not the per-try cap (5 s) nor the library's default (60 s). The server
    # sees the deadline gRPC put on the wire, rounded up and read on another clock, so it may
    # exceed 3 s by a few milliseconds: the bound leaves a whole second between the candidates.
    assert allowed is not None and 0 < allowed < 4.0


@pytest.mark.parametrize(
    ("setting", "project", "read"),
    [
        ("tulip-token", "acme-prod", "projects/acme-prod/secrets/tulip-token/versions/latest"),
        ("projects/other/secrets/tok", None, "projects/other/secrets/tok/versions/latest"),
        ("projects/other/secrets/tok/versions/7", None, "projects/other/secrets/tok/versions/7"),
    ],
)
def test_secret_names_are_completed(client, tulip, env, secret_manager, setting, project, read):
    env.set(
        TULIP_API_KEY=None,
        TULIP_API_SECRET=None,
        TULIP_CREDENTIALS_SECRET=setting,
        GOOGLE_CLOUD_PROJECT=project,
        SECRET_MANAGER_EMULATOR_HOST=secret_manager.host,
    )
    secret_manager.put(read, f"{KEY}:{SECRET}")
    tulip.put(link_url(), status=204)
    assert client.post("/", json=request_body()).status_code == 200
    assert secret_manager.calls == [read]


@pytest.mark.processes
def test_local_runs_never_import_the_secret_manager_library():
    code = (
        "import os, sys; os.environ.update(TULIP_BASE_URL='https://a.tulip.co', "
        "TULIP_API_KEY='k', TULIP_API_SECRET='s', WEBHOOK_AUTH='none');"
        "from function import instance; instance.current().events_function();"
        "print('google.cloud.secretmanager' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip().splitlines()[-1] == "False"


def test_the_client_is_created_once_and_only_when_needed(
    client, tulip, from_secret_manager, clock, monkeypatch
):
    from function.clients.secret_manager import SecretManager

    created = []
    original = SecretManager._create_client

    def counting(self):
        created.append(1)
        return original(self)

    monkeypatch.setattr(SecretManager, "_create_client", counting)
    from function import instance

    instance.current().events_function()
    assert created == []  # building the instance does not create it
    for _ in range(2):
        tulip.put(link_url(), status=204)
        client.post("/", json=request_body())
        clock.advance(1_000)  # past the TTL: the second request reads again
    assert created == [1] and len(from_secret_manager.calls) == 2


def test_a_new_server_on_a_stopped_ones_port_is_reached_at_once():
    """A client that failed against a stopped server, and still lives, does not make a fresh
    client fail against a new server the kernel gave the same port: clients of local servers
    share no connection (function/local_grpc.py). With gRPC's shared connections, the fresh
    client would join the failed one's, in reconnect backoff, and fail at once."""
    name = "projects/p/secrets/s/versions/latest"

    def manager(server: SecretManagerSimulator) -> SecretManager:
        backoff = Backoff(base=0.01, cap=0.02)
        return SecretManager(emulator_host=server.host, clock=SYSTEM_CLOCK, backoff=backoff)

    first = SecretManagerSimulator()
    first.put(name, "before")
    reader = manager(first)
    assert reader.read(name, Deadline(SYSTEM_CLOCK, 5)) == "before"
    first.stop()
    kept = manager(first)
    with pytest.raises(CredentialsUnavailable):
        kept.read(name, Deadline(SYSTEM_CLOCK, 5))
    second = SecretManagerSimulator(first.port)
    try:
        second.put(name, "after")
        fresh = manager(second)
        assert fresh.read(name, Deadline(SYSTEM_CLOCK, 5)) == "after"
        assert second.calls == [name]
        for client in (reader, kept, fresh):
            client.close()
    finally:
        second.stop()
