"""infra/'s dashboard and alerts, checked offline: the dashboard's JSON parsed strictly with the
Monitoring Dashboards API's own published message types (a misspelt field or enum fails), every
metric it or an alert reads either built in or made by infra/, each chart explained, and each
alert policy linked to its own section of the runbook, both ways."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from google.cloud.monitoring_dashboard_v1.types import Dashboard

from tests.helpers import ROOT, anchors
from tests.terraform import INFRA, RESOURCES, TF, one

TEMPLATE = (INFRA / "dashboard.json.tftpl").read_text()
DASHBOARD = RESOURCES["google_monitoring_dashboard"]["overview"]
ALERTS = RESOURCES["google_monitoring_alert_policy"]
RUNBOOK = ROOT / "docs" / "runbook.md"
# Google's built-in metrics this configuration reads (cloud.google.com/monitoring/api/metrics_gcp):
# Pub/Sub's subscription metrics and Cloud Run's.
BUILT_IN = {
    "pubsub.googleapis.com/subscription/num_undelivered_messages",
    "pubsub.googleapis.com/subscription/oldest_unacked_message_age",
    "run.googleapis.com/container/instance_count",
    "run.googleapis.com/request_latencies",
}


def rendered(
    name_prefix: str = "tulip-link",
    stuck_seconds: int = 1800,
    functions: tuple[str, ...] = ("webhook", "events"),
) -> str:
    """The template as Terraform's templatefile() renders it with these values."""
    services = ", ".join(f'\\"{name_prefix}-{key}\\"' for key in functions)
    values = {"name_prefix": name_prefix, "stuck_seconds": str(stuck_seconds), "services": services}
    text = re.sub(r"\$\{(\w+)\}", lambda m: values[m.group(1)], TEMPLATE)
    assert "${" not in text and "%{" not in text
    return text


def test_terraform_passes_the_template_exactly_the_values_it_uses():
    passed = set(re.findall(r"(\w+)\s*=", DASHBOARD["dashboard_json"].split("{", 1)[1]))
    used = set(re.findall(r"\$\{(\w+)\}", TEMPLATE))
    assert passed == used == {"name_prefix", "stuck_seconds", "services"}
    assert "dashboard.json.tftpl" in DASHBOARD["dashboard_json"]
    assert DASHBOARD["depends_on"] == ["${time_sleep.metric_available}"]


@pytest.mark.parametrize(
    "prefix, functions",
    [("tulip-link", ("webhook", "events")), ("plant-7-links", ("mes", "jira", "events"))],
)
def test_the_dashboard_is_what_the_dashboards_api_accepts(prefix, functions):
    # Strict: an unknown field or enum value raises, as the API would refuse it.
    text = rendered(prefix, functions=functions)
    dashboard = Dashboard.from_json(text, ignore_unknown_fields=False)
    assert all(f'\\"{prefix}-{key}\\"' in text for key in functions)
    assert dashboard.display_name == f"{prefix}: links"
    assert len(dashboard.grid_layout.widgets) >= 10


def metric_types(text: str) -> set[str]:
    return set(re.findall(r'metric\.type\s*=\s*\\?"([^"\\]+)\\?"', text))


def made_here() -> set[str]:
    """The log-based metrics infra/ creates, as their metric types."""
    names = [body["name"] for body in RESOURCES["google_logging_metric"].values()]
    return {f"logging.googleapis.com/user/{name}" for name in names}


def test_every_metric_charted_is_built_in_or_made_here():
    charted = metric_types(rendered())
    assert charted, "no metric found"
    made = {t.replace("${var.name_prefix}", "tulip-link") for t in made_here()}
    assert charted <= BUILT_IN | made, charted - BUILT_IN - made
    assert made <= charted  # and every metric made here is charted


def test_every_metric_an_alert_reads_is_built_in_or_made_here():
    for name, alert in ALERTS.items():
        for condition in alert["conditions"]:
            if "condition_threshold" not in condition:
                continue
            text = one(condition["condition_threshold"])["filter"]
            types = metric_types(text.replace("${google_logging_metric.link_outcomes.name}",
                                              "${var.name_prefix}/link_outcomes"))  # fmt: skip
            assert types and types <= BUILT_IN | made_here(), name


def test_the_dashboard_covers_what_an_operator_watches():
    text = rendered()
    for needed in (
        "link_outcomes",  # links by outcome and errorCode
        "metric.label.error_code",
        "metric.label.sender",  # which system is failing
        "REDUCE_PERCENTILE_50",
        "REDUCE_PERCENTILE_95",
        "REDUCE_PERCENTILE_99",  # Tulip latency
        "tulip-link-push",  # the backlog and the oldest message
        "oldest_unacked_message_age",
        "tulip-link-dead-letter",
        "instance_count",
        "request_latencies",
    ):
        assert needed in text, needed


def test_the_outcomes_carry_the_sender_the_log_lines_name():
    # The field both functions bind on every line of a request (tests/test_queue.py logs it).
    metric = RESOURCES["google_logging_metric"]["link_outcomes"]
    assert metric["label_extractors"]["sender"] == "EXTRACT(jsonPayload.sender)"
    labels = {label["key"] for label in one(metric["metric_descriptor"])["labels"]}
    assert {"event", "error_code", "function", "sender"} == labels


def test_each_chart_says_what_a_good_and_a_bad_picture_look_like():
    widgets: list[dict[str, Any]] = json.loads(rendered())["gridLayout"]["widgets"]
    assert "text" in widgets[-1]
    since_text = 0
    for widget in widgets:
        if "text" in widget:
            content = widget["text"]["content"]
            assert "**Good:**" in content and "**Bad:**" in content, widget["title"]
            assert since_text >= 1, "a text with no chart before it"
            since_text = 0
        else:
            assert "xyChart" in widget
            since_text += 1


def test_the_lag_chart_marks_where_the_stuck_alert_fires():
    assert '"value": 900' in rendered(stuck_seconds=900)


def test_the_latency_metric_is_a_distribution_of_latency_ms():
    metric = RESOURCES["google_logging_metric"]["tulip_latency"]
    assert metric["value_extractor"] == "EXTRACT(jsonPayload.latencyMs)"
    assert one(metric["metric_descriptor"])["value_type"] == "DISTRIBUTION"
    assert "jsonPayload.attempts>=1" in metric["filter"]  # the requests that reached Tulip


def test_the_stuck_alert_watches_the_oldest_message_of_the_push_subscription():
    alert = ALERTS["messages_stuck"]
    assert alert["count"] == "${var.use_eventarc_trigger ? 0 : 1}"
    threshold = one(one(alert["conditions"])["condition_threshold"])
    assert "oldest_unacked_message_age" in threshold["filter"]
    assert "${google_pubsub_subscription.push[0].name}" in threshold["filter"]
    assert threshold["threshold_value"] == "${var.stuck_message_seconds}"
    assert TF["variable"]["stuck_message_seconds"]["default"] == 1800


def section_of(alert: dict[str, Any]) -> str:
    content = one(alert["documentation"])["content"]
    found = re.findall(r"\$\{local\.runbook\}#([a-z0-9-]+)", content)
    assert len(found) == 1, content
    return found[0]


def test_each_alert_links_to_its_own_runbook_section_and_each_section_has_its_alert():
    linked = [section_of(alert) for alert in ALERTS.values()]
    assert len(set(linked)) == len(linked)  # one section each
    sections = {
        anchor
        for anchor in anchors(RUNBOOK)
        if anchor != "runbook"  # the page's title
    }
    assert set(linked) == sections


def test_an_alert_names_its_runbook_section_as_url_or_file_then_anchor():
    """'Runbook: docs/runbook.md#links-failing', or the operator's URL: never text glued to an
    anchor."""
    assert TF["locals"]["runbook"] == (
        '${var.runbook_url != "" ? var.runbook_url : "docs/runbook.md"}'
    )
    for name, policy in ALERTS.items():
        content = one(policy["documentation"])["content"]
        assert re.search(r"Runbook: \$\{local\.runbook\}#[a-z0-9-]+$", content), name


def test_the_runbook_covers_the_usual_causes():
    text = RUNBOOK.read_text()
    for cause in ("rotated", "revoked", "deleted table link", "does not exist **yet**",
                  "cardinality", "secretAccessor", "rate limits"):  # fmt: skip
        assert cause in text, cause
    for section in ("## Links failing", "## Dead letters", "## Messages stuck"):
        body = text.split(section, 1)[1].split("\n## ", 1)[0]
        assert "**What it means:**" in body and "**Confirm the fix:**" in body, section
    assert "ops.dead_letters replay" in text
