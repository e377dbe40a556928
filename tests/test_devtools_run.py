"""The local runner's choices: .env, defaults that never override, a real Tulip kept safe, settings
checked before anything starts, and printed commands that pass."""

from __future__ import annotations

import base64
import os
import shlex
import socket
import stat
import subprocess
import sys

import pytest
from werkzeug.datastructures import Headers

from devtools.runner.children import FUNCTION, LOOPBACK, NotReady, fixed_ports
from devtools.runner.events_front import guarded
from devtools.runner.run import (
    DEV_API_KEY,
    DEV_WEBHOOK_SECRET,
    EXAMPLE,
    Servers,
    check_settings,
    curl_command,
    function_args,
    function_environment,
    read_env_file,
    without_settings,
    write_secret,
)
from function.clients.secret_manager import SecretCache
from function.config import load_webhook_settings
from function.instance import authenticator
from function.timing import SYSTEM_CLOCK, Deadline
from tests.helpers import ROOT

SIMULATOR = "http://127.0.0.1:8081"
REAL = {"TULIP_BASE_URL": "https://acme.tulip.co", "TULIP_API_KEY": "apikey.2_x"}
REAL |= {"TULIP_API_SECRET": "s"}


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
    env, made = function_environment({"PATH": "/bin"}, SIMULATOR)
    assert env["TULIP_BASE_URL"] == SIMULATOR and env["TULIP_API_KEY"] == DEV_API_KEY
    assert env["WEBHOOK_AUTH"] == "standard-webhooks"
    assert env["WEBHOOK_SECRET_VALUE"] == DEV_WEBHOOK_SECRET and made is None


def test_a_secret_the_user_gave_is_never_replaced_by_a_default():
    mine = "whsec_" + base64.b64encode(b"my own secret, not the dev one").decode()
    env, made = function_environment({"WEBHOOK_SECRET_VALUE": mine}, SIMULATOR)
    assert (env["WEBHOOK_AUTH"], env["WEBHOOK_SECRET_VALUE"], made) == (
        "standard-webhooks",
        mine,
        None,
    )
    env, _ = function_environment({"WEBHOOK_SECRET": "projects/p/secrets/s"}, SIMULATOR)
    assert "WEBHOOK_SECRET_VALUE" not in env
    given = {"WEBHOOK_AUTH": "token", "WEBHOOK_SECRET_VALUE": "t0ken", "MAX_BODY_BYTES": "9"}
    env, _ = function_environment(given, SIMULATOR)
    assert given.items() <= env.items()


def test_a_real_tulip_never_gets_the_development_secret():
    first, made = function_environment(REAL, None)
    second, _ = function_environment(REAL, None)
    assert first["TULIP_BASE_URL"] == REAL["TULIP_BASE_URL"]
    assert made == first["WEBHOOK_SECRET_VALUE"] != DEV_WEBHOOK_SECRET
    assert made.startswith("whsec_") and len(base64.b64decode(made[6:])) == 32
    assert second["WEBHOOK_SECRET_VALUE"] != made  # made for each run
    given = {**REAL, "WEBHOOK_AUTH": "hmac-sha256", "WEBHOOK_SECRET_VALUE": "mine"}
    assert function_environment(given, None) == (given, None)


def test_a_real_tulip_open_to_the_network_must_authenticate_callers():
    unauthenticated = {**REAL, "WEBHOOK_AUTH": "none"}
    assert function_environment(unauthenticated, None)[0]["WEBHOOK_AUTH"] == "none"  # loopback
    with pytest.raises(SystemExit, match="WEBHOOK_AUTH=none would let anyone"):
        function_environment(unauthenticated, None, host="0.0.0.0")


def test_tulip_credentials_without_a_tulip_are_refused():
    with pytest.raises(SystemExit, match="TULIP_API_KEY set without TULIP_BASE_URL"):
        function_environment({"TULIP_API_KEY": "apikey.2_x", "TULIP_BASE_URL": " "}, SIMULATOR)


@pytest.mark.parametrize(
    ("given", "says"),
    [
        ({"WEBHOOK_AUTH": "token", "WEBHOOK_SECRET_VALUE": None}, "token needs a secret"),
        ({"TULIP_API_KEY": None}, "TULIP_API_KEY and TULIP_API_SECRET go together"),
        ({"TULIP_API_KEY": None, "TULIP_API_SECRET": None}, "TULIP_CREDENTIALS_SECRET is not set"),
        ({"WEBHOOK_SECRET_VALUE": "not-whsec"}, "not a Standard Webhooks secret"),
        ({"TULIP_API_KEY": "key:with-colon"}, "not a usable Tulip API token"),
        ({"TULIP_TIMEOUT_SECONDS": "soon"}, "TULIP_TIMEOUT_SECONDS"),
    ],
)
def test_bad_settings_stop_the_runner_with_the_functions_message(given, says):
    env = {**REAL, "WEBHOOK_AUTH": "standard-webhooks", "WEBHOOK_SECRET_VALUE": DEV_WEBHOOK_SECRET}
    env = {k: v for k, v in (env | given).items() if v is not None}
    with pytest.raises(SystemExit, match=says):
        check_settings(env)


@pytest.mark.processes
def test_the_runner_refuses_before_starting_anything(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("WEBHOOK_AUTH=token\n")
    result = subprocess.run(
        [sys.executable, "-m", "devtools.runner", "--env-file", str(env_file), "--port", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert result.returncode != 0
    assert "Not started: Invalid settings: WEBHOOK_AUTH=token needs a secret" in result.stderr


@pytest.mark.parametrize(
    "settings",
    [
        {"WEBHOOK_SECRET_VALUE": DEV_WEBHOOK_SECRET},
        {"WEBHOOK_AUTH": "token", "WEBHOOK_SECRET_VALUE": "t0ken\nnext"},
        {"WEBHOOK_AUTH": "hmac-sha256", "WEBHOOK_SECRET_VALUE": "hmac-key", "WEBHOOK_SIGNATURE_HEADER": "X-S"},
        {"WEBHOOK_AUTH": "token", "WEBHOOK_SECRET_VALUE": "gl-token", "WEBHOOK_TOKEN_HEADER": "X-Gitlab-Token"},
        {"WEBHOOK_AUTH": "basic", "WEBHOOK_SECRET_VALUE": "snow:s3cr3t"},
        {"WEBHOOK_AUTH": "slack", "WEBHOOK_SECRET_VALUE": "slack-signing-secret"},
        {"WEBHOOK_AUTH": "stripe", "WEBHOOK_SECRET_VALUE": "whsec_stripe"},
    ],
)  # fmt: skip
@pytest.mark.processes
def test_the_printed_command_signs_a_request_the_function_accepts(settings, tmp_path):
    """It names where the secret is, and shows none but the published development secret; the
    headers reach curl through a pipe, so no token is on a command line either."""
    env, _ = function_environment(settings, SIMULATOR)
    secret_file = write_secret(env, tmp_path)
    command = curl_command("http://localhost:8080", env, EXAMPLE, secret_file)
    assert command is not None
    assert command.endswith(f"--data-binary @{EXAMPLE}")
    value = settings["WEBHOOK_SECRET_VALUE"]
    if value == DEV_WEBHOOK_SECRET:
        assert secret_file is None
    else:
        assert secret_file is not None and stat.S_IMODE(secret_file.stat().st_mode) == 0o600
        assert secret_file.read_text() == value
        assert not any(line in command for line in value.splitlines())
    sign = command[command.index("-H @<(") + 6 : command.index(")")]
    words = shlex.split(sign)
    given = dict(w.split("=", 1) for w in words[: words.index(".venv/bin/python")])
    assert words[words.index(".venv/bin/python") :][:3] == [".venv/bin/python", "-m", "ops.sign"]
    lines = subprocess.run(
        [sys.executable, *words[words.index(".venv/bin/python") + 1 :]],
        cwd=ROOT,
        env={**without_settings(os.environ), **given},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    headers = Headers([(n, v) for n, _, v in (line.partition(": ") for line in lines)])
    caller = authenticator(
        load_webhook_settings(env), SecretCache(lambda *_: "", 0, SYSTEM_CLOCK), SYSTEM_CLOCK
    )
    caller.check(headers, (ROOT / EXAMPLE).read_bytes(), Deadline(SYSTEM_CLOCK, 5))


def test_without_authentication_the_command_is_plain_and_a_secret_manager_secret_has_none():
    assert "ops.sign" not in str(curl_command("http://localhost:8080", {"WEBHOOK_AUTH": "none"}))
    assert curl_command("http://x:1", {"WEBHOOK_AUTH": "token", "WEBHOOK_SECRET": "s"}) is None


@pytest.mark.processes
def test_a_piece_whose_port_another_server_holds_stops_the_run_naming_it(tmp_path):
    """Ready means the piece said it listens and answers there as itself, not that something
    accepts connections on its port: here something else does, and the events function cannot
    listen. The run must not go on (pushes would go to the wrong server); the error names the
    piece and gives its own words."""
    [port] = fixed_ports(1)
    env = without_settings(os.environ)
    env |= {"TULIP_BASE_URL": "http://127.0.0.1:1", "TULIP_API_KEY": "k", "TULIP_API_SECRET": "s"}
    with (
        socket.create_server(("127.0.0.1", port)),  # accepts connections, answers nothing
        (tmp_path / "output").open("w+b") as output,
    ):
        servers = Servers(lambda: None, output=output)
        try:
            with pytest.raises(NotReady) as raised:
                servers.start(
                    "The events function",
                    FUNCTION,
                    function_args(LOOPBACK, port, "link_records_push"),
                    env,
                )
        finally:
            servers.stop()
    assert str(raised.value).startswith("The events function exited with status")
    assert "in use" in str(raised.value)


@pytest.mark.processes
def test_one_port_given_to_two_pieces_is_refused_before_anything_starts():
    [port] = fixed_ports(1)
    result = subprocess.run(
        [sys.executable, "-m", "devtools.runner", "--port", str(port), "--events-port", str(port),
         "--env-file", os.devnull],
        cwd=ROOT, env=without_settings(os.environ), capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert (
        f"Port {port} is given to the webhook function (PORT) and the events function "
        "(EVENTS_PORT): give each its own"
    ) in result.stderr


def test_the_events_front_lets_in_only_a_push_with_the_token_addressed_to_it():
    """devtools/runner/events_front.py, around a stand-in for the function: what it lets through
    reaches the function, the rest is answered as Cloud Run IAM answers."""
    import werkzeug

    reached = []

    def function(environ, start_response):
        reached.append(environ["PATH_INFO"])
        start_response("204 No Content", [])
        return [b""]

    client = werkzeug.test.Client(guarded(function, "t0ken"))
    push = {"Authorization": "Bearer t0ken", "Content-Type": "application/json"}
    cases = [
        ({}, 401),
        ({**push, "Authorization": "Bearer t0ke"}, 403),
        ({**push, "Host": "evil.example:8082"}, 403),  # DNS rebinding, with the token
        ({**push, "Content-Type": "text/plain"}, 403),
        ({**push, "Origin": "https://evil.example"}, 403),
        (push, 204),
    ]
    for headers, status in cases:
        answer = client.post("/", data=b"{}", headers=headers, base_url="http://127.0.0.1:8082")
        assert answer.status_code == status, headers
    assert reached == ["/"]  # only the last
