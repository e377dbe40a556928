"""openapi.yaml: a valid OpenAPI 3.1 document that matches what the code can answer."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest
import yaml
from openapi_spec_validator import validate
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from function.outcomes import RULES
from tests.helpers import ROOT, link_url, push_envelope, request_body

SPEC = yaml.safe_load(Path(ROOT / "openapi.yaml").read_text())
POST = SPEC["paths"]["/"]["post"]


def test_the_document_is_valid_openapi():
    validate(SPEC)


def test_error_codes_match_the_status_table_both_ways():
    in_code = {rule.error_code for rule in RULES.values() if rule.error_code}
    assert set(SPEC["components"]["schemas"]["ErrorCode"]["enum"]) == in_code


def test_every_status_the_code_can_answer_is_described():
    produced = set()
    for rule in RULES.values():
        produced |= {rule.status} if rule.status is not None else set(rule.tulip_statuses)
    described = {int(code) for code in POST["responses"]}
    described |= {
        int(code)
        for op in ("get", "put", "patch", "delete")
        for code in SPEC["paths"]["/"][op]["responses"]
    }
    assert produced == described


def test_retry_after_is_described_where_it_is_sent():
    for rule in RULES.values():
        if rule.retry_after:
            assert "Retry-After" in POST["responses"][str(rule.status)]["headers"]
    allow = SPEC["components"]["responses"]["MethodNotAllowed"]["headers"]
    assert allow["Allow"]["schema"]["const"] == "POST"


def schema(name: str) -> jsonschema.Draft202012Validator:
    registry = Registry().with_resource(
        "urn:spec", Resource.from_contents(SPEC, default_specification=DRAFT202012)
    )
    return jsonschema.Draft202012Validator(
        {"$ref": f"urn:spec#/components/schemas/{name}"}, registry=registry
    )


@pytest.mark.parametrize(
    "body",
    [
        request_body(),
        {"table_link_id": "x", "left_record": 5, "right_record": "y", "action": "unlink"},
    ],
)
def test_valid_requests_fit_the_request_schema(body):
    schema("LinkRequest").validate(body)


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
