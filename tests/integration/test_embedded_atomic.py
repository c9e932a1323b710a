"""The embedded pipeline: a state change and its messages commit together; parsed movies
are reused only while their row is unchanged."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from deepflix.adapters.local.store import SqliteMovieStore
from deepflix.pipeline.events import CancelRequested
from deepflix.pipeline.models import MovieCreate, Stage, StageStatus
from deepflix.pipeline.transitions import apply
from deepflix.runtime.compose import build_embedded
from deepflix.settings import Settings
from tests.factories import CONFIG, T0
from tests.factories import movie as make_movie

pytestmark = pytest.mark.integration


def test_a_claim_whose_message_fails_is_rolled_back_with_it(tmp_path: Path) -> None:
    runtime = build_embedded(Settings(_env_file=None, data_dir=tmp_path, generators="instant"))
    pipeline = runtime.pipeline
    pipeline.pause_admission()
    movie = pipeline.create(MovieCreate(prompt="outbox"), owner="u", idempotency_key=None)

    def broken_publish(*args: Any) -> None:
        raise OSError("disk full")

    pipeline.sender.events.publish = broken_publish  # type: ignore[method-assign,assignment]
    pipeline.store.set_admission_paused(False)
    with pytest.raises(OSError):
        pipeline.dispatch(Stage.story)
    # Without the shared transaction the movie would be running with no request sent.
    assert pipeline.get(movie.id).stages[Stage.story].status is StageStatus.waiting
    assert runtime.store.counts()[Stage.story].running == 0


def test_a_cached_movie_is_not_served_after_another_process_changed_it(tmp_path: Path) -> None:
    here, elsewhere = SqliteMovieStore(tmp_path / "m.db"), SqliteMovieStore(tmp_path / "m.db")
    created = here.create(make_movie(), idempotency_key=None, fingerprint="f")
    assert here.get(created.id) is here.get(created.id)  # parsed once, then reused
    elsewhere.mutate(created.id, lambda m: apply(m, CancelRequested(T0), CONFIG))
    assert here.get(created.id).status.value == "cancelled"  # type: ignore[union-attr]


def progress_reported(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, steps: list[tuple[float, int]]
) -> list[int]:
    """The progress figures a story attempt reports when its work reports `steps`
    (seconds after the last, percentage) on a clock of the test's own."""
    from deepflix.stages import processors, runner

    runtime = build_embedded(settings)
    movie = runtime.pipeline.create(MovieCreate(prompt="bar"), owner="u", idempotency_key=None)
    runtime.pipeline.dispatch(Stage.story)
    now = [100.0]
    monkeypatch.setattr(runner.time, "monotonic", lambda: now[0])  # type: ignore[attr-defined]

    def slow_story(ctx: processors.StageContext) -> dict[str, str]:
        for after, pct in steps:
            now[0] += after
            ctx.progress(pct)
        return {}

    monkeypatch.setitem(processors.PROCESSORS, Stage.story, slow_story)
    reported: list[int] = []
    real_report = runtime.pipeline.report

    def spy(movie_id: str, event: Any) -> Any:
        if hasattr(event, "progress"):
            reported.append(event.progress)
        return real_report(movie_id, event)

    monkeypatch.setattr(runtime.pipeline, "report", spy)
    assert runtime.runner.execute(movie.id, Stage.story, 1)
    return reported


def test_progress_is_written_at_most_twice_a_second(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path, generators="instant")
    # At 0.2 s, 0.4, 0.6, 0.8 and 1.2 s into the stage.
    steps = [(0.2, 20), (0.2, 40), (0.2, 60), (0.2, 80), (0.4, 100)]
    assert progress_reported(settings, monkeypatch, steps) == [60, 100]


def test_progress_reports_are_sparser_in_the_cloud_and_never_repeat_a_figure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each report is a billed Firestore write there: one every 10 s by default.
    cloud = Settings(
        _env_file=None, backend="gcp", tasks_url="http://127.0.0.1:1", tasks_emulator_host="x:1"
    )
    assert cloud.progress_every_s() == 10.0
    assert Settings(_env_file=None, progress_interval_s=3).progress_every_s() == 3.0
    settings = Settings(
        _env_file=None, data_dir=tmp_path, generators="instant", progress_interval_s=2
    )
    steps = [(1.5, 10), (1.5, 20), (1.5, 20), (1.5, 30), (1.5, 90)]  # 20 twice
    # At 3 s (20), 4.5 s (20 again: skipped, its interval not restarted), 6 s (30).
    assert progress_reported(settings, monkeypatch, steps) == [20, 30]


def test_artifacts_and_stage_work_live_in_the_media_folder(tmp_path: Path) -> None:
    media = tmp_path / "media"
    settings = Settings(
        _env_file=None, data_dir=tmp_path / "data", media_dir=media, generators="instant"
    )
    runtime = build_embedded(settings)
    pipeline = runtime.pipeline
    movie = pipeline.create(MovieCreate(prompt="a harbour"), owner="u", idempotency_key=None)
    pipeline.dispatch(Stage.story)
    runtime.runner.execute(movie.id, Stage.story, 1)
    path = pipeline.get(movie.id).artifacts["story.json"]
    assert runtime.local_file(path) == (media / "artifacts" / path).resolve()
    assert [p.parent for p in (media / "work").iterdir()] == [media / "work"]
    assert not (tmp_path / "data" / "artifacts").exists()
    assert (tmp_path / "data" / "movies.db").exists()


def test_a_create_claims_its_story_slot_in_its_own_transaction(tmp_path: Path) -> None:
    settings = Settings(
        _env_file=None, data_dir=tmp_path, generators="instant", story_concurrency=1
    )
    runtime = build_embedded(settings)  # not started: nothing would deliver a task
    pipeline = runtime.pipeline
    first = pipeline.create(MovieCreate(prompt="first"), owner="u", idempotency_key=None)
    second = pipeline.create(MovieCreate(prompt="second"), owner="u", idempotency_key=None)
    assert pipeline.get(first.id).stages[Stage.story].status is StageStatus.running
    assert pipeline.get(second.id).stages[Stage.story].status is StageStatus.waiting  # full
    conn = runtime.store.db.conn()
    tasks = conn.execute("SELECT COUNT(*) FROM messages WHERE queue = 'task:dispatch'")
    assert tasks.fetchone() == (0,)  # no admission task,
    assert conn.execute("SELECT COUNT(*) FROM names").fetchone() == (0,)  # no task name


def test_a_create_whose_claim_fails_is_not_stored(tmp_path: Path) -> None:
    runtime = build_embedded(Settings(_env_file=None, data_dir=tmp_path, generators="instant"))
    pipeline = runtime.pipeline

    def broken_publish(*args: Any) -> None:
        raise OSError("disk full")

    pipeline.sender.events.publish = broken_publish  # type: ignore[method-assign,assignment]
    with pytest.raises(OSError):
        pipeline.create(MovieCreate(prompt="half"), owner="u", idempotency_key=None)
    assert runtime.store.db.conn().execute("SELECT COUNT(*) FROM movies").fetchone() == (0,)
