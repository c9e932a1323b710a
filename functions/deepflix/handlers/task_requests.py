"""Cloud Tasks and Cloud Scheduler requests (dispatch, deadlines, webhook, sweep)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from deepflix import logs
from deepflix.pipeline.errors import Unavailable
from deepflix.pipeline.messages import DeadlineTask, DispatchTask, WebhookTask
from deepflix.pipeline.service import Pipeline

log = logs.get("functions")
AGE_FIELD = "oldest_waiting_age_s"


@dataclass(frozen=True)
class TaskAnswer:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


def handle_task(
    path: str, body: Any, *, pipeline: Pipeline, prune: Callable[[], int]
) -> TaskAnswer:
    """Run the task the last segment of `path` names.

    A malformed task is acknowledged (2xx) after logging: redelivery cannot fix it. An
    outage answers 503, so Cloud Tasks retries with the queue's backoff. The sweep also
    runs the store's housekeeping (`prune`: emptied queue buckets lengthen position sums).
    """
    kind = path.rstrip("/").rsplit("/", 1)[-1]
    # A line per task, in the trace its sender gave it (a movie's deadline, say).
    log.info("task %s received", kind, extra={"movie_id": _movie_of(body)})
    try:
        if kind == "dispatch":
            pipeline.dispatch(DispatchTask.model_validate(body).stage)
        elif kind == "deadlines":
            pipeline.time_out_overdue()
        elif kind == "deadline":  # one attempt's, as enqueued before ADR 0030
            task = DeadlineTask.model_validate(body)
            pipeline.check_deadline(task.movie_id, task.stage, task.attempt)
        elif kind == "webhook":
            hook = WebhookTask.model_validate(body)
            pipeline.deliver_webhook(hook.movie_id, hook.attempt)
        elif kind == "sweep":
            pipeline.sweep()
            prune()
            log_queue_ages(pipeline)
        else:
            log.error("dropping a task of unknown kind %r: %r", kind, body)
            return TaskAnswer(200, {"dropped": True})
    except ValidationError as e:
        log.error("dropping malformed task %s: %r (%s)", kind, body, e)
        return TaskAnswer(200, {"dropped": True})
    except Unavailable as e:
        log.warning("task %s deferred: %s", kind, e.message)
        return TaskAnswer(503, {"error": e.message}, {"Retry-After": str(e.retry_after_s)})
    return TaskAnswer(200, {"ok": True})


def log_queue_ages(pipeline: Pipeline) -> None:
    """One line a stage with `oldest_waiting_age_s`: a log-based metric turns it into the
    gauge the "oldest waiting movie" alert reads (infra/monitoring.tf)."""
    try:
        ages = pipeline.oldest_waiting_s()
    except Unavailable as e:  # a gauge that misses a minute; the sweep itself is done
        log.warning("queue ages not measured: %s", e.message)
        return
    for stage, age in ages.items():
        log.info("queue age", extra={"stage": stage.value, AGE_FIELD: round(age, 3)})


def _movie_of(body: Any) -> str | None:
    movie_id = body.get("movie_id") if isinstance(body, dict) else None
    return movie_id if isinstance(movie_id, str) else None
