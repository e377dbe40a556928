"""The layout is the architecture: `ls function` shows the contract's packages, and the contract
(`make lint` runs it) names packages, not modules, so a new module needs no re-ranking."""

from __future__ import annotations

import tomllib

from tests.helpers import ROOT

CONTRACTS = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]


def layers() -> list[str]:
    [layered] = [c for c in CONTRACTS["contracts"] if c["type"] == "layers"]
    assert layered["containers"] == ["function"] and layered["exhaustive"] is True
    return layered["layers"]


def test_the_contract_names_at_most_eight_layers():
    assert len(layers()) <= 8


def test_ls_function_shows_exactly_the_contracts_packages_and_modules():
    named = {name.strip() for layer in layers() for name in layer.split("|")}
    listed = {
        path.stem
        for path in (ROOT / "function").iterdir()
        if path.suffix == ".py" or (path / "__init__.py").exists()
    } - {"__init__"}
    assert listed == named


def test_what_ships_imports_no_tool():
    forbidden = {
        tuple(c["source_modules"]): set(c["forbidden_modules"])
        for c in CONTRACTS["contracts"]
        if c["type"] == "forbidden"
    }
    assert forbidden[("function",)] == {"devtools", "ops", "tests"}
    assert forbidden[("ops",)] == {"devtools", "tests"}
