"""Check `infra/` against the Terraform providers' schemas, offline.

    .venv/bin/python -m devtools.checks.provider_schema [--wheels DIR] [--infra DIR]

`terraform validate` needs the providers, which cannot be downloaded everywhere (not here, for
one). The CDK Terrain bindings of each provider (`cdktn-provider-*`, the successor of CDK for
Terraform's `cdktf-cdktf-provider-*`, archived in December 2025) are published on PyPI, each
generated from one provider version's schema; their jsii assembly records, for every resource
and data source,
its Terraform name and every argument and nested block (with its Terraform name in the Registry
link of its docs, and whether it is required). `make check-infra` downloads the ones pinned in
`requirements-schema.txt` (matching `infra/versions.tf`) and runs this, which checks every
`resource` and `data` block of `infra/*.tf`:

- its type exists in its provider (`google`, `google-beta` with `provider = google-beta`,
  `time`, `archive`);
- every argument and nested block (`dynamic` ones included) exists where it is written;
- no required argument or block is missing;
- every `type.name.attribute` reference names a declared block and an attribute its type has.

Nothing is installed: the assembly is read straight from each wheel. Not deployed.
"""

from __future__ import annotations

import argparse
import functools
import io
import json
import re
import sys
import tarfile
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hcl2
from hcl2 import SerializationOptions

from devtools import ROOT

WHEELS = ROOT / ".cache" / "provider-schemas"
META_ARGUMENTS = {"count", "for_each", "depends_on", "lifecycle", "provider", "provisioner"}
_REPRESENTS = re.compile(
    r"registry\.terraform\.io/providers/hashicorp/(?P<provider>[\w-]+)/(?P<version>[\d.]+)/docs/"
    r"(?P<kind>resources|data-sources)/\w+ (?P<type>\w+)\}"
)
_ANCHOR = re.compile(r"#(?P<name>[a-z0-9_]+) \w+#(?P=name)\}")
_REFERENCE = re.compile(
    r"(?<![\w.])(?P<data>data\.)?(?P<type>(?:google|time|archive)_[a-z0-9_]+)\.(?P<name>[a-z0-9_]+)"
    r"(?:\[[^\]]*\])?\.(?P<attribute>[a-z0-9_]+)"
)


@dataclass
class Block:
    """What a resource, data source or nested block accepts."""

    arguments: dict[str, bool] = field(default_factory=dict)  # name -> required
    blocks: dict[str, tuple[Block, bool]] = field(default_factory=dict)  # name -> (block, required)
    attributes: set[str] = field(default_factory=set)  # what references may read (top level)


@dataclass
class Provider:
    """One provider version's resources and data sources."""

    name: str
    version: str
    resources: dict[str, Block] = field(default_factory=dict)
    data_sources: dict[str, Block] = field(default_factory=dict)


@functools.cache  # a provider's assembly is 100 MB of JSON: read each once per process
def load_provider(wheel: Path) -> Provider:
    """The schema recorded in a CDK provider wheel's jsii assembly."""
    with zipfile.ZipFile(wheel) as archive:
        [name] = [n for n in archive.namelist() if n.endswith(".jsii.tgz")]
        with tarfile.open(fileobj=io.BytesIO(archive.read(name))) as tar:
            member = tar.extractfile("package/.jsii")
            assert member is not None, f"{wheel} holds no jsii assembly"
            types: dict[str, Any] = json.load(member)["types"]
    provider: Provider | None = None
    made: dict[str, Block] = {}  # by interface, so that a block nested in itself is one Block
    for fqn, kind in types.items():
        match = _REPRESENTS.search((kind.get("docs") or {}).get("summary", ""))
        if kind["kind"] != "class" or match is None:
            continue
        provider = provider or Provider(match["provider"], match["version"])
        if f"{fqn}Config" not in types:
            continue
        block = _block(f"{fqn}Config", types, made)
        block.attributes = (
            {_snake(p["name"]) for p in kind.get("properties", [])}
            | set(block.arguments)
            | set(block.blocks)
        )
        table = provider.resources if match["kind"] == "resources" else provider.data_sources
        table[match["type"]] = block
    assert provider is not None, f"{wheel} describes no provider"
    return provider


def _block(fqn: str, types: Mapping[str, Any], made: dict[str, Block]) -> Block:
    """The block the interface `fqn` describes (made once: some blocks nest themselves)."""
    if fqn in made:
        return made[fqn]
    block = made[fqn] = Block()
    for prop in types[fqn].get("properties", []):
        name = _terraform_name(prop)
        required = not prop.get("optional", False)
        nested = _nested(prop["type"])
        if nested is not None and nested in types and types[nested]["kind"] == "interface":
            block.blocks[name] = (_block(nested, types, made), required)
        else:
            block.arguments[name] = required
    return block


def _nested(kind: Mapping[str, Any]) -> str | None:
    """The interface a property's type names: a single nested block, or a list of them."""
    if "fqn" in kind:
        return str(kind["fqn"])
    for option in kind.get("union", {}).get("types", []):
        element = option.get("collection", {}).get("elementtype", {})
        if option.get("collection", {}).get("kind") == "array" and "fqn" in element:
            return str(element["fqn"])
    return None


def _terraform_name(prop: Mapping[str, Any]) -> str:
    docs = prop.get("docs") or {}
    match = _ANCHOR.search(docs.get("remarks", "") + docs.get("summary", ""))
    return match["name"] if match else _snake(prop["name"])


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def load_providers(wheels: Path) -> dict[str, Provider]:
    """Every provider in `wheels`, by name (`google`, `google-beta`, `time`, `archive`)."""
    providers = {}
    for wheel in sorted(wheels.glob("*.whl")):
        provider = load_provider(wheel)
        providers[provider.name] = provider
    if not providers:
        raise SystemExit(f"No provider wheels in {wheels}: run `make check-infra`")
    return providers


def check(infra: Path, providers: Mapping[str, Provider]) -> list[str]:
    """Every problem found in `infra/*.tf`, as `file: resource type.name: what`."""
    problems: list[str] = []
    declared: dict[tuple[bool, str, str], Block] = {}
    for path in sorted(infra.glob("*.tf")):
        with path.open() as handle:
            parsed = hcl2.load(handle, serialization_options=_OPTIONS)
        for is_data, kind, name, body in _blocks(parsed):
            where = f"{path.name}: {'data.' if is_data else ''}{kind}.{name}"
            provider = providers.get(_provider_of(kind, body))
            if provider is None:
                problems.append(f"{where}: no schema for provider {_provider_of(kind, body)!r}")
                continue
            table = provider.data_sources if is_data else provider.resources
            schema = table.get(kind)
            if schema is None:
                what = "data source" if is_data else "resource type"
                problems.append(f"{where}: {provider.name} {provider.version} has no {what} {kind}")
                continue
            declared[(is_data, kind, name)] = schema
            problems += [f"{where}: {p}" for p in _check_block(body, schema, top=True)]
    problems += _check_references(infra, declared)
    return problems


_OPTIONS = SerializationOptions(
    strip_string_quotes=True, explicit_blocks=False, with_comments=False
)


def _blocks(parsed: Mapping[str, Any]) -> Iterator[tuple[bool, str, str, dict[str, Any]]]:
    for is_data, key in ((False, "resource"), (True, "data")):
        for entry in parsed.get(key, []):
            for kind, named in entry.items():
                for name, body in named.items():
                    yield is_data, kind, name, body


def _provider_of(kind: str, body: Mapping[str, Any]) -> str:
    chosen = str(body.get("provider", "")).strip("${}")
    if chosen:
        return chosen.split(".")[0]
    return kind.split("_")[0]


def _check_block(body: Mapping[str, Any], schema: Block, *, top: bool = False) -> list[str]:
    problems = []
    given = set()
    for key, value in body.items():
        if key in ("__start_line__", "__end_line__") or (top and key in META_ARGUMENTS):
            continue
        if key == "dynamic":
            for dynamic in value:
                for name, spec in dynamic.items():
                    given.add(name)
                    nested = schema.blocks.get(name)
                    if nested is None:
                        problems.append(f"no block {name!r} (in a dynamic block)")
                        continue
                    for content in spec.get("content", []):
                        problems += [f"{name}: {p}" for p in _check_block(content, nested[0])]
            continue
        given.add(key)
        if key in schema.arguments:
            continue
        nested = schema.blocks.get(key)
        if nested is None:
            problems.append(f"no argument or block {key!r}")
        elif isinstance(value, list) and all(isinstance(v, dict) for v in value):
            for item in value:
                problems += [f"{key}: {p}" for p in _check_block(item, nested[0])]
        elif isinstance(value, dict):
            problems += [f"{key}: {p}" for p in _check_block(value, nested[0])]
    required = [n for n, r in schema.arguments.items() if r] + [
        n for n, (_, r) in schema.blocks.items() if r
    ]
    problems += [f"required {name!r} is missing" for name in required if name not in given]
    return problems


def _check_references(infra: Path, declared: Mapping[tuple[bool, str, str], Block]) -> list[str]:
    problems = []
    for path in sorted(infra.glob("*.tf")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            for match in _REFERENCE.finditer(line):
                key = (bool(match["data"]), match["type"], match["name"])
                schema = declared.get(key)
                if schema is None:
                    problems.append(
                        f"{path.name}:{number}: {match[0]} refers to a block infra/ does not "
                        "declare (or whose type is unknown)"
                    )
                elif match["attribute"] not in schema.attributes:
                    problems.append(
                        f"{path.name}:{number}: {match['type']}.{match['name']} has no "
                        f"attribute {match['attribute']!r}"
                    )
    return problems


def main(argv: list[str] | None = None) -> int:
    """Check, print each problem; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m devtools.checks.provider_schema", description=__doc__
    )
    parser.add_argument("--wheels", type=Path, default=WHEELS)
    parser.add_argument("--infra", type=Path, default=ROOT / "infra")
    args = parser.parse_args(argv)
    providers = load_providers(args.wheels)
    problems = check(args.infra, providers)
    versions = ", ".join(f"{p.name} {p.version}" for p in providers.values())
    for problem in problems:
        print(problem)
    if problems:
        print(f"\n{len(problems)} problems against {versions}", file=sys.stderr)
        return 1
    blocks = sum(1 for path in args.infra.glob("*.tf") for _ in _blocks(_parse(path)))
    print(f"provider schema: all {blocks} resources and data sources in infra/ match {versions}")
    return 0


def _parse(path: Path) -> dict[str, Any]:
    with path.open() as handle:
        parsed: dict[str, Any] = hcl2.load(handle, serialization_options=_OPTIONS)
        return parsed


if __name__ == "__main__":
    sys.exit(main())
