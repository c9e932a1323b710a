"""SQLite for the embedded adapters: WAL, a connection per reading thread, one writer thread."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, TypeVar

from deepflix import logs
from deepflix.pipeline.errors import Unavailable

log = logs.get("sqlite")
T = TypeVar("T")
# A batch closes at this many writes so one burst cannot hold the lock for long.
MAX_BATCH = 256


class _Write:
    __slots__ = ("after", "done", "error", "fn", "result")

    def __init__(self, fn: Callable[[sqlite3.Connection], Any], *, wait: bool) -> None:
        self.fn = fn
        # A held lock that the writer releases: one futex wake, where an Event's
        # notify_all cost a tenth of the pipeline's GIL time (profiled).
        self.done = threading.Lock() if wait else None
        if self.done is not None:
            self.done.acquire()
        self.result: Any = None
        self.error: BaseException | None = None
        self.after: list[Callable[[], None]] = []


def json_rows(width: int) -> str:
    """A SELECT of the rows of one JSON array parameter of `width`-item arrays: many rows
    written by one statement (each statement gives the GIL away and waits to take it back)."""
    columns = ", ".join(f"json_extract(value, '$[{i}]')" for i in range(width))
    return f"SELECT {columns} FROM json_each(?) WHERE true"


class Buffer(Protocol):
    """Changes a batch's writes gather in memory and write once, just before its commit."""

    def flush(self, conn: sqlite3.Connection) -> None: ...

    def discard(self) -> None: ...


class Database:
    """A SQLite file shared by threads and processes.

    WAL lets readers run beside the one writer; synchronous=NORMAL keeps every committed
    transaction across a crash of the process (kill -9), though not across a power loss —
    the same guarantee as Redis with appendfsync everysec.

    Writes from all threads of this process go through one writer thread, which runs the
    writes waiting at that moment in one transaction (group commit); a failing write
    leaves the others alone (see _commit). A caller returns after the commit.
    Measured (bench/RESULTS.md §1): with a lock taken by each writing thread, every statement
    gave the GIL away while holding the database lock, and the lock convoy, not SQLite's
    work, set the pipeline's pace.
    """

    def __init__(
        self, path: Path, *, busy_timeout_ms: int = 30000, read_only: bool = False
    ) -> None:
        self.path = path
        self.busy_timeout_ms = busy_timeout_ms
        # A reader of a database that another process writes (the API process): its
        # connections refuse changes, so no write can slip past that process's writer.
        self.read_only = read_only
        path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._cond = threading.Condition()
        self._queue: list[_Write] = []
        self._writer: threading.Thread | None = None
        self._current: _Write | None = None  # the write the writer thread is running
        self._buffers: list[Buffer] = []
        self._data_version: int | None = None
        # What the writer thread holds in memory of the database (parsed movies, counts) is
        # current while this is unchanged: it moves when another connection commits (seen
        # at the start of a batch) and when a batch rolls back.
        self.generation = 0
        self._staged = 0  # in-memory changes made by the writes of this process

    def conn(self) -> sqlite3.Connection:
        """This thread's connection, for reads (and for the writer thread, its writes)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(f"PRAGMA busy_timeout={int(self.busy_timeout_ms)}")
            if self.read_only:
                conn.execute("PRAGMA query_only=1")
            self._local.conn = conn
        return conn

    def write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn` in a write transaction and return its result once committed.

        The write lock is taken up front, so a read-then-write inside `fn` is atomic. An
        exception from `fn` rolls back its own changes and is raised here.
        """
        if threading.current_thread() is self._writer:
            return fn(self.conn())  # a write from inside a write joins its transaction
        w = _Write(fn, wait=True)
        self._submit(w)
        assert w.done is not None
        w.done.acquire()
        if w.error is not None:
            raise w.error
        return w.result  # type: ignore[no-any-return]

    def after_commit(self, fn: Callable[[], None]) -> None:
        """Call `fn` once the write running now has committed (at once outside a write);
        never if it rolls back. Wakes other threads only for changes they can see."""
        current = self._current if threading.current_thread() is self._writer else None
        if current is None:
            fn()
        else:
            current.after.append(fn)

    def write_later(self, fn: Callable[[sqlite3.Connection], object]) -> None:
        """Queue a write in the next batch without waiting for it; a failure is logged."""
        self._submit(_Write(fn, wait=False))

    def buffer(self, b: Buffer) -> None:
        """Have every batch end with `b.flush` (or `b.discard` if it rolls back)."""
        self._buffers.append(b)

    def is_writer(self) -> bool:
        return threading.current_thread() is self._writer

    def staged(self) -> None:
        """Note an in-memory change of the write running now: if that write then fails, its
        batch is undone (as for a changed row), since the change cannot be taken back alone."""
        self._staged += 1

    def invalidate(self) -> None:
        """Drop what the writer holds in memory (a change it did not make itself)."""
        self.generation += 1

    def _submit(self, w: _Write) -> None:
        if self.read_only:
            raise RuntimeError(f"{self.path} is open read-only here; its writer is elsewhere")
        with self._cond:
            if self._writer is None:
                self._writer = threading.Thread(
                    target=self._run, name=f"sqlite-writer-{self.path.name}", daemon=True
                )
                self._writer.start()
            self._queue.append(w)
            if len(self._queue) == 1:
                self._cond.notify()

    def _run(self) -> None:
        conn = self.conn()
        while True:
            with self._cond:
                while not self._queue:
                    self._cond.wait()
                batch = self._queue[:MAX_BATCH]
                del self._queue[:MAX_BATCH]
            self._commit(conn, batch)
            for w in batch:
                for fn in w.after:
                    _call(fn)
                if w.done is not None:
                    w.done.release()
                elif w.error is not None:
                    log.warning("a write nobody waited for failed: %s", w.error)

    def _commit(self, conn: sqlite3.Connection, batch: list[_Write]) -> None:
        """One transaction for the batch.

        No savepoint per write (two statements each, and every statement gives the GIL
        away): a write that raises before changing anything needs no undo. One that raises
        after changing something undoes the whole batch, which then runs again one write
        per transaction, so only the failing write fails.
        """
        try:
            conn.execute("BEGIN IMMEDIATE")
            # Under the write lock nobody else can commit until we do, so one look per
            # batch tells whether another connection changed the file since our last.
            (version,) = conn.execute("PRAGMA data_version").fetchone()
        except sqlite3.OperationalError as e:  # locked past busy_timeout, disk full, ...
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            _fail(batch, e)
            return
        if version != self._data_version:
            self._data_version = version
            self.invalidate()
        for w in batch:
            changes = (conn.total_changes, self._staged)
            self._current = w
            try:
                w.result = w.fn(conn)
            except BaseException as e:
                w.error, w.after = e, []
                if (conn.total_changes, self._staged) != changes:
                    self._rollback(conn)
                    if len(batch) > 1:
                        for again in batch:
                            again.result, again.error, again.after = None, None, []
                            self._commit(conn, [again])
                    return
            finally:
                self._current = None
        try:
            for b in self._buffers:
                b.flush(conn)
            conn.execute("COMMIT")
        except sqlite3.Error as e:
            if conn.in_transaction:
                self._rollback(conn)
            else:
                self._discard()
            _fail(batch, e)

    def _rollback(self, conn: sqlite3.Connection) -> None:
        conn.execute("ROLLBACK")
        self._discard()

    def _discard(self) -> None:
        for b in self._buffers:
            b.discard()
        self.invalidate()


def _fail(batch: list[_Write], e: sqlite3.Error) -> None:
    for w in batch:
        w.result, w.after = None, []
        w.error = Unavailable(f"the embedded database is unavailable: {e}")


def _call(fn: Callable[[], None]) -> None:
    try:
        fn()
    except Exception:  # a failing callback must not stop the writer thread
        log.exception("after-commit callback failed")
