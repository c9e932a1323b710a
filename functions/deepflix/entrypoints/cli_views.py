"""What the CLI shows: movies, stages and queues as text and rich tables that fit the terminal."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from rich.console import Group, RenderableType
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

SHORT_ID = 8  # as the dashboard shows them
STAGES = ("story", "images", "video")
TERMINAL = frozenset({"succeeded", "failed", "cancelled"})
STYLE_OF = {"succeeded": "green", "failed": "red", "cancelled": "yellow", "running": "cyan"}


def short_id(movie_id: str) -> str:
    return movie_id[:SHORT_ID]


def duration(seconds: float | None) -> str:
    """A span for people: 4s, 2m05s, 1h02m."""
    if seconds is None:
        return "-"
    s = max(0, round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def age(at: str | None, now: datetime | None = None) -> str:
    if not at:
        return "-"
    then = datetime.fromisoformat(at)
    return duration(((now or datetime.now(UTC)) - then).total_seconds())


def name_of(movie: dict[str, Any]) -> str:
    """The title where there is one, else the prompt."""
    request = movie.get("request") or {}
    for text in (movie.get("title"), request.get("title"), movie.get("prompt")):
        if text:
            return str(text)
    return str(request.get("prompt") or "")


def failure(view: dict[str, Any]) -> str | None:
    """Why a failed movie failed: the stage, the error's message and code, the attempt."""
    error = view.get("error")
    if not error:
        return None
    stage = next(
        (s for s in STAGES if view["stages"][s]["status"] == "failed"), view.get("current_stage")
    )
    where = f" in {stage}" if stage else ""
    return f"failed{where} after attempt {error['attempt']}: {error['message']} ({error['code']})"


def state(view: dict[str, Any]) -> str:
    """Where a movie is, in words: waiting (where, which place), running, or how it ended."""
    status = view["status"]
    if status == "failed":
        return failure(view) or "failed"
    if status in TERMINAL:
        return str(status)
    if view.get("admission_paused"):
        return "waiting for admission (paused)"
    stage = view.get("current_stage") or "story"
    st = view["stages"][stage]
    if st["status"] == "running":
        return f"running {stage} ({st['progress']}%)"
    pos = view.get("position")
    place = f", #{pos['position']} of {pos['total_waiting']}" if pos else ""
    if st.get("last_error"):
        return f"retrying {stage} after attempt {st['last_error']['attempt']} failed{place}"
    if status == "queued":
        return f"waiting for admission{place}"
    return f"waiting in {stage}{place}"


def eta(view: dict[str, Any]) -> str:
    """When the film should be ready, with its band, or why that is not known."""
    e = view.get("eta")
    if not e:
        return ""
    if e.get("unknown"):
        reason = str(e["unknown"])
        if reason == "admission_paused":
            return "ready: unknown while admission is paused"
        return "ready: unknown (" + reason.replace("_", " ").replace(":", " in ") + ")"
    if e.get("finish_seconds") is None:
        return ""
    low, high = duration(e["finish_low_seconds"]), duration(e["finish_high_seconds"])
    return f"ready in ~{duration(e['finish_seconds'])} ({low}-{high})"


def created(answer: dict[str, Any]) -> str:
    """The line a submit prints: the id, where the movie waits and when it should be ready."""
    sid = short_id(answer["movie_id"])
    if answer.get("admission_paused"):
        where = "waits for admission, which is paused (deepflix resume)"
    else:
        pos = answer.get("position")
        where = f"queued, #{pos} for admission" if pos else "queued"
        longest = answer.get("longest_wait")
        if longest and longest.get("ahead"):
            where += f"; {longest['ahead']} ahead of it in {longest['queue']}"
    finish = eta(answer)
    return f"movie {sid} {where}" + (f"; {finish}" if finish else "")


def _bar(progress: int, status: str) -> ProgressBar:
    done = 100 if status == "succeeded" else progress
    return ProgressBar(total=100, completed=done, width=None, pulse=False)


def stages_table(view: dict[str, Any]) -> Table:
    """One row per stage: its status, a bar, attempts, time; bars shrink to fit the width."""
    table = Table(box=None, show_header=False, pad_edge=False, expand=True)
    table.add_column("stage", no_wrap=True, width=6)
    table.add_column("status", no_wrap=True, width=9)
    table.add_column("bar", ratio=1, min_width=5)
    table.add_column("pct", no_wrap=True, justify="right", width=4)
    table.add_column("time", no_wrap=True, justify="right", width=6)
    for s in STAGES:
        st = view["stages"][s]
        took = st.get("duration_seconds")
        table.add_row(
            s,
            Text(st["status"], style=STYLE_OF.get(st["status"], "")),
            _bar(st["progress"], st["status"]),
            f"{100 if st['status'] == 'succeeded' else st['progress']}%",
            duration(took) if took is not None else "",
        )
    return table


def follow_view(view: dict[str, Any]) -> RenderableType:
    """What `submit --wait` redraws: the stage bars, then the state and the estimate."""
    line = Text(f"{short_id(view['movie_id'])} {state(view)}", overflow="ellipsis", no_wrap=True)
    finish = eta(view) if view["status"] not in TERMINAL else ""
    if finish:
        line.append(f"; {finish}")
    return Group(stages_table(view), line)


def status_view(view: dict[str, Any]) -> RenderableType:
    """`deepflix status`: the movie, its state and estimate, each stage, its files."""
    request = view["request"]
    head = Table(box=None, show_header=False, pad_edge=False)
    head.add_column(style="bold", no_wrap=True)
    head.add_column(overflow="fold")
    head.add_row("movie", f"{short_id(view['movie_id'])} ({view['movie_id']})")
    head.add_row("prompt", request["prompt"])
    if request.get("title"):
        head.add_row("title", request["title"])
    head.add_row(
        "asked",
        f"{request['style']}, {request['scene_count']} scenes, {request['priority']} priority",
    )
    head.add_row("state", Text(state(view), style=STYLE_OF.get(view["status"], "")))
    finish = eta(view)
    if finish:
        head.add_row("eta", finish)
    head.add_row("created", f"{age(view['created_at'])} ago")
    stages = Table(box=None, pad_edge=False, expand=False)
    for column in ("stage", "status", "progress", "attempts", "took", "last error"):
        stages.add_column(column, no_wrap=column != "last error", overflow="fold")
    for s in STAGES:
        st = view["stages"][s]
        err = st.get("last_error")
        stages.add_row(
            s,
            Text(st["status"], style=STYLE_OF.get(st["status"], "")),
            f"{st['progress']}%",
            str(st["attempt"]),
            duration(st.get("duration_seconds")),
            f"{err['message']} ({err['code']}, attempt {err['attempt']})" if err else "",
        )
    files = [f"{k}: {v}" for k, v in view["artifacts"].items() if v and k != "images"]
    if view["artifacts"].get("images"):
        files.append(f"images: {len(view['artifacts']['images'])} stills")
    parts: list[RenderableType] = [head, Text(""), stages]
    if files:
        parts += [Text(""), Text("files  " + "\n       ".join(files))]
    return Group(*parts)


def list_table(movies: list[dict[str, Any]], now: datetime | None = None) -> Table:
    """`deepflix list`: a header and a row per movie; the title column gives way to the width."""
    table = Table(box=None, pad_edge=False, expand=True)
    table.add_column("ID", no_wrap=True, width=SHORT_ID)
    table.add_column("STATUS", no_wrap=True, width=9)
    table.add_column("PRIORITY", no_wrap=True, width=8)
    table.add_column("AGE", no_wrap=True, justify="right", width=6)
    table.add_column("TITLE / PROMPT", no_wrap=True, overflow="ellipsis", ratio=1)
    for m in movies:
        table.add_row(
            short_id(m["movie_id"]),
            Text(m["status"], style=STYLE_OF.get(m["status"], "")),
            m["priority"],
            age(m.get("created_at"), now),
            name_of(m),
        )
    return table


def queues_line(queues: dict[str, Any]) -> str:
    """Admission and each stage: waiting, running of its limit, paused where it is."""
    parts = ["admission " + ("PAUSED" if queues.get("admission_paused") else "open")]
    for s in STAGES:
        q = queues["queues"][s]
        paused = " PAUSED" if q.get("paused") else ""
        running = f"{q['running']}/{q['concurrency']} running"
        parts.append(f"{s} {q['waiting']} waiting, {running}{paused}")
    return " | ".join(parts)


def watch_table(queues: dict[str, Any], views: list[dict[str, Any]]) -> RenderableType:
    """`deepflix watch`: the queues, then each movie with its state and bars."""
    table = Table(box=None, pad_edge=False, expand=True)
    table.add_column("ID", no_wrap=True, width=SHORT_ID)
    table.add_column("TITLE / PROMPT", no_wrap=True, overflow="ellipsis", ratio=2, min_width=8)
    for s in STAGES:
        table.add_column(s.upper(), ratio=1, min_width=5)
    table.add_column("STATE", no_wrap=True, overflow="ellipsis", ratio=2, min_width=8)
    for v in views:
        bars = [_bar(v["stages"][s]["progress"], v["stages"][s]["status"]) for s in STAGES]
        said = Text(state(v), style=STYLE_OF.get(v["status"], ""))
        table.add_row(short_id(v["movie_id"]), name_of(v), *bars, said)
    head = Text(queues_line(queues), overflow="fold")
    return Group(head, table)
