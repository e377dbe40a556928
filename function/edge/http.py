"""What every HTTP entry point does the same way: its request id, the method and content type it
takes, its body read within the limit and the deadline, and its outcome answered and logged.

A body is read only once the caller has shown its credentials, and only until the request's
deadline (under gunicorn, functions-framework's server as deployed, each read of the socket
waits at most what is left of it). An answer given before the body was read (a refusal) is sent
at once; then what is left of the body is read and dropped for a moment (`LINGER_SECONDS`, at
most `LINGER_BYTES`), since a sender still sending it would otherwise have its connection reset
and lose the answer, and past that the connection is shut: a caller that announces a large body
and sends it slowly, or not at all, holds no thread.
"""

from __future__ import annotations

import contextlib
import re
import socket
import time
import uuid
from collections.abc import Callable
from typing import Literal

import flask
from werkzeug.exceptions import ClientDisconnected

from function import logs
from function.edge.answers import render, response
from function.edge.log_lines import log_outcome
from function.model.errors import (
    BodyTooSlow,
    Failure,
    MalformedRequest,
    MethodNotAllowed,
    PayloadTooLarge,
    UnsupportedMediaType,
)
from function.model.results import Result
from function.timing import Deadline

_JSON_MEDIA_TYPE = re.compile(r"application/(?:[^/;\s]+\+)?json")
FORM_MEDIA_TYPE = "application/x-www-form-urlencoded"
MediaType = Literal["json", "form"]
_EXECUTION_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
_BODY_READ = "tulip_link.body_read"  # set in the WSGI environment once the body was read whole
LINGER_SECONDS = 2.0
LINGER_BYTES = 1024 * 1024


def new_request_id() -> str:
    """A request id, always ours: a caller that chose it could pass for an earlier request."""
    return uuid.uuid4().hex


def execution_id(headers: logs.HeaderGetter) -> str | None:
    """The platform's `Function-Execution-Id`, when the request carries a well-formed one (a
    caller can send it too: it is logged beside our id, never in its place)."""
    given = headers.get("Function-Execution-Id", "")
    return given if _EXECUTION_ID.fullmatch(given) else None


def check_post(request: flask.Request, *, forms: bool) -> MediaType:
    """`MethodNotAllowed` unless POST; the body's media type, `UnsupportedMediaType` unless it is
    declared JSON (or, with `forms`, an HTML form)."""
    if request.method != "POST":
        raise MethodNotAllowed(f"Use POST, not {request.method}")
    if _JSON_MEDIA_TYPE.fullmatch(request.mimetype or ""):
        return "json"
    if forms and request.mimetype == FORM_MEDIA_TYPE:
        return "form"
    also = f", or as a form ({FORM_MEDIA_TYPE})" if forms else ""
    raise UnsupportedMediaType(f"Send the body as JSON, with Content-Type: application/json{also}")


def refuse_announced_size(request: flask.Request, limit: int) -> None:
    """`PayloadTooLarge` for a body its Content-Length announces over `limit`: before anything
    is read."""
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(limit)


def read_body(request: flask.Request, limit: int, deadline: Deadline) -> bytes:
    """The raw body, refused past `limit` bytes whether or not a Content-Length announced it;
    `BodyTooSlow` when it has not arrived by `deadline`."""
    refuse_announced_size(request, limit)
    sock = _client_socket(request)
    # A read may return less than asked (the body can arrive in several segments): read to EOF.
    chunks: list[bytes] = []
    size = 0
    try:
        while True:
            if sock is not None:
                if deadline.remaining() <= 0:
                    raise BodyTooSlow(size)
                sock.settimeout(deadline.remaining())
            chunk = request.stream.read(min(64 * 1024, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(limit)
    except (OSError, ClientDisconnected):
        # The socket's wait ran out, or the caller closed its side before the body's end.
        if sock is not None and deadline.remaining() <= 0:
            raise BodyTooSlow(size) from None
        raise MalformedRequest("The body ended before the length it announced") from None
    finally:
        if sock is not None:
            sock.settimeout(None)  # as gunicorn keeps it between reads
    request.environ[_BODY_READ] = True
    return b"".join(chunks)


def _client_socket(request: flask.Request) -> socket.socket | None:
    """The caller's socket under gunicorn; None under any other server (the tests' client)."""
    given = request.environ.get("gunicorn.socket")
    return given if isinstance(given, socket.socket) else None


def _release(request: flask.Request) -> None:
    """After an answer given before the body was read whole: read what is left of it within
    `LINGER_SECONDS` and `LINGER_BYTES`, or shut the connection."""
    sock = _client_socket(request)
    if sock is None or request.environ.get(_BODY_READ):
        return
    announced = request.content_length
    if announced is None or announced <= LINGER_BYTES:
        ends = time.monotonic() + LINGER_SECONDS
        read = 0
        with contextlib.suppress(OSError, ClientDisconnected):
            while read <= LINGER_BYTES and time.monotonic() < ends:
                sock.settimeout(max(0.001, ends - time.monotonic()))
                chunk = request.stream.read(64 * 1024)
                if not chunk:
                    sock.settimeout(None)
                    return  # all of it read: the connection may serve the next request
                read += len(chunk)
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)  # the answer, already written, goes out first


def serve(request: flask.Request, work: Callable[[str], Result]) -> flask.Response:
    """`work(requestId)` inside the request's log scope; its result, or the `Failure` it raised
    (any other exception: a bug, INTERNAL, its traceback logged), answered and logged."""
    started = time.monotonic()
    rid = new_request_id()
    with logs.scope(requestId=rid, executionId=execution_id(request.headers)):
        outcome, crash = run(lambda: work(rid))
        log_outcome(outcome, started, crash=crash)
        answer = response(render(outcome, rid))
    # Once the answer is written (functions-framework reads no body for a streamed answer).
    answer.call_on_close(lambda: _release(request))
    return answer


def run(work: Callable[[], Result]) -> tuple[Result | Failure, BaseException | None]:
    """What `work` came to: its result, or the `Failure` it raised; a bug is INTERNAL, with the
    exception for the log line's traceback."""
    try:
        return work(), None
    except Failure as failure:
        return failure, None
    except Exception as error:  # noqa: BLE001 - the edge: any bug becomes INTERNAL
        # The body says nothing about it; the log line holds the traceback.
        return Failure("Internal error; the log line with this requestId has the details"), error
