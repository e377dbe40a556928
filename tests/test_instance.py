"""Process lifetime: what an instance builds once, hands in, and closes."""

from __future__ import annotations

import pytest

from function import instance
from function.instance import Once
from function.model.errors import ConfigError
from tests.helpers import request_body
from tests.processes import until


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


def test_each_function_is_built_once_and_both_share_one_secret_cache():
    current = instance.current()
    webhook, events = current.webhook_function(), current.events_function()
    assert webhook is current.webhook_function() and events is current.events_function()
    assert webhook.authenticator._cache is current.clients().secrets


def test_reset_starts_a_new_instance_that_reads_the_environment_again(env):
    first = instance.current().events_function()
    env.set(TULIP_TIMEOUT_SECONDS="2")
    assert instance.current().events_function() is first  # settings are read once
    instance.reset()
    assert instance.current().events_function().settings.timeout == 2


def test_reset_closes_what_the_instance_opened(env, client, tulip_server, secret_manager, clock):
    """Nothing of one instance reaches the next: its Tulip connections and its channel to
    Secret Manager are closed, though the old instance is still referenced (not collected)."""
    version = "projects/p/secrets/tulip-token/versions/latest"
    secret_manager.put(version, "apikey.2_CLOSE:secret")
    env.set(
        TULIP_BASE_URL=tulip_server.url,
        TULIP_API_KEY=None,
        TULIP_API_SECRET=None,
        TULIP_CREDENTIALS_SECRET=version,
        SECRET_MANAGER_EMULATOR_HOST=secret_manager.host,
    )
    instance.reset(clock=clock.clock())
    assert client.post("/", json=request_body()).status_code == 200
    old = instance.current()
    channel = old.clients().secret_manager._get_client().transport.grpc_channel
    assert tulip_server.open == 1  # kept alive in the pool
    instance.reset()
    until(lambda: tulip_server.open == 0, "the pooled connection to be closed")
    with pytest.raises(ValueError, match="closed channel"):
        channel.unary_unary("/google.cloud.secretmanager.v1.SecretManagerService/X")(b"")
    assert old is not instance.current()
