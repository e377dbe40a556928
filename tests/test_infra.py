"""infra/: the Terraform, parsed with python-hcl2 and checked offline against the code.

`terraform validate` needs the google provider, which cannot be downloaded here; these tests
check what matters most instead: names shared with the code, least privilege, and the wiring
that keeps a message from being lost.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from function.clients import firestore
from function.config import environment_variables
from tests.helpers import ROOT
from tests.terraform import INFRA, RESOURCES, TEXT, TF, one, terraform


def all_values(node: Any) -> list[Any]:
    if isinstance(node, dict):
        return [v for value in node.values() for v in all_values(value)]
    if isinstance(node, list):
        return [v for value in node for v in all_values(value)]
    return [node]


def iam_members() -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (kind, name, body)
        for kind, named in RESOURCES.items()
        if kind.endswith(("_iam_member", "_iam_binding", "_iam_policy"))
        for name, body in named.items()
    ]


def flat(text: str) -> str:
    """An expression with its runs of blanks made one space, to look for a phrase in it."""
    return re.sub(r"\s+", " ", text)


# One resource, for_each over local.functions: what differs between them lives there. One
# function per sender (a for expression, which python-hcl2 leaves as text) and events.
FUNCTION = RESOURCES["google_cloudfunctions2_function"]["link"]
WEBHOOK = flat(TF["locals"]["sender_functions"])
EVENTS = TF["locals"]["events_function"]
SENDER_ENV = flat(TF["locals"]["sender_env"])
BUILD, SERVICE = one(FUNCTION["build_config"]), one(FUNCTION["service_config"])
FUNCTION_NAME = FUNCTION["name"]
EVENTS_URI = '${google_cloudfunctions2_function.link["events"].service_config[0].uri}'


def test_a_function_per_sender_and_events_on_python312_from_one_source():
    assert RESOURCES["google_cloudfunctions2_function"].keys() == {"link"}
    assert FUNCTION["for_each"] == "${local.functions}"
    assert flat(TF["locals"]["functions"]) == (
        "${merge(local.sender_functions, {events = local.events_function})}"
    )
    assert WEBHOOK.startswith("${{for name, sender in local.senders : name => {")
    assert TF["locals"]["senders"] == "${module.senders.senders}"
    assert BUILD["runtime"] == "python312"
    assert BUILD["entry_point"] == "${each.value.entry_point}"
    assert SERVICE["ingress_settings"] == "${each.value.ingress}"
    assert SERVICE["environment_variables"] == "${each.value.env}"


def test_entry_points_exist_in_main_py():
    tree = ast.parse((ROOT / "main.py").read_text())
    defined = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
    named = set(re.findall(r"link_records\w*", EVENTS["entry_point"] + WEBHOOK))
    assert named == {"link_records", "link_records_push", "link_records_pubsub"}
    assert named <= defined
    assert 'entry_point = "link_records"' in WEBHOOK
    assert EVENTS["entry_point"] == (
        '${var.use_eventarc_trigger ? "link_records_pubsub" : "link_records_push"}'
    )


def test_environment_variables_are_ones_the_code_reads():
    set_in_terraform = set(re.findall(r"^\s+([A-Z][A-Z0-9_]{2,})\s+=", TEXT, re.MULTILINE))
    read_by_code = environment_variables() | {"LOG_EXECUTION_ID"}  # read by the framework
    assert set_in_terraform <= read_by_code, set_in_terraform - read_by_code
    assert {
        "TULIP_BASE_URL",
        "TULIP_WORKSPACE_ID",
        "TULIP_TABLE_LINK_ID",
        "TULIP_CREDENTIALS_SECRET",
        "WEBHOOK_AUTH",
        "WEBHOOK_SECRET",
        "GOOGLE_CLOUD_PROJECT",
        "TULIP_DEADLINE_SECONDS",
    } <= set_in_terraform
    assert "env = local.sender_env[name]" in WEBHOOK
    assert "WEBHOOK_SENDER = name" in SENDER_ENV  # on every log line
    assert "MAX_BODY_BYTES = tostring(sender.max_body_bytes)" in SENDER_ENV
    assert "WEBHOOK_TOKEN_HEADER = sender.token_header" in SENDER_ENV
    assert 'WEBHOOK_ALLOWED_ORIGINS = join(",", sender.allowed_origins)' in SENDER_ENV
    assert EVENTS["env"] == "${local.events_env}"
    assert "WEBHOOK_" not in TF["locals"]["events_env"]  # Cloud Run IAM, not WEBHOOK_AUTH


def test_each_function_takes_its_own_link_mapping():
    assert "LINK_MAPPING = sender.link_mapping" in SENDER_ENV
    assert TF["module"]["senders"]["single"]["link_mapping"] == "${var.webhook_link_mapping}"
    assert "LINK_MAPPING = var.events_link_mapping" in TF["locals"]["events_env"]
    for name in ("webhook_link_mapping", "events_link_mapping"):
        variable = TF["variable"][name]
        assert variable["default"] == ""  # unset: the function's own request shape
        condition = one(variable["validation"])["condition"]
        assert "jsondecode" in condition and f'var.{name} == ""' in condition


def test_the_webhook_is_public_but_never_unauthenticated():
    assert 'ingress = "ALLOW_ALL"' in WEBHOOK
    assert "public = sender.public" in WEBHOOK and "auth = sender.auth" in WEBHOOK
    assert (EVENTS["public"], EVENTS["auth"]) == (False, "cloud-run-iam")
    assert TF["variable"]["webhook_auth"]["default"] == "standard-webhooks"
    assert TF["variable"]["webhook_public"]["default"] is True
    conditions = [p["condition"] for p in one(FUNCTION["lifecycle"])["precondition"]]
    assert '${!(each.value.public && each.value.auth == "none")}' in conditions


def test_the_events_function_is_private():
    assert EVENTS["ingress"] == "ALLOW_INTERNAL_ONLY"


def test_no_owner_or_editor_and_project_roles_only_for_the_build():
    for _, name, body in iam_members():
        assert body["role"] not in {"roles/owner", "roles/editor"}, name
    project_level = {
        (body["role"], body["member"])
        for kind, _, body in iam_members()
        if kind.startswith("google_project_iam")
    }
    assert project_level == {
        ("roles/logging.logWriter", "${google_service_account.build.member}"),
        ("roles/storage.objectViewer", "${google_service_account.build.member}"),
        # Each sender's webhook: documents of the deduplication database alone (below).
        ("roles/datastore.user", "${google_service_account.runtime[each.key].member}"),
        # Eventarc's own agent, only with use_eventarc_trigger (count).
        ("roles/eventarc.serviceAgent", "${google_project_service_identity.eventarc[0].member}"),
    }
    assert RESOURCES["google_project_iam_member"]["eventarc_agent"]["count"] == (
        "${var.use_eventarc_trigger ? 1 : 0}"
    )
    assert not any(
        k.startswith(("google_organization_iam", "google_folder_iam")) for k in RESOURCES
    )


RUNTIME = "${google_service_account.runtime[each.value.function].member}"
PUBLISHER = "${google_service_account.runtime[each.key].member}"


def test_each_function_runs_as_its_own_account():
    accounts = RESOURCES["google_service_account"]["runtime"]
    assert accounts["for_each"] == "${local.functions}"
    assert accounts["account_id"] == "${var.name_prefix}-${each.key}"
    assert SERVICE["service_account_email"] == "${google_service_account.runtime[each.key].email}"


def test_each_runtime_account_reads_only_its_own_secrets():
    # Which account reads which secret: modules/senders decides (tests/test_senders.py).
    reads = RESOURCES["google_secret_manager_secret_iam_member"]["runtime_reads"]
    assert reads["for_each"] == "${module.senders.secret_readers}"
    assert reads["secret_id"] == "${google_secret_manager_secret.this[each.value.secret].id}"
    assert reads["member"] == RUNTIME and reads["role"] == "roles/secretmanager.secretAccessor"


def test_the_webhook_may_publish_to_the_requests_topic_and_nothing_else_may():
    runtime_grants = [
        (kind, name)
        for kind, name, body in iam_members()
        if body["member"] in (RUNTIME, PUBLISHER)
        or "google_service_account.runtime" in body["member"]
    ]
    assert sorted(runtime_grants) == [
        ("google_project_iam_member", "webhook_remembers_deliveries"),
        ("google_pubsub_topic_iam_member", "events_publishes_dead_letters"),
        ("google_pubsub_topic_iam_member", "webhook_publishes"),
        ("google_secret_manager_secret_iam_member", "runtime_reads"),
    ]
    publish = RESOURCES["google_pubsub_topic_iam_member"]["webhook_publishes"]
    assert publish["member"] == PUBLISHER
    assert (publish["topic"], publish["role"]) == (
        "${google_pubsub_topic.requests.name}",
        "roles/pubsub.publisher",
    )
    assert publish["for_each"] == "${toset(module.senders.publishers)}"  # queue mode's senders
    publishers = [body for _, _, body in iam_members() if body["role"] == "roles/pubsub.publisher"]
    # Else only dead letters are published: by Pub/Sub's own agent, and by the events account.
    events = '${google_service_account.runtime["events"].member}'
    assert {body["member"] for body in publishers} == {
        PUBLISHER,
        events,
        "${google_project_service_identity.pubsub.member}",
    }
    dead_letters = RESOURCES["google_pubsub_topic_iam_member"]["events_publishes_dead_letters"]
    assert (dead_letters["member"], dead_letters["topic"]) == (
        events,
        "${google_pubsub_topic.dead_letter.name}",
    )


def test_the_events_function_dead_letters_itself_and_retries_for_hours():
    assert "DEAD_LETTER_TOPIC = google_pubsub_topic.dead_letter.id" in TF["locals"]["events_env"]
    assert (
        "TULIP_NOT_FOUND_RETRY_SECONDS = tostring(var.tulip_not_found_retry_seconds)"
        in TF["locals"]["events_env"]
    )
    assert TF["variable"]["tulip_not_found_retry_seconds"]["default"] == 3600
    # 100 deliveries, 10 s doubling to 600 s between: 630 s, then 93 waits of 600 s.
    waits = [
        min(600, 10 * 2**n) for n in range(TF["variable"]["max_delivery_attempts"]["default"] - 1)
    ]
    assert sum(waits) / 3600 >= 12


def test_queue_mode_is_the_default_and_the_webhook_is_told_its_topic():
    assert TF["variable"]["webhook_delivery"]["default"] == "queue"
    assert TF["module"]["senders"]["single"]["delivery"] == "${var.webhook_delivery}"
    assert "WEBHOOK_DELIVERY = sender.delivery" in SENDER_ENV
    assert (
        'WEBHOOK_QUEUE_TOPIC = sender.delivery == "queue" ? '
        "google_pubsub_topic.requests.id" in SENDER_ENV
    )
    assert "WEBHOOK_DELIVERY" not in TF["locals"]["events_env"]  # direct: its default
    push = RESOURCES["google_pubsub_subscription"]["push"]
    assert push["enable_message_ordering"] is True


def test_all_users_only_on_the_webhook():
    public = [
        (kind, body)
        for kind, _, body in iam_members()
        if body["member"] in {"allUsers", "allAuthenticatedUsers"}
    ]
    assert public == [
        (
            "google_cloud_run_service_iam_member",
            RESOURCES["google_cloud_run_service_iam_member"]["webhook_public"],
        )
    ]
    grant = public[0][1]
    assert grant["service"] == "${google_cloudfunctions2_function.link[each.key].name}"
    assert grant["role"] == "roles/run.invoker"
    assert grant["for_each"] == "${toset(module.senders.public)}"  # the public senders


def test_the_invoker_may_call_only_the_events_service():
    grants = [
        b for _, _, b in iam_members() if b["member"] == "${google_service_account.invoker.member}"
    ]
    assert grants == [RESOURCES["google_cloud_run_service_iam_member"]["events_invoker"]]
    assert grants[0]["service"] == '${google_cloudfunctions2_function.link["events"].name}'
    assert grants[0]["role"] == "roles/run.invoker"


def test_secrets_exist_without_values_and_are_wired_to_the_functions():
    secret = RESOURCES["google_secret_manager_secret"]["this"]
    assert secret["for_each"] == "${local.secrets}"
    secrets = flat(TF["locals"]["secrets"])
    assert secrets.startswith("${merge({tulip_token = ")
    assert "module.senders.secret_ids" in secrets  # one per sender
    assert "google_secret_manager_secret_version" not in RESOURCES
    assert "secret_data" not in TEXT
    token = '${google_secret_manager_secret.this["tulip_token"].id}'
    assert TF["locals"]["token_env"] == {"TULIP_CREDENTIALS_SECRET": token}
    assert "TULIP_CREDENTIALS_SECRET" not in TF["locals"]["common_env"]
    # The events function always; a sender only where module.senders.token_readers says.
    assert TF["locals"]["events_env"].startswith("${merge(local.common_env, local.token_env, {")
    assert "contains(module.senders.token_readers, name) ? local.token_env : {}" in SENDER_ENV
    assert 'WEBHOOK_SECRET = google_secret_manager_secret.this["${name}_secret"].id' in SENDER_ENV
    # Replicated where the deployment is (gcp.resourceLocations allows it), and never replaced
    # because of its replication (which would lose its versions).
    assert one(secret["lifecycle"])["ignore_changes"] == ["replication"]
    assert "[var.region]" in TF["locals"]["secret_locations"]
    assert FUNCTION["depends_on"] == ["${time_sleep.build_grants_live}"]
    waited = RESOURCES["time_sleep"]["build_grants_live"]["depends_on"]
    assert "${google_secret_manager_secret_iam_member.runtime_reads}" in waited


def test_the_push_goes_to_the_events_function_with_its_own_oidc_identity():
    push = RESOURCES["google_pubsub_subscription"]["push"]
    config = one(push["push_config"])
    assert config["push_endpoint"] == EVENTS_URI
    token = one(config["oidc_token"])
    assert token["audience"] == EVENTS_URI
    assert token["service_account_email"] == "${google_service_account.invoker.email}"
    assert push["topic"] == "${google_pubsub_topic.requests.id}"


def test_nothing_is_lost_dead_letter_wiring():
    push = RESOURCES["google_pubsub_subscription"]["push"]
    policy = one(push["dead_letter_policy"])
    assert policy["dead_letter_topic"] == "${google_pubsub_topic.dead_letter.id}"
    assert policy["max_delivery_attempts"] == "${var.max_delivery_attempts}"
    assert TF["variable"]["max_delivery_attempts"]["default"] == 100
    assert one(push["retry_policy"]) == {"minimum_backoff": "10s", "maximum_backoff": "600s"}
    assert push["message_retention_duration"] == "604800s"
    assert one(push["expiration_policy"]) == {"ttl": ""}
    dead = RESOURCES["google_pubsub_subscription"]["dead_letter"]
    assert dead["topic"] == "${google_pubsub_topic.dead_letter.id}"  # else dead letters vanish
    assert one(dead["expiration_policy"]) == {"ttl": ""}
    publisher = RESOURCES["google_pubsub_topic_iam_member"]["agent_publishes_dead_letters"]
    subscriber = RESOURCES["google_pubsub_subscription_iam_member"]["agent_acks_dead_letters"]
    assert publisher["role"] == "roles/pubsub.publisher"
    assert publisher["topic"] == "${google_pubsub_topic.dead_letter.name}"
    assert subscriber["role"] == "roles/pubsub.subscriber"
    assert subscriber["subscription"] == "${google_pubsub_subscription.push[0].name}"
    for grant in (publisher, subscriber):
        assert grant["member"] == "${google_project_service_identity.pubsub.member}"


def test_the_ack_deadline_covers_the_function_timeout():
    push = RESOURCES["google_pubsub_subscription"]["push"]
    assert push["ack_deadline_seconds"] == "${local.push_ack_deadline_seconds}"
    assert TF["locals"]["push_ack_deadline_seconds"] == "${var.function_timeout_seconds}"
    assert SERVICE["timeout_seconds"] == "${var.function_timeout_seconds}"
    # Pub/Sub's ack deadline is at most 600 s: the timeout may not be longer.
    validation = one(TF["variable"]["function_timeout_seconds"]["validation"])
    assert "var.function_timeout_seconds <= 600" in validation["condition"]


def test_the_eventarc_option_replaces_push_and_is_off_by_default():
    assert TF["variable"]["use_eventarc_trigger"]["default"] is False
    assert (
        RESOURCES["google_pubsub_subscription"]["push"]["count"]
        == "${var.use_eventarc_trigger ? 0 : 1}"
    )
    assert EVENTS["eventarc"] == "${var.use_eventarc_trigger}" and "eventarc = false" in WEBHOOK
    trigger = FUNCTION["dynamic"][0]["event_trigger"]["content"][0]
    assert trigger["event_type"] == "google.cloud.pubsub.topic.v1.messagePublished"
    assert trigger["retry_policy"] == "RETRY_POLICY_RETRY"


def test_the_archive_holds_exactly_the_function():
    archive = TF["data"]["archive_file"]["source"]
    assert archive["output_file_mode"] == "0666"
    sources = TF["locals"]["source_files"]
    assert '"main.py"' in sources and '"requirements.txt"' in sources
    patterns = re.findall(r'"([^"]*\*[^"]*)"', sources)
    assert patterns == ["function/**/*.py"]
    assert not re.search(r"tests|infra|devtools|\.venv", sources)
    obj = RESOURCES["google_storage_bucket_object"]["source"]
    assert "${data.archive_file.source.output_sha256}" in obj["name"]


def test_the_source_bucket_is_private():
    bucket = RESOURCES["google_storage_bucket"]["source"]
    assert bucket["uniform_bucket_level_access"] is True
    assert bucket["public_access_prevention"] == "enforced"


def test_builds_use_their_own_account_and_repository():
    assert BUILD["service_account"] == "${google_service_account.build.id}"
    assert BUILD["docker_repository"] == "${google_artifact_registry_repository.functions.id}"


def test_apis_stay_enabled_on_destroy():
    assert RESOURCES["google_project_service"]["enabled"]["disable_on_destroy"] is False


def test_alerts_watch_dead_letters_and_failures():
    metric = RESOURCES["google_logging_metric"]["link_outcomes"]
    for event in ("link.done", "link.queued", "link.failed", "link.rejected"):
        assert event in metric["filter"]
    policies = RESOURCES["google_monitoring_alert_policy"]
    dead = one(one(policies["dead_letters"]["conditions"])["condition_threshold"])
    assert "subscription/num_undelivered_messages" in dead["filter"]
    assert "${google_pubsub_subscription.dead_letter.name}" in dead["filter"]
    assert (dead["comparison"], dead["threshold_value"]) == ("COMPARISON_GT", 0)
    for policy in policies.values():
        assert policy["notification_channels"] == "${var.notification_channels}"
    assert TF["variable"]["notification_channels"]["default"] == []


@pytest.mark.parametrize("name", sorted(TF["variable"]))
def test_every_variable_is_typed_and_described(name):
    variable = TF["variable"][name]
    assert variable.get("type") and variable.get("description")


@pytest.mark.parametrize(
    "name", sorted(k for k, v in TF["variable"].items() if v["type"] != "bool")
)
def test_every_variable_that_can_be_wrong_is_validated(name):
    assert TF["variable"][name].get("validation"), name


def test_versions_are_pinned():
    terraform = TF["terraform"]
    assert terraform["required_version"] == ">= 1.5"
    providers = one(terraform["required_providers"])
    # Exactly the versions make check-infra checks against (requirements-schema.txt).
    google = providers["google"]["version"]
    assert google == providers["google-beta"]["version"] and google.startswith("8.")
    for exact in ("google", "archive", "time"):
        assert re.fullmatch(r"\d+\.\d+\.\d+", providers[exact]["version"])
    schema_pins = (ROOT / "requirements-schema.txt").read_text()
    assert f"google {google}, google-beta {google}" in schema_pins
    # The schemas are CDK Terrain's (CDK for Terraform's packages are archived), hash-pinned.
    packages = re.findall(r"^([a-z-]+)==", schema_pins, re.MULTILINE)
    assert packages and all(p.startswith("cdktn-provider-") for p in packages)
    assert schema_pins.count("--hash=sha256:") == len(packages)
    assert f"time {providers['time']['version']}" in schema_pins
    assert f"archive {providers['archive']['version']}" in schema_pins


def test_outputs_a_reader_needs():
    assert {
        "webhook_urls",
        "webhook_secrets",
        "webhook_url",
        "requests_topic",
        "dead_letter_topic",
        "service_accounts",
        "tulip_token_secret",
        "webhook_secret",
    } <= set(TF["output"])
    outputs = TF["output"]
    assert "for name, _ in local.senders : name =>" in outputs["webhook_urls"]["value"]
    assert 'this["${name}_secret"].id' in outputs["webhook_secrets"]["value"]
    # The single sender's outputs stay, for scripts written before senders.
    assert outputs["webhook_url"]["value"] == (
        '${try(google_cloudfunctions2_function.link["webhook"].service_config[0].uri, null)}'
    )


def test_every_checkov_skip_has_a_reason():
    skips = re.findall(r"#checkov:skip=([A-Z0-9_]+)(:?)(.*)", TEXT)
    assert skips
    for check, colon, reason in skips:
        assert colon and len(reason.strip()) > 20, check


def test_the_readmes_lead_to_each_other():
    assert "infra/README.md" in (ROOT / "README.md").read_text()
    guide = (INFRA / "README.md").read_text()
    assert "gcloud secrets versions add" in guide and "terraform apply" in guide


def test_example_variables_name_real_variables():
    example = (INFRA / "terraform.tfvars.example").read_text()
    named = set(re.findall(r"^#?\s*([a-z_]+)\s+=", example, re.MULTILINE))
    assert named <= set(TF["variable"]), named - set(TF["variable"])
    required = {k for k, v in TF["variable"].items() if "default" not in v}
    assert required <= set(re.findall(r"^([a-z_]+)\s+=", example, re.MULTILINE))


def test_terraform_files_are_all_parsed():
    assert {p.name for p in Path(INFRA).glob("*.tf")} >= {
        "versions.tf",
        "variables.tf",
        "main.tf",
        "outputs.tf",
    }


# A first apply in a fresh project: each race issue 14 names has its wait, in the right place.


def sleep(name: str) -> dict[str, Any]:
    return RESOURCES["time_sleep"][name]


def test_the_functions_build_only_after_the_build_grants_have_had_time_to_apply():
    waited = set(sleep("build_grants_live")["depends_on"])
    assert {
        "${google_project_iam_member.build_writes_logs}",
        "${google_project_iam_member.build_uses_staged_source}",
        "${google_storage_bucket_iam_member.build_reads_source}",
        "${google_artifact_registry_repository_iam_member.build_pushes_images}",
        "${google_project_iam_member.eventarc_agent}",
    } <= waited
    assert sleep("build_grants_live")["create_duration"] == "${var.iam_propagation_seconds}s"
    assert TF["variable"]["iam_propagation_seconds"]["default"] >= 120
    assert FUNCTION["depends_on"] == ["${time_sleep.build_grants_live}"]


def test_the_alert_waits_after_its_metric_and_the_metric_waits_for_nothing():
    for metric in RESOURCES["google_logging_metric"].values():
        # Built from names known in advance, not from the functions' outputs: created early.
        assert "google_cloudfunctions2_function" not in metric["filter"]
        assert "${local.function_services}" in metric["filter"]
    services = TF["locals"]["function_services"]
    assert "${var.name_prefix}-${key}" in services and "local.functions" in services
    assert FUNCTION_NAME == "${var.name_prefix}-${each.key}"  # the names the filter builds
    assert sleep("metric_available")["depends_on"] == [
        "${google_logging_metric.link_outcomes}",
        "${google_logging_metric.tulip_latency}",
    ]
    alert = RESOURCES["google_monitoring_alert_policy"]["link_failures"]
    assert alert["depends_on"] == ["${time_sleep.metric_available}"]
    assert TF["variable"]["metric_propagation_seconds"]["default"] >= 120


def test_the_push_subscription_waits_after_the_invoker_grant():
    assert sleep("invoker_grant_live")["depends_on"] == [
        "${google_cloud_run_service_iam_member.events_invoker}",
        "${google_service_account_iam_member.pubsub_agent_signs_pushes}",
    ]
    push = RESOURCES["google_pubsub_subscription"]["push"]
    assert "${time_sleep.invoker_grant_live}" in push["depends_on"]


def test_grants_to_service_agents_use_the_agents_created_here():
    identities = RESOURCES["google_project_service_identity"]
    assert identities["pubsub"]["service"] == "pubsub.googleapis.com"
    assert identities["eventarc"]["service"] == "eventarc.googleapis.com"
    for identity in identities.values():
        assert identity["provider"] == "google-beta"
    agents = [
        body["member"] for _, _, body in iam_members() if "service_identity" in body["member"]
    ]
    # Dead letters: publish and ack; pushes: sign the invoker's tokens; Eventarc: its agent role.
    assert len(agents) == 4
    assert "@gcp-sa-" not in TEXT  # no agent e-mail is computed by hand
    assert "google_project" not in TF["data"]  # nothing read at plan time, before APIs are on


def test_old_source_archives_are_deleted_and_the_live_one_never():
    bucket = RESOURCES["google_storage_bucket"]["source"]
    condition = one(one(bucket["lifecycle_rule"])["condition"])
    assert condition == {"days_since_noncurrent_time": 30, "with_state": "ARCHIVED"}


# The deploy guide, as a reader follows it.

GUIDE = (INFRA / "README.md").read_text()
SHELL_BLOCKS = re.findall(r"```sh\n(.*?)```", GUIDE, re.DOTALL)


def test_every_variable_is_in_the_guide_or_the_example():
    example = (INFRA / "terraform.tfvars.example").read_text()
    missing = [name for name in TF["variable"] if name not in GUIDE and name not in example]
    assert missing == []


def test_commands_read_names_from_outputs_that_exist():
    commands = "\n".join(SHELL_BLOCKS)
    assert "tulip-link-" not in commands  # works with any name_prefix
    used = set(re.findall(r"terraform (?:-chdir=infra )?output -raw (\w+)", commands))
    maps = set(re.findall(r"sender_output (\w+) \w+", GUIDE))  # one sender's entry of a map
    assert maps == {"webhook_secrets", "webhook_urls"}
    used |= maps
    assert used and used <= set(TF["output"]), used - set(TF["output"])


def test_no_shell_variable_is_named_like_a_setting():
    assigned = {
        name for block in SHELL_BLOCKS for name in re.findall(r"^(\w+)=", block, re.MULTILINE)
    }
    assert assigned and not assigned & environment_variables()


def test_both_logins_and_the_working_directory_are_there():
    [setup] = [block for block in SHELL_BLOCKS if "terraform apply" in block]
    assert "gcloud auth login" in setup and "gcloud auth application-default login" in setup
    assert "cd infra" in setup
    assert any("cd .." in block and ".venv/bin/python" in block for block in SHELL_BLOCKS)


# What a deploy would refuse, refused first by Terraform with a clear message (issue 22).


def preconditions() -> list[dict[str, str]]:
    return one(FUNCTION["lifecycle"])["precondition"]


def test_a_fractional_cpu_needs_a_concurrency_of_one():
    [rule] = [
        p for p in preconditions() if "var.max_instance_request_concurrency" in p["condition"]
    ]
    assert rule["condition"] == (
        "${tonumber(var.cpu) >= 1 || var.max_instance_request_concurrency == 1}"
    )
    assert "max_instance_request_concurrency = 1" in rule["error_message"]
    validation = one(TF["variable"]["cpu"]["validation"])["condition"]
    assert "0.08" in validation and "0.5" not in TF["variable"]["cpu"]["description"]


@pytest.mark.parametrize(
    ("cpu", "valid"),
    [("1", True), ("2", True), ("8", True), ("0.5", True), ("0.08", True), ("0.999", True),
     ("1.5", False), ("9", False), ("0.05", False), ("0", False), ("one", False)],
)  # fmt: skip
def test_the_cpu_variable_takes_what_cloud_run_takes(cpu, valid):
    condition = one(TF["variable"]["cpu"]["validation"])["condition"]
    pattern = re.search(r'regex\("(.+?)", var\.cpu\)', condition)
    assert pattern is not None
    regex = pattern[1].replace("\\\\", "\\")
    matches = re.fullmatch(regex, cpu) is not None and float(cpu) >= 0.08
    assert matches == valid


def test_the_eventarc_variant_keeps_the_timeout_event_driven_functions_allow():
    [rule] = [p for p in preconditions() if "540" in p["condition"]]
    assert rule["condition"] == "${!(each.value.eventarc && var.function_timeout_seconds > 540)}"
    assert "540" in rule["error_message"]


def test_the_pubsub_agent_may_sign_the_invokers_tokens_and_nothing_else():
    grant = RESOURCES["google_service_account_iam_member"]["pubsub_agent_signs_pushes"]
    assert grant["service_account_id"] == "${google_service_account.invoker.name}"
    assert grant["role"] == "roles/iam.serviceAccountTokenCreator"
    assert grant["member"] == "${google_project_service_identity.pubsub.member}"
    others = set(RESOURCES["google_service_account_iam_member"]) - {"pubsub_agent_signs_pushes"}
    assert others == {"deployer_acts_as"}


def test_the_deployer_acts_as_this_deployments_accounts_only():
    grant = RESOURCES["google_service_account_iam_member"]["deployer_acts_as"]
    assert grant["role"] == "roles/iam.serviceAccountUser"
    assert grant["member"] == "${var.deployer}"
    accounts = flat(grant["for_each"])
    assert "{for key, account in google_service_account.runtime : key => account.name}" in accounts
    assert "build = google_service_account.build.name" in accounts
    assert "invoker = google_service_account.invoker.name" in accounts
    assert len(re.findall(r"google_service_account\.\w+", accounts)) == 3
    # Never on the project: only on the accounts this configuration creates.
    assert not any(b["role"] == "roles/iam.serviceAccountUser" for k, _, b in iam_members()
                   if k.startswith("google_project_iam"))  # fmt: skip
    waited = RESOURCES["time_sleep"]["build_grants_live"]["depends_on"]
    assert "${google_service_account_iam_member.deployer_acts_as}" in waited


def test_a_private_webhook_admits_only_the_invokers_named():
    # Which members, on which sender's function: tests/test_senders.py.
    grant = RESOURCES["google_cloud_run_service_iam_member"]["webhook_invokers"]
    assert grant["for_each"] == "${module.senders.invoker_grants}"
    assert grant["service"] == "${google_cloudfunctions2_function.link[each.value.sender].name}"
    assert grant["role"] == "roles/run.invoker" and grant["member"] == "${each.value.member}"
    assert TF["variable"]["webhook_invokers"]["default"] == []


def test_messages_eventarc_drops_have_an_alert():
    alert = RESOURCES["google_monitoring_alert_policy"]["eventarc_dropped"]
    assert alert["count"] == "${var.use_eventarc_trigger ? 1 : 0}"
    log_filter = one(one(alert["conditions"])["condition_matched_log"])["filter"]
    assert 'jsonPayload.event="link.rejected"' in log_filter
    assert "jsonPayload.acked=true" in log_filter
    assert "${var.name_prefix}-events" in log_filter
    assert one(one(alert["alert_strategy"])["notification_rate_limit"])["period"] == "300s"


def test_the_example_says_which_values_are_defaults_and_those_are():
    example = (INFRA / "terraform.tfvars.example").read_text()
    lines = re.findall(r"^# ([a-z_]+)\s+=\s+(.+?)\s+# (DEFAULT|EXAMPLE)", example, re.MULTILINE)
    set_above = set(re.findall(r"^([a-z_]+)\s+=", example, re.MULTILINE))
    optional = {k for k, v in TF["variable"].items() if "default" in v} - set_above
    assert {name for name, _, _ in lines} == optional  # every optional variable, marked
    for name, value, mark in lines:
        default = TF["variable"][name]["default"]
        literal = json.loads(value) if mark == "DEFAULT" else None
        if mark == "DEFAULT":
            assert literal == default or str(literal) == str(default), name
        else:
            assert literal != default, f"{name} is marked EXAMPLE but shows the default"


@pytest.mark.processes
def test_the_guides_sender_output_reads_one_senders_entry(tmp_path):
    [line] = re.findall(r"^ *(sender_output\(\) \{.*\})$", GUIDE, re.MULTILINE)
    fake = tmp_path / "terraform"  # prints what `terraform output -json webhook_urls` would
    fake.write_text('#!/bin/sh\necho \'{"mes": "https://mes.example", "jira": "https://j"}\'\n')
    fake.chmod(0o755)
    done = subprocess.run(
        ["bash", "-c", f"{line}\nsender_output webhook_urls mes"],
        env=os.environ | {"PATH": f"{tmp_path}:{os.environ['PATH']}"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout == "https://mes.example\n"


@pytest.mark.processes
@pytest.mark.skipif(shutil.which("terraform") is None, reason="terraform is not installed")
def test_the_build_reads_only_this_deployments_staged_sources(tmp_path):
    """The build account's condition, evaluated by Terraform for a deployment with two senders:
    this region's staging buckets and, in them, only its own functions' objects."""
    staged = RESOURCES["google_project_iam_member"]["build_uses_staged_source"]
    expression, sources = one(staged["condition"])["expression"], TF["locals"]["staged_sources"]
    assert expression.startswith("${") and sources.startswith("${")
    (tmp_path / "main.tf").write_text(
        'variable "region" {\n  default = "europe-west1"\n}\n'
        'variable "name_prefix" {\n  default = "tulip-link"\n}\n'
        "locals {\n  functions = { mes = {}, jira = {}, events = {} }\n"
        f"  staged_sources = {sources[2:-1]}\n}}\n"
        f'output "condition" {{\n  value = {expression[2:-1]}\n}}\n'
    )
    terraform(tmp_path, "init", "-input=false")
    terraform(tmp_path, "apply", "-auto-approve", "-input=false")
    condition = json.loads(terraform(tmp_path, "output", "-json", "condition"))
    objects = " || ".join(
        f'resource.name.extract("/objects/{{object}}").startsWith("tulip-link-{name}/")'
        for name in ("events", "jira", "mes")
    )
    assert condition == (
        'resource.name.startsWith("projects/_/buckets/gcf-v2-sources-") && '
        'resource.name.extract("projects/_/buckets/{bucket}/objects/").endsWith("-europe-west1")'
        f" && ({objects})"
    )
    assert staged["role"] == "roles/storage.objectViewer"


def test_deliveries_are_remembered_in_a_database_of_the_deployments_own_for_its_webhooks_only():
    database = RESOURCES["google_firestore_database"]["dedup"]
    assert database["count"] == "${var.dedup ? 1 : 0}"
    assert database["name"] == "${var.name_prefix}-dedup"  # never the project's (default)
    assert (database["location_id"], database["type"]) == ("${var.region}", "FIRESTORE_NATIVE")
    assert database["delete_protection_state"] == "DELETE_PROTECTION_ENABLED"
    assert database["point_in_time_recovery_enablement"] == "POINT_IN_TIME_RECOVERY_DISABLED"
    assert "firestore.googleapis.com" in RESOURCES["google_project_service"]["enabled"]["for_each"]
    # The records expire: a TTL policy on the field the code writes, in the collection it uses.
    expiry = RESOURCES["google_firestore_field"]["dedup_expiry"]
    assert (expiry["collection"], expiry["field"]) == (firestore.COLLECTION, "expiresAt")
    assert "ttl_config" in expiry
    assert (
        '"expiresAt": _moment(claim.expires_at)'
        in (ROOT / "function/clients/firestore.py").read_text()
    )
    # Who may use it: each sender's webhook function, on that database alone; not the events one.
    grant = RESOURCES["google_project_iam_member"]["webhook_remembers_deliveries"]
    assert grant["for_each"] == "${var.dedup ? toset(keys(local.senders)) : toset([])}"
    assert grant["member"] == "${google_service_account.runtime[each.key].member}"
    assert grant["role"] == "roles/datastore.user"
    condition = one(grant["condition"])["expression"]
    assert condition == 'resource.name == "${google_firestore_database.dedup[0].id}"'
    assert "DEDUP_DATABASE = var.dedup ? google_firestore_database.dedup[0].id" in SENDER_ENV
    assert "DEDUP" not in TF["locals"]["events_env"]
