"""make bench's reading of wrk's report, and the body bench's payload (the benches themselves are
not part of the tests)."""

from __future__ import annotations

import json

import jmespath
import pytest

from devtools.bench.bodies import MAPPING, push_event
from devtools.bench.measure import parse_wrk

REPORT = """Running 5s test @ http://127.0.0.1:41233/
  2 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    46.12ms   15.84ms 141.47ms   71.20%
    Req/Sec   172.51     33.42   252.00     68.00%
  Latency Distribution
     50%   45.20ms
     75%   54.11ms
     90%   65.80ms
     99%   81.70ms
  1718 requests in 5.01s, 310.32KB read
  Non-2xx or 3xx responses: 3
Requests/sec:    342.91
Transfer/sec:     61.94KB
"""


def test_the_figures_are_read_from_wrks_report():
    load = parse_wrk(REPORT)
    assert (load.requests, load.seconds, load.errors) == (1718, 5.01, 3)
    assert (load.p50_ms, load.p99_ms) == pytest.approx((45.2, 81.7))
    assert load.rps == pytest.approx(342.9, abs=0.1)


def test_microseconds_and_a_clean_run():
    report = REPORT.replace("45.20ms", "812.00us").replace("  Non-2xx or 3xx responses: 3\n", "")
    load = parse_wrk(report)
    assert load.p50_ms == pytest.approx(0.812) and load.errors == 0


@pytest.mark.parametrize("size", [256 * 1024, 1024 * 1024])
def test_the_body_bench_posts_a_push_event_of_the_size_asked_that_its_mapping_reads(size):
    body = push_event(size)
    assert size * 0.95 <= len(body) <= size * 1.05
    event = json.loads(body)
    assert jmespath.search(MAPPING["when"], event) is True  # a link, not an ignored event
    assert jmespath.search(MAPPING["leftRecord"], event) and len(event["commits"]) > 1
