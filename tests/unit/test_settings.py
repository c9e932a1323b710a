"""Settings: defaults, environment and .env overrides, and clear refusals of bad values."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from deepflix.pipeline.models import Stage
from deepflix.settings import Settings

pytestmark = pytest.mark.unit


def test_defaults() -> None:
    s = Settings()
    assert s.port == 8080 and s.data_dir == Path("data") and s.generators == "cpu"
    cfg = s.pipeline_config()
    assert cfg[Stage.images].concurrency == 2 and cfg[Stage.images].runs_as_job
    assert cfg[Stage.story].retry.max_attempts == 3


def test_environment_and_port(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "9090")
    monkeypatch.setenv("DEEPFLIX_IMAGES_CONCURRENCY", "5")
    monkeypatch.setenv("DEEPFLIX_MAX_ATTEMPTS", "7")
    s = Settings()
    assert s.port == 9090
    assert s.pipeline_config()[Stage.images].concurrency == 5
    assert s.pipeline_config()[Stage.video].retry.max_attempts == 7


def test_dotenv_file_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("DEEPFLIX_VIDEO_CONCURRENCY=3\n")
    assert Settings().video_concurrency == 3


@pytest.mark.parametrize(
    ("var", "value", "field"),
    [
        ("PORT", "http", "PORT"),
        ("PORT", "70000", "PORT"),
        ("DEEPFLIX_IMAGES_CONCURRENCY", "0", "images_concurrency"),
        ("DEEPFLIX_GENERATORS", "magic", "generators"),
        ("DEEPFLIX_SCENE_SECONDS", "-1", "scene_seconds"),
    ],
)
def test_bad_values_are_refused_with_the_field_named(
    monkeypatch: pytest.MonkeyPatch, var: str, value: str, field: str
) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(ValidationError) as info:
        Settings()
    assert field in str(info.value)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DEEPFLIX_BACKEND": "gcp"}, "DEEPFLIX_TASKS_URL"),
        ({"DEEPFLIX_ARTIFACTS": "gcs"}, "DEEPFLIX_ARTIFACTS_BUCKET"),
        ({"DEEPFLIX_JOB_RUNNER": "cloudrun"}, "DEEPFLIX_BACKEND=gcp"),
        (
            {
                "DEEPFLIX_GENERATORS": "gemini",
                "DEEPFLIX_GENAI_API_KEY": "k",
                "DEEPFLIX_GENAI_VIDEO": "veo",
            },
            "DEEPFLIX_GENAI_VIDEO=veo needs DEEPFLIX_GENAI_VERTEX=true",
        ),
    ],
)
def test_incomplete_cloud_settings_are_refused(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ValidationError, match=message):
        Settings()


PRODUCTION = {
    "DEEPFLIX_BACKEND": "gcp",
    "DEEPFLIX_TASKS_URL": "https://us-central1-acme-prod.cloudfunctions.net/tasks",
    "DEEPFLIX_GCP_PROJECT": "acme-prod",
    "DEEPFLIX_ARTIFACTS": "gcs",
    "DEEPFLIX_ARTIFACTS_BUCKET": "acme-prod-deepflix-artifacts",
    "DEEPFLIX_JOB_RUNNER": "cloudrun",
    "DEEPFLIX_TASKS_SERVICE_ACCOUNT": "deepflix-tasks-oidc@acme-prod.iam.gserviceaccount.com",
    "DEEPFLIX_INTERNAL_CALLERS": "deepflix-tasks-oidc@acme-prod.iam.gserviceaccount.com,"
    "deepflix-scheduler@acme-prod.iam.gserviceaccount.com",
}
EMULATOR_HOSTS = ("FIRESTORE_EMULATOR_HOST", "PUBSUB_EMULATOR_HOST", "DEEPFLIX_TASKS_EMULATOR_HOST")


def _production(monkeypatch: pytest.MonkeyPatch, **changes: str | None) -> None:
    for name in EMULATOR_HOSTS:
        monkeypatch.delenv(name, raising=False)
    for key, value in (PRODUCTION | changes).items():
        if value is None:
            monkeypatch.delenv(key, raising=False)
        else:
            monkeypatch.setenv(key, value)


def test_production_profile_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    _production(monkeypatch)
    s = Settings()
    assert s.backend == "gcp" and not s.emulated()
    assert len(s.internal_callers) == 2
    assert s.audiences() == ["https://us-central1-acme-prod.cloudfunctions.net/tasks"]


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (
            {"DEEPFLIX_ARTIFACTS": None, "DEEPFLIX_ARTIFACTS_BUCKET": None},
            "DEEPFLIX_ARTIFACTS=local",
        ),
        ({"DEEPFLIX_JOB_RUNNER": None}, "DEEPFLIX_JOB_RUNNER=subprocess"),
        ({"DEEPFLIX_GCP_PROJECT": "demo-deepflix"}, "DEEPFLIX_GCP_PROJECT=demo-deepflix"),
        ({"DEEPFLIX_TASKS_SERVICE_ACCOUNT": None}, "DEEPFLIX_TASKS_SERVICE_ACCOUNT"),
        # Unsigned emulator ID tokens accepted in production would let anyone be anyone.
        ({"FIREBASE_AUTH_EMULATOR_HOST": "127.0.0.1:9099"}, "FIREBASE_AUTH_EMULATOR_HOST"),
        ({"DEEPFLIX_INTERNAL_CALLERS": None}, "DEEPFLIX_INTERNAL_CALLERS is missing"),
        ({"DEEPFLIX_OIDC_CERTS_URL": "http://127.0.0.1:1/certs"}, "DEEPFLIX_OIDC_CERTS_URL"),
        ({"DEEPFLIX_TEST_TOKEN_KEY_FILE": "/tmp/key.json"}, "DEEPFLIX_TEST_TOKEN_KEY_FILE"),
    ],
)
def test_production_refuses_local_stand_ins(
    monkeypatch: pytest.MonkeyPatch, change: dict[str, str | None], named: str
) -> None:
    _production(monkeypatch, **change)
    with pytest.raises(ValidationError, match=named):
        Settings()


@pytest.mark.parametrize("host", EMULATOR_HOSTS)
def test_any_emulator_host_allows_the_local_stand_ins(
    monkeypatch: pytest.MonkeyPatch, host: str
) -> None:
    _production(
        monkeypatch,
        DEEPFLIX_ARTIFACTS=None,
        DEEPFLIX_ARTIFACTS_BUCKET=None,
        DEEPFLIX_JOB_RUNNER=None,
        DEEPFLIX_GCP_PROJECT="demo-deepflix",
        DEEPFLIX_TASKS_SERVICE_ACCOUNT=None,
    )
    monkeypatch.setenv(host, "127.0.0.1:8085")
    assert Settings().emulated()
