"""Where a new movie will wait longest, as its create's answer tells it."""

from __future__ import annotations

from typing import Any

from deepflix.pipeline.outlook import Outlook


def longest_wait(outlook: Outlook) -> dict[str, Any] | None:
    """The queue on the movie's way where it should wait longest (Outlook.longest_wait)."""
    wait = outlook.longest_wait()
    if wait is None:
        return None
    return {"queue": wait.stage.value, "ahead": wait.ahead, "wait_seconds": round(wait.wait_s, 2)}
