"""stage_changes: the journal entries and duration samples of one save."""

from __future__ import annotations

from datetime import timedelta

import pytest

from deepflix.pipeline.events import CancelRequested, Claimed, Progressed, StageSucceeded
from deepflix.pipeline.journal import JournalEntry, stage_changes
from deepflix.pipeline.models import Stage, StageStatus
from deepflix.pipeline.transitions import apply
from tests.factories import CONFIG, T0, movie

pytestmark = pytest.mark.unit
CLAIMED, DONE = T0 + timedelta(seconds=1), T0 + timedelta(seconds=5)


def test_a_claim_is_one_entry_and_no_duration() -> None:
    waiting = movie()
    running = apply(waiting, Claimed(Stage.story, CLAIMED), CONFIG).movie
    changes = stage_changes(waiting, running)
    assert changes.journal == [
        JournalEntry(Stage.story, 1, StageStatus.waiting, StageStatus.running, CLAIMED)
    ]
    assert changes.durations == []


def test_a_success_ends_one_stage_opens_the_next_and_samples_its_run() -> None:
    running = apply(movie(), Claimed(Stage.story, CLAIMED), CONFIG).movie
    done = apply(running, StageSucceeded(Stage.story, 1, (), DONE), CONFIG).movie
    journal, durations = stage_changes(running, done)
    assert [(e.stage, e.before, e.after, e.at) for e in journal] == [
        (Stage.story, StageStatus.running, StageStatus.succeeded, DONE),
        (Stage.images, StageStatus.pending, StageStatus.waiting, DONE),
    ]
    assert durations == [(Stage.story, 4.0)]


def test_progress_changes_no_status() -> None:
    running = apply(movie(), Claimed(Stage.story, CLAIMED), CONFIG).movie
    later = apply(running, Progressed(Stage.story, 1, 50, DONE), CONFIG).movie
    assert stage_changes(running, later) == ([], [])


def test_a_cancelled_run_is_journalled_but_not_sampled() -> None:
    running = apply(movie(), Claimed(Stage.story, CLAIMED), CONFIG).movie
    cancelled = apply(running, CancelRequested(DONE), CONFIG).movie
    journal, durations = stage_changes(running, cancelled)
    assert [(e.before, e.after) for e in journal] == [(StageStatus.running, StageStatus.cancelled)]
    assert durations == []


def test_an_entry_is_stored_as_plain_values() -> None:
    entry = JournalEntry(Stage.video, 2, StageStatus.waiting, StageStatus.running, T0)
    assert entry.document() == {
        "stage": "video",
        "attempt": 2,
        "before": "waiting",
        "after": "running",
        "at": T0.isoformat(),
    }
    assert tuple(entry.document()) == JournalEntry._fields
