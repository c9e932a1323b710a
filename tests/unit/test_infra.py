"""infra/ Terraform, read with python-hcl2: the properties the code's correctness leans on.

The google provider cannot be downloaded here, so `terraform validate` cannot run; these read
the declarations themselves and compare the names and timeouts with what the code derives.
"""

from __future__ import annotations

import ast
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import hcl2
import pytest
import yaml
from google.cloud.devtools import cloudbuild_v1
from google.protobuf import json_format

from deepflix.adapters.gcp.pubsub import topic_id
from deepflix.adapters.gcp.run_jobs import CloudRunJobRunner
from deepflix.pipeline.models import STAGES, Stage
from deepflix.pipeline.sender import stage_topic
from deepflix.settings import Settings

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
BASIC_ROLES = {"roles/owner", "roles/editor", "roles/viewer"}
PUBLIC = {"allUsers", "allAuthenticatedUsers"}


def _plain(value: Any) -> Any:
    """hcl2's output without its quoting and bookkeeping keys."""
    if isinstance(value, dict):
        return {
            _plain(k): _plain(v)
            for k, v in value.items()
            if k not in ("__is_block__", "__comments__", "__inline_comments__")
        }
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


@cache
def _module() -> dict[str, Any]:
    merged: dict[str, Any] = {"resource": {}, "variable": {}, "locals": {}, "data": {}}
    for path in sorted(INFRA.glob("*.tf")):
        doc = _plain(hcl2.load(path.open()))
        for block in doc.get("resource", []):
            for rtype, named in block.items():
                merged["resource"].setdefault(rtype, {}).update(named)
        for block in doc.get("variable", []):
            merged["variable"].update(block)
        for block in doc.get("locals", []):
            merged["locals"].update(block)
        merged.setdefault("terraform", []).extend(doc.get("terraform", []))
    return merged


def _resources(rtype: str) -> dict[str, Any]:
    return dict(_module()["resource"].get(rtype, {}))


def _default(name: str) -> Any:
    return _module()["variable"][name]["default"]


def _walk(value: Any, key: str) -> list[Any]:
    found = []
    if isinstance(value, dict):
        for k, v in value.items():
            if k == key:
                found.append(v)
            found.extend(_walk(v, key))
    elif isinstance(value, list):
        for v in value:
            found.extend(_walk(v, key))
    return found


def _template(local: str) -> str:
    """The string a `{for s in ... : s => "<template>"}` local builds."""
    match = re.search(r'=> "([^"]+)"', _module()["locals"][local])
    assert match, local
    return match.group(1)


def test_provider_pinned_and_backend_partial() -> None:
    (terraform,) = _module()["terraform"]
    google = terraform["required_providers"][0]["google"]
    assert google["source"] == "hashicorp/google"
    assert re.fullmatch(r"= \d+\.\d+\.\d+", google["version"])
    assert terraform["backend"] == [{"gcs": {}}]  # bucket and prefix at init time


def test_environment_files() -> None:
    for env in ("dev", "prod"):
        tfvars = _plain(hcl2.load((INFRA / "envs" / f"{env}.tfvars").open()))
        assert tfvars["env"] == env
        assert set(tfvars["functions"]) == set(_default("functions"))
    prod = _plain(hcl2.load((INFRA / "envs" / "prod.tfvars").open()))
    assert prod["functions"]["api"]["min_instances"] >= 1  # no cold start on the API


def test_names_are_the_ones_the_code_derives() -> None:
    s = Settings()
    assert _default("tasks_queue") == s.tasks_queue
    assert _default("topic_prefix") == s.topic_prefix
    assert _default("run_job_prefix") == s.run_job_prefix
    assert _default("region") == s.gcp_location

    topic = _template("topic_ids")
    job = _template("job_ids")
    runner = CloudRunJobRunner(project="p", location="l", job_prefix=s.run_job_prefix)
    for stage in STAGES:
        tf_topic = topic.replace("${var.topic_prefix}", s.topic_prefix).replace("${s}", stage)
        assert tf_topic == topic_id(s.topic_prefix, stage_topic(stage))
    for stage in (Stage.images, Stage.video):
        tf_job = job.replace("${var.run_job_prefix}", s.run_job_prefix).replace("${s}", stage)
        assert runner.job_name(stage).endswith(f"/jobs/{tf_job}")
    assert _resources("google_cloud_tasks_queue")["dispatch"]["name"] == "${var.tasks_queue}"


def test_one_function_per_entry_point() -> None:
    tree = ast.parse((ROOT / "functions" / "main.py").read_text())
    exported = next(
        ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "__all__"
    )
    entries = _module()["locals"]["function_entry"]
    assert set(entries) == set(exported) == set(_default("functions"))
    assert entries["api"]["ingress"] == "ALLOW_ALL"
    assert {e["ingress"] for n, e in entries.items() if n != "api"} == {"ALLOW_INTERNAL_ONLY"}
    assert len({e["sa"] for e in entries.values()}) == len(entries)  # an identity each
    fn = _resources("google_cloudfunctions2_function")["fn"]
    service = fn["service_config"][0]
    for key in (
        "available_memory",
        "timeout_seconds",
        "min_instance_count",
        "max_instance_count",
        "max_instance_request_concurrency",
        "ingress_settings",
        "service_account_email",
        "environment_variables",
    ):
        assert key in service, key


def _function_timeout(name: str, stage_timeouts: dict[str, int]) -> int:
    value = _module()["locals"]["function_timeout_s"][name]
    if isinstance(value, int):
        return value
    match = re.fullmatch(r'\$\{var\.stage_timeout_s\["(\w+)"\] \+ (\d+)\}', value)
    assert match, value
    return stage_timeouts[match.group(1)] + int(match.group(2))


def test_function_timeouts_exceed_their_stage_timeouts() -> None:
    s = Settings()
    stage_timeouts = _default("stage_timeout_s")
    assert stage_timeouts == {
        "story": s.story_timeout_s,
        "images": s.images_timeout_s,
        "video": s.video_timeout_s,
    }
    for stage in STAGES:
        assert _function_timeout(f"{stage}_requested", stage_timeouts) > stage_timeouts[stage]
    # The tasks function answers within the dispatch deadline the code gives its tasks (60 s).
    assert _function_timeout("tasks", stage_timeouts) > 60
    # The env the functions run with says the same timeouts.
    env = _module()["locals"]["common_env"]
    for stage in STAGES:
        assert env[f"DEEPFLIX_{stage.upper()}_TIMEOUT_S"] == (
            f'${{tostring(var.stage_timeout_s["{stage}"])}}'
        )


def test_function_environment_is_the_production_profile() -> None:
    env = _module()["locals"]["common_env"]
    fields = set(Settings.model_fields)
    for key in env:
        assert key.startswith("DEEPFLIX_") and key[9:].lower() in fields, key
    assert env["DEEPFLIX_BACKEND"] == "gcp"
    assert env["DEEPFLIX_ARTIFACTS"] == "gcs"
    assert env["DEEPFLIX_JOB_RUNNER"] == "cloudrun"
    assert "DEEPFLIX_TASKS_SERVICE_ACCOUNT" in env and "DEEPFLIX_TASKS_URL" in env
    # The internal endpoints accept the tasks, scheduler and push identities, for the URLs
    # of the functions they call.
    callers = env["DEEPFLIX_INTERNAL_CALLERS"]
    for account in ("tasks_invoker", "scheduler", "push"):
        assert f"google_service_account.{account}.email" in callers
    audiences = env["DEEPFLIX_INTERNAL_AUDIENCES"]
    for fn in ("tasks", "story_requested", "images_requested", "video_requested"):
        assert f'"{fn}"' in audiences and "local.function_url[f]" in audiences


def test_every_queue_has_rate_limits_and_retry_config() -> None:
    queues = _resources("google_cloud_tasks_queue")
    assert queues
    for name, queue in queues.items():
        assert queue.get("rate_limits") and queue.get("retry_config"), name


def test_every_push_subscription_has_oidc_retry_and_dead_letters() -> None:
    subs = _resources("google_pubsub_subscription")
    push = {n: s for n, s in subs.items() if "push_config" in s}
    assert push
    for name, sub in push.items():
        (config,) = sub["push_config"]
        assert config["oidc_token"][0]["service_account_email"], name
        assert sub.get("retry_policy"), name
        assert sub["dead_letter_policy"][0]["dead_letter_topic"], name
        assert "ack_deadline_seconds" in sub, name
    dead = [s for s in subs.values() if "dead_letter" in s["topic"] and "push_config" not in s]
    assert dead, "the dead-letter topic has its own subscription"
    ack = _module()["locals"]["ack_deadline_s"]
    assert ack.startswith("${{for s in local.stages : s => min(600")  # Pub/Sub's maximum


def test_every_job_is_one_task_without_retries_and_outlasts_its_stage() -> None:
    jobs = _resources("google_cloud_run_v2_job")
    assert jobs
    for name, job in jobs.items():
        (outer,) = job["template"]
        assert outer["task_count"] == 1, name
        (task,) = outer["template"]
        assert task["max_retries"] == 0, name
        assert re.fullmatch(r"\$\{var\.stage_timeout_s\[each\.key\] \+ \d+\}s", task["timeout"])
        (container,) = task["containers"]
        assert container["command"] == ["python", "-m", "deepflix.entrypoints.job"]
        assert "docker.pkg.dev" in _module()["locals"]["job_image"]
    assert _resources("google_artifact_registry_repository")["images"]["cleanup_policies"]


def test_no_basic_roles_and_only_the_api_is_public() -> None:
    for rtype, named in _module()["resource"].items():
        for name, body in named.items():
            for role in _walk(body, "role"):
                assert role not in BASIC_ROLES, f"{rtype}.{name}"
            for roles in _walk(body, "for_each"):
                if isinstance(roles, str):
                    assert not any(r in roles for r in BASIC_ROLES), f"{rtype}.{name}"
            for member in _walk(body, "member"):
                if member in PUBLIC:
                    assert rtype == "google_cloud_run_v2_service_iam_member", name
                    assert body["name"].startswith('${google_cloudfunctions2_function.fn["api"]')
                    assert body["role"] == "roles/run.invoker"
    text = "\n".join(p.read_text() for p in INFRA.glob("*.tf"))
    assert text.count("allUsers") == 1
    assert "allAuthenticatedUsers" not in text


def test_firestore_database_rules_and_indexes() -> None:
    (db,) = _resources("google_firestore_database").values()
    assert db["type"] == "FIRESTORE_NATIVE"
    assert db["point_in_time_recovery_enablement"] == "POINT_IN_TIME_RECOVERY_ENABLED"
    assert db["delete_protection_state"] == "DELETE_PROTECTION_ENABLED"
    rules = _resources("google_firebaserules_ruleset")["firestore"]
    assert "firestore.rules" in rules["source"][0]["files"][0]["content"]
    # The indexes are read from the one file the emulators load too.
    assert "firestore.indexes.json" in _module()["locals"]["firestore_indexes_doc"]
    assert json.loads((INFRA / "firestore.indexes.json").read_text())["indexes"]
    assert _resources("google_firestore_index")["composite"]["for_each"]
    assert "ttl_config" in _resources("google_firestore_field")["ttl"]


def test_artifacts_bucket() -> None:
    bucket = _resources("google_storage_bucket")["artifacts"]
    assert bucket["uniform_bucket_level_access"] is True
    assert bucket["public_access_prevention"] == "enforced"
    assert bucket["lifecycle_rule"]


def test_scheduler_calls_sweep_with_oidc() -> None:
    (job,) = _resources("google_cloud_scheduler_job").values()
    (target,) = job["http_target"]
    assert target["uri"].endswith("/sweep")
    assert target["oidc_token"][0]["service_account_email"]


@pytest.mark.parametrize(
    "phrase",
    [
        "dead letters waiting",
        "oldest task age",
        "5xx ratio per function",
        "failed job executions",
        "sweep absent for 5 minutes",
        "oldest waiting movie over its objective",
    ],
)
def test_alert_policies(phrase: str) -> None:
    policies = _resources("google_monitoring_alert_policy").values()
    matching = [p for p in policies if p["display_name"].endswith(phrase)]
    assert len(matching) == 1, phrase
    assert matching[0]["notification_channels"] == "${var.notification_channels}"


def test_dashboard_log_metrics_and_uptime_check() -> None:
    assert _resources("google_monitoring_dashboard")
    assert {"stage_failed", "dropped_malformed", "sweeps"} <= set(
        _resources("google_logging_metric")
    )
    (uptime,) = _resources("google_monitoring_uptime_check_config").values()
    assert uptime["http_check"][0]["path"].endswith("/healthz")


def test_cloudbuild_yaml_is_a_build() -> None:
    doc = yaml.safe_load((ROOT / "cloudbuild.yaml").read_text())
    build = cloudbuild_v1.Build.pb(cloudbuild_v1.Build())
    json_format.ParseDict(doc, build)  # unknown fields or wrong types raise
    ids = [step.id for step in build.steps]
    assert ids == ["test", "build-job-image", "push-job-image", "terraform-plan", "terraform-apply"]
    assert "_ENV" in build.substitutions
    plan = " ".join(build.steps[3].args)
    assert "envs/${_ENV}.tfvars" in plan and "-out=tfplan" in plan
    assert list(build.steps[4].args) == ["apply", "-input=false", "tfplan"]
    triggers = _resources("google_cloudbuild_trigger")["deploy"]
    assert "approval_config" in triggers


def test_dockerfile_runs_the_job_as_non_root_on_a_pinned_base() -> None:
    lines = [ln.strip() for ln in (ROOT / "Dockerfile").read_text().splitlines()]
    (base,) = [ln for ln in lines if ln.startswith("FROM ")]
    assert re.fullmatch(r"FROM python:\d+\.\d+\.\d+-slim-\w+(@sha256:[0-9a-f]{64})?", base)
    user = [ln for ln in lines if ln.startswith("USER ")]
    assert user and user[-1] not in ("USER root", "USER 0")
    assert lines[-1] == 'CMD ["python", "-m", "deepflix.entrypoints.job"]'


def test_the_generator_key_comes_from_secret_manager_to_what_runs_models_only() -> None:
    (secret,) = _resources("google_secret_manager_secret").values()
    assert secret["secret_id"].endswith("-genai-api-key")
    readers = _module()["locals"]["genai_key_readers"]
    assert '["story", "job"]' in readers and 'var.generators == "gemini"' in readers
    (grant,) = _resources("google_secret_manager_secret_iam_member").values()
    assert grant["role"] == "roles/secretmanager.secretAccessor"
    fn = _resources("google_cloudfunctions2_function")["fn"]
    (mount,) = _walk(fn, "secret_environment_variables")
    mount = mount[0] if isinstance(mount, list) else mount
    assert 'each.key == "story_requested"' in mount["for_each"]
    assert mount["content"][0]["key"] == "DEEPFLIX_GENAI_API_KEY"
    assert mount["content"][0]["version"] == "latest"
    job_refs = _walk(_resources("google_cloud_run_v2_job"), "secret_key_ref")
    assert job_refs and "genai_api_key" in str(job_refs)
    # No key value anywhere in the Terraform: only the secret's name is declared.
    text = "\n".join(p.read_text() for p in INFRA.glob("*.tf"))
    assert "google_secret_manager_secret_version" not in text
    assert "secret_data" not in text


def test_the_functions_get_the_quotas() -> None:
    env = _module()["locals"]["common_env"]
    for name in ("QUOTA_ACTIVE_MOVIES", "QUOTA_CREATES_PER_MINUTE", "QUEUE_CAP"):
        assert f"DEEPFLIX_{name}" in env
    assert all(v > 0 for v in _default("quotas").values())


def test_the_job_identity_cannot_cancel_executions() -> None:
    """A job records its own failure and exits; it never cancels an execution (ADR 0023)."""
    pairs = _module()["locals"]["canceller_pairs"]
    assert 'setsubtract(local.runtime_identities, ["job"])' in pairs
    assert "job" in _module()["locals"]["runtime_identities"]
