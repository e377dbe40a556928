"""Process lifetime: what an instance builds once, and how a bad setting is remembered."""

from __future__ import annotations

import pytest

from function import instance
from function.errors import ConfigError
from function.instance import Once


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
    assert current.authenticator()._cache is current.service().secrets


def test_reset_starts_a_new_instance_that_reads_the_environment_again(env):
    first = instance.current().service()
    env.set(TULIP_TIMEOUT_SECONDS="2")
    assert instance.current().service() is first  # settings are read once
    instance.reset()
    assert instance.current().service().settings.timeout == 2
