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

    def to_images(self, movie_id: str, *, claim: bool = True) -> None:
        """Claim the movie's story and finish it: its images request is sent on."""
        if claim:
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

    assert rig.pipeline.dispatch(Stage.story) == 1
    # The story stage runs in the function, no claim at receipt: its request went out and
    # is not marked; its outcome takes it out. Deadline checks are no entries (ADR 0030).
    assert [t for t, _ in rig.bus.sent] == ["story.requested"]
    assert rig.marked == [] and rig.kinds(m.id) == ["run_stage"]
    assert rig.store.unsent(10) == []  # nor read by drains: it may be running
    rig.pipeline.report(m.id, StageSucceeded(Stage.story, 1, (), rig.clock()))
    assert rig.marked == []
    assert [(o.kind, o.stage) for o in rig.movie(m.id).outbox] == [("run_stage", Stage.images)]
    topic, data = rig.bus.sent[-1]
    assert topic == "images.requested" and data["settle"] is True

    rig.pipeline.start_job(m.id, Stage.images, 1, settles=True)
    assert rig.kinds(m.id) == []
    assert rig.marked == []  # nothing marked at all
    assert rig.store.unsent(10) == []


def test_a_drain_resends_what_is_on_its_way_only_after_its_grace(rig: Rig) -> None:
    m = rig.pipeline.create(request(), owner="u", idempotency_key=None)
    rig.clock.now += timedelta(seconds=2)  # a later admission window
    rig.pipeline.sweep()  # ...which claims it: the claim takes the admission out
    assert rig.kinds(m.id) == ["run_stage"]  # the story's request, for its outcome

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
    rig.pipeline.sweep()  # claims it; the story stage's request goes out
    rig.to_images(m.id, claim=False)
    rig.pipeline.start_job(m.id, Stage.images, 1, settles=False)  # a request sent unsettled
    rig.clock.now += GRACE
    rig.pipeline.sweep()  # resent after its grace, and marked
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


def story_requests(rig: Rig) -> list[int]:
    return [int(d["attempt"]) for t, d in rig.bus.sent if t == "story.requested"]


def test_a_story_request_whose_send_failed_is_held_and_resent_after_its_grace(rig: Rig) -> None:
    m = rig.pipeline.create(request(), owner="u", idempotency_key=None)
    rig.events_down.down = True
    rig.clock.now += timedelta(seconds=2)
    rig.pipeline.sweep()  # claims it; the publish fails
    assert rig.events_down.refused == 1 and story_requests(rig) == []
    (entry,) = rig.movie(m.id).outbox
    assert entry.kind == "run_stage" and not entry.by_outcome  # held: a drain's to send
    assert rig.marked == []

    rig.events_down.down = False
    rig.pipeline.sweep()
    assert story_requests(rig) == []  # within its grace, as every entry
    rig.clock.now += GRACE
    rig.pipeline.sweep()
    assert story_requests(rig) == [1]  # resent once its grace is over...
    assert rig.marked[-1] == ["run_stage"] and rig.kinds(m.id) == []  # ...and marked
    rig.clock.now += GRACE
    rig.pipeline.sweep()
    assert story_requests(rig) == [1] and rig.store.unsent(10) == []


def test_a_story_that_runs_long_is_not_sent_again_by_drains(rig: Rig) -> None:
    m = rig.pipeline.create(request(), owner="u", idempotency_key=None)
    rig.clock.now += timedelta(seconds=2)
    rig.pipeline.sweep()
    assert story_requests(rig) == [1]
    deadline = rig.movie(m.id).stages[Stage.story].deadline
    assert deadline is not None
    while rig.clock() + GRACE < deadline:  # sweeps and drains, every grace, until the deadline
        rig.clock.now += GRACE
        rig.pipeline.sweep()
        rig.pipeline.sender.drain()
    assert story_requests(rig) == [1] and rig.marked == []
    assert all(m.id not in d for d in rig.drained)  # not even read
    rig.pipeline.report(m.id, StageSucceeded(Stage.story, 1, (), rig.clock()))
    assert [o.stage for o in rig.movie(m.id).outbox] == [Stage.images]  # the story's is out


def test_a_story_request_lost_before_its_send_is_timed_out_and_retried(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crash between the claim's save and the publish: the entry is neither sent nor held,
    so no drain sends it; the attempt's deadline times it out and the retry sends anew."""
    m = rig.pipeline.create(request(), owner="u", idempotency_key=None)
    send = rig.pipeline.sender.send
    monkeypatch.setattr(rig.pipeline.sender, "send", lambda *a, **k: None)  # lost
    rig.clock.now += timedelta(seconds=2)
    rig.pipeline.sweep()
    monkeypatch.setattr(rig.pipeline.sender, "send", send)
    assert story_requests(rig) == [] and rig.kinds(m.id) == ["run_stage"]
    deadline = rig.movie(m.id).stages[Stage.story].deadline
    assert deadline is not None
    rig.clock.now = deadline + GRACE
    rig.pipeline.sweep()  # times attempt 1 out: its request is taken out with it
    st = rig.movie(m.id).stages[Stage.story]
    assert st.last_error is not None and st.last_error.code == "timeout"
    assert all(o.attempt != 1 for o in rig.movie(m.id).outbox)
    while not story_requests(rig) and rig.clock() < deadline + timedelta(hours=1):
        rig.clock.now += GRACE
        rig.pipeline.sweep()
    assert story_requests(rig) == [2]  # the retry's request
