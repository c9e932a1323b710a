"""The operator routes' request bodies and answers, with their examples (for the document)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from deepflix.handlers.schemas import Answer, examples_of
from deepflix.pipeline.models import MovieStatus, Priority, Stage
from deepflix.pipeline.operator import CLEANABLE

MOVIE_ID = "3f2a9c0e5b7d4e1f8a6c2b9d0e4f7a13"
PRIORITY_REQUESTS: dict[str, JsonValue] = {"urgent": {"priority": "high"}}
CLEAN_REQUESTS: dict[str, JsonValue] = {
    "a day old": {"older_than_seconds": 86400, "statuses": ["succeeded", "cancelled"]},
    "every finished": {"older_than_seconds": 0},
}


class PriorityChange(BaseModel):
    """A waiting movie's new priority."""

    model_config = ConfigDict(extra="forbid")

    priority: Priority


class CleanRequest(BaseModel):
    """Which finished movies bulk clean removes: finished at least `older_than_seconds`
    ago, in one of `statuses` (every finished status when left out)."""

    model_config = ConfigDict(extra="forbid")

    older_than_seconds: float = Field(ge=0, le=10 * 365 * 86400)
    statuses: list[MovieStatus] = Field(default_factory=lambda: list(CLEANABLE), min_length=1)


class BulkResult(Answer):
    """How many movies a bulk action changed, and which."""

    model_config = examples_of([{"count": 1, "movie_ids": [MOVIE_ID]}])

    count: int
    movie_ids: list[str]


class DeadLetterView(Answer):
    id: str
    topic: str
    movie_id: str | None
    stage: Stage | None
    reason: str
    failed_at: datetime


class DeadLetterList(Answer):
    """Messages the queue gave up delivering, oldest first (embedded mode keeps them)."""

    model_config = examples_of(
        [
            {
                "dead_letters": [
                    {
                        "id": "7",
                        "topic": "topic:images.requested",
                        "movie_id": MOVIE_ID,
                        "stage": "images",
                        "reason": "unavailable: the store did not answer",
                        "failed_at": "2026-11-29T12:00:00+00:00",
                    }
                ]
            }
        ]
    )

    dead_letters: list[DeadLetterView]


class Replayed(Answer):
    """The dead letter's message is on its queue again."""

    model_config = examples_of([{"replayed": "7"}])

    replayed: str
