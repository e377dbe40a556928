"""The events function as the runner serves it: the deployed code behind a stand-in for Cloud Run
IAM.

    LOCAL_PUSH_TOKEN=... python -m devtools.runner.events_front --target T --source S --port P

In the cloud only the push subscription's account may invoke the events function: Cloud Run
checks Google's signed token before the function sees a request. Here the Pub/Sub simulator
signs each push with the run's `LOCAL_PUSH_TOKEN`, and this front lets through only a request
that carries it, addressed to this server by its loopback name and port, as JSON from no web
page (`devtools/local_only.py`); anything else is answered as Cloud Run answers (401 without a
token, 403 otherwise) and never reaches the function. It listens on 127.0.0.1 only, with
functions-framework's own server (gunicorn), as deployed.
"""

from __future__ import annotations

import argparse
import hmac
import os
from collections.abc import Callable, Iterable
from typing import Any

import functions_framework
from functions_framework._http import create_server
from werkzeug.datastructures import EnvironHeaders

from devtools.local_only import refusal

LOOPBACK = "127.0.0.1"
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def guarded(app: WSGIApp, token: str) -> WSGIApp:
    """`app`, served only to a request that carries `Authorization: Bearer <token>` and that
    `local_only.refusal` lets through."""
    expected = f"Bearer {token}".encode()

    def serve(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        headers = EnvironHeaders(environ)
        given = (headers.get("Authorization") or "").encode()
        reason = refusal(
            environ["REQUEST_METHOD"],
            headers,
            int(environ["SERVER_PORT"]),
            content_types=("application/json",),
        )
        if not given:
            status, reason = "401 Unauthorized", "only the Pub/Sub simulator's pushes get in"
        elif not hmac.compare_digest(given, expected):
            status, reason = "403 Forbidden", "only the Pub/Sub simulator's pushes get in"
        elif reason is not None:
            status = "403 Forbidden"
        else:
            return app(environ, start_response)
        body = f"{reason} (devtools/runner/events_front.py)\n".encode()
        start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]

    return serve


def main(argv: list[str] | None = None) -> None:
    """Serve `--target` of `--source` on 127.0.0.1, guarded; `LOCAL_PUSH_TOKEN` is required."""
    parser = argparse.ArgumentParser(prog="python -m devtools.runner.events_front")
    parser.add_argument("--target", required=True)
    parser.add_argument("--source", required=True)
    parser.add_argument("--port", type=int, required=True, help="0: any free port")
    args = parser.parse_args(argv)
    token = os.environ.get("LOCAL_PUSH_TOKEN")
    if not token:
        parser.error("LOCAL_PUSH_TOKEN must hold the token the Pub/Sub simulator pushes with")
    app = functions_framework.create_app(args.target, args.source)  # type: ignore[no-untyped-call]
    app.wsgi_app = guarded(app.wsgi_app, token)
    create_server(app, False).run(LOOPBACK, args.port)  # type: ignore[no-untyped-call]


if __name__ == "__main__":
    main()
