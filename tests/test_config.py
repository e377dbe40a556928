"""Settings: defaults, every validation, and the rule that secret values are never echoed."""

from __future__ import annotations

import pytest

from function.config import environment_variables, load_settings, load_webhook_settings
from function.model.errors import ConfigError

BASE = {
    "TULIP_BASE_URL": "https://acme.tulip.co",
    "TULIP_CREDENTIALS_SECRET": "projects/p/secrets/s",
}


def refused(**env: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load_settings({**BASE, **env})
    return caught.value.message


def test_defaults():
    settings = load_settings(BASE)
    assert settings.timeout == 10 and settings.deadline == 30
    assert settings.max_attempts == 4 and settings.max_body_bytes == 65_536
    assert settings.secret_cache_ttl == 300
    assert settings.workspace_id is None and settings.default_table_link_id is None


@pytest.mark.parametrize(
    ("url", "kept"),
    [
        ("https://acme.tulip.co", "https://acme.tulip.co"),
        ("https://acme.tulip.co/", "https://acme.tulip.co"),
        ("http://127.0.0.1:8081", "http://127.0.0.1:8081"),
        ("http://localhost:9", "http://localhost:9"),
        ("http://[::1]:9", "http://[::1]:9"),
        (" https://acme.tulip.co ", "https://acme.tulip.co"),
    ],
)
def test_base_urls_accepted(url, kept):
    assert load_settings({**BASE, "TULIP_BASE_URL": url}).tulip_base_url == kept


@pytest.mark.parametrize(
    "url",
    [
        "http://acme.tulip.co",
        "http://127.0.0.1.evil.example",
        "ftp://acme.tulip.co",
        "acme.tulip.co",
        "https://acme.tulip.co/api/v3",
        "https://user:pw@acme.tulip.co",
        "https://acme.tulip.co?x=1",
        "https://acme.tulip.co:99999",
        "https://",
    ],
)
def test_base_urls_refused(url):
    assert "TULIP_BASE_URL" in refused(TULIP_BASE_URL=url)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("TULIP_TIMEOUT_SECONDS", "0"),
        ("TULIP_TIMEOUT_SECONDS", "ten"),
        ("TULIP_TIMEOUT_SECONDS", "inf"),
        ("TULIP_DEADLINE_SECONDS", "nan"),
        ("TULIP_DEADLINE_SECONDS", "-1"),
        ("TULIP_MAX_ATTEMPTS", "0"),
        ("TULIP_MAX_ATTEMPTS", "11"),
        ("TULIP_MAX_ATTEMPTS", "2.5"),
        ("MAX_BODY_BYTES", "0"),
        ("MAX_BODY_BYTES", "1e99"),
        ("SECRET_CACHE_TTL_SECONDS", "-5"),
        ("TULIP_TABLE_LINK_ID", "bad id"),
        ("TULIP_ALLOWED_TABLE_LINK_IDS", " , "),
        ("TULIP_ALLOWED_TABLE_LINK_IDS", "ok,not ok"),
        ("TULIP_WORKSPACE_ID", "has space"),
        ("TULIP_CREDENTIALS_SECRET", "projects/p/secrets/s/versions/0"),
        ("TULIP_CREDENTIALS_SECRET", "projects/p/locations/l/secrets/s"),
        ("SECRET_MANAGER_EMULATOR_HOST", "localhost"),
    ],
)
def test_bad_values_are_named(name, value):
    assert name in refused(**{name: value})


def test_numbers_parse():
    settings = load_settings({**BASE, "TULIP_TIMEOUT_SECONDS": "2.5", "TULIP_MAX_ATTEMPTS": "1"})
    assert settings.timeout == 2.5 and settings.max_attempts == 1


def test_empty_means_unset():
    assert load_settings({**BASE, "TULIP_TIMEOUT_SECONDS": "  "}).timeout == 10


def test_several_problems_are_reported_together():
    message = refused(TULIP_TIMEOUT_SECONDS="x", TULIP_MAX_ATTEMPTS="x")
    assert "TULIP_TIMEOUT_SECONDS" in message and "TULIP_MAX_ATTEMPTS" in message


def test_credentials_come_from_a_secret_or_both_local_variables_or_none_at_all():
    env = {"TULIP_BASE_URL": "https://a.tulip.co", "TULIP_API_KEY": "k"}
    with pytest.raises(ConfigError, match="TULIP_API_KEY and TULIP_API_SECRET go together"):
        load_settings(env)
    assert load_settings({**env, "TULIP_API_SECRET": "s"}).has_token
    # None: a webhook function in queue mode, which calls no Tulip (test_dry_run.py).
    assert not load_settings({"TULIP_BASE_URL": "https://a.tulip.co"}).has_token


def test_a_bare_secret_id_needs_the_project():
    with pytest.raises(ConfigError, match="GOOGLE_CLOUD_PROJECT"):
        load_settings({**BASE, "TULIP_CREDENTIALS_SECRET": "tok"})


def test_secret_values_are_not_echoed():
    message = refused(TULIP_API_KEY="k", TULIP_API_SECRET="hunter2", TULIP_TIMEOUT_SECONDS="-1")
    assert "hunter2" not in message
    settings = load_settings({**BASE, "TULIP_API_SECRET": "hunter2"})
    assert "hunter2" not in repr(settings)


def test_webhook_auth_fails_closed():
    with pytest.raises(ConfigError, match="WEBHOOK_AUTH is not set"):
        load_webhook_settings({})
    with pytest.raises(ConfigError, match="WEBHOOK_AUTH: must be one of"):
        load_webhook_settings({"WEBHOOK_AUTH": "None"})
    assert load_webhook_settings({"WEBHOOK_AUTH": "none"}).mode == "none"


def test_the_names_read_are_listed():
    names = environment_variables()
    assert {"TULIP_BASE_URL", "WEBHOOK_AUTH", "TULIP_CREDENTIALS_SECRET"} <= names


def test_the_secret_cache_ttl_is_read_and_checked():
    assert load_settings({**BASE, "SECRET_CACHE_TTL_SECONDS": "60"}).secret_cache_ttl == 60
    with pytest.raises(ConfigError, match="SECRET_CACHE_TTL_SECONDS: input should be"):
        load_settings({**BASE, "SECRET_CACHE_TTL_SECONDS": "-1"})


def test_deduplication_without_google_credentials_is_misconfigured(client, env, monkeypatch):
    monkeypatch.delenv("FIRESTORE_EMULATOR_HOST", raising=False)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", "/nonexistent/key.json")
    env.set(DEDUP_DATABASE="projects/tulip-link-test/databases/dedup")
    for _ in range(2):  # every request, as for any other setting
        answer = client.post("/", json={"tableLinkId": "L", "leftRecord": "a", "rightRecord": "b"})
        assert (answer.status_code, answer.json["errorCode"]) == (500, "MISCONFIGURED")
        assert "DEDUP_DATABASE is set, but Google's credentials are not" in answer.json["message"]


@pytest.mark.parametrize(
    "name", ["tulip-link-dedup", "projects/p/databases/d", "projects/acme-prod/dbs/x"]
)
def test_dedup_database_must_be_a_database_name(name):
    with pytest.raises(ConfigError, match="DEDUP_DATABASE: must be a Firestore database's name"):
        load_webhook_settings({"WEBHOOK_AUTH": "none", "DEDUP_DATABASE": name})
