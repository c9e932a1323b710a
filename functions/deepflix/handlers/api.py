"""The public HTTP API; the same handler serves embedded mode and the Cloud Function."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from werkzeug.exceptions import HTTPException
from werkzeug.exceptions import MethodNotAllowed as WzMethodNotAllowed
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response
from werkzeug.wsgi import wrap_file

from deepflix import logs
from deepflix.handlers.views import links, movie_view, position_view, summary_view
from deepflix.pipeline.errors import (
    BadRequest,
    DeepflixError,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    Unavailable,
    UnsupportedMediaType,
    ValidationFailed,
)
from deepflix.pipeline.models import MovieCreate
from deepflix.pipeline.ports import ArtifactStore
from deepflix.pipeline.service import Pipeline

log = logs.get("api")
MAX_BODY = 64 * 1024
IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,200}$")
ANONYMOUS = "anonymous"
DASHBOARD = Path(__file__).with_name("dashboard.html")
MEDIA_TYPES = {
    ".mp4": "video/mp4",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".vtt": "text/vtt",
    ".json": "application/json",
}

ROUTES = Map(
    [
        Rule("/", endpoint="dashboard", methods=["GET"]),
        Rule("/healthz", endpoint="health", methods=["GET"]),
        Rule("/api/movies", endpoint="create", methods=["POST"]),
        Rule("/api/movies", endpoint="list", methods=["GET"]),
        Rule("/api/movies/<movie_id>", endpoint="status", methods=["GET"]),
        Rule("/api/movies/<movie_id>/status", endpoint="status", methods=["GET"]),
        Rule("/api/movies/<movie_id>/cancel", endpoint="cancel", methods=["POST"]),
        Rule("/api/movies/<movie_id>/retry", endpoint="retry", methods=["POST"]),
        Rule("/api/movies/<movie_id>/artifacts/<name>", endpoint="artifact", methods=["GET"]),
        Rule("/api/queue/<job_id>/position", endpoint="position", methods=["GET"]),
        Rule("/api/queues", endpoint="queues", methods=["GET"]),
        Rule("/api/admission/pause", endpoint="pause", methods=["POST"]),
        Rule("/api/admission/resume", endpoint="resume", methods=["POST"]),
    ],
    strict_slashes=False,
)


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        json.dumps(body, separators=(",", ":")),
        status=status,
        mimetype="application/json",
        headers=headers,
    )


def error_response(err: DeepflixError) -> Response:
    headers = {}
    if isinstance(err, Unavailable):
        headers["Retry-After"] = str(err.retry_after_s)
    body = {"error": {"code": err.code, "message": err.message, "details": err.details}}
    return json_response(body, err.status, headers)


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

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        response = self.handle(Request(environ))
        return response(environ, start_response)

    def handle(self, request: Request) -> Response:
        adapter = ROUTES.bind_to_environ(request.environ)
        try:
            try:
                endpoint, args = adapter.match()
            except WzMethodNotAllowed as e:
                allowed = ", ".join(sorted(e.valid_methods or []))
                raise MethodNotAllowed(
                    f"{request.method} is not allowed here", details={"allowed": allowed}
                ) from e
            except HTTPException as e:
                raise NotFound(f"no route for {request.path}") from e
            response: Response = getattr(self, f"_{endpoint}")(request, **args)
            return response
        except DeepflixError as e:
            response = error_response(e)
            if isinstance(e, MethodNotAllowed):
                response.headers["Allow"] = e.details["allowed"]
            return response
        except Exception:
            log.exception("unhandled error on %s %s", request.method, request.path)
            return error_response(DeepflixError("internal error; it has been logged"))

    # -- endpoints -----------------------------------------------------------------------

    def _dashboard(self, request: Request) -> Response:
        return Response(DASHBOARD.read_bytes(), mimetype="text/html")

    def _health(self, request: Request) -> Response:
        counts = self.pipeline.store.counts()
        return json_response(
            {"status": "ok", "queues": {s.value: c.waiting for s, c in counts.items()}}
        )

    def _create(self, request: Request) -> Response:
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
        movie = self.pipeline.create(create, owner=ANONYMOUS, idempotency_key=key)
        position = self.pipeline.position(movie)
        view = position_view(position)
        body_out = {
            "movie_id": movie.id,
            "job_id": movie.id,
            "status": movie.status.value,
            "position": view["position"] if view else None,
            "ahead": view["ahead"] if view else None,
            "eta_seconds": view["eta_seconds"] if view else None,
            "links": links(movie.id),
        }
        return json_response(body_out, 202, {"Location": f"/api/movies/{movie.id}"})

    def _list(self, request: Request) -> Response:
        raw = request.args.get("limit", "20")
        if not raw.isdigit() or not 1 <= int(raw) <= 100:
            raise BadRequest("limit must be an integer from 1 to 100", details={"limit": raw})
        page = self.pipeline.store.list(
            owner=None, limit=int(raw), cursor=request.args.get("cursor") or None
        )
        return json_response(
            {"movies": [summary_view(m) for m in page.movies], "next_cursor": page.next_cursor}
        )

    def _status(self, request: Request, movie_id: str) -> Response:
        movie = self.pipeline.get(movie_id)
        view = movie_view(movie, self.pipeline.position(movie), self._url)
        return json_response(view)

    def _position(self, request: Request, job_id: str) -> Response:
        movie = self.pipeline.get(job_id)
        view = position_view(self.pipeline.position(movie))
        stage = movie.current_stage
        return json_response(
            {
                "job_id": movie.id,
                "status": movie.status.value,
                "current_stage": stage.value if stage else None,
                "waiting": view is not None,
                **(view or {"position": None, "ahead": None, "eta_seconds": None}),
            }
        )

    def _cancel(self, request: Request, movie_id: str) -> Response:
        movie = self.pipeline.cancel(movie_id)
        return json_response(movie_view(movie, None, self._url))

    def _retry(self, request: Request, movie_id: str) -> Response:
        movie = self.pipeline.retry(movie_id)
        return json_response(movie_view(movie, self.pipeline.position(movie), self._url), 202)

    def _artifact(self, request: Request, movie_id: str, name: str) -> Response:
        movie = self.pipeline.get(movie_id)
        path = movie.artifacts.get(name)
        if path is None or self.local_file is None:
            raise NotFound(f"movie {movie_id} has no artifact {name!r}")
        file = self.local_file(path)
        response = Response(
            wrap_file(request.environ, file.open("rb")),
            mimetype=MEDIA_TYPES.get(file.suffix, "application/octet-stream"),
            direct_passthrough=True,
        )
        response.content_length = file.stat().st_size
        return response

    def _pause(self, request: Request) -> Response:
        self.pipeline.pause_admission()
        return self._queues(request)

    def _resume(self, request: Request) -> Response:
        self.pipeline.resume_admission()
        return self._queues(request)

    def _queues(self, request: Request) -> Response:
        counts = self.pipeline.store.counts()
        observed = self.pipeline.store.mean_durations()
        body: dict[str, Any] = {
            "admission_paused": self.pipeline.store.admission_paused(),
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
        return json_response(body)

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
