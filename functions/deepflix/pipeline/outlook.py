"""What an answer tells of a movie's way ahead (place, ETA, paused admission), each read once."""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass
from functools import cached_property

from deepflix.pipeline.eta import Eta
from deepflix.pipeline.eta_reads import EtaReads, QueueReads, as_waiting_in
from deepflix.pipeline.models import STAGES, CreatedEta, Movie, MovieStatus, Stage
from deepflix.pipeline.policy import PipelineConfig
from deepflix.pipeline.ports import MovieStore
from deepflix.pipeline.position import QueuePosition, estimate_eta, stage_seconds

log = logging.getLogger("deepflix.pipeline")


@dataclass(frozen=True)
class Placed:
    """A movie's place as the store counts it: the movies before it in `stage`'s queue, and
    the stage's waiting and running."""

    stage: Stage
    ahead: int
    total: int
    running: int


@dataclass(frozen=True)
class CreateReads:
    """What a create read before it saved its movie, kept for the create's answer."""

    placed: Placed
    paused: bool
    queues: QueueReads  # its estimate's: the counts and the later queues


@dataclass(frozen=True)
class LongestWait:
    """The queue on a movie's way where it should wait longest: the movies before it there,
    and the seconds they take."""

    stage: Stage
    ahead: int
    wait_s: float


class Outlook:
    """One answer's reads of a movie's way ahead, each made at most once for it and only
    where the answer needs it: the movie's place (`position`, with the waiting ETA from the
    stage means), its ETA over the whole path (`eta`, whose later queues and counts come from
    the ETA's reads, reused for their TTL), and whether paused admission holds it (`held`).
    The stage means and the paused flag are read once and shared by what needs them: the
    position's ETA and the longest wait (`longest_wait`); the ETA's "paused" and the
    answer's own flag.

    `created` is what the movie's create read just before saving it, where this process made
    it and nothing moved in its queue since but its own arrival (Pipeline.outlook).
    """

    def __init__(
        self,
        movie: Movie,
        *,
        store: MovieStore,
        etas: EtaReads,
        config: PipelineConfig,
        created: CreateReads | None = None,
    ) -> None:
        self.movie = movie
        self._store = store
        self._etas = etas
        self._config = config
        self._placed = created.placed if created else None
        self._paused = created.paused if created else None
        self._queues = created.queues if created else None

    @cached_property
    def means(self) -> dict[Stage, float]:
        """The mean run of each stage: the waiting ETA's, and the longest wait's."""
        return self._store.mean_durations()

    def admission_paused(self) -> bool:
        if self._paused is None:
            self._paused = self._store.admission_paused()
        return self._paused

    @property
    def held(self) -> bool:
        """Not admitted yet while admission is paused: it waits until resumed."""
        return self.movie.status is MovieStatus.queued and self.admission_paused()

    @cached_property
    def queues(self) -> QueueReads:
        """The counts and the queues after the movie's stage: the ETA's and the longest
        wait's."""
        stage = self.movie.current_stage
        if self._queues is not None and stage is Stage.story:
            return self._queues
        return self._etas.queues(self.movie, stage)

    @cached_property
    def position(self) -> QueuePosition | None:
        """Where the movie waits, None unless it waits."""
        stage = self.movie.waiting_stage
        if stage is None:
            return None
        placed = self._placed
        if placed is None or placed.stage is not stage:
            placed = Placed(stage, *self._store.position(self.movie, stage))
        eta = estimate_eta(
            stage,
            ahead=placed.ahead,
            running=placed.running,
            config=self._config,
            observed=self.means,
        )
        return QueuePosition(stage, placed.ahead, placed.total, placed.running, eta)

    @cached_property
    def eta(self) -> Eta | None:
        """Until its next stage starts and until it finishes; None for a movie that is done."""
        stage = self.movie.current_stage
        if stage is None:
            return None
        running = self.movie.running_stage is not None
        position = None if running else self.position
        return self._etas.estimate(
            self.movie,
            stage,
            running=running,
            ahead=position.ahead if position is not None else 0,
            paused=self.admission_paused,
            queues=self.queues,
        )

    def longest_wait(self) -> LongestWait | None:
        """The queue on the movie's way where it should wait longest as things stand: the
        movies ahead of it there (by its priority and arrival), the rounds they take at the
        stage's concurrency, each of its usual duration. None where no queue holds it up.

        It reads what the ETA read: the running counts and, for the queues after the movie's
        stage, the movies before it were it to arrive there now (for a movie just made, its
        own arrival), and the means of the position's ETA."""
        queues = self.queues
        position = self.position
        here = self.movie.current_stage
        later = STAGES[STAGES.index(here) + 1 :] if here is not None else ()
        best: LongestWait | None = None
        for stage in STAGES:
            if position is not None and stage is position.stage:
                ahead = position.ahead
            elif stage in later:
                ahead = queues.ahead[stage]
            else:  # where it runs, or a queue it passed (a repeated create's older movie)
                ahead = self._store.ahead(as_waiting_in(self.movie, stage), stage)
            limit = self._config[stage].concurrency
            must_finish = ahead + queues.running[stage] - limit + 1
            if must_finish <= 0:
                continue
            wait = -(-must_finish // limit) * stage_seconds(stage, self._config, self.means)
            if best is None or wait > best.wait_s:
                best = LongestWait(stage, ahead, wait)
        return best


class CreatedReads:
    """The reads of this process's latest creates, each taken once by the create's answer.

    A create reads its movie's story place and the paused flag for the estimate it saves
    with the movie (created_estimate); its answer tells the same place a moment later,
    so it takes them from here rather than reading them again. Bounded: a create whose
    answer never came here (its connection dropped, or `deepflix serve`'s API process made
    it) leaves an entry that the oldest-first drop ends.
    """

    SIZE = 256

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._kept: OrderedDict[str, CreateReads] = OrderedDict()

    def keep(self, movie_id: str, reads: CreateReads) -> None:
        with self._lock:
            self._kept[movie_id] = reads
            while len(self._kept) > self.SIZE:
                self._kept.popitem(last=False)

    def take(self, movie_id: str) -> CreateReads | None:
        with self._lock:
            return self._kept.pop(movie_id, None)


def created_estimate(
    store: MovieStore, etas: EtaReads, movie: Movie
) -> tuple[CreatedEta | None, CreateReads | None]:
    """The finish estimate recorded with a new movie, and what it read; its key places it
    in the queue before it is saved. An estimate must never fail a create."""
    try:
        ahead, total, running = store.position(movie, Stage.story)
        paused = store.admission_paused()
        queues = etas.queues(movie, Stage.story)
        e = etas.estimate(
            movie, Stage.story, running=False, ahead=ahead, paused=lambda: paused, queues=queues
        )
    except Exception:
        log.warning("no estimate for a new movie", exc_info=True)
        return None, None
    # Once saved, the movie waits there too: one more than the store counted.
    reads = CreateReads(Placed(Stage.story, ahead, total + 1, running), paused, queues)
    eta = CreatedEta(
        finish_s=e.finish_s, low_s=e.finish_low, high_s=e.finish_high, unknown=e.unknown
    )
    return eta, reads
