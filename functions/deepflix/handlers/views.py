"""JSON views of movies and queue positions: the API's public shapes."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from deepflix.pipeline.eta import Eta
from deepflix.pipeline.models import CAPTIONS, STAGES, STORY, VIDEO, Movie, StageState
from deepflix.pipeline.position import QueuePosition


def _time(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


def links(movie_id: str) -> dict[str, str]:
    base = f"/api/movies/{movie_id}"
    return {
        "self": base,
        "status": f"{base}/status",
        "position": f"/api/queue/{movie_id}/position",
        "cancel": f"{base}/cancel",
        "retry": f"{base}/retry",
    }


def position_view(pos: QueuePosition | None) -> dict[str, Any] | None:
    if pos is None:
        return None
    return {
        "queue": pos.stage.value,
        "position": pos.position,
        "ahead": pos.ahead,
        "total_waiting": pos.total_waiting,
        "running": pos.running,
        "eta_seconds": round(pos.eta_s, 2),
    }


def _s(seconds: float | None) -> float | None:
    return round(seconds, 2) if seconds is not None else None


def eta_view(eta: Eta | None) -> dict[str, Any]:
    """`eta_start_seconds` and `eta_finish_seconds` (None while unknown or, for the start,
    with no stage left to start), and `eta` with their bands and why either is unknown;
    `eta` is None for a movie that is done."""
    if eta is None:
        return {"eta_start_seconds": None, "eta_finish_seconds": None, "eta": None}
    return {
        "eta_start_seconds": _s(eta.start_s),
        "eta_finish_seconds": _s(eta.finish_s),
        "eta": {
            "start_seconds": _s(eta.start_s),
            "start_low_seconds": _s(eta.start_low),
            "start_high_seconds": _s(eta.start_high),
            "finish_seconds": _s(eta.finish_s),
            "finish_low_seconds": _s(eta.finish_low),
            "finish_high_seconds": _s(eta.finish_high),
            "unknown": eta.unknown,
        },
    }


def _stage_view(st: StageState) -> dict[str, Any]:
    return {
        "status": st.status.value,
        # This run's attempts that count against the retry policy (a client's retry starts
        # a new run; an attempt lost to an outage does not count), and the latest attempt's
        # number, which counts on across runs (as the journal, logs and jobs say it).
        "attempts": st.charged,
        "attempt": st.attempts,
        "progress": st.progress,
        "started_at": _time(st.started_at),
        "finished_at": _time(st.finished_at),
        "duration_seconds": st.duration_s,
        "ready_at": _time(st.ready_at),
        "last_error": st.last_error.model_dump(mode="json") if st.last_error else None,
    }


def artifact_view(movie: Movie, url: Callable[[str], str]) -> dict[str, Any]:
    arts = movie.artifacts
    poster = next((name for name in arts if name.startswith("poster")), None)
    return {
        "story": url(arts[STORY]) if STORY in arts else None,
        "images": [url(path) for name, path in sorted(arts.items()) if name.startswith("scene-")],
        "video": url(arts[VIDEO]) if VIDEO in arts else None,
        "poster": url(arts[poster]) if poster else None,
        "captions": url(arts[CAPTIONS]) if CAPTIONS in arts else None,
    }


def movie_view(
    movie: Movie,
    position: QueuePosition | None,
    url: Callable[[str], str],
    eta: Eta | None = None,
) -> dict[str, Any]:
    stage = movie.current_stage
    return {
        "movie_id": movie.id,
        "job_id": movie.id,
        "status": movie.status.value,
        "current_stage": stage.value if stage else None,
        "priority": movie.request.priority.value,
        "request": movie.request.model_dump(mode="json"),
        "created_at": _time(movie.created_at),
        "updated_at": _time(movie.updated_at),
        "finished_at": _time(movie.finished_at),
        "stages": {s.value: _stage_view(movie.stages[s]) for s in STAGES},
        "artifacts": artifact_view(movie, url),
        "position": position_view(position),
        "eta_seconds": round(position.eta_s, 2) if position else None,
        **eta_view(eta),
        "error": movie.error.model_dump(mode="json") if movie.error else None,
        "webhook": webhook_view(movie),
        "links": links(movie.id),
    }


def webhook_view(movie: Movie) -> dict[str, Any] | None:
    """The webhook's URL, every attempt (its status code or error), whether one was taken."""
    hook = movie.webhook
    if hook is None:
        return None
    return {
        "url": hook.url,
        "attempts": [a.model_dump(mode="json") for a in hook.attempts],
        "delivered": hook.delivered,
    }


class MovieViews:
    """movie_view with what depends on the movie alone kept per parsed movie, so a status
    answer renders only its queue position: the store hands out one parsed Movie per row
    version, and a movie is never changed in place (a transition returns a copy)."""

    def __init__(
        self,
        url: Callable[[str], str],
        size: int = 10_000,
        logs_url: Callable[[str], str | None] | None = None,
    ) -> None:
        self.url = url
        self.logs_url = logs_url
        self.size = size
        self._views: dict[str, tuple[Movie, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def __call__(
        self, movie: Movie, position: QueuePosition | None, eta: Eta | None = None
    ) -> dict[str, Any]:
        hit = self._views.get(movie.id)
        if hit is None or hit[0] is not movie:
            hit = (movie, movie_view(movie, None, self.url))
            with self._lock:
                if len(self._views) >= self.size:
                    self._views.pop(next(iter(self._views)))
                self._views[movie.id] = hit
        view = dict(hit[1])  # the keys stay in movie_view's order
        view["position"] = position_view(position)
        view["eta_seconds"] = round(position.eta_s, 2) if position else None
        view.update(eta_view(eta))
        if self.logs_url is not None:  # the API's views: the logs route, or the cloud's
            view["logs_url"] = self.logs_url(movie.id)
        return view


def summary_view(movie: Movie) -> dict[str, Any]:
    stage = movie.current_stage
    return {
        "movie_id": movie.id,
        "status": movie.status.value,
        "current_stage": stage.value if stage else None,
        "priority": movie.request.priority.value,
        "prompt": movie.request.prompt,
        "title": movie.request.title,
        "created_at": _time(movie.created_at),
        "links": links(movie.id),
    }
