"""openapi.yaml: a valid OpenAPI 3.1 document that matches what the code can answer.

The field patterns are checked against the validators they describe in test_properties.py;
`make fuzz` runs schemathesis against the document and the running function."""

from __future__ import annotations

import base64
import json
import re

import pytest
from openapi_spec_validator import validate

from function.model.status_table import RULES
from tests.helpers import OPENAPI, ROOT, link_url, push_envelope, request_body, schema

SPEC = OPENAPI


def resolve_response(node: dict) -> dict:
    """A response, its `$ref` to components/responses followed."""
    if "$ref" in node:
        return SPEC["components"]["responses"][node["$ref"].split("/")[-1]]
    return node


POST = SPEC["paths"]["/"]["post"]
HANDSHAKE = SPEC["paths"]["/"]["options"]
METHOD_NOT_ALLOWED = SPEC["components"]["responses"]["MethodNotAllowed"]
EVERY_RESPONSE = [
    resolve_response(response)
    for response in [*POST["responses"].values(), *HANDSHAKE["responses"].values()]
] + [METHOD_NOT_ALLOWED]


def test_the_document_is_valid_openapi():
    validate(SPEC)


def test_post_and_the_handshake_are_the_operations_and_the_405_is_described_apart():
    assert SPEC["paths"].keys() == {"/"}
    assert SPEC["paths"]["/"].keys() == {"post", "options"}
    assert "#/components/responses/MethodNotAllowed" in SPEC["info"]["description"]
    assert METHOD_NOT_ALLOWED["headers"]["Allow"]["schema"]["const"] == "POST"


def test_error_codes_match_the_status_table_both_ways():
    in_code = {rule.error_code for rule in RULES.values() if rule.error_code}
    assert set(SPEC["components"]["schemas"]["ErrorCode"]["enum"]) == in_code


def test_every_status_the_code_can_answer_is_described():
    produced = set()
    for rule in RULES.values():
        produced |= {rule.status} if rule.status is not None else set(rule.tulip_statuses)
    described = {int(code) for code in [*POST["responses"], *HANDSHAKE["responses"]]} | {405}
    assert produced == described


def resolve(node: dict) -> dict:
    while "$ref" in node:
        *_, kind, name = node["$ref"].split("/")
        node = SPEC["components"][kind][name]
    return node


def test_retry_after_is_described_where_it_is_sent_and_required_where_always():
    statuses = {rule.status for rule in RULES.values() if rule.retry_after}
    for status in statuses:
        header = resolve(POST["responses"][str(status)]["headers"]["Retry-After"])
        always = all(r.retry_after for r in RULES.values() if r.status == status)
        assert header.get("required", False) == always, status
    for code, response in [*POST["responses"].items(), *HANDSHAKE["responses"].items()]:
        if int(code) not in statuses:
            assert "Retry-After" not in response.get("headers", {}), code


def test_every_answer_is_described_with_its_request_id_and_no_store():
    for response in EVERY_RESPONSE:
        headers = {name: resolve(header) for name, header in response["headers"].items()}
        assert headers["X-Request-Id"]["required"]
        assert headers["Cache-Control"]["schema"]["const"] == "no-store"
        assert headers["Cache-Control"]["required"]


def test_every_answer_carries_no_store(client, tulip):
    tulip.put(link_url(), status=204)
    for response in (client.post("/", json=request_body()), client.get("/"), client.head("/")):
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["X-Request-Id"]


def test_the_push_example_names_the_subscription_terraform_makes():
    prefix = re.search(
        r'variable "name_prefix" \{.*?default\s*=\s*"([^"]+)"',
        (ROOT / "infra/variables.tf").read_text(),
        re.DOTALL,
    )
    name = re.search(
        r'resource "google_pubsub_subscription" "push" \{.*?name\s*=\s*"([^"]+)"',
        (ROOT / "infra/pubsub.tf").read_text(),
        re.DOTALL,
    )
    assert prefix and name
    expected = name[1].replace("${var.name_prefix}", prefix[1])
    example = OPENAPI["components"]["schemas"]["PushEnvelope"]["example"]
    assert example["subscription"].endswith(f"/subscriptions/{expected}")


REQUEST = schema("LinkRequest")
ANY_LINK_CALL = re.compile(r"https://acme\.tulip\.co/api/v3/tableLinks/\w+/(un)?link")


@pytest.mark.parametrize("name", ["direct", "unlinkSnakeCase", "batch"])
def test_each_request_example_fits_its_schema_and_is_served(client, tulip, name):
    body = POST["requestBody"]["content"]["application/json"]["examples"][name]["value"]
    tulip.put(ANY_LINK_CALL, status=204)
    kinds = {kind: schema(kind).is_valid(body) for kind in ("LinkRequest", "BatchRequest")}
    assert sum(kinds.values()) == 1, kinds  # the body's oneOf: its kind is never ambiguous
    assert client.post("/", json=body).status_code == 200


def test_the_push_envelope_example_is_served_by_the_push_entry_point(push_client, tulip):
    envelope = OPENAPI["components"]["schemas"]["PushEnvelope"]["example"]
    schema("PushEnvelope").validate(envelope)
    assert REQUEST.is_valid(json.loads(base64.b64decode(envelope["message"]["data"])))
    tulip.put(ANY_LINK_CALL, status=204)
    assert push_client.post("/", json=envelope).status_code == 200


@pytest.mark.parametrize(
    ("body", "valid"),
    [
        (request_body(), True),
        ({"table_link_id": "x", "left_record": 5, "right_record": "y", "action": "unlink"}, True),
        (request_body(tableLinkId=...), False),  # required where no TULIP_TABLE_LINK_ID is set
        ({**request_body(), "table_link_id": "other"}, False),
        ({**request_body(), "links": []}, False),  # a batch, not a link
        ({**request_body(), "message": {"messageId": "1"}, "subscription": "s"}, False),
        (request_body(leftRecord="   "), False),
        (request_body(action="LINK"), False),
    ],
)
def test_the_link_request_schema_says_what_the_function_accepts(client, tulip, body, valid):
    assert REQUEST.is_valid(body) == valid
    if valid:
        tulip.put(ANY_LINK_CALL, status=204)
    if "links" not in body and "message" not in body:  # those are other kinds of body
        assert (client.post("/", json=body).status_code == 200) == valid


def test_a_batch_needs_a_table_link_at_the_top_or_in_every_link():
    batch = schema("BatchRequest")
    pair = {"leftRecord": "L", "rightRecord": "R"}
    assert batch.is_valid({"tableLinkId": "A", "links": [pair]})
    assert batch.is_valid({"links": [{**pair, "tableLinkId": "A"}]})
    assert not batch.is_valid({"links": [pair, {**pair, "tableLinkId": "A"}]})


def test_a_push_envelope_fits_its_schema():
    schema("PushEnvelope").validate(push_envelope(request_body()))


def test_real_answers_fit_the_documented_bodies(client, tulip):
    tulip.put(link_url(), status=204)
    schema("Linked").validate(client.post("/", json=request_body()).json)
    tulip.put(
        link_url(), status=404, json={"errorCode": "X", "errorUniqueID": "abc", "details": "d"}
    )
    schema("Error").validate(client.post("/", json=request_body()).json)
    schema("Error").validate(client.post("/", json={"leftRecord": True}).json)
    schema("Error").validate(client.get("/").json)


def test_batch_dry_run_and_ignored_answers_fit_their_schemas(client, tulip, env):
    tulip.put(link_url("A"), status=204)
    tulip.put(link_url("B"), status=409, json={"errorCode": "TAKEN", "errorUniqueID": "u1"})
    links = [{"tableLinkId": t, "leftRecord": "L", "rightRecord": "R"} for t in "AB"]
    schema("BatchRequest").validate({"links": links})
    schema("Error").validate(client.post("/", json={"links": links}).json)
    tulip.put(link_url("A"), status=204)
    schema("BatchDone").validate(client.post("/", json={"links": links[:1]}).json)
    tulip.get("https://acme.tulip.co/api/v3/tableLinks/A", json={"leftTableId": "T"})
    schema("DryRunValid").validate(client.post("/?dryRun=true", json={"links": links[:1]}).json)
    env.set(LINK_MAPPING='{"when": "go", "leftRecord": "l", "rightRecord": "r"}')
    env.set(TULIP_TABLE_LINK_ID="A")
    from function import instance

    instance.reset()
    schema("Ignored").validate(client.post("/", json={}).json)


def test_the_handshake_and_a_form_answer_as_described(client, tulip, env):
    env.set(WEBHOOK_ALLOWED_ORIGINS="eventgrid.azure.net")
    allowed = client.options("/", headers={"WebHook-Request-Origin": "eventgrid.azure.net"})
    described = HANDSHAKE["responses"]["200"]
    assert {h for h, d in described["headers"].items() if resolve(d).get("required")} <= set(
        allowed.headers.keys()
    )
    schema("HandshakeAllowed").validate(allowed.json)
    refused = client.options("/", headers={"WebHook-Request-Origin": "evil.example"})
    assert str(refused.status_code) in HANDSHAKE["responses"]
    schema("Error").validate(refused.json)
    form = POST["requestBody"]["content"]["application/x-www-form-urlencoded"]
    body = form["examples"]["direct"]["value"]
    schema("LinkRequest").validate(body)  # a form's fields, as the JSON object they make
    tulip.put(ANY_LINK_CALL, status=204)
    answer = client.post("/", data=body, content_type="application/x-www-form-urlencoded")
    assert answer.status_code == 200
    schema("Linked").validate(answer.json)


def test_a_rate_the_schema_refuses_is_refused_as_described(client, env):
    env.set(WEBHOOK_ALLOWED_ORIGINS="*")
    rate = next(p for p in HANDSHAKE["parameters"] if p["name"] == "WebHook-Request-Rate")
    asked = {"WebHook-Request-Origin": "x.example", "WebHook-Request-Rate": "lots"}
    assert not re.fullmatch(rate["schema"]["pattern"].strip("^$"), asked["WebHook-Request-Rate"])
    answer = client.options("/", headers=asked)
    assert answer.status_code == 400 and "WebHook-Allowed-Rate" not in answer.headers
    assert "400" in HANDSHAKE["responses"]
    schema("Error").validate(answer.json)
