"""The public HTTP API: one async app for `deepflix serve`'s API process and the Cloud Function."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from deepflix.handlers import dashboard, examples, openapi
from deepflix.handlers.admission import longest_wait
from deepflix.handlers.admission_routes import AdmissionRoutes
from deepflix.handlers.cors import Cors, CorsMiddleware
from deepflix.handlers.guard import Guarded, RequestGuard
from deepflix.handlers.identity import OWNER, Authenticator, caller, listed_owner, visible
from deepflix.handlers.live import ChangeSource
from deepflix.handlers.live_routes import LiveRoutes
from deepflix.handlers.metrics import MetricsRoutes
from deepflix.handlers.operations import OPERATIONS as OPERATIONS  # the routes of every module
from deepflix.handlers.operations import Access, Operation, Param
from deepflix.handlers.operator_api import FILTERS, OperatorApi, list_filter
from deepflix.handlers.parsing import (
    ForgiveTrailingSlash,
    idempotency_key,
    json_body,
    movie_request,
)
from deepflix.handlers.responses import (
    MethodNotAllowed,
    error_answer,
    failure,
    file_answer,
    http_status,
    json_answer,
)
from deepflix.handlers.schemas import (
    Created,
    Health,
    JobPosition,
    MovieList,
    MovieView,
)
from deepflix.handlers.views import (
    MovieViews,
    artifact_link,
    eta_view,
    links,
    position_view,
    summary_view,
)
from deepflix.handlers.writes import (
    CancelMovie,
    CreateMovie,
    RetryMovie,
    Write,
    Writes,
)
from deepflix.pipeline.errors import BadRequest, DeepflixError, NotFound, Unavailable
from deepflix.pipeline.figures import ServiceFigures
from deepflix.pipeline.models import Movie, MovieCreate
from deepflix.pipeline.ports import ArtifactStore
from deepflix.pipeline.quotas import Quotas
from deepflix.pipeline.service import Pipeline, utcnow

NO_QUOTAS = Quotas()
T = TypeVar("T")

IDEMPOTENCY = Param(
    "Idempotency-Key",
    "1-200 printable ASCII characters: a repeated request with the same key and body "
    "returns the first one's movie instead of making another.",
)
LIMIT = Param("limit", "Movies per page, 1-100 (20).", {"type": "integer"})
RANGE = Param(
    "Range",
    "One byte range (`bytes=0-1023`, `bytes=1024-`, `bytes=-500`): answered 206 with "
    "`Content-Range`; one that starts past the end, 416; several, the whole file.",
)
CURSOR = Param("cursor", "The `next_cursor` of the page before.")


class Api(AdmissionRoutes, OperatorApi, LiveRoutes, MetricsRoutes):
    """The public HTTP API. It owns the routes (each operation declared once, below, with
    its models), request parsing and the JSON answers; the service behind it does the work.

    Reads call `pipeline`; writes go through `writes`: the pipeline of this process, or the
    write channel to the runtime's. Reads run on the event loop, as a local SQLite read is
    cheaper than a thread hand-off (docs/decisions/0009); `read_in_threads` moves them off
    it where they wait on the network (Firestore). `guard` refuses, before any route, a
    Host it does not serve and a write another site's page could have sent. `auth` names
    the caller of every operation that is not public (handlers/identity.py).
    """

    def __init__(
        self,
        *,
        pipeline: Pipeline,
        writes: Writes,
        artifacts: ArtifactStore,
        guard: RequestGuard,
        auth: Authenticator,
        local_file: Callable[[str], Path] | None = None,
        extra_metrics: Callable[[], dict[str, Any]] | None = None,
        read_in_threads: bool = False,
        runtime_health: Callable[[], dict[str, Any]] | None = None,
        changes: ChangeSource | None = None,
        figures: Callable[[], ServiceFigures] | None = None,
        quotas: Quotas = NO_QUOTAS,
        cors: Cors | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.writes = writes
        self.artifacts = artifacts
        self.guard = guard
        self.auth = auth
        self.local_file = local_file
        self.extra_metrics = extra_metrics
        self.read_in_threads = read_in_threads
        # The runtime's verdict, where it runs beside this API: {"status": "ok" or
        # "degraded", ...what it found}; "degraded" answers 503.
        self.runtime_health = runtime_health
        self.views = MovieViews(artifact_link, logs_url=pipeline.operator.logs_url)
        # What the live streams learn changes from: the store's change sequence, or else
        # a poll of the newest movies (handlers/live.py).
        self.changes = changes
        self.figures = figures  # the stage figures behind /metrics, where the store has them
        self.quotas = quotas  # checked before a create (429 rate_limited)
        self.cors = cors or Cors(frozenset())
        self._document: bytes | None = None

    def app(self) -> Starlette:
        """The ASGI application: a route per path, each answering its declared methods."""
        routes = [
            Route(path, self._endpoint(ops), methods=list(ops))
            for path, ops in OPERATIONS.by_path().items()
        ]
        app = Starlette(
            routes=routes,
            exception_handlers={HTTPException: self._routing_error},
        )
        app.router.redirect_slashes = False  # a trailing slash is forgiven below instead
        app.add_middleware(ForgiveTrailingSlash)
        app.add_middleware(CorsMiddleware, cors=self.cors)
        app.add_middleware(Guarded, guard=self.guard)  # added last: the outermost
        return app

    def _endpoint(self, ops: dict[str, Operation]) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            op = ops.get(request.method) or ops["GET"]  # HEAD: the GET without its body
            try:
                if op.access is not Access.public:
                    header = request.headers.get("authorization")
                    request.state.principal = await self._read(self.auth.admit, op.access, header)
                if op.is_async:
                    answer: Response = await op.handler(self, request)
                    return answer
                return await self._read(op.handler, self, request)
            except Exception as e:
                return failure(request, e)

        return endpoint

    async def _read(self, fn: Callable[..., T], *args: Any) -> T:
        if self.read_in_threads:
            return await asyncio.to_thread(fn, *args)
        return fn(*args)

    async def _routing_error(self, request: Request, exc: Exception) -> Response:
        if isinstance(exc, HTTPException) and exc.status_code == 405:
            allowed = ", ".join(sorted((exc.headers or {})["Allow"].split(", ")))
            message = f"{request.method} is not allowed here"
            return error_answer(MethodNotAllowed(message, details={"allowed": allowed}))
        return error_answer(NotFound(f"no route for {request.url.path}"))

    # -- operations --------------------------------------------------------------------------

    @OPERATIONS(
        "GET", "/", summary="The dashboard page.", media_type="text/html", access=Access.public
    )
    def dashboard(self, request: Request) -> Response:
        return HTMLResponse(dashboard.page())

    @OPERATIONS(
        "GET", "/openapi.json", summary="This API's OpenAPI document.", access=Access.public
    )
    def openapi(self, request: Request) -> Response:
        if self._document is None:
            doc = openapi.document(OPERATIONS, title="DeepFlix Queue Service", version="1")
            self._document = orjson.dumps(doc)
        return Response(self._document, media_type="application/json")

    @OPERATIONS(
        "GET",
        "/healthz",
        summary="Liveness, with each queue's depth; 503 while the service is degraded.",
        answer=Health,
        errors=(503,),
        access=Access.public,
    )
    def health(self, request: Request) -> Response:
        counts = self.pipeline.counts()
        body: dict[str, Any] = {
            "status": "ok",
            "admission_paused": self.pipeline.admission_paused(),
            "queues": {s.value: c.waiting for s, c in counts.items()},
        }
        if self.runtime_health is not None:
            body |= self.runtime_health()
        if body["status"] == "ok":
            return json_answer(body)
        # A 503 like any other: with the error envelope, for clients that read only that.
        down = Unavailable("; ".join(body.get("problems") or ["the service is degraded"]))
        body["error"] = {"code": down.code, "message": down.message, "details": None}
        return json_answer(body, http_status(down), {"Retry-After": str(down.retry_after_s)})

    @OPERATIONS(
        "POST",
        "/api/movies",
        summary="Ask for a movie: answers at once with its id and place in the queue.",
        status=202,
        body=MovieCreate,
        examples=examples.CREATE_REQUESTS,
        headers=(IDEMPOTENCY,),
        answer=Created,
        answer_headers={"Location": "The movie's status."},
        errors=(400, 408, 409, 413, 415, 422, 429, 503),
    )
    async def create(self, request: Request) -> Response:
        create = movie_request(await json_body(request))
        key = idempotency_key(request)
        write = CreateMovie(request=create, owner=caller(request).owner, idempotency_key=key)
        if self.quotas.enabled:
            await self._read(self.quotas.check, self.pipeline.store, write.owner, utcnow())
        return await self._read(self._created, await self._write(write))

    def _created(self, movie: Movie) -> Response:
        outlook = self.pipeline.outlook(movie, created=True)
        view = position_view(outlook.position)
        paused = outlook.held
        body_out = {
            "movie_id": movie.id,
            "job_id": movie.id,
            "status": movie.status.value,
            "position": view["position"] if view else None,
            "ahead": view["ahead"] if view else None,
            # Frozen while admission is paused: none, and `eta` says why.
            "eta_seconds": view["eta_seconds"] if view and not paused else None,
            **eta_view(outlook.eta),
            "admission_paused": paused,
            "longest_wait": longest_wait(outlook),
            "links": links(movie.id),
        }
        return json_answer(body_out, 202, {"Location": f"/api/movies/{movie.id}"})

    @OPERATIONS(
        "GET",
        "/api/movies",
        summary="The caller's movies (operators: any owner's), newest first, a page at a time.",
        query=(LIMIT, CURSOR, OWNER, *FILTERS),
        answer=MovieList,
        errors=(400, 403, 503),
    )
    def list_movies(self, request: Request) -> Response:
        raw = request.query_params.get("limit", "20")
        if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= 100:
            raise BadRequest("limit must be an integer from 1 to 100", details={"limit": raw})
        owner = listed_owner(caller(request), request.query_params.get("owner"))
        page = self.pipeline.list_movies(
            owner=owner,
            limit=int(raw),
            cursor=request.query_params.get("cursor") or None,
            where=list_filter(request),
        )
        return json_answer(
            {"movies": [summary_view(m) for m in page.movies], "next_cursor": page.next_cursor}
        )

    @OPERATIONS(
        "GET",
        "/api/movies/{movie_id}",
        summary="A movie's status (as /status).",
        name="movie",
        answer=MovieView,
        errors=(404, 503),
    )
    @OPERATIONS(
        "GET",
        "/api/movies/{movie_id}/status",
        summary="A movie's status: stages, progress, attempts, errors, files, place, ETA.",
        answer=MovieView,
        errors=(404, 503),
    )
    def status(self, request: Request) -> Response:
        movie = self._movie(request, request.path_params["movie_id"])
        outlook = self.pipeline.outlook(movie)
        view = self.views(movie, outlook.position, outlook.eta)
        if outlook.held:
            view["admission_paused"] = True
            view["eta_seconds"] = None
        return json_answer(view)

    @OPERATIONS(
        "POST",
        "/api/movies/{movie_id}/cancel",
        summary="Cancel a movie, waiting or running.",
        answer=MovieView,
        errors=(404, 409, 503),
    )
    async def cancel(self, request: Request) -> Response:
        owner, movie_id = caller(request).limited_to, request.path_params["movie_id"]
        movie = await self._write(CancelMovie(movie_id=movie_id, owner=owner))
        return json_answer(self.views(movie, None))

    @OPERATIONS(
        "POST",
        "/api/movies/{movie_id}/retry",
        summary="Retry a failed or cancelled movie from the stage it stopped in.",
        status=202,
        answer=MovieView,
        errors=(404, 409, 503),
    )
    async def retry(self, request: Request) -> Response:
        owner, movie_id = caller(request).limited_to, request.path_params["movie_id"]
        movie = await self._write(RetryMovie(movie_id=movie_id, owner=owner))
        return await self._read(self._retried, movie)

    def _retried(self, movie: Movie) -> Response:
        outlook = self.pipeline.outlook(movie)
        return json_answer(self.views(movie, outlook.position, outlook.eta), 202)

    @OPERATIONS(
        "GET",
        "/api/movies/{movie_id}/artifacts/{name}",
        summary="One of a movie's files: the file itself (embedded), or in the cloud a 307 "
        "redirect to a signed URL that lives 15 minutes, signed for this request.",
        media_type="application/octet-stream",
        headers=(RANGE,),
        errors=(404, 416, 503),
    )
    def artifact(self, request: Request) -> Response:
        movie_id, name = request.path_params["movie_id"], request.path_params["name"]
        path = self._movie(request, movie_id).artifacts.get(name)
        if path is None:
            raise NotFound(f"movie {movie_id} has no artifact {name!r}")
        if self.local_file is not None:
            return file_answer(self.local_file(path), request.headers.get("range"))
        # Signed now, for this download only: the link in a status answer is this route.
        signed = self.artifacts.url(path)
        return RedirectResponse(signed, 307, headers={"Cache-Control": "private, no-store"})

    @OPERATIONS(
        "GET",
        "/api/queue/{job_id}/position",
        summary="A job's place in the queue it waits in, how many are ahead, and an ETA.",
        answer=JobPosition,
        errors=(404, 503),
    )
    def position(self, request: Request) -> Response:
        movie = self._movie(request, request.path_params["job_id"])
        outlook = self.pipeline.outlook(movie)
        view = position_view(outlook.position)
        stage = movie.current_stage
        return json_answer(
            {
                "job_id": movie.id,
                "status": movie.status.value,
                "current_stage": stage.value if stage else None,
                "waiting": view is not None,
                **(view or {"position": None, "ahead": None, "eta_seconds": None}),
                **eta_view(outlook.eta),
            }
        )

    def _movie(self, request: Request, movie_id: str) -> Movie:
        return visible(self.pipeline.find(movie_id), caller(request), movie_id)

    async def _write(self, write: Write) -> Movie:
        movie = await self.writes(write)
        if not isinstance(movie, Movie):
            raise DeepflixError(f"the {write.op} write answered no movie")
        return movie
