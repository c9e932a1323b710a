"""MovieStore contract, the operator's part: filtered lists and their cursor, deletes,
per-queue pauses, a waiting movie's new priority and its place in the queue."""

from __future__ import annotations

from datetime import timedelta

import pytest

from deepflix.pipeline.errors import Conflict
from deepflix.pipeline.events import CancelRequested, Claimed, StageFailed, StageSucceeded
from deepflix.pipeline.models import Movie, MovieStatus, Priority, Stage
from deepflix.pipeline.operator import MovieFilter, matches, reprioritize
from deepflix.pipeline.ports import MovieStore
from deepflix.pipeline.transitions import apply
from tests.factories import CONFIG, T0, movie

# Tier marks: on the adapter parameters (conftest.py), `contract` or `emulator`.
LATER = T0 + timedelta(hours=1)


def saved(store: MovieStore, m: Movie) -> Movie:
    store.create(m, idempotency_key=None, fingerprint=m.id)
    return m


def step(store: MovieStore, m: Movie, *events: object) -> Movie:
    for event in events:
        d = store.mutate(m.id, lambda x, e=event: apply(x, e, CONFIG))  # type: ignore[misc]
        assert d is not None and d.applied, d
        m = d.movie
    return m


def failed_in_images(store: MovieStore, m: Movie) -> Movie:
    return step(
        store,
        m,
        Claimed(Stage.story, LATER),
        StageSucceeded(Stage.story, 1, (), LATER),
        Claimed(Stage.images, LATER),
        StageFailed(Stage.images, 1, "bad", "no", False, LATER),
    )


def a_mix(store: MovieStore) -> list[Movie]:
    """Nine movies, newest last: queued, failed in images, cancelled in the story, running."""
    out = []
    for i in range(9):
        m = saved(store, movie(seconds=i, prompt=f"Film {i}: a {'robot' if i % 2 else 'cat'}"))
        if i % 3 == 1:
            m = failed_in_images(store, m)
        elif i % 3 == 2 and i < 6:
            m = step(store, m, CancelRequested(LATER))
        elif i == 8:
            m = step(store, m, Claimed(Stage.story, LATER))
        out.append(m)
    return out


def every_page(store: MovieStore, where: MovieFilter, limit: int) -> list[str]:
    ids, cursor, pages = [], None, 0
    while True:
        page = store.list(owner=None, limit=limit, cursor=cursor, where=where)
        assert len(page.movies) <= limit
        ids += [m.id for m in page.movies]
        pages += 1
        assert pages < 50
        if page.next_cursor is None:
            return ids
        cursor = page.next_cursor


@pytest.mark.parametrize(
    "where",
    [
        MovieFilter(status=MovieStatus.failed),
        MovieFilter(status=MovieStatus.cancelled),
        MovieFilter(stage=Stage.images),
        MovieFilter(stage=Stage.story),
        MovieFilter(status=MovieStatus.queued, stage=Stage.story),
        MovieFilter(text="ROBOT"),
        MovieFilter(status=MovieStatus.failed, text="robot"),
        MovieFilter(text="film 4"),
    ],
    ids=lambda f: repr(f),
)
def test_a_filtered_list_is_what_matches_picks_newest_first_over_pages(
    store: MovieStore, where: MovieFilter
) -> None:
    movies = [store.get(m.id) for m in a_mix(store)]
    expected = [m.id for m in reversed(movies) if m is not None and matches(m, where)]
    assert expected, "the mix has no movie for this filter"
    assert every_page(store, where, limit=2) == expected
    assert every_page(store, where, limit=100) == expected


def test_a_search_finds_an_id_prefix(store: MovieStore) -> None:
    movies = a_mix(store)
    target = movies[4]
    page = store.list(owner=None, limit=20, cursor=None, where=MovieFilter(text=target.id[:8]))
    assert [m.id for m in page.movies] == [target.id]


def test_delete_removes_a_finished_movie_and_refuses_a_waiting_one(store: MovieStore) -> None:
    done = failed_in_images(store, saved(store, movie()))
    waiting = saved(store, movie(seconds=1))
    assert store.delete(done.id)
    assert store.get(done.id) is None
    assert store.journal(done.id) == []
    assert not store.delete(done.id)
    with pytest.raises(Conflict):
        store.delete(waiting.id)
    assert store.get(waiting.id) is not None
    listed = store.list(owner=None, limit=10, cursor=None)
    assert [m.id for m in listed.movies] == [waiting.id]
    # Its idempotency key is free again.
    again = movie(seconds=2)
    first = movie(seconds=3)
    store.create(first, idempotency_key="k", fingerprint="f")
    store.mutate(first.id, lambda m: apply(m, CancelRequested(LATER), CONFIG))
    assert store.delete(first.id)
    assert store.create(again, idempotency_key="k", fingerprint="f").id == again.id


def test_a_deleted_movie_leaves_the_queue_counts_alone(store: MovieStore) -> None:
    cancelled = step(store, saved(store, movie()), CancelRequested(LATER))
    behind = saved(store, movie(seconds=1))
    assert store.delete(cancelled.id)
    assert store.counts()[Stage.story].waiting == 1
    assert store.position(behind, Stage.story)[:2] == (0, 1)


def test_stage_pauses_are_kept_per_stage(store: MovieStore) -> None:
    assert store.paused_stages() == frozenset()
    store.set_stage_paused(Stage.images, True)
    store.set_stage_paused(Stage.video, True)
    store.set_stage_paused(Stage.video, True)  # twice is once
    assert store.paused_stages() == {Stage.images, Stage.video}
    store.set_stage_paused(Stage.video, False)
    assert store.paused_stages() == {Stage.images}
    assert not store.admission_paused()  # admission is its own flag


def test_a_new_priority_moves_a_waiting_movie_in_its_queue(store: MovieStore) -> None:
    first = saved(store, movie(seconds=0))
    second = saved(store, movie(seconds=1))
    low = saved(store, movie(seconds=2, priority="low"))
    assert store.position(low, Stage.story)[0] == 2
    d = store.mutate(low.id, lambda m: reprioritize(m, Priority.high, LATER))
    assert d is not None and d.applied
    moved = store.get(low.id)
    assert moved is not None and moved.request.priority is Priority.high
    assert store.position(moved, Stage.story)[0] == 0
    assert store.position(first, Stage.story)[0] == 1
    assert store.counts()[Stage.story].waiting == 3
    claimed = store.claim(
        Stage.story, 1, LATER, lambda m: apply(m, Claimed(Stage.story, LATER), CONFIG)
    )
    assert [c.movie.id for c in claimed] == [low.id]
    assert store.position(second, Stage.story)[0] == 1
