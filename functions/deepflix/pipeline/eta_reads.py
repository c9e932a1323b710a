"""The ETA's reads from the store: the path ahead of a movie, its counts reused briefly."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from deepflix.pipeline.eta import Durations, Eta, PathAhead, WindowedRuns, estimate, recent
from deepflix.pipeline.models import STAGES, Movie, Stage, StageState, StageStatus
from deepflix.pipeline.policy import PipelineConfig
from deepflix.pipeline.ports import MovieStore

# How long the later stages' queue counts are reused: a status or position answer read up
# to three positions and the counts for them, which tripled the API's CPU per request
# (bench/NOTES.md). Queues move by a few movies in this time; an estimate is seconds long.
COUNTS_TTL_S = 0.5


def as_waiting_in(movie: Movie, stage: Stage) -> Movie:
    """The movie as if it waited in `stage`: a store counts the movies ahead of it there by
    its key (priority, arrival), as for any waiting movie."""
    stages = {s: StageState() for s in STAGES}
    stages[stage] = StageState(status=StageStatus.waiting, ready_at=movie.created_at)
    return movie.model_copy(update={"stages": stages})


@dataclass(frozen=True)
class QueueReads:
    """The queues as one estimate read them: every stage's running movies, and the movies
    before the movie in each queue after its stage (as if it arrived there now)."""

    running: Mapping[Stage, int]
    ahead: Mapping[Stage, int]


class EtaReads:
    """Estimates for movies from the store's counts and duration history.

    The movies ahead in a later stage are read once per (stage, priority) every
    COUNTS_TTL_S, as for a movie of that priority arriving last: every movie waiting there
    with its priority or a higher one. A movie of the same priority that arrived after this
    one yet already waits there would really go after it; that is rare (it overtook this
    one in an earlier stage) and it has usually moved on by the time this one gets there.
    """

    def __init__(
        self,
        *,
        store: MovieStore,
        config: PipelineConfig,
        clock: Callable[[], datetime],
        ttl_s: float = COUNTS_TTL_S,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.config = config
        self.clock = clock
        self.ttl_s = ttl_s
        self.monotonic = monotonic
        self._lock = threading.Lock()
        self._counts: tuple[float, dict[Stage, int]] | None = None
        self._ahead: dict[tuple[Stage, int], tuple[float, int]] = {}
        self._durations: tuple[WindowedRuns | None, Durations | None] = (None, None)

    def estimate(
        self,
        movie: Movie,
        stage: Stage,
        *,
        running: bool,
        ahead: int,
        paused: Callable[[], bool] | None = None,
        queues: QueueReads | None = None,
    ) -> Eta:
        """The ETA of `movie`, waiting (`ahead` before it) or running in `stage`. `paused`
        tells whether admission is paused and `queues` the queues after `stage`, where the
        caller has read them for its answer too; paused is asked only for a movie waiting in
        the story stage."""
        if queues is None:
            queues = self.queues(movie, stage)
        started = movie.stages[stage].started_at
        elapsed = (self.clock() - started).total_seconds() if running and started else 0.0
        path = PathAhead(
            stage=stage,
            running=running,
            elapsed_s=max(elapsed, 0.0),
            ahead=ahead,
            scenes=movie.request.scene_count,
            waiting=queues.ahead,
            busy=dict(queues.running),
            concurrency={s: self.config[s].concurrency for s in STAGES},
        )
        held = stage is Stage.story and not running and (paused or self.store.admission_paused)()
        return estimate(path, self.durations(), admission_paused=held)

    def queues(self, movie: Movie, stage: Stage | None) -> QueueReads:
        """What an estimate of `movie` in `stage` reads of the queues (reused for ttl_s; the
        movies ahead per stage and priority); no later queue for a movie that is done."""
        now = self.monotonic()
        later = STAGES[STAGES.index(stage) + 1 :] if stage is not None else ()
        ahead = {s: self._ahead_in(movie, s, now) for s in later}
        return QueueReads(self._running(now), ahead)

    def durations(self) -> Durations:
        """The recent durations, built again only when the store's history is read again
        (the stores reuse what they read for a second or more)."""
        runs = self.store.duration_history()
        seen, durations = self._durations
        if seen is not runs or durations is None:
            durations = Durations(recent(runs))
            self._durations = (runs, durations)
        return durations

    def _running(self, now: float) -> dict[Stage, int]:
        cached = self._counts
        if cached is not None and now - cached[0] < self.ttl_s:
            return cached[1]
        running = self.store.running_counts()
        self._counts = (now, running)
        return running

    def _ahead_in(self, movie: Movie, stage: Stage, now: float) -> int:
        key = (stage, movie.request.priority.rank)
        with self._lock:
            cached = self._ahead.get(key)
        if cached is not None and now - cached[0] < self.ttl_s:
            return cached[1]
        # As if arriving now, behind every movie of its priority that waits there.
        last = as_waiting_in(movie, stage).model_copy(update={"created_at": self.clock()})
        ahead = self.store.ahead(last, stage)
        with self._lock:
            self._ahead[key] = (now, ahead)
        return ahead
