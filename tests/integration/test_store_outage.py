"""A database that takes no writes for a while (locked, full) ends no runtime thread."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from deepflix.adapters.local.db import Database
from deepflix.pipeline.errors import Unavailable
from deepflix.pipeline.models import Movie, MovieCreate, Stage
from deepflix.runtime.compose import build_embedded
from deepflix.runtime.embedded import EmbeddedRuntime
from deepflix.settings import Settings

pytestmark = pytest.mark.integration


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold the database's write lock from another connection, as a backup tool would."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        conn.execute("ROLLBACK")
        conn.close()


def eventually(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, what
        time.sleep(0.05)
    return found


@pytest.fixture
def runtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[EmbeddedRuntime]:
    # Through the environment, so the job subprocesses see the same settings.
    env = {
        "DEEPFLIX_DATA_DIR": str(tmp_path / "data"),
        "DEEPFLIX_GENERATORS": "instant",
        "DEEPFLIX_SQLITE_BUSY_TIMEOUT_S": "0.2",
        "DEEPFLIX_SWEEP_INTERVAL_S": "0.3",
        "DEEPFLIX_RETRY_BASE_DELAY_S": "0.1",
        "DEEPFLIX_FAULTS_FILE": str(tmp_path / "faults.json"),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    runtime = build_embedded(Settings(_env_file=None))
    runtime.start()
    yield runtime
    runtime.stop()


def job_running(movie_id: str) -> bool:
    """Whether a job process for this movie is alive (its environment names the movie)."""
    needle = f"DEEPFLIX_JOB_MOVIE_ID={movie_id}".encode()
    for proc in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            alive = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
            if proc.name.isdigit() and alive and needle in (proc / "environ").read_bytes():
                return True
    return False


def finished(runtime: EmbeddedRuntime, movie_id: str, timeout: float) -> Movie:
    """The movie once terminal, or as it is when `timeout` runs out."""
    deadline = time.monotonic() + timeout
    while not (movie := runtime.pipeline.get(movie_id)).status.terminal:
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    return movie


def create(runtime: EmbeddedRuntime, prompt: str) -> Movie:
    request = MovieCreate(prompt=prompt, scene_count=1)
    return runtime.pipeline.create(request, owner="u", idempotency_key=None)


def test_a_locked_database_ends_no_delivery_and_loses_no_job_exit(
    runtime: EmbeddedRuntime, tmp_path: Path
) -> None:
    faults = tmp_path / "faults.json"
    faults.write_text(json.dumps({"images": {"kind": "delay", "match": "slow", "seconds": 1.5}}))
    pipeline = runtime.pipeline
    slow = create(runtime, "a slow render")
    eventually(
        lambda: pipeline.get(slow.id).stages[Stage.images].execution,
        30,
        "the images job never started",
    )
    with locked(tmp_path / "data" / "movies.db"):
        # Meanwhile the job ends its delay, cannot record its result and exits, and every
        # delivery thread's poll of the queue fails on the lock.
        eventually(lambda: not job_running(slow.id), 30, "the images job never ended")
        time.sleep(2)
    faults.unlink()
    after = create(runtime, "made once the lock is gone")
    for movie in (slow, after):
        done = finished(runtime, movie.id, 30)
        assert done.status.value == "succeeded", f"{movie.request.prompt!r} never finished"
    images = pipeline.get(slow.id).stages[Stage.images]
    assert images.last_error is not None and images.last_error.code == "job_exited"

    status = runtime.status()
    assert status["store"]["writable"] is True
    assert "locked" in status["store"]["error"]  # the last failure stays on show
    delivery = status["delivery"]
    assert delivery["threads_alive"] == delivery["threads"] == 4
    assert delivery["errors"] > 0 and delivery["last_error"] is not None
    assert delivery["job_exits_unrecorded"] == 0 and delivery["sweeper_alive"]


def test_the_store_says_it_takes_no_writes_while_locked_and_again_once_free(
    tmp_path: Path,
) -> None:
    db = Database(tmp_path / "t.db", busy_timeout_ms=100)
    db.probe()
    assert db.health().writable
    with locked(tmp_path / "t.db"):
        with pytest.raises(Unavailable):
            db.probe()
        health = db.health()
        assert not health.writable and "locked" in (health.error or "")
    db.probe()
    assert db.health().writable


def test_a_full_database_fails_writes_as_unavailable_and_recovers(tmp_path: Path) -> None:
    db = Database(tmp_path / "t.db")
    db.conn().execute("CREATE TABLE t (blob BLOB)")
    (pages,) = db.conn().execute("PRAGMA page_count").fetchone()
    # A full disk, for the writer's connection only: no page beyond those there now.
    db.write(lambda c: c.execute(f"PRAGMA max_page_count = {pages + 2}"))

    def fill(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO t VALUES (zeroblob(100000))")

    with pytest.raises(Unavailable, match="full"):
        db.write(fill)
    assert not db.health().writable
    db.write(lambda c: c.execute("PRAGMA max_page_count = 1000000"))
    db.write(fill)  # the writer thread lives on
    assert db.health().writable
