"""Process lifetime: what an instance builds once, and how a bad setting is remembered."""

from __future__ import annotations

import http.client
import json
import socket
import time

import pytest

from function import instance
from function.config import ConfigError
from function.instance import Once
from tests import processes
from tests.helpers import request_body


def test_once_remembers_a_config_error_without_rebuilding():
    calls = []

    def build():
        calls.append(1)
        raise ConfigError("TULIP_BASE_URL is not set")

    once = Once(build)
    for _ in range(3):
        with pytest.raises(ConfigError, match="TULIP_BASE_URL"):
            once.get()
    assert calls == [1]


def test_the_service_and_authenticator_are_built_once_and_share_the_secret_cache():
    current = instance.current()
    assert current.service() is current.service()
    assert current.authenticator() is current.authenticator()
    assert current.authenticator()._secrets is current.service().secrets


def test_reset_starts_a_new_instance_that_reads_the_environment_again(env):
    first = instance.current().service()
    env.set(TULIP_TIMEOUT_SECONDS="2")
    assert instance.current().service() is first  # settings are read once
    instance.reset()
    assert instance.current().service().settings.timeout == 2


def test_only_a_secret_in_secret_manager_warms_anything_up():
    assert not instance.uses_secret_manager({"TULIP_API_KEY": "k", "TULIP_API_SECRET": "s"})
    assert not instance.uses_secret_manager({"TULIP_CREDENTIALS_SECRET": "  "})
    assert instance.uses_secret_manager({"TULIP_CREDENTIALS_SECRET": "projects/p/secrets/t"})
    assert instance.uses_secret_manager({"WEBHOOK_SECRET": "projects/p/secrets/w"})


VERSION = "projects/p/secrets/tulip/versions/latest"
WEBHOOK_VERSION = "projects/p/secrets/hook/versions/latest"


def post(port: int) -> tuple[int, dict]:
    body = json.dumps(request_body()).encode()
    for _ in range(3000):  # until the worker serves
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            connection.request("POST", "/", body, {"Content-Type": "application/json"})
            answer = connection.getresponse()
            return answer.status, json.loads(answer.read())
        except ConnectionRefusedError:
            time.sleep(0.01)
    raise AssertionError("the function never served")


def test_the_serving_worker_reads_the_secrets_and_connects_before_the_first_request(
    secret_manager, tulip_server
):
    secret_manager.put(VERSION, "apikey.2_WARM:warm-secret")
    secret_manager.put(WEBHOOK_VERSION, "t0ken")
    settings = {
        "TULIP_BASE_URL": tulip_server.url,
        "TULIP_CREDENTIALS_SECRET": VERSION,
        "SECRET_MANAGER_EMULATOR_HOST": secret_manager.host,
        "WEBHOOK_AUTH": "token",
        "WEBHOOK_SECRET": WEBHOOK_VERSION,
    }
    with processes.function(settings) as served:
        port, lines = served.port, served.lines
        processes.until(lambda: len(secret_manager.calls) == 2, "the secret reads")
        processes.until(lambda: tulip_server.connections == 1, "the connection to Tulip")
        body = json.dumps(request_body()).encode()
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        connection.request(
            "POST", "/", body, {"Content-Type": "application/json", "X-Webhook-Token": "t0ken"}
        )
        assert connection.getresponse().status == 200
        # The request used what the worker warmed: had the master warmed up instead, the
        # worker (a fork) would have read again and opened a connection of its own.
        assert sorted(secret_manager.calls) == sorted([VERSION, WEBHOOK_VERSION])
        assert tulip_server.connections == 1 and len(tulip_server.requests) == 1
    assert not any("warm_up_failed" in line for line in lines)


def test_a_failed_warm_up_is_logged_once_and_the_first_request_reports_as_ever(tulip_server):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        nobody = f"127.0.0.1:{closed.getsockname()[1]}"
    settings = {
        "TULIP_BASE_URL": tulip_server.url,
        "TULIP_CREDENTIALS_SECRET": VERSION,
        "SECRET_MANAGER_EMULATOR_HOST": nobody,  # nothing listens: every read fails
        "TULIP_DEADLINE_SECONDS": "2",
        "WEBHOOK_AUTH": "none",
    }
    with processes.function(settings) as served:
        port, lines = served.port, served.lines
        processes.until(
            lambda: any("instance.warm_up_failed" in line for line in lines), "the warning"
        )
        status, body = post(port)
        assert (status, body["errorCode"]) == (503, "CREDENTIALS_UNAVAILABLE")
    warnings = [json.loads(x) for x in lines if "instance.warm_up_failed" in x]
    assert len(warnings) == 1 and warnings[0]["severity"] == "WARNING"
    assert "CredentialsUnavailable" in warnings[0]["message"]
