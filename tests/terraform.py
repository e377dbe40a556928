"""infra/'s Terraform, parsed once with python-hcl2, for the tests that hold it to the code."""

from __future__ import annotations

import os
import re
import subprocess
from collections import defaultdict
from pathlib import Path
from typing import Any

import hcl2
from hcl2 import SerializationOptions

from tests.helpers import ROOT

INFRA = ROOT / "infra"
OPTIONS = SerializationOptions(strip_string_quotes=True, explicit_blocks=False, with_comments=False)


def load() -> dict[str, Any]:
    """Every block of every .tf file: resources[type][name], variables[name], ..., moved[i]."""
    merged: dict[str, Any] = defaultdict(dict)
    resources: dict[str, dict[str, Any]] = defaultdict(dict)
    for path in sorted(INFRA.glob("*.tf")):
        with path.open() as handle:
            parsed = hcl2.load(handle, serialization_options=OPTIONS)
        for block in parsed.get("resource", []):
            for kind, named in block.items():
                resources[kind].update(named)
        for key in ("variable", "output", "data", "module"):
            for block in parsed.get(key, []):
                merged[key].update(block)
        merged["moved"] = [*merged.get("moved", []), *parsed.get("moved", [])]
        for block in parsed.get("locals", []):
            merged["locals"].update(block)
        for block in parsed.get("terraform", []):
            merged["terraform"].update(block)
    merged["resource"] = resources
    return merged


TF = load()
RESOURCES = TF["resource"]
TEXT = "\n".join(path.read_text() for path in sorted(INFRA.glob("*.tf")))


def one(block: Any) -> dict[str, Any]:
    """A nested block (hcl2 gives a list of one)."""
    assert isinstance(block, list) and len(block) == 1, block
    return block[0]


class Failed(Exception):
    """Terraform refused the configuration; the message is what it printed."""


def terraform(directory: Path, *args: str) -> str:
    """`terraform -chdir=directory args...`, offline; its output, or `Failed`."""
    done = subprocess.run(
        ["terraform", f"-chdir={directory}", *args, "-no-color"],
        check=False,
        capture_output=True,
        text=True,
        env=os.environ | {"TF_CLI_CONFIG_FILE": "/dev/null", "TF_IN_AUTOMATION": "1"},
        timeout=120,
    )
    if done.returncode != 0:
        # Terraform wraps its messages at 80 columns and frames them with │.
        raise Failed(re.sub(r"\s+", " ", re.sub(r"[│╷╵]", " ", done.stdout + done.stderr)))
    return done.stdout
