"""The outbox: what a change must send goes out once the bus or the task queue is back."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from deepflix.pipeline.events import StageSucceeded
from deepflix.pipeline.models import MovieStatus, Stage, StageStatus
from deepflix.pipeline.sender import deadlines_task
from deepflix.runtime.compose import build_embedded
from deepflix.settings import Settings
from tests.factories import request
from tests.pipeline_fakes import Bus, Outage, Tasks, cloud_like

pytestmark = pytest.mark.integration


def test_a_claim_whose_stage_request_cannot_be_published_is_sent_once_the_bus_is_back(
    tmp_path: Path,
) -> None:
    pubsub = Outage()
    bus, tasks = Bus(pubsub), Tasks(Outage())
    pipeline = cloud_like(tmp_path, bus, tasks)
    movie = pipeline.create(request(), owner="u", idempotency_key=None)
    pubsub.down = True
    assert pipeline.dispatch(Stage.story) == 1  # the claim holds, though its request waits
    assert pipeline.get(movie.id).stages[Stage.story].status is StageStatus.running
    deadline = pipeline.get(movie.id).stages[Stage.story].deadline
    assert deadline is not None
    deadlines = [name for kind, _, name in tasks.sent if kind == "deadlines"]
    assert deadlines == [deadlines_task(deadline)[0]]  # the deadline is not held up
    assert bus.sent == []
    pubsub.down = False
    pipeline.sweep()
    assert bus.sent == [("story.requested", {"movie_id": movie.id, "stage": "story", "attempt": 1})]
    pipeline.sweep()
    assert len(bus.sent) == 1  # sent, so sent no more


def test_what_the_task_queue_refused_is_enqueued_once_it_is_back(tmp_path: Path) -> None:
    cloud_tasks = Outage()
    bus, tasks = Bus(Outage()), Tasks(cloud_tasks)
    pipeline = cloud_like(tmp_path, bus, tasks)
    cloud_tasks.down = True
    movie = pipeline.create(request(), owner="u", idempotency_key=None)  # answered, not 503
    assert pipeline.get(movie.id).status is MovieStatus.queued
    cloud_tasks.down = False
    pipeline.sweep()  # sends the admission task (and, dispatching, claims the movie)
    names = [name for _, _, name in tasks.sent]
    deadline = pipeline.get(movie.id).stages[Stage.story].deadline
    assert deadline is not None
    assert any((n or "").startswith("admit-story-") for n in names)
    assert deadlines_task(deadline)[0] in names
    assert [data["movie_id"] for _, data in bus.sent] == [movie.id]


def test_a_success_whose_next_request_fails_to_publish_still_moves_on(tmp_path: Path) -> None:
    pubsub = Outage()
    bus, tasks = Bus(pubsub), Tasks(Outage())
    pipeline = cloud_like(tmp_path, bus, tasks)
    movie = pipeline.create(request(), owner="u", idempotency_key=None)
    pipeline.dispatch(Stage.story)
    pubsub.down = True
    # Recorded, though the images request it leads to cannot be sent yet: no error.
    pipeline.report(movie.id, StageSucceeded(Stage.story, 1, (), pipeline.clock()))
    assert pipeline.get(movie.id).stages[Stage.images].status is StageStatus.running
    pubsub.down = False
    pipeline.sweep()
    assert ("images.requested", {"movie_id": movie.id, "stage": "images", "attempt": 1}) in (
        bus.sent
    )


def wait_for(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_embedded_every_movie_finishes_after_the_bus_was_down(tmp_path: Path) -> None:
    settings = Settings(
        _env_file=None,
        data_dir=tmp_path,
        generators="instant",
        job_runner="inline",
        sweep_interval_s=0.2,
    )
    runtime = build_embedded(settings)
    pubsub, cloud_tasks = Outage(), Outage()
    pipeline = runtime.pipeline
    pipeline.sender.events = Bus(pubsub, pipeline.sender.events)
    pipeline.sender.tasks = Tasks(cloud_tasks, pipeline.sender.tasks)
    runtime.start()
    try:
        first = pipeline.create(request(scene_count=1), owner="u", idempotency_key=None)
        pubsub.down = cloud_tasks.down = True
        during = [
            pipeline.create(request(scene_count=1), owner="u", idempotency_key=None).id
            for _ in range(3)
        ]
        time.sleep(1.0)  # sweeps run meanwhile and fail to send
        assert pubsub.refused > 0
        pubsub.down = cloud_tasks.down = False
        ids = [first.id, *during]
        wait_for(
            lambda: all(pipeline.get(i).status is MovieStatus.succeeded for i in ids),
            30,
            "the movies did not all finish after the outage",
        )
    finally:
        runtime.stop()
