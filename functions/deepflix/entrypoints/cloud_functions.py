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
from deepflix.handlers.cors import Cors
from deepflix.handlers.guard import RequestGuard
from deepflix.handlers.internal_auth import InternalCallers
from deepflix.handlers.stage_requests import handle_push
from deepflix.handlers.task_requests import handle_task
from deepflix.handlers.writes import PipelineWrites
from deepflix.metering import METER
from deepflix.pipeline.models import Stage
from deepflix.runtime import auth
from deepflix.runtime.compose import CloudRuntime, build, export_traces
from deepflix.runtime.edge import internal_callers
from deepflix.runtime.embedded import EmbeddedRuntime
from deepflix.settings import get_settings

P = ParamSpec("P")
R = TypeVar("R")
_lock = threading.Lock()
_service: EmbeddedRuntime | CloudRuntime | None = None
_app: Starlette | None = None
_callers: InternalCallers | None = None


def service() -> EmbeddedRuntime | CloudRuntime:
    """Built on the first request of an instance, once: nothing runs at import time."""
    global _service, _app, _callers
    with _lock:
        if _service is None:
            settings = get_settings()
            logs.setup(settings.log_level, settings.gcp_project)
            export_traces(settings)
            _callers = internal_callers(settings)
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
                auth=auth.of_service(settings, _service),
                local_file=_service.local_file,
                read_in_threads=True,  # a Firestore read waits on the network
                quotas=settings.quotas(),
                cors=Cors.configured(settings.allowed_origins),
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
    assert _app is not None  # nosec B101 # an invariant, not a check of input
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


def _json(body: Any, status: int, headers: dict[str, str]) -> flask.Response:
    return flask.Response(orjson.dumps(body), status, headers, mimetype="application/json")


def _refused(request: flask.Request) -> flask.Response | None:
    """401/403 unless the caller's ID token is one the internal endpoints accept."""
    service()
    refused = _callers.refusal(request.headers.get("Authorization")) if _callers else None
    return None if refused is None else _json(refused.body(), refused.status, refused.headers())


@functions_framework.http
@_metered("tasks")
def tasks(request: flask.Request) -> flask.Response:
    """Cloud Tasks (and Cloud Scheduler) target: `/dispatch`, `/deadlines`, `/sweep`, ..."""
    refused = _refused(request)
    if refused is not None:
        return refused
    svc = service()
    body: Any = request.get_json(silent=True) or {}
    # The task carries the trace of the work that enqueued it (the movie's, for its own).
    with tracing.start(f"tasks {request.path}", tracing.from_headers(dict(request.headers))):
        answer = handle_task(request.path, body, pipeline=svc.pipeline, prune=svc.prune)
    return _json(answer.body, answer.status, answer.headers)


def _stage_push(stage: Stage, request: flask.Request) -> flask.Response:
    """A push subscription's request (or a CloudEvent carrying one): HTTP, so that its
    token can be checked; an outage raises, and the 500 makes Pub/Sub deliver again."""
    refused = _refused(request)
    if refused is not None:
        return refused
    envelope: Any = request.get_json(force=True, silent=True)
    handle_push(stage, envelope, lambda data: service().runner.handle(data))
    return flask.Response(status=204)


@functions_framework.http
@_metered("story_requested")
def story_requested(request: flask.Request) -> flask.Response:
    """Pub/Sub `story.requested`: writes the story in this function."""
    return _stage_push(Stage.story, request)


@functions_framework.http
@_metered("images_requested")
def images_requested(request: flask.Request) -> flask.Response:
    """Pub/Sub `images.requested`: starts the images job (Cloud Run, or a local process)."""
    return _stage_push(Stage.images, request)


@functions_framework.http
@_metered("video_requested")
def video_requested(request: flask.Request) -> flask.Response:
    """Pub/Sub `video.requested`: starts the video job (Cloud Run, or a local process)."""
    return _stage_push(Stage.video, request)
