"""Film one clip per scene on a hosted video model: each operation is started once, its name
recorded before anything else happens, then polled with backoff, so a job killed mid-poll and
started again resumes the same operations instead of paying for new ones."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path

from deepflix import logs
from deepflix.pipeline.errors import RetryableStageError
from deepflix.stages.generators.base import Story, VideoModel
from deepflix.stages.generators.hosted import image_prompt

log = logs.get("stages")


class OperationLedger:
    """Operation names by scene in a JSON file on storage that outlives the job (written
    whole and renamed, so a kill never leaves half of it)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self) -> dict[str, str]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        return {str(k): str(v) for k, v in data.items()}

    def record(self, key: str, operation: str) -> None:
        names = self.read() | {key: operation}
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(names, sort_keys=True), encoding="utf-8")
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        tmp.replace(self.path)


def film_clips(
    *,
    model: VideoModel,
    story: Story,
    stills: list[Path],
    out_dir: Path,
    ledger: OperationLedger,
    seconds: int,
    deadline: float,
    first_poll_s: float = 5.0,
    max_poll_s: float = 30.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> list[Path]:
    """Every scene's clip in out_dir, in scene order. Operations run on the model side at
    once; each is looked up at growing intervals until done or `deadline` (clock time), then
    the attempt fails as retryable and the next one resumes them."""
    out_dir.mkdir(parents=True, exist_ok=True)
    clips = [out_dir / f"clip-{scene.index:03d}.mp4" for scene in story.scenes]
    started = ledger.read()
    for scene, still, clip in zip(story.scenes, stills, clips, strict=True):
        key = f"scene-{scene.index:03d}"
        if clip.exists() or key in started:
            continue
        name = model.start_clip(
            prompt=image_prompt(story, scene), image=still.read_bytes(), seconds=seconds
        )
        ledger.record(key, name)  # before anything else can fail: never started twice
        started[key] = name
        log.info("clip started", extra={"scene": scene.index, "operation": name})
    pause = first_poll_s
    waiting = [
        (c, started[f"scene-{s.index:03d}"]) for s, c in zip(story.scenes, clips, strict=True)
    ]
    while True:
        waiting = [(clip, name) for clip, name in waiting if not clip.exists()]
        for clip, name in waiting:
            data = model.clip(name)
            if data is not None:
                tmp = clip.with_suffix(".part")
                tmp.write_bytes(data)
                tmp.replace(clip)
        if all(clip.exists() for clip, _ in waiting):
            return clips
        if clock() + pause > deadline:
            left = sum(not clip.exists() for clip, _ in waiting)
            raise RetryableStageError(
                f"{left} clips of {model.name} still running at the deadline; the next attempt"
                " resumes them",
                code="model_still_running",
            )
        sleep(pause)
        pause = min(max_poll_s, pause * 1.5)
