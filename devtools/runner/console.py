"""The local console: one page that shows `make run` at work, with the buttons a demo needs.

    started by `devtools.runner.run` (make run), which prints its address: http://localhost:8083/

Four sections, each read from the piece it shows whenever the page asks, never kept here:

- Requests: what the webhook function answered, from its own log lines (one outcome line per
  request, or one per link and a `link.batch` line), which the runner copies to the terminal and
  hands to `RequestLog` as they are written; newest first.
- Queue: what the Pub/Sub simulator holds (its `GET /state`): messages waiting in the push
  subscription or being retried, with their delivery attempts and the events function's last
  answer, and the dead letters.
- Tulip calls: the simulator's log of API calls with its answers, faults included.
- Table links: the simulator's links; those a call of this run made are marked new.

A `requestId` can be followed across them (its link, or `?follow=ID`): the messages it queued
carry it as `intakeRequestId`; the simulator logs no request id, so a Tulip call belongs to the
latest request that named its pair before the call (what the runner's one sender sends makes
that unambiguous in a demo).

The buttons: make Tulip fail (503s for good or for a number of calls, a dropped connection, a
delay: the simulator's fault switch) and recover; send the example request, signed as the
runner's curl command signs it; replay the dead letters, through `ops.dead_letters` as an
operator would. The page is plain HTML that works without JavaScript (the buttons are forms, a
reload shows the news); a short script polls `/live` (JSON: the sections, rendered here, so
there is one renderer) every second and sends the forms without leaving the page. `/state.json`
is the data behind it, for scripts. Not deployed; the runner serves it on 127.0.0.1 only, whatever
its `--host`: the buttons act without the webhook's secret. For the same reason it answers only
to its loopback name and port, and a button only when it is pressed on its own page (a form, from
no other site: `devtools/local_only.py`), so that no web page the developer visits can press it.
"""

from __future__ import annotations

import collections
import html
import io
import json
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from devtools.local_only import refusal
from function.core.dead_letters import DEAD_LETTER_REASON, DELIVERY_ATTEMPT, ERROR_CODE
from function.core.intake import INTAKE_REQUEST_ID
from function.model.status_table import RULES
from ops import dead_letters

KEPT = 50  # requests, calls and messages shown: the newest
POLL_MS = 1000
FORM = "application/x-www-form-urlencoded"  # what its buttons send, with or without JavaScript
TIMEOUT = 2.0  # a piece slower than this to answer is shown as unavailable
# The lines that end a request, or a link of it (the status table's events), and a batch's summary.
OUTCOME_EVENTS = frozenset({rule.event for rule in RULES.values()} | {"link.batch"})
FAULTS: Mapping[str, tuple[str, dict[str, Any]]] = {
    "down": ("down: 503 until it recovers", {"status": 503}),
    "503": ("503 for the next calls", {"status": 503}),
    "drop": ("drop the next call", {"drop": True}),
    "delay": ("delay the next call 5 s", {"delaySeconds": 5}),
}
DOWN_CALLS = 1_000_000  # "until it recovers"


class RequestLog:
    """The webhook function's outcome lines, by `requestId`, as they arrive, and the events
    function's for the links they queued, by `intakeRequestId` (thread-safe)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._requests: collections.OrderedDict[str, dict[str, Any]] = collections.OrderedDict()

    def feed(self, line: bytes) -> None:
        """One line of the webhook function's stdout; anything but an outcome line is ignored."""
        fields = _outcome_line(line, "requestId")
        if fields is None:
            return
        with self._lock:
            request = self._request(fields["requestId"])
            if fields["event"] == "link.batch" or "itemIndex" not in fields:
                request["summary"] = fields
            if fields["event"] != "link.batch":
                request["links"].append(fields)

    def feed_delivery(self, line: bytes) -> None:
        """One line of the events function's stdout: how a queued link's delivery ended."""
        fields = _outcome_line(line, INTAKE_REQUEST_ID)
        if fields is None or fields["event"] == "link.batch":
            return
        with self._lock:
            request = self._request(fields[INTAKE_REQUEST_ID])
            request["deliveries"][_key(fields)] = fields

    def _request(self, request_id: str) -> dict[str, Any]:
        request = self._requests.get(request_id)
        if request is None:  # its first line: when it arrived is when the page says it came
            request = {"at": self._clock(), "links": [], "summary": None, "deliveries": {}}
            self._requests[request_id] = request
            while len(self._requests) > KEPT:
                self._requests.popitem(last=False)
        return request

    def requests(self) -> list[dict[str, Any]]:
        """Newest first: `at`, `requestId`, `event`, `status`, `errorCode`, `counts`,
        `duplicateOf` (a delivery accepted before: the request that accepted it), and its
        `links`, each with how its latest delivery ended (`delivery`; queue mode)."""
        with self._lock:
            kept = [
                (rid, r["at"], r["summary"], list(r["links"]), dict(r["deliveries"]))
                for rid, r in self._requests.items()
            ]
        shown = []
        for request_id, at, summary, links, deliveries in reversed(kept):
            if summary is None:
                continue  # only the events function has spoken yet: its line came first
            shown.append(
                {
                    "at": at,
                    "requestId": request_id,
                    "event": summary.get("event"),
                    "status": summary.get("status"),
                    "errorCode": summary.get("errorCode"),
                    "counts": summary.get("counts"),
                    "duplicateOf": summary.get("firstRequestId"),
                    "links": [
                        _pair_of(link)
                        | {"status": link.get("status"), "delivery": _delivery(deliveries, link)}
                        for link in links
                    ],
                }
            )
        return shown


def _outcome_line(line: bytes, key: str) -> dict[str, Any] | None:
    try:
        fields = json.loads(line)
    except ValueError:
        return None
    if not isinstance(fields, dict) or not fields.get(key):
        return None
    if fields.get("event") not in OUTCOME_EVENTS:
        return None
    return fields


def _key(fields: Mapping[str, Any]) -> tuple[Any, ...]:
    return (fields.get("tableLinkId"), fields.get("leftRecord"), fields.get("rightRecord"))


def _delivery(deliveries: Mapping[tuple[Any, ...], Any], link: Mapping[str, Any]) -> Any:
    ended = deliveries.get(_key(link))
    if ended is None:
        return None
    return {
        "event": ended["event"],
        "deliveryAttempt": ended.get("deliveryAttempt"),
        "errorCode": ended.get("errorCode"),
    }


@dataclass(frozen=True)
class LocalRun:
    """The run the console shows: where it reads and what its buttons call (the runner fills it
    in)."""

    requests: RequestLog
    simulator_url: str | None  # None: a real Tulip, whose calls are not visible here
    pubsub_state_url: str | None  # None: direct mode, no queue
    send_example: Callable[[], tuple[int, Any]]
    replay: Callable[[], str] | None  # None: direct mode


def snapshot(run: LocalRun) -> dict[str, Any]:
    """Everything the page shows, read now from each piece; a piece that does not answer is
    `{"unavailable": why}` in its place."""
    requests = run.requests.requests()
    data: dict[str, Any] = {"requests": requests, "queue": None, "tulip": None}
    if run.pubsub_state_url is not None:
        data["queue"] = _read(run.pubsub_state_url, _messages)
    if run.simulator_url is not None:
        data["tulip"] = _read(
            f"{run.simulator_url}/_sim/state", lambda state: _tulip(state, requests)
        )
    return data


def _read(url: str, shape: Callable[[Any], dict[str, Any]]) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as answer:
            return shape(json.load(answer))
    except (OSError, ValueError) as error:
        return {"unavailable": f"{url} did not answer ({type(error).__name__})"}


def _messages(state: Mapping[str, Any]) -> dict[str, Any]:
    """The Pub/Sub simulator's messages, by subscription: the push and the dead-letter one."""
    shown: dict[str, list[dict[str, Any]]] = {"waiting": [], "deadLetters": []}
    for name, subscription in state["subscriptions"].items():
        kind = "waiting" if subscription["push"] else "deadLetters"
        for message in subscription["messages"]:
            # Done with: delivered, replayed (the dead-letter subscription keeps acked messages)
            # or moved to the dead letters (shown there).
            if message["state"] in ("acked", "dead_lettered"):
                continue
            data = message["data"] if isinstance(message["data"], dict) else {}
            attributes = message["attributes"]
            shown[kind].append(
                _pair_of(data)
                | {
                    "subscription": name.rsplit("/", 1)[-1],
                    "messageId": message["messageId"],
                    "publishTime": message["publishTime"],
                    "state": message["state"],
                    "deliveryAttempts": message["deliveryAttempts"],
                    "lastStatus": message["lastStatus"],
                    "requestId": attributes.get(INTAKE_REQUEST_ID),
                    "sourceAttempts": attributes.get(dead_letters.SOURCE_DELIVERY_COUNT),
                    "replayCount": attributes.get(dead_letters.REPLAY_COUNT),
                    "errorCode": attributes.get(ERROR_CODE),
                    "deadLetterReason": attributes.get(DEAD_LETTER_REASON),
                    "refusedAt": attributes.get(DELIVERY_ATTEMPT),
                }
            )
    return {kind: messages[-KEPT:][::-1] for kind, messages in shown.items()}


def _tulip(state: Mapping[str, Any], requests: list[dict[str, Any]]) -> dict[str, Any]:
    """The simulator's calls (newest first, each with the request it belongs to) and links."""
    calls = []
    for call in state["log"][-KEPT:]:
        calls.append(call | {"requestId": _request_of(call, requests)})
    made: dict[tuple[Any, ...], str | None] = {}
    for call in calls:
        if call["method"] == "PUT" and call["action"] == "link" and call["status"] == 204:
            made[_key(call)] = call["requestId"]
    links = []
    for link_id, link in state["tableLinks"].items():
        pairs = []
        for left, right in link["links"]:
            key = (link_id, left, right)
            pairs.append(
                {"left": left, "right": right, "new": key in made, "requestId": made.get(key)}
            )
        links.append(
            {
                "id": link_id,
                "left": link["leftTableId"],
                "right": link["rightTableId"],
                "deleted": link["deletedAt"] is not None,
                "pairs": pairs,
            }
        )
    return {
        "calls": calls[::-1],
        "links": links,
        "faultsPending": state.get("faultsPending", 0),
    }


def _request_of(call: Mapping[str, Any], requests: Iterable[Mapping[str, Any]]) -> str | None:
    """The latest request, arrived before `call`, that named `call`'s pair."""
    pair = _key(call)
    if None in pair:
        return None
    for request in requests:  # newest first
        if request["at"] <= call["at"] and any(_key(link) == pair for link in request["links"]):
            return str(request["requestId"])
    return None


def _pair_of(fields: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "tableLinkId": fields.get("tableLinkId"),
        "leftRecord": fields.get("leftRecord"),
        "rightRecord": fields.get("rightRecord"),
        "action": fields.get("action"),
    }


# --- Buttons ---------------------------------------------------------------------------------


def act(run: LocalRun, action: str, form: Mapping[str, str]) -> str:
    """Do what a button asks; what happened, in a sentence."""
    if action == "send":
        status, answer = run.send_example()
        said = answer.get("status") or answer.get("errorCode")
        return f"Sent the example request: {status} {said} (requestId {answer.get('requestId')})."
    if action == "replay":
        if run.replay is None:
            return "Direct mode has no queue, and no dead letters to replay."
        return run.replay()
    if run.simulator_url is None:
        return "A real Tulip cannot be made to fail from here."
    if action == "recover":
        cleared = _post(f"{run.simulator_url}/_sim/faults/clear", {})["cleared"]
        if _is_down(cleared):
            return "Tulip recovered: it answers again."
        return f"Tulip recovered: it answers again ({cleared} failing calls were still to come)."
    if action == "fault":
        kind = form.get("fault", "")
        if kind not in FAULTS:
            return f"No such fault: {kind!r}."
        what, spec = FAULTS[kind]
        count = DOWN_CALLS if kind == "down" else 1
        if kind == "503":
            try:
                count = max(1, min(100, int(form.get("count", "1"))))
            except ValueError:
                return "The number of calls must be a whole number."
            what = f"503 for the next {count} calls"
        _post(f"{run.simulator_url}/_sim/faults", spec | {"count": count})
        return f"Tulip fails: {what}."
    return f"No such button: {action!r}."


def _is_down(failing_calls: int) -> bool:
    """Whether that many calls still to fail is the "down" fault (not a count someone chose)."""
    return failing_calls >= DOWN_CALLS // 2


def _post(url: str, body: Mapping[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=TIMEOUT) as answer:
        answered: dict[str, Any] = json.load(answer)
        return answered


def replay_dead_letters(pubsub_host: str, subscription: str, topic: str) -> Callable[[], str]:
    """The replay button: `ops.dead_letters replay SUBSCRIPTION --to TOPIC` on the local
    Pub/Sub, its summary line as the answer."""

    def replay() -> str:
        out = io.StringIO()
        with dead_letters.Pubsub(pubsub_host) as pubsub:
            status = dead_letters.replay_command(
                pubsub,
                subscription,
                topic,
                dead_letters.Filters(),
                dry_run=False,
                max_replays=3,
                force=False,
                out=out,
                progress=lambda _: None,
            )
        summary = out.getvalue().strip().splitlines()[-1]
        return f"Dead letters: {summary}" + ("" if status == 0 else " See the terminal.")

    return replay


# --- The page --------------------------------------------------------------------------------


def render_sections(data: Mapping[str, Any], follow: str) -> dict[str, str]:
    """The live parts of the page, by element id: what the script swaps in."""
    return {
        "requests": _requests_html(data["requests"], follow),
        "queue": _queue_html(data["queue"], follow),
        "calls": _calls_html(data["tulip"], follow),
        "links": _links_html(data["tulip"], follow),
        "tulip-state": _tulip_state_html(data["tulip"]),
    }


def render_page(data: Mapping[str, Any], follow: str, notice: str) -> str:
    sections = render_sections(data, follow)
    e = html.escape
    options = "".join(f'<option value="{k}">{e(what)}</option>' for k, (what, _) in FAULTS.items())
    following = (
        f'Following request <code>{e(follow)}</code> (<a href="/">stop</a>).' if follow else ""
    )
    return _PAGE.format(
        style=_STYLE,
        script=_SCRIPT.replace("POLL_MS", str(POLL_MS)),
        notice=e(notice),
        following=following,
        options=options,
        **{key.replace("-", "_"): value for key, value in sections.items()},
    )


def _requests_html(requests: list[Mapping[str, Any]], follow: str) -> str:
    if not requests:
        return _empty(
            6, "No requests yet: send the example, or run the command the terminal shows."
        )
    rows = []
    for request in requests:
        answer = request["status"] or _counts(request["counts"])
        links = [
            _pair_html(link) + _delivery_html(link["delivery"])
            for link in request["links"]
            if link.get("leftRecord")
        ]
        if request.get("duplicateOf"):  # nothing done: what was, is the first request's
            links = [f"duplicate of {_request_id_html(request['duplicateOf'], follow)}"]
        rows.append(
            _row(
                request["requestId"],
                follow,
                _time(request["at"]),
                _request_id_html(request["requestId"], follow),
                html.escape(str(request["event"] or "")),
                _status_html(answer),
                html.escape(str(request["errorCode"] or "")),
                "<br>".join(links),
            )
        )
    return "".join(rows)


def _delivery_html(delivery: Mapping[str, Any] | None) -> str:
    """How the events function ended a queued link's latest delivery."""
    if delivery is None:
        return ""
    event = str(delivery["event"])
    good = event == "link.done"
    attempt = delivery["deliveryAttempt"]
    said = {"link.done": "done", "link.failed": "failed", "link.rejected": "rejected"}.get(
        event, event
    )
    detail = f" {delivery['errorCode']}" if delivery["errorCode"] else ""
    where = f", delivery {attempt}" if attempt else ""
    return (
        f' &mdash; <span class="{"good" if good else "bad"}">{html.escape(said)}</span>'
        f"{html.escape(detail + where)}"
    )


def _queue_html(queue: Mapping[str, Any] | None, follow: str) -> str:
    if queue is None:
        return _empty(7, "Direct mode: the webhook calls Tulip itself, there is no queue.")
    if "unavailable" in queue:
        return _empty(7, f"The Pub/Sub simulator is unavailable: {queue['unavailable']}.")
    rows = []
    for kind in ("waiting", "deadLetters"):
        for message in queue[kind]:
            if kind == "waiting":
                where = "being delivered" if message["state"] == "outstanding" else "waiting"
                if message["deliveryAttempts"] > 0 and message["state"] != "outstanding":
                    where = "waiting to be retried"
                attempts = str(message["deliveryAttempts"])
            elif message["errorCode"]:  # the events function's: refused, with its reason
                where = f"dead letter: {message['errorCode']}: {message['deadLetterReason']}"
                attempts = f"{message['refusedAt'] or '?'} (refused)"
            else:
                where = "dead letter: Pub/Sub gave up"
                attempts = f"{message['sourceAttempts'] or '?'} (then dead-lettered)"
            last = message["lastStatus"]
            rows.append(
                _row(
                    message["requestId"],
                    follow,
                    html.escape(message["messageId"]),
                    _request_id_html(message["requestId"], follow),
                    f'<span class="state {kind}">{html.escape(where)}</span>',
                    html.escape(attempts),
                    _status_html(last) if last is not None else "",
                    _pair_html(message),
                    html.escape(message["replayCount"] or ""),
                )
            )
    return "".join(rows) or _empty(7, "Empty: every message was delivered.")


def _calls_html(tulip: Mapping[str, Any] | None, follow: str) -> str:
    if tulip is None:
        return _empty(5, "A real Tulip: its calls are in its own logs, not here.")
    if "unavailable" in tulip:
        return _empty(5, f"The simulator is unavailable: {tulip['unavailable']}.")
    rows = [
        _row(
            call["requestId"],
            follow,
            _time(call["at"]),
            _request_id_html(call["requestId"], follow),
            f'<span title="{html.escape(call["path"])}">'
            f"{html.escape(call['method'])} {html.escape(call['action'] or 'table link')}</span>",
            _pair_html(call),
            _status_html(call["status"]),
        )
        for call in tulip["calls"]
    ]
    return "".join(rows) or _empty(5, "No calls yet.")


def _links_html(tulip: Mapping[str, Any] | None, follow: str) -> str:
    if tulip is None or "unavailable" in tulip:
        return "<p>The simulator's links are shown here when it runs.</p>"
    e = html.escape
    parts = []
    for link in tulip["links"]:
        deleted = " (deleted)" if link["deleted"] else ""
        items = []
        for pair in link["pairs"]:
            mark = ' <strong class="new">new</strong>' if pair["new"] else ""
            items.append(
                f"<li{_followed(pair['requestId'], follow)}>{e(pair['left'])} &harr; {e(pair['right'])}{mark}"
                + (f" {_request_id_html(pair['requestId'], follow)}" if pair["requestId"] else "")
                + "</li>"
            )
        parts.append(
            f"<h3>{e(link['id'])}{deleted}: {e(link['left'])} &rarr; {e(link['right'])}</h3>"
            f"<ul>{''.join(items) or '<li>no links</li>'}</ul>"
        )
    return "".join(parts)


def _tulip_state_html(tulip: Mapping[str, Any] | None) -> str:
    if tulip is None:
        return "Tulip: the real one."
    if "unavailable" in tulip:
        return "Tulip: the simulator is unavailable."
    pending = tulip["faultsPending"]
    if _is_down(pending):
        return '<span class="bad">Tulip is down</span> (503 to every call).'
    if pending:
        return f'<span class="bad">Tulip fails</span> the next {pending} calls.'
    return '<span class="good">Tulip answers.</span>'


def _followed(request_id: str | None, follow: str) -> str:
    """The class that marks an element of the request being followed."""
    return ' class="followed"' if follow and request_id == follow else ""


def _row(request_id: str | None, follow: str, *cells: str) -> str:
    return (
        f"<tr{_followed(request_id, follow)}>"
        + "".join(f"<td>{cell}</td>" for cell in cells)
        + "</tr>"
    )


def _empty(columns: int, text: str) -> str:
    return f'<tr><td colspan="{columns}" class="empty">{html.escape(text)}</td></tr>'


def _request_id_html(request_id: str | None, follow: str) -> str:
    if not request_id:
        return ""
    e = html.escape
    quoted = urllib.parse.quote(request_id)
    pressed = "true" if request_id == follow else "false"
    return (
        f'<a href="/?follow={quoted}" data-follow="{e(request_id)}" aria-pressed="{pressed}" '
        f'title="Follow this request">{e(request_id[:8])}</a>'
    )


def _pair_html(fields: Mapping[str, Any]) -> str:
    if not fields.get("leftRecord"):
        return ""
    e = html.escape
    action = f" ({e(fields['action'])})" if fields.get("action") not in (None, "link") else ""
    return (
        f"{e(str(fields.get('tableLinkId')))}: {e(str(fields['leftRecord']))} &rarr; "
        f"{e(str(fields.get('rightRecord')))}{action}"
    )


def _status_html(status: Any) -> str:
    if status in (None, ""):
        return ""
    good = isinstance(status, int) and status < 300
    return f'<span class="{"good" if good else "bad"}">{html.escape(str(status))}</span>'


def _counts(counts: Mapping[str, int] | None) -> str:
    return ", ".join(f"{n} {status}" for status, n in (counts or {}).items() if n)


def _time(at: float) -> str:
    moment = time.localtime(at)
    return (
        f'<time datetime="{time.strftime("%Y-%m-%dT%H:%M:%S", moment)}">'
        + time.strftime("%H:%M:%S", moment)
        + "</time>"
    )


_STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 0 auto; max-width: 84rem; padding: 0 1rem 2rem;
       color: #1d2330; background: #fbfbfc; }
h1 { font-size: 1.4rem; margin: 1rem 0 .25rem; } h2 { font-size: 1.1rem; margin: 1.5rem 0 .5rem; }
h3 { font-size: 1rem; margin: .75rem 0 .25rem; }
.lede { margin: 0 0 1rem; color: #4a5263; }
form { display: inline-flex; gap: .4rem; align-items: center; margin: 0 .75rem .5rem 0; }
button { font: inherit; padding: .3rem .7rem; border: 1px solid #4a5263; border-radius: .3rem;
         background: #fff; cursor: pointer; }
button:hover, button:focus-visible { background: #e8ecf4; }
select, input { font: inherit; }
input[type=number] { width: 4rem; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; background: #fff; }
caption { text-align: left; color: #4a5263; padding: .25rem 0; }
th, td { text-align: left; padding: .3rem .5rem; border-bottom: 1px solid #e1e4ea; vertical-align: top; }
th { font-weight: 600; background: #f0f2f6; }
td.empty { color: #6a7283; font-style: italic; }
.good { color: #116329; font-weight: 600; } .bad { color: #a4161a; font-weight: 600; }
.state.deadLetters { color: #a4161a; font-weight: 600; }
.new { color: #116329; }
tr.followed, li.followed { background: #fff5cc; }
a[data-follow] { font-family: ui-monospace, monospace; }
#notice:not(:empty) { border-left: 4px solid #3a5ccc; padding: .4rem .75rem; background: #eef2fd; }
@media (min-width: 70rem) { .columns { display: grid; grid-template-columns: 1fr 1fr; gap: 1.5rem; } }
"""

_SCRIPT = """
const state = {follow: new URLSearchParams(location.search).get("follow") || ""};
window.consoleLoaded = window.consoleLoaded || Math.random();
async function refresh() {
  try {
    const answer = await fetch("/live?follow=" + encodeURIComponent(state.follow));
    const data = await answer.json();
    for (const [id, markup] of Object.entries(data.sections)) {
      const element = document.getElementById(id);
      if (element && element.innerHTML !== markup) element.innerHTML = markup;
    }
    document.getElementById("updated").textContent = "Updated " + new Date().toLocaleTimeString();
  } catch (error) {
    document.getElementById("updated").textContent = "The console is not answering (was make run stopped?)";
  }
}
document.addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  const notice = document.getElementById("notice");
  notice.textContent = "Working...";
  const answer = await fetch(form.action, {method: "POST", body: new URLSearchParams(new FormData(form)),
                                           headers: {Accept: "application/json"}});
  notice.textContent = (await answer.json()).notice;
  refresh();
});
document.addEventListener("click", (event) => {
  const link = event.target.closest("a[data-follow]");
  if (!link) return;
  event.preventDefault();
  state.follow = link.dataset.follow === state.follow ? "" : link.dataset.follow;
  history.replaceState(null, "", state.follow ? "?follow=" + encodeURIComponent(state.follow) : "/");
  document.getElementById("following").textContent = state.follow ? "Following request " + state.follow + "." : "";
  refresh();
});
setInterval(refresh, POLL_MS);
"""

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>tulip-link: local console</title>
<style>{style}</style>
</head>
<body>
<header>
<h1>tulip-link, running locally</h1>
<p class="lede">A webhook is checked and queued, pushed to the events function, which calls Tulip;
what Tulip refuses or cannot do now is retried, then dead-lettered. Pick a request id to follow it
across the sections.</p>
</header>
<main>
<section aria-labelledby="do">
<h2 id="do">Try it</h2>
<form method="post" action="/actions/send"><button>Send the example request</button></form>
<form method="post" action="/actions/fault">
<label for="fault">Make Tulip fail:</label>
<select id="fault" name="fault">{options}</select>
<label for="count">calls (for 503)</label>
<input id="count" name="count" type="number" min="1" max="100" value="8">
<button>Fail</button>
</form>
<form method="post" action="/actions/recover"><button>Tulip recovers</button></form>
<form method="post" action="/actions/replay"><button>Replay the dead letters</button></form>
<p id="tulip-state">{tulip_state}</p>
<p id="notice" role="status" aria-live="polite">{notice}</p>
<p><span id="following">{following}</span> <small id="updated"></small></p>
</section>
<section aria-labelledby="requests-title">
<h2 id="requests-title">Requests the webhook answered</h2>
<div class="scroll"><table>
<caption>Newest first, from the webhook function's log lines.</caption>
<thead><tr><th scope="col">time</th><th scope="col">requestId</th><th scope="col">event</th>
<th scope="col">status</th><th scope="col">errorCode</th><th scope="col">links</th></tr></thead>
<tbody id="requests">{requests}</tbody>
</table></div>
</section>
<section aria-labelledby="queue-title">
<h2 id="queue-title">The queue (the Pub/Sub simulator)</h2>
<div class="scroll"><table>
<caption>Messages not yet delivered, and the dead letters; a delivered message leaves the queue.</caption>
<thead><tr><th scope="col">messageId</th><th scope="col">requestId</th><th scope="col">where</th>
<th scope="col">delivery attempts</th><th scope="col">last answer</th><th scope="col">link</th>
<th scope="col">replays</th></tr></thead>
<tbody id="queue">{queue}</tbody>
</table></div>
</section>
<div class="columns">
<section aria-labelledby="calls-title">
<h2 id="calls-title">Tulip calls</h2>
<div class="scroll"><table>
<caption>Newest first, as the simulator answered them, faults included.</caption>
<thead><tr><th scope="col">time</th><th scope="col">requestId</th><th scope="col">call</th>
<th scope="col">link</th><th scope="col">answer</th></tr></thead>
<tbody id="calls">{calls}</tbody>
</table></div>
</section>
<section aria-labelledby="links-title">
<h2 id="links-title">Table links</h2>
<div id="links">{links}</div>
</section>
</div>
</main>
<script>{script}</script>
</body>
</html>
"""


def make_server(run: LocalRun, host: str, port: int) -> ThreadingHTTPServer:
    """The console's HTTP server on `host:port` (0: any free port); serve it in a thread."""
    notice = {"text": ""}  # the answer to the last button pressed: the console's only state

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            if self._refused("GET"):
                return
            url = urllib.parse.urlsplit(self.path)
            follow = urllib.parse.parse_qs(url.query).get("follow", [""])[0]
            if url.path == "/":
                page = render_page(snapshot(run), follow, notice["text"])
                self._send(200, "text/html; charset=utf-8", page.encode())
            elif url.path == "/live":
                sections = render_sections(snapshot(run), follow)
                self._json({"sections": sections, "notice": notice["text"]})
            elif url.path == "/state.json":
                self._json(snapshot(run))
            else:
                self._send(404, "text/plain", b"not found")

        def do_POST(self) -> None:
            if self._refused("POST"):
                return
            url = urllib.parse.urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
            action = url.path.removeprefix("/actions/")
            try:
                notice["text"] = act(run, action, form)
            except (OSError, ValueError, KeyError) as error:
                notice["text"] = f"That did not work: {type(error).__name__}: {error}"
            if "application/json" in (self.headers.get("Accept") or ""):
                self._json({"notice": notice["text"]})
            else:  # a form without JavaScript: back to the page, which shows the notice
                self.send_response(303)
                self.send_header("Location", "/")
                self.send_header("Content-Length", "0")
                self.end_headers()

        def _refused(self, method: str) -> bool:
            reason = refusal(method, self.headers, server.server_port, content_types=(FORM,))
            if reason is None:
                return False
            self.close_connection = True  # its body, if any, is not read
            self._send(403, "text/plain; charset=utf-8", f"Refused: {reason}.\n".encode())
            return True

        def _json(self, value: Any) -> None:
            self._send(200, "application/json", json.dumps(value).encode())

        def _send(self, status: int, kind: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass  # polled every second: the terminal shows the function's lines instead

    server = ThreadingHTTPServer((host, port), Handler)
    return server


def serve(run: LocalRun, host: str, port: int) -> ThreadingHTTPServer:
    """Start the console in a thread of its own; `shutdown()` stops it."""
    server = make_server(run, host, port)
    threading.Thread(target=server.serve_forever, name="console", daemon=True).start()
    return server
