"""Live updates as Server-Sent Events: one change feed per process, fanned out to every stream."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol

import orjson

from deepflix import logs
from deepflix.pipeline.errors import NotFound
from deepflix.pipeline.service import Pipeline

log = logs.get("api")

HEARTBEAT_S = 15.0
FAILED_S = 2.0  # after the feed failed, before the next look
# Items a stream may fall behind by; past that, the dashboard's drop (the next change
# carries the queues anew) and a movie's stream has a re-read waiting already.
BACKLOG = 64
CLOSED = object()  # the hub is closing: every stream ends
Changed = tuple[int, list[str]]


class ChangeSource(Protocol):
    """Where a process learns which movies changed (adapters/local/changes.py)."""

    @property
    def interval_s(self) -> float: ...

    @property
    def complete(self) -> bool: ...  # False: a movie's change may be missed; streams re-read

    def latest(self) -> int: ...

    def since(self, seq: int) -> Changed | None: ...


class NewestPolling:
    """The change feed where the store has none (Firestore: no snapshot listener is wired
    here): the newest movies read every `interval_s`, those whose `updated_at` moved are
    the changes; a movie's stream re-reads its movie as often (`complete` False)."""

    interval_s = 2.0
    complete = False

    def __init__(self, pipeline: Pipeline, *, newest: int = 50) -> None:
        self.pipeline = pipeline
        self.newest = newest
        self._seen: dict[str, str] = {}

    def latest(self) -> int:
        self.since(0)
        return 0

    def since(self, seq: int) -> Changed | None:
        page = self.pipeline.list_movies(owner=None, limit=self.newest, cursor=None)
        now = {m.id: m.updated_at.isoformat() for m in page.movies}
        moved = [i for i, at in now.items() if self._seen.get(i) != at]
        self._seen = now
        return seq + 1, moved


class Stream:
    """One open event stream: the movie it follows (None: the dashboard's) and what the
    hub handed it since it last looked."""

    def __init__(self, movie_id: str | None) -> None:
        self.movie_id = movie_id
        self.waiting = False  # a waiting movie's place moves with the others: re-read often
        self.items: asyncio.Queue[object] = asyncio.Queue(maxsize=BACKLOG)

    def hand(self, item: object) -> None:
        if self.movie_id is not None and not self.items.empty():
            return  # a re-read waits already; one reads every change so far
        with contextlib.suppress(asyncio.QueueFull):
            self.items.put_nowait(item)

    async def next(self) -> object:
        """The next item; None after HEARTBEAT_S without one (time for a heartbeat)."""
        try:
            return await asyncio.wait_for(self.items.get(), HEARTBEAT_S)
        except TimeoutError:
            return None


class Hub:
    """Reads the change feed once per `interval_s` while a stream is open, renders the
    dashboard's events once per change for every dashboard stream, and wakes the streams
    of the movies that changed. `read` runs a store read (on a thread, for Firestore)."""

    def __init__(
        self,
        source: ChangeSource,
        dashboard: Callable[[list[str]], list[bytes]],
        read: Callable[[Callable[[], Any]], Awaitable[Any]],
    ) -> None:
        self.source = source
        self.dashboard = dashboard
        self.read = read
        self.streams: set[Stream] = set()
        self._task: asyncio.Task[None] | None = None
        self.closed = False

    def open(self, movie_id: str | None) -> Stream:
        stream = Stream(movie_id)
        self.streams.add(stream)
        if self.closed:
            stream.hand(CLOSED)
        elif self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())
        return stream

    def leave(self, stream: Stream) -> None:
        self.streams.discard(stream)

    def close(self) -> None:
        """End every stream (the server stops: open streams must not hold it up)."""
        self.closed = True
        for stream in self.streams:
            stream.items = asyncio.Queue()  # past any backlog: the end comes next
            stream.items.put_nowait(CLOSED)
        if self._task is not None:
            self._task.cancel()

    async def _run(self) -> None:
        seq: int | None = None
        while self.streams and not self.closed:
            try:
                if seq is None:
                    seq = await self.read(self.source.latest)
                await asyncio.sleep(self.source.interval_s)
                seq = await self._look(seq)
            except asyncio.CancelledError:
                raise
            except Exception:  # a locked or missing database: the streams wait, and we again
                log.warning("the change feed failed; trying again", exc_info=True)
                await asyncio.sleep(FAILED_S)
        self._task = None

    async def _look(self, seq: int) -> int:
        """One look at the feed: the dashboard's events, the movie streams woken."""
        changed: Changed | None = await self.read(functools.partial(self.source.since, seq))
        if changed is None:
            return seq
        seq, ids = changed
        if ids and any(s.movie_id is None for s in self.streams):
            frames = await self.read(functools.partial(self.dashboard, ids))
            for s in [s for s in self.streams if s.movie_id is None]:
                for frame in frames:
                    s.hand(frame)
        moved = set(ids)
        for s in [s for s in self.streams if s.movie_id is not None]:
            if s.movie_id in moved or s.waiting or not self.source.complete:
                s.hand(True)
        return seq


def frame(event: str, data: Any) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


HEARTBEAT = b": heartbeat\n\n"


async def follow(
    hub: Hub,
    stream: Stream,
    first: tuple[bytes, bool],
    render: Callable[[], Awaitable[tuple[bytes, bool]]],
) -> AsyncIterator[bytes]:
    """A movie's events: its view now (`first`), then again whenever it differs, until a
    terminal state or the hub's close. `render` answers (the view's event, whether final)."""
    try:
        last, final = first
        yield last
        while not final:
            item = await stream.next()
            if item is CLOSED:
                return
            if item is None:
                yield HEARTBEAT
                continue
            try:
                view, final = await render()
            except NotFound:  # deleted while followed: nothing more will come
                return
            if view != last:
                yield view
                last = view
    finally:
        hub.leave(stream)


async def dashboard(hub: Hub, stream: Stream, first: list[bytes]) -> AsyncIterator[bytes]:
    """The dashboard's events: the queues now, then what the hub renders on each change."""
    try:
        for f in first:
            yield f
        while True:
            item = await stream.next()
            if item is CLOSED:
                return
            yield HEARTBEAT if item is None else item  # type: ignore[misc]
    finally:
        hub.leave(stream)
