"""Receipts on every store: receivers take their messages out of the outbox, the sender marks
only what no receiver will, and a drain resends what is on its way only after its grace."""

from __future__ import annotations

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
        mark = store.sent

        def sent(movie_id: str, messages: Sequence[Outgoing]) -> None:
            self.marked.append([m.kind for m in messages])
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
