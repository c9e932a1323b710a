"""Benchmark-only instant generators: valid documents, tiny placeholder media, no real rendering."""

from __future__ import annotations

import functools
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

from deepflix.stages.generators.base import Character, Ledger, Scene, Story, VideoOutputs

# These exist to measure the queue itself (dispatch, retries, storage), not rendering:
# the "movie" they produce is a 16x9 PNG and an MP4 with no video track. Never ship them.

_MOODS = ("hopeful", "mysterious", "tense", "triumphant")
_PLACEHOLDER_NOTE = b"deepflix instant generator placeholder: not a playable video"


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


@functools.cache
def tiny_png(r: int = 32, g: int = 32, b: int = 48, width: int = 16, height: int = 9) -> bytes:
    """A valid RGB PNG of one flat colour, encoded by hand so Pillow is never imported."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit truecolour
    rows = b"".join(b"\x00" + bytes((r, g, b)) * width for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(rows))
        + _chunk(b"IEND", b"")
    )


def _placeholder_mp4() -> bytes:
    # An ftyp box (so type sniffing sees MP4) and a free box with a note; no moov, no frames.
    ftyp = b"ftyp" + b"isom" + struct.pack(">I", 0x200) + b"isomiso2avc1mp41"
    free = b"free" + _PLACEHOLDER_NOTE
    return struct.pack(">I", len(ftyp) + 4) + ftyp + struct.pack(">I", len(free) + 4) + free


def _vtt_time(seconds: float) -> str:
    ms = round(seconds * 1000)
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}"


class InstantStoryGenerator:
    """Benchmark-only: a schema-valid story from string slicing, no language work."""

    def __init__(self, scene_seconds: float = 3.0) -> None:
        self.scene_seconds = scene_seconds

    def write_story(
        self, *, prompt: str, title: str | None, style: str, scene_count: int, seed: int
    ) -> Story:
        if scene_count < 1:
            raise ValueError("scene_count must be at least 1")
        gist = " ".join(prompt.split())[:60] or "an untitled idea"
        scenes = [
            Scene(
                index=i,
                heading=f"SCENE {i + 1}",
                description=f"Scene {i + 1} of {scene_count}: {gist}",
                narration=f"Scene {i + 1}: {gist}"[:90],
                shot="static wide shot",
                mood=_MOODS[i % len(_MOODS)],
                duration_s=self.scene_seconds,
            )
            for i in range(scene_count)
        ]
        return Story(
            prompt=prompt,
            title=title or gist[:40],
            logline=gist,
            style=style,
            seed=seed,
            characters=[
                Character(name="A", role="protagonist", description="placeholder"),
                Character(name="B", role="ally", description="placeholder"),
            ],
            scenes=scenes,
        )


class InstantImageGenerator:
    """Benchmark-only: writes a 16x9 PNG whose colour depends on the scene index."""

    threads = 1  # a tiny file each: a pool would only add hand-offs

    def render_scene(self, *, story: Story, scene: Scene, out_path: Path) -> None:
        out_path.parent.mkdir(parents=True, exist_ok=True)
        shade = (scene.index * 37) % 200 + 30
        out_path.write_bytes(tiny_png(shade, 64, 255 - shade))


class InstantVideoGenerator:
    """Benchmark-only: writes placeholder movie.mp4/poster.png and real-timed captions.vtt."""

    def __init__(self, scene_seconds: float = 3.0, fps: int = 24) -> None:
        self.scene_seconds = scene_seconds
        self.fps = fps

    def assemble(
        self,
        *,
        story: Story,
        image_paths: list[Path],
        out_dir: Path,
        progress: Callable[[float], None] | None = None,
        ledger: Ledger | None = None,  # nothing to resume: a render starts over
    ) -> VideoOutputs:
        if not image_paths:
            raise ValueError("at least one image is needed")
        out_dir.mkdir(parents=True, exist_ok=True)
        video, poster, captions = (
            out_dir / "movie.mp4",
            out_dir / "poster.png",
            out_dir / "captions.vtt",
        )
        video.write_bytes(_placeholder_mp4())
        poster.write_bytes(tiny_png())
        lines = ["WEBVTT", ""]
        for i, scene in enumerate(story.scenes[: len(image_paths)]):
            start, end = i * self.scene_seconds, (i + 1) * self.scene_seconds
            text = scene.narration.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            lines += [str(i + 1), f"{_vtt_time(start)} --> {_vtt_time(end)}", text, ""]
        captions.write_text("\n".join(lines), encoding="utf-8")
        duration = len(image_paths) * self.scene_seconds
        return VideoOutputs(
            video=video,
            poster=poster,
            captions=captions,
            duration_s=duration,
            frames=round(duration * self.fps),
        )
