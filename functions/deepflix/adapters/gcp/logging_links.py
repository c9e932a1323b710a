"""Links to a movie's lines in Cloud Logging, where the cloud's jobs and functions log."""

from __future__ import annotations

import urllib.parse

CONSOLE = "https://console.cloud.google.com/logs/query"


def movie_logs_url(project: str, movie_id: str) -> str:
    """The Logs Explorer showing every line that names the movie: the functions' and the
    Cloud Run jobs' structured logs carry `movie_id` (deepflix/logs.py)."""
    query = f'jsonPayload.movie_id="{movie_id}"'
    return (
        f"{CONSOLE};query={urllib.parse.quote(query, safe='')}"
        f"?project={urllib.parse.quote(project, safe='')}"
    )
