"""The API process's link to the runtime process: its writes, as frames over a socket pair."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
import struct
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import orjson

from deepflix import logs
from deepflix.pipeline import errors
from deepflix.pipeline.errors import DeepflixError, Unavailable
from deepflix.pipeline.models import Movie, MovieCreate
from deepflix.pipeline.service import Pipeline

log = logs.get("link")
# A frame: its length (4 bytes, big-endian), then one JSON document.
HEADER = struct.Struct(">I")
ERRORS: dict[str, type[DeepflixError]] = {
    cls.__name__: cls
    for cls in vars(errors).values()
    if isinstance(cls, type) and issubclass(cls, DeepflixError)
}


def frame(message: dict[str, Any]) -> bytes:
    body = orjson.dumps(message)
    return HEADER.pack(len(body)) + body


def error_fields(e: DeepflixError) -> dict[str, Any]:
    out = {"type": type(e).__name__, "message": e.message, "details": e.details}
    if isinstance(e, Unavailable):
        out["retry_after_s"] = e.retry_after_s
    return out


def error_from(fields: dict[str, Any]) -> DeepflixError:
    cls = ERRORS.get(fields["type"], DeepflixError)
    if cls is Unavailable:
        return Unavailable(
            fields["message"], retry_after_s=fields["retry_after_s"], details=fields["details"]
        )
    return cls(fields["message"], details=fields["details"])


class WriteServer:
    """The runtime's end: runs each request on a pool thread and answers in any order.

    Requests wait for the writer thread's commit, so the pool's threads mostly sleep;
    `threads` bounds how many of the API's writes are in flight at once.
    """

    def __init__(
        self,
        pipeline: Pipeline,
        sock: socket.socket,
        *,
        threads: int,
        on_ready: Callable[[], None] = lambda: None,
    ) -> None:
        self.pipeline = pipeline
        self.sock = sock
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="link")
        self._send_lock = threading.Lock()
        self._ops: dict[str, Callable[[dict[str, Any]], Movie | None]] = {
            "create": lambda a: pipeline.create(
                MovieCreate.model_validate(a["request"]),
                owner=a["owner"],
                idempotency_key=a["idempotency_key"],
            ),
            "cancel": lambda a: pipeline.cancel(a["movie_id"]),
            "retry": lambda a: pipeline.retry(a["movie_id"]),
            "pause": lambda a: pipeline.pause_admission(),
            "resume": lambda a: pipeline.resume_admission(),
            # The API process is serving: its socket was bound before its event loop ran.
            "ready": lambda a: on_ready(),
        }

    def start(self) -> None:
        threading.Thread(target=self._read, name="link-reader", daemon=True).start()

    def _read(self) -> None:
        stream = self.sock.makefile("rb")
        while True:
            header = stream.read(HEADER.size)
            if len(header) < HEADER.size:
                return  # the API process is gone
            (size,) = HEADER.unpack(header)
            body = stream.read(size)
            if len(body) < size:
                return  # gone in the middle of a frame
            self._pool.submit(self._answer, orjson.loads(body))

    def _answer(self, request: dict[str, Any]) -> None:
        reply: dict[str, Any] = {"id": request["id"]}
        try:
            movie = self._ops[request["op"]](request["args"])
            # The movie's JSON goes into the frame as text, not through a dict encoded again.
            reply["movie"] = orjson.Fragment(movie.model_dump_json()) if movie else None
        except DeepflixError as e:
            reply["error"] = error_fields(e)
        except Exception:
            log.exception("the API's %s request failed", request["op"])
            reply["error"] = error_fields(DeepflixError("internal error; it has been logged"))
        data = frame(reply)
        # OSError: the API process is gone, and so is whoever waited for this answer.
        with self._send_lock, contextlib.suppress(OSError):
            self.sock.sendall(data)


class WriteClient:
    """The API process's end: a write is a request frame and a future, so the event loop
    answers reads while writes wait for their commit.

    The runtime's end closing means the runtime is gone (stopped, or killed): `on_close`
    is called then, and writes in flight fail as unavailable.
    """

    def __init__(self, sock: socket.socket, *, on_close: Callable[[], None]) -> None:
        self.sock = sock
        self.on_close = on_close
        self._ids = itertools.count()
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._writer: asyncio.StreamWriter | None = None
        self._opening: asyncio.Task[None] | None = None
        self._reading: asyncio.Task[None] | None = None

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Open on `loop` now, not at the first write: the runtime's end closing must be
        seen even while nothing is written."""
        self._opening = loop.create_task(self._open())

    def close(self, loop: asyncio.AbstractEventLoop) -> None:
        """Stop reading, on `loop` once its server is done with it, so that no task is left
        pending when the loop closes (asyncio would log each one)."""
        if self._reading is not None and not self._reading.done():
            self._reading.cancel()
            loop.run_until_complete(asyncio.gather(self._reading, return_exceptions=True))

    async def _open(self) -> None:
        reader, self._writer = await asyncio.open_unix_connection(sock=self.sock)
        self._reading = asyncio.create_task(self._read(reader))
        self._writer.write(frame({"id": next(self._ids), "op": "ready", "args": {}}))

    async def create(
        self, request: MovieCreate, *, owner: str, idempotency_key: str | None
    ) -> Movie:
        args = {
            "request": request.model_dump(mode="json"),
            "owner": owner,
            "idempotency_key": idempotency_key,
        }
        return Movie.model_validate(await self._call("create", args))

    async def cancel(self, movie_id: str) -> Movie:
        return Movie.model_validate(await self._call("cancel", {"movie_id": movie_id}))

    async def retry(self, movie_id: str) -> Movie:
        return Movie.model_validate(await self._call("retry", {"movie_id": movie_id}))

    async def pause_admission(self) -> None:
        await self._call("pause", {})

    async def resume_admission(self) -> None:
        await self._call("resume", {})

    async def _call(self, op: str, args: dict[str, Any]) -> Any:
        assert self._opening is not None, "WriteClient.start was not called"
        await self._opening
        if self._writer is None or self._writer.is_closing():
            raise Unavailable("the service is shutting down")
        n = next(self._ids)
        future = self._pending[n] = asyncio.get_running_loop().create_future()
        self._writer.write(frame({"id": n, "op": op, "args": args}))
        reply = await future
        if "error" in reply:
            raise error_from(reply["error"])
        return reply["movie"]

    async def _read(self, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                (size,) = HEADER.unpack(await reader.readexactly(HEADER.size))
                reply = orjson.loads(await reader.readexactly(size))
                future = self._pending.pop(reply["id"], None)
                if future is not None and not future.done():
                    future.set_result(reply)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        if self._writer is not None:
            self._writer.close()
        gone = Unavailable("the service is shutting down")
        for future in self._pending.values():
            if not future.done():
                future.set_exception(gone)
        self._pending.clear()
        self.on_close()
