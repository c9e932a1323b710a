"""ETAs from the whole path ahead: until a movie's next stage starts and until it finishes.

Stage durations are kept as histograms per (stage, scene count, time window): log-spaced bins
of 10 % counted up at each successful run, so both stores keep them with blind increments
and a bounded size, and an estimate reads quantiles, not a mean an outlier can drag. Recent
windows weigh more (`recent`): a stage that got slower or faster is learned within a half-life.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from deepflix.pipeline.models import STAGES, Stage

BIN_RATIO = 1.1  # each bin 10 % wider than the last: quantiles to within about 5 %
MIN_SECONDS = 0.001
MAX_BIN = 200  # about 190 s x 1e3; longer runs count in the last bin
# A scene count needs this many samples (weighted) before its own histogram is used alone.
MIN_SAMPLES = 3
# Runs are counted per window of this many seconds of their end time; a window's weight
# halves every HALF_LIFE_WINDOWS windows older than the stage's newest, and only the newest
# WINDOWS_KEPT of a stage are read (and kept by the stores): 10 min windows, a 30 min
# half-life, two hours kept, where the oldest weighs 0.08 of the newest.
WINDOW_S = 600
HALF_LIFE_WINDOWS = 3.0
WINDOWS_KEPT = 12
# What a store keeps: runs per (stage, scene count, window) and bin.
WindowedRuns = Mapping[tuple[Stage, int, int], Mapping[int, int]]
# What an estimate reads: weighted runs per (stage, scene count) and bin.
History = Mapping[tuple[Stage, int], Mapping[int, float]]


def duration_bin(seconds: float) -> int:
    """The histogram bin of a run of `seconds`."""
    b = int(math.log(max(seconds, MIN_SECONDS) / MIN_SECONDS, BIN_RATIO))
    return min(max(b, 0), MAX_BIN)


def bin_seconds(b: int) -> float:
    """The middle of bin `b` (geometrically)."""
    return float(MIN_SECONDS * BIN_RATIO ** (b + 0.5))


def window_of(at: datetime) -> int:
    """The window a run that ended at `at` is counted in."""
    return int(at.timestamp() // WINDOW_S)


def recent(runs: WindowedRuns) -> History:
    """Each stage's windows weighted by age, relative to its newest window rather than to
    now: after an idle night a stage's last busy hours still count in full, while within
    busy hours old runs fade. Windows older than WINDOWS_KEPT are left out."""
    newest: dict[Stage, int] = {}
    for stage, _, window in runs:
        newest[stage] = max(window, newest.get(stage, window))
    out: dict[tuple[Stage, int], dict[int, float]] = {}
    for (stage, scenes, window), counts in runs.items():
        age = newest[stage] - window
        if age >= WINDOWS_KEPT:
            continue
        weight = 0.5 ** (age / HALF_LIFE_WINDOWS)
        into = out.setdefault((stage, scenes), {})
        for b, n in counts.items():
            into[b] = into.get(b, 0.0) + n * weight
    return out


@dataclass(frozen=True)
class Histogram:
    counts: Mapping[int, float]  # bin -> runs, weighted by their windows' age

    @property
    def total(self) -> float:
        return sum(self.counts.values())

    def quantile(self, q: float) -> float:
        total = self.total
        seen = 0.0
        for b in sorted(self.counts):
            seen += self.counts[b]
            if seen >= q * total:
                return bin_seconds(b)
        return bin_seconds(max(self.counts))

    def trimmed_mean(self, cut: float = 0.1) -> float:
        """The mean of the runs between the `cut` and 1 - `cut` quantiles."""
        lo, hi = self.quantile(cut), self.quantile(1 - cut)
        kept = {b: n for b, n in self.counts.items() if lo <= bin_seconds(b) <= hi}
        n = sum(kept.values())
        return sum(bin_seconds(b) * c for b, c in kept.items()) / n if n else lo


def merged(histograms: list[Mapping[int, float]]) -> Histogram:
    out: dict[int, float] = {}
    for h in histograms:
        for b, n in h.items():
            out[b] = out.get(b, 0) + n
    return Histogram(out)


class Durations:
    """What a stage run takes: a movie's own run by its scene count, and any movie's."""

    def __init__(self, history: History) -> None:
        self.by_scenes: dict[Stage, dict[int, Histogram]] = {s: {} for s in STAGES}
        for (stage, scenes), counts in history.items():
            if counts:
                self.by_scenes[stage][scenes] = Histogram(counts)
        self.any: dict[Stage, Histogram] = {
            s: merged([h.counts for h in self.by_scenes[s].values()]) for s in STAGES
        }
        self._typical: dict[Stage, float] = {}  # one Durations serves many estimates

    def known(self, stage: Stage) -> bool:
        return self.any[stage].total > 0

    def own(self, stage: Stage, scenes: int, q: float) -> float:
        """The q-quantile of a run of `scenes` scenes; from the nearest scene counts with
        enough history, scaled by scene count, where its own has too little."""
        mine = self.by_scenes[stage].get(scenes)
        if mine is not None and mine.total >= MIN_SAMPLES:
            return mine.quantile(q)
        near = sorted(
            (n for n, h in self.by_scenes[stage].items() if h.total >= MIN_SAMPLES),
            key=lambda n: (abs(n - scenes), -n),
        )
        if not near:
            return self.any[stage].quantile(q)
        below = [n for n in near if n < scenes][:1]
        above = [n for n in near if n > scenes][:1]
        if below and above:  # between two known scene counts: interpolate
            lo, hi = below[0], above[0]
            f = (scenes - lo) / (hi - lo)
            a, b = self.by_scenes[stage][lo].quantile(q), self.by_scenes[stage][hi].quantile(q)
            return a + f * (b - a)
        n = near[0]
        return self.by_scenes[stage][n].quantile(q) * scenes / n

    def typical(self, stage: Stage) -> float:
        """A run of the movies ahead, whatever their scene counts (a trimmed mean)."""
        if stage not in self._typical:
            self._typical[stage] = self.any[stage].trimmed_mean()
        return self._typical[stage]


@dataclass(frozen=True)
class Eta:
    """Seconds from now; None with `unknown` saying why where it cannot be told."""

    start_s: float | None = None  # until the movie's next stage starts (None: none left)
    start_low: float | None = None
    start_high: float | None = None
    finish_s: float | None = None  # until the film is ready
    finish_low: float | None = None
    finish_high: float | None = None
    unknown: str | None = None


@dataclass(frozen=True)
class PathAhead:
    """Where one movie stands, and the queues it still has to pass through."""

    stage: Stage  # the stage it waits in or runs in
    running: bool  # running in `stage` (else waiting)
    elapsed_s: float  # seconds its running attempt has run (0 while waiting)
    ahead: int  # movies before it in `stage`'s queue (0 while running)
    scenes: int
    # Per later stage, the movies waiting there now that its dispatch order puts before
    # this one (priority, then arrival): later arrivals of a lower priority do not count.
    waiting: Mapping[Stage, int]
    busy: Mapping[Stage, int]  # per stage, movies running now
    concurrency: Mapping[Stage, int]


# The band: every duration at its 10th and 90th percentile (own run), the runs of the
# movies ahead scaled alike.
LOW_Q, MID_Q, HIGH_Q = 0.1, 0.5, 0.9


def _free_at(in_front: int, slots: int, run_s: float) -> float:
    """When a slot frees for the next movie, with `in_front` movies ahead of it running or
    waiting: the running ones are half done on average, then one run per slot at a time."""
    k = in_front - slots + 1
    return 0.0 if k <= 0 else run_s * (0.5 + (k - 1) / slots)


def _walk(path: PathAhead, durations: Durations, q: float) -> tuple[float | None, float]:
    """(next stage start, finish) in seconds from now, every duration at quantile q."""
    scale = 1.0
    mid = durations.own(path.stage, path.scenes, MID_Q)
    if mid > 0:
        scale = durations.own(path.stage, path.scenes, q) / mid
    t = 0.0
    start_next: float | None = None
    in_front_upstream = 0
    for stage in STAGES[STAGES.index(path.stage) :]:
        own = durations.own(stage, path.scenes, q)
        other = durations.typical(stage) * scale
        slots = path.concurrency[stage]
        if stage is path.stage and path.running:
            t = max(own - path.elapsed_s, 0.1 * own)
            # The others running here started earlier: most reach the next queue first.
            in_front_upstream = max(path.busy[stage] - 1, 0)
            continue
        if stage is path.stage:
            in_front = path.busy[stage] + path.ahead
        else:
            in_front = path.busy[stage] + path.waiting[stage] + in_front_upstream
        start = max(t, _free_at(in_front, slots, other))
        if start_next is None:
            start_next = start
        t = start + own
        in_front_upstream = in_front
    return start_next, t


def estimate(path: PathAhead, durations: Durations, *, admission_paused: bool) -> Eta:
    """The ETA of a movie waiting or running at `path.stage`."""
    if admission_paused and path.stage is Stage.story and not path.running:
        return Eta(unknown="admission_paused")
    for stage in STAGES[STAGES.index(path.stage) :]:
        if not durations.known(stage):
            return Eta(unknown=f"no_history:{stage.value}")
    start, finish = _walk(path, durations, MID_Q)
    start_lo, finish_lo = _walk(path, durations, LOW_Q)
    start_hi, finish_hi = _walk(path, durations, HIGH_Q)
    return Eta(
        start_s=start,
        start_low=start_lo,
        start_high=start_hi,
        finish_s=finish,
        finish_low=min(finish_lo, finish),
        finish_high=max(finish_hi, finish),
    )
