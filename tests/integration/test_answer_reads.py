"""Create, status and position answers read each thing from the store once, and say the same."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from deepflix.adapters.local.store import SqliteMovieStore
from deepflix.pipeline.eta_reads import COUNTS_TTL_S
from deepflix.pipeline.events import StageSucceeded
from deepflix.pipeline.models import STORY, Stage
from deepflix.pipeline.position import stage_seconds
from deepflix.pipeline.service import Pipeline
from tests.api_client import in_process
from tests.factories import CONFIG, request
from tests.pipeline_fakes import Recorder
from tests.read_counts import Answers, CountingStore

pytestmark = pytest.mark.integration


@pytest.fixture
def answers(tmp_path: Path) -> Iterator[Answers]:
    with in_process(tmp_path, store=CountingStore) as api:
        assert isinstance(api.pipeline.store, CountingStore)
        yield Answers(api, api.pipeline.store)


def test_a_create_reads_each_thing_once(answers: Answers) -> None:
    created, reads = answers("POST", "/api/movies", {"prompt": "a", "scene_count": 2})
    assert created["status"] == "queued" and created["position"] == 1
    # The story place and the paused flag read for the estimate saved with the movie serve
    # its answer too; the later queues, the counts and the means are read once between the
    # answer's ETA and its longest wait.
    assert reads == {
        "position:story": 1,
        "ahead:images": 1,
        "ahead:video": 1,
        "running_counts": 1,
        "mean_durations": 1,
        "admission_paused": 1,
    }


def test_a_create_reads_each_thing_once_however_long_its_write_takes(answers: Answers) -> None:
    """The ETA's reads of the queues are reused only briefly; a create's answer takes those
    its create read even when that time ran out during the write."""

    def slow_write() -> None:
        answers.now += 10 * COUNTS_TTL_S

    answers.store.before["create"] = slow_write
    _, reads = answers("POST", "/api/movies", {"prompt": "a", "scene_count": 2})
    assert reads == {
        "position:story": 1,
        "ahead:images": 1,
        "ahead:video": 1,
        "running_counts": 1,
        "mean_durations": 1,
        "admission_paused": 1,
    }


def test_status_and_position_answers_read_each_thing_once(answers: Answers) -> None:
    created, _ = answers("POST", "/api/movies", {"prompt": "a", "scene_count": 2})
    movie_id = created["movie_id"]
    status, reads = answers("GET", f"/api/movies/{movie_id}/status")
    assert status["position"]["queue"] == "story" and status["admission_paused"] is False
    assert reads == {
        "get": 1,
        "position:story": 1,
        "ahead:images": 1,
        "ahead:video": 1,
        "running_counts": 1,
        "mean_durations": 1,
        "admission_paused": 1,  # the ETA's and the answer's own flag
    }
    place, reads = answers("GET", f"/api/queue/{movie_id}/position")
    assert place["position"] == 1 and place["waiting"] is True
    assert reads == {
        "get": 1,
        "position:story": 1,
        "ahead:images": 1,
        "ahead:video": 1,
        "running_counts": 1,
        "mean_durations": 1,
        "admission_paused": 1,
    }


def test_paused_admission_is_read_once_and_told_twice(answers: Answers) -> None:
    answers("POST", "/api/admission/pause")
    created, reads = answers("POST", "/api/movies", {"prompt": "a"})
    assert created["admission_paused"] is True and created["eta_seconds"] is None
    assert created["eta"]["unknown"] == "admission_paused"
    assert reads["admission_paused"] == 1
    status, reads = answers("GET", f"/api/movies/{created['movie_id']}/status")
    assert status["admission_paused"] is True and status["eta"]["unknown"] == "admission_paused"
    assert reads["admission_paused"] == 1


def into_images(pipeline: Pipeline, movie_ids: list[str]) -> None:
    pipeline.dispatch(Stage.story)
    for movie_id in movie_ids:
        done = ((STORY, "p"),)
        pipeline.report(movie_id, StageSucceeded(Stage.story, 1, done, pipeline.clock()))


def test_a_creates_answer_tells_what_fresh_reads_tell(answers: Answers) -> None:
    """The answer's place (read before the save) and longest wait (from the ETA's reads)
    are those a fresh read of each gives once the movie is saved."""
    pipeline = answers.api.pipeline
    first = [answers("POST", "/api/movies", {"prompt": "a"})[0]["movie_id"] for _ in range(4)]
    into_images(pipeline, first)
    counts = pipeline.counts()[Stage.images]
    assert (counts.running, counts.waiting) == (2, 2)  # two images slots: two wait
    waiting = [answers("POST", "/api/movies", {"prompt": "b"})[0] for _ in range(2)]
    created, _ = answers("POST", "/api/movies", {"prompt": "c", "scene_count": 2})

    movie = pipeline.get(created["movie_id"])
    fresh = pipeline.outlook(movie).position
    assert fresh is not None
    assert (created["position"], created["ahead"]) == (fresh.position, fresh.ahead) == (3, 2)
    assert created["eta_seconds"] == round(fresh.eta_s, 2)
    assert [w["position"] for w in waiting] == [1, 2]
    # Images: 2 waiting before it, 2 running, 2 slots: 3 runs to finish, two rounds.
    images_s = stage_seconds(Stage.images, pipeline.config, pipeline.mean_durations())
    assert created["longest_wait"] == {
        "queue": "images",
        "ahead": 2,
        "wait_seconds": round(2 * images_s, 2),
    }


def counting_pipeline(tmp_path: Path, admission: Any) -> tuple[Pipeline, CountingStore]:
    store = CountingStore(SqliteMovieStore(tmp_path / "m.db"))
    rec = Recorder()
    pipeline = Pipeline(
        store=store,
        tasks=rec,
        events=rec,
        jobs=rec,
        config=CONFIG,
        admission=admission,
    )
    return pipeline, store


@pytest.mark.parametrize(
    ("admission", "read_again"),
    [("task", 0), ("inline", 1)],
)
def test_a_creates_answer_reads_its_place_again_only_where_the_create_moved_it(
    tmp_path: Path, admission: str, read_again: int
) -> None:
    """An inline admission claims the new movie in the create itself: its answer reads the
    place again, as before (the running count changed); a queued one takes the create's."""
    pipeline, store = counting_pipeline(tmp_path, admission)
    movie = pipeline.create(request(), owner="u", idempotency_key=None)
    store.reads.clear()
    position = pipeline.outlook(movie, created=True).position
    assert store.reads["position:story"] == read_again
    assert position is not None and position == pipeline.position(movie)
    # Taken once: a later answer reads for itself.
    store.reads.clear()
    pipeline.outlook(movie, created=True).position  # noqa: B018
    assert store.reads["position:story"] == 1
