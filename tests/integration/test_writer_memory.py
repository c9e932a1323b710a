"""What the embedded writer keeps in memory (parsed movies, counts, journal, stage means)
stays exact: across other processes' commits, rolled-back writes and large batches."""

from __future__ import annotations

import sqlite3
import threading
from datetime import timedelta
from pathlib import Path

import pytest

from deepflix.adapters.local.store import SqliteMovieStore
from deepflix.pipeline.events import CancelRequested, Claimed, StageFailed, StageSucceeded
from deepflix.pipeline.models import Movie, Stage
from deepflix.pipeline.policy import EWMA_WEIGHT
from deepflix.pipeline.transitions import Decision, apply
from tests.factories import CONFIG, T0, movie
from tests.integration.test_queue_counts_local import assert_exact

pytestmark = pytest.mark.integration
LATER = T0 + timedelta(hours=1)


def claim(store: SqliteMovieStore, limit: int) -> list[str]:
    fn = lambda m: apply(m, Claimed(Stage.story, LATER), CONFIG)  # noqa: E731
    return [t.movie.id for t in store.claim(Stage.story, limit, LATER, fn)]


def test_the_writer_reads_again_what_another_process_committed(tmp_path: Path) -> None:
    here, elsewhere = SqliteMovieStore(tmp_path / "m.db"), SqliteMovieStore(tmp_path / "m.db")
    a, b = (here.create(movie(seconds=i), idempotency_key=None, fingerprint="f") for i in (0, 1))
    assert claim(here, 0) == []  # the writer has read the counts and parsed both movies
    elsewhere.mutate(a.id, lambda m: apply(m, CancelRequested(T0), CONFIG))
    assert claim(elsewhere, 1) == [b.id]
    seen: list[str] = []

    def look(m: Movie) -> Decision:
        seen.append(m.status.value)
        return apply(m, CancelRequested(T0), CONFIG)

    here.mutate(a.id, look)
    assert seen == ["cancelled"]  # not the waiting movie this writer had parsed
    # The running count moved elsewhere too: a limit of 1 leaves nothing to claim here.
    assert claim(here, 1) == []
    assert_exact(here)


def test_a_write_failing_after_an_in_memory_change_undoes_its_batch(tmp_path: Path) -> None:
    store = SqliteMovieStore(tmp_path / "m.db")
    m = store.create(movie(), idempotency_key=None, fingerprint="f")
    claimed = apply(m, Claimed(Stage.story, LATER), CONFIG).movie

    def counted_then_failed(conn: object) -> None:
        store.index.saved(conn, m, claimed)  # type: ignore[arg-type]
        raise ValueError("after the counts moved, before the row did")

    with pytest.raises(ValueError):
        store.db.write(counted_then_failed)
    assert_exact(store)
    assert claim(store, 1) == [m.id]  # the writer's count of running is still 0
    assert_exact(store)


def test_counts_stay_exact_when_many_writes_share_a_batch(tmp_path: Path) -> None:
    store = SqliteMovieStore(tmp_path / "m.db")
    gate = threading.Event()
    store.db.write_later(lambda conn: gate.wait(5))  # hold the writer: the rest queue up
    ms = [movie(seconds=i % 7, priority=("low", "high")[i % 2]) for i in range(40)]
    creates = [
        threading.Thread(
            target=store.create, args=(m,), kwargs={"idempotency_key": None, "fingerprint": m.id}
        )
        for m in ms
    ]
    for t in creates:
        t.start()
    gate.set()
    for t in creates:
        t.join()
    assert len(claim(store, 15)) == 15
    for m in ms[:10]:
        store.mutate(m.id, lambda x: apply(x, CancelRequested(LATER), CONFIG))
    assert_exact(store)


def test_journal_and_means_written_once_per_batch_match_one_by_one(tmp_path: Path) -> None:
    store = SqliteMovieStore(tmp_path / "m.db")
    ms = [store.create(movie(seconds=i), idempotency_key=None, fingerprint="f") for i in range(5)]
    claim(store, 5)
    durations = [2.0, 4.0, 8.0, 1.0, 3.0]

    def succeed(conn: object, ids: list[str]) -> None:
        for movie_id in ids:
            d = durations[[m.id for m in ms].index(movie_id)]
            done = StageSucceeded(Stage.story, 1, (), LATER + timedelta(seconds=d))
            store.mutate(movie_id, lambda x, e=done: apply(x, e, CONFIG))  # type: ignore[misc]

    # Three successes in one transaction, then two in another.
    store.db.write(lambda conn: succeed(conn, [m.id for m in ms[:3]]))
    store.db.write(lambda conn: succeed(conn, [m.id for m in ms[3:]]))
    mean = durations[0]
    for d in durations[1:]:
        mean = mean * (1 - EWMA_WEIGHT) + EWMA_WEIGHT * d
    row = store.db.conn().execute("SELECT mean_s, samples FROM stage_stats").fetchone()
    assert row == (pytest.approx(mean), 5)
    for m in ms:
        steps = [(e["stage"], e["before"], e["after"]) for e in store.journal(m.id)]
        assert steps == [
            ("story", "waiting", "running"),
            ("story", "running", "succeeded"),
            ("images", "pending", "waiting"),
        ]


def test_a_claim_with_nothing_waiting_does_not_look(tmp_path: Path) -> None:
    store = SqliteMovieStore(tmp_path / "m.db")
    statements: list[str] = []
    store.db.write(lambda conn: conn.set_trace_callback(statements.append))
    assert claim(store, 4) == []
    assert not [s for s in statements if "WHERE waiting_stage" in s]  # the counts said so
    m = store.create(movie(), idempotency_key=None, fingerprint="f")
    assert claim(store, 4) == [m.id]


def _rows(store: SqliteMovieStore) -> dict[str, tuple[str | None, str | None, str]]:
    """Each movie's queue columns and status as the file has them (another connection)."""
    with sqlite3.connect(store.db.path) as conn:
        rows = conn.execute("SELECT id, waiting_stage, running_stage, doc FROM movies")
        return {i: (w, r, Movie.model_validate_json(d).status.value) for i, w, r, d in rows}


def test_a_claim_skips_a_movie_its_batch_took_out_of_the_queue(tmp_path: Path) -> None:
    store = SqliteMovieStore(tmp_path / "m.db")
    a, b = (store.create(movie(seconds=i), idempotency_key=None, fingerprint="f") for i in (0, 1))

    def batch(conn: object) -> list[str]:
        store.mutate(a.id, lambda m: apply(m, CancelRequested(T0), CONFIG))
        return claim(store, 1)  # a's row in the file still says waiting, and first

    assert store.db.write(batch) == [b.id]
    assert _rows(store) == {a.id: (None, None, "cancelled"), b.id: (None, "story", "story")}
    assert_exact(store)


def test_a_claim_takes_a_movie_its_batch_put_back_in_order(tmp_path: Path) -> None:
    store = SqliteMovieStore(tmp_path / "m.db")
    p, q, r = (
        store.create(movie(seconds=i), idempotency_key=None, fingerprint="f") for i in range(3)
    )
    assert claim(store, 2) == [p.id, q.id]
    failed = StageFailed(Stage.story, 1, "flaky", "try again", True, T0)

    def batch(conn: object) -> list[str]:
        store.mutate(q.id, lambda m: apply(m, failed, CONFIG))  # waits again
        return claim(store, 2)  # one slot: q's row in the file says running, r's waiting

    assert store.db.write(batch) == [q.id]  # q arrived before r
    assert _rows(store)[q.id][:2] == (None, "story") and _rows(store)[r.id][:2] == ("story", None)
    assert store.get(q.id).stages[Stage.story].attempts == 2  # type: ignore[union-attr]
    assert_exact(store)


def test_reads_of_many_movies_in_a_batch_see_its_saves(tmp_path: Path) -> None:
    store = SqliteMovieStore(tmp_path / "m.db")
    m = store.create(movie(), idempotency_key=None, fingerprint="f")

    def batch(conn: object) -> tuple[list[str], list[str]]:
        claim(store, 1)  # running now, its deadline an hour and a bit away
        late = LATER + timedelta(days=1)
        return [x.id for x in store.overdue(late)], [x.id for x in store.running(Stage.story)]

    assert store.db.write(batch) == ([m.id], [m.id])


def test_a_movie_saved_in_the_batch_is_read_from_it_even_when_no_longer_cached(
    tmp_path: Path,
) -> None:
    store = SqliteMovieStore(tmp_path / "m.db")
    m = store.create(movie(), idempotency_key=None, fingerprint="f")
    seen: list[str] = []

    def look(x: Movie) -> Decision:
        seen.append(x.status.value)
        return apply(x, CancelRequested(T0), CONFIG)

    def batch(conn: object) -> None:
        claim(store, 1)
        store._cache.clear()  # as when the cache has dropped it for room
        store.mutate(m.id, look)

    store.db.write(batch)
    assert seen == ["story"]  # the claimed movie, not the waiting row still in the file
