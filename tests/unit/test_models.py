"""Domain rules both stores follow: a movie's queue fields and the list cursor."""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest

from deepflix.pipeline.errors import BadRequest
from deepflix.pipeline.events import CancelRequested, Claimed
from deepflix.pipeline.models import (
    QueueFields,
    Stage,
    arrival_key,
    decode_cursor,
    encode_cursor,
    scene_image,
)
from deepflix.pipeline.transitions import apply
from tests.factories import CONFIG, T0, movie

pytestmark = pytest.mark.unit
AT = T0 + timedelta(seconds=1)


def test_a_waiting_movie_is_indexed_by_its_stage_and_when_it_is_ready() -> None:
    m = movie(priority="high")
    assert m.queue_fields() == QueueFields(
        owner="tester",
        arrival=arrival_key(T0),
        prio=0,
        waiting_stage="story",
        ready_at=T0,
        running_stage=None,
        deadline=None,
        outbox_since=None,
    )


def test_a_running_movie_is_indexed_by_its_stage_and_deadline() -> None:
    running = apply(movie(), Claimed(Stage.story, AT), CONFIG).movie
    fields = running.queue_fields()
    assert (fields.waiting_stage, fields.ready_at) == (None, None)
    assert fields.running_stage == "story"
    assert fields.deadline == AT + timedelta(seconds=CONFIG[Stage.story].timeout_s)
    assert fields.prio == 1  # normal
    # Its stage request waits in the outbox for its outcome to take out: a story may run
    # longer than a drain's grace, so it is not in the index drains read (ADR 0028).
    assert [o.kind for o in running.outbox] == ["run_stage"] and fields.outbox_since is None


def test_a_finished_movie_waits_and_runs_nowhere() -> None:
    cancelled = apply(movie(), CancelRequested(AT), CONFIG).movie
    fields = cancelled.queue_fields()
    assert fields[3:] == (None, None, None, None, None)
    assert (fields.owner, fields.arrival) == ("tester", arrival_key(T0))


def test_a_cursor_names_the_last_movie_of_a_page() -> None:
    m = movie()
    assert decode_cursor(encode_cursor(m)) == (arrival_key(m.created_at), m.id)


@pytest.mark.parametrize(
    "raw",
    [b"no-separator", b"2026-11-29T12:00:00.000000Z|", b"\xff\xfe|id"],
    ids=["no separator", "no movie id", "not utf-8"],
)
def test_a_cursor_that_names_no_movie_is_a_bad_request(raw: bytes) -> None:
    with pytest.raises(BadRequest):
        decode_cursor(base64.urlsafe_b64encode(raw).decode())


def test_a_cursor_that_is_not_base64_is_a_bad_request() -> None:
    with pytest.raises(BadRequest):
        decode_cursor("%%%")


def test_scene_images_are_numbered_from_one() -> None:
    assert [scene_image(i) for i in (0, 9)] == ["scene-01.png", "scene-10.png"]
