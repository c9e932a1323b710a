"""The service's figures behind `/metrics`, as a store reads them (counters since its start)."""

from __future__ import annotations

from dataclasses import dataclass, field

# Upper bounds of the stage duration histogram's buckets, in seconds (+Inf is implied).
DURATION_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0)


@dataclass
class Durations:
    """A histogram of one stage's successful runs: counts per bucket (not cumulative)."""

    buckets: list[int] = field(default_factory=lambda: [0] * (len(DURATION_BUCKETS) + 1))
    total_s: float = 0.0
    count: int = 0

    def add(self, seconds: float) -> None:
        i = next((i for i, b in enumerate(DURATION_BUCKETS) if seconds <= b), -1)
        self.buckets[i] += 1
        self.total_s += seconds
        self.count += 1


@dataclass
class StageFigures:
    oldest_waiting_s: float | None = None  # age of the longest-waiting ready movie
    succeeded: int = 0
    failed: int = 0
    retries: int = 0  # attempts started after the first
    durations: Durations = field(default_factory=Durations)


Figures = dict[str, StageFigures]  # by stage name


@dataclass
class ServiceFigures:
    """What `/metrics` adds to the queue counts, where the service has it."""

    stages: Figures = field(default_factory=dict)
    dead_letters: int | None = None
    webhooks: dict[str, int] | None = None  # attempts by result, since the runtime started
