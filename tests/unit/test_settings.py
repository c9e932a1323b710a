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
    ],
)
def test_incomplete_cloud_settings_are_refused(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ValidationError, match=message):
        Settings()
