"""Cloud Function handlers: thin adapters from functions-framework to the service."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

import flask
import functions_framework
from pydantic import ValidationError
from werkzeug.wrappers import Response

from deepflix import logs
from deepflix.handlers.api import Api
from deepflix.handlers.responses import json_response
from deepflix.metering import METER
from deepflix.pipeline.errors import BadRequest, Unavailable
from deepflix.pipeline.models import Stage
from deepflix.runtime.compose import CloudRuntime, build
from deepflix.runtime.embedded import EmbeddedRuntime
from deepflix.settings import get_settings
from deepflix.stages.runner import StageRequest

log = logs.get("functions")
P = ParamSpec("P")
R = TypeVar("R")
_lock = threading.Lock()
_service: EmbeddedRuntime | CloudRuntime | None = None
_api: Api | None = None


def service() -> EmbeddedRuntime | CloudRuntime:
    """Built on the first request of an instance, once: nothing runs at import time."""
    global _service, _api
    with _lock:
        if _service is None:
            settings = get_settings()
            logs.setup(settings.log_level)
            _service = build(settings)
            _service.start()
            _api = Api(
                pipeline=_service.pipeline,
                artifacts=_service.artifacts,
                local_file=_service.local_file,
            )
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


@functions_framework.http
@_metered("api")
def api(request: flask.Request) -> Response:
    """The public HTTP API (`POST /api/movies`, status, position, cancel, retry, ...)."""
    service()
    assert _api is not None
    return _api.handle(request)


@functions_framework.http
@_metered("tasks")
def tasks(request: flask.Request) -> Response:
    """Cloud Tasks (and Cloud Scheduler) target: `/dispatch`, `/deadline`, `/sweep`.

    A malformed task is acknowledged (2xx) after logging: redelivery cannot fix it. An
    outage answers 503 so Cloud Tasks retries with the queue's backoff.
    """
    svc = service()
    pipeline = svc.pipeline
    kind = request.path.rstrip("/").rsplit("/", 1)[-1]
    body: Any = request.get_json(silent=True) or {}
    try:
        if kind == "dispatch":
            pipeline.dispatch(Stage(body["stage"]))
        elif kind == "deadline":
            pipeline.check_deadline(body["movie_id"], Stage(body["stage"]), int(body["attempt"]))
        elif kind == "sweep":
            pipeline.sweep()
            svc.prune()  # emptied queue buckets, which would lengthen position sums
        else:
            raise KeyError(kind)
    except (KeyError, ValueError, TypeError) as e:
        log.error("dropping malformed task %s: %r (%s)", kind, body, e)
        return json_response({"dropped": True}, 200)
    except Unavailable as e:
        log.warning("task %s deferred: %s", kind, e.message)
        return json_response({"error": e.message}, 503, {"Retry-After": str(e.retry_after_s)})
    return json_response({"ok": True}, 200)


def _stage_event(stage: Stage, event: Any) -> None:
    from deepflix.adapters.gcp.pubsub import parse_push

    try:
        data, attributes = parse_push(event.data)
        request = StageRequest.model_validate(data)
        if request.stage is not stage:
            raise BadRequest(f"a {request.stage.value} request reached the {stage.value} function")
    except (BadRequest, ValidationError) as e:
        # Acknowledge: a message that cannot be parsed will not parse on redelivery either.
        log.error("dropping malformed %s message: %s", stage.value, e)
        return
    extra = {"movie_id": request.movie_id, "stage": stage.value, "attempt": request.attempt}
    log.info("stage request received", extra={**extra, "trace": attributes.get("trace")})
    # Raising (an outage) answers non-2xx, so Pub/Sub delivers the message again.
    service().runner.handle(data)


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
