"""The API's writes: one command model per write, and the port that performs them."""

from __future__ import annotations

import asyncio
from typing import Annotated, Literal, Protocol

from pydantic import BaseModel, Field, TypeAdapter

from deepflix.pipeline.models import Movie, MovieCreate, MovieStatus, Priority, Stage
from deepflix.pipeline.service import Pipeline


class CreateMovie(BaseModel):
    op: Literal["create"] = "create"
    request: MovieCreate
    owner: str
    idempotency_key: str | None = None


class CancelMovie(BaseModel):
    op: Literal["cancel"] = "cancel"
    movie_id: str


class RetryMovie(BaseModel):
    op: Literal["retry"] = "retry"
    movie_id: str


class PauseAdmission(BaseModel):
    op: Literal["pause"] = "pause"


class ResumeAdmission(BaseModel):
    op: Literal["resume"] = "resume"


class DeleteMovie(BaseModel):
    op: Literal["delete"] = "delete"
    movie_id: str


class ChangePriority(BaseModel):
    op: Literal["priority"] = "priority"
    movie_id: str
    priority: Priority


class RetryFailed(BaseModel):
    op: Literal["retry_failed"] = "retry_failed"


class Clean(BaseModel):
    op: Literal["clean"] = "clean"
    older_than_seconds: float
    statuses: list[MovieStatus]


class PauseStage(BaseModel):
    op: Literal["pause_stage"] = "pause_stage"
    stage: Stage


class ResumeStage(BaseModel):
    op: Literal["resume_stage"] = "resume_stage"
    stage: Stage


class ReplayDeadLetter(BaseModel):
    op: Literal["replay"] = "replay"
    dead_letter_id: str


Write = Annotated[
    CreateMovie
    | CancelMovie
    | RetryMovie
    | PauseAdmission
    | ResumeAdmission
    | DeleteMovie
    | ChangePriority
    | RetryFailed
    | Clean
    | PauseStage
    | ResumeStage
    | ReplayDeadLetter,
    Field(discriminator="op"),
]
# What a write answers: the movie it changed, the ids a bulk action changed, or nothing.
Outcome = Movie | list[str] | None
WRITE: TypeAdapter[Write] = TypeAdapter(Write)


def perform(pipeline: Pipeline, write: Write) -> Outcome:
    """Run a write on the pipeline, on the calling thread (it waits for the commit)."""
    match write:
        case DeleteMovie():
            pipeline.operator.delete(write.movie_id)
        case ChangePriority():
            return pipeline.operator.set_priority(write.movie_id, write.priority)
        case RetryFailed():
            return pipeline.operator.retry_failed()
        case Clean():
            return pipeline.operator.clean(
                older_than_s=write.older_than_seconds, statuses=write.statuses
            )
        case PauseStage():
            pipeline.operator.pause_stage(write.stage)
        case ResumeStage():
            pipeline.operator.resume_stage(write.stage)
        case ReplayDeadLetter():
            pipeline.operator.replay(write.dead_letter_id)
        case CreateMovie():
            return pipeline.create(
                write.request, owner=write.owner, idempotency_key=write.idempotency_key
            )
        case CancelMovie():
            return pipeline.cancel(write.movie_id)
        case RetryMovie():
            return pipeline.retry(write.movie_id)
        case PauseAdmission():
            pipeline.pause_admission()
        case ResumeAdmission():
            pipeline.resume_admission()
    return None


class Writes(Protocol):
    """Where the API's writes go: the movie a write returns, the ids a bulk action
    changed, or None (pause, resume, delete, replay)."""

    async def __call__(self, write: Write) -> Outcome: ...


class PipelineWrites:
    """Writes to the pipeline of this process, each on a worker thread: the event loop
    goes on answering while a write waits for its commit."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline

    async def __call__(self, write: Write) -> Outcome:
        return await asyncio.to_thread(perform, self.pipeline, write)
