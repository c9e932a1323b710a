"""The live routes: a movie's events and the dashboard's, as Server-Sent Events."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from deepflix.handlers.identity import caller, visible
from deepflix.handlers.live import ChangeSource, Hub, NewestPolling, dashboard, follow, frame
from deepflix.handlers.operations import OPERATIONS, Access
from deepflix.handlers.views import MovieViews, summary_view
from deepflix.pipeline.service import Pipeline

T = TypeVar("T")
# Proxies must pass each event on as it comes, not gather the answer first.
STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


class LiveRoutes:
    """The routes of live updates, a part of the Api (which provides the attributes below).
    One Hub per process reads the change feed for every open stream."""

    pipeline: Pipeline
    views: MovieViews
    changes: ChangeSource | None
    read_in_threads: bool
    _hub: Hub | None = None

    def _queues(self) -> Response:
        raise NotImplementedError  # the Api's

    def hub(self) -> Hub:
        if self._hub is None:
            source = self.changes or NewestPolling(self.pipeline)
            self._hub = Hub(source, self._dashboard_frames, self._in_loop_or_thread)
        return self._hub

    def close_streams(self) -> None:
        """End every open stream: the server is stopping."""
        self.hub().close()

    async def _in_loop_or_thread(self, fn: Callable[[], T]) -> T:
        if self.read_in_threads:
            return await asyncio.to_thread(fn)
        return fn()

    @OPERATIONS(
        "GET",
        "/api/movies/{movie_id}/events",
        summary="A movie's status as Server-Sent Events: event `movie` (the status view) at "
        "once and on every change; the stream ends after a final status.",
        media_type="text/event-stream",
        errors=(404, 503),
    )
    async def movie_events(self, request: Request) -> Response:
        movie_id = request.path_params["movie_id"]
        who = caller(request)
        await self._in_loop_or_thread(lambda: visible(self.pipeline.find(movie_id), who, movie_id))
        hub = self.hub()
        stream = hub.open(movie_id)  # before the first read: no change falls in between

        def render() -> tuple[bytes, bool]:
            movie = self.pipeline.get(movie_id)
            stream.waiting = movie.waiting_stage is not None
            outlook = self.pipeline.outlook(movie)
            view = self.views(movie, outlook.position, outlook.eta)
            return frame("movie", view), movie.status.terminal

        async def again() -> tuple[bytes, bool]:
            return await self._in_loop_or_thread(render)

        try:
            first = await again()
        except BaseException:
            hub.leave(stream)
            raise
        body = follow(hub, stream, first, again)
        return StreamingResponse(body, media_type="text/event-stream", headers=STREAM_HEADERS)

    @OPERATIONS(
        "GET",
        "/api/events",
        summary="The dashboard's Server-Sent Events: `queues` (the /api/queues body) and "
        "`movie` (a changed movie's list summary); a comment every 15 s keeps it open.",
        media_type="text/event-stream",
        errors=(503,),
        access=Access.admin,
    )
    async def events(self, request: Request) -> Response:
        hub = self.hub()
        stream = hub.open(None)
        try:
            first = await self._in_loop_or_thread(lambda: self._dashboard_frames([]))
        except BaseException:
            hub.leave(stream)
            raise
        body = dashboard(hub, stream, first)
        return StreamingResponse(body, media_type="text/event-stream", headers=STREAM_HEADERS)

    def _dashboard_frames(self, movie_ids: list[str]) -> list[bytes]:
        """The queues, then each changed movie's summary (gone ones say so)."""
        queues: Any = bytes(self._queues().body)
        frames = [b"event: queues\ndata: " + queues + b"\n\n"]
        for movie_id in dict.fromkeys(movie_ids):
            movie = self.pipeline.find(movie_id)
            summary = summary_view(movie) if movie else {"movie_id": movie_id, "deleted": True}
            frames.append(frame("movie", summary))
        return frames
