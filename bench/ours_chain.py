"""Our side of the pipeline benchmark: N movies through the embedded service, in-process."""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from deepflix import logs
from deepflix.pipeline.models import (
    CAPTIONS,
    POSTER,
    STAGES,
    STORY,
    VIDEO,
    Movie,
    MovieCreate,
    Stage,
    scene_image,
)
from deepflix.runtime.compose import build_embedded
from deepflix.settings import Settings
from deepflix.stages import processors
from deepflix.stages.processors import Outputs, StageContext

LEFT = "SELECT COUNT(*) FROM movies WHERE waiting_stage IS NOT NULL OR running_stage IS NOT NULL"


def settings_for(
    data_dir: Path,
    concurrency: int,
    workers: int,
    media_dir: Path | None = None,
    stage_processes: int = 0,
) -> Settings:
    """The service settings both sides are matched on; nothing is read from the environment."""
    return Settings(
        _env_file=None,
        data_dir=data_dir,
        media_dir=media_dir,
        generators="instant",
        job_runner="inline",
        story_concurrency=concurrency,
        images_concurrency=concurrency,
        video_concurrency=concurrency,
        workers=workers,
        stage_processes=stage_processes,
        log_level="WARNING",
    )


def _names_only(stage: Stage) -> Callable[[StageContext], Outputs]:
    """The stage's outputs named, none written: the peer of bullmq_queue_only."""

    def run(ctx: StageContext) -> Outputs:
        movie_id, scenes = ctx.movie.id, ctx.movie.request.scene_count
        if stage is Stage.story:
            names = [STORY]
        elif stage is Stage.images:
            names = [scene_image(i) for i in range(scenes)]
            for i in range(scenes):
                ctx.progress((i + 1) * 100 // scenes)
        else:
            names = [VIDEO, f"{POSTER}.png", CAPTIONS]
        return {name: f"{movie_id}/{name}" for name in names}

    return run


def queue_only() -> None:
    """Replace every stage's work by naming its outputs, so a run measures the queue alone:
    claims, hand-offs and state changes (the stage work then runs on the runtime's threads,
    as this replacement is not in the worker processes)."""
    for stage in STAGES:
        processors.PROCESSORS[stage] = _names_only(stage)


def hops_ms(movies: list[Movie]) -> list[list[float]]:
    """Stage k finished_at -> stage k+1 started_at, per hop, from the movie documents."""
    out: list[list[float]] = [[] for _ in STAGES[1:]]
    for m in movies:
        for k, (a, b) in enumerate(itertools.pairwise(STAGES)):
            done, started = m.stages[a].finished_at, m.stages[b].started_at
            if done is not None and started is not None:
                out[k].append((started - done).total_seconds() * 1000)
    return out


def run(
    n: int,
    concurrency: int,
    workers: int,
    scenes: int,
    rate: float,
    timeout: float,
    data_dir: Path | None = None,
    media_dir: Path | None = None,
    stage_processes: int = 0,
) -> dict[str, Any]:
    """`data_dir` (and `media_dir`, artifacts and stage work, if given) are left behind for
    the caller to remove; with no `data_dir`, a temporary one."""
    logs.setup("WARNING")
    with contextlib.ExitStack() as stack:
        data = data_dir or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        settings = settings_for(data, concurrency, workers, media_dir, stage_processes)
        runtime = build_embedded(settings)
        runtime.start()
        conn = sqlite3.connect(data / "movies.db")
        (journal,) = conn.execute("PRAGMA journal_mode").fetchone()
        try:
            first = time.monotonic()
            for i in range(n):
                if rate > 0:
                    time.sleep(max(0.0, first + i / rate - time.monotonic()))
                request = MovieCreate(prompt=f"bench movie {i}", scene_count=scenes)
                runtime.pipeline.create(request, owner="bench", idempotency_key=None)
            submit_s = time.monotonic() - first
            deadline = time.monotonic() + timeout
            while conn.execute(LEFT).fetchone()[0] and time.monotonic() < deadline:
                time.sleep(0.05)
            timed_out = bool(conn.execute(LEFT).fetchone()[0])
        finally:
            runtime.stop()
        movies = [Movie.model_validate_json(d) for (d,) in conn.execute("SELECT doc FROM movies")]
        conn.close()
        stored = settings.media_root() / "artifacts"
        files = sum(1 for p in stored.rglob("*") if p.is_file()) if stored.is_dir() else 0
    done = [m for m in movies if m.status.value == "succeeded" and m.finished_at is not None]
    elapsed = 0.0
    if done:
        start = min(m.created_at for m in movies)
        elapsed = (max(m.finished_at for m in done if m.finished_at) - start).total_seconds()
    return {
        "n": n,
        "completed": len(done),
        "failed": sum(1 for m in movies if m.status.value == "failed"),
        "retried": sum(1 for m in movies for s in STAGES if m.stages[s].attempts > 1),
        "timed_out": timed_out,
        "submit_s": submit_s,
        "elapsed_s": elapsed,
        "movies_per_s": len(done) / elapsed if elapsed else 0.0,
        "hops_ms": hops_ms(done),
        "artifact_files": files,
        # Synchronous is fixed in the adapter (adapters/local/db.py): NORMAL under WAL.
        "durability": {"journal_mode": journal, "synchronous": "NORMAL"},
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--n", type=int, default=100)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--workers", type=int, default=8)
    p.add_argument("--scenes", type=int, default=6)
    p.add_argument("--rate", type=float, default=0.0, help="movies/s to submit; 0 = at once")
    p.add_argument("--timeout", type=float, default=900.0)
    p.add_argument("--data", type=Path, help="data folder, kept (default: a temporary one)")
    p.add_argument("--media", type=Path, help="artifacts and stage work (default: in --data)")
    p.add_argument("--stage-processes", type=int, default=0, help="stage worker processes")
    p.add_argument("--queue-only", action="store_true", help="stage work that writes nothing")
    a = p.parse_args(argv)
    if a.queue_only:
        if a.stage_processes:
            p.error("--queue-only runs the stage work on the runtime's threads")
        queue_only()
    result: dict[str, Any] = run(
        a.n,
        a.concurrency,
        a.workers,
        a.scenes,
        a.rate,
        a.timeout,
        a.data,
        a.media,
        a.stage_processes,
    )
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
