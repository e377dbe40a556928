"""The docs are held to the code: the status table to `RULES`, the settings table to the settings
the code reads, both ways; and every relative link in the README, docs/ and the deploy guide
leads somewhere that exists, as does every file of the repo they name."""

from __future__ import annotations

import re

import pytest

from function.config import environment_variables
from function.model.status_table import RULES
from tests.helpers import ROOT, anchors

DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [ROOT / "README.md", ROOT / "infra" / "README.md", *DOCS]
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def table_rows(text: str, header: str) -> list[list[str]]:
    """The cells of each row of the table whose header line starts with `header`."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def test_the_status_table_is_rules_both_ways():
    rows = table_rows((ROOT / "docs" / "api.md").read_text(), "| situation | status |")
    documented = set()
    for _, status, code, _ in rows:
        error_code = re.match(r"`([A-Z_]+)`", code)
        number = re.match(r"\d{3}", status)
        documented.add((error_code[1] if error_code else None, int(number[0]) if number else None))
    assert documented == {(rule.error_code, rule.status) for rule in RULES.values()}


def test_the_settings_table_is_what_the_code_reads_both_ways():
    text = (ROOT / "docs" / "settings.md").read_text()
    rows = table_rows(text, "| name | default |")
    named = {name for row in rows for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", row[0])}
    assert named == environment_variables()


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page):
    for target in _LINK.findall(page.read_text()):
        if re.match(r"[a-z]+:", target):
            continue  # https:, mailto:
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        assert resolved.exists(), f"{page.name}: {target} leads nowhere"
        if anchor:
            assert anchor in anchors(resolved), f"{page.name}: {target} names no heading"


def test_the_readme_fits_on_a_screen_or_two():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 120


_NAMED_PATH = re.compile(r"`((?:function|devtools|ops|tests|infra|docs)/[\w./-]+)`")
_MADE_BY_THE_USER = {"infra/backend.tf", "infra/terraform.tfstate", "infra/terraform.tfvars"}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_file_a_page_names_exists(page):
    """A path in code quotes (`function/clients/tulip.py`) names a file or folder of the repo, so
    a page cannot point a reader at a module that was moved or removed."""
    for path in _NAMED_PATH.findall(page.read_text()):
        if path in _MADE_BY_THE_USER:
            continue
        assert (ROOT / path).exists(), f"{page.name}: `{path}` names nothing in the repo"
