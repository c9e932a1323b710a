"""Test data factories for movies and requests."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from deepflix.pipeline.models import STAGES, Movie, MovieCreate, Stage, StageState, StageStatus
from deepflix.pipeline.policy import PipelineConfig
from deepflix.settings import Settings

T0 = datetime(2026, 11, 29, 12, 0, 0, tzinfo=UTC)
_ids = itertools.count(1)


def service_config() -> PipelineConfig:
    """The pipeline config the service runs with when no setting is given.

    Built from the settings' defaults alone (model_construct reads no environment): test
    modules build it at import, before each test's environment is isolated.
    """
    return Settings.model_construct().pipeline_config()


CONFIG = service_config()


def request(**overrides: Any) -> MovieCreate:
    fields: dict[str, Any] = {"prompt": "A lighthouse keeper befriends a storm", "scene_count": 3}
    fields.update(overrides)
    return MovieCreate.model_validate(fields)


def movie(*, at: datetime = T0, seconds: float = 0.0, **overrides: Any) -> Movie:
    """A freshly created movie, waiting in the story queue."""
    created = at + timedelta(seconds=seconds)
    stages = {s: StageState() for s in STAGES}
    stages[Stage.story] = StageState(status=StageStatus.waiting, ready_at=created)
    return Movie(
        id=f"{next(_ids):08x}" + "0" * 24,
        owner="tester",
        request=request(**overrides),
        created_at=created,
        updated_at=created,
        stages=stages,
    )
