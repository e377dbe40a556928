"""The GitHub Actions workflow: it cannot run here, so its shape is checked."""

from __future__ import annotations

import yaml

from tests.helpers import ROOT

WORKFLOW = yaml.safe_load((ROOT / ".github" / "workflows" / "ci.yml").read_text())


def test_it_runs_on_pushes_and_pull_requests():
    triggers = WORKFLOW.get("on", WORKFLOW.get(True))  # YAML 1.1 reads a bare `on` as true
    assert set(triggers) == {"push", "pull_request"}


def test_it_runs_the_ci_script_on_the_deployed_runtime_and_the_oldest_supported():
    [job] = WORKFLOW["jobs"].values()
    assert job["strategy"]["matrix"]["python-version"] == ["3.12", "3.11"]
    steps = job["steps"]
    uses = [step.get("uses", "").split("@")[0] for step in steps]
    assert uses[:2] == ["actions/checkout", "actions/setup-python"]
    setup = steps[1]["with"]
    assert setup["python-version"] == "${{ matrix.python-version }}" and setup["cache"] == "pip"
    assert "requirements-dev.txt" in setup["cache-dependency-path"]
    assert steps[-1]["run"] == "bash .ci/run"
