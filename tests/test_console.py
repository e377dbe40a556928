"""The local console (devtools/runner/console.py): what it reads from each piece, what its buttons do,
the page without JavaScript, and the page in a real browser against `make run`."""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import shutil
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from devtools.runner import console
from devtools.runner.console import LocalRun, RequestLog
from devtools.runner.run import DEV_API_KEY, DEV_API_SECRET
from devtools.simulators.pubsub import PubsubSimulator, serve_state
from devtools.simulators.tulip import DEFAULT_SEED, TulipSimulator, make_server
from tests.helpers import ROOT
from tests.processes import Running, runner, until

ARTIFACTS = ROOT / "test-artifacts"


def line(**fields: Any) -> bytes:
    return json.dumps(fields).encode() + b"\n"


def queued(request_id: str, left: str = "WO-1001", **more: Any) -> bytes:
    pair = {"tableLinkId": "WorkOrderSerials", "leftRecord": left, "rightRecord": "SN-0001"}
    return line(
        event="link.queued", requestId=request_id, status=202, action="link", **pair, **more
    )


# --- What it reads ------------------------------------------------------------------------------


def test_the_request_log_keeps_outcome_lines_by_request_newest_first():
    log = RequestLog(clock=iter([1.0, 2.0, 3.0]).__next__)
    log.feed(b"gunicorn says hello\n")  # not JSON
    log.feed(line(event="tulip.retry", requestId="a"))  # not an outcome line
    log.feed(queued("a"))
    log.feed(line(event="link.rejected", requestId="b", status=401, errorCode="UNAUTHENTICATED"))
    for index, left in enumerate(("WO-1001", "WO-1002")):
        log.feed(queued("c", left, itemIndex=index))
    log.feed(line(event="link.batch", requestId="c", counts={"queued": 2, "linked": 0}))
    shown = log.requests()
    assert [r["requestId"] for r in shown] == ["c", "b", "a"]
    batch, refused, single = shown
    assert [link["leftRecord"] for link in batch["links"]] == ["WO-1001", "WO-1002"]
    assert batch["event"] == "link.batch" and batch["status"] is None
    assert (refused["status"], refused["errorCode"]) == (401, "UNAUTHENTICATED")
    assert (single["event"], single["status"], single["at"]) == ("link.queued", 202, 1.0)


def test_a_duplicate_is_shown_as_one_with_the_request_that_accepted_it():
    log = RequestLog()
    log.feed(queued("first"))
    log.feed(line(event="link.duplicate", requestId="second", status=200, firstRequestId="first"))
    duplicate, _ = log.requests()
    assert (duplicate["event"], duplicate["duplicateOf"]) == ("link.duplicate", "first")
    shown = console._requests_html(list(log.requests()), "")
    row = shown[: shown.index("</tr>")]
    assert "link.duplicate" in row and "duplicate of" in row and 'data-follow="first"' in row


def test_a_queued_links_delivery_joins_its_request_whichever_line_comes_first():
    log = RequestLog()
    delivered = {
        "tableLinkId": "WorkOrderSerials",
        "leftRecord": "WO-1001",
        "rightRecord": "SN-0001",
    }
    # The events function may log before the webhook has written its own line.
    log.feed_delivery(line(event="link.done", requestId="e1", intakeRequestId="a",
                           deliveryAttempt=2, **delivered))  # fmt: skip
    assert log.requests() == []  # nothing the webhook answered yet
    log.feed(queued("a"))
    log.feed_delivery(line(event="link.done", requestId="e2", **delivered))  # published by others
    [request] = log.requests()
    [link] = request["links"]
    assert link["delivery"] == {"event": "link.done", "deliveryAttempt": 2, "errorCode": None}


def test_a_tulip_call_belongs_to_the_latest_earlier_request_that_named_its_pair():
    def request(request_id: str, at: float, right: str) -> dict[str, Any]:
        link = {"tableLinkId": "L", "leftRecord": "a", "rightRecord": right}
        return {"requestId": request_id, "at": at, "links": [link]}

    # Newest first, as RequestLog gives them.
    requests = [
        request("late", 30.0, "b"),
        request("other", 20.0, "c"),
        request("early", 10.0, "b"),
    ]
    call = {"tableLinkId": "L", "leftRecord": "a", "rightRecord": "b"}
    assert console._request_of(call | {"at": 25.0}, requests) == "early"
    assert console._request_of(call | {"at": 35.0}, requests) == "late"
    assert console._request_of(call | {"at": 5.0}, requests) is None
    assert console._request_of({"tableLinkId": "L", "at": 40.0}, requests) is None  # a GET


@contextlib.contextmanager
def simulator() -> Iterator[tuple[TulipSimulator, str]]:
    simulated = TulipSimulator(json.loads(DEFAULT_SEED.read_text()))
    server = make_server(simulated, 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield simulated, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def local_run(simulator_url: str | None, pubsub_state_url: str | None = None) -> LocalRun:
    return LocalRun(RequestLog(), simulator_url, pubsub_state_url, lambda: (0, {}), None)


def test_a_piece_that_does_not_answer_is_shown_as_unavailable_not_as_an_error():
    with simulator() as (_, url):
        data = console.snapshot(local_run(url, "http://127.0.0.1:9/state"))
    assert "did not answer" in data["queue"]["unavailable"]
    assert data["tulip"]["links"]  # the simulator still shows
    page = console.render_page(data, "", "")
    assert "The Pub/Sub simulator is unavailable" in page


def test_links_a_call_of_this_run_made_are_new_and_the_seeds_are_not():
    with simulator() as (simulated, url):
        token = "Basic " + base64.b64encode(f"{DEV_API_KEY}:{DEV_API_SECRET}".encode()).decode()
        body = json.dumps({"leftRecord": "WO-1001", "rightRecord": "SN-0001"}).encode()
        path = "/api/v3/tableLinks/WorkOrderSerials/link"
        assert simulated.handle("PUT", path, token, body)[0] == 204
        data = console.snapshot(local_run(url))
    [work_orders] = [link for link in data["tulip"]["links"] if link["id"] == "WorkOrderSerials"]
    marks = {(p["left"], p["right"]): p["new"] for p in work_orders["pairs"]}
    assert marks == {("WO-1002", "SN-0004"): False, ("WO-1001", "SN-0001"): True}


def test_each_dead_letter_shows_how_it_got_there_and_why():
    pubsub = PubsubSimulator()
    state = serve_state(pubsub, "127.0.0.1", 0)
    try:
        dead = "projects/p/topics/tulip-link-dead-letter"
        pubsub.add_topic(dead)
        pubsub.add_subscription("projects/p/subscriptions/tulip-link-dead-letter", dead)
        link = json.dumps({"tableLinkId": "L", "leftRecord": "a", "rightRecord": "b"}).encode()
        reason = {"errorCode": "TULIP_REJECTED", "deliveryAttempt": "1",
                  "deadLetterReason": "Tulip answered 409: LINK_CARDINALITY_VIOLATION"}  # fmt: skip
        pubsub.publish(dead, link, reason)
        pubsub.publish(dead, link, {"CloudPubSubDeadLetterSourceDeliveryCount": "100"})
        data = console.snapshot(
            local_run(None, f"http://127.0.0.1:{state.server_address[1]}/state")
        )
    finally:
        state.shutdown()
        state.server_close()
        pubsub.stop()
    page = console.render_page(data, "", "")
    assert "dead letter: TULIP_REJECTED: Tulip answered 409: LINK_CARDINALITY_VIOLATION" in page
    assert "1 (refused)" in page
    assert "dead letter: Pub/Sub gave up" in page and "100 (then dead-lettered)" in page


# --- What its buttons do -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("form", "faults", "said"),
    [
        ({"fault": "down"}, console.DOWN_CALLS, "Tulip fails: down"),
        ({"fault": "503", "count": "3"}, 3, "503 for the next 3 calls"),
        ({"fault": "503", "count": "1000"}, 100, "503 for the next 100 calls"),  # capped
        ({"fault": "drop"}, 1, "drop the next call"),
    ],
)
def test_the_fault_buttons_set_the_simulators_switch(form, faults, said):
    with simulator() as (simulated, url):
        assert said in console.act(local_run(url), "fault", form)
        assert simulated.state()["faultsPending"] == faults
        assert "Tulip recovered" in console.act(local_run(url), "recover", {})
        assert simulated.state()["faultsPending"] == 0


def test_a_button_that_cannot_work_says_why():
    with simulator() as (_, url):
        assert "No such fault" in console.act(local_run(url), "fault", {"fault": "fire"})
        assert "whole number" in console.act(
            local_run(url), "fault", {"fault": "503", "count": "x"}
        )
        assert "no dead letters" in console.act(local_run(url), "replay", {})
    assert "real Tulip" in console.act(local_run(None), "fault", {"fault": "down"})


# --- The page without JavaScript ---------------------------------------------------------------


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as answer:
        return str(answer.read().decode())


def test_the_page_works_without_javascript_and_escapes_what_it_shows():
    log = RequestLog()
    log.feed(queued("<script>alert(1)</script>"))
    sent: list[str] = []

    def send() -> tuple[int, dict[str, str]]:
        sent.append("sent")
        return 202, {"status": "queued", "requestId": "r1"}

    with simulator() as (_, url):
        served = console.serve(
            LocalRun(log, url, None, lambda: send(), None),
            "127.0.0.1",
            0,
        )
        base = f"http://127.0.0.1:{served.server_address[1]}"
        try:
            page = get(f"{base}/")
            assert "<script>alert(1)</script>" not in page
            assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
            assert '<form method="post" action="/actions/send">' in page
            assert "WorkOrderSerials" in page  # the links, rendered on the server
            # A form posted without JavaScript comes back to the page, which says what happened.
            request = urllib.request.Request(f"{base}/actions/send", b"", method="POST")
            with urllib.request.urlopen(request, timeout=10) as answer:
                assert answer.url == f"{base}/"
                assert "Sent the example request: 202 queued" in answer.read().decode()
            assert sent == ["sent"]
            live = json.loads(get(f"{base}/live"))
            assert set(live["sections"]) == {"requests", "queue", "calls", "links", "tulip-state"}
            assert json.loads(get(f"{base}/state.json"))["requests"][0]["event"] == "link.queued"
        finally:
            served.shutdown()
            served.server_close()


@pytest.mark.parametrize(
    ("method", "headers"),
    [
        ("GET", {"Host": "evil.example:{port}"}),  # a page that rebinds its name to us
        ("POST", {"Host": "evil.example:{port}"}),
        ("POST", {"Origin": "https://evil.example"}),  # a form of another site
        ("POST", {"Origin": "null"}),
        ("POST", {"Sec-Fetch-Site": "cross-site"}),
        ("POST", {"Content-Type": "text/plain"}),  # what a page may send without a preflight
    ],
)
def test_no_other_site_can_read_the_console_or_press_its_buttons(method, headers):
    sent: list[str] = []

    def send() -> tuple[int, dict[str, str]]:
        sent.append("sent")
        return 202, {}

    with simulator() as (simulated, url):
        served = console.serve(
            LocalRun(RequestLog(), url, None, send, None),
            "127.0.0.1",
            0,
        )
        port = served.server_address[1]
        own = {"Host": f"127.0.0.1:{port}", "Content-Type": "application/x-www-form-urlencoded"}
        try:
            for action, form in (("send", ""), ("fault", "fault=503&count=5")):
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                given = own | {k: v.format(port=port) for k, v in headers.items()}
                body = form if method == "POST" else None
                connection.request(method, f"/actions/{action}" if body is not None else "/",
                                   body, given)  # fmt: skip
                answer = connection.getresponse()
                assert answer.status == 403 and "Refused" in answer.read().decode()
                connection.close()
            assert sent == [] and simulated.state()["faultsPending"] == 0
            # Its own page, by either of its names, presses them.
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            ours = own | {"Host": f"localhost:{port}", "Origin": f"http://localhost:{port}",
                          "Sec-Fetch-Site": "same-origin", "Accept": "application/json"}  # fmt: skip
            connection.request("POST", "/actions/send", "", ours)
            assert connection.getresponse().status == 200 and sent == ["sent"]
            connection.close()
        finally:
            served.shutdown()
            served.server_close()


# --- In a real browser, against make run ----------------------------------------------

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")


@pytest.fixture
def browser() -> Iterator[Any]:
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip(
            "no Chromium and ChromeDriver here (make test installs Debian's chromium and "
            "chromium-driver as root; else: sudo apt-get install chromium chromium-driver)"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--window-size=1280,1000"):  # fmt: skip
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def stack() -> Iterator[Running]:
    retries = ("--min-backoff", "0.3", "--max-backoff", "0.6", "--max-delivery-attempts", "10")
    with runner(*retries) as started:
        yield started


def attempts(browser: Any) -> list[int]:
    """The queue's delivery attempts, read in one script: the page swaps its rows every second,
    so rows found one call earlier may be gone."""
    cells = browser.execute_script(
        "return [...document.querySelectorAll('#queue tr')]"
        ".map(row => row.cells.length > 3 ? row.cells[3].textContent : '')"
    )
    return [int(text) for text in cells if text.isdigit()]


def click(browser: Any, selector: str) -> bool:
    """Click what `selector` finds; False if the page swapped it out meanwhile (try again)."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By

    try:
        browser.find_element(By.CSS_SELECTOR, selector).click()
    except StaleElementReferenceException:
        return False
    return True


@pytest.mark.processes
def test_the_console_shows_a_request_its_retries_and_its_link_without_a_reload(browser, stack):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    browser.get(f"http://127.0.0.1:{stack.ports.console}/")
    assert browser.find_element(By.TAG_NAME, "h1").text == "tulip-link, running locally"
    loaded = browser.execute_script("return window.consoleLoaded")

    def shown(element_id: str) -> str:
        return str(browser.find_element(By.ID, element_id).text)

    Select(browser.find_element(By.ID, "fault")).select_by_value("down")
    browser.find_element(By.XPATH, "//button[text()='Fail']").click()
    until(lambda: "Tulip is down" in shown("tulip-state"), "the page to say Tulip is down")
    browser.find_element(By.XPATH, "//button[text()='Send the example request']").click()
    until(lambda: "202 queued" in shown("notice"), "the answer to the example request")
    request_id = shown("notice").split("requestId ")[1].rstrip(").")
    until(lambda: request_id[:8] in shown("requests"), "the request in the requests table")
    # Tulip answers 503: the events function fails each delivery and Pub/Sub retries it.
    until(lambda: max(attempts(browser), default=0) >= 2, "the queue to show a second delivery")
    until(lambda: "503" in shown("calls"), "the refused calls among the Tulip calls")
    browser.find_element(By.XPATH, "//button[text()='Tulip recovers']").click()
    until(lambda: "WO-1001 ↔ SN-0001 new" in shown("links"), "the new link", seconds=60)
    # The events function's line saying so may come a moment after the link.
    until(lambda: "— done" in shown("requests"), "the request's delivery to say done")
    # Following the request marks its rows in every section.
    until(lambda: click(browser, f'#requests a[data-follow="{request_id}"]'), "a click")
    until(
        lambda: len(browser.find_elements(By.CSS_SELECTOR, "tr.followed, li.followed")) >= 3,
        "the followed request's rows",
    )
    assert browser.execute_script("return window.consoleLoaded") == loaded  # never reloaded
    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "console.png"))
    assert (ARTIFACTS / "console.png").stat().st_size > 10_000
