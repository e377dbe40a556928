"""Log lines: one JSON object per line, with severity, scope fields and trace."""

from __future__ import annotations

import io
import json
import sys

from function import logs
from tests.helpers import link_url, log_lines, request_body


def test_lines_are_json_with_severity_and_scope(capsys):
    with logs.scope(requestId="r1", empty=None):
        logs.bind(tableLinkId="T")
        logs.emit("WARNING", "tulip.retry", "hello\nworld", attempt=2, skipped=None)
    logs.emit("INFO", "link.done", "outside")
    first, second = log_lines(capsys.readouterr().out)
    assert first == {
        "severity": "WARNING",
        "message": "hello\nworld",
        "event": "tulip.retry",
        "requestId": "r1",
        "tableLinkId": "T",
        "attempt": 2,
    }
    assert "requestId" not in second


def test_lines_follow_whatever_stdout_is_now(monkeypatch):
    replaced = io.StringIO()
    monkeypatch.setattr(sys, "stdout", replaced)
    logs.emit("INFO", "link.done", "m")
    assert '"event":"link.done"' in replaced.getvalue()


def test_trace_fields():
    headers = {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
    assert logs.trace_fields(headers, "proj") == {
        logs.TRACE_FIELD: "projects/proj/traces/4bf92f3577b34da6a3ce929d0e0e4736",
        logs.SPAN_FIELD: "00f067aa0ba902b7",
    }
    cloud = {"X-Cloud-Trace-Context": "4BF92F3577B34DA6A3CE929D0E0E4736/1;o=1"}
    assert logs.trace_fields(cloud, "proj") == {
        logs.TRACE_FIELD: "projects/proj/traces/4bf92f3577b34da6a3ce929d0e0e4736",
        logs.SPAN_FIELD: "0000000000000001",
    }
    assert logs.trace_fields(headers, None) == {}
    assert logs.trace_fields({"traceparent": "garbage"}, "proj") == {}


def test_every_line_of_a_request_carries_its_id_and_trace(client, tulip, env, capsys):
    env.set(GOOGLE_CLOUD_PROJECT="proj")
    tulip.put(link_url(), status=503)
    tulip.put(link_url(), status=204)
    trace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    response = client.post(
        "/", json=request_body(), headers={"traceparent": trace, "Function-Execution-Id": "ex1"}
    )
    lines = log_lines(capsys.readouterr().out)
    assert [line["event"] for line in lines] == ["tulip.retry", "link.done"]
    for line in lines:
        assert line["requestId"] == response.json["requestId"] and line["executionId"] == "ex1"
        assert line[logs.TRACE_FIELD].endswith("/traces/4bf92f3577b34da6a3ce929d0e0e4736")
    done = lines[-1]
    assert done["tableLinkId"] and done["action"] == "link" and done["outcome"] == "done"
    assert done["attempts"] == 2 and done["latencyMs"] >= 0


def test_the_framework_execution_id_wrapper_sees_our_lines(client, tulip, env, capsys):
    env.set(LOG_EXECUTION_ID="true")
    import functions_framework

    from tests.helpers import ROOT

    wrapped = functions_framework.create_app("link_records", str(ROOT / "main.py")).test_client()
    tulip.put(link_url(), status=204)
    wrapped.post("/", json=request_body(), headers={"Function-Execution-Id": "abc123"})
    [line] = [x for x in log_lines(capsys.readouterr().out) if x.get("event") == "link.done"]
    assert line["logging.googleapis.com/labels"]["execution_id"] == "abc123"


def test_a_line_too_long_for_cloud_logging_is_cut_to_fit_and_says_so(capsys):
    huge, large = "x" * (logs.LINE_LIMIT * 2), {"items": ["y" * 1000] * 100}
    logs.emit("ERROR", "link.failed", "m", requestId="r1", details=huge, context=large)
    [text] = capsys.readouterr().out.splitlines()
    assert len(text) <= logs.LINE_LIMIT
    line = json.loads(text)
    assert line["severity"] == "ERROR" and line["requestId"] == "r1"  # the small ones whole
    assert line["cutFields"] == ["details"]  # cutting the largest was enough
    assert line["details"].endswith(f"... [cut: {len(huge)} characters in all]")
    assert line["context"] == large


def test_a_line_within_the_limit_is_written_whole(capsys):
    logs.emit("INFO", "link.done", "m", details="x" * (logs.LINE_LIMIT - 1000))
    line = json.loads(capsys.readouterr().out)
    assert "cutFields" not in line and len(line["details"]) == logs.LINE_LIMIT - 1000
