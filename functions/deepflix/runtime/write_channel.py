"""The API process's writes to the runtime, over a multiprocessing Connection on a socket pair."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from typing import Any

import orjson

from deepflix import logs
from deepflix.handlers.writes import WRITE, Outcome, Write, perform
from deepflix.pipeline import errors
from deepflix.pipeline.errors import DeepflixError, Unavailable
from deepflix.pipeline.models import Movie
from deepflix.pipeline.service import Pipeline

log = logs.get("write_channel")
# A request is "<id> <the write's JSON>", or "ready" once the API process serves; an answer
# is "<id> movie <the movie's JSON>", "<id> ids <a JSON list of movie ids>", "<id> none" or
# "<id> error <the error's fields>".
READY = b"ready"
ERRORS: dict[str, type[DeepflixError]] = {
    cls.__name__: cls
    for cls in vars(errors).values()
    if isinstance(cls, type) and issubclass(cls, DeepflixError)
}


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
        conn: Connection,
        *,
        threads: int,
        on_ready: Callable[[], None] = lambda: None,
    ) -> None:
        self.pipeline = pipeline
        self.conn = conn
        self.on_ready = on_ready
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="writes")
        self._send_lock = threading.Lock()

    def start(self) -> None:
        threading.Thread(target=self._read, name="write-channel", daemon=True).start()

    def _read(self) -> None:
        try:
            while True:
                request = self.conn.recv_bytes()
                if request == READY:
                    self.on_ready()
                else:
                    self._pool.submit(self._answer, request)
        except (EOFError, OSError):
            pass  # the API process is gone
        self._pool.shutdown()  # what it sent last is still done: a write is not undone
        self.conn.close()

    def _answer(self, request: bytes) -> None:
        n, _, doc = request.partition(b" ")
        try:
            outcome = perform(self.pipeline, WRITE.validate_json(doc))
            if isinstance(outcome, Movie):
                answer = n + b" movie " + outcome.model_dump_json().encode()
            elif isinstance(outcome, list):
                answer = n + b" ids " + orjson.dumps(outcome)
            else:
                answer = n + b" none"
        except DeepflixError as e:
            answer = n + b" error " + orjson.dumps(error_fields(e))
        except Exception:
            log.exception("the API's write failed: %s", doc[:200])
            internal = DeepflixError("internal error; it has been logged")
            answer = n + b" error " + orjson.dumps(error_fields(internal))
        # OSError: the API process is gone, and so is whoever waited for this answer.
        with self._send_lock, contextlib.suppress(OSError):
            self.conn.send_bytes(answer)


class WriteClient:
    """The API process's end, `Writes` across processes: a write is a request and a future,
    and answers are read when the event loop sees them arrive, so the loop answers reads
    while writes wait for their commit.

    The runtime's end closing means the runtime is gone (stopped, or killed): `on_close`
    is called then, and writes in flight fail as unavailable.
    """

    def __init__(self, conn: Connection, *, on_close: Callable[[], None]) -> None:
        self.conn = conn
        self.on_close = on_close
        self._ids = itertools.count()
        self._pending: dict[bytes, asyncio.Future[bytes]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._open = False

    def start(self) -> None:
        """Watch for answers on the running loop, and tell the runtime this process serves.
        Watched from now, not from the first write: the runtime's end closing must be seen
        even while nothing is written."""
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self.conn.fileno(), self._readable)
        self._open = True
        self._send(READY)

    def close(self) -> None:
        """Stop watching (the server is done with the channel): not the runtime going away."""
        if self._open and self._loop is not None:
            self._loop.remove_reader(self.conn.fileno())
        self._open = False

    async def __call__(self, write: Write) -> Outcome:
        if not self._open or self._loop is None:
            raise Unavailable("the service is shutting down")
        n = str(next(self._ids)).encode()
        future = self._pending[n] = self._loop.create_future()
        self._send(n + b" " + write.model_dump_json().encode())
        kind, _, doc = (await future).partition(b" ")
        if kind == b"error":
            raise error_from(orjson.loads(doc))
        if kind == b"ids":
            return [str(i) for i in orjson.loads(doc)]
        return Movie.model_validate_json(doc) if kind == b"movie" else None

    def _send(self, message: bytes) -> None:
        try:
            self.conn.send_bytes(message)
        except OSError:
            self._gone()

    def _readable(self) -> None:
        # One answer per call: the loop calls again while more are waiting. An answer is
        # written whole by one send, so it is not waited for here byte by byte.
        try:
            n, _, answer = self.conn.recv_bytes().partition(b" ")
        except (EOFError, OSError):
            self._gone()
            return
        future = self._pending.pop(n, None)
        if future is not None and not future.done():
            future.set_result(answer)

    def _gone(self) -> None:
        if not self._open:
            return
        self.close()
        gone = Unavailable("the service is shutting down")
        for future in self._pending.values():
            if not future.done():
                future.set_exception(gone)
        self._pending.clear()
        self.on_close()
