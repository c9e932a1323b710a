"""The live hub: wakes only the streams of movies that changed, renders the dashboard's events
once for all, lives through a failing change feed, and ends every stream when closed."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from deepflix.handlers import live
from deepflix.handlers.live import CLOSED, Changed, Hub

pytestmark = pytest.mark.unit


class Feed:
    interval_s = 0.001
    complete = True

    def __init__(self, script: list[Changed | Exception | None]) -> None:
        self.script = script

    def latest(self) -> int:
        return 0

    def since(self, seq: int) -> Changed | None:
        step = self.script.pop(0) if self.script else None
        if isinstance(step, Exception):
            raise step
        return step


async def now(fn: Callable[[], Any]) -> Any:
    return fn()


def test_changes_reach_the_right_streams_after_a_failed_look(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(live, "FAILED_S", 0.001)
    rendered: list[list[str]] = []

    def dashboard(ids: list[str]) -> list[bytes]:
        rendered.append(ids)
        return [f"queues {ids}".encode()]

    async def scenario() -> tuple[object, object, bool, object]:
        hub = Hub(Feed([OSError("locked"), (1, ["a"]), None]), dashboard, now)
        board, board2 = hub.open(None), hub.open(None)
        a, b = hub.open("a"), hub.open("b")
        got = await asyncio.wait_for(a.items.get(), 5)
        frame = await asyncio.wait_for(board.items.get(), 5)
        assert await asyncio.wait_for(board2.items.get(), 5) == frame
        quiet = b.items.empty()
        hub.close()
        return got, frame, quiet, await asyncio.wait_for(b.items.get(), 5)

    got, frame, quiet, end = asyncio.run(scenario())
    assert got is True and frame == b"queues ['a']" and quiet and end is CLOSED
    assert rendered == [["a"]]  # once for both dashboards
