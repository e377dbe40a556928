"""make bench's reading of wrk's report (the bench itself is not part of the tests)."""

from __future__ import annotations

import pytest

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
