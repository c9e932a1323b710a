"""Film one clip per scene on a hosted video model: each operation is started once, its name
recorded on the movie before anything else happens, then polled with backoff, so a job killed
mid-poll and started again resumes the same operations instead of paying for new ones. The
clips are then joined with crossfades, a poster and WebVTT captions by ffmpeg."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from deepflix import logs
from deepflix.pipeline.errors import RetryableStageError
from deepflix.stages.generators.base import Ledger, Story, VideoModel, VideoOutputs
from deepflix.stages.generators.hosted import image_prompt
from deepflix.stages.generators.video import (
    HEIGHT,
    TAG_BT709,
    TO_YUV,
    WIDTH,
    Timeline,
    join_scenes,
    make_timeline,
    run_ffmpeg,
    webvtt,
)

log = logs.get("stages")


def film_clips(
    *,
    model: VideoModel,
    story: Story,
    stills: list[Path],
    out_dir: Path,
    ledger: Ledger,
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


class ClipFilmGenerator:
    """The video stage on a hosted video model: a clip per scene from its still, then the
    clips cut to `seconds` each and joined as the stills renderer joins its scenes."""

    def __init__(
        self,
        *,
        model: VideoModel,
        seconds: int,
        fps: int = 24,
        crossfade_s: float = 0.5,
        deadline_s: float = 540.0,
        timeout_s: float = 300.0,
        first_poll_s: float = 5.0,
        max_poll_s: float = 30.0,
    ) -> None:
        self.model = model
        self.seconds = seconds
        self.fps = fps
        self.crossfade_s = crossfade_s
        self.deadline_s = deadline_s  # polling gives up this long after the attempt starts
        self.timeout_s = timeout_s
        self.first_poll_s = first_poll_s
        self.max_poll_s = max_poll_s

    @property
    def source(self) -> str:
        return f"{self.model.name}+ffmpeg"

    def assemble(
        self,
        *,
        story: Story,
        image_paths: list[Path],
        out_dir: Path,
        progress: Callable[[float], None] | None = None,
        ledger: Ledger | None = None,
    ) -> VideoOutputs:
        if ledger is None:
            raise ValueError("filming clips needs a ledger for its operations")
        clips = film_clips(
            model=self.model,
            story=story,
            stills=image_paths,
            out_dir=out_dir / "clips",
            ledger=ledger,
            seconds=self.seconds,
            deadline=time.monotonic() + self.deadline_s,
            first_poll_s=self.first_poll_s,
            max_poll_s=self.max_poll_s,
        )
        if progress is not None:  # the clips are most of the wait; the join is quick
            progress(0.8)
        return join_clips(
            story,
            clips,
            out_dir,
            make_timeline(len(clips), self.seconds, self.fps, self.crossfade_s),
            timeout_s=self.timeout_s,
        )


def join_clips(
    story: Story, clips: list[Path], out_dir: Path, tl: Timeline, *, timeout_s: float
) -> VideoOutputs:
    """The clips, each fitted to 1280x720 at the timeline's rate and cut (or held on its
    last frame) to one scene's length, crossfaded into movie.mp4 with its poster and
    captions (renamed into place, as the stills renderer does)."""
    video, poster, captions = (
        out_dir / "movie.mp4",
        out_dir / "poster.jpg",
        out_dir / "captions.vtt",
    )
    tmp_video, tmp_poster = out_dir / "movie.mp4.part", out_dir / "poster.jpg.part"
    inputs: list[str] = []
    graph: list[str] = []
    for i, clip in enumerate(clips):
        inputs += ["-i", str(clip)]
        graph.append(
            f"[{i}:v]fps={tl.fps},scale={WIDTH}:{HEIGHT}:force_original_aspect_ratio=increase,"
            f"crop={WIDTH}:{HEIGHT},setsar=1,{TO_YUV},"
            # A clip shorter than its scene holds its last frame; a longer one is cut.
            f"tpad=stop_mode=clone:stop={tl.scene_frames},trim=end_frame={tl.scene_frames},"
            f"settb=1/{tl.fps},setpts=N[s{i}]"
        )
    graph.append("[s0]split=2[m0][p0]")
    graph.append("[p0]trim=end_frame=1[poster]")
    graph += join_scenes(["m0", *(f"s{i}" for i in range(1, len(clips)))], tl)
    graph.append(f"[joined]{TAG_BT709}[movie]")
    run_ffmpeg(
        [
            *("-nostdin", "-hide_banner", "-loglevel", "error", "-y"),
            *inputs,
            *("-filter_complex", ";".join(graph)),
            *("-map", "[movie]", "-r", str(tl.fps)),
            *("-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-pix_fmt", "yuv420p"),
            *("-movflags", "+faststart", "-an", "-f", "mp4", str(tmp_video)),
            *("-map", "[poster]", "-frames:v", "1", "-update", "1", "-q:v", "3", "-r", "1"),
            *("-f", "image2", str(tmp_poster)),
        ],
        timeout_s,
    )
    tmp_captions = out_dir / "captions.vtt.part"
    tmp_captions.write_text(webvtt(story, tl), encoding="utf-8")
    for tmp, final in ((tmp_video, video), (tmp_poster, poster), (tmp_captions, captions)):
        os.replace(tmp, final)
    return VideoOutputs(
        video=video, poster=poster, captions=captions, duration_s=tl.duration_s, frames=tl.frames
    )
