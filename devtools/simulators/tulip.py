"""A local stand-in for the part of Tulip's Tables API that tulip-link calls.

    python -m devtools.simulators.tulip [--port 8081] [--seed devtools/simulators/seed.json]

The API as Tulip documents it (its "Link records" page on support.tulip.co; docs/api.md, "How
Tulip is called", says what we rely on), with or without the `/w/{workspace}` segment:

- `PUT /api/v3/tableLinks/{id}/link` and `.../unlink` with `{"leftRecord", "rightRecord"}`:
  204 when done.
- `GET /api/v3/tableLinks/{id}` ("link info fetched", 200): exactly the fields Tulip's API
  reference lists for it, and no other: `id`, `createdAt`, `createdBy`, `updatedAt`, `updatedBy`,
  `deletedAt`, `deletedBy`, `leftTableId`, `leftTableColumnId`, `rightTableId`,
  `rightTableColumnId` (`TABLE_LINK_FIELDS`). No relationship type and no links: those are the
  simulator's own state, at `/_sim/state`. A seed entry may mark its table link deleted
  (`deletedAt`, `deletedBy`): the GET still answers 200, with `deletedAt` set.
- HTTP Basic auth against the seeded credentials: 401 without or with unknown ones, 403 for a
  token without the `tables:write` scope (for PUT). 400 for a body that is not
  `{"leftRecord": string, "rightRecord": string}`; 404 for an unknown table link or record.
  Errors are `{"errorCode", "errorUniqueID", "details"}`.

What Tulip does in a few cases is not documented; this is our best reading, and what the
simulator does:

- Linking a pair that is already linked, or unlinking a pair that is not, is a 204 (the calls
  are idempotent).
- A relationship's cardinality is enforced, by its `relationshipType` (Tulip's own names, as
  `POST /tableLinks` takes them): in `one-to-many` a right record has at most one left record,
  in `many-to-one` a left record has at most one right record, in `one-to-one` both; linking
  into a taken slot is 409 `LINK_CARDINALITY_VIOLATION` (never a silent move).
- Linking or unlinking through a deleted table link is 422 `TABLE_LINK_DELETED`: Tulip documents
  no answer for it, and 422 is its documented "could not be processed" for this call. (Were it
  404, the function would retry it, as a record that may exist later, until it dead-letters.)

Switches for tests and demos (JSON bodies, answered with the new setting):

- `POST /_sim/faults {"status": 503, "count": 2, "retryAfter": 1}`: the next 2 API calls answer
  503 (with `Retry-After: 1` when given), in Tulip's JSON error shape, or with `"body": "html"`
  (a proxy's error page) or `"empty"`; `"location"` adds a `Location` header (for a 3xx).
  `{"delaySeconds": 3}` delays the next call, `{"drop": true}` closes its connection without an
  answer, `{"trickleSeconds": 10}` answers 204 one byte at a time over 10 s.
- `POST /_sim/rate-limit {"table": "SerialNumbers", "limit": 2, "windowSeconds": 60,
  "retryAfter": true}`: calls touching that table beyond `limit` per window answer 429, with or
  without `Retry-After`.
- `POST /_sim/faults/clear`: Tulip recovers: the faults not yet spent are dropped, the links kept.
- `POST /_sim/reset`: back to the seed, faults and limits cleared.

What it holds: `GET /_sim/state` (JSON: the tables, the table links with their links,
`faultsPending`, the calls the faults set will still fail, and `log`, the last 1000 API calls
with their answers, faults included) and `GET /` (an HTML page).

It answers only to its loopback name and port, and takes a PUT or a switch only as JSON from no
page but its own (`devtools/local_only.py`); anything else is 403 `LOCAL_ONLY`, changing nothing.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import html
import json
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal

from devtools.local_only import refusal

DEFAULT_SEED = Path(__file__).with_name("seed.json")
_API = re.compile(
    r"/api/v3(?:/w/(?P<workspace>[^/]+))?/tableLinks/(?P<link>[^/]+)(?:/(?P<action>link|unlink))?"
)
LOG_LIMIT = 1000  # the most recent API calls `log` keeps
JSON = ("application/json",)  # what its API and its switches take
# Tulip's API reference: the fields of `GET /tableLinks/{tableLinkId}`, all of them.
TABLE_LINK_FIELDS = (
    "id", "createdAt", "createdBy", "updatedAt", "updatedBy", "deletedAt", "deletedBy",
    "leftTableId", "leftTableColumnId", "rightTableId", "rightTableColumnId",
)  # fmt: skip
RELATIONSHIP_TYPES = ("one-to-one", "one-to-many", "many-to-one", "many-to-many")
SEEDED_AT = "2026-09-01T08:00:00.000Z"  # when the seed's table links were made, as Tulip says it
SEEDED_BY = "user_simulator"
_ONE_LEFT = {"one-to-many", "one-to-one"}  # a right record has at most one left record
_ONE_RIGHT = {"many-to-one", "one-to-one"}  # a left record has at most one right record


BodyKind = Literal["json", "html", "empty"]


class ApiError(Exception):
    """An answer in Tulip's error shape (or, for injected faults, an HTML or empty body)."""

    def __init__(
        self,
        status: int,
        code: str,
        details: str,
        headers: dict[str, str] | None = None,
        body: BodyKind = "json",
    ):
        super().__init__(details)
        self.status, self.code, self.details = status, code, details
        self.headers = headers or {}
        self.body = body


class Dropped(Exception):
    """Close the connection without answering (an injected fault)."""


class Trickle(Exception):
    """Answer 204, one byte at a time over `seconds` (an injected fault)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(seconds)
        self.seconds = seconds


@dataclass
class Fault:
    status: int | None = None
    delay: float = 0.0
    retry_after: int | None = None
    count: int = 0
    body: BodyKind = "json"
    location: str | None = None
    drop: bool = False
    trickle: float = 0.0


@dataclass
class RateLimit:
    limit: int
    window: float
    retry_after: bool
    calls: list[float] = field(default_factory=list)


class TulipSimulator:
    """The state: tables, table links with their links, credentials, faults. Thread-safe."""

    def __init__(self, seed: dict[str, Any], clock: Callable[[], float] = time.monotonic) -> None:
        self._seed = seed
        self._clock = clock
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            seed = json.loads(json.dumps(self._seed))
            self.credentials = {
                (c["apiKey"], c["apiSecret"]): set(c["scopes"]) for c in seed["credentials"]
            }
            self.tables = {
                name: {"label": t["label"], "records": list(t["records"])}
                for name, t in seed["tables"].items()
            }
            self.table_links = {}
            for link_id, link in seed["tableLinks"].items():
                if link["relationshipType"] not in RELATIONSHIP_TYPES:
                    raise ValueError(
                        f"{link_id}: relationshipType must be one of {RELATIONSHIP_TYPES}"
                    )
                self.table_links[link_id] = {
                    "leftTable": link["leftTable"],
                    "rightTable": link["rightTable"],
                    "relationshipType": link["relationshipType"],
                    "links": [tuple(pair) for pair in link.get("links", [])],
                    "deletedAt": link.get("deletedAt"),
                    "deletedBy": link.get("deletedBy"),
                }
            self.faults: list[Fault] = []
            self.rate_limits: dict[str, RateLimit] = {}
            self.calls = 0
            self.log: list[dict[str, Any]] = []

    # --- switches ---

    def add_fault(self, spec: dict[str, Any]) -> dict[str, Any]:
        body = spec.get("body", "json")
        if body not in ("json", "html", "empty"):
            raise ValueError("body must be json, html or empty")
        fault = Fault(
            status=spec.get("status"),
            delay=float(spec.get("delaySeconds", 0)),
            retry_after=spec.get("retryAfter"),
            count=int(spec.get("count", 1)),
            body=body,
            location=spec.get("location"),
            drop=bool(spec.get("drop", False)),
            trickle=float(spec.get("trickleSeconds", 0)),
        )
        with self._lock:
            self.faults.append(fault)
        return {"status": fault.status, "delaySeconds": fault.delay, "count": fault.count}

    def clear_faults(self) -> dict[str, Any]:
        """Drop every fault not yet spent: Tulip answers again."""
        with self._lock:
            dropped = sum(fault.count for fault in self.faults)
            self.faults.clear()
        return {"cleared": dropped}

    def set_rate_limit(self, spec: dict[str, Any]) -> dict[str, Any]:
        table = spec["table"]
        if table not in self.tables:
            raise ApiError(404, "TABLE_NOT_FOUND", f"no table {table}")
        limit = RateLimit(
            int(spec["limit"]),
            float(spec.get("windowSeconds", 60)),
            bool(spec.get("retryAfter", True)),
        )
        with self._lock:
            self.rate_limits[table] = limit
        return {
            "table": table,
            "limit": limit.limit,
            "windowSeconds": limit.window,
            "retryAfter": limit.retry_after,
        }

    # --- the API ---

    def handle(
        self, method: str, path: str, authorization: str | None, body: bytes
    ) -> tuple[int, dict[str, str], Any]:
        """One API call: (status, headers, JSON body or None); every call is kept in `log`."""
        answer: int | str = "dropped"
        try:
            status, headers, payload = self._handle(method, path, authorization, body)
            answer = status
            return status, headers, payload
        except ApiError as error:
            answer = error.status
            raise
        except Trickle:
            answer = 204
            raise
        finally:
            self._record(method, path, body, answer)

    def _record(self, method: str, path: str, body: bytes, answer: int | str) -> None:
        match = _API.fullmatch(path.split("?", 1)[0])
        try:
            pair = json.loads(body) if body else {}
        except ValueError:
            pair = {}
        entry = {
            "at": time.time(),
            "method": method,
            "path": path,
            "tableLinkId": match["link"] if match else None,
            "action": match["action"] if match else None,
            "leftRecord": pair.get("leftRecord") if isinstance(pair, dict) else None,
            "rightRecord": pair.get("rightRecord") if isinstance(pair, dict) else None,
            "status": answer,
        }
        with self._lock:
            self.log.append(entry)
            del self.log[:-LOG_LIMIT]

    def _handle(
        self, method: str, path: str, authorization: str | None, body: bytes
    ) -> tuple[int, dict[str, str], Any]:
        match = _API.fullmatch(path.split("?", 1)[0])
        if match is None:
            raise ApiError(404, "NOT_FOUND", f"no route {path}")
        with self._lock:
            self.calls += 1
            fault = self._next_fault()
        if fault is not None:
            self._inject(fault)
        scopes = self._authenticate(authorization)
        action = match["action"]
        if (method, action is None) not in {("GET", True), ("PUT", False)}:
            raise ApiError(405, "METHOD_NOT_ALLOWED", f"{method} is not allowed here")
        if method == "PUT" and "tables:write" not in scopes:
            raise ApiError(403, "FORBIDDEN", "the API token lacks the tables:write scope")
        with self._lock:
            link = self.table_links.get(match["link"])
            if link is None:
                raise ApiError(404, "TABLE_LINK_NOT_FOUND", f"no table link {match['link']}")
            self._rate_limit(link)
            if action is None:
                return 200, {}, self._described(match["link"], link)
            if link["deletedAt"] is not None:
                raise ApiError(
                    422,
                    "TABLE_LINK_DELETED",
                    f"table link {match['link']} was deleted at {link['deletedAt']}",
                )
            left, right = self._pair(body)
            for record, table in ((left, link["leftTable"]), (right, link["rightTable"])):
                if record not in self.tables[table]["records"]:
                    raise ApiError(404, "RECORD_NOT_FOUND", f"no record {record} in {table}")
            if action == "link":
                self._link(link, left, right)
            elif (left, right) in link["links"]:
                link["links"].remove((left, right))
            return 204, {}, None

    def state(self) -> dict[str, Any]:
        with self._lock:
            return {
                "tables": json.loads(json.dumps(self.tables)),
                "tableLinks": {k: self._state_of(k, v) for k, v in self.table_links.items()},
                "calls": self.calls,
                "faultsPending": sum(fault.count for fault in self.faults),
                "log": list(self.log),
            }

    @staticmethod
    def _inject(fault: Fault) -> None:
        if fault.delay:
            time.sleep(fault.delay)
        if fault.drop:
            raise Dropped
        if fault.trickle:
            raise Trickle(fault.trickle)
        if fault.status:
            headers = {}
            if fault.retry_after is not None:
                headers["Retry-After"] = str(fault.retry_after)
            if fault.location is not None:
                headers["Location"] = fault.location
            raise ApiError(
                fault.status,
                "INJECTED_FAULT",
                "a fault injected through /_sim/faults",
                headers,
                fault.body,
            )

    def _next_fault(self) -> Fault | None:
        while self.faults and self.faults[0].count <= 0:
            self.faults.pop(0)
        if not self.faults:
            return None
        self.faults[0].count -= 1
        return self.faults[0]

    def _authenticate(self, authorization: str | None) -> set[str]:
        scheme, _, encoded = (authorization or "").partition(" ")
        if scheme.lower() != "basic":
            raise ApiError(
                401, "UNAUTHORIZED", "HTTP Basic authentication with an API token is required"
            )
        try:
            key, _, secret = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise ApiError(401, "UNAUTHORIZED", "malformed Basic credentials") from None
        scopes = self.credentials.get((key, secret))
        if scopes is None:
            raise ApiError(401, "UNAUTHORIZED", "unknown API token")
        return scopes

    def _rate_limit(self, link: dict[str, Any]) -> None:
        now = self._clock()
        for table in (link["leftTable"], link["rightTable"]):
            limit = self.rate_limits.get(table)
            if limit is None:
                continue
            limit.calls = [t for t in limit.calls if now - t < limit.window]
            if len(limit.calls) >= limit.limit:
                oldest = limit.calls[0] if limit.calls else now
                wait = max(1, int(limit.window - (now - oldest)) + 1)
                headers = {"Retry-After": str(wait)} if limit.retry_after else {}
                raise ApiError(429, "RATE_LIMITED", f"too many requests for table {table}", headers)
            limit.calls.append(now)

    @staticmethod
    def _pair(body: bytes) -> tuple[str, str]:
        try:
            data = json.loads(body)
        except ValueError:
            raise ApiError(400, "MALFORMED_BODY", "the body is not JSON") from None
        if not isinstance(data, dict) or not all(
            isinstance(data.get(k), str) and data[k] for k in ("leftRecord", "rightRecord")
        ):
            raise ApiError(
                400, "MALFORMED_BODY", "expected {leftRecord: string, rightRecord: string}"
            )
        return data["leftRecord"], data["rightRecord"]

    @staticmethod
    def _link(link: dict[str, Any], left: str, right: str) -> None:
        if (left, right) in link["links"]:
            return
        for other_left, other_right in link["links"]:
            kind = link["relationshipType"]
            if kind in _ONE_LEFT and other_right == right:
                raise ApiError(
                    409,
                    "LINK_CARDINALITY_VIOLATION",
                    f"{right} is already linked to {other_left} ({kind})",
                )
            if kind in _ONE_RIGHT and other_left == left:
                raise ApiError(
                    409,
                    "LINK_CARDINALITY_VIOLATION",
                    f"{left} is already linked to {other_right} ({kind})",
                )
        link["links"].append((left, right))

    @staticmethod
    def _described(link_id: str, link: dict[str, Any]) -> dict[str, Any]:
        """What Tulip's GET answers for a table link: its documented fields, nothing else."""
        return {
            "id": link_id,
            "createdAt": SEEDED_AT,
            "createdBy": SEEDED_BY,
            "updatedAt": SEEDED_AT,
            "updatedBy": SEEDED_BY,
            "deletedAt": link["deletedAt"],
            "deletedBy": link["deletedBy"],
            "leftTableId": link["leftTable"],
            "leftTableColumnId": f"{link_id}_link_left_column",
            "rightTableId": link["rightTable"],
            "rightTableColumnId": f"{link_id}_link_right_column",
        }

    @classmethod
    def _state_of(cls, link_id: str, link: dict[str, Any]) -> dict[str, Any]:
        """The simulator's own view of a table link: Tulip's fields, its type and its links."""
        return cls._described(link_id, link) | {
            "relationshipType": link["relationshipType"],
            "links": [list(pair) for pair in link["links"]],
        }


def render_html(state: dict[str, Any]) -> str:
    """A plain page: every table link with its links, then every table with its records."""
    e = html.escape
    parts = [
        "<!doctype html><meta charset=utf-8><title>Tulip simulator</title>",
        "<h1>Tulip simulator</h1>",
        f"<p>{state['calls']} API calls so far. <a href='/_sim/state'>State as JSON</a>.</p>",
        "<h2>Table links</h2>",
    ]
    for link_id, link in state["tableLinks"].items():
        parts.append(
            f"<h3>{e(link_id)}: {e(link['leftTableId'])} &rarr; {e(link['rightTableId'])} ({e(link['relationshipType'])})</h3><ul>"
        )
        parts += [f"<li>{e(left)} &harr; {e(right)}</li>" for left, right in link["links"]] or [
            "<li><i>no links</i></li>"
        ]
        parts.append("</ul>")
    parts.append("<h2>Tables</h2>")
    for name, table in state["tables"].items():
        parts.append(
            f"<h3>{e(name)} ({e(table['label'])})</h3><p>{e(', '.join(table['records']))}</p>"
        )
    return "\n".join(parts)


def make_server(
    simulator: TulipSimulator, port: int, host: str = "127.0.0.1"
) -> ThreadingHTTPServer:
    """An HTTP server for `simulator` on `host:port` (0: any free port)."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            if self._refused("GET"):
                return
            if self.path == "/":
                self._send(
                    200,
                    {"Content-Type": "text/html; charset=utf-8"},
                    render_html(simulator.state()).encode(),
                )
            elif self.path == "/_sim/state":
                self._json(200, {}, simulator.state())
            else:
                self._api("GET")

        def do_PUT(self) -> None:
            if not self._refused("PUT"):
                self._api("PUT")

        def do_POST(self) -> None:
            if self._refused("POST"):
                return
            body = self._body()
            try:
                spec = json.loads(body or b"{}")
                if self.path == "/_sim/reset":
                    simulator.reset()
                    self._json(200, {}, {"reset": True})
                elif self.path == "/_sim/faults":
                    self._json(200, {}, simulator.add_fault(spec))
                elif self.path == "/_sim/faults/clear":
                    self._json(200, {}, simulator.clear_faults())
                elif self.path == "/_sim/rate-limit":
                    self._json(200, {}, simulator.set_rate_limit(spec))
                else:
                    self._json(404, {}, {"errorCode": "NOT_FOUND"})
            except ApiError as error:
                self._error(error)
            except (ValueError, KeyError, TypeError) as error:
                self._json(400, {}, {"errorCode": "BAD_SWITCH", "details": str(error)})

        def _api(self, method: str) -> None:
            body = self._body()
            try:
                status, headers, payload = simulator.handle(
                    method, self.path, self.headers.get("Authorization"), body
                )
            except ApiError as error:
                self._error(error)
                return
            except Dropped:
                self.close_connection = True  # and no answer at all
                return
            except Trickle as slow:
                self._trickle(slow.seconds)
                return
            if payload is None:
                self._send(status, headers, b"")
            else:
                self._json(status, headers, payload)

        def _body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _refused(self, method: str) -> bool:
            """Refused (403) unless addressed to it and, changing anything, sent as JSON by no
            page but its own (devtools/local_only.py)."""
            reason = refusal(method, self.headers, server.server_port, content_types=JSON)
            if reason is None:
                return False
            self.close_connection = True  # its body, if any, is not read
            self._json(403, {}, {"errorCode": "LOCAL_ONLY", "details": reason})
            return True

        def _error(self, error: ApiError) -> None:
            if error.body == "html":
                phrase = self.responses.get(error.status, ("Error",))[0]
                title = f"{error.status} {phrase}"
                page = f"<html><body><h1>{title}</h1>nginx</body></html>".encode()
                headers = {"Content-Type": "text/html", **error.headers}
                self._send(error.status, headers, page)
                return
            if error.body == "empty":
                self._send(error.status, error.headers, b"")
                return
            unique = base64.b64encode(secrets.token_bytes(24)).decode()
            self._json(
                error.status,
                error.headers,
                {"errorCode": error.code, "errorUniqueID": unique, "details": error.details},
            )

        def _trickle(self, seconds: float) -> None:
            answer = b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n"
            self.close_connection = True
            try:
                for byte in answer:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(seconds / len(answer))  # each byte well within a read timeout
            except OSError:
                pass  # the client gave up, as it should

        def _json(self, status: int, headers: dict[str, str], payload: Any) -> None:
            self._send(
                status,
                {"Content-Type": "application/json", **headers},
                json.dumps(payload).encode(),
            )

        def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    server.block_on_close = False
    return server


def main() -> None:
    """Serve the simulator until interrupted."""
    parser = argparse.ArgumentParser(
        prog="python -m devtools.simulators.tulip",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--seed", type=Path, default=DEFAULT_SEED)
    args = parser.parse_args()
    server = make_server(TulipSimulator(json.loads(args.seed.read_text())), args.port, args.host)
    print(f"Tulip simulator on http://{args.host}:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
