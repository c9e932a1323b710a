"""TaskQueue on Cloud Tasks: named HTTP tasks with OIDC tokens, one URL per task kind."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from google.api_core import exceptions as gexc
from google.cloud import tasks_v2

from deepflix import tracing
from deepflix.adapters.gcp.clients import Lazy, translate_outages
from deepflix.metering import METER

# Cloud Tasks accepts an HTTP task's dispatch deadline only within [15 s, 30 min].
MIN_DISPATCH_DEADLINE_S = 15.0
MAX_DISPATCH_DEADLINE_S = 1800.0


def task_id(name: str) -> str:
    """A task id from a logical name: hex of its SHA-256.

    Cloud Tasks wants ids of [A-Za-z0-9_-] and spreads load best when ids do not share a
    prefix (its docs warn against sequential names); a hash gives both, and the same logical
    name always maps to the same id, so a repeat is refused with ALREADY_EXISTS.
    """
    return hashlib.sha256(name.encode()).hexdigest()


def clamp_deadline(seconds: float) -> float:
    return min(MAX_DISPATCH_DEADLINE_S, max(MIN_DISPATCH_DEADLINE_S, seconds))


class CloudTasksQueue:
    """`TaskQueue` on one Cloud Tasks queue; each task kind goes to its own URL.

    The URL of a kind is `targets[kind]` if given, else `{target_base_url}/{kind}`. With a
    service account email every task carries an OIDC token for it, for `audience` (the
    service URL, which the target's handler checks; the task URL if none is given).
    """

    def __init__(
        self,
        *,
        project: str,
        location: str,
        queue: str,
        target_base_url: str,
        client: Any | Callable[[], Any] = tasks_v2.CloudTasksClient,
        service_account_email: str | None = None,
        audience: str | None = None,
        targets: Mapping[str, str] | None = None,
        dispatch_deadline_s: float = 60.0,
        dispatch_deadlines: Mapping[str, float] | None = None,
        rpc_timeout_s: float = 10.0,
        test_tokens: Callable[[str], str] | None = None,
    ) -> None:
        self.queue_path = f"projects/{project}/locations/{location}/queues/{queue}"
        self.target_base_url = target_base_url.rstrip("/")
        self.service_account_email = service_account_email
        self.audience = audience
        self.targets = dict(targets or {})
        self.dispatch_deadline_s = dispatch_deadline_s
        self.dispatch_deadlines = dict(dispatch_deadlines or {})
        self.rpc_timeout_s = rpc_timeout_s
        # Emulator runs only: the emulator attaches no OIDC token, so the task carries one.
        self.test_tokens = test_tokens
        self._client: Lazy[Any] = Lazy(client)

    def url(self, kind: str) -> str:
        return self.targets.get(kind, f"{self.target_base_url}/{kind}")

    def task_name(self, name: str) -> str:
        return f"{self.queue_path}/tasks/{task_id(name)}"

    def build_task(
        self,
        kind: str,
        payload: Mapping[str, Any],
        *,
        name: str | None = None,
        at: datetime | None = None,
    ) -> tasks_v2.Task:
        url = self.url(kind)
        headers = {"Content-Type": "application/json"}
        if self.test_tokens is not None:
            headers["Authorization"] = f"Bearer {self.test_tokens(self.audience or url)}"
        parent = tracing.traceparent()  # the task's handler joins the sender's trace
        if parent is not None:
            headers[tracing.HEADER] = parent
        http = tasks_v2.HttpRequest(
            url=url,
            http_method=tasks_v2.HttpMethod.POST,
            headers=headers,
            body=json.dumps(dict(payload), separators=(",", ":")).encode(),
        )
        if self.service_account_email is not None:
            http.oidc_token = tasks_v2.OidcToken(
                service_account_email=self.service_account_email,
                audience=self.audience or url,
            )
        deadline = self.dispatch_deadlines.get(kind, self.dispatch_deadline_s)
        task = tasks_v2.Task(
            http_request=http,
            dispatch_deadline=timedelta(seconds=clamp_deadline(deadline)),
        )
        if name is not None:
            task.name = self.task_name(name)
        if at is not None:
            task.schedule_time = at
        return task

    @translate_outages("cloud tasks")
    def enqueue(
        self,
        kind: str,
        payload: Mapping[str, Any],
        *,
        name: str | None = None,
        at: datetime | None = None,
    ) -> bool:
        task = self.build_task(kind, payload, name=name, at=at)
        try:
            self._client.get().create_task(
                parent=self.queue_path, task=task, timeout=self.rpc_timeout_s
            )
            METER.add("tasks.created")
        except gexc.AlreadyExists:
            # The name was taken by an earlier enqueue (or one that ran within the last
            # hour): at-least-once callers repeat themselves, and that is done already.
            METER.add("tasks.refused")  # still a billed API call
            return False
        return True
