"""devtools/fuzz.py: the schemathesis configuration `make fuzz` writes (the run is in CI)."""

from __future__ import annotations

import base64
import json
import tomllib

import jsonschema_rs

from devtools.fuzz import config
from devtools.tulip_simulator import DEFAULT_SEED
from tests.helpers import OPENAPI, ROOT

SEED = json.loads(DEFAULT_SEED.read_text())
CONFIG = tomllib.loads(config(SEED))


def test_the_dictionaries_name_a_many_to_many_link_and_its_own_records():
    values = {name: d["values"] for name, d in CONFIG["dictionaries"].items()}
    [link_id] = values["links"]
    link = SEED["tableLinks"][link_id]
    assert link["type"] == "many-to-many"  # linking any pair of them never conflicts
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
