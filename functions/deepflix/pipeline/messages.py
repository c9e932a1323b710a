"""The bodies of the stage requests and tasks the pipeline sends, as their receivers parse them."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from deepflix.pipeline.models import Stage


class StageRequest(BaseModel):
    """Body of a `<stage>.requested` message."""

    model_config = ConfigDict(extra="ignore")

    movie_id: str
    stage: Stage
    attempt: int
    # The sender left this request and the attempt's deadline check in the movie's outbox
    # for the job start's claim to take out (pipeline/outbox.py, receipts).
    settle: bool = False


class DispatchTask(BaseModel):
    """Body of a `dispatch` task: fill the stage's free slots."""

    model_config = ConfigDict(extra="ignore")

    stage: Stage


class DeadlineTask(BaseModel):
    """Body of a `deadline` task: time the attempt out if it is still running."""

    model_config = ConfigDict(extra="ignore")

    movie_id: str
    stage: Stage
    attempt: int


class WebhookTask(BaseModel):
    """Body of a `webhook` task: make the attempt, unless it was made already."""

    model_config = ConfigDict(extra="ignore")

    movie_id: str
    attempt: int
