"""What every HTTP entry point does the same way: its request id, the method and content type it
takes, its body read within the limit, and its outcome answered and logged."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from typing import Literal

import flask

from function import logs
from function.edge.answers import render, response
from function.edge.log_lines import log_outcome
from function.model.errors import Failure, MethodNotAllowed, PayloadTooLarge, UnsupportedMediaType
from function.model.results import Result

_JSON_MEDIA_TYPE = re.compile(r"application/(?:[^/;\s]+\+)?json")
FORM_MEDIA_TYPE = "application/x-www-form-urlencoded"
MediaType = Literal["json", "form"]
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")


def request_id(headers: logs.HeaderGetter) -> str:
    """The platform's execution id when it gave a well-formed one, else one of ours."""
    given = headers.get("Function-Execution-Id", "")
    return given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex


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


def read_body(request: flask.Request, limit: int) -> bytes:
    """The raw body, refused past `limit` bytes whether or not a Content-Length announced it."""
    refuse_announced_size(request, limit)
    # A read may return less than asked (the body can arrive in several segments): read to EOF.
    chunks: list[bytes] = []
    size = 0
    while chunk := request.stream.read(min(64 * 1024, limit + 1 - size)):
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(limit)
    return b"".join(chunks)


def serve(request: flask.Request, work: Callable[[str], Result]) -> flask.Response:
    """`work(requestId)` inside the request's log scope; its result, or the `Failure` it raised
    (any other exception: a bug, INTERNAL, its traceback logged), answered and logged."""
    started = time.monotonic()
    rid = request_id(request.headers)
    with logs.scope(requestId=rid):
        outcome, crash = run(lambda: work(rid))
        log_outcome(outcome, started, crash=crash)
        return response(render(outcome, rid))


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
