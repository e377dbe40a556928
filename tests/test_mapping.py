"""LINK_MAPPING through the real app: a sender's own JSON read with JMESPath, `when`, fan-out,
several rules, and every way a mapping or a mapped value can be wrong."""

from __future__ import annotations

import json

import pytest

from tests.helpers import ROOT, b64, link_url, log_lines, push_envelope

EXAMPLE = {
    "event": "serial.assigned",
    "data": {"order": {"number": "WO-1001"}, "serials": ["SN-1", "SN-2"]},
}
ISSUE_MAPPING = {
    "when": "event == 'serial.assigned'",
    "leftRecord": "data.order.number",
    "rightRecord": "data.serials",
}


@pytest.fixture
def mapping(env):
    def set_mapping(value, **settings):
        env.set(
            LINK_MAPPING=value if isinstance(value, str) else json.dumps(value),
            TULIP_TABLE_LINK_ID="Orders_Serials",
            **settings,
        )

    return set_mapping


def test_the_issue_example_links_the_order_with_each_serial(client, tulip, mapping):
    mapping(ISSUE_MAPPING)
    first = tulip.put(link_url("Orders_Serials"), status=204)
    response = client.post("/", json=EXAMPLE)
    assert response.status_code == 200
    assert response.json["status"] == "done"
    assert [(r["leftRecord"], r["rightRecord"]) for r in response.json["results"]] == [
        ("WO-1001", "SN-1"),
        ("WO-1001", "SN-2"),
    ]
    sent = sorted(json.loads(call.request.body)["rightRecord"] for call in first.calls)
    assert sent == ["SN-1", "SN-2"]


def test_a_false_when_is_ignored_acked_and_logged(client, tulip, mapping, capsys):
    mapping(ISSUE_MAPPING)
    response = client.post("/", json={**EXAMPLE, "event": "serial.scrapped"})
    assert response.status_code == 200
    assert response.json == {"status": "ignored", "requestId": response.json["requestId"]}
    [line] = log_lines(capsys.readouterr().out)
    assert (line["event"], line["severity"]) == ("link.ignored", "INFO")
    assert line["when"] == ["event == 'serial.assigned'"]
    assert len(tulip.calls) == 0


def test_the_quoting_trap_compares_two_fields_and_ignores_everything(client, tulip, mapping):
    mapping({**ISSUE_MAPPING, "when": 'event == "serial.assigned"'})  # a field, not a string
    assert client.post("/", json=EXAMPLE).json["status"] == "ignored"


def test_a_when_that_fails_counts_as_false_and_warns(client, tulip, mapping, capsys):
    mapping({**ISSUE_MAPPING, "when": "starts_with(event, 'serial.')"})
    response = client.post("/", json={"data": {}})  # no event: starts_with(null, ...) fails
    assert response.json["status"] == "ignored"
    warning, ignored = log_lines(capsys.readouterr().out)
    assert (warning["event"], warning["severity"]) == ("mapping.when_failed", "WARNING")
    assert warning["when"] == "starts_with(event, 'serial.')"
    assert "invalid type for value: None" in warning["message"]
    assert ignored["event"] == "link.ignored"


@pytest.mark.parametrize(
    ("body", "field", "problem"),
    [
        (
            {"event": "serial.assigned", "data": {"serials": ["SN-1"]}},
            "leftRecord",
            "data.order.number gave null",
        ),
        (
            {"event": "serial.assigned", "data": {"order": {"number": {"n": 1}}, "serials": "S"}},
            "leftRecord",
            "data.order.number gave an object: must be a string or an integer, not an object",
        ),
        (
            {"event": "serial.assigned", "data": {"order": {"number": "W"}, "serials": []}},
            "rightRecord",
            "data.serials gave an empty array",
        ),
    ],
)
def test_a_bad_mapped_value_is_422_naming_our_field_and_quoting_the_expression(
    client, tulip, mapping, body, field, problem
):
    mapping(ISSUE_MAPPING)
    response = client.post("/", json=body)
    assert response.status_code == 422
    assert response.json["fields"] == [{"field": field, "problem": problem}]


def test_a_run_time_error_in_a_field_is_422(client, mapping):
    mapping({"leftRecord": "data.order", "rightRecord": "abs(data.n)"})
    response = client.post("/", json={"data": {"order": "WO-1", "n": "not a number"}})
    assert response.status_code == 422
    [problem] = response.json["fields"]
    assert problem["field"] == "rightRecord"
    assert problem["problem"].startswith("abs(data.n) failed: In function abs(), invalid type")


def test_a_bad_element_is_named_by_position(client, mapping):
    mapping(ISSUE_MAPPING)
    body = {"event": "serial.assigned", "data": {"order": {"number": "W"}, "serials": ["ok", ""]}}
    response = client.post("/", json=body)
    assert response.json["fields"] == [
        {
            "field": "rightRecord[1]",
            "problem": "data.serials gave a string: must not be empty or only whitespace",
        }
    ]


def test_a_one_element_array_still_answers_as_a_batch(client, tulip, mapping):
    mapping(ISSUE_MAPPING)
    tulip.put(link_url("Orders_Serials"), status=204)
    body = {"event": "serial.assigned", "data": {"order": {"number": "W"}, "serials": ["S"]}}
    assert client.post("/", json=body).json["status"] == "done"


def test_arrays_on_both_sides_pair_by_position(client, tulip, mapping):
    mapping({"leftRecord": "pairs[*].a", "rightRecord": "pairs[*].b"})
    tulip.put(link_url("Orders_Serials"), status=204)
    body = {"pairs": [{"a": "A1", "b": "B1"}, {"a": "A2", "b": "B2"}]}
    results = client.post("/", json=body).json["results"]
    assert [(r["leftRecord"], r["rightRecord"]) for r in results] == [("A1", "B1"), ("A2", "B2")]


def test_arrays_of_different_lengths_are_422(client, mapping):
    mapping({"leftRecord": "a", "rightRecord": "b"})
    response = client.post("/", json={"a": ["1", "2"], "b": ["1"]})
    assert response.status_code == 422
    [problem] = response.json["fields"]
    assert problem["field"] == "rightRecord" and "same length" in problem["problem"]


def test_fan_out_counts_against_max_batch_links(client, mapping):
    mapping(ISSUE_MAPPING, MAX_BATCH_LINKS="1")
    response = client.post("/", json=EXAMPLE)
    assert response.status_code == 422
    [problem] = response.json["fields"]
    assert problem["field"] == "LINK_MAPPING" and "MAX_BATCH_LINKS (1)" in problem["problem"]


def test_one_rule_one_pair_answers_as_a_single_request(client, tulip, mapping):
    mapping({"leftRecord": "wo", "rightRecord": "sn", "action": "op"})
    tulip.put(link_url("Orders_Serials", "unlink"), status=204)
    response = client.post("/", json={"wo": "WO-1", "sn": 7, "op": "unlink"})
    assert response.json["status"] == "unlinked" and response.json["rightRecord"] == "7"


@pytest.mark.parametrize("constant", ["`Other_Link`", "'Other_Link'", '`"Other_Link"`'])
def test_constants_and_fallbacks_are_written_in_the_expression(client, tulip, mapping, constant):
    mapping({"tableLinkId": constant, "leftRecord": "wo || `WO-0`", "rightRecord": "sn"})
    tulip.put(link_url("Other_Link"), status=204)
    response = client.post("/", json={"sn": "SN-1"})
    assert (response.json["tableLinkId"], response.json["leftRecord"]) == ("Other_Link", "WO-0")


def test_a_mapped_table_link_or_action_that_gives_null_is_422_not_the_default(client, mapping):
    mapping({"tableLinkId": "link", "action": "op", "leftRecord": "a", "rightRecord": "b"})
    response = client.post("/", json={"a": "1", "b": "2"})
    assert response.json["fields"] == [
        {"field": "tableLinkId", "problem": "link gave null"},
        {"field": "action", "problem": "op gave null"},
    ]


def test_a_mapped_value_is_validated_as_a_direct_field(client, mapping, env):
    mapping({"tableLinkId": "link", "leftRecord": "a", "rightRecord": "b", "action": "op"})
    env.set(TULIP_ALLOWED_TABLE_LINK_IDS="Orders_Serials")
    response = client.post("/", json={"link": "Elsewhere", "a": "1", "b": "2", "op": "LINK"})
    assert response.json["fields"] == [
        {
            "field": "tableLinkId",
            "problem": "link gave a string: is not one of the table links this function may change",
        },
        {"field": "action", "problem": 'op gave a string: must be "link" or "unlink" (lower case)'},
    ]


SEVERAL = [
    {"when": "type == 'a'", "tableLinkId": "'First'", "leftRecord": "l", "rightRecord": "r"},
    {"when": "type == 'a' || type == 'b'", "tableLinkId": "'Second'", "leftRecord": "r",
     "rightRecord": "p"},
]  # fmt: skip


def test_every_rule_that_holds_applies_and_together_they_form_one_batch(client, tulip, mapping):
    mapping(SEVERAL)
    tulip.put(link_url("First"), status=204)
    tulip.put(link_url("Second"), status=204)
    response = client.post("/", json={"type": "a", "l": "WO-1", "r": "SN-1", "p": "PUMP"})
    results = response.json["results"]
    assert [(r["tableLinkId"], r["leftRecord"], r["rightRecord"]) for r in results] == [
        ("First", "WO-1", "SN-1"),
        ("Second", "SN-1", "PUMP"),
    ]


def test_with_several_rules_one_pair_still_answers_as_a_single_request(client, tulip, mapping):
    mapping(SEVERAL)
    tulip.put(link_url("Second"), status=204)
    response = client.post("/", json={"type": "b", "r": "SN-1", "p": "PUMP"})
    assert response.json["status"] == "linked"


def test_no_rule_holds_lists_every_when(client, mapping, capsys):
    mapping(SEVERAL)
    assert client.post("/", json={"type": "c"}).json["status"] == "ignored"
    [line] = log_lines(capsys.readouterr().out)
    assert line["when"] == ["type == 'a'", "type == 'a' || type == 'b'"]


def test_errors_name_the_rule_and_one_bad_rule_refuses_the_whole_event(client, mapping):
    mapping(SEVERAL)
    response = client.post("/", json={"type": "a", "l": "WO-1", "r": "SN-1"})
    assert response.status_code == 422
    assert response.json["fields"] == [
        {"field": "LINK_MAPPING[1].rightRecord", "problem": "p gave null"}
    ]


def test_the_links_of_all_rules_count_together(client, mapping):
    mapping(SEVERAL, MAX_BATCH_LINKS="1")
    response = client.post("/", json={"type": "a", "l": "W", "r": "S", "p": "P"})
    assert response.status_code == 422


def test_a_body_is_read_only_through_the_mapping(client, tulip, mapping):
    mapping({"leftRecord": "wo", "rightRecord": "sn"})
    response = client.post("/", json={"leftRecord": "A", "rightRecord": "B", "links": []})
    assert response.json["fields"] == [
        {"field": "leftRecord", "problem": "wo gave null"},
        {"field": "rightRecord", "problem": "sn gave null"},
    ]


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("{not json", "LINK_MAPPING: is not valid JSON"),
        ("[]", "LINK_MAPPING: is an empty array"),
        ('"x"', "LINK_MAPPING: must be a JSON object or an array of them, not a string"),
        ('{"leftRecord": "a"}', "LINK_MAPPING: rightRecord is required"),
        ('{"leftRecord": "a", "rightRecord": "b", "rightRecords": "c"}', 'unknown key "rightRecords"'),
        ('{"leftRecord": "a", "rightRecord": "b ||"}', "LINK_MAPPING: rightRecord is not a JMESPath"),
        ('{"leftRecord": 5, "rightRecord": "b"}', "leftRecord must be a JMESPath expression"),
        ('[{"leftRecord": "a", "rightRecord": "b"}, {"leftRecord": "a", "rightRecord": "lenght(b)"}]',
         "LINK_MAPPING[1].rightRecord calls an unknown function lenght()"),
        ('{"leftRecord": "a", "rightRecord": "b", "when": "length(a, b)"}',
         "when calls length() with 2 arguments; it takes 1"),
        ('[{"leftRecord": "a", "rightRecord": "b"}, 3]', "LINK_MAPPING[1]: must be a JSON object"),
    ],
)  # fmt: skip
def test_a_bad_mapping_is_misconfigured_naming_the_key(client, env, value, says):
    env.set(LINK_MAPPING=value, TULIP_TABLE_LINK_ID="T")
    for _ in range(2):  # on every request
        response = client.post("/", json={"a": "1", "b": "2"})
        assert (response.status_code, response.json["errorCode"]) == (500, "MISCONFIGURED")
        assert says in response.json["message"]


def test_a_mapping_without_a_table_link_needs_the_default(client, env):
    env.set(LINK_MAPPING='{"leftRecord": "a", "rightRecord": "b"}')
    response = client.post("/", json={"a": "1", "b": "2"})
    assert response.status_code == 500
    assert "TULIP_TABLE_LINK_ID" in response.json["message"]


def test_the_mapping_reads_a_push_envelopes_data(push_client, tulip, mapping):
    mapping(ISSUE_MAPPING)
    tulip.put(link_url("Orders_Serials"), status=204)
    response = push_client.post("/", json=push_envelope(EXAMPLE))
    assert response.status_code == 200 and len(response.json["results"]) == 2


def test_an_ignored_push_message_is_acked(push_client, tulip, mapping):
    mapping(ISSUE_MAPPING)
    response = push_client.post("/", json=push_envelope({"event": "other"}))
    assert response.status_code == 200  # acked: it would never be handled


def test_with_a_mapping_a_push_envelope_to_a_webhook_is_the_senders_json(client, mapping):
    """A sender may post anything; with a mapping, an envelope-shaped body is read through it
    like any other (here no rule holds: ignored), never unwrapped as a Pub/Sub message."""
    mapping(ISSUE_MAPPING)
    response = client.post("/", json=push_envelope(EXAMPLE))
    assert (response.status_code, response.json["status"]) == (200, "ignored")


@pytest.mark.parametrize(("event", "acked"), [(EXAMPLE, True), ({"event": "other"}, True)])
def test_the_mapping_reads_an_eventarc_messages_data(event_client, tulip, mapping, event, acked):
    mapping(ISSUE_MAPPING)
    if event is EXAMPLE:
        tulip.put(link_url("Orders_Serials"), status=204)
    data = {"message": {"data": b64(event), "messageId": "m1"}, "subscription": "s"}
    headers = {
        "ce-id": "m1",
        "ce-specversion": "1.0",
        "ce-source": "//pubsub.googleapis.com/projects/p/topics/t",
        "ce-type": "google.cloud.pubsub.topic.v1.messagePublished",
    }
    assert (event_client.post("/", json=data, headers=headers).status_code == 200) is acked


@pytest.mark.parametrize(
    ("mapping_file", "payload_file", "links"),
    [
        (
            "mes-mapping.json",
            "mes-serials-assigned.json",
            {
                "WorkOrderSerials": [["WO-1002", "SN-0004"], ["WO-1001", "SN-0001"],
                                     ["WO-1001", "SN-0002"]],
                "SerialProduct": [["SN-0001", "PUMP-A"], ["SN-0002", "PUMP-A"]],
            },
        ),
        ("jira-mapping.json", "jira-issue-created.json", {"SerialTickets": [["SN-0003", "QA-7"]]}),
    ],
)  # fmt: skip
def test_the_readme_examples_link_in_the_simulator(
    client, env, simulator, mapping_file, payload_file, links
):
    examples = ROOT / "devtools" / "examples"
    env.set(LINK_MAPPING=(examples / mapping_file).read_text())
    response = client.post(
        "/", data=(examples / payload_file).read_bytes(), content_type="application/json"
    )
    assert response.status_code == 200, response.json
    for table_link, pairs in links.items():
        assert sorted(simulator.links(table_link)) == sorted(pairs)  # linked concurrently


def test_the_jira_example_unlinks_when_the_issue_is_deleted(client, env, simulator):
    examples = ROOT / "devtools" / "examples"
    env.set(LINK_MAPPING=(examples / "jira-mapping.json").read_text())
    created = json.loads((examples / "jira-issue-created.json").read_text())
    assert client.post("/", json=created).status_code == 200
    deleted = {**created, "webhookEvent": "jira:issue_deleted"}
    assert client.post("/", json=deleted).json["status"] == "unlinked"
    assert simulator.links("SerialTickets") == []
    updated = {**created, "webhookEvent": "jira:issue_updated"}
    assert client.post("/", json=updated).json["status"] == "ignored"


@pytest.mark.parametrize(
    "name",
    [
        "mes-serials-assigned.json",
        "mes-mapping.json",
        "jira-issue-created.json",
        "jira-mapping.json",
    ],
)
def test_the_readme_shows_the_examples_the_tests_run(name):
    text = (ROOT / "devtools" / "examples" / name).read_text().rstrip()
    assert f"```json\n{text}\n```" in (ROOT / "docs" / "senders.md").read_text()
