"""Deadline checks (pipeline/sender.py, ADR 0030): one `deadlines` task per window and process."""

from __future__ import annotations

from datetime import timedelta

import pytest

from deepflix.pipeline.events import CheckDeadline, Command, RunStage
from deepflix.pipeline.models import Stage
from deepflix.pipeline.sender import DEADLINE_WINDOW_S, deadlines_task
from tests.factories import T0
from tests.unit.test_admission_kicks import Clock, CountingTasks, sender

pytestmark = pytest.mark.unit
WINDOW = timedelta(seconds=DEADLINE_WINDOW_S)


def check(movie: str, deadline: timedelta, stage: Stage = Stage.story) -> CheckDeadline:
    return CheckDeadline(movie, stage, 1, T0 + deadline)


def test_the_deadlines_of_one_window_share_a_task_due_after_every_one_of_them() -> None:
    first = [T0 + timedelta(seconds=s) for s in (0, 0.001, 4, 9.999)]
    names = {deadlines_task(d)[0] for d in first}
    (name,) = names
    due = deadlines_task(first[0])[1]
    assert due == T0 + WINDOW and all(d < due for d in first)  # T0 starts a window
    assert name == f"deadlines-{int(due.timestamp() * 1000)}"
    # A deadline on the window's end is the next window's: its task runs strictly later.
    on_end, next_due = deadlines_task(due)
    assert on_end != name and next_due == due + WINDOW


def test_the_checks_of_one_window_make_one_call_and_other_commands_none() -> None:
    tasks, clock = CountingTasks(), Clock(T0)
    s = sender(tasks, clock)
    commands: list[Command] = [
        RunStage("a", Stage.story, 1),  # a message: sent from the outbox, not here
        check("a", timedelta(seconds=61)),
        check("b", timedelta(seconds=62), Stage.images),
        check("c", timedelta(seconds=300)),
    ]
    s.watch(commands)
    s.watch([check("d", timedelta(seconds=69))])  # another claim, the same window
    assert tasks.calls == [
        deadlines_task(T0 + timedelta(seconds=61))[0],
        deadlines_task(T0 + timedelta(seconds=300))[0],
    ]


def test_a_refused_repeat_is_remembered_and_a_failure_neither_raises_nor_is_remembered() -> None:
    tasks, clock = CountingTasks(), Clock(T0)
    s = sender(tasks, clock)
    name, _ = deadlines_task(T0 + timedelta(seconds=60))
    tasks.names.add(name)  # another process asked for this window's task
    s.watch([check("a", timedelta(seconds=60))])
    s.watch([check("b", timedelta(seconds=61))])
    assert tasks.calls == [name]  # refused once, then known

    tasks.down = True
    later = deadlines_task(T0 + timedelta(seconds=120))[0]
    s.watch([check("c", timedelta(seconds=120))])  # the minute sweep is the net: no error
    s.watch([check("d", timedelta(seconds=121))])  # the queue rests: not even tried
    assert tasks.calls == [name, later]
    assert s.health.resting() == {"tasks"}
    tasks.down = False
    s.health.worked("tasks")  # (its rest over)
    s.watch([check("e", timedelta(seconds=122))])
    assert tasks.calls == [name, later, later] and later in tasks.names
