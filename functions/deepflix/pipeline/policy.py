"""Per-stage retry policy, timeout and concurrency: values with pure rules."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from deepflix.pipeline.models import STAGES, Stage

# Weight of the newest duration in a stage's running mean (behind ETAs): recent enough to
# follow load changes.
EWMA_WEIGHT = 0.2


def running_mean(mean: float, samples: list[float]) -> float:
    """The running mean after `samples`, one at a time, starting from `mean`."""
    for seconds in samples:
        mean = mean * (1 - EWMA_WEIGHT) + EWMA_WEIGHT * seconds
    return mean


# The longest server retry hint honoured: a broken or hostile hint must not park a movie
# for days.
MAX_HINT_S = 3600.0


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 3
    base_delay_s: float = 1.0
    multiplier: float = 2.0
    max_delay_s: float = 60.0
    jitter: float = 0.5  # fraction of the delay that is randomised away
    # Attempts a run may lose to outages of the store or the bus without being charged for
    # them; past this many an outage's failure is charged like any other.
    max_outage_retries: int = 20

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if not 0.0 <= self.jitter <= 1.0:
            raise ValueError("jitter must be within [0, 1]")

    def next_delay(
        self, attempts: int, *, key: str = "", hint_s: float | None = None
    ) -> float | None:
        """Seconds to wait before the next attempt after `attempts` failed ones; None if spent.

        Jitter is derived from `key` (movie id, stage) so the decision is reproducible
        while still spreading retries of different movies apart. `hint_s` is the wait the
        failing service asked for (a 429's retry hint): the delay is never shorter, even
        past max_delay_s (trying sooner only earns another refusal), up to MAX_HINT_S.
        """
        if attempts >= self.max_attempts:
            return None
        delay = self.backoff(attempts, key=key)
        if hint_s is not None and hint_s > 0:
            delay = max(delay, min(hint_s, MAX_HINT_S))
        return delay

    def backoff(self, failures: int, *, key: str = "") -> float:
        """Seconds to wait after the `failures`-th failure in a row, spent or not."""
        raw = min(self.max_delay_s, self.base_delay_s * self.multiplier ** (failures - 1))
        digest = hashlib.blake2b(f"{key}:{failures}".encode(), digest_size=8).digest()
        unit = int.from_bytes(digest, "big") / 2**64
        return raw * (1.0 - self.jitter * unit)


@dataclass(frozen=True)
class StagePolicy:
    concurrency: int
    timeout_s: float
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    expected_s: float = 5.0  # ETA guess until durations have been observed
    runs_as_job: bool = False  # GPU stages hand off to a job (Cloud Run / subprocess)

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if self.timeout_s <= 0:
            raise ValueError("timeout_s must be positive")


@dataclass(frozen=True)
class PipelineConfig:
    stages: dict[Stage, StagePolicy]

    def __post_init__(self) -> None:
        missing = [s.value for s in STAGES if s not in self.stages]
        if missing:
            raise ValueError(f"no policy for stages: {', '.join(missing)}")

    def __getitem__(self, stage: Stage) -> StagePolicy:
        return self.stages[stage]


def outage_backoff_s(failures: int, *, base_s: float = 0.1, max_s: float = 5.0) -> float:
    """Seconds to wait after `failures` failed tries in a row of something that must happen
    in the end (recording a job's exit while the store cannot write): doubling from base_s,
    at most max_s, so a long outage costs a try every few seconds and a short one little."""
    return min(max_s, base_s * 2.0 ** min(max(failures, 1) - 1, 32))
