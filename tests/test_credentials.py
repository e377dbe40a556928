"""Token formats and the secret cache: TTL, one read at a time, and careful invalidation."""

from __future__ import annotations

import base64
import threading

import pytest

from function.clients.credentials import ApiToken, parse_token
from function.clients.secret_manager import SecretCache
from function.model.errors import ConfigError, CredentialsUnavailable
from function.timing import Deadline
from tests.doubles import FakeClock


@pytest.mark.parametrize(
    "value",
    [
        '{"apiKey": "apikey.2_K", "apiSecret": "S:with:colons"}',
        "apikey.2_K:S:with:colons",
        "\n apikey.2_K:S:with:colons \n",
        "Basic " + base64.b64encode(b"apikey.2_K:S:with:colons").decode(),
    ],
)
def test_token_formats(value):
    assert parse_token(value, "test") == ApiToken("apikey.2_K", "S:with:colons")


@pytest.mark.parametrize(
    "value",
    [
        "",
        "no-colon",
        '{"apiKey": "k", "apiSecret": 5}',
        '{"apiKey": "k"',
        "Basic not*base64",
        "Basic " + base64.b64encode(b"nocolon").decode(),
        "k\x00:s",
        "ключ:секрет",
    ],
)
def test_values_that_are_not_tokens(value):
    with pytest.raises(ConfigError) as caught:
        parse_token(value, "The secret X")
    assert caught.value.message.startswith("The secret X")
    if value:
        assert value not in caught.value.message


def test_a_token_never_shows_itself():
    token = ApiToken("apikey.2_K", "topsecret")
    assert "topsecret" not in repr(token) and "apikey" not in str(token)


class Reader:
    def __init__(self, clock: FakeClock, values: list[str]) -> None:
        self.values = values
        self.calls = 0
        self.clock = clock
        self.gate: threading.Event | None = None

    def __call__(self, name: str, deadline: Deadline) -> str:
        self.calls += 1
        if self.gate is not None:
            self.gate.wait(5)
        return self.values[min(self.calls, len(self.values)) - 1]


def test_ttl(clock):
    reader = Reader(clock, ["a", "b"])
    cache = SecretCache(reader, ttl=10, clock=clock.clock())
    deadline = Deadline(clock.clock(), 30)
    assert cache.get("s", deadline) == "a"
    clock.advance(9.9)
    assert cache.get("s", deadline) == "a"
    clock.advance(0.2)
    assert cache.get("s", deadline) == "b"
    assert reader.calls == 2


def test_ttl_zero_reads_every_time(clock):
    reader = Reader(clock, ["a", "b", "c"])
    cache = SecretCache(reader, ttl=0, clock=clock.clock())
    deadline = Deadline(clock.clock(), 30)
    assert [cache.get("s", deadline) for _ in range(3)] == ["a", "b", "c"]


def test_concurrent_misses_make_one_read(clock):
    reader = Reader(clock, ["a"])
    reader.gate = threading.Event()
    cache = SecretCache(reader, ttl=60, clock=clock.clock())
    results = []
    threads = [
        threading.Thread(target=lambda: results.append(cache.get("s", Deadline(clock.clock(), 30))))
        for _ in range(10)
    ]
    for thread in threads:
        thread.start()
    reader.gate.set()
    for thread in threads:
        thread.join(5)
    assert results == ["a"] * 10 and reader.calls == 1


def test_waiting_for_another_read_respects_the_deadline(clock):
    reader = Reader(clock, ["a"])
    reader.gate = threading.Event()
    cache = SecretCache(reader, ttl=60, clock=clock.clock())
    first = threading.Thread(target=lambda: cache.get("s", Deadline(clock.clock(), 30)))
    first.start()
    while reader.calls == 0:
        threading.Event().wait(0.001)
    with pytest.raises(CredentialsUnavailable, match="Timed out"):
        cache.get("s", Deadline(clock.clock(), 0))
    reader.gate.set()
    first.join(5)


def test_invalidation_spares_a_value_read_since(clock):
    reader = Reader(clock, ["old", "new"])
    cache = SecretCache(reader, ttl=60, clock=clock.clock())
    deadline = Deadline(clock.clock(), 30)
    assert cache.get("s", deadline) == "old"
    cache.invalidate("s", lambda value: value == "old")
    assert cache.get("s", deadline) == "new"
    # a second request refused with the old value must not drop the new one
    cache.invalidate("s", lambda value: value == "old")
    assert cache.get("s", deadline) == "new" and reader.calls == 2
