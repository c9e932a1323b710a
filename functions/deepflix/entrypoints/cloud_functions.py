"""The Cloud Functions: each hands its request to a handler, on a service built at first use."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

import flask
import functions_framework
import orjson
from functions_framework import aio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from deepflix import logs, tracing
from deepflix.handlers.api import Api
from deepflix.handlers.guard import RequestGuard
from deepflix.handlers.stage_requests import handle_push
from deepflix.handlers.task_requests import handle_task
from deepflix.handlers.writes import PipelineWrites
from deepflix.metering import METER
from deepflix.pipeline.models import Stage
from deepflix.runtime.compose import CloudRuntime, build, export_traces
from deepflix.runtime.embedded import EmbeddedRuntime
from deepflix.settings import get_settings

P = ParamSpec("P")
R = TypeVar("R")
_lock = threading.Lock()
_service: EmbeddedRuntime | CloudRuntime | None = None
_app: Starlette | None = None


def service() -> EmbeddedRuntime | CloudRuntime:
    """Built on the first request of an instance, once: nothing runs at import time."""
    global _service, _app
    with _lock:
        if _service is None:
            settings = get_settings()
            logs.setup(settings.log_level, settings.gcp_project)
            export_traces(settings)
            _service = build(settings)
            _service.start()
            _app = Api(
                pipeline=_service.pipeline,
                writes=PipelineWrites(_service.pipeline),
                artifacts=_service.artifacts,
                # The platform's own host names answer unless DEEPFLIX_ALLOWED_HOSTS is set;
                # writes are checked as everywhere.
                guard=RequestGuard.configured(
                    allowed_hosts=settings.allowed_hosts,
                    allowed_origins=settings.allowed_origins,
                ),
                local_file=_service.local_file,
                read_in_threads=True,  # a Firestore read waits on the network
            ).app()
        return _service


def _metered(name: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Counts each invocation and flushes this process's counters when DEEPFLIX_OPS_DIR is set."""

    def wrap(fn: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(fn)
        def inner(*args: P.args, **kwargs: P.kwargs) -> R:
            METER.add(f"invocations.{name}")
            try:
                return fn(*args, **kwargs)
            finally:
                METER.flush(get_settings().ops_dir)

        return inner

    return wrap


@aio.http
async def api(request: Request) -> Response:
    """The public HTTP API (`POST /api/movies`, status, position, cancel, retry, ...): the
    same ASGI app as `deepflix serve`'s, under functions-framework's."""
    METER.add("invocations.api")
    service()
    assert _app is not None
    return _AnsweredBy(_app)


class _AnsweredBy(Response):
    """The api function's answer: functions-framework sends a function's Response by
    calling it as an ASGI app, and this one hands the request on to the API's own app."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        # The caller's trace: the request's log lines, and the movie it creates, join it.
        try:
            with tracing.start(f"{scope['method']} {scope['path']}", tracing.from_headers(headers)):
                await self.app(scope, receive, send)
        finally:
            METER.flush(get_settings().ops_dir)


@functions_framework.http
@_metered("tasks")
def tasks(request: flask.Request) -> flask.Response:
    """Cloud Tasks (and Cloud Scheduler) target: `/dispatch`, `/deadline`, `/sweep`."""
    svc = service()
    body: Any = request.get_json(silent=True) or {}
    # The task carries the trace of the work that enqueued it (the movie's, for its own).
    with tracing.start(f"tasks {request.path}", tracing.from_headers(dict(request.headers))):
        answer = handle_task(request.path, body, pipeline=svc.pipeline, prune=svc.prune)
    return flask.Response(
        orjson.dumps(answer.body),
        answer.status,
        answer.headers,
        mimetype="application/json",
    )


def _stage_event(stage: Stage, event: Any) -> None:
    runner = service().runner  # first: it sets up the logs the handler writes to
    handle_push(stage, event.data, runner.handle)


@functions_framework.cloud_event
@_metered("story_requested")
def story_requested(event: Any) -> None:
    """Pub/Sub `story.requested`: writes the story in this function."""
    _stage_event(Stage.story, event)


@functions_framework.cloud_event
@_metered("images_requested")
def images_requested(event: Any) -> None:
    """Pub/Sub `images.requested`: starts the images job (Cloud Run, or a local process)."""
    _stage_event(Stage.images, event)


@functions_framework.cloud_event
@_metered("video_requested")
def video_requested(event: Any) -> None:
    """Pub/Sub `video.requested`: starts the video job (Cloud Run, or a local process)."""
    _stage_event(Stage.video, event)
