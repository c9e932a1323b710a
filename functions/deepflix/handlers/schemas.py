"""The shapes of the API's JSON answers, for its OpenAPI document (views.py builds them)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, JsonValue

from deepflix.pipeline.models import (
    MovieCreate,
    MovieStatus,
    Priority,
    Stage,
    StageError,
    StageStatus,
)

MOVIE_ID = "3f2b8c1e9a7d4e6f8b0c2d4e6f8a0b1c"
LINKS: dict[str, JsonValue] = {
    "self": f"/api/movies/{MOVIE_ID}",
    "status": f"/api/movies/{MOVIE_ID}/status",
    "position": f"/api/queue/{MOVIE_ID}/position",
    "cancel": f"/api/movies/{MOVIE_ID}/cancel",
    "retry": f"/api/movies/{MOVIE_ID}/retry",
}
POSITION: dict[str, JsonValue] = {
    "queue": "images",
    "position": 3,
    "ahead": 2,
    "total_waiting": 5,
    "running": 2,
    "eta_seconds": 14.5,
}


class Answer(BaseModel):
    """An answer documents every field it has: a view growing one must say so here."""

    model_config = ConfigDict(extra="forbid")


class Links(Answer):
    self: str
    status: str
    position: str
    cancel: str
    retry: str


class Position(Answer):
    """Where a waiting movie is: its queue, its place (1 is next) and when it should be done."""

    queue: Stage
    position: int
    ahead: int
    total_waiting: int
    running: int
    eta_seconds: float


class StageView(Answer):
    status: StageStatus
    attempts: int
    progress: int
    started_at: datetime | None
    finished_at: datetime | None
    duration_seconds: float | None
    ready_at: datetime | None
    last_error: StageError | None


class Artifacts(Answer):
    """URLs of the movie's files, as they are made."""

    story: str | None
    images: list[str]
    video: str | None
    poster: str | None
    captions: str | None


class MovieView(Answer):
    """A movie's status: each stage's progress, attempts and errors, its files, its place."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "movie_id": MOVIE_ID,
                    "job_id": MOVIE_ID,
                    "status": "images",
                    "current_stage": "images",
                    "priority": "normal",
                    "request": {
                        "prompt": "A lighthouse keeper befriends a storm",
                        "title": None,
                        "style": "cinematic",
                        "scene_count": 6,
                        "priority": "normal",
                        "seed": None,
                    },
                    "created_at": "2026-11-29T12:00:00+00:00",
                    "updated_at": "2026-11-29T12:00:02.500000+00:00",
                    "finished_at": None,
                    "stages": {
                        "story": {
                            "status": "succeeded",
                            "attempts": 1,
                            "progress": 100,
                            "started_at": "2026-11-29T12:00:00.100000+00:00",
                            "finished_at": "2026-11-29T12:00:00.400000+00:00",
                            "duration_seconds": 0.3,
                            "ready_at": "2026-11-29T12:00:00+00:00",
                            "last_error": None,
                        },
                        "images": {
                            "status": "waiting",
                            "attempts": 0,
                            "progress": 0,
                            "started_at": None,
                            "finished_at": None,
                            "duration_seconds": None,
                            "ready_at": "2026-11-29T12:00:00.400000+00:00",
                            "last_error": None,
                        },
                        "video": {
                            "status": "pending",
                            "attempts": 0,
                            "progress": 0,
                            "started_at": None,
                            "finished_at": None,
                            "duration_seconds": None,
                            "ready_at": None,
                            "last_error": None,
                        },
                    },
                    "artifacts": {
                        "story": f"/api/movies/{MOVIE_ID}/artifacts/story.json",
                        "images": [],
                        "video": None,
                        "poster": None,
                        "captions": None,
                    },
                    "position": POSITION,
                    "eta_seconds": 14.5,
                    "error": None,
                    "links": LINKS,
                }
            ]
        },
    )

    movie_id: str
    job_id: str
    status: MovieStatus
    current_stage: Stage | None
    priority: Priority
    request: MovieCreate
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    stages: dict[Stage, StageView]
    artifacts: Artifacts
    position: Position | None
    eta_seconds: float | None
    error: StageError | None
    links: Links


class Created(Answer):
    """A movie accepted: where it waits; `Location` is its status."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "movie_id": MOVIE_ID,
                    "job_id": MOVIE_ID,
                    "status": "queued",
                    "position": 4,
                    "ahead": 3,
                    "eta_seconds": 21.0,
                    "links": LINKS,
                }
            ]
        },
    )

    movie_id: str
    job_id: str
    status: MovieStatus
    position: int | None
    ahead: int | None
    eta_seconds: float | None
    links: Links


class JobPosition(Answer):
    """A job's place in the queue it waits in; the queue fields are absent when it does not wait."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "job_id": MOVIE_ID,
                    "status": "images",
                    "current_stage": "images",
                    "waiting": True,
                    **POSITION,
                },
                {
                    "job_id": MOVIE_ID,
                    "status": "succeeded",
                    "current_stage": None,
                    "waiting": False,
                    "position": None,
                    "ahead": None,
                    "eta_seconds": None,
                },
            ]
        },
    )

    job_id: str
    status: MovieStatus
    current_stage: Stage | None
    waiting: bool
    position: int | None
    ahead: int | None
    eta_seconds: float | None
    queue: Stage | None = None
    total_waiting: int | None = None
    running: int | None = None


class MovieSummary(Answer):
    movie_id: str
    status: MovieStatus
    current_stage: Stage | None
    priority: Priority
    prompt: str
    title: str | None
    created_at: datetime
    links: Links


class MovieList(Answer):
    """A page of movies, newest first; `next_cursor` asks for the next page."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "movies": [
                        {
                            "movie_id": MOVIE_ID,
                            "status": "queued",
                            "current_stage": "story",
                            "priority": "high",
                            "prompt": "A lighthouse keeper befriends a storm",
                            "title": "Keeper",
                            "created_at": "2026-11-29T12:00:00+00:00",
                            "links": LINKS,
                        }
                    ],
                    "next_cursor": None,
                }
            ]
        },
    )

    movies: list[MovieSummary]
    next_cursor: str | None


class QueueView(Answer):
    waiting: int
    running: int
    concurrency: int
    mean_duration_seconds: float | None


class Queues(Answer):
    """Each stage queue's depth, running work and limit; whether admission is paused."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "admission_paused": False,
                    "queues": {
                        "story": {
                            "waiting": 12,
                            "running": 4,
                            "concurrency": 4,
                            "mean_duration_seconds": 0.3,
                        },
                        "images": {
                            "waiting": 3,
                            "running": 2,
                            "concurrency": 2,
                            "mean_duration_seconds": 2.8,
                        },
                        "video": {
                            "waiting": 1,
                            "running": 1,
                            "concurrency": 1,
                            "mean_duration_seconds": None,
                        },
                    },
                    "dead_letters": 0,
                }
            ]
        },
    )

    admission_paused: bool
    queues: dict[Stage, QueueView]
    dead_letters: int | None = None  # embedded mode: messages given up on


class Health(Answer):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"status": "ok", "queues": {"story": 12, "images": 3, "video": 1}}]
        },
    )

    status: Literal["ok"]
    queues: dict[Stage, int]


class ErrorBody(Answer):
    code: str
    message: str
    details: Any


class ErrorAnswer(Answer):
    """Every error: a stable `code`, a message for people, and details where they help."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "error": {
                        "code": "validation_failed",
                        "message": "the request body is not a valid movie request",
                        "details": [
                            {
                                "field": "scene_count",
                                "message": "Input should be less than or equal to 24",
                                "type": "less_than_equal",
                            }
                        ],
                    }
                }
            ]
        },
    )

    error: ErrorBody
