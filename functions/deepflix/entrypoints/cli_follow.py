"""Following movies as they change: one movie's stream of events, or the live watch table."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

from rich.console import Console
from rich.live import Live

from deepflix.entrypoints import cli_views as views
from deepflix.entrypoints.cli_client import ApiError, Client

PERCENT = re.compile(r" \(\d+%\)")
POLL_S = 0.5
WATCH_S = 1.0
WATCH_ROWS = 15


def changes(client: Client, movie_id: str) -> Iterator[dict[str, Any]]:
    """The movie's status view at once and after each change, until it ends: from its
    event stream, or by asking every POLL_S where the service has none."""
    path = f"/api/movies/{movie_id}"
    try:
        while True:
            last = None
            for event, data in client.events(f"{path}/events"):
                if event == "movie":
                    last = json.loads(data)
                    yield last
            if last is not None and last["status"] in views.TERMINAL:
                return
            # The stream ended early (the service restarted, a proxy's timeout): again.
    except ApiError as e:
        if e.status not in (404, 405):
            raise
    except TimeoutError:
        pass  # a quiet stream past the read timeout: ask instead
    while True:
        view = client.get(f"{path}/status")
        yield view
        if view["status"] in views.TERMINAL:
            return
        time.sleep(POLL_S)


def follow(client: Client, movie_id: str, console: Console) -> dict[str, Any]:
    """Show the movie's progress until it ends; its last view. At a terminal the bars are
    redrawn in place (fitting its width); otherwise a line is printed per change of state."""
    last: dict[str, Any] | None = None
    if console.is_terminal:
        with Live(console=console, auto_refresh=False, transient=False) as live:
            for view in changes(client, movie_id):
                live.update(views.follow_view(view), refresh=True)
                last = view
    else:
        said = ""
        for view in changes(client, movie_id):
            # A line per change of state, not per percent: these are read as a log.
            line = PERCENT.sub("", views.state(view))
            if line != said:
                console.print(f"{views.short_id(movie_id)} {line}", soft_wrap=True)
                said = line
            last = view
    assert last is not None  # nosec B101 # an invariant, not a check of input
    return last


def watch_views(client: Client, status: str | None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The queues, and the status views of the newest movies (active ones unless `status`)."""
    queues = client.get("/api/queues")
    page = client.get("/api/movies", limit=100, status=status)
    movies = page["movies"]
    if status is None:
        movies = [m for m in movies if m["status"] not in views.TERMINAL]
    else:  # where the service does not filter yet, here
        movies = [m for m in movies if m["status"] == status]
    shown = [client.get(f"/api/movies/{m['movie_id']}/status") for m in movies[:WATCH_ROWS]]
    return queues, shown


def watch(
    client: Client,
    console: Console,
    *,
    status: str | None,
    rounds: int | None,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Redraw the queues and movies every WATCH_S until Ctrl-C (or `rounds` redraws); not
    at a terminal, print them each time instead."""
    n = 0
    if not console.is_terminal:
        while rounds is None or n < rounds:
            console.print(views.watch_table(*watch_views(client, status)))
            n += 1
            if rounds is None or n < rounds:
                sleep(WATCH_S)
        return
    with Live(console=console, auto_refresh=False, transient=False) as live:
        while rounds is None or n < rounds:
            queues, shown = watch_views(client, status)
            live.update(views.watch_table(queues, shown), refresh=True)
            n += 1
            if rounds is None or n < rounds:
                sleep(WATCH_S)
