"""SQLite for the embedded adapters: WAL, a connection per reading thread, one writer thread."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from deepflix import logs
from deepflix.pipeline.errors import Unavailable

log = logs.get("sqlite")
T = TypeVar("T")
# A batch closes at this many writes so one burst cannot hold the lock for long.
MAX_BATCH = 256
# The view whose INSERT trigger runs every buffer's statements: each SQLite statement gives
# the GIL away and waits to take it back, so a batch's rows are written by one statement,
# not one per table (ADR 0007). TEMP: the writer's connection alone has it; the file never
# does.
_END = "batch_end"
# A write waiting this long for the database (locked by another process) means the store
# cannot write now, before its busy timeout has even run out.
STALLED_S = 10.0
# SQLite's primary result codes for a database that cannot be written now (busy, locked, no
# memory, read-only, I/O error, full, cannot open, locking protocol), as opposed to a bad
# statement: a write failing with one is the store's failure, not the caller's.
_STORE_FAILURES = frozenset({5, 6, 7, 8, 10, 13, 14, 15})


@dataclass(frozen=True)
class StoreHealth:
    """Whether the database takes writes, as the writer thread saw it last."""

    writable: bool
    error: str | None  # why not; after a recovery, the last failure
    failed_at: float | None  # time.time() of the last failed write
    waiting_writes: int


class _Write:
    __slots__ = ("after", "done", "error", "fn", "result")

    def __init__(self, fn: Callable[[sqlite3.Connection], Any], *, wait: bool) -> None:
        self.fn = fn
        # A held lock that the writer releases: one futex wake for the one waiter, where an
        # Event would take a condition's lock and notify_all.
        self.done = threading.Lock() if wait else None
        if self.done is not None:
            self.done.acquire()
        self.result: Any = None
        self.error: BaseException | None = None
        self.after: list[Callable[[], None]] = []


def json_rows(width: int, source: str) -> str:
    """A SELECT of the rows of a JSON array of `width`-item arrays (`source`: a parameter or
    a buffer's NEW.<name>): many rows written by one statement."""
    columns = ", ".join(f"json_extract(value, '$[{i}]')" for i in range(width))
    return f"SELECT {columns} FROM json_each({source}) WHERE true"  # nosec B608 # constant names; values are bound parameters


def json_table(names: Sequence[str], source: str) -> str:
    """The same rows as a table of columns `names`, for an UPDATE ... FROM."""
    columns = ", ".join(f"json_extract(value, '$[{i}]') AS {n}" for i, n in enumerate(names))
    return f"(SELECT {columns} FROM json_each({source}))"  # nosec B608 # constant names; values are bound parameters


class Buffer(Protocol):
    """Changes a batch's writes gather in memory and write once, just before its commit.

    `statements` maps a name to the SQL that writes that name's rows, read as
    json_each(NEW.<name>); `rows()` hands over the JSON array of rows gathered under each
    name (names with none left out) and forgets them. A buffer is registered before its
    first write.
    """

    @property
    def statements(self) -> Mapping[str, str]: ...

    def rows(self) -> dict[str, str]: ...

    def discard(self) -> None: ...


class Database:
    """A SQLite file shared by threads and processes: owns its connections (one per reading
    thread), its one writer thread, the batches that thread commits and the buffers each
    batch writes at its end.

    WAL lets readers run beside the one writer; synchronous=NORMAL keeps every committed
    transaction across a crash of the process (kill -9), though not across a power loss —
    the same guarantee as Redis with appendfsync everysec.

    Writes from all threads of this process go through one writer thread, which runs the
    writes waiting at that moment in one transaction (group commit); a failing write
    leaves the others alone (see _commit). A caller returns after the commit. One writer,
    not a lock taken by each writing thread: every statement gives the GIL away, and a
    thread doing so while it held the database lock made the others queue on both
    (ADR 0007).
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
        self._end: tuple[list[str], str] | None = None  # (names, INSERT): see flush
        self._data_version: int | None = None
        # What the writer thread holds in memory of the database (parsed movies, counts) is
        # current while this is unchanged: it moves when another connection commits (seen
        # at the start of a batch) and when a batch rolls back.
        self.generation = 0
        self._staged = 0  # in-memory changes made by the writes of this process
        # What health() reports: the last failure (time.time(), message), the last commit
        # that changed a row, and since when the batch under way has run (monotonic).
        self._failed: tuple[float, str] | None = None
        self._wrote_at = 0.0
        self._batch_since: float | None = None

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
        assert w.done is not None  # nosec B101 # an invariant, not a check of input
        w.done.acquire()
        if w.error is not None:
            raise w.error
        return w.result  # type: ignore[no-any-return]

    def atomically(self, operation: Callable[[], T]) -> T:
        """Run `operation` as one write (the pipeline's unit of work here): everything it
        writes through this database, movies and messages alike, commits together."""
        return self.write(lambda _conn: operation())

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
        """Have every batch end by writing `b.rows()` (or `b.discard()` if it rolls back)."""
        self._buffers.append(b)
        self._end = None  # the writer makes the view again, with b's statements

    def flush(self, conn: sqlite3.Connection) -> None:
        """Write what the buffers have gathered so far in this batch, in one statement (the
        writer thread; a batch's end does it, and reads that must see the rows)."""
        rows: dict[str, str] = {}
        for b in self._buffers:
            rows.update(b.rows())
        if rows:
            assert self._end is not None, "the batch-end view is made before each batch"  # nosec B101 # an invariant, not a check of input
            names, insert = self._end
            conn.execute(insert, [rows.get(n) for n in names])

    def is_writer(self) -> bool:
        return threading.current_thread() is self._writer

    def staged(self) -> None:
        """Note an in-memory change of the write running now: if that write then fails, its
        batch is undone (as for a changed row), since the change cannot be taken back alone."""
        self._staged += 1

    def invalidate(self) -> None:
        """Drop what the writer holds in memory (a change it did not make itself)."""
        self.generation += 1

    def health(self) -> StoreHealth:
        """Unwritable from a failed write until a later write changes a row (see probe), or
        while a write has waited STALLED_S for the database."""
        since, failed = self._batch_since, self._failed
        at, error = failed if failed is not None else (None, None)
        writable = failed is None or self._wrote_at > failed[0]
        if since is not None and time.monotonic() - since > STALLED_S:
            waited = time.monotonic() - since
            writable, error = False, f"a write has waited {waited:.0f} s for the database"
        return StoreHealth(writable, error, at, len(self._queue))

    def probe(self) -> None:
        """Write one row: an idle service writes nothing else, so this is what shows that the
        database takes writes again after a failure (or that it still does not)."""

        def beat(conn: sqlite3.Connection) -> None:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS heartbeat"
                " (id INTEGER PRIMARY KEY CHECK (id = 1), at REAL NOT NULL)"
            )
            conn.execute(
                "INSERT INTO heartbeat VALUES (1, ?)"
                " ON CONFLICT (id) DO UPDATE SET at = excluded.at",
                (time.time(),),
            )

        self.write(beat)

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
            self._batch_since = time.monotonic()
            try:
                self._commit(conn, batch)
            except BaseException as e:  # the writer thread must outlive any failure
                log.exception("a batch failed outside its writes")
                with contextlib.suppress(sqlite3.Error):
                    self._rollback(conn)
                self._fail([w for w in batch if w.error is None], e)
            finally:
                self._batch_since = None
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
        after changing something, or whose rows fail at the batch's end, undoes the whole
        batch, which then runs again one write per transaction, so only it fails.
        """
        try:
            if self._end is None:
                self._end = _make_end(conn, self._buffers)
            conn.execute("BEGIN IMMEDIATE")
            # Under the write lock nobody else can commit until we do, so one look per
            # batch tells whether another connection changed the file since our last.
            (version,) = conn.execute("PRAGMA data_version").fetchone()
        except sqlite3.OperationalError as e:  # locked past busy_timeout, disk full, ...
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            self._fail(batch, e)
            return
        changes_at_begin = conn.total_changes
        if version != self._data_version:
            self._data_version = version
            self.invalidate()
        for w in batch:
            changes = (conn.total_changes, self._staged)
            self._current = w
            try:
                w.result = w.fn(conn)
            except BaseException as e:
                error = self._store_failure(e) or e
                w.error, w.after = error, []
                # SQLite rolls a whole transaction back itself on some errors (a full disk):
                # the writes before this one are gone too, so the batch runs again.
                if (conn.total_changes, self._staged) != changes or not conn.in_transaction:
                    self._rollback(conn)
                    self._alone(conn, batch, error)
                    return
            finally:
                self._current = None
        try:
            self.flush(conn)
        except Exception as e:  # the writer thread must live on whatever a buffer raises
            self._rollback(conn)
            if isinstance(e, sqlite3.IntegrityError):  # the rows of a write (a taken key)
                self._alone(conn, batch, e)
            else:
                self._fail(batch, e)
            return
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as e:
            self._rollback(conn)
            self._fail(batch, e)
            return
        if conn.total_changes != changes_at_begin:
            self._wrote_at = time.time()

    def _alone(self, conn: sqlite3.Connection, batch: list[_Write], error: BaseException) -> None:
        """After a failed batch's rollback: each write again in a transaction of its own, so
        only the failing one fails (with `error`, for a batch of one)."""
        if len(batch) == 1:
            batch[0].result, batch[0].error, batch[0].after = None, error, []
            return
        for again in batch:
            again.result, again.error, again.after = None, None, []
            self._commit(conn, [again])

    def _rollback(self, conn: sqlite3.Connection) -> None:
        if conn.in_transaction:  # SQLite may have rolled back itself (a full disk)
            conn.execute("ROLLBACK")
        self._discard()

    def _fail(self, batch: list[_Write], e: BaseException) -> None:
        """The database failed the batch: every write in it fails as unavailable."""
        self._failed = (time.time(), str(e))
        for w in batch:
            w.result, w.after = None, []
            w.error = Unavailable(f"the embedded database is unavailable: {e}")

    def _store_failure(self, e: BaseException) -> Unavailable | None:
        """A write's own statement found the database unwritable (not a bad statement)."""
        code = getattr(e, "sqlite_errorcode", None)
        if not isinstance(e, sqlite3.OperationalError) or code is None:
            return None
        if code & 0xFF not in _STORE_FAILURES:
            return None
        self._failed = (time.time(), str(e))
        return Unavailable(f"the embedded database is unavailable: {e}")

    def _discard(self) -> None:
        for b in self._buffers:
            b.discard()
        self.invalidate()


def _make_end(conn: sqlite3.Connection, buffers: list[Buffer]) -> tuple[list[str], str]:
    """The TEMP view and INSERT trigger that write every buffer's rows (outside a
    transaction, so no rollback takes them away)."""
    statements = {n: sql for b in buffers for n, sql in b.statements.items()}
    assert len(statements) == sum(len(b.statements) for b in buffers), "names are unique"  # nosec B101 # an invariant, not a check of input
    names = list(statements)
    conn.execute(f"DROP VIEW IF EXISTS temp.{_END}")  # its trigger goes with it
    if not names:
        return names, ""
    nulls = ", ".join(f"NULL AS {n}" for n in names)
    conn.execute(f"CREATE TEMP VIEW {_END} AS SELECT {nulls}")
    body = "".join(f"{sql};\n" for sql in statements.values())
    conn.execute(f"CREATE TEMP TRIGGER {_END}_rows INSTEAD OF INSERT ON {_END} BEGIN\n{body}END")
    marks = ", ".join("?" * len(names))
    return names, f"INSERT INTO {_END} ({', '.join(names)}) VALUES ({marks})"  # nosec B608 # constant names; values are bound parameters


def _call(fn: Callable[[], None]) -> None:
    try:
        fn()
    except Exception:  # a failing callback must not stop the writer thread
        log.exception("after-commit callback failed")
