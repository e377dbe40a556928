"""Several senders: infra/'s `senders`, evaluated by Terraform itself, offline.

infra/senders.tf and modules/senders hold no resource, so with infra/variables.tf beside them
they make a configuration that needs no provider: `terraform apply` evaluates it on this
machine, with every validation and precondition, and its outputs say which functions, secrets
and grants a deployment would get. The root's resources take their `for_each` from those
outputs (tests/test_infra.py holds them to that). Where terraform is not installed these tests
skip, and say so.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.terraform import INFRA, TF, Failed, terraform

pytestmark = [
    pytest.mark.processes,
    pytest.mark.skipif(shutil.which("terraform") is None, reason="terraform is not installed"),
]

REQUIRED = {"project_id": "acme-tulip-link", "tulip_base_url": "https://acme.tulip.co"}
OUTPUTS = (
    "senders",
    "function_names",
    "secret_ids",
    "secret_readers",
    "token_readers",
    "publishers",
    "public",
    "invoker_grants",
    "memory",
    "min_cpu",
)
GUIDE = (INFRA / "README.md").read_text()
MIB = 1024 * 1024


@pytest.fixture
def evaluate(tmp_path: Path) -> Callable[..., dict[str, Any]]:
    """Evaluates infra/'s senders with these tfvars (HCL text or a mapping); gives the outputs."""
    shutil.copy(INFRA / "variables.tf", tmp_path)
    shutil.copy(INFRA / "senders.tf", tmp_path)
    shutil.copytree(INFRA / "modules", tmp_path / "modules")
    (tmp_path / "outputs.tf").write_text(
        "".join(f'output "{name}" {{\n  value = module.senders.{name}\n}}\n' for name in OUTPUTS)
    )
    terraform(tmp_path, "init", "-input=false", "-backend=false")

    def run(tfvars: str | Mapping[str, Any] = "", **extra: Any) -> dict[str, Any]:
        if isinstance(tfvars, str):
            (tmp_path / "case.tfvars").write_text(tfvars)
            values: dict[str, Any] = {}
        else:
            (tmp_path / "case.tfvars").write_text("")
            values = dict(tfvars)
        (tmp_path / "required.auto.tfvars.json").write_text(json.dumps(REQUIRED | values | extra))
        terraform(tmp_path, "apply", "-auto-approve", "-input=false", "-var-file=case.tfvars")
        outputs = json.loads(terraform(tmp_path, "output", "-json"))
        return {name: output["value"] for name, output in outputs.items()}

    return run


def hcl_block(after: str) -> str:
    """The guide's first ```hcl block after the heading `after`."""
    section = GUIDE[GUIDE.index(after) :]
    found = re.search(r"```hcl\n(.*?)```", section, re.DOTALL)
    assert found, after
    return re.sub(r"^ {3}", "", found.group(1), flags=re.MULTILINE)


# --- Without `senders`: one sender, as before ----------------------------------------------------


def test_without_senders_the_one_webhook_keeps_its_names_and_addresses(evaluate):
    out = evaluate()
    assert out["senders"].keys() == {"webhook"}
    # The names (and so the root's addresses: link["webhook"], this["webhook_secret"],
    # runtime["webhook"]) a deployment made before senders already has.
    assert out["function_names"] == {"webhook": "tulip-link-webhook"}
    assert out["secret_ids"] == {"webhook_secret": "tulip-link-webhook-secret"}
    assert out["secret_readers"] == {  # queue mode: the public webhook cannot read the token
        "webhook/webhook_secret": {"function": "webhook", "secret": "webhook_secret"},
        "events/tulip_token": {"function": "events", "secret": "tulip_token"},
    }
    assert out["token_readers"] == []
    assert out["publishers"] == ["webhook"] and out["public"] == ["webhook"]
    assert out["invoker_grants"] == {}


def test_the_webhook_variables_are_the_one_senders_settings(evaluate):
    out = evaluate(
        {
            "webhook_auth": "none",
            "webhook_public": False,
            "webhook_invokers": ["serviceAccount:mes@acme-mes.iam.gserviceaccount.com"],
            "webhook_delivery": "direct",
            "webhook_max_body_bytes": 65536,
        }
    )
    sender = out["senders"]["webhook"]
    assert (sender["auth"], sender["delivery"], sender["max_body_bytes"]) == (
        "none",
        "direct",
        65536,
    )
    assert out["publishers"] == [] and out["public"] == []
    member = "serviceAccount:mes@acme-mes.iam.gserviceaccount.com"
    assert out["invoker_grants"] == {f"webhook/{member}": {"sender": "webhook", "member": member}}
    assert out["memory"] == {"webhook": "256Mi"}


# --- The guide's two senders ---------------------------------------------------------------------


def test_the_guides_two_senders_get_two_functions_two_secrets_and_their_own_grants(evaluate):
    out = evaluate(hcl_block("### Add a sender"))
    assert out["function_names"] == {"mes": "tulip-link-mes", "jira": "tulip-link-jira"}
    assert out["secret_ids"] == {
        "mes_secret": "tulip-link-mes-secret",
        "jira_secret": "tulip-link-jira-secret",
    }
    readers = {(r["function"], r["secret"]) for r in out["secret_readers"].values()}
    # Each sender its own secret, none another's, and (queue mode) not the Tulip token; the
    # events function the token only.
    assert readers == {
        ("mes", "mes_secret"),
        ("jira", "jira_secret"),
        ("events", "tulip_token"),
    }
    assert sorted(out["publishers"]) == ["jira", "mes"]  # one topic for both
    assert sorted(out["public"]) == ["jira", "mes"]
    mes, jira = out["senders"]["mes"], out["senders"]["jira"]
    assert mes["auth"] == "standard-webhooks" and jira["auth"] == "hmac-sha256"
    assert jira["signature_header"] == "X-Hub-Signature"
    for sender in (mes, jira):  # a mapping the function can read
        assert isinstance(json.loads(sender["link_mapping"]), list)
    assert "webhook_secret" not in out["secret_ids"]  # no sender named webhook here
    assert out["memory"] == {"mes": "1Gi", "jira": "256Mi"}


def test_the_guides_mappings_are_its_examples(evaluate):
    out = evaluate(hcl_block("### Add a sender"))
    examples = INFRA.parent / "devtools" / "examples"
    jira = json.loads((examples / "jira-mapping.json").read_text())
    mes = json.loads((examples / "mes-mapping.json").read_text())
    assert json.loads(out["senders"]["jira"]["link_mapping"]) == jira[:1]
    assert json.loads(out["senders"]["mes"]["link_mapping"]) == mes[:1]


def test_every_setting_the_guide_lists_is_one_a_sender_takes():
    section = GUIDE[GUIDE.index("Each sender's settings") : GUIDE.index("### Add a sender")]
    listed = re.findall(r"^\| `(\w+)` \|", section, re.MULTILINE)
    module = (INFRA / "modules" / "senders" / "main.tf").read_text()
    typed = re.findall(
        r"^\s+(\w+)\s+= optional\(", module.split('variable "single"')[0], re.MULTILINE
    )
    allowed = re.search(
        r"setsubtract\(given, (\[[^\]]+\])\)",
        TF["variable"]["senders"]["validation"][1]["condition"],
    )
    assert allowed
    assert listed == typed == json.loads(allowed.group(1))


# --- Refused, naming the sender and the setting --------------------------------------------------


@pytest.mark.parametrize(
    ("senders", "says"),
    [
        (
            '{ mes = { sigature_header = "X-Sig" } }',
            'Sender "mes" (sigature_header): unknown setting',
        ),
        ('{ mes = { auth = "oauth" } }', 'Sender "mes": auth must be one of'),
        (
            '{ gitlab = { auth = "hmac-sha256", token_header = "X-Gitlab-Token" } }',
            'Sender "gitlab": token_header must be an HTTP header name, and is read only with auth',
        ),
        (
            '{ grid = { auth = "token", token_header = "X Api Key" } }',
            'Sender "grid": token_header must be an HTTP header name',
        ),
        (
            '{ grid = { allowed_origins = ["https://eventgrid.azure.net/"] } }',
            'Sender "grid": each of allowed_origins must be a host name',
        ),
        ('{ mes = { auth = "none" } }', 'Sender "mes": a public webhook'),
        ('{ mes = { delivery = "later" } }', 'Sender "mes": delivery must be queue or direct'),
        ("{ mes = { tolerance_seconds = 0 } }", 'Sender "mes": tolerance_seconds must be'),
        ('{ mes = { link_mapping = "leftRecord" } }', 'Sender "mes": link_mapping must be'),
        ("{ mes = { max_body_bytes = 40000000 } }", 'Sender "mes": max_body_bytes must be'),
        ('{ mes = { memory = "lots" } }', 'Sender "mes": memory must look like'),
        (
            '{ mes = { public = false, invokers = ["mes@acme.com"] } }',
            'Sender "mes": each of invokers',
        ),
        ("{ events = {} }", 'Sender "events": a sender\'s name'),
        ("{ MES = {} }", 'Sender "MES": a sender\'s name'),
        ('{ mes = "standard-webhooks" }', "senders must be a map of objects"),
        (
            '{ mes = { memory = "256Mi" } }',
            'Sender "mes" (256 MiB, needs 760): memory does not hold max_body_bytes',
        ),
    ],
)
def test_a_sender_that_cannot_work_is_refused_by_name(evaluate, senders, says):
    with pytest.raises(Failed) as refused:
        evaluate(f"senders = {senders}\n")
    assert says in str(refused.value)


def test_the_tulip_token_is_read_by_the_events_function_and_senders_that_call_tulip(evaluate):
    out = evaluate(
        """senders = {
  queued  = {}
  checked = { tulip_dry_runs = true }
  direct  = { delivery = "direct" }
}
"""
    )
    token = {r["function"] for r in out["secret_readers"].values() if r["secret"] == "tulip_token"}
    assert token == {"events", "checked", "direct"}
    assert sorted(out["token_readers"]) == ["checked", "direct"]
    one = evaluate({"webhook_tulip_dry_runs": True})
    assert one["token_readers"] == ["webhook"]


def test_the_one_senders_token_header_needs_token_auth(evaluate):
    with pytest.raises(Failed) as refused:
        evaluate({"webhook_token_header": "X-Gitlab-Token"})
    assert 'webhook_token_header is read only with webhook_auth = "token"' in str(refused.value)
    out = evaluate({"webhook_auth": "token", "webhook_token_header": "X-Gitlab-Token"})
    assert out["senders"]["webhook"]["token_header"] == "X-Gitlab-Token"


def test_every_common_senders_settings_are_taken(evaluate):
    out = evaluate(
        """senders = {
  slack  = { auth = "slack" }
  stripe = { auth = "stripe" }
  devops = { auth = "basic" }
  gitlab = { auth = "token", token_header = "X-Gitlab-Token" }
  grid   = { auth = "token", token_header = "X-Api-Key", allowed_origins = ["eventgrid.azure.net"] }
  mesh   = { auth = "basic", allowed_origins = ["*"] }
}
"""
    )
    senders = out["senders"]
    assert senders["gitlab"]["token_header"] == "X-Gitlab-Token"
    assert senders["grid"]["allowed_origins"] == ["eventgrid.azure.net"]
    assert senders["slack"]["allowed_origins"] == [] and senders["slack"]["token_header"] == ""


def test_a_name_too_long_for_an_account_id_is_refused(evaluate):
    with pytest.raises(Failed) as refused:
        evaluate("senders = { quality-system = {} }\n", name_prefix="tulip-link-plant-7")
    assert 'Sender "quality-system": <name_prefix>-<sender> names' in str(refused.value)


def test_unknown_settings_of_several_senders_are_all_named(evaluate):
    with pytest.raises(Failed) as refused:
        evaluate('senders = { mes = { publc = false }, jira = { auht = "token" } }\n')
    assert '"jira" (auht), "mes" (publc): unknown setting' in str(refused.value)


# --- Memory ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "concurrency", "floor", "memory"),
    [
        (25 * MIB, 4, "256Mi", "1Gi"),  # the defaults: 160 + 6 * 25 * 4 = 760 MiB
        (64 * 1024, 4, "256Mi", "256Mi"),
        (5 * MIB, 4, "256Mi", "512Mi"),
        (25 * MIB, 1, "256Mi", "512Mi"),
        (64 * 1024, 4, "1Gi", "1Gi"),  # never below `memory`
        (32 * MIB, 80, "256Mi", "16Gi"),
    ],
)
def test_a_webhook_gets_the_memory_its_bodies_need_at_its_concurrency(
    evaluate, body, concurrency, floor, memory
):
    out = evaluate(
        f"senders = {{ mes = {{ max_body_bytes = {body} }} }}\n",
        max_instance_request_concurrency=concurrency,
        memory=floor,
    )
    assert out["memory"] == {"mes": memory}


def test_more_memory_asks_for_the_vcpus_cloud_run_needs_for_it(evaluate):
    out = evaluate(
        'senders = { mes = { max_body_bytes = 33554432 }, small = { memory = "4Gi" } }\n',
        max_instance_request_concurrency=21,
    )
    # 160 MiB + 6 * 32 MiB * 21 = 4,192 MiB: the next step, 8 GiB, needs 2 vCPUs; 4 GiB needs
    # no more than one.
    assert out["memory"] == {"mes": "8Gi", "small": "4Gi"}
    assert out["min_cpu"] == {"mes": 2, "small": 0, "events": 0}


# --- Upgrading: the moved blocks ------------------------------------------------------------------


def test_the_moved_blocks_carry_the_counted_grants_to_the_default_senders_keys(tmp_path):
    """The grants a deployment made before senders holds as [0] end at the keys the default
    sender gets, with nothing destroyed or created: checked on stand-ins (terraform_data) at the
    same addresses, with infra/'s own moved blocks and its senders module."""
    moved = TF["moved"]
    assert moved
    kinds = {re.match(r"\$\{(\w+)\.(\w+)", block["from"]).groups() for block in moved}  # type: ignore[union-attr]

    def stand_in(text: str) -> str:
        for kind, name in kinds:
            text = text.replace(f"{kind}.{name}", f"terraform_data.{name}")
        return text

    before = "".join(
        f'resource "terraform_data" "{name}" {{\n  count = 1\n}}\n' for _, name in kinds
    )
    (tmp_path / "main.tf").write_text(before)
    (tmp_path / "required.auto.tfvars.json").write_text(json.dumps(REQUIRED))
    terraform(tmp_path, "init", "-input=false")
    terraform(tmp_path, "apply", "-auto-approve", "-input=false")

    # After: the root's for_each expressions and moved blocks, on the stand-ins.
    shutil.copy(INFRA / "variables.tf", tmp_path)
    shutil.copy(INFRA / "senders.tf", tmp_path)
    shutil.copytree(INFRA / "modules", tmp_path / "modules")
    resources = TF["resource"]
    after = ""
    for kind, name in sorted(kinds):
        for_each = resources[kind][name]["for_each"][2:-1]
        after += f'resource "terraform_data" "{name}" {{\n  for_each = {for_each}\n}}\n'
    for block in moved:
        origin, target = stand_in(block["from"][2:-1]), stand_in(block["to"][2:-1])
        after += f"moved {{\n  from = {origin}\n  to   = {target}\n}}\n"
    (tmp_path / "main.tf").write_text(after)
    terraform(tmp_path, "init", "-input=false")
    plan = terraform(tmp_path, "plan", "-input=false")
    assert "0 to add, 0 to change, 0 to destroy" in plan
    for _, name in kinds:
        assert f'terraform_data.{name}[0] has moved to terraform_data.{name}["webhook"]' in plan


# --- The example variables ------------------------------------------------------------------------


def test_every_line_of_the_example_tfvars_is_a_value_terraform_takes(evaluate):
    example = (INFRA / "terraform.tfvars.example").read_text()
    uncommented = re.sub(r"^# ([a-z_]+\s+=)", r"\1", example, flags=re.MULTILINE)
    values = "\n".join(line for line in uncommented.splitlines() if not line.startswith("#"))
    evaluate(values)  # no function calls, every value valid
