"""Benchmark 4: seconds of 720p video rendered per wall-clock second, beside ffmpeg's ceiling."""

from __future__ import annotations

import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import spread, target
from deepflix.stages.generators.registry import load_generators
from deepflix.stages.generators.video import CpuVideoGenerator
from deepflix.stages.processors import render_images

NAME = "render"
PROMPT = "A lighthouse keeper befriends a storm"


def sizes(quick: bool) -> dict[str, Any]:
    if quick:
        return {"scenes": 2, "scene_seconds": 1.0, "fps": 24, "runs": 1}
    return {"scenes": 12, "scene_seconds": 3.0, "fps": 24, "runs": 3}


def ours(workdir: Path, scenes: int, scene_seconds: float, fps: int) -> dict[str, Any]:
    """The images and video stages' generator work for one movie, timed separately."""
    gens = load_generators("cpu", scene_seconds=scene_seconds, fps=fps)
    story = gens.story.write_story(
        prompt=PROMPT, title=None, style="cinematic", scene_count=scenes, seed=1234
    )
    t0 = time.perf_counter()
    # As the images stage renders them (run_images), without storing them as artifacts.
    paths = list(render_images(gens.images, story, workdir))
    t1 = time.perf_counter()
    out = gens.video.assemble(story=story, image_paths=paths, out_dir=workdir / "render")
    t2 = time.perf_counter()
    return {
        "video_s": out.duration_s,
        "frames": out.frames,
        "images_wall_s": t1 - t0,
        "video_wall_s": t2 - t1,
        "wall_s": t2 - t0,
        "video_s_per_wall_s": out.duration_s / (t2 - t0),
        "bytes": out.video.stat().st_size,
    }


def ffmpeg_ceiling(workdir: Path, duration_s: float, fps: int) -> dict[str, Any]:
    """The same encoder settings as video_local, on a flat grey 1280x720 source."""
    import imageio_ffmpeg

    gen = CpuVideoGenerator()
    dest = workdir / "ceiling.mp4"
    args = [imageio_ffmpeg.get_ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error"]
    args += ["-y", "-f", "lavfi", "-i", f"color=c=gray:s=1280x720:r={fps}", "-t", f"{duration_s}"]
    args += ["-r", str(fps), "-c:v", "libx264", "-preset", gen.preset, "-crf", str(gen.crf)]
    args += ["-pix_fmt", "yuv420p", "-movflags", "+faststart", "-an", "-f", "mp4", str(dest)]
    t0 = time.perf_counter()
    subprocess.run(args, check=True, capture_output=True, timeout=600)
    wall = time.perf_counter() - t0
    return {
        "video_s": duration_s,
        "wall_s": wall,
        "video_s_per_wall_s": duration_s / wall,
        "command": " ".join(args[1:-1]) + " OUT.mp4",
    }


def run(quick: bool = False) -> dict[str, Any]:
    size = sizes(quick)
    raw: dict[str, list[dict[str, Any]]] = {"ours": [], "ffmpeg_ceiling": []}
    for i in range(size["runs"]):
        with tempfile.TemporaryDirectory(prefix=f"bench-render-{i}-") as tmp:
            work = Path(tmp)
            mine = ours(work, size["scenes"], size["scene_seconds"], size["fps"])
            raw["ours"].append(mine)
            raw["ffmpeg_ceiling"].append(ffmpeg_ceiling(work, mine["video_s"], size["fps"]))
    rate = spread([r["video_s_per_wall_s"] for r in raw["ours"]])
    ceiling = spread([r["video_s_per_wall_s"] for r in raw["ffmpeg_ceiling"]])
    pairs = zip(raw["ffmpeg_ceiling"], raw["ours"], strict=True)
    slowdown = spread([c["video_s_per_wall_s"] / o["video_s_per_wall_s"] for c, o in pairs])
    gen = CpuVideoGenerator()
    return {
        "settings": {
            **size,
            "generators": "local (Pillow stills, ffmpeg from imageio-ffmpeg)",
            "encoder": f"libx264 -preset {gen.preset} -crf {gen.crf} -pix_fmt yuv420p "
            "+faststart, 1280x720",
            "measured": "images stage (render_scene for every scene) + video stage (assemble), "
            "generators called directly in this process, no queue around them",
            "ceiling_input": "-f lavfi color=c=gray:s=1280x720, same duration and fps",
        },
        "results": {
            "ours_video_s_per_wall_s": rate,
            "images_wall_s": spread([r["images_wall_s"] for r in raw["ours"]]),
            "video_wall_s": spread([r["video_wall_s"] for r in raw["ours"]]),
            "ffmpeg_ceiling_video_s_per_wall_s": ceiling,
            "ceiling_over_ours": slowdown,
        },
        "raw_runs": raw,
        "targets": {"within 3x of ffmpeg's ceiling": target(slowdown["median"], 3, at_most=True)},
    }
