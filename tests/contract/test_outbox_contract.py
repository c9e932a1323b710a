"""MovieStore contract for the outbox: messages saved with a change, found until marked sent."""

from __future__ import annotations

from datetime import timedelta

from deepflix.adapters.local.store import SqliteMovieStore
from deepflix.pipeline import outbox
from deepflix.pipeline.events import Claimed, Dispatch
from deepflix.pipeline.models import Movie, Outgoing, Stage
from deepflix.pipeline.ports import MovieStore
from deepflix.pipeline.transitions import Decision, apply
from tests.factories import CONFIG, T0, movie

# Tier marks: on the adapter parameters (conftest.py), `contract` or `emulator`.
LATER = T0 + timedelta(hours=1)


def test_a_claims_messages_are_saved_with_it_and_found_until_sent(store: MovieStore) -> None:
    first, second = movie(), movie(seconds=1)
    for m in (first, second):
        store.create(m, idempotency_key=None, fingerprint=m.id)
    assert store.unsent(10) == []

    def claim(m: Movie) -> Decision:
        # The claim's request, and one more message to mark apart from it.
        d = apply(m, Claimed(Stage.story, LATER), CONFIG)
        more = outbox.outgoing([Dispatch(Stage.images, at=LATER)], LATER)
        return Decision(d.movie.model_copy(update={"outbox": (*d.movie.outbox, *more)}))

    claimed = store.claim(Stage.story, 2, LATER, claim)
    assert len(claimed) == 2
    saved = store.get(first.id)
    assert saved is not None
    kinds = [o.kind for o in saved.outbox]
    assert kinds == ["run_stage", "dispatch"]
    assert {m.id for m in store.unsent(10)} == {first.id, second.id}
    assert len(store.unsent(1)) == 1

    store.sent(first.id, saved.outbox[:1])
    left = store.get(first.id)
    assert left is not None and [o.kind for o in left.outbox] == ["dispatch"]
    store.sent(first.id, left.outbox)
    done = store.get(first.id)
    assert done is not None and done.outbox == ()
    store.sent(first.id, saved.outbox)  # again: nothing left to take out
    # A store may still list a movie whose outbox emptied; saving it unchanged settles it.
    for m in store.unsent(10):
        if not m.outbox:
            store.mutate(m.id, lambda x: Decision(x))
    assert [m.id for m in store.unsent(10)] == [second.id]


def _another_process(store: MovieStore) -> MovieStore:
    """A second instance over the same data: what another process reads and writes."""
    if isinstance(store, SqliteMovieStore):
        return SqliteMovieStore(store.db.path)
    from deepflix.adapters.gcp.firestore_store import FirestoreMovieStore

    assert isinstance(store, FirestoreMovieStore)
    return FirestoreMovieStore(client=store.db())


def test_a_mark_after_another_process_changed_the_movie_keeps_what_it_added(
    store: MovieStore,
) -> None:
    waiting = movie().model_copy(update={"outbox": (Outgoing(kind="admit", since=T0),)})
    store.create(waiting, idempotency_key=None, fingerprint=waiting.id)
    [read] = store.unsent(10)  # a drain reads it...
    later = Outgoing(kind="dispatch", stage=Stage.story, at=LATER, since=LATER)
    _another_process(store).mutate(
        waiting.id, lambda m: Decision(m.model_copy(update={"outbox": (*m.outbox, later)}))
    )
    store.sent(waiting.id, read.outbox)  # ...and marks what it sent, the movie changed since
    left = store.get(waiting.id)
    assert left is not None and left.outbox == (later,)
    assert [m.id for m in store.unsent(10)] == [waiting.id]  # still found by the drains
