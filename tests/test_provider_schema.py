"""devtools/checks/provider_schema.py: infra/ checked against the providers' schemas, and the check
itself shown to fail on every kind of mistake.

The schemas are the cdktn-provider wheels `make check-infra` downloads (about 140 MB), so
these tests run there (and in CI); `make test` skips them, saying so.
"""

from __future__ import annotations

import copy
import os
import re
import shutil
from pathlib import Path

import pytest

from devtools.checks import provider_schema
from tests.helpers import ROOT

WHEELS = Path(os.environ.get("PROVIDER_SCHEMAS", provider_schema.WHEELS))
pytestmark = pytest.mark.skipif(
    "PROVIDER_SCHEMAS" not in os.environ,
    reason="`make check-infra` downloads the provider schemas and runs these",
)


@pytest.fixture(scope="module")
def providers():
    return provider_schema.load_providers(WHEELS)


def test_the_pinned_versions_are_the_ones_checked(providers):
    versions = (ROOT / "infra" / "versions.tf").read_text()
    for name in ("google", "google-beta", "time", "archive"):  # exactly what was checked
        pin = re.search(
            rf'{name} = {{\s*source\s*= "hashicorp/{name}"\s*version = "([^"]+)"', versions
        )
        assert pin is not None and pin.group(1) == providers[name].version


def test_infra_matches_the_schemas(providers):
    assert provider_schema.check(ROOT / "infra", providers) == []


def every_block():
    for path in sorted((ROOT / "infra").glob("*.tf")):
        for is_data, kind, name, body in provider_schema._blocks(provider_schema._parse(path)):
            yield path.name, is_data, kind, name, body


def keys(body, prefix=()):
    """Every argument and nested block name in a block, with the path to it."""
    for key, value in body.items():
        if key.startswith("__") or (not prefix and key in provider_schema.META_ARGUMENTS):
            continue
        if key == "dynamic":
            for dynamic in value:
                for name, spec in dynamic.items():
                    for content in spec.get("content", []):
                        yield from keys(content, (*prefix, "dynamic", name))
            continue
        yield (*prefix, key)
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for item in value:
                yield from keys(item, (*prefix, key))


def renamed(body, path):
    """A copy of `body` with the key at `path` renamed (every block on the way)."""
    mutated = copy.deepcopy(body)
    targets = [mutated]
    for step in path[:-1]:
        if step == "dynamic":
            continue
        nxt = []
        for target in targets:
            value = target.get(step)
            if value is None:  # a dynamic block's name: descend into its content
                for dynamic in target.get("dynamic", []):
                    nxt += dynamic.get(step, {}).get("content", [])
            else:
                nxt += value if isinstance(value, list) else [value]
        targets = nxt
    for target in targets:
        if path[-1] in target:
            target[path[-1] + "_renamed"] = target.pop(path[-1])
    return mutated


def test_renaming_any_argument_or_block_in_infra_is_caught(providers):
    checked = 0
    for file, is_data, kind, name, body in every_block():
        provider = providers[provider_schema._provider_of(kind, body)]
        schema = (provider.data_sources if is_data else provider.resources)[kind]
        for path in keys(body):
            problems = provider_schema._check_block(renamed(body, path), schema, top=True)
            assert problems, f"renaming {'.'.join(path)} in {file} {kind}.{name} went unnoticed"
            checked += 1
    assert checked > 100  # every argument of every resource and data source


@pytest.mark.parametrize(
    ("file", "before", "after", "says"),
    [
        ("functions.tf", "    entry_point       =", "    entrypoint        =", "'entrypoint'"),
        ("functions.tf", "  service_config {", "  service_configs {", "'service_configs'"),
        ("iam.tf", '  role    = "roles/logging.logWriter"\n', "", "required 'role'"),
        ("pubsub.tf", 'resource "google_pubsub_topic" "dead_letter"',
         'resource "google_pubsub_topics" "dead_letter"', "no resource type google_pubsub_topics"),
        ("functions.tf", "google_service_account.runtime[each.key].email",
         "google_service_account.runtime[each.key].mail",
         "no attribute 'mail'"),
        # What the 7.0.0 upgrade guide requires, which the 6.x schemas allowed:
        ("functions.tf", "  service_config {\n", '  service_config {\n    service = "x"\n',
         "'service'"),  # output only since 7.0.0
        ("functions.tf", '      event_type            = "google.cloud.pubsub.topic.v1.messagePublished"\n',
         "", "required 'event_type'"),  # required since 7.0.0
    ],
)  # fmt: skip
def test_a_mistake_in_a_copy_of_infra_fails_the_check(
    providers, tmp_path, file, before, after, says
):
    copied = tmp_path / "infra"
    shutil.copytree(ROOT / "infra", copied, ignore=shutil.ignore_patterns(".terraform", "build"))
    text = (copied / file).read_text()
    assert before in text
    (copied / file).write_text(text.replace(before, after, 1))
    problems = provider_schema.check(copied, providers)
    assert any(says in problem for problem in problems), problems
    assert provider_schema.main(["--wheels", str(WHEELS), "--infra", str(copied)]) == 1
