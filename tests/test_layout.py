"""The package's drawing of its layers and the contract `make lint` enforces are the same."""

from __future__ import annotations

import re
import tomllib

import function
from tests.helpers import ROOT

CONTRACT = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]


def drawn_layers() -> list[str]:
    """The layers as the package docstring draws them, top first."""
    doc = function.__doc__ or ""
    lines = re.findall(r"^    ([a-z_]+(?: \| [a-z_]+)*)  ", doc, flags=re.MULTILINE)
    return lines


def test_the_docstring_draws_the_contracts_layers():
    [contract] = CONTRACT["contracts"]
    assert contract["type"] == "layers" and contract["containers"] == ["function"]
    assert contract["exhaustive"] is True
    assert drawn_layers() == contract["layers"]


def test_every_module_of_the_package_has_its_layer():
    drawn = {name for layer in drawn_layers() for name in layer.split(" | ")}
    modules = {path.stem for path in (ROOT / "function").glob("*.py")} - {"__init__"}
    assert drawn == modules
