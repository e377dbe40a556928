"""devtools/checks/fuzz.py: the schemathesis configuration `make fuzz` writes (the run is in CI)."""

from __future__ import annotations

import base64
import json
import tomllib

import jsonschema_rs

from devtools.checks.fuzz import config, differing_spellings
from devtools.simulators.tulip import DEFAULT_SEED
from tests.helpers import OPENAPI, ROOT

SEED = json.loads(DEFAULT_SEED.read_text())
CONFIG = tomllib.loads(config(SEED))


def test_the_dictionaries_name_a_many_to_many_link_and_its_own_records():
    values = {name: d["values"] for name, d in CONFIG["dictionaries"].items()}
    [link_id] = values["links"]
    link = SEED["tableLinks"][link_id]
    assert link["relationshipType"] == "many-to-many"  # linking any pair of them never conflicts
    assert values["left"] == SEED["tables"][link["leftTable"]]["records"]
    assert values["right"] == SEED["tables"][link["rightTable"]]["records"]


def test_the_push_data_carries_valid_requests_of_both_kinds():
    kinds = set()
    for data in CONFIG["dictionaries"]["data"]["values"]:
        body = json.loads(base64.b64decode(data, validate=True))
        for kind in ("LinkRequest", "BatchRequest"):
            schema = {"components": OPENAPI["components"], "$ref": f"#/components/schemas/{kind}"}
            if jsonschema_rs.Draft202012Validator(schema).is_valid(body):
                kinds.add(kind)
    assert kinds == {"LinkRequest", "BatchRequest"}


def test_every_request_field_is_bound_in_both_spellings_and_in_batches():
    bound = set(CONFIG["parameters"])
    for field in ("tableLinkId", "table_link_id", "leftRecord", "left_record", "rightRecord"):
        assert {f"body.{field}", f"body.links[*].{field}"} <= bound


def test_ci_runs_the_fuzzer():
    assert "make fuzz" in (ROOT / ".ci/run").read_text()


def test_a_second_spelling_equal_to_the_first_is_made_to_differ():
    body = {
        "tableLinkId": "L",
        "table_link_id": "L",
        "links": [{"leftRecord": 5, "left_record": 5, "rightRecord": "R"}, "not an object"],
    }
    changed = differing_spellings(body)
    assert changed["table_link_id"] != changed["tableLinkId"]
    assert changed["links"][0]["left_record"] != changed["links"][0]["leftRecord"]
    assert changed["links"][0]["rightRecord"] == "R" and changed["links"][1] == "not an object"
    untouched = {"tableLinkId": "L", "table_link_id": "M"}
    assert differing_spellings(dict(untouched)) == untouched
    for links in (None, "not a list", 5):  # a negative case's links
        odd = {"tableLinkId": "L", "table_link_id": "L", "links": links}
        assert differing_spellings(odd)["table_link_id"] == "L-other"
