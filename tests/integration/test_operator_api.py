"""The operator's routes in-process: filtered lists, delete, priority, bulk actions, queue
pauses, dead letters with replay and job log tails, each with its errors."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from deepflix.handlers.operator_schemas import BulkResult, DeadLetterList, Replayed
from deepflix.handlers.schemas import MovieList, MovieView, Queues
from deepflix.pipeline.events import JobStarted, StageFailed, StageSucceeded
from deepflix.pipeline.models import MovieStatus, Stage
from tests.api_client import InProcess, in_process

pytestmark = pytest.mark.integration


@pytest.fixture
def api(tmp_path: Path) -> Iterator[InProcess]:
    with in_process(tmp_path) as api:
        yield api


def create(api: InProcess, prompt: str, **fields: Any) -> str:
    r = api.client.post("/api/movies", json={"prompt": prompt, "scene_count": 2, **fields})
    assert r.status_code == 202, r.text
    movie_id: str = r.json()["movie_id"]
    return movie_id


def run_story(api: InProcess, movie_id: str) -> None:
    """Claims the story for every movie waiting there, then ends this movie's story."""
    pipeline = api.pipeline
    pipeline.dispatch(Stage.story)
    pipeline.report(movie_id, StageSucceeded(Stage.story, 1, (), pipeline.clock()))


def fail_story(api: InProcess, movie_id: str) -> None:
    api.pipeline.dispatch(Stage.story)
    event = StageFailed(Stage.story, 1, "bad_prompt", "no", False, api.pipeline.clock())
    api.pipeline.report(movie_id, event)


def ids(api: InProcess, query: str) -> list[str]:
    r = api.client.get(f"/api/movies?{query}")
    assert r.status_code == 200, r.text
    return [m["movie_id"] for m in MovieList.model_validate(r.json()).model_dump()["movies"]]


def test_the_list_filters_by_status_stage_and_text_and_pages_on(api: InProcess) -> None:
    api.client.post("/api/admission/pause")  # every movie stays where it is put
    cat = create(api, "A cat on a tin roof")
    robot = create(api, "A lonely robot opens a bakery")
    dog = create(api, "A dog at sea")
    api.client.post(f"/api/movies/{dog}/cancel")
    assert ids(api, "status=cancelled") == [dog]
    assert ids(api, "status=queued") == [robot, cat]
    assert ids(api, "stage=story&status=queued&q=ROBOT") == [robot]
    assert ids(api, f"q={cat[:8]}") == [cat]
    assert ids(api, "q=nowhere") == []
    first = api.client.get("/api/movies?status=queued&limit=1").json()
    assert [m["movie_id"] for m in first["movies"]] == [robot]
    rest = api.client.get(f"/api/movies?status=queued&limit=1&cursor={first['next_cursor']}")
    assert [m["movie_id"] for m in rest.json()["movies"]] == [cat]
    assert rest.json()["next_cursor"] is None


@pytest.mark.parametrize("query", ["status=lost", "stage=audio", "q=" + "x" * 201])
def test_a_bad_filter_is_a_400_naming_it(api: InProcess, query: str) -> None:
    r = api.client.get(f"/api/movies?{query}")
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "bad_request"
    assert query.split("=")[0] in r.json()["error"]["message"]


def test_delete_cancels_a_running_movie_removes_its_files_then_the_movie(
    api: InProcess, tmp_path: Path
) -> None:
    movie_id = create(api, "A storm at sea")
    api.pipeline.dispatch(Stage.story)
    api.pipeline.report(movie_id, JobStarted(Stage.story, 1, "exec-9", api.pipeline.clock()))
    source = tmp_path / "story.json"
    source.write_text("{}")
    api.artifacts.put(movie_id, "story.json", source)
    logs = tmp_path / "jobs"
    logs.mkdir()
    (logs / f"story-{movie_id}-1.log").write_text("started\n")
    r = api.client.delete(f"/api/movies/{movie_id}")
    assert r.status_code == 204 and r.content == b""
    assert "exec-9" in api.pipeline.jobs.cancelled  # type: ignore[attr-defined]
    assert not (tmp_path / "artifacts" / movie_id).exists()
    assert not (logs / f"story-{movie_id}-1.log").exists()
    assert api.client.get(f"/api/movies/{movie_id}").status_code == 404
    again = api.client.delete(f"/api/movies/{movie_id}")
    assert again.status_code == 404 and again.json()["error"]["code"] == "not_found"
    assert api.client.get("/api/queues").json()["queues"]["story"]["running"] == 0


def test_priority_moves_a_waiting_movie_and_refuses_a_running_one(api: InProcess) -> None:
    api.client.post("/api/admission/pause")
    create(api, "first")
    create(api, "second")
    last = create(api, "last", priority="low")
    assert api.client.get(f"/api/queue/{last}/position").json()["position"] == 3
    r = api.client.post(f"/api/movies/{last}/priority", json={"priority": "high"})
    assert r.status_code == 200, r.text
    view = MovieView.model_validate(r.json())
    assert view.priority == "high" and view.position is not None
    assert api.client.get(f"/api/queue/{last}/position").json()["position"] == 1
    api.client.post("/api/admission/resume")
    api.pipeline.dispatch(Stage.story)
    running = api.client.post(f"/api/movies/{last}/priority", json={"priority": "low"})
    assert running.status_code == 409 and "running" in running.json()["error"]["message"]
    bad = api.client.post(f"/api/movies/{last}/priority", json={"priority": 3})
    assert bad.status_code == 422 and bad.json()["error"]["details"][0]["field"] == "priority"
    missing = api.client.post("/api/movies/nope/priority", json={"priority": "low"})
    assert missing.status_code == 404


def test_bulk_retry_failed_retries_every_failed_movie(api: InProcess) -> None:
    failed = [create(api, f"doomed {i}") for i in range(3)]
    for movie_id in failed:
        fail_story(api, movie_id)
    ok = create(api, "fine")
    r = api.client.post("/api/bulk/retry-failed")
    assert r.status_code == 200
    result = BulkResult.model_validate(r.json())
    assert result.count == 3 and sorted(result.movie_ids) == sorted(failed)
    assert ok not in result.movie_ids
    for movie_id in failed:
        assert api.pipeline.get(movie_id).status is not MovieStatus.failed
    assert api.client.post("/api/bulk/retry-failed").json() == {"count": 0, "movie_ids": []}


def test_bulk_clean_removes_finished_movies_old_enough(api: InProcess, tmp_path: Path) -> None:
    api.client.post("/api/admission/pause")
    doomed = create(api, "doomed")
    api.client.post("/api/admission/resume")
    fail_story(api, doomed)
    cancelled = create(api, "cancelled")
    api.client.post(f"/api/movies/{cancelled}/cancel")
    waiting = create(api, "waiting")
    young = api.client.post("/api/bulk/clean", json={"older_than_seconds": 3600})
    assert young.json() == {"count": 0, "movie_ids": []}
    only = api.client.post(
        "/api/bulk/clean", json={"older_than_seconds": 0, "statuses": ["cancelled"]}
    )
    assert only.json() == {"count": 1, "movie_ids": [cancelled]}
    rest = api.client.post("/api/bulk/clean", json={"older_than_seconds": 0})
    assert rest.json() == {"count": 1, "movie_ids": [doomed]}
    assert ids(api, "") == [waiting]
    refused = api.client.post(
        "/api/bulk/clean", json={"older_than_seconds": 0, "statuses": ["queued"]}
    )
    assert refused.status_code == 422
    negative = api.client.post("/api/bulk/clean", json={"older_than_seconds": -1})
    assert negative.status_code == 422


def test_a_paused_queue_starts_nothing_new_and_stays_paused(api: InProcess, tmp_path: Path) -> None:
    movie_id = create(api, "held at the images")
    r = api.client.post("/api/queues/images/pause")
    assert r.status_code == 200
    queues = Queues.model_validate(r.json())
    assert queues.queues[Stage.images].paused and not queues.queues[Stage.story].paused
    run_story(api, movie_id)
    assert api.pipeline.dispatch(Stage.images) == 0
    assert api.pipeline.get(movie_id).waiting_stage is Stage.images
    with in_process(tmp_path) as restarted:  # the same database, opened again
        assert restarted.client.get("/api/queues").json()["queues"]["images"]["paused"]
    resumed = api.client.post("/api/queues/images/resume")
    assert not resumed.json()["queues"]["images"]["paused"]
    assert api.pipeline.get(movie_id).running_stage is Stage.images  # resumed at once
    unknown = api.client.post("/api/queues/audio/pause")
    assert unknown.status_code == 404 and "audio" in unknown.json()["error"]["message"]


def test_dead_letters_are_listed_and_replayed_once(api: InProcess) -> None:
    queue = api.queue
    body = {"data": {"movie_id": "m1", "stage": "images", "attempt": 1}, "attributes": {}}
    assert queue.put("topic:images.requested", body)
    (message,) = queue.lease({"topic:images.requested"}, 1)
    queue.nack(dataclasses.replace(message, deliveries=queue.max_deliveries), "boom")
    r = api.client.get("/api/dead-letters")
    assert r.status_code == 200
    (letter,) = DeadLetterList.model_validate(r.json()).dead_letters
    assert (letter.topic, letter.movie_id, letter.stage, letter.reason) == (
        "topic:images.requested",
        "m1",
        Stage.images,
        "boom",
    )
    replayed = api.client.post(f"/api/dead-letters/{letter.id}/replay")
    assert replayed.status_code == 202
    assert Replayed.model_validate(replayed.json()).replayed == letter.id
    assert api.client.get("/api/dead-letters").json() == {"dead_letters": []}
    (again,) = queue.lease({"topic:images.requested"}, 1)
    assert again.body == body and again.deliveries == 1  # delivered as new
    assert api.client.post(f"/api/dead-letters/{letter.id}/replay").status_code == 404
    assert api.client.post("/api/dead-letters/x1/replay").status_code == 404
    assert api.client.get("/api/dead-letters?limit=0").status_code == 400


def test_job_logs_tail_the_attempts_in_order(api: InProcess, tmp_path: Path) -> None:
    movie_id = create(api, "logged")
    logs = tmp_path / "jobs"
    logs.mkdir()
    (logs / f"images-{movie_id}-1.log").write_text("images one\nimages two\n")
    (logs / f"story-{movie_id}-2.log").write_text("story retried\n")
    (logs / f"story-{movie_id}-1.log").write_text("story first\n")
    (logs / f"story-{'f' * 32}-1.log").write_text("another movie\n")
    r = api.client.get(f"/api/movies/{movie_id}/logs?tail=3")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    assert r.text == f"==> images-{movie_id}-1.log <==\nimages one\nimages two\n"
    whole = api.client.get(f"/api/movies/{movie_id}/logs").text
    assert whole.index("story first") < whole.index("story retried") < whole.index("images one")
    assert "another movie" not in whole
    status = MovieView.model_validate(api.client.get(f"/api/movies/{movie_id}").json())
    assert status.logs_url == f"/api/movies/{movie_id}/logs"
    other = create(api, "quiet")
    assert api.client.get(f"/api/movies/{other}/logs").status_code == 404
    assert api.client.get("/api/movies/nope/logs").status_code == 404
    assert api.client.get(f"/api/movies/{movie_id}/logs?tail=0").status_code == 400


def test_a_cancelled_movie_can_be_retried_through_the_api(api: InProcess) -> None:
    movie_id = create(api, "try again")
    api.client.post(f"/api/movies/{movie_id}/cancel")
    r = api.client.post(f"/api/movies/{movie_id}/retry")
    assert r.status_code == 202 and r.json()["status"] == "queued"
    assert api.client.post(f"/api/movies/{movie_id}/retry").status_code == 409
