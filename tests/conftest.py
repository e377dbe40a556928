"""Shared fixtures: a fresh function instance per test, the real Flask app, Tulip mocked."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import flask.testing
import functions_framework
import pytest
import responses

from function import config, handlers, service
from function.config import Once, load_settings
from function.service import LinkService
from tests.doubles import FakeClock, SecretManagerDouble, TulipDouble

ROOT = Path(__file__).resolve().parent.parent
BASE_URL = "https://acme.tulip.co"
API_KEY = "apikey.2_TESTKEYx7Qz"
API_SECRET = "s3cret-Vq9ZLwRtYp0"
LINK_ID = "g56RCoZCtzv7borvp"


def link_url(link_id: str = LINK_ID, action: str = "link", base: str = BASE_URL) -> str:
    return f"{base}/api/v3/tableLinks/{link_id}/{action}"


def request_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"tableLinkId": LINK_ID, "leftRecord": "WO-1001", "rightRecord": "SN-1"}
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not ...}


def b64(payload: Any) -> str:
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return base64.b64encode(raw).decode()


def push_envelope(payload: Any, message_id: str = "msg-1", attempt: int = 1) -> dict[str, Any]:
    return {
        "message": {
            "data": b64(payload),
            "attributes": {"source": "mes"},
            "messageId": message_id,
            "publishTime": "2026-11-27T05:00:00Z",
        },
        "subscription": "projects/p/subscriptions/tulip-link-events",
        "deliveryAttempt": attempt,
    }


def log_lines(text: str) -> list[dict[str, Any]]:
    """Every stdout line as JSON: a line that is not JSON fails the test."""
    return [json.loads(line) for line in text.splitlines() if line.strip()]


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
    monkeypatch.setattr(
        service,
        "current",
        Once(lambda: LinkService(load_settings(os.environ), clock=clock.clock())),
    )
    handlers.authenticator.reset()
    yield environment
    handlers.authenticator.reset()


@pytest.fixture
def client() -> flask.testing.FlaskClient:
    """The HTTP entry point, served by the real functions-framework app."""
    return functions_framework.create_app("link_records", str(ROOT / "main.py")).test_client()


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
def secret_manager() -> Iterator[SecretManagerDouble]:
    double = SecretManagerDouble()
    yield double
    double.stop()


@pytest.fixture
def tulip_server() -> Iterator[TulipDouble]:
    double = TulipDouble()
    yield double
    double.stop()
