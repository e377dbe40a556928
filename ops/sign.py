"""Sign a request the way `WEBHOOK_AUTH` expects, for integrators and local runs.

    python -m ops.sign payload.json                   # the headers, one per line
    curl -H @<(python -m ops.sign payload.json) --data-binary @payload.json URL
    python -m ops.sign --curl http://localhost:8080 payload.json   # a full curl command

The secret is read from `--secret-file` or, without it, from `WEBHOOK_SECRET_VALUE` (the first
of its lines), never from the command line, where other users of the machine could read it
(`ps`). For the same reason `--curl` and `--curl-args` refuse `token` and `basic`, whose header
is the secret itself: give curl the headers as a file, as above. The mode and headers default
to `WEBHOOK_AUTH`, `WEBHOOK_SIGNATURE_HEADER` and `WEBHOOK_TOKEN_HEADER`, as the function reads
them. The signature covers the file's exact bytes, so send them unchanged
(`--data-binary @file`). A signature with a timestamp (Standard Webhooks, Slack, Stripe) is
refused after `WEBHOOK_TOLERANCE_SECONDS`: sign when you send.
"""

from __future__ import annotations

import argparse
import base64
import os
import shlex
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

from function.auth import slack, standard_webhooks, stripe
from function.auth.authenticator import WEBHOOK_AUTH_MODES, AuthMode
from function.auth.common import secret_lines
from function.auth.hmac_sha256 import DEFAULT_SIGNATURE_HEADER, hex_digest
from function.model.errors import ConfigError


def standard_webhooks_signature(key: bytes, message_id: str, timestamp: int, body: bytes) -> str:
    """The `v1,<base64>` signature of a message."""
    digest = standard_webhooks.digest(key, message_id, str(timestamp), body)
    return "v1," + base64.b64encode(digest).decode()


def auth_mode(value: str) -> AuthMode:
    """`value` as a `WEBHOOK_AUTH` mode; `ValueError` if it is none of them."""
    for mode in WEBHOOK_AUTH_MODES:
        if value == mode:
            return mode
    raise ValueError(f"the mode must be one of: {', '.join(WEBHOOK_AUTH_MODES)}")


def signed_headers(
    mode: AuthMode,
    secret: str,
    body: bytes,
    *,
    header: str = DEFAULT_SIGNATURE_HEADER,
    token_header: str | None = None,
    now: float,
) -> dict[str, str]:
    """The headers that authenticate `body` under `mode` with `secret` (for `basic`, a
    `user:password` line; `header`: `hmac-sha256`'s; `token_header`: where `token` goes)."""
    timestamp = str(int(now))
    if mode == "standard-webhooks":
        message_id = f"msg_{uuid.uuid4().hex}"
        key = standard_webhooks.key(secret)
        return {
            "webhook-id": message_id,
            "webhook-timestamp": timestamp,
            "webhook-signature": standard_webhooks_signature(key, message_id, int(now), body),
        }
    if mode == "hmac-sha256":
        return {header: "sha256=" + hex_digest(secret.encode(), body)}
    if mode == "token":
        return {token_header or "X-Webhook-Token": secret}
    if mode == "basic":
        return {"Authorization": "Basic " + base64.b64encode(secret.encode()).decode()}
    if mode == "slack":
        return {
            "X-Slack-Request-Timestamp": timestamp,
            "X-Slack-Signature": slack.signature(secret, timestamp, body),
        }
    if mode == "stripe":
        return {"Stripe-Signature": f"t={timestamp},v1={stripe.signature(secret, timestamp, body)}"}
    return {}


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m ops.sign",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("payload", type=Path, help="the JSON file to send, byte for byte")
    parser.add_argument("--mode", default=os.environ.get("WEBHOOK_AUTH", "standard-webhooks"))
    parser.add_argument(
        "--secret-file",
        type=Path,
        help="a file holding the secret (default: the environment's WEBHOOK_SECRET_VALUE)",
    )
    parser.add_argument(
        "--header",
        default=os.environ.get("WEBHOOK_SIGNATURE_HEADER") or DEFAULT_SIGNATURE_HEADER,
        help="hmac-sha256: the signature's header (default: WEBHOOK_SIGNATURE_HEADER)",
    )
    parser.add_argument(
        "--token-header",
        default=os.environ.get("WEBHOOK_TOKEN_HEADER") or None,
        help="token: the sender's own header (default: WEBHOOK_TOKEN_HEADER, else X-Webhook-Token)",
    )
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--curl", metavar="URL", help="print a complete curl command")
    output.add_argument("--curl-args", action="store_true", help="print only curl's -H options")
    args = parser.parse_args(argv)

    try:
        mode = auth_mode(args.mode)
    except ValueError as error:
        parser.error(f"--mode: {error}")
    if args.secret_file is not None:
        secrets = secret_lines(args.secret_file.read_text())
    else:
        secrets = secret_lines(os.environ.get("WEBHOOK_SECRET_VALUE", ""))
    if mode != "none" and not secrets:
        parser.error("no secret: give --secret-file, or set WEBHOOK_SECRET_VALUE")
    if mode in ("token", "basic") and (args.curl or args.curl_args):
        parser.error(
            f"{mode}: the header is the secret itself, and would be on curl's command line: "
            "curl -H @<(python -m ops.sign FILE) ... reads it from a pipe instead"
        )
    body = args.payload.read_bytes()
    try:
        headers = signed_headers(
            mode,
            secrets[0] if secrets else "",
            body,
            header=args.header,
            token_header=args.token_header,
            now=time.time(),
        )
    except ConfigError as error:
        parser.error(error.message)
    headers = {"Content-Type": "application/json", **headers}

    if args.curl_args:
        if any(" " in f"{k}:{v}" for k, v in headers.items()):
            parser.error("a header value has a space: use --curl URL instead")
        print(" ".join(f"-H {k}:{v}" for k, v in headers.items()))
    elif args.curl:
        parts = ["curl", "-sS", "-X", "POST", args.curl]
        for name, value in headers.items():
            parts += ["-H", f"{name}: {value}"]
        parts += ["--data-binary", f"@{args.payload}"]
        print(shlex.join(parts))
    else:
        for name, value in headers.items():
            print(f"{name}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
