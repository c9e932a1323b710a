"""The public HTTP API; the same handler serves embedded mode and the Cloud Function."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from werkzeug.wrappers import Request, Response

from deepflix.handlers.responses import (
    Answer,
    FileReply,
    MethodNotAllowed,
    PayloadTooLarge,
    Reply,
    UnsupportedMediaType,
    failure,
    json_reply,
)
from deepflix.handlers.routing import NoRoute, Router, WrongMethod
from deepflix.handlers.views import MovieViews, links, position_view, summary_view
from deepflix.pipeline.errors import BadRequest, NotFound, ValidationFailed
from deepflix.pipeline.models import Movie, MovieCreate
from deepflix.pipeline.ports import ArtifactStore
from deepflix.pipeline.service import Pipeline

MAX_BODY = 64 * 1024
IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,200}$")
ANONYMOUS = "anonymous"
DASHBOARD = Path(__file__).with_name("dashboard.html")
ROUTES = Router(
    [
        ("GET", "/", "dashboard"),
        ("GET", "/healthz", "health"),
        ("POST", "/api/movies", "create"),
        ("GET", "/api/movies", "list"),
        ("GET", "/api/movies/<movie_id>", "status"),
        ("GET", "/api/movies/<movie_id>/status", "status"),
        ("POST", "/api/movies/<movie_id>/cancel", "cancel"),
        ("POST", "/api/movies/<movie_id>/retry", "retry"),
        ("GET", "/api/movies/<movie_id>/artifacts/<name>", "artifact"),
        ("GET", "/api/queue/<job_id>/position", "position"),
        ("GET", "/api/queues", "queues"),
        ("POST", "/api/admission/pause", "pause"),
        ("POST", "/api/admission/resume", "resume"),
    ]
)


class Api:
    def __init__(
        self,
        *,
        pipeline: Pipeline,
        artifacts: ArtifactStore,
        local_file: Callable[[str], Path] | None = None,
        extra_metrics: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.artifacts = artifacts
        self.local_file = local_file
        self.extra_metrics = extra_metrics
        self.views = MovieViews(self._url)

    def handle(self, request: Request) -> Response:
        """For callers that want a werkzeug Response (the Cloud Function)."""
        answer = self.answer(request)
        if isinstance(answer, FileReply):
            return answer.to_response(request.environ)
        return answer if isinstance(answer, Response) else answer.to_response()

    def answer(self, request: Request) -> Answer:
        try:
            endpoint, args = self.route(request)
            return self.call(endpoint, request, args)
        except Exception as e:
            return failure(request, e)

    def call(self, endpoint: str, request: Request, args: dict[str, str]) -> Answer:
        answer: Answer = getattr(self, f"_{endpoint}")(request, **args)
        return answer

    def route(self, request: Request) -> tuple[str, dict[str, str]]:
        try:
            return ROUTES.match(request.method, request.path)
        except WrongMethod as e:
            raise MethodNotAllowed(
                f"{request.method} is not allowed here", details={"allowed": str(e)}
            ) from e
        except NoRoute as e:
            raise NotFound(f"no route for {request.path}") from e

    # -- endpoints -----------------------------------------------------------------------

    def _dashboard(self, request: Request) -> Response:
        return Response(DASHBOARD.read_bytes(), mimetype="text/html")

    def _health(self, request: Request) -> Reply:
        counts = self.pipeline.counts()
        return json_reply(
            {"status": "ok", "queues": {s.value: c.waiting for s, c in counts.items()}}
        )

    def _create(self, request: Request) -> Reply:
        create, key = self.create_args(request)
        return self.created(self.pipeline.create(create, owner=ANONYMOUS, idempotency_key=key))

    def create_args(self, request: Request) -> tuple[MovieCreate, str | None]:
        """The movie request and its Idempotency-Key, or the client's error."""
        body = _read_json(request)
        try:
            create = MovieCreate.model_validate_json(body)
        except ValidationError as e:
            raise ValidationFailed(
                "the request body is not a valid movie request", details=_errors(e)
            ) from e
        key = request.headers.get("Idempotency-Key")
        if key is not None and not IDEMPOTENCY_KEY.match(key):
            raise BadRequest("Idempotency-Key must be 1-200 printable ASCII characters")
        return create, key

    def created(self, movie: Movie) -> Reply:
        view = position_view(self.pipeline.position(movie))
        body_out = {
            "movie_id": movie.id,
            "job_id": movie.id,
            "status": movie.status.value,
            "position": view["position"] if view else None,
            "ahead": view["ahead"] if view else None,
            "eta_seconds": view["eta_seconds"] if view else None,
            "links": links(movie.id),
        }
        return json_reply(body_out, 202, (("Location", f"/api/movies/{movie.id}"),))

    def _list(self, request: Request) -> Reply:
        raw = request.args.get("limit", "20")
        if not raw.isdigit() or not 1 <= int(raw) <= 100:
            raise BadRequest("limit must be an integer from 1 to 100", details={"limit": raw})
        page = self.pipeline.list_movies(
            owner=None, limit=int(raw), cursor=request.args.get("cursor") or None
        )
        return json_reply(
            {"movies": [summary_view(m) for m in page.movies], "next_cursor": page.next_cursor}
        )

    def _status(self, request: Request, movie_id: str) -> Reply:
        movie = self.pipeline.get(movie_id)
        return json_reply(self.views(movie, self.pipeline.position(movie)))

    def _position(self, request: Request, job_id: str) -> Reply:
        movie = self.pipeline.get(job_id)
        view = position_view(self.pipeline.position(movie))
        stage = movie.current_stage
        return json_reply(
            {
                "job_id": movie.id,
                "status": movie.status.value,
                "current_stage": stage.value if stage else None,
                "waiting": view is not None,
                **(view or {"position": None, "ahead": None, "eta_seconds": None}),
            }
        )

    def _cancel(self, request: Request, movie_id: str) -> Reply:
        return self.cancelled(self.pipeline.cancel(movie_id))

    def cancelled(self, movie: Movie) -> Reply:
        return json_reply(self.views(movie, None))

    def _retry(self, request: Request, movie_id: str) -> Reply:
        return self.retried(self.pipeline.retry(movie_id))

    def retried(self, movie: Movie) -> Reply:
        return json_reply(self.views(movie, self.pipeline.position(movie)), 202)

    def _artifact(self, request: Request, movie_id: str, name: str) -> FileReply:
        movie = self.pipeline.get(movie_id)
        path = movie.artifacts.get(name)
        if path is None or self.local_file is None:
            raise NotFound(f"movie {movie_id} has no artifact {name!r}")
        return FileReply(self.local_file(path))

    def _pause(self, request: Request) -> Reply:
        self.pipeline.pause_admission()
        return self.queues()

    def _resume(self, request: Request) -> Reply:
        self.pipeline.resume_admission()
        return self.queues()

    def _queues(self, request: Request) -> Reply:
        return self.queues()

    def queues(self) -> Reply:
        counts = self.pipeline.counts()
        observed = self.pipeline.mean_durations()
        body: dict[str, Any] = {
            "admission_paused": self.pipeline.admission_paused(),
            "queues": {
                s.value: {
                    "waiting": c.waiting,
                    "running": c.running,
                    "concurrency": self.pipeline.config[s].concurrency,
                    "mean_duration_seconds": observed.get(s),
                }
                for s, c in counts.items()
            },
        }
        if self.extra_metrics is not None:
            body |= self.extra_metrics()
        return json_reply(body)

    def _url(self, path: str) -> str:
        return self.artifacts.url(path)


def _read_json(request: Request) -> bytes:
    if request.mimetype != "application/json":
        raise UnsupportedMediaType(
            "send the request body as application/json",
            details={"content_type": request.content_type},
        )
    length = request.content_length
    if length is not None and length > MAX_BODY:
        raise PayloadTooLarge(f"the request body is over {MAX_BODY} bytes")
    body = request.stream.read(MAX_BODY + 1)
    if len(body) > MAX_BODY:
        raise PayloadTooLarge(f"the request body is over {MAX_BODY} bytes")
    try:
        json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise BadRequest("the request body is not valid JSON", details={"reason": str(e)}) from e
    except RecursionError as e:  # the decoder recurses per nesting level
        raise BadRequest("the request body is nested too deeply") from e
    return body


def _errors(e: ValidationError) -> list[dict[str, Any]]:
    return [
        {"field": ".".join(str(p) for p in err["loc"]), "message": err["msg"], "type": err["type"]}
        for err in e.errors(include_url=False, include_context=False, include_input=False)
    ]
