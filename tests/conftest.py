"""Shared fixtures: a fresh function instance per test, the real Flask app, Tulip mocked."""

from __future__ import annotations

import os
from collections.abc import Iterator

import flask.testing
import functions_framework
import pytest
import responses
from hypothesis import HealthCheck, settings

from devtools.runner.run import DEV_API_KEY, DEV_API_SECRET
from devtools.simulators.secret_manager import SecretManagerSimulator
from function import config, instance
from tests import processes
from tests.doubles import FakeClock, SimulatorDouble, TulipDouble
from tests.helpers import API_KEY, API_SECRET, BASE_URL, ROOT

# Property tests (test_properties.py): the same examples on every run (derandomized, no example
# database), so a CI run never depends on luck; HYPOTHESIS_PROFILE=explore searches afresh, longer.
settings.register_profile(
    "ci",
    derandomize=True,
    max_examples=150,
    database=None,
    deadline=None,  # a loaded machine is slow, not wrong
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
settings.register_profile(
    "explore", settings.get_profile("ci"), derandomize=False, max_examples=3000
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_runtest_setup(item: pytest.Item) -> None:
    # Before any fixture of the test, module-scoped ones included: only a test marked
    # `processes` may start one (tests/processes.py checks), so `make quick` never waits on one.
    processes.allowed = item.get_closest_marker("processes") is not None


class Env:
    """Sets environment variables for one test; the instance reads them on first request."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self._monkeypatch = monkeypatch

    def set(self, **values: str | None) -> None:
        for name, value in values.items():
            if value is None:
                self._monkeypatch.delenv(name, raising=False)
            else:
                self._monkeypatch.setenv(name, value)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(autouse=True)
def env(monkeypatch: pytest.MonkeyPatch, clock: FakeClock) -> Iterator[Env]:
    """A fresh instance per test: clean settings, empty caches, the fake clock."""
    for name in config.environment_variables() | {"LOG_EXECUTION_ID"}:
        monkeypatch.delenv(name, raising=False)
    environment = Env(monkeypatch)
    environment.set(
        TULIP_BASE_URL=BASE_URL,
        TULIP_API_KEY=API_KEY,
        TULIP_API_SECRET=API_SECRET,
        WEBHOOK_AUTH="none",
    )
    instance.reset(clock=clock.clock())
    yield environment
    instance.reset()


@pytest.fixture
def client() -> flask.testing.FlaskClient:
    """The webhook entry point, served by the real functions-framework app."""
    return functions_framework.create_app("link_records", str(ROOT / "main.py")).test_client()


@pytest.fixture
def push_client() -> flask.testing.FlaskClient:
    """The push subscription's entry point (the events function), by the real app."""
    return functions_framework.create_app("link_records_push", str(ROOT / "main.py")).test_client()


@pytest.fixture
def event_client() -> flask.testing.FlaskClient:
    """The CloudEvent entry point, served by the real functions-framework app."""
    app = functions_framework.create_app("link_records_pubsub", str(ROOT / "main.py"), "cloudevent")
    return app.test_client()


@pytest.fixture
def tulip() -> Iterator[responses.RequestsMock]:
    """Tulip, mocked at the `requests` level: an unexpected call fails the test."""
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


@pytest.fixture
def secret_manager() -> Iterator[SecretManagerSimulator]:
    double = SecretManagerSimulator()
    yield double
    double.stop()


@pytest.fixture
def tulip_server() -> Iterator[TulipDouble]:
    double = TulipDouble()
    yield double
    double.stop()


@pytest.fixture
def simulator(env: Env) -> Iterator[SimulatorDouble]:
    """The Tulip simulator from devtools, served on loopback, with the function wired to it."""
    double = SimulatorDouble()
    env.set(TULIP_BASE_URL=double.url, TULIP_API_KEY=DEV_API_KEY, TULIP_API_SECRET=DEV_API_SECRET)
    yield double
    double.stop()
