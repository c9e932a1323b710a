"""The job entry point's exit-code contract, called directly (the e2e tests run it as a process)."""

from __future__ import annotations

from pathlib import Path

import pytest

from deepflix.entrypoints.job import main
from deepflix.pipeline.events import StageSucceeded
from deepflix.pipeline.models import MovieStatus, Stage, StageStatus
from deepflix.runtime.compose import build_embedded
from deepflix.settings import get_settings
from tests.factories import request

pytestmark = pytest.mark.integration


@pytest.fixture
def running_images(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """A movie whose images stage is running attempt 1, as run_job would find it."""
    monkeypatch.setenv("DEEPFLIX_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DEEPFLIX_GENERATORS", "instant")
    monkeypatch.setenv("DEEPFLIX_FAULTS_FILE", str(tmp_path / "faults.json"))
    get_settings.cache_clear()
    runtime = build_embedded(get_settings())
    pipeline = runtime.pipeline
    movie = pipeline.create(request(scene_count=2), owner="u", idempotency_key=None)
    pipeline.dispatch(Stage.story)
    runtime.runner.execute(movie.id, Stage.story, 1)  # story done: images claimed inline
    assert pipeline.get(movie.id).stages[Stage.images].status is StageStatus.running
    monkeypatch.setenv("DEEPFLIX_JOB_MOVIE_ID", movie.id)
    monkeypatch.setenv("DEEPFLIX_JOB_STAGE", "images")
    monkeypatch.setenv("DEEPFLIX_JOB_ATTEMPT", "1")
    return movie.id


def test_success_is_recorded_and_exits_0(running_images: str) -> None:
    work = get_settings().data_dir / "work"
    folders = sorted(work.iterdir())  # the story's, kept empty for the next attempt
    assert main() == 0
    movie = build_embedded(get_settings()).pipeline.get(running_images)
    assert movie.stages[Stage.images].status is StageStatus.succeeded
    assert movie.status is MovieStatus.video
    assert sorted(work.iterdir()) == folders  # the job process left no folder behind
    assert all(not any(f.iterdir()) for f in folders)


def test_a_job_does_its_work_itself_whatever_the_stage_processes_setting(
    running_images: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEEPFLIX_STAGE_PROCESSES", "2")  # the runtime's, inherited by its jobs
    get_settings.cache_clear()
    assert main() == 0
    movie = build_embedded(get_settings()).pipeline.get(running_images)
    assert movie.stages[Stage.images].status is StageStatus.succeeded


def test_retryable_failure_is_recorded_and_exits_non_zero(
    running_images: str, tmp_path: Path
) -> None:
    (tmp_path / "faults.json").write_text('{"images": {"kind": "retryable"}}')
    assert main() == 1
    movie = build_embedded(get_settings()).pipeline.get(running_images)
    st = movie.stages[Stage.images]
    assert st.status is StageStatus.waiting and st.last_error is not None


def test_permanent_failure_is_recorded_and_exits_0(running_images: str, tmp_path: Path) -> None:
    (tmp_path / "faults.json").write_text('{"images": {"kind": "permanent"}}')
    assert main() == 0
    assert build_embedded(get_settings()).pipeline.get(running_images).status is MovieStatus.failed


def test_a_stale_attempt_does_nothing_and_exits_0(
    running_images: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEEPFLIX_JOB_ATTEMPT", "7")
    assert main() == 0
    movie = build_embedded(get_settings()).pipeline.get(running_images)
    assert movie.stages[Stage.images].status is StageStatus.running


def test_bad_environment_exits_2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEEPFLIX_JOB_STAGE", "sound")
    assert main() == 2


def test_duplicate_success_report_is_ignored(running_images: str) -> None:
    assert main() == 0
    pipeline = build_embedded(get_settings()).pipeline
    t = pipeline.report(running_images, StageSucceeded(Stage.images, 1, (), pipeline.clock()))
    assert t is not None and not t.applied
