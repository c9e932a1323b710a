"""`GET /metrics`: the queues, stage runs, retries, dead letters and webhooks for Prometheus."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from starlette.requests import Request
from starlette.responses import Response

from deepflix.handlers.operations import OPERATIONS
from deepflix.pipeline.figures import DURATION_BUCKETS, Figures, ServiceFigures
from deepflix.pipeline.service import Pipeline

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
Sample = tuple[dict[str, str], float]


def family(name: str, kind: str, help_: str, samples: Iterable[Sample]) -> list[str]:
    lines = [f"# HELP {name} {help_}", f"# TYPE {name} {kind}"]
    suffix = "_total" if kind == "counter" else ""
    for labels, value in samples:
        lines.append(f"{name}{suffix}{_labels(labels)} {_number(value)}")
    return lines


def _labels(labels: dict[str, str]) -> str:
    if not labels:
        return ""
    inner = ",".join(f'{k}="{v}"' for k, v in labels.items())
    return "{" + inner + "}"


def _number(value: float) -> str:
    return repr(float(value)) if isinstance(value, float) else str(value)


def exposition(pipeline: Pipeline, figures: ServiceFigures | None) -> str:
    """The text exposition format (0.0.4); names as in the README's metrics section."""
    counts = pipeline.counts()
    out = family(
        "deepflix_queue_waiting",
        "gauge",
        "Movies waiting in the stage's queue.",
        (({"stage": s.value}, c.waiting) for s, c in counts.items()),
    )
    out += family(
        "deepflix_queue_running",
        "gauge",
        "Movies whose stage runs now.",
        (({"stage": s.value}, c.running) for s, c in counts.items()),
    )
    out += family(
        "deepflix_admission_paused",
        "gauge",
        "1 while admission is paused.",
        [({}, int(pipeline.admission_paused()))],
    )
    figures = figures or ServiceFigures()
    if figures.stages:
        out += _stage_families(figures.stages)
    if figures.dead_letters is not None:
        out += family(
            "deepflix_dead_letters",
            "gauge",
            "Messages given up on after their deliveries failed.",
            [({}, figures.dead_letters)],
        )
    webhooks = figures.webhooks
    if webhooks is not None:
        out += family(
            "deepflix_webhook_deliveries",
            "counter",
            "Webhook attempts by result: delivered, failed (to be retried), gave_up.",
            (({"result": r}, webhooks.get(r, 0)) for r in ("delivered", "failed", "gave_up")),
        )
    return "\n".join(out) + "\n"


def _stage_families(figures: Figures) -> list[str]:
    stages = sorted(figures.items())
    out = family(
        "deepflix_queue_oldest_waiting_age_seconds",
        "gauge",
        "How long the stage's longest-waiting ready movie has waited (0: none).",
        (({"stage": s}, f.oldest_waiting_s or 0.0) for s, f in stages),
    )
    out += family(
        "deepflix_stage_runs",
        "counter",
        "Stage runs finished, by result.",
        (
            ({"stage": s, "result": r}, n)
            for s, f in stages
            for r, n in (("succeeded", f.succeeded), ("failed", f.failed))
        ),
    )
    out += family(
        "deepflix_stage_retries",
        "counter",
        "Stage attempts started after the first.",
        (({"stage": s}, f.retries) for s, f in stages),
    )
    out += [
        "# HELP deepflix_stage_duration_seconds How long successful stage runs took.",
        "# TYPE deepflix_stage_duration_seconds histogram",
    ]
    for s, f in stages:
        d, running = f.durations, 0
        for bound, n in zip((*map(str, DURATION_BUCKETS), "+Inf"), d.buckets, strict=True):
            running += n
            out.append(
                f'deepflix_stage_duration_seconds_bucket{{stage="{s}",le="{bound}"}} {running}'
            )
        out.append(f'deepflix_stage_duration_seconds_sum{{stage="{s}"}} {float(d.total_s)!r}')
        out.append(f'deepflix_stage_duration_seconds_count{{stage="{s}"}} {d.count}')
    return out


class MetricsRoutes:
    """The `/metrics` route, a part of the Api (which provides the attributes below)."""

    pipeline: Pipeline
    figures: Callable[[], ServiceFigures] | None

    @OPERATIONS(
        "GET",
        "/metrics",
        summary="Prometheus text format: queue depth, oldest waiting age and running per "
        "stage; stage runs by result, retries and durations; dead letters; webhooks.",
        media_type=CONTENT_TYPE,
        errors=(503,),
    )
    def metrics(self, request: Request) -> Response:
        figures = self.figures() if self.figures is not None else None
        text = exposition(self.pipeline, figures)
        return Response(text, media_type=CONTENT_TYPE)
