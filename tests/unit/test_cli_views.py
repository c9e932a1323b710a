"""What the CLI prints: short ids, states in words, estimates, and tables that fit the width."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest
from rich.console import Console, RenderableType

from deepflix.entrypoints import cli_views as views
from deepflix.handlers.examples import ETA, ETA_PAUSED, MOVIE_VIEW, NO_ETA

pytestmark = pytest.mark.unit

LONG_PROMPT = "A lighthouse keeper befriends a storm that " + "keeps coming back " * 8


def view(**changes: Any) -> dict[str, Any]:
    out = copy.deepcopy(dict(MOVIE_VIEW[0]))
    out.update(changes)
    return out


def render(thing: RenderableType, width: int) -> list[str]:
    console = Console(width=width, record=True, force_terminal=True, color_system=None)
    console.print(thing)
    return console.export_text().splitlines()


def test_short_ids_are_the_dashboards_eight_characters() -> None:
    assert views.short_id("133678d322344c66a4f495fbedac8e12") == "133678d3"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, "-"), (0.4, "0s"), (41.3, "41s"), (125, "2m05s"), (3725, "1h02m")],
)
def test_durations_read_as_people_say_them(seconds: float | None, text: str) -> None:
    assert views.duration(seconds) == text


def test_the_estimate_says_when_or_why_not() -> None:
    assert views.eta(ETA) == "ready in ~41s (30s-59s)"
    assert views.eta(ETA_PAUSED) == "ready: unknown while admission is paused"
    assert views.eta(NO_ETA) == ""
    unknown = {"eta": {**ETA["eta"], "unknown": "no_history:video"}}  # type: ignore[dict-item]
    assert views.eta(unknown) == "ready: unknown (no history in video)"


def test_states_say_waiting_where_running_or_why_it_failed() -> None:
    assert views.state(view()) == "waiting in images, #3 of 5"
    running = view()
    running["stages"]["images"].update(status="running", progress=40)
    assert views.state(running) == "running images (40%)"
    paused = view(status="queued", current_stage="story", admission_paused=True)
    assert views.state(paused) == "waiting for admission (paused)"
    error = {
        "code": "injected_fault",
        "message": "injected permanent fault in images",
        "retryable": False,
        "attempt": 3,
        "at": "2026-11-29T12:00:03+00:00",
    }
    failed = view(status="failed", current_stage=None, error=error)
    failed["stages"]["images"].update(status="failed", last_error=error)
    assert views.state(failed) == (
        "failed in images after attempt 3: injected permanent fault in images (injected_fault)"
    )
    backing_off = view()
    backing_off["stages"]["images"]["last_error"] = {**error, "attempt": 1}
    assert views.state(backing_off).startswith("retrying images after attempt 1 failed")


def test_a_create_says_where_the_movie_really_waits() -> None:
    answer = {"movie_id": "ab" * 16, "position": 1, **ETA}
    longest = {"queue": "video", "ahead": 11, "wait_seconds": 90.0}
    assert views.created({**answer, "longest_wait": longest}) == (
        "movie abababab queued, #1 for admission; 11 ahead of it in video; ready in ~41s (30s-59s)"
    )
    paused = views.created({**answer, **ETA_PAUSED, "admission_paused": True})
    assert "admission, which is paused" in paused and "deepflix resume" in paused


@pytest.mark.parametrize("width", [40, 80, 120, 200])
def test_the_progress_display_fits_the_terminal_width(width: int) -> None:
    shown = view(request={**MOVIE_VIEW[0]["request"], "prompt": LONG_PROMPT})  # type: ignore[dict-item]
    shown["stages"]["images"].update(status="running", progress=55)
    lines = render(views.follow_view(shown), width)
    assert len(lines) == 4  # a row per stage and the state: nothing wrapped
    assert all(len(line) <= width for line in lines)
    # The bars take what the width leaves them: wider terminals, longer bars.
    assert ("━" * 8 in lines[1]) == (width >= 80)


@pytest.mark.parametrize("width", [60, 80, 120])
def test_the_list_has_headers_and_one_line_per_movie_at_any_width(width: int) -> None:
    now = datetime(2026, 11, 29, 12, 5, tzinfo=UTC)
    movies = [
        {
            "movie_id": f"{n:02d}" + "c" * 30,
            "status": status,
            "priority": "normal",
            "prompt": LONG_PROMPT,
            "title": "Keeper" if n == 1 else None,
            "created_at": "2026-11-29T12:00:00+00:00",
        }
        for n, status in enumerate(["succeeded", "failed", "video"])
    ]
    lines = render(views.list_table(movies, now), width)
    assert lines[0].split()[:4] == ["ID", "STATUS", "PRIORITY", "AGE"]
    assert len(lines) == 4 and all(len(line) <= width for line in lines)
    assert lines[1].startswith("00cccccc") and "5m00s" in lines[1]
    assert "Keeper" in lines[2]  # the title where there is one


@pytest.mark.parametrize("width", [60, 100, 160])
def test_the_watch_table_fits_the_width(width: int) -> None:
    queues = {
        "admission_paused": True,
        "queues": {
            s: {"waiting": 2, "running": 1, "concurrency": 1, "paused": s == "video"}
            for s in views.STAGES
        },
    }
    rows = [view(movie_id=f"{n}" * 32) for n in range(3)]
    lines = render(views.watch_table(queues, rows), width)
    assert "admission PAUSED" in lines[0]
    body = [line for line in lines if line[:8] in {"00000000", "11111111", "22222222"}]
    assert [line[:8] for line in body] == ["00000000", "11111111", "22222222"]
    assert all(len(line) <= width for line in lines)
