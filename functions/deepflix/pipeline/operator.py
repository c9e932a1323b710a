"""The operator's rules: which movies a filter picks, which may be cleaned, re-prioritized."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from deepflix.pipeline.errors import BadRequest
from deepflix.pipeline.models import STAGES, Movie, MovieStatus, Priority, Stage, StageStatus
from deepflix.pipeline.transitions import Decision

# What a search looks at: an id prefix needs this many characters at least, so a search for
# "a" is a search of prompts, not every sixteenth movie.
MIN_ID_PREFIX = 4
MAX_QUERY = 200
# What bulk clean may remove: only movies that will never change again.
CLEANABLE = (MovieStatus.succeeded, MovieStatus.failed, MovieStatus.cancelled)
_STOPPED = (StageStatus.failed, StageStatus.cancelled)


@dataclass(frozen=True)
class MovieFilter:
    """What a list of movies is narrowed to; None fields do not narrow it.

    `stage`: the stage a movie waits or runs in, or, for a failed or cancelled movie, the
    stage it stopped in. `text`: a case-insensitive part of the prompt, or the start of the
    movie's id.
    """

    status: MovieStatus | None = None
    stage: Stage | None = None
    text: str | None = None

    @property
    def empty(self) -> bool:
        return self.status is None and self.stage is None and not self.text


def parse_filter(status: str | None, stage: str | None, text: str | None) -> MovieFilter:
    """A filter from a list's query parameters; BadRequest naming the one that is wrong."""
    bad: dict[str, Any] = {}
    if status and status not in MovieStatus.__members__:
        bad = {"status": status, "allowed": sorted(MovieStatus.__members__)}
    elif stage and stage not in Stage.__members__:
        bad = {"stage": stage, "allowed": [s.value for s in STAGES]}
    elif text is not None and len(text) > MAX_QUERY:
        bad = {"q": f"at most {MAX_QUERY} characters"}
    if bad:
        raise BadRequest(f"invalid filter: {next(iter(bad))}", details=bad)
    cleaned = (text or "").strip()
    return MovieFilter(
        status=MovieStatus(status) if status else None,
        stage=Stage(stage) if stage else None,
        text=cleaned or None,
    )


def stage_of(movie: Movie) -> Stage | None:
    """The stage a movie is at: where it waits or runs, or where it failed or was cancelled;
    None once it succeeded."""
    current = movie.current_stage
    if current is not None:
        return current
    return next((s for s in STAGES if movie.stages[s].status in _STOPPED), None)


def matches_text(movie: Movie, text: str) -> bool:
    needle = text.lower()
    if len(needle) >= MIN_ID_PREFIX and movie.id.startswith(needle):
        return True
    return needle in movie.request.prompt.lower()


def matches(movie: Movie, f: MovieFilter) -> bool:
    """Whether the filter picks the movie: what every store's filtered list must agree with."""
    if f.status is not None and movie.status is not f.status:
        return False
    if f.stage is not None and stage_of(movie) is not f.stage:
        return False
    return not f.text or matches_text(movie, f.text)


def cleanable(
    movie: Movie, *, now: datetime, older_than_s: float, statuses: Collection[MovieStatus]
) -> bool:
    """Whether bulk clean removes the movie: finished, in one of `statuses`, and finished at
    least `older_than_s` seconds before `now`."""
    if not movie.status.terminal or movie.status not in statuses:
        return False
    finished = movie.finished_at or movie.updated_at
    return finished <= now - timedelta(seconds=older_than_s)


def reprioritize(movie: Movie, priority: Priority, at: datetime) -> Decision:
    """A waiting movie's new priority: its place in the queue it waits in follows, as the
    stores order every queue by (priority, arrival). A movie that runs or is done keeps its
    own (applied=False, with the reason)."""
    if movie.waiting_stage is None:
        state = "running" if movie.running_stage else movie.status.value
        return Decision(
            movie, applied=False, reason=f"only a waiting movie's priority can change: {state}"
        )
    request = movie.request.model_copy(update={"priority": priority})
    return Decision(movie.model_copy(update={"request": request, "updated_at": at}))


@dataclass(frozen=True)
class DeadLetter:
    """A message the queue gave up delivering, with what it was about."""

    id: str
    topic: str  # the queue or topic it was sent to
    movie_id: str | None
    stage: Stage | None
    reason: str
    failed_at: datetime


def about(body: Mapping[str, Any]) -> tuple[str | None, Stage | None]:
    """(movie id, stage) of a message body: a task's payload, or a topic's {"data": ...}."""
    data = body.get("data") if isinstance(body.get("data"), Mapping) else body
    assert isinstance(data, Mapping)
    movie_id = data.get("movie_id")
    stage = data.get("stage")
    return (
        movie_id if isinstance(movie_id, str) else None,
        Stage(stage) if isinstance(stage, str) and stage in Stage.__members__ else None,
    )
