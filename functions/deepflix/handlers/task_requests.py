"""Cloud Tasks and Cloud Scheduler requests (dispatch, deadline, webhook, sweep) on the pipeline."""

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
    try:
        if kind == "dispatch":
            pipeline.dispatch(DispatchTask.model_validate(body).stage)
        elif kind == "deadline":
            task = DeadlineTask.model_validate(body)
            pipeline.check_deadline(task.movie_id, task.stage, task.attempt)
        elif kind == "webhook":
            hook = WebhookTask.model_validate(body)
            pipeline.deliver_webhook(hook.movie_id, hook.attempt)
        elif kind == "sweep":
            pipeline.sweep()
            prune()
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
