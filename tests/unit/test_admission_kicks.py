"""Admission kicks (pipeline/sender.py): one Cloud Tasks call per window and process."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import pytest

from deepflix.pipeline.errors import Unavailable
from deepflix.pipeline.events import Admit
from deepflix.pipeline.sender import Sender, admit_task
from tests.factories import T0

pytestmark = pytest.mark.unit


class CountingTasks:
    """A TaskQueue that counts its calls and refuses a repeated name, as Cloud Tasks does."""

    def __init__(self) -> None:
        self.calls: list[str | None] = []
        self.names: set[str] = set()
        self.down = False

    def enqueue(
        self,
        kind: str,
        payload: Mapping[str, Any],
        *,
        name: str | None = None,
        at: datetime | None = None,
    ) -> bool:
        self.calls.append(name)
        if self.down:
            raise Unavailable("cloud tasks: down")
        if name in self.names:
            return False  # ALREADY_EXISTS
        self.names.add(name or "")
        return True


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def sender(tasks: CountingTasks, clock: Clock) -> Sender:
    unused: Any = None  # no store, bus or runner is reached by an admission kick
    return Sender(store=unused, tasks=tasks, events=unused, jobs=unused, clock=clock)


def test_the_creates_of_one_window_make_one_call() -> None:
    tasks, clock = CountingTasks(), Clock(T0 + timedelta(milliseconds=100))
    s = sender(tasks, clock)
    for ms in (100, 400, 900):
        clock.now = T0 + timedelta(milliseconds=ms)
        assert s.try_send("m", Admit("m"))
    assert tasks.calls == [admit_task(T0)[0]]
    clock.now = T0 + timedelta(seconds=1, milliseconds=1)  # the next window: its own task
    assert s.try_send("m", Admit("m"))
    assert tasks.calls == [admit_task(T0)[0], admit_task(clock.now)[0]]


def test_a_refused_repeat_is_remembered_and_a_failure_is_not() -> None:
    tasks, clock = CountingTasks(), Clock(T0)
    name, _ = admit_task(T0)
    tasks.names.add(name)  # another process enqueued this window's task
    s = sender(tasks, clock)
    assert s.try_send("m", Admit("m"))
    assert s.try_send("m", Admit("m"))
    assert tasks.calls == [name]  # refused once, then known

    clock.now = T0 + timedelta(seconds=1)
    tasks.down = True
    assert not s.try_send("m", Admit("m"))  # kept in the outbox: the transport failed
    tasks.down = False
    assert s.try_send("m", Admit("m"))  # tried again, not taken for done
    admits = [c for c in tasks.calls if c and c.startswith("admit-")]  # a sweep was asked too
    assert admits == [name, admit_task(clock.now)[0], admit_task(clock.now)[0]]
    assert admit_task(clock.now)[0] in tasks.names
