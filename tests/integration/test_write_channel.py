"""The API process's write channel to the runtime: writes, errors and the runtime going away."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
from collections.abc import Iterator
from multiprocessing.connection import Connection
from typing import Any

import pytest

from deepflix.handlers.responses import http_status
from deepflix.handlers.writes import (
    CancelMovie,
    CreateMovie,
    PauseAdmission,
    ResumeAdmission,
    RetryMovie,
)
from deepflix.pipeline.errors import Conflict, DeepflixError, NotFound, Unavailable
from deepflix.pipeline.models import Movie, MovieCreate
from deepflix.runtime.write_channel import WriteClient, WriteServer
from tests import factories

pytestmark = pytest.mark.integration


class FakePipeline:
    """Answers as the runtime's pipeline would; `gate` holds a call until it is set."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.fail: BaseException | None = None
        self.ready = threading.Event()  # set when the API process says it serves

    def _done(self, op: str, arg: Any, movie: Movie | None) -> Movie | None:
        self.calls.append((op, arg))
        self.gate.wait(10)
        if self.fail is not None:
            raise self.fail
        return movie

    def create(self, request: MovieCreate, *, owner: str, idempotency_key: str | None) -> Movie:
        made = factories.movie(prompt=request.prompt)
        return self._done("create", (request, owner, idempotency_key), made)  # type: ignore[return-value]

    def cancel(self, movie_id: str) -> Movie:
        return self._done("cancel", movie_id, factories.movie())  # type: ignore[return-value]

    def retry(self, movie_id: str) -> Movie:
        return self._done("retry", movie_id, factories.movie())  # type: ignore[return-value]

    def pause_admission(self) -> None:
        self._done("pause", None, None)

    def resume_admission(self) -> None:
        self._done("resume", None, None)


@pytest.fixture
def linked() -> Iterator[tuple[FakePipeline, WriteClient, socket.socket, list[str]]]:
    """The channel as `deepflix serve` makes it, both ends in this process; `ours` is the
    runtime's socket, to shut down as its process going away would."""
    pipeline = FakePipeline()
    ours, theirs = socket.socketpair()
    server_end = Connection(os.dup(ours.fileno()))
    server = WriteServer(pipeline, server_end, threads=4, on_ready=pipeline.ready.set)  # type: ignore[arg-type]
    server.start()
    closed: list[str] = []
    link = WriteClient(Connection(theirs.detach()), on_close=lambda: closed.append("closed"))
    yield pipeline, link, ours, closed
    ours.shutdown(socket.SHUT_RDWR)
    ours.close()
    link.conn.close()


def run(link: WriteClient, coro_fn: Any) -> Any:
    async def main() -> Any:
        link.start()
        return await coro_fn()

    return asyncio.run(main())


def test_writes_reach_the_runtime_and_return_its_movie(linked: Any) -> None:
    pipeline, link, _, _ = linked
    request = factories.request(prompt="a storm at sea", priority="high")

    async def calls() -> tuple[Movie | None, ...]:
        return (
            await link(CreateMovie(request=request, owner="anonymous", idempotency_key="k-1")),
            await link(CancelMovie(movie_id="m-1")),
            await link(RetryMovie(movie_id="m-2")),
            await link(PauseAdmission()),
            await link(ResumeAdmission()),
        )

    created, cancelled, retried, paused, resumed = run(link, calls)
    assert created is not None and created.request.prompt == "a storm at sea"
    assert isinstance(cancelled, Movie) and isinstance(retried, Movie)
    assert paused is None and resumed is None
    assert pipeline.calls == [
        ("create", (request, "anonymous", "k-1")),
        ("cancel", "m-1"),
        ("retry", "m-2"),
        ("pause", None),
        ("resume", None),
    ]


def test_the_api_process_says_it_serves_once_its_link_is_open(linked: Any) -> None:
    pipeline, link, _, _ = linked

    async def started() -> bool:
        for _ in range(200):
            if pipeline.ready.is_set():
                return True
            await asyncio.sleep(0.01)
        return False

    assert not pipeline.ready.is_set()
    assert run(link, started)


def test_writes_in_flight_are_answered_in_any_order(linked: Any) -> None:
    pipeline, link, _, _ = linked

    async def calls() -> list[Movie | None]:
        first = asyncio.ensure_future(link(CancelMovie(movie_id="slow")))
        await asyncio.sleep(0.05)
        assert not first.done()
        return list(await asyncio.gather(first, link(RetryMovie(movie_id="fast"))))

    pipeline.gate.clear()
    threading.Timer(0.3, pipeline.gate.set).start()
    assert len(run(link, calls)) == 2


@pytest.mark.parametrize(
    "error",
    [
        Conflict("already finished", details={"status": "succeeded"}),
        NotFound("no movie with id 'x'"),
        Unavailable("the embedded database is unavailable", retry_after_s=7),
    ],
)
def test_the_runtimes_errors_arrive_as_themselves(linked: Any, error: DeepflixError) -> None:
    pipeline, link, _, _ = linked
    pipeline.fail = error
    with pytest.raises(type(error)) as raised:
        run(link, lambda: link(CancelMovie(movie_id="m-1")))
    assert (raised.value.message, raised.value.details) == (error.message, error.details)
    assert http_status(raised.value) == http_status(error)
    if isinstance(error, Unavailable):
        assert isinstance(raised.value, Unavailable) and raised.value.retry_after_s == 7


def test_an_unexpected_failure_is_logged_there_and_internal_here(
    linked: Any, caplog: pytest.LogCaptureFixture
) -> None:
    pipeline, link, _, _ = linked
    pipeline.fail = ZeroDivisionError("boom")
    with caplog.at_level(logging.ERROR), pytest.raises(DeepflixError) as raised:
        run(link, lambda: link(RetryMovie(movie_id="m-1")))
    assert type(raised.value) is DeepflixError and http_status(raised.value) == 500
    assert "boom" not in raised.value.message
    assert any("retry" in r.getMessage() and r.exc_info for r in caplog.records)


def test_the_runtime_going_away_fails_writes_in_flight_and_says_so(linked: Any) -> None:
    pipeline, link, ours, closed = linked
    pipeline.gate.clear()

    async def calls() -> None:
        pending = asyncio.ensure_future(link(CancelMovie(movie_id="m-1")))
        await asyncio.sleep(0.05)
        ours.shutdown(socket.SHUT_RDWR)  # the runtime's end closes (a kill -9 does this)
        with pytest.raises(Unavailable):
            await pending
        with pytest.raises(Unavailable):  # and later writes fail at once
            await link(RetryMovie(movie_id="m-2"))

    run(link, calls)
    pipeline.gate.set()
    assert closed == ["closed"]


def test_the_runtime_closing_is_seen_without_any_write(linked: Any) -> None:
    _, link, ours, closed = linked

    async def idle() -> None:
        ours.shutdown(socket.SHUT_RDWR)
        for _ in range(100):
            if closed:
                return
            await asyncio.sleep(0.01)

    run(link, idle)
    assert closed == ["closed"]


def test_closing_is_not_the_runtime_going_away(linked: Any) -> None:
    _, link, ours, closed = linked

    async def open_then_close() -> None:
        link.start()
        await asyncio.sleep(0.05)
        link.close()
        ours.shutdown(socket.SHUT_RDWR)
        await asyncio.sleep(0.05)
        with pytest.raises(Unavailable):  # and a write after it is refused
            await link(CancelMovie(movie_id="m-1"))

    asyncio.run(open_then_close())
    assert closed == []
