"""The API process's writes to the runtime process: frames over a socket pair."""

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
from deepflix.handlers.writes import WRITE, Write, perform
from deepflix.pipeline import errors
from deepflix.pipeline.errors import DeepflixError, Unavailable
from deepflix.pipeline.models import Movie
from deepflix.pipeline.service import Pipeline

log = logs.get("link")
# A frame: its length (4 bytes, big-endian), then one JSON document.
HEADER = struct.Struct(">I")
ERRORS: dict[str, type[DeepflixError]] = {
    cls.__name__: cls
    for cls in vars(errors).values()
    if isinstance(cls, type) and issubclass(cls, DeepflixError)
}


# A request is "<id> <the write's JSON>", or "ready" once the API process serves; an answer
# is "<id> movie <the movie's JSON>", "<id> none" or "<id> error <the error's fields>".
READY = b"ready"


def frame(body: bytes) -> bytes:
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
    """The runtime's end: performs each write on a pool thread and answers in any order.

    Writes wait for the writer thread's commit, so the pool's threads mostly sleep;
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
        self.on_ready = on_ready
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="writes")
        self._send_lock = threading.Lock()

    def start(self) -> None:
        threading.Thread(target=self._read, name="write-channel", daemon=True).start()

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
            if body == READY:
                self.on_ready()  # its socket was bound before its event loop ran
            else:
                self._pool.submit(self._answer, body)

    def _answer(self, request: bytes) -> None:
        n, _, doc = request.partition(b" ")
        try:
            write = WRITE.validate_json(doc)
            movie = perform(self.pipeline, write)
            answer = n + (b" movie " + movie.model_dump_json().encode() if movie else b" none")
        except DeepflixError as e:
            answer = n + b" error " + orjson.dumps(error_fields(e))
        except Exception:
            log.exception("the API's write failed: %s", doc[:200])
            internal = DeepflixError("internal error; it has been logged")
            answer = n + b" error " + orjson.dumps(error_fields(internal))
        data = frame(answer)
        # OSError: the API process is gone, and so is whoever waited for this answer.
        with self._send_lock, contextlib.suppress(OSError):
            self.sock.sendall(data)


class WriteClient:
    """The API process's end, `Writes` across processes: a write is a request frame and a
    future, so the event loop answers reads while writes wait for their commit.

    The runtime's end closing means the runtime is gone (stopped, or killed): `on_close`
    is called then, and writes in flight fail as unavailable.
    """

    def __init__(self, sock: socket.socket, *, on_close: Callable[[], None]) -> None:
        self.sock = sock
        self.on_close = on_close
        self._ids = itertools.count()
        self._pending: dict[bytes, asyncio.Future[bytes]] = {}
        self._writer: asyncio.StreamWriter | None = None
        self._opening: asyncio.Task[None] | None = None
        self._reading: asyncio.Task[None] | None = None

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Open on `loop` now, not at the first write: the runtime's end closing must be
        seen even while nothing is written."""
        self._opening = loop.create_task(self._open())

    async def close(self) -> None:
        """Stop reading once the server is done with the channel, so that no task is left
        pending when the loop closes (asyncio would log each one)."""
        if self._reading is not None and not self._reading.done():
            self._reading.cancel()
            await asyncio.gather(self._reading, return_exceptions=True)

    async def _open(self) -> None:
        reader, self._writer = await asyncio.open_unix_connection(sock=self.sock)
        self._reading = asyncio.create_task(self._read(reader))
        self._writer.write(frame(READY))

    async def __call__(self, write: Write) -> Movie | None:
        assert self._opening is not None, "WriteClient.start was not called"
        await self._opening
        if self._writer is None or self._writer.is_closing():
            raise Unavailable("the service is shutting down")
        n = str(next(self._ids)).encode()
        future = self._pending[n] = asyncio.get_running_loop().create_future()
        self._writer.write(frame(n + b" " + write.model_dump_json().encode()))
        kind, _, doc = (await future).partition(b" ")
        if kind == b"error":
            raise error_from(orjson.loads(doc))
        return Movie.model_validate_json(doc) if kind == b"movie" else None

    async def _read(self, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                (size,) = HEADER.unpack(await reader.readexactly(HEADER.size))
                n, _, answer = (await reader.readexactly(size)).partition(b" ")
                future = self._pending.pop(n, None)
                if future is not None and not future.done():
                    future.set_result(answer)
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
