"""Stage work in warm worker processes: outputs, progress, failures, deaths, timeouts, stop."""

from __future__ import annotations

import functools
import os
import signal
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from deepflix.pipeline.errors import StageWorkError
from deepflix.pipeline.models import ModelUsage, Movie, MovieCreate, Stage, StageStatus
from deepflix.runtime.compose import build_embedded
from deepflix.settings import Settings
from deepflix.stages.executors import WORKER_NICE, ProcessExecutor, WorkerDied, WorkTimedOut
from deepflix.stages.processors import GENERATOR, WorkNote
from tests.factories import movie as make_movie

pytestmark = pytest.mark.integration

# Kits for the workers, in a module the worker processes can import (PYTHONPATH below).
KITS = textwrap.dedent(
    """
    import time
    from pathlib import Path

    from deepflix.adapters.local.artifacts import LocalArtifactStore
    from deepflix.pipeline import usage
    from deepflix.pipeline.errors import PermanentStageError, RetryableStageError
    from deepflix.pipeline.models import ModelUsage
    from deepflix.stages.generators.base import Generators
    from deepflix.stages.generators.instant import InstantImageGenerator, InstantStoryGenerator
    from deepflix.stages.generators.instant import InstantVideoGenerator
    from deepflix.stages.executors import InlineExecutor


    class Story(InstantStoryGenerator):
        def write_story(self, *, prompt, **kw):
            if prompt == "refuse":
                raise PermanentStageError("the prompt is refused", code="refused")
            if prompt == "crash":
                raise ValueError("a bug in the generator")
            if prompt == "busy":
                raise RetryableStageError("busy", code="model_rate_limited", retry_after_s=42)
            if prompt == "metered":
                usage.record(ModelUsage(model="m", calls=1, input_tokens=7))
            if prompt.startswith("sleep"):
                time.sleep(float(prompt.split()[1]))
            return super().write_story(prompt=prompt, **kw)


    def kit(root):
        gens = Generators(Story(), InstantImageGenerator(), InstantVideoGenerator(), "instant")
        store = LocalArtifactStore(Path(root) / "artifacts")
        return InlineExecutor(gens, store, Path(root) / "work")
    """
)


@pytest.fixture
def pool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ProcessExecutor]:
    (tmp_path / "kits").mkdir()
    (tmp_path / "kits" / "stage_kits.py").write_text(KITS)
    (tmp_path / "work").mkdir()
    monkeypatch.syspath_prepend(str(tmp_path / "kits"))
    path = [str(tmp_path / "kits"), *filter(None, [os.environ.get("PYTHONPATH")])]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(path))
    import stage_kits  # type: ignore[import-not-found]

    workers = ProcessExecutor(1, functools.partial(stage_kits.kit, str(tmp_path)))
    workers.start()
    yield workers
    workers.close()


def story_movie(prompt: str) -> Movie:
    return make_movie(prompt=prompt, scene_count=3)


def run(pool: ProcessExecutor, stage: Stage, movie: Movie, timeout_s: float = 30) -> dict[str, str]:
    return pool.run(stage, movie, lambda pct: None, timeout_s)


def test_each_stage_runs_in_a_worker_and_its_artifacts_are_stored(
    pool: ProcessExecutor, tmp_path: Path
) -> None:
    movie = story_movie("a lighthouse")
    story = run(pool, Stage.story, movie)
    movie = movie.model_copy(update={"artifacts": story})
    progress: list[int] = []
    images = pool.run(Stage.images, movie, progress.append, 30)
    movie = movie.model_copy(update={"artifacts": story | images})
    video = run(pool, Stage.video, movie)
    # What made them comes with the outputs (the runner records it, not as an artifact).
    assert images.pop(GENERATOR) == video.pop(GENERATOR) == story.pop(GENERATOR) == "instant"
    assert sorted(images) == ["scene-01.png", "scene-02.png", "scene-03.png"]
    assert progress == [33, 66, 100]  # reported in the worker, delivered here
    assert sorted(video) == ["captions.vtt", "movie.mp4", "poster.png"]
    for path in (story | images | video).values():
        assert (tmp_path / "artifacts" / path).is_file()
    (pid,) = pool.pids()
    assert pid != os.getpid()
    ours = os.getpriority(os.PRIO_PROCESS, 0)
    assert os.getpriority(os.PRIO_PROCESS, pid) == min(19, ours + WORKER_NICE)


def test_a_free_worker_goes_to_the_latest_stage_waiting_first(pool: ProcessExecutor) -> None:
    done = story_movie("a movie to finish")
    story = run(pool, Stage.story, done)
    images = run(pool, Stage.images, done.model_copy(update={"artifacts": story}))
    done = done.model_copy(update={"artifacts": story | images})
    finished: list[Stage] = []

    def later(delay: float, stage: Stage, movie: Movie) -> threading.Thread:
        def go() -> None:
            time.sleep(delay)
            run(pool, stage, movie)
            finished.append(stage)

        thread = threading.Thread(target=go)
        thread.start()
        return thread

    busy = later(0, Stage.story, story_movie("sleep 3"))  # holds the one worker
    waiters = [later(0.3, Stage.story, story_movie("new")), later(0.6, Stage.video, done)]
    for thread in (busy, *waiters):
        thread.join(30)
    assert finished == [Stage.story, Stage.video, Stage.story]  # video overtook the story


def test_a_failure_keeps_its_code_and_retry_decision_and_the_worker(pool: ProcessExecutor) -> None:
    (pid,) = pool.pids()
    with pytest.raises(StageWorkError) as refused:
        run(pool, Stage.story, story_movie("refuse"))
    assert (refused.value.code, refused.value.retryable) == ("refused", False)
    assert str(refused.value) == "the prompt is refused"
    with pytest.raises(StageWorkError) as crashed:
        run(pool, Stage.story, story_movie("crash"))
    assert (crashed.value.code, crashed.value.retryable) == ("unexpected_error", True)
    assert "ValueError: a bug in the generator" in str(crashed.value)
    assert pool.pids() == [pid]  # an error is an answer: the worker lives on
    assert run(pool, Stage.story, story_movie("after"))


def test_a_worker_that_dies_fails_the_attempt_and_is_replaced(pool: ProcessExecutor) -> None:
    (pid,) = pool.pids()
    threading.Timer(0.5, os.kill, (pid, signal.SIGKILL)).start()
    with pytest.raises(WorkerDied) as died:
        run(pool, Stage.story, story_movie("sleep 30"))
    assert died.value.retryable and died.value.code == "worker_died"
    assert pool.pids() != [pid] and len(pool.pids()) == 1
    assert run(pool, Stage.story, story_movie("after the death"))


def test_a_caller_that_stops_listening_mid_answer_gets_a_new_worker(pool: ProcessExecutor) -> None:
    movie = story_movie("three scenes")
    movie = movie.model_copy(update={"artifacts": run(pool, Stage.story, movie)})
    (pid,) = pool.pids()

    def progress(pct: int) -> None:
        raise RuntimeError("the report could not be written")

    with pytest.raises(RuntimeError, match="report"):
        pool.run(Stage.images, movie, progress, 30)
    assert pool.pids() != [pid]
    # The rest of the images answer went with the old worker, not into this one's.
    assert sorted(run(pool, Stage.story, story_movie("next"))) == [GENERATOR, "story.json"]


def test_work_past_its_timeout_is_killed_and_the_worker_replaced(pool: ProcessExecutor) -> None:
    (pid,) = pool.pids()
    began = time.monotonic()
    with pytest.raises(WorkTimedOut) as late:
        run(pool, Stage.story, story_movie("sleep 30"), timeout_s=0.5)
    assert time.monotonic() - began < 10
    assert late.value.retryable and late.value.code == "timeout"
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # killed and reaped
    assert run(pool, Stage.story, story_movie("after the timeout"))


def test_close_stops_every_worker_and_later_work_is_refused(pool: ProcessExecutor) -> None:
    pids = pool.pids()
    pool.close()
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    with pytest.raises(WorkerDied):
        run(pool, Stage.story, story_movie("too late"))


def test_work_before_start_is_refused() -> None:
    with pytest.raises(RuntimeError, match="never started"):
        ProcessExecutor(1, dict).run(Stage.story, story_movie("early"), lambda pct: None, 1)  # type: ignore[arg-type]


def test_the_embedded_service_finishes_movies_with_stage_workers(tmp_path: Path) -> None:
    settings = Settings(
        _env_file=None,
        data_dir=tmp_path,
        generators="instant",
        job_runner="inline",
        stage_processes=2,
        log_level="WARNING",
    )
    runtime = build_embedded(settings)
    runtime.start()
    try:
        ids = [
            runtime.pipeline.create(
                MovieCreate(prompt=f"worker movie {i}", scene_count=2),
                owner="u",
                idempotency_key=None,
            ).id
            for i in range(4)
        ]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            movies = [runtime.pipeline.get(i) for i in ids]
            if all(m.status.value == "succeeded" for m in movies):
                break
            time.sleep(0.05)
        assert [m.status.value for m in movies] == ["succeeded"] * 4
        assert all(m.stages[Stage.video].status is StageStatus.succeeded for m in movies)
        assert runtime.artifacts.resolve(movies[0].artifacts["movie.mp4"]).is_file()
        pids = runtime.runner.work.pids()
        assert len(pids) == 2
    finally:
        runtime.stop()
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_a_retry_hint_and_noted_usage_cross_from_the_worker(pool: ProcessExecutor) -> None:
    with pytest.raises(StageWorkError) as busy:
        run(pool, Stage.story, story_movie("busy"))
    assert busy.value.code == "model_rate_limited"
    assert getattr(busy.value, "retry_after_s", None) == 42
    notes: list[WorkNote] = []
    outputs = pool.run(Stage.story, story_movie("metered"), lambda pct: None, 30, notes.append)
    assert "story.json" in outputs
    assert notes == [WorkNote(usage=[ModelUsage(model="m", calls=1, input_tokens=7)])]
