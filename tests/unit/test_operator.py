"""The operator's rules: list filters, what bulk clean removes, priority changes, dead letters."""

from __future__ import annotations

import urllib.parse
from datetime import timedelta

import pytest

from deepflix.adapters.gcp.logging_links import movie_logs_url
from deepflix.pipeline.errors import BadRequest
from deepflix.pipeline.events import CancelRequested, Claimed, StageFailed, StageSucceeded
from deepflix.pipeline.models import Movie, MovieStatus, Priority, Stage
from deepflix.pipeline.operator import (
    CLEANABLE,
    MovieFilter,
    about,
    cleanable,
    matches,
    parse_filter,
    reprioritize,
    stage_of,
)
from deepflix.pipeline.transitions import apply
from tests.factories import CONFIG, T0, movie

pytestmark = pytest.mark.unit


def at_images(m: Movie, *, running: bool = False) -> Movie:
    m = apply(m, Claimed(Stage.story, T0), CONFIG).movie
    m = apply(m, StageSucceeded(Stage.story, 1, (), T0), CONFIG).movie
    return apply(m, Claimed(Stage.images, T0), CONFIG).movie if running else m


def failed_in_images(m: Movie) -> Movie:
    m = at_images(m, running=True)
    return apply(m, StageFailed(Stage.images, 1, "bad", "no", False, T0), CONFIG).movie


def test_parse_filter_reads_each_parameter_and_names_a_wrong_one() -> None:
    assert parse_filter(None, None, None).empty
    assert parse_filter("", "", "  ").empty
    f = parse_filter("failed", "images", " Storm ")
    assert f == MovieFilter(MovieStatus.failed, Stage.images, "Storm")
    with pytest.raises(BadRequest) as e:
        parse_filter("broken", None, None)
    assert e.value.details["status"] == "broken" and "failed" in e.value.details["allowed"]
    with pytest.raises(BadRequest) as e:
        parse_filter(None, "audio", None)
    assert e.value.details["allowed"] == ["story", "images", "video"]
    with pytest.raises(BadRequest):
        parse_filter(None, None, "x" * 201)


def test_stage_of_is_where_a_movie_waits_runs_or_stopped() -> None:
    queued = movie()
    assert stage_of(queued) is Stage.story
    assert stage_of(at_images(movie())) is Stage.images
    assert stage_of(at_images(movie(), running=True)) is Stage.images
    assert stage_of(failed_in_images(movie())) is Stage.images
    cancelled = apply(at_images(movie()), CancelRequested(T0), CONFIG).movie
    assert stage_of(cancelled) is Stage.images
    m = at_images(movie(), running=True)
    m = apply(m, StageSucceeded(Stage.images, 1, (), T0), CONFIG).movie
    m = apply(m, Claimed(Stage.video, T0), CONFIG).movie
    done = apply(m, StageSucceeded(Stage.video, 1, (), T0), CONFIG).movie
    assert done.status is MovieStatus.succeeded and stage_of(done) is None


def test_matches_checks_status_stage_and_text_together() -> None:
    m = failed_in_images(movie(prompt="A Lonely Robot opens a bakery"))
    assert matches(m, MovieFilter())
    assert matches(m, MovieFilter(status=MovieStatus.failed, stage=Stage.images))
    assert not matches(m, MovieFilter(status=MovieStatus.failed, stage=Stage.story))
    assert not matches(m, MovieFilter(status=MovieStatus.queued))
    assert matches(m, MovieFilter(text="lonely robot"))  # any case
    assert matches(m, MovieFilter(text="BAKERY"))
    assert not matches(m, MovieFilter(text="flooded city"))


def test_text_matches_an_id_prefix_of_four_characters_or_more() -> None:
    m = movie(prompt="nothing to see")
    assert matches(m, MovieFilter(text=m.id[:8]))
    assert matches(m, MovieFilter(text=m.id[:4].upper()))
    # Shorter is too common a prefix to mean an id: it is looked for in prompts only.
    assert not matches(m, MovieFilter(text=m.id[:3]))


def test_cleanable_is_finished_in_a_status_asked_for_and_old_enough() -> None:
    m = failed_in_images(movie())
    finished = m.finished_at
    assert finished is not None
    later = finished + timedelta(seconds=60)
    assert cleanable(m, now=later, older_than_s=60, statuses=CLEANABLE)
    assert not cleanable(m, now=later, older_than_s=61, statuses=CLEANABLE)
    assert not cleanable(m, now=later, older_than_s=0, statuses=[MovieStatus.succeeded])
    waiting = movie()
    assert not cleanable(waiting, now=later, older_than_s=0, statuses=list(MovieStatus))


def test_reprioritize_changes_a_waiting_movie_and_refuses_others() -> None:
    waiting = movie(priority="low")
    d = reprioritize(waiting, Priority.high, T0 + timedelta(seconds=5))
    assert d.applied and d.movie.request.priority is Priority.high
    assert d.movie.sort_key < waiting.sort_key  # ahead of where it stood
    assert d.movie.updated_at == T0 + timedelta(seconds=5) and d.commands == ()
    backing_off = at_images(movie())
    assert reprioritize(backing_off, Priority.low, T0).applied
    running = at_images(movie(), running=True)
    refused = reprioritize(running, Priority.high, T0)
    assert not refused.applied and "running" in refused.reason
    done = failed_in_images(movie())
    assert "failed" in reprioritize(done, Priority.high, T0).reason


def test_about_reads_a_task_payload_or_a_topic_message() -> None:
    assert about({"movie_id": "abc", "stage": "video", "attempt": 2}) == ("abc", Stage.video)
    topic = {"data": {"movie_id": "abc", "stage": "images"}, "attributes": {}}
    assert about(topic) == ("abc", Stage.images)
    assert about({"stage": "story"}) == (None, Stage.story)  # a dispatch task
    assert about({"stage": "nope", "movie_id": 3}) == (None, None)


def test_the_cloud_logs_link_queries_the_movie_in_its_project() -> None:
    url = movie_logs_url("films-prod", "3f2a9c0e")
    assert url.startswith("https://console.cloud.google.com/logs/query;query=")
    assert url.endswith("?project=films-prod")
    query = urllib.parse.unquote(url.split(";query=")[1].split("?")[0])
    assert query == 'jsonPayload.movie_id="3f2a9c0e"'
