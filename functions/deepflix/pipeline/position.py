"""Queue position and ETA: how long until a waiting movie is done, from observed durations."""

from __future__ import annotations

from dataclasses import dataclass

from deepflix.pipeline.models import STAGES, Stage
from deepflix.pipeline.policy import PipelineConfig


@dataclass(frozen=True)
class QueuePosition:
    stage: Stage
    ahead: int  # movies that will be dispatched before this one in the same stage queue
    total_waiting: int
    running: int
    eta_s: float  # seconds until the whole movie is expected to finish

    @property
    def position(self) -> int:
        """1-based place in the queue: 1 means next to be dispatched."""
        return self.ahead + 1


def stage_seconds(stage: Stage, config: PipelineConfig, observed: dict[Stage, float]) -> float:
    return observed.get(stage, config[stage].expected_s)


def estimate_eta(
    stage: Stage,
    *,
    ahead: int,
    running: int,
    config: PipelineConfig,
    observed: dict[Stage, float],
) -> float:
    """Waiting rounds in this stage at its concurrency limit, then this and later stages' runs.

    Movies ahead start as slots free up: with `c` slots, `running` busy and `ahead` queued,
    this movie starts once `running + ahead - c + 1` runs have finished, about one stage
    duration per `c` of them. Later stages are assumed to have room (their own queues are
    not forecast; a movie's ETA is refreshed as it advances).
    """
    limit = config[stage].concurrency
    d = stage_seconds(stage, config, observed)
    must_finish = running + ahead - limit + 1
    wait = 0.0 if must_finish <= 0 else -(-must_finish // limit) * d
    later = STAGES[STAGES.index(stage) :]
    return wait + sum(stage_seconds(s, config, observed) for s in later)
