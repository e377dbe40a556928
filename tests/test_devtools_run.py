"""The local runner's choices: .env parsing, simulator or real Tulip, the printed command."""

from __future__ import annotations

import shlex

from devtools.run import (
    DEV_API_KEY,
    DEV_WEBHOOK_SECRET,
    curl_command,
    function_environment,
    read_env_file,
)


def test_env_file_lines(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text(
        "# comment\n\nexport TULIP_BASE_URL=https://acme.tulip.co\nTULIP_API_KEY='apikey.2_x'\n"
        'TULIP_API_SECRET="s=cret"\nnot a setting\n'
    )
    assert read_env_file(env_file) == {
        "TULIP_BASE_URL": "https://acme.tulip.co",
        "TULIP_API_KEY": "apikey.2_x",
        "TULIP_API_SECRET": "s=cret",
    }
    assert read_env_file(tmp_path / "missing") == {}


def test_with_no_settings_the_simulator_and_dev_secrets_are_wired():
    env = function_environment({"PATH": "/bin"}, "http://127.0.0.1:8081")
    assert env["TULIP_BASE_URL"] == "http://127.0.0.1:8081"
    assert env["TULIP_API_KEY"] == DEV_API_KEY
    assert env["WEBHOOK_AUTH"] == "standard-webhooks"
    assert env["WEBHOOK_SECRET_VALUE"] == DEV_WEBHOOK_SECRET


def test_a_real_tulip_keeps_its_settings():
    given = {
        "TULIP_BASE_URL": "https://acme.tulip.co",
        "TULIP_CREDENTIALS_SECRET": "s",
        "WEBHOOK_AUTH": "token",
        "WEBHOOK_SECRET_VALUE": "t",
    }
    assert function_environment(given, None) == given


def test_the_curl_command_signs_at_send_time():
    env = function_environment({}, "http://127.0.0.1:8081")
    command = curl_command(8080, env)
    assert command is not None
    assert command.startswith("curl -sS http://localhost:8080 $(")
    inner = command[command.index("$(") + 2 : command.index(")")]
    assert shlex.split(inner)[:3] == [".venv/bin/python", "-m", "devtools.sign"]
    assert "--curl-args" in inner and command.endswith(
        "--data-binary @devtools/example-request.json"
    )


def test_curl_commands_for_the_other_modes():
    assert "devtools.sign" not in str(curl_command(8080, {"WEBHOOK_AUTH": "none"}))
    hmac = curl_command(
        8080,
        {
            "WEBHOOK_AUTH": "hmac-sha256",
            "WEBHOOK_SECRET_VALUE": "a\nb",
            "WEBHOOK_SIGNATURE_HEADER": "X-Sig",
        },
    )
    assert hmac is not None
    assert "--secret a " in hmac and "--header X-Sig" in hmac
    assert (
        curl_command(8080, {"WEBHOOK_AUTH": "token", "WEBHOOK_SECRET": "projects/p/secrets/s"})
        is None
    )
