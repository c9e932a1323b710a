"""The queues view and admission's switch: the operators' routes of the whole service."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import Response

from deepflix.handlers.operations import OPERATIONS, Access
from deepflix.handlers.responses import json_answer
from deepflix.handlers.schemas import Queues
from deepflix.handlers.writes import PauseAdmission, ResumeAdmission, Writes
from deepflix.pipeline.service import Pipeline

T = TypeVar("T")


class AdmissionRoutes:
    """A part of the Api (which provides the attributes below)."""

    pipeline: Pipeline
    writes: Writes
    extra_metrics: Callable[[], dict[str, Any]] | None

    async def _read(self, fn: Callable[..., T], *args: Any) -> T:
        raise NotImplementedError  # the Api's

    @OPERATIONS(
        "GET",
        "/api/queues",
        summary="Each stage queue, and admission (operators).",
        answer=Queues,
        access=Access.admin,
    )
    def queues(self, request: Request) -> Response:
        return self._queues()

    def _queues(self) -> Response:
        counts = self.pipeline.counts()
        observed = self.pipeline.mean_durations()
        paused = self.pipeline.operator.paused_stages()
        body: dict[str, Any] = {
            "admission_paused": self.pipeline.admission_paused(),
            "queues": {
                s.value: {
                    "waiting": c.waiting,
                    "running": c.running,
                    "concurrency": self.pipeline.config[s].concurrency,
                    "mean_duration_seconds": observed.get(s),
                    "paused": s in paused,
                }
                for s, c in counts.items()
            },
        }
        if self.extra_metrics is not None:
            body |= self.extra_metrics()
        return json_answer(body)

    @OPERATIONS(
        "POST",
        "/api/admission/pause",
        summary="Pause admission: new movies wait; admitted ones go on (operators).",
        answer=Queues,
        errors=(503,),
        access=Access.admin,
    )
    async def pause(self, request: Request) -> Response:
        await self.writes(PauseAdmission())
        return await self._read(self._queues)

    @OPERATIONS(
        "POST",
        "/api/admission/resume",
        summary="Resume admission (operators).",
        answer=Queues,
        errors=(503,),
        access=Access.admin,
    )
    async def resume(self, request: Request) -> Response:
        await self.writes(ResumeAdmission())
        return await self._read(self._queues)
