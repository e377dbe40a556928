"""The functions the benches compare tulip-link with, served by functions-framework as it is.

- `minimal`: keep-alive `http.client` PUT, credentials in memory, no validation: the practical
  ceiling for a function on this framework.
- `naive`: what a typical hand-written function does: a new Secret Manager client and a secret
  read per request, `requests.put` per request (a new connection each time), no validation.
- `bare`: answers at once; it only imports what the others import (functions-framework,
  requests, pydantic, the Secret Manager client), the baseline for cold starts.
- `parse_only` (`devtools.bench.bodies`): reads the body whole and parses it, then answers: what
  reading a body costs any function in memory.

The first three read `TULIP_BASE_URL`; `minimal` the token from `TULIP_API_KEY`/`TULIP_API_SECRET`,
`naive` from the secret `TULIP_CREDENTIALS_SECRET` through `SECRET_MANAGER_EMULATOR_HOST`.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import threading
from typing import Any
from urllib.parse import urlsplit

import flask
import functions_framework
import grpc
import pydantic
import requests
from google.auth.credentials import AnonymousCredentials
from google.cloud import secretmanager
from google.cloud.secretmanager_v1.services.secret_manager_service.transports import (
    SecretManagerServiceGrpcTransport,
)

_TULIP = urlsplit(os.environ.get("TULIP_BASE_URL", "http://127.0.0.1:9"))
_connections = threading.local()
assert pydantic  # imported only to cost what it costs the others


@functions_framework.http
def bare(request: flask.Request) -> Any:
    """Nothing: the cold start of the framework and the libraries alone."""
    return {"status": "ok"}


@functions_framework.http
def parse_only(request: flask.Request) -> Any:
    """The body read whole and parsed, then nothing: what reading a body costs any function."""
    parsed = json.loads(request.get_data())
    return {"status": "ok", "keys": len(parsed)}


@functions_framework.http
def minimal(request: flask.Request) -> Any:
    """One keep-alive PUT per request."""
    body = request.get_json()
    token = f"{os.environ['TULIP_API_KEY']}:{os.environ['TULIP_API_SECRET']}"
    payload = json.dumps({"leftRecord": body["leftRecord"], "rightRecord": body["rightRecord"]})
    headers = {
        "Authorization": "Basic " + base64.b64encode(token.encode()).decode(),
        "Content-Type": "application/json",
    }
    path = f"/api/v3/tableLinks/{body['tableLinkId']}/link"
    for _ in range(2):  # once more on a connection the server has closed
        connection = getattr(_connections, "tulip", None)
        if connection is None:
            connection = http.client.HTTPConnection(_TULIP.hostname or "", _TULIP.port, timeout=10)
            _connections.tulip = connection
        try:
            connection.request("PUT", path, payload, headers)
            answer = connection.getresponse()
            answer.read()
            break
        except (http.client.HTTPException, OSError):
            connection.close()
            _connections.tulip = None
    else:
        return {"status": "failed"}, 502
    return ({"status": "linked"}, 200) if answer.status < 300 else ({"status": "failed"}, 502)


@functions_framework.http
def naive(request: flask.Request) -> Any:
    """A secret read with a new client, then `requests.put`, on every request."""
    body = request.get_json()
    channel = grpc.insecure_channel(os.environ["SECRET_MANAGER_EMULATOR_HOST"])
    transport = SecretManagerServiceGrpcTransport(
        channel=channel, credentials=AnonymousCredentials()
    )
    with secretmanager.SecretManagerServiceClient(transport=transport) as client:
        name = f"{os.environ['TULIP_CREDENTIALS_SECRET']}/versions/latest"
        token = client.access_secret_version(name=name).payload.data.decode()
    key, _, secret = token.partition(":")
    answer = requests.put(
        f"{_TULIP.scheme}://{_TULIP.netloc}/api/v3/tableLinks/{body['tableLinkId']}/link",
        json={"leftRecord": body["leftRecord"], "rightRecord": body["rightRecord"]},
        auth=(key, secret),
        timeout=10,
    )
    return ({"status": "linked"}, 200) if answer.ok else ({"status": "failed"}, 502)
