"""The operator's routes: filtered lists' helpers, delete, bulk actions, queue pauses,
priorities, dead letters and job logs (a mixin of the API)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from deepflix.handlers.identity import caller, visible
from deepflix.handlers.operations import OPERATIONS, Access, Param
from deepflix.handlers.operator_schemas import (
    CLEAN_REQUESTS,
    PRIORITY_REQUESTS,
    BulkResult,
    CleanRequest,
    DeadLetterList,
    PriorityChange,
    Replayed,
)
from deepflix.handlers.parsing import json_body, parse_body
from deepflix.handlers.responses import json_answer
from deepflix.handlers.schemas import MovieView, Queues
from deepflix.handlers.views import MovieViews
from deepflix.handlers.writes import (
    ChangePriority,
    Clean,
    DeleteMovie,
    ReplayDeadLetter,
    ResumeStage,
    RetryFailed,
    Write,
    Writes,
)
from deepflix.handlers.writes import PauseStage as PauseStageWrite
from deepflix.pipeline.errors import BadRequest, DeepflixError, NotFound, ValidationFailed
from deepflix.pipeline.models import STAGES, Movie, Stage
from deepflix.pipeline.operator import MovieFilter, parse_filter
from deepflix.pipeline.service import Pipeline

T = TypeVar("T")
TAIL = Param("tail", "Lines from the end of the job logs, 1-10000 (200).", {"type": "integer"})
DEAD_LIMIT = Param("limit", "Dead letters to list, 1-1000 (100).", {"type": "integer"})


FILTERS = (
    Param("status", "Only movies in this status (queued, story, ..., failed, cancelled)."),
    Param("stage", "Only movies at this stage: waiting or running there, or stopped there."),
    Param("q", "Only movies whose prompt holds this text, or whose id starts with it."),
)


def list_filter(request: Request) -> MovieFilter | None:
    """The list's filter from its query; None when it has none (a cursor carries no
    filter: a client repeats it with each page)."""
    q = request.query_params
    where = parse_filter(q.get("status") or None, q.get("stage") or None, q.get("q"))
    return None if where.empty else where


def int_param(request: Request, name: str, default: int, top: int) -> int:
    raw = request.query_params.get(name, str(default))
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= top:
        raise BadRequest(f"{name} must be an integer from 1 to {top}", details={name: raw})
    return int(raw)


def stage_param(request: Request) -> Stage:
    name = request.path_params["stage"]
    if name not in Stage.__members__:
        raise NotFound(f"no queue named {name!r}", details={"queues": [s.value for s in STAGES]})
    return Stage(name)


class OperatorApi:
    """The operator's routes, inherited by Api: its pipeline, writes and views."""

    pipeline: Pipeline
    writes: Writes
    views: MovieViews

    async def _read(self, fn: Callable[..., T], *args: Any) -> T:
        raise NotImplementedError  # the API's

    def _queues(self) -> Response:
        raise NotImplementedError  # the API's

    @OPERATIONS(
        "DELETE",
        "/api/movies/{movie_id}",
        summary="Remove a movie and its files; a waiting or running one is cancelled first.",
        status=204,
        errors=(404, 409, 503),
        access=Access.user,
    )
    async def delete_movie(self, request: Request) -> Response:
        owner, movie_id = caller(request).limited_to, request.path_params["movie_id"]
        await self.writes(DeleteMovie(movie_id=movie_id, owner=owner))
        return Response(status_code=204)

    @OPERATIONS(
        "POST",
        "/api/movies/{movie_id}/priority",
        summary="Change a waiting movie's priority: its place in its queue follows.",
        body=PriorityChange,
        examples=PRIORITY_REQUESTS,
        answer=MovieView,
        errors=(400, 404, 408, 409, 413, 415, 422, 503),
        access=Access.admin,
    )
    async def change_priority(self, request: Request) -> Response:
        change = parse_body(PriorityChange, await json_body(request))
        write = ChangePriority(movie_id=request.path_params["movie_id"], priority=change.priority)
        movie = await self.writes(write)
        if not isinstance(movie, Movie):
            raise DeepflixError("the priority write answered no movie")
        return await self._read(self._movie_view, movie)

    def _movie_view(self, movie: Movie) -> Response:
        outlook = self.pipeline.outlook(movie)
        return json_answer(self.views(movie, outlook.position, outlook.eta))

    @OPERATIONS(
        "POST",
        "/api/bulk/retry-failed",
        summary="Retry every failed movie from the stage it failed in.",
        answer=BulkResult,
        errors=(503,),
        access=Access.admin,
    )
    async def retry_failed(self, request: Request) -> Response:
        return _bulk(await self._ids(RetryFailed()))

    @OPERATIONS(
        "POST",
        "/api/bulk/clean",
        summary="Remove finished movies (and their files) finished at least N seconds ago.",
        body=CleanRequest,
        examples=CLEAN_REQUESTS,
        answer=BulkResult,
        errors=(400, 408, 413, 415, 422, 503),
        access=Access.admin,
    )
    async def clean(self, request: Request) -> Response:
        asked = parse_body(CleanRequest, await json_body(request))
        unfinished = [s.value for s in asked.statuses if not s.terminal]
        if unfinished:
            raise ValidationFailed(
                "only finished movies can be cleaned",
                details=[{"field": "statuses", "message": f"not finished: {unfinished}"}],
            )
        write = Clean(older_than_seconds=asked.older_than_seconds, statuses=asked.statuses)
        return _bulk(await self._ids(write))

    async def _ids(self, write: Write) -> list[str]:
        ids = await self.writes(write)
        if not isinstance(ids, list):
            raise DeepflixError(f"the {write.op} write answered no movie ids")
        return ids

    @OPERATIONS(
        "POST",
        "/api/queues/{stage}/pause",
        summary="Pause a stage's queue: it starts nothing new; what runs there goes on.",
        answer=Queues,
        errors=(404, 503),
        access=Access.admin,
    )
    async def pause_queue(self, request: Request) -> Response:
        await self.writes(PauseStageWrite(stage=stage_param(request)))
        return await self._read(self._queues)

    @OPERATIONS(
        "POST",
        "/api/queues/{stage}/resume",
        summary="Resume a paused stage's queue.",
        answer=Queues,
        errors=(404, 503),
        access=Access.admin,
    )
    async def resume_queue(self, request: Request) -> Response:
        await self.writes(ResumeStage(stage=stage_param(request)))
        return await self._read(self._queues)

    @OPERATIONS(
        "GET",
        "/api/dead-letters",
        summary="Messages the queue gave up delivering (embedded mode), oldest first.",
        query=(DEAD_LIMIT,),
        answer=DeadLetterList,
        errors=(400, 503),
        access=Access.admin,
    )
    def dead_letters(self, request: Request) -> Response:
        limit = int_param(request, "limit", 100, 1000)
        letters = self.pipeline.operator.dead_letters(limit)
        return json_answer(
            {
                "dead_letters": [
                    {
                        "id": d.id,
                        "topic": d.topic,
                        "movie_id": d.movie_id,
                        "stage": d.stage.value if d.stage else None,
                        "reason": d.reason,
                        "failed_at": d.failed_at.isoformat(),
                    }
                    for d in letters
                ]
            }
        )

    @OPERATIONS(
        "POST",
        "/api/dead-letters/{dead_letter_id}/replay",
        summary="Send a dead letter's message again, as new; the dead letter is forgotten.",
        status=202,
        answer=Replayed,
        errors=(404, 503),
        access=Access.admin,
    )
    async def replay_dead_letter(self, request: Request) -> Response:
        letter = request.path_params["dead_letter_id"]
        await self.writes(ReplayDeadLetter(dead_letter_id=letter))
        return json_answer({"replayed": letter}, 202)

    @OPERATIONS(
        "GET",
        "/api/movies/{movie_id}/logs",
        summary="The last lines of the movie's job logs, its attempts in order (embedded mode).",
        media_type="text/plain",
        query=(TAIL,),
        errors=(400, 404, 503),
        access=Access.user,
    )
    def job_logs(self, request: Request) -> Response:
        lines = int_param(request, "tail", 200, 10000)
        movie_id = request.path_params["movie_id"]
        visible(self.pipeline.find(movie_id), caller(request), movie_id)
        text = self.pipeline.operator.job_log_tail(movie_id, lines)
        return PlainTextResponse(text)


def _bulk(ids: list[str]) -> Response:
    return json_answer({"count": len(ids), "movie_ids": ids})
