"""Receipts on every store: receivers take their messages out of the outbox, the sender marks
only what no receiver will, and a drain resends what is on its way only after its grace."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta

import pytest

from deepflix.pipeline import outbox
from deepflix.pipeline.events import StageSucceeded
from deepflix.pipeline.models import Movie, Outgoing, Stage
from deepflix.pipeline.ports import MovieStore
from deepflix.pipeline.service import Pipeline
from tests.factories import CONFIG, request
from tests.pipeline_fakes import Bus, Clock, Outage, Recorder, Tasks

# Tier marks: on the adapter parameters (conftest.py), `contract` or `emulator`.
GRACE = timedelta(seconds=outbox.GRACE_S)


class Rig:
    """The pipeline with receipts over `store`, recording transports and `sent` calls."""

    def __init__(self, store: MovieStore, monkeypatch: pytest.MonkeyPatch) -> None:
        self.store = store
        self.tasks_down, self.events_down = Outage(), Outage()
        self.tasks, self.bus = Tasks(self.tasks_down), Bus(self.events_down)
        self.clock = Clock()
        self.jobs = Recorder()
        self.marked: list[list[str]] = []
        self.marks: Counter[str] = Counter()  # by movie
        mark = store.sent

        def sent(movie_id: str, messages: Sequence[Outgoing]) -> None:
            self.marked.append([m.kind for m in messages])
            self.marks[movie_id] += 1
            mark(movie_id, messages)

        monkeypatch.setattr(store, "sent", sent)
        self.drained: list[list[str]] = []  # the movies each drain read
        unsent = store.unsent

        def read(limit: int, before: datetime | None = None) -> list[Movie]:
            movies = unsent(limit, before)
            self.drained.append([m.id for m in movies])
            return movies

        monkeypatch.setattr(store, "unsent", read)
        self.pipeline = Pipeline(
            store=store,
            tasks=self.tasks,
            events=self.bus,
            jobs=self.jobs,
            config=CONFIG,
            clock=self.clock,
            receipts=True,
        )

    def movie(self, movie_id: str) -> Movie:
        return self.pipeline.get(movie_id)

    def kinds(self, movie_id: str) -> list[str]:
        return [o.kind for o in self.movie(movie_id).outbox]

    def admissions(self) -> int:
        return sum(1 for t in self.tasks.sent if (t[2] or "").startswith("admit-"))

    def to_images(self, movie_id: str) -> None:
        """Claim the movie's story and finish it: its images request is sent on."""
        assert self.pipeline.dispatch(Stage.story) == 1
        done = StageSucceeded(Stage.story, 1, (), self.clock())
        self.pipeline.report(movie_id, done)


@pytest.fixture
def rig(store: MovieStore, monkeypatch: pytest.MonkeyPatch) -> Rig:
    return Rig(store, monkeypatch)


def test_receivers_take_their_messages_out_and_the_sender_marks_only_the_rest(rig: Rig) -> None:
    m = rig.pipeline.create(request(), owner="u", idempotency_key=None)
    assert rig.admissions() == 1
    assert rig.marked == []  # the admission task went out; the movie's claim takes it out
    assert rig.kinds(m.id) == ["admit"]

    rig.to_images(m.id)
    # The story stage runs in the function, no claim at receipt: its request is marked.
    # Deadline checks are no entries at all (ADR 0030).
    assert rig.marked == [["run_stage"]]
    assert rig.kinds(m.id) == ["run_stage"]  # the images stage's
    topic, data = rig.bus.sent[-1]
    assert topic == "images.requested" and data["settle"] is True

    rig.pipeline.start_job(m.id, Stage.images, 1, settles=True)
    assert rig.kinds(m.id) == []
    assert rig.marked == [["run_stage"]]  # nothing more marked
    assert rig.store.unsent(10) == []


def test_a_drain_resends_what_is_on_its_way_only_after_its_grace(rig: Rig) -> None:
    m = rig.pipeline.create(request(), owner="u", idempotency_key=None)
    rig.clock.now += timedelta(seconds=2)  # a later admission window
    rig.pipeline.sweep()  # ...which claims it: the claim takes the admission out
    assert rig.kinds(m.id) == []

    rig.pipeline.pause_admission()
    waiting = rig.pipeline.create(request(), owner="u", idempotency_key=None)
    rig.clock.now += timedelta(seconds=2)
    rig.pipeline.sweep()
    assert rig.admissions() == 2  # not sent again: it is on its way
    assert rig.kinds(waiting.id) == ["admit"]
    assert rig.drained[-1] == []  # nor even read (on Firestore, a billed read a sweep)
    rig.clock.now += GRACE
    rig.pipeline.sweep()
    assert waiting.id in rig.drained[-1]  # (Firestore may list m too: its index lags)
    assert rig.admissions() == 3  # its receiver had its time: sent again, and marked
    assert rig.kinds(waiting.id) == []
    assert rig.marked[-1] == ["admit"]


def test_a_deadline_check_that_failed_is_the_sweeps_and_holds_up_no_receipt(rig: Rig) -> None:
    m = rig.pipeline.create(request(), owner="u", idempotency_key=None)
    rig.tasks_down.down = True
    rig.to_images(m.id)  # no deadline check went out, for the story or the images
    assert [t for t in rig.tasks.sent if t[0] == "deadlines"] == []
    topic, data = rig.bus.sent[-1]
    assert topic == "images.requested" and data["settle"] is True  # settles all the same
    marked = len(rig.marked)
    rig.pipeline.start_job(m.id, Stage.images, 1, settles=True)
    assert rig.kinds(m.id) == [] and len(rig.marked) == marked  # nothing kept, nothing marked

    deadline = rig.movie(m.id).stages[Stage.images].deadline
    assert deadline is not None
    rig.clock.now = deadline
    rig.tasks_down.down = False
    rig.pipeline.sweep()  # the minute sweep times the attempt out all the same
    st = rig.movie(m.id).stages[Stage.images]
    assert st.last_error is not None and st.last_error.code == "timeout"
    assert rig.jobs.cancelled == ["exec-1"]  # its job stopped


def test_a_mark_that_empties_an_outbox_takes_the_movie_out_of_what_drains_read(rig: Rig) -> None:
    m = rig.pipeline.create(request(), owner="u", idempotency_key=None)
    rig.clock.now += timedelta(seconds=2)
    rig.pipeline.sweep()  # claims it; the story stage's request is marked
    assert rig.marked == [["run_stage"]]
    assert rig.kinds(m.id) == []
    # Not listed, where the index kept the messages' time until the movie's next save and
    # every drain meanwhile read the movie again (a story that runs past the grace).
    assert rig.store.unsent(10) == []


def test_a_waiting_movies_admission_is_resent_and_marked_once_then_not_read_again(
    rig: Rig,
) -> None:
    rig.pipeline.pause_admission()
    waiting = rig.pipeline.create(request(), owner="u", idempotency_key=None)
    for _ in range(4):  # it waits through sweeps, past its grace
        rig.clock.now += GRACE
        rig.pipeline.sweep()
    assert rig.marks == {waiting.id: 1}
    assert rig.admissions() == 2  # its create's, and the one resend
    assert [waiting.id in d for d in rig.drained] == [True, False, False, False]


def test_drains_one_after_another_mark_each_waiting_admission_once(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A deep queue: more waiting movies past their grace than a drain reads. The first drain
    leaves a backlog, so every send after it is to drain again, each send of the drain's
    own too: a drain inside the drain read the same movies and sent and marked again what
    the outer one went on to send and mark (7.9 marks a movie in the 500-movie stack)."""
    monkeypatch.setattr(outbox, "DRAIN_BATCH", 2)
    monkeypatch.setattr(outbox, "REST_S", 0.0)  # due at every send while a backlog lasts
    rig.pipeline.pause_admission()
    ids = [rig.pipeline.create(request(), owner="u", idempotency_key=None).id for _ in range(6)]
    for _ in range(5):
        rig.clock.now += GRACE
        rig.pipeline.sweep()
    assert rig.marks == dict.fromkeys(ids, 1)
    assert all(rig.kinds(i) == [] for i in ids)


def test_one_drain_at_a_time_in_a_process(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    rig.pipeline.pause_admission()
    rig.pipeline.create(request(), owner="u", idempotency_key=None)
    rig.clock.now += GRACE
    inside, go_on = threading.Event(), threading.Event()
    unsent = rig.store.unsent

    def held(limit: int, before: datetime | None = None) -> list[Movie]:
        inside.set()
        go_on.wait(timeout=30)
        return unsent(limit, before)

    monkeypatch.setattr(rig.store, "unsent", held)
    first = threading.Thread(target=rig.pipeline.sender.drain)
    first.start()
    assert inside.wait(timeout=30)
    rig.pipeline.sender.drain()  # another thread's: the one running reads what it would
    go_on.set()
    first.join()
    assert len(rig.drained) == 1
    assert len(rig.marks) == 1 and set(rig.marks.values()) == {1}
