"""ffmpeg movie assembly: Ken Burns motion per still, crossfades, poster and WebVTT captions."""

from __future__ import annotations

import os
import subprocess  # nosec B404 # our own programs, argument lists, no shell
import tempfile
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from deepflix.pipeline.errors import RetryableStageError
from deepflix.stages.generators.base import Ledger, Story, VideoOutputs
from deepflix.stages.generators.images import CAPTION_BAND
from deepflix.stages.generators.story import stable_hash

WIDTH, HEIGHT = 1280, 720
# How far the picture is zoomed or panned: enough to read as motion, little enough to keep
# the composition (and the title on the opening still) in frame.
_MARGIN = 1.10
# Walked in order from a seeded start: zooms and pans alternate, so neighbouring scenes
# never repeat a move.
MOTIONS = (
    *("zoom_in", "pan_right", "zoom_out", "pan_up"),
    *("zoom_in", "pan_left", "zoom_out", "pan_down"),
)
_STDERR_TAIL = 2000
# Convert the RGB stills to HD video colour once, explicitly: left to negotiation, ffmpeg
# keeps the PNG's full range and the MP4 comes out as yuvj420p, which players treat unevenly.
TO_YUV = "scale=out_color_matrix=bt709:out_range=tv,format=yuv420p"
# Filters along the way drop primaries/transfer, so the finished stream is tagged at the end.
TAG_BT709 = "setparams=range=tv:colorspace=bt709:color_primaries=bt709:color_trc=bt709"


class RenderError(RetryableStageError):
    """ffmpeg failed, was killed or timed out; another attempt may well succeed."""

    code = "render_failed"


@dataclass(frozen=True)
class Timeline:
    """Frame-exact timing: every boundary falls on a frame so counts are predictable."""

    scenes: int
    fps: int
    scene_frames: int
    fade_frames: int

    @property
    def frames(self) -> int:
        return self.scenes * self.scene_frames - (self.scenes - 1) * self.fade_frames

    @property
    def duration_s(self) -> float:
        return self.frames / self.fps

    def start_frame(self, index: int) -> int:
        return index * (self.scene_frames - self.fade_frames)

    def cue(self, index: int) -> tuple[float, float]:
        """Caption span: cues hand over at the middle of each crossfade, so they never overlap."""
        start = self.start_frame(index) + (self.fade_frames / 2 if index > 0 else 0)
        end: float = self.start_frame(index) + self.scene_frames
        if index < self.scenes - 1:
            end -= self.fade_frames / 2
        return start / self.fps, end / self.fps


def make_timeline(scenes: int, scene_seconds: float, fps: int, crossfade_s: float) -> Timeline:
    scene_frames = max(2, round(scene_seconds * fps))
    # A fade longer than half a scene would let three scenes overlap at once.
    fade_frames = 0 if scenes < 2 else min(max(0, round(crossfade_s * fps)), scene_frames // 2)
    return Timeline(scenes, fps, scene_frames, fade_frames)


def _vtt_time(seconds: float) -> str:
    ms = round(seconds * 1000)
    h, rem = divmod(ms, 3_600_000)
    m, rem = divmod(rem, 60_000)
    s, ms = divmod(rem, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}.{ms:03d}"


def webvtt(story: Story, timeline: Timeline) -> str:
    parts = ["WEBVTT", ""]
    for i, scene in enumerate(story.scenes[: timeline.scenes]):
        start, end = timeline.cue(i)
        text = scene.narration.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        parts += [str(i + 1), f"{_vtt_time(start)} --> {_vtt_time(end)}", text, ""]
    return "\n".join(parts)


def _even(v: float) -> int:
    return 2 * round(v / 2)


def _motion(motion: str, tl: Timeline, height: int) -> str:
    """Filter chain turning one decoded still into tl.scene_frames moving WIDTH x height frames."""
    last = max(1, tl.scene_frames - 1)
    if motion in ("zoom_in", "zoom_out"):
        z = f"on/{last}" if motion == "zoom_in" else f"(1-on/{last})"
        # zoompan emits every frame from the one input still. It crops whole pixels of its
        # input, so upscaling by half first makes the zoom steps finer (less visible judder).
        # (scale:eval=frame + crop looked simpler, but crop kept stale sizes when shrinking
        # and read outside the frame: garbage edges and occasional segfaults.)
        return (
            f"scale={_even(WIDTH * 1.5)}:{_even(height * 1.5)}:flags=bicubic,"
            f"zoompan=z='1+{_MARGIN - 1:.3f}*{z}':x='iw/2-iw/zoom/2':y='ih/2-ih/zoom/2'"
            f":d={tl.scene_frames}:s={WIDTH}x{height}:fps={tl.fps},{_retime(tl)}"
        )
    up_w, up_h = _even(WIDTH * _MARGIN), _even(height * _MARGIN)
    dx, dy = up_w - WIDTH, up_h - height
    p = f"(n/{last})"  # progress 0..1 across the scene
    x, y = f"{dx // 2}", f"{dy // 2}"
    if motion == "pan_right":
        x = f"{dx}*{p}"
    elif motion == "pan_left":
        x = f"{dx}*(1-{p})"
    elif motion == "pan_down":
        y = f"{dy}*{p}"
    else:
        y = f"{dy}*(1-{p})"
    # A pan moves a fixed-size crop window over a still upscaled once, then repeated.
    return f"scale={up_w}:{up_h}:flags=bicubic,{_repeat(tl)},crop={WIDTH}:{height}:x='{x}':y='{y}'"


def _retime(tl: Timeline) -> str:
    return f"settb=1/{tl.fps},setpts=N"


def _repeat(tl: Timeline) -> str:
    # Decode, scale and convert each still once, then repeat it: far cheaper than -loop 1,
    # which would re-decode the PNG for every frame.
    return f"loop=loop={tl.scene_frames - 1}:size=1:start=0,{_retime(tl)}"


def join_scenes(scenes: list[str], tl: Timeline) -> list[str]:
    """Graph lines laying the scenes end to end into [joined], crossfading where they overlap.

    xfade takes no subsampled pixel format: fed yuv420p, ffmpeg converted every frame of
    every scene to yuv444p and the whole movie back: half of the filter graph's work. So
    each scene is cut into head, body and tail; only a tail and the next head are faded,
    plane by plane (each plane alone is grey, which xfade takes as it is), and the pieces
    are concatenated. Frames that no fade touches pass through untouched.
    """
    n, fade = len(scenes), tl.fade_frames
    if n == 1:
        return [f"[{scenes[0]}]null[joined]"]
    if not fade:
        return [f"{_labels(scenes)}concat=n={n}:v=1:a=0,{_retime(tl)}[joined]"]
    graph: list[str] = []
    parts: list[str] = []
    for i, scene in enumerate(scenes):
        # Scene i's frames before `start` fade in from the previous scene, those from `end`
        # fade out into the next; the body between them may be empty.
        start, end = (fade if i else 0), tl.scene_frames - (fade if i < n - 1 else 0)
        pieces = [f"h{i}"] if start else []
        pieces += [f"b{i}"] if end > start else []
        pieces += [f"t{i}"] if end < tl.scene_frames else []
        cuts = "|".join(str(f) for f in sorted({start, end} - {0, tl.scene_frames}))
        graph.append(f"[{scene}]segment=frames={cuts}{_labels(pieces)}")
        if i:
            graph += _crossfade(f"t{i - 1}", f"h{i}", f"f{i}", tl)
            parts.append(f"f{i}")
        if end > start:
            parts.append(f"b{i}")
    # segment keeps each piece's timestamps and concat offsets them again: number the
    # frames afresh, they arrive in order.
    graph.append(_labels(parts) + f"concat=n={len(parts)}:v=1:a=0,{_retime(tl)}[joined]")
    return graph


def _crossfade(a: str, b: str, out: str, tl: Timeline) -> list[str]:
    """[a] fading into [b] (both tl.fade_frames long, yuv420p) as [out], plane by plane."""
    d = f"{tl.fade_frames / tl.fps:.6f}"
    return [
        f"[{a}]extractplanes=y+u+v{_labels(a + p for p in 'yuv')}",
        f"[{b}]extractplanes=y+u+v{_labels(b + p for p in 'yuv')}",
        *(f"[{a}{p}][{b}{p}]xfade=transition=fade:duration={d}:offset=0[{out}{p}]" for p in "yuv"),
        f"{_labels(out + p for p in 'yuv')}mergeplanes=format=yuv420p:map1s=1:map2s=2[{out}]",
    ]


def _labels(names: Iterable[str]) -> str:
    return "".join(f"[{n}]" for n in names)


class CpuVideoGenerator:
    """Assembles stills into an H.264 MP4 with libx264 from the imageio-ffmpeg binary."""

    source = "ffmpeg"

    def __init__(
        self,
        scene_seconds: float = 3.0,
        fps: int = 24,
        crossfade_s: float = 0.5,
        preset: str = "veryfast",
        *,
        crf: int = 23,
        timeout_s: float = 300.0,
        caption_band: int = CAPTION_BAND,
    ) -> None:
        if scene_seconds <= 0 or fps <= 0 or crossfade_s < 0:
            raise ValueError("scene_seconds and fps must be positive, crossfade_s non-negative")
        if not 0 <= caption_band <= HEIGHT // 2 or caption_band % 2:
            raise ValueError("caption_band must be an even number of pixels, at most half height")
        # Bottom rows of each still that stay put (the burned-in captions); 0 moves everything.
        self.caption_band = caption_band
        self.scene_seconds = scene_seconds
        self.fps = fps
        self.crossfade_s = crossfade_s
        self.preset = preset
        self.crf = crf
        self.timeout_s = timeout_s

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
        if len(image_paths) != len(story.scenes):
            raise ValueError(f"{len(image_paths)} images for {len(story.scenes)} scenes")
        for path in image_paths:
            if not path.is_file():
                raise FileNotFoundError(path)
        out_dir.mkdir(parents=True, exist_ok=True)
        timeline = make_timeline(len(image_paths), self.scene_seconds, self.fps, self.crossfade_s)
        video, poster, captions = (
            out_dir / "movie.mp4",
            out_dir / "poster.jpg",
            out_dir / "captions.vtt",
        )
        # Render to temporary names and rename, so a failed or retried attempt never leaves
        # a half-written movie where a reader could pick it up.
        tmp_video, tmp_poster = out_dir / "movie.mp4.part", out_dir / "poster.jpg.part"
        command = self._command(story, image_paths, timeline, tmp_video, tmp_poster)
        self._run(command, timeline.frames, progress)
        tmp_captions = out_dir / "captions.vtt.part"
        tmp_captions.write_text(webvtt(story, timeline), encoding="utf-8")
        for tmp, final in ((tmp_video, video), (tmp_poster, poster), (tmp_captions, captions)):
            os.replace(tmp, final)
        return VideoOutputs(
            video=video,
            poster=poster,
            captions=captions,
            duration_s=timeline.duration_s,
            frames=timeline.frames,
        )

    def _command(
        self, story: Story, images: list[Path], tl: Timeline, video: Path, poster: Path
    ) -> list[str]:
        first = stable_hash(f"motion:{story.seed}:{story.prompt}") % len(MOTIONS)
        graph: list[str] = []
        inputs: list[str] = []
        pic_h = HEIGHT - self.caption_band
        for i, path in enumerate(images):
            # The stills declare the movie rate so every link (and xfade) agrees on it.
            inputs += ["-framerate", str(tl.fps), "-i", str(path)]
            motion = _motion(MOTIONS[(first + i) % len(MOTIONS)], tl, pic_h)
            if self.caption_band:
                graph += [
                    f"[{i}:v]{TO_YUV},split=2[pic{i}][cap{i}]",
                    f"[pic{i}]crop={WIDTH}:{pic_h}:0:0,{motion}[mov{i}]",
                    f"[cap{i}]crop={WIDTH}:{self.caption_band}:0:{pic_h},{_repeat(tl)}[band{i}]",
                    f"[mov{i}][band{i}]vstack,setsar=1[s{i}]",
                ]
            else:
                graph.append(f"[{i}:v]{TO_YUV},{motion},setsar=1[s{i}]")
        # The poster is the first scene's opening frame, taken from the same graph.
        graph.append("[s0]split=2[m0][p0]")
        graph.append("[p0]trim=end_frame=1[poster]")
        graph += join_scenes(["m0", *(f"s{i}" for i in range(1, len(images)))], tl)
        graph.append(f"[joined]{TAG_BT709}[movie]")
        return [
            *("-nostdin", "-hide_banner", "-loglevel", "error", "-y"),
            # key=value lines on stdout as it renders (frame=N among them): the progress.
            *("-nostats", "-progress", "pipe:1", "-stats_period", "0.25"),
            *inputs,
            *("-filter_complex", ";".join(graph)),
            *("-map", "[movie]", "-r", str(tl.fps)),
            *("-c:v", "libx264", "-preset", self.preset, "-crf", str(self.crf)),
            *("-pix_fmt", "yuv420p"),
            *("-movflags", "+faststart", "-an", "-f", "mp4", str(video)),
            *("-map", "[poster]", "-frames:v", "1", "-update", "1", "-q:v", "3", "-r", "1"),
            *("-f", "image2", str(poster)),
        ]

    def _run(self, args: list[str], frames: int, progress: Callable[[float], None] | None) -> None:
        run_ffmpeg(args, self.timeout_s, frames=frames, progress=progress)


def run_ffmpeg(
    args: list[str],
    timeout_s: float,
    *,
    frames: int = 0,
    progress: Callable[[float], None] | None = None,
) -> None:
    """ffmpeg with `args`; RenderError (retryable) with its stderr's tail if it fails.
    `progress` hears the share of `frames` written as ffmpeg reports them (`-progress`)."""
    try:
        import imageio_ffmpeg  # imported lazily: resolving the binary touches the disk

        exe = imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError) as exc:
        raise RenderError(f"ffmpeg binary not available: {exc}") from exc
    # stderr to a file, not a pipe nobody reads while stdout is read: it cannot fill up.
    with tempfile.TemporaryFile() as errors:
        proc = subprocess.Popen(  # nosec B603 # our own program and paths, no shell, no request text
            [exe, *args], stdout=subprocess.PIPE, stderr=errors, stdin=subprocess.DEVNULL
        )
        timed_out = threading.Event()

        def stop() -> None:
            timed_out.set()
            proc.kill()

        timer = threading.Timer(timeout_s, stop)
        timer.start()
        try:
            assert proc.stdout is not None  # nosec B101 # an invariant, not a check of input
            for line in proc.stdout:
                if progress is not None and line.startswith(b"frame="):
                    done = int(line[6:].strip() or 0)
                    progress(min(1.0, done / max(1, frames)))
            returncode = proc.wait()
        finally:
            timer.cancel()
            if proc.poll() is None:  # the progress callback raised: stop the render
                proc.kill()
                proc.wait()
        errors.seek(0)
        tail = errors.read().decode("utf-8", "replace")[-_STDERR_TAIL:].strip()
    if timed_out.is_set():
        raise RenderError(f"ffmpeg timed out after {timeout_s:.0f}s: {tail}")
    if returncode != 0:
        how = (
            f"was killed by signal {-returncode}" if returncode < 0 else f"exited with {returncode}"
        )
        raise RenderError(f"ffmpeg {how}: {tail or '(no stderr)'}")
