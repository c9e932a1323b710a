"""What one save of a movie changed: journal entries and the stage durations it observed."""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from deepflix.pipeline.models import STAGES, Movie, Stage, StageStatus


class JournalEntry(NamedTuple):
    """One change of a stage's status: a line of the movie's audit trail."""

    stage: Stage
    attempt: int
    before: StageStatus
    after: StageStatus
    at: datetime

    def document(self) -> dict[str, object]:
        """The entry as both stores keep it and return it: plain values, ISO 8601 time."""
        return {
            "stage": self.stage.value,
            "attempt": self.attempt,
            "before": self.before.value,
            "after": self.after.value,
            "at": self.at.isoformat(),
        }


class StageChanges(NamedTuple):
    journal: list[JournalEntry]  # in stage order
    durations: list[tuple[Stage, float]]  # seconds of each stage run that succeeded


def stage_changes(old: Movie, new: Movie) -> StageChanges:
    """Each stage whose status differs between `old` and the saved `new`, and how long each
    run that went from running to succeeded took (the samples behind ETAs)."""
    journal: list[JournalEntry] = []
    durations: list[tuple[Stage, float]] = []
    for stage in STAGES:
        before, after = old.stages[stage], new.stages[stage]
        if before.status is after.status:
            continue
        journal.append(
            JournalEntry(stage, after.attempts, before.status, after.status, new.updated_at)
        )
        if before.status is StageStatus.running and after.status is StageStatus.succeeded:
            durations.append((stage, after.duration_s or 0.0))
    return StageChanges(journal, durations)
