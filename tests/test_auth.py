"""Inbound authentication (WEBHOOK_AUTH), through the real app unless a unit says otherwise.

No test here registers a Tulip answer for a refused request: `responses` would fail any call.
"""

from __future__ import annotations

import base64
import json
import os
import shlex
import socket
import subprocess
import sys
import time

import grpc
import pytest
from werkzeug.datastructures import Headers

from function.auth.hmac_sha256 import HmacSha256, hex_digest
from function.auth.standard_webhooks import StandardWebhooks
from function.auth.standard_webhooks import key as standard_webhooks_key
from function.model.errors import Unauthenticated
from ops.sign import signed_headers, standard_webhooks_signature
from tests import processes
from tests.helpers import ROOT, link_url, log_lines, push_envelope, request_body

# Standard Webhooks' published test vector.
SW_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SW_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SW_TIMESTAMP = 1614265330
SW_BODY = b'{"test": 2432232314}'
SW_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
# GitHub's published example.
GH_SECRET = "It's a Secret to Everybody"
GH_BODY = b"Hello, World!"
GH_SIGNATURE = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"

OTHER_SECRET = "whsec_" + base64.b64encode(b"another key of thirty-two bytes!").decode()


def test_the_standard_webhooks_vector():
    key = standard_webhooks_key(SW_SECRET)
    assert standard_webhooks_signature(key, SW_ID, SW_TIMESTAMP, SW_BODY) == SW_SIGNATURE
    headers = Headers(
        {
            "webhook-id": SW_ID,
            "webhook-timestamp": str(SW_TIMESTAMP),
            "webhook-signature": SW_SIGNATURE,
        }
    )
    StandardWebhooks(tolerance=300).read(headers, now=SW_TIMESTAMP + 10)(SW_BODY, [SW_SECRET])


def test_the_github_vector():
    assert "sha256=" + hex_digest(GH_SECRET.encode(), GH_BODY) == GH_SIGNATURE
    headers = Headers({"X-Hub-Signature-256": GH_SIGNATURE})
    verify = HmacSha256("X-Hub-Signature-256").read(headers, now=0)
    verify(GH_BODY, [GH_SECRET])
    with pytest.raises(Unauthenticated):
        verify(GH_BODY + b" ", [GH_SECRET])


# --- standard-webhooks through the app ---------------------------------------------------------


@pytest.fixture
def standard(env, clock):
    env.set(WEBHOOK_AUTH="standard-webhooks", WEBHOOK_SECRET_VALUE=SW_SECRET)
    clock.wall_now = SW_TIMESTAMP + 60
    return clock


def sw_headers(
    body: bytes,
    secret: str = SW_SECRET,
    *,
    timestamp: int = SW_TIMESTAMP,
    extra: dict[str, str | None] | None = None,
):
    key = standard_webhooks_key(secret)
    headers: dict[str, str | None] = {
        "webhook-id": SW_ID,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": standard_webhooks_signature(key, SW_ID, timestamp, body),
    }
    headers.update(extra or {})
    return {k: v for k, v in headers.items() if v is not None}


def post(client, body: bytes, headers):
    return client.post("/", data=body, headers=headers, content_type="application/json")


def assert_refused(response, capsys=None, reason: str | None = None):
    assert response.status_code == 401
    assert response.json == {
        "errorCode": "UNAUTHENTICATED",
        "message": "The request could not be authenticated",
        "requestId": response.headers["X-Request-Id"],
    }
    if capsys is not None:
        [line] = log_lines(capsys.readouterr().out)
        assert line["severity"] == "WARNING" and line["event"] == "link.rejected"
        if reason:
            assert reason in line["reason"]


def test_a_signed_request_links(client, tulip, standard):
    tulip.put(link_url(), status=204)
    body = json.dumps(request_body()).encode()
    assert post(client, body, sw_headers(body)).status_code == 200


def test_the_published_vector_passes_the_signature_and_reaches_validation(client, standard):
    # Signed but not a link request: authenticated, then refused for its fields.
    response = post(
        client,
        SW_BODY,
        {
            "webhook-id": SW_ID,
            "webhook-timestamp": str(SW_TIMESTAMP),
            "webhook-signature": SW_SIGNATURE,
        },
    )
    assert response.status_code == 422


def test_a_tampered_body_is_refused(client, standard, capsys):
    body = json.dumps(request_body()).encode()
    response = post(client, body.replace(b"WO-1001", b"WO-6666"), sw_headers(body))
    assert_refused(response, capsys, "no signature matches")


def test_a_mismatch_logs_the_usual_mistakes_never_the_expected_signature(client, standard, capsys):
    body = json.dumps(request_body()).encode() + b"\n"
    headers = sw_headers(body)
    response = post(client, body.rstrip(b"\n"), headers)  # what curl -d does to a file
    assert response.status_code == 401
    [line] = log_lines(capsys.readouterr().out)
    assert "--data-binary" in line["hint"] and "hint" not in response.json
    expected = sw_headers(body.rstrip(b"\n"))["webhook-signature"]
    assert expected not in json.dumps(line) and expected[3:] not in json.dumps(line)


@pytest.mark.parametrize("offset", [-301, 301, -10_000, 10**6])
def test_stale_and_future_timestamps_are_refused(client, standard, offset):
    body = json.dumps(request_body()).encode()
    timestamp = int(standard.wall_now) + offset
    assert_refused(post(client, body, sw_headers(body, timestamp=timestamp)))


@pytest.mark.parametrize("offset", [-299, 299])
def test_timestamps_within_the_tolerance_pass(client, tulip, standard, offset):
    tulip.put(link_url(), status=204)
    body = json.dumps(request_body()).encode()
    timestamp = int(standard.wall_now) + offset
    assert post(client, body, sw_headers(body, timestamp=timestamp)).status_code == 200


def test_the_tolerance_is_a_setting(client, standard, env):
    env.set(WEBHOOK_TOLERANCE_SECONDS="30")
    body = json.dumps(request_body()).encode()
    assert_refused(post(client, body, sw_headers(body, timestamp=int(standard.wall_now) - 31)))


@pytest.mark.parametrize(
    "change",
    [
        {"webhook-id": None},
        {"webhook-timestamp": None},
        {"webhook-signature": None},
        {"webhook-timestamp": "1614265330.5"},
        {"webhook-timestamp": "-1614265330"},
        {"webhook-timestamp": "soon"},
        {"webhook-signature": "v1,not*base64"},
        {"webhook-signature": "garbage"},
        {"webhook-signature": "v1,"},
        {"webhook-signature": ""},
        {"webhook-signature": "v2,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="},
        {"webhook-signature": "v1a,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="},
        {"svix-id": "msg_other"},
    ],
)
def test_missing_malformed_or_conflicting_headers_are_refused(client, standard, change):
    body = SW_BODY
    headers = sw_headers(body, extra=change)
    assert_refused(post(client, body, headers))


def test_one_garbled_entry_spoils_a_signature_list(client, standard):
    body = json.dumps(request_body()).encode()
    good = sw_headers(body)["webhook-signature"]
    assert_refused(post(client, body, sw_headers(body, extra={"webhook-signature": f"{good} v1"})))


def test_a_list_with_other_versions_and_one_good_v1_passes(client, tulip, standard):
    tulip.put(link_url(), status=204)
    body = json.dumps(request_body()).encode()
    good = sw_headers(body)["webhook-signature"]
    signature = f"v1a,c29tZXRoaW5nIGVsc2U= v1,AAAA{good[7:]} {good}"
    headers = sw_headers(body, extra={"webhook-signature": signature})
    assert post(client, body, headers).status_code == 200


def test_duplicated_headers_are_refused(client, standard):
    body = json.dumps(request_body()).encode()
    headers = Headers(sw_headers(body))
    headers.add("webhook-timestamp", str(SW_TIMESTAMP))
    assert_refused(post(client, body, headers))


def test_svix_header_names_pass(client, tulip, standard):
    tulip.put(link_url(), status=204)
    tulip.put(link_url(), status=204)
    body = json.dumps(request_body()).encode()
    svix = {k.replace("webhook-", "svix-"): v for k, v in sw_headers(body).items()}
    assert post(client, body, svix).status_code == 200
    both = {**svix, **sw_headers(body)}  # same values under both names
    assert post(client, body, both).status_code == 200


def test_either_of_two_secrets_verifies_during_rotation(client, tulip, standard, env):
    env.set(WEBHOOK_SECRET_VALUE=f"{SW_SECRET}\n\n  {OTHER_SECRET}  \n")
    tulip.put(link_url(), status=204)
    tulip.put(link_url(), status=204)
    body = json.dumps(request_body()).encode()
    assert post(client, body, sw_headers(body, SW_SECRET)).status_code == 200
    assert post(client, body, sw_headers(body, OTHER_SECRET)).status_code == 200
    third = "whsec_" + base64.b64encode(b"x" * 32).decode()
    assert_refused(post(client, body, sw_headers(body, third)))


def test_an_unsigned_push_envelope_is_refused(client, standard):
    body = json.dumps(push_envelope(request_body())).encode()
    assert_refused(post(client, body, {}))


def test_a_signed_push_envelope_is_refused_naming_the_push_entry_point(client, standard):
    """A push envelope is not a webhook: it belongs to link_records_push (Cloud Run IAM
    authenticates its caller there), whoever signs it here."""
    body = json.dumps(push_envelope(request_body())).encode()
    response = post(client, body, sw_headers(body))
    assert (response.status_code, response.json["errorCode"]) == (400, "MALFORMED_REQUEST")
    assert "link_records_push" in response.json["message"]


def test_method_and_content_type_come_before_the_signature(client, standard):
    assert client.get("/").status_code == 405
    assert client.post("/", data=b"x", content_type="text/plain").status_code == 415


def test_the_size_cap_comes_before_the_signature(client, standard, env):
    env.set(MAX_BODY_BYTES="10")
    assert post(client, b"{" * 20, {}).status_code == 413


def test_the_signature_comes_before_parsing(client, standard):
    assert_refused(post(client, b"not even json", {}))


def test_nothing_secret_reaches_the_output(client, standard, capfd):
    body = json.dumps(request_body()).encode()
    headers = sw_headers(body)
    post(client, body.replace(b"SN-1", b"SN-2"), headers)
    out, err = capfd.readouterr()
    for secret in (SW_SECRET, SW_SECRET[6:], headers["webhook-signature"][3:]):
        assert secret not in out and secret not in err


# --- hmac-sha256 -------------------------------------------------------------------------------


@pytest.fixture
def hmac_mode(env):
    env.set(WEBHOOK_AUTH="hmac-sha256", WEBHOOK_SECRET_VALUE=GH_SECRET)


def gh_signature(body: bytes) -> str:
    return hex_digest(GH_SECRET.encode(), body)


@pytest.mark.parametrize(
    "encode",
    [
        lambda hexdigest: f"sha256={hexdigest}",
        lambda hexdigest: hexdigest,
        lambda hexdigest: hexdigest.upper(),
        lambda hexdigest: base64.b64encode(bytes.fromhex(hexdigest)).decode(),
        lambda hexdigest: "sha256=" + base64.b64encode(bytes.fromhex(hexdigest)).decode(),
    ],
)
def test_hmac_signatures_in_hex_or_base64(client, tulip, hmac_mode, encode):
    tulip.put(link_url(), status=204)
    body = json.dumps(request_body()).encode()
    response = post(client, body, {"X-Hub-Signature-256": encode(gh_signature(body))})
    assert response.status_code == 200


@pytest.mark.parametrize(
    "value", ["", "sha256=", "sha256=zz", "md5=abc", "sha256=" + "0" * 64, "sha256=" + "a" * 63]
)
def test_bad_hmac_signatures_are_refused(client, hmac_mode, value):
    body = json.dumps(request_body()).encode()
    assert_refused(post(client, body, {"X-Hub-Signature-256": value}))


def test_the_hmac_header_name_is_a_setting(client, tulip, hmac_mode, env):
    env.set(WEBHOOK_SIGNATURE_HEADER="X-Shopify-Hmac-Sha256")
    tulip.put(link_url(), status=204)
    body = json.dumps(request_body()).encode()
    digest = base64.b64encode(bytes.fromhex(gh_signature(body))).decode()
    assert_refused(post(client, body, {"X-Hub-Signature-256": f"sha256={gh_signature(body)}"}))
    assert post(client, body, {"X-Shopify-Hmac-Sha256": digest}).status_code == 200


def test_a_duplicated_hmac_header_is_refused(client, hmac_mode):
    body = json.dumps(request_body()).encode()
    headers = Headers([("X-Hub-Signature-256", gh_signature(body))] * 2)
    assert_refused(post(client, body, headers))


# --- token -------------------------------------------------------------------------------------


@pytest.fixture
def token_mode(env):
    env.set(WEBHOOK_AUTH="token", WEBHOOK_SECRET_VALUE="old token with spaces\nnew-token")


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Bearer new-token"},
        {"Authorization": "bearer old token with spaces"},
        {"X-Webhook-Token": "new-token"},
        {"Authorization": "Bearer new-token", "X-Webhook-Token": "new-token"},
    ],
)
def test_tokens_pass(client, tulip, token_mode, headers):
    tulip.put(link_url(), status=204)
    assert post(client, json.dumps(request_body()).encode(), headers).status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": "Basic bmV3LXRva2Vu"},
        {"Authorization": "new-token"},
        {"Authorization": "Bearer new-token", "X-Webhook-Token": "old token with spaces"},
        {"X-Webhook-Token": "new-token-and-more"},
    ],
)
def test_bad_tokens_are_refused(client, token_mode, headers):
    assert_refused(post(client, json.dumps(request_body()).encode(), headers))


# --- settings and the secret's source ----------------------------------------------------------


@pytest.mark.parametrize(
    ("variables", "named"),
    [
        ({"WEBHOOK_AUTH": "hmac"}, "WEBHOOK_AUTH"),
        ({"WEBHOOK_AUTH": "standard-webhooks"}, "WEBHOOK_SECRET"),
        ({"WEBHOOK_AUTH": "token", "WEBHOOK_SECRET": "bare-id"}, "GOOGLE_CLOUD_PROJECT"),
        (
            {
                "WEBHOOK_AUTH": "hmac-sha256",
                "WEBHOOK_SECRET_VALUE": "s",
                "WEBHOOK_TOLERANCE_SECONDS": "0",
            },
            "WEBHOOK_TOLERANCE_SECONDS",
        ),
        (
            {
                "WEBHOOK_AUTH": "hmac-sha256",
                "WEBHOOK_SECRET_VALUE": "s",
                "WEBHOOK_SIGNATURE_HEADER": "Bad Header",
            },
            "WEBHOOK_SIGNATURE_HEADER",
        ),
    ],
)
def test_bad_auth_settings_refuse_every_request(client, env, variables, named):
    env.set(**variables)
    response = post(client, b"{}", {})
    assert response.status_code == 500
    assert response.json["errorCode"] == "MISCONFIGURED" and named in response.json["message"]


def test_a_secret_that_is_not_whsec_is_misconfigured_without_echo(client, env, standard):
    env.set(WEBHOOK_SECRET_VALUE="whsec_not*base64!")
    # Well-formed headers (a request without them is refused before the secret is read).
    response = post(client, SW_BODY, sw_headers(SW_BODY))
    assert response.status_code == 500
    assert "not*base64" not in response.get_data(as_text=True)


def test_the_secret_from_secret_manager(client, tulip, env, clock, secret_manager):
    name = "projects/p/secrets/webhook/versions/latest"
    env.set(
        WEBHOOK_AUTH="standard-webhooks",
        WEBHOOK_SECRET="projects/p/secrets/webhook",
        SECRET_MANAGER_EMULATOR_HOST=secret_manager.host,
    )
    secret_manager.put(name, SW_SECRET + "\n")
    clock.wall_now = SW_TIMESTAMP
    tulip.put(link_url(), status=204)
    tulip.put(link_url(), status=204)
    body = json.dumps(request_body()).encode()
    assert post(client, body, sw_headers(body)).status_code == 200
    assert post(client, body, sw_headers(body)).status_code == 200
    assert secret_manager.calls == [name]  # cached like the Tulip token


def test_secret_manager_failing_for_the_webhook_secret_is_503(client, env, secret_manager):
    env.set(
        WEBHOOK_AUTH="token",
        WEBHOOK_SECRET="projects/p/secrets/webhook",
        SECRET_MANAGER_EMULATOR_HOST=secret_manager.host,
    )
    secret_manager.failures = [grpc.StatusCode.PERMISSION_DENIED]
    response = post(client, b"{}", {"X-Webhook-Token": "x"})
    assert response.status_code == 503
    assert response.json["errorCode"] == "CREDENTIALS_UNAVAILABLE"


# --- the signing tool --------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["standard-webhooks", "hmac-sha256", "token"])
def test_signed_headers_from_the_tool_pass(client, tulip, env, clock, mode):
    secret = SW_SECRET if mode == "standard-webhooks" else "tool-secret"
    env.set(WEBHOOK_AUTH=mode, WEBHOOK_SECRET_VALUE=secret)
    tulip.put(link_url(), status=204)
    body = json.dumps(request_body()).encode()
    headers = signed_headers(mode, secret, body, now=clock.wall_now)
    assert post(client, body, headers).status_code == 200


@pytest.mark.processes
def test_the_tool_prints_a_curl_command_and_curl_args(tmp_path):
    payload = tmp_path / "payload file.json"
    payload.write_bytes(json.dumps(request_body()).encode())
    secret = tmp_path / "secret"
    secret.write_text(SW_SECRET + "\n")
    run = [sys.executable, "-m", "ops.sign", "--mode", "standard-webhooks"]
    run += ["--secret-file", str(secret)]
    curl = subprocess.run(
        [*run, "--curl", "http://localhost:8080", str(payload)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    words = shlex.split(curl)
    assert words[:5] == ["curl", "-sS", "-X", "POST", "http://localhost:8080"]
    assert words[-2:] == ["--data-binary", f"@{payload}"]
    assert any(w.startswith("webhook-signature: v1,") for w in words)
    args = subprocess.run(
        [*run, "--curl-args", str(payload)], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    assert args[0] == "-H" and "webhook-signature:v1," in " ".join(args)
    assert all(" " not in word for word in args)
    assert SW_SECRET not in curl + " ".join(args)


@pytest.mark.processes
@pytest.mark.parametrize("mode", ["token", "basic"])
def test_the_tool_keeps_a_secret_that_is_the_header_off_curls_command_line(tmp_path, mode):
    payload = tmp_path / "payload.json"
    payload.write_bytes(json.dumps(request_body()).encode())
    env = {**os.environ, "WEBHOOK_SECRET_VALUE": "user:s3cr3t-value"}
    run = [sys.executable, "-m", "ops.sign", "--mode", mode, str(payload)]
    for output in (["--curl", "http://localhost:8080"], ["--curl-args"]):
        refused = subprocess.run(
            [*run, *output], cwd=ROOT, env=env, capture_output=True, text=True, check=False
        )
        assert refused.returncode == 2 and "curl -H @<(" in refused.stderr
        assert "s3cr3t" not in refused.stdout + refused.stderr
    lines = subprocess.run(run, cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    assert lines.stdout.startswith("Content-Type: application/json\n")  # curl's -H @file form


# --- a header sent twice, over a real socket ---------------------------------------------------

TWICE_SECRET = "whsec_" + base64.b64encode(b"sent twice over a real socket!!!").decode()


def send_raw(port: int, headers: list[tuple[str, str]], body: bytes) -> int:
    """POST with exactly these header lines (repeats included), as a sender's bytes would."""
    lines = [b"POST / HTTP/1.1", b"Host: 127.0.0.1", b"Connection: close"]
    lines += [f"{name}: {value}".encode() for name, value in headers]
    lines += [f"Content-Length: {len(body)}".encode(), b"", b""]
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        connection.sendall(b"\r\n".join(lines) + body)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    return int(answer.split(b" ", 2)[1])


@pytest.mark.processes
@pytest.mark.parametrize(
    ("mode", "repeated"),
    [
        ("standard-webhooks", "webhook-id"),
        ("standard-webhooks", "webhook-timestamp"),
        ("standard-webhooks", "webhook-signature"),
        ("hmac-sha256", "X-Hub-Signature-256"),
    ],
)
def test_a_header_sent_twice_is_refused_as_repeated(mode, repeated):
    # gunicorn joins the two lines into one value before the function sees it: the rule must
    # still recognise them (a Werkzeug test client would not send two lines at all).
    body = json.dumps(request_body()).encode()
    settings = {
        "TULIP_BASE_URL": "https://acme.tulip.co",
        "TULIP_API_KEY": "apikey.2_x",
        "TULIP_API_SECRET": "s",
        "WEBHOOK_AUTH": mode,
        "WEBHOOK_SECRET_VALUE": TWICE_SECRET,
    }
    signed = signed_headers(mode, TWICE_SECRET, body, now=time.time())
    headers = [("Content-Type", "application/json"), *signed.items(), (repeated, signed[repeated])]
    with processes.function(settings) as served:
        served.wait_until_ready()
        assert send_raw(served.port, headers, body) == 401
        processes.until(lambda: any("link.rejected" in line for line in served.lines), "the log")
    [line] = [json.loads(x) for x in served.lines if "link.rejected" in x]
    assert line["reason"] == f"{repeated} is given more than once (a comma where none belongs)"
