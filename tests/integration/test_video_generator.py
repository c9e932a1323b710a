"""ffmpeg assembly: decodable H.264, exact timing, faststart, captions and poster."""

from __future__ import annotations

import itertools
import re
import struct
import subprocess
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import imageio_ffmpeg
import pytest
from PIL import Image, ImageChops, ImageStat

from deepflix.stages.generators import video
from deepflix.stages.generators.base import Story, VideoOutputs
from deepflix.stages.generators.images import CAPTION_BAND, CpuImageGenerator
from deepflix.stages.generators.story import CpuStoryGenerator
from deepflix.stages.generators.video import MOTIONS, CpuVideoGenerator, RenderError, make_timeline

pytestmark = pytest.mark.integration

BLANK = Image.new("RGB", (1, 1))


@dataclass
class Render:
    story: Story
    images: list[Path]
    out: VideoOutputs
    frames: list[Image.Image]


def render(
    root: Path,
    scenes: int,
    scene_s: float,
    *,
    fps: int = 24,
    fade: float = 0.5,
    keep_frames: bool = True,
) -> Render:
    story = CpuStoryGenerator(scene_seconds=scene_s).write_story(
        prompt="A lighthouse keeper befriends a whale", title=None, style="cinematic",
        scene_count=scenes, seed=5,
    )  # fmt: skip
    images = []
    for scene in story.scenes:
        path = root / f"scene_{scene.index:02d}.png"
        CpuImageGenerator().render_scene(story=story, scene=scene, out_path=path)
        images.append(path)
    gen = CpuVideoGenerator(scene_seconds=scene_s, fps=fps, crossfade_s=fade)
    out = gen.assemble(story=story, image_paths=images, out_dir=root / "render")
    frames: list[Image.Image] = []
    with av.open(str(out.video)) as container:
        for f in container.decode(video=0):
            # Converting to RGB is the slow part; counting needs only the decode.
            frames.append(f.to_image() if keep_frames else BLANK)
    return Render(story, images, out, frames)


@pytest.fixture(scope="module")
def three(tmp_path_factory: pytest.TempPathFactory) -> Render:
    return render(tmp_path_factory.mktemp("three"), 3, 1.5)


@pytest.fixture(scope="module")
def single(tmp_path_factory: pytest.TempPathFactory) -> Render:
    return render(tmp_path_factory.mktemp("single"), 1, 1.0)


def top_level_boxes(path: Path) -> list[str]:
    data, boxes, pos = path.read_bytes(), [], 0
    while pos + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[pos : pos + 8])
        if size == 1:  # 64-bit size follows the type
            size = struct.unpack(">Q", data[pos + 8 : pos + 16])[0]
        boxes.append(kind.decode("latin-1"))
        pos += size if size else len(data)
    return boxes


def cues(path: Path) -> list[tuple[float, float, str]]:
    text = path.read_text(encoding="utf-8")
    assert text.startswith("WEBVTT\n")
    out = []
    for block in text.strip().split("\n\n")[1:]:
        lines = block.splitlines()
        m = re.fullmatch(
            r"(\d\d):(\d\d):(\d\d)\.(\d{3}) --> (\d\d):(\d\d):(\d\d)\.(\d{3})", lines[1]
        )
        assert m, lines
        v = [int(g) for g in m.groups()]
        start = v[0] * 3600 + v[1] * 60 + v[2] + v[3] / 1000
        end = v[4] * 3600 + v[5] * 60 + v[6] + v[7] / 1000
        out.append((start, end, "\n".join(lines[2:])))
    return out


def diff(a: Image.Image, b: Image.Image) -> float:
    return sum(ImageStat.Stat(ImageChops.difference(a.convert("RGB"), b.convert("RGB"))).mean) / 3


def test_video_is_h264_yuv420p_720p(three: Render) -> None:
    with av.open(str(three.out.video)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert stream.codec_context.pix_fmt == "yuv420p"
        assert (stream.codec_context.width, stream.codec_context.height) == (1280, 720)
        assert stream.average_rate == 24
        assert not container.streams.audio
    assert all(f.size == (1280, 720) for f in three.frames)


def test_frames_and_duration_match_outputs_and_crossfade_math(three: Render) -> None:
    expected = 3 * 1.5 - 2 * 0.5
    assert three.out.duration_s == pytest.approx(expected)
    assert three.out.frames == round(expected * 24) == len(three.frames)
    with av.open(str(three.out.video)) as container:
        stream = container.streams.video[0]
        assert stream.frames == three.out.frames
        assert stream.time_base is not None and stream.duration is not None
        assert float(stream.duration * stream.time_base) == pytest.approx(expected, abs=1 / 24)


def test_movie_is_faststart(three: Render) -> None:
    boxes = top_level_boxes(three.out.video)
    assert boxes[0] == "ftyp"
    assert boxes.index("moov") < boxes.index("mdat")


def test_captions_follow_scene_timing(three: Render) -> None:
    got = cues(three.out.captions)
    assert [c[2] for c in got] == [s.narration for s in three.story.scenes]
    assert got[0][0] == 0 and got[-1][1] == pytest.approx(three.out.duration_s)
    for (s1, e1, _), (s2, e2, _) in itertools.pairwise(got):
        assert s1 < e1 <= s2 < e2  # increasing, never overlapping
    # Hand-over sits in the middle of each crossfade: 1.0-1.5 s, then 2.0-2.5 s.
    assert [round(c[0], 3) for c in got] == [0.0, 1.25, 2.25]


def test_poster_is_a_frame_of_the_first_scene(three: Render) -> None:
    assert three.out.poster.name in ("poster.jpg", "poster.png")
    with Image.open(three.out.poster) as poster:
        assert poster.size == (1280, 720)
        first = Image.open(three.images[0])
        second = Image.open(three.images[1])
        assert diff(poster, three.frames[0]) < 4
        assert diff(poster, first) < diff(poster, second)


def nearest(frame: Image.Image, stills: list[Image.Image]) -> int:
    d = [diff(frame, s) for s in stills]
    return d.index(min(d))


def test_scenes_appear_in_order_and_crossfade_on_time(three: Render) -> None:
    stills = [Image.open(p).convert("RGB") for p in three.images]
    tl = make_timeline(3, 1.5, 24, 0.5)  # scenes start at frames 0, 24, 48; fades last 12
    for i in range(1, 3):
        start, end = tl.start_frame(i), tl.start_frame(i) + tl.fade_frames
        # Just before a fade the old scene is on screen, just after it the new one.
        assert nearest(three.frames[start - 1], stills) == i - 1
        assert nearest(three.frames[end], stills) == i
        # Mid-fade is a blend: far from both stills, unlike any single-scene frame.
        gap = diff(stills[i - 1], stills[i])
        mid = three.frames[start + tl.fade_frames // 2]
        assert min(diff(mid, stills[i - 1]), diff(mid, stills[i])) > 0.25 * gap


def test_every_scene_moves_while_its_caption_band_stays_put(three: Render) -> None:
    tl = make_timeline(3, 1.5, 24, 0.5)
    pic, band = (0, 0, 1280, 720 - CAPTION_BAND), (0, 720 - CAPTION_BAND, 1280, 720)
    for i in range(3):
        # First and last frames of the scene that no crossfade touches.
        first = tl.start_frame(i) + (tl.fade_frames if i > 0 else 0)
        last = tl.start_frame(i) + tl.scene_frames - (tl.fade_frames if i < 2 else 0) - 1
        a, b = three.frames[first], three.frames[last]
        assert diff(a.crop(pic), b.crop(pic)) > 3.0, i  # Ken Burns motion
        assert diff(a.crop(band), b.crop(band)) < 0.5, i


@pytest.mark.parametrize(
    ("motion", "band"),
    [*((m, CAPTION_BAND) for m in sorted(set(MOTIONS))), ("pan_left", 0), ("zoom_in", 0)],
)
def test_each_motion_moves_the_picture(
    motion: str, band: int, three: Render, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(video, "MOTIONS", (motion,))
    story = three.story.model_copy(update={"scenes": three.story.scenes[:1]})
    gen = CpuVideoGenerator(scene_seconds=0.5, fps=12, caption_band=band)
    out = gen.assemble(story=story, image_paths=three.images[:1], out_dir=tmp_path)
    with av.open(str(out.video)) as container:
        frames = [f.to_image() for f in container.decode(video=0)]
    assert len(frames) == out.frames == 6
    assert all(f.size == (1280, 720) for f in frames)
    pic, still = (0, 0, 1280, 720 - band), (0, 720 - band, 1280, 720)
    assert diff(frames[0].crop(pic), frames[-1].crop(pic)) > 3.0
    if band:
        assert diff(frames[0].crop(still), frames[-1].crop(still)) < 0.5


def test_single_scene_movie_has_no_crossfade(single: Render) -> None:
    assert single.out.frames == 24 == len(single.frames)
    assert single.out.duration_s == pytest.approx(1.0)
    got = cues(single.out.captions)
    assert len(got) == 1 and got[0][:2] == (0.0, 1.0)
    assert single.out.poster.is_file()
    assert not list(single.out.video.parent.glob("*.part"))


@pytest.mark.parametrize(
    ("scenes", "scene_s", "fps", "fade"),
    # 25 frames with 12-frame fades leave the middle scene one frame of its own; 12 with 6
    # leave it none.
    [(2, 1.3, 25, 0.3), (2, 1.0, 24, 0.0), (4, 1.0, 12, 0.9), (3, 25 / 24, 24, 0.5)],
)
def test_frame_math_holds_for_odd_settings(
    tmp_path: Path, scenes: int, scene_s: float, fps: int, fade: float
) -> None:
    r = render(tmp_path, scenes, scene_s, fps=fps, fade=fade, keep_frames=False)
    tl = make_timeline(scenes, scene_s, fps, fade)
    assert r.out.frames == tl.frames == len(r.frames)
    assert r.out.duration_s == pytest.approx(tl.frames / fps)
    with av.open(str(r.out.video)) as container:
        assert container.streams.video[0].average_rate == Fraction(fps)
    assert len(cues(r.out.captions)) == scenes


def test_the_graph_converts_no_frame_to_another_pixel_format(
    three: Render, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # xfade takes no yuv420p: given it, ffmpeg silently inserts scale filters converting
    # every frame to yuv444p and back, which cost about a quarter of the CPU time of a render.
    logs: list[str] = []

    def run_verbose(self: CpuVideoGenerator, args: list[str], *_: object) -> None:
        at = args.index("-loglevel") + 1
        args = [*args[:at], "verbose", *args[at + 1 :]]
        exe = imageio_ffmpeg.get_ffmpeg_exe()
        logs.append(subprocess.run([exe, *args], capture_output=True, check=True).stderr.decode())

    monkeypatch.setattr(CpuVideoGenerator, "_run", run_verbose)
    gen = CpuVideoGenerator(scene_seconds=1.5)
    gen.assemble(story=three.story, image_paths=three.images, out_dir=tmp_path)
    inserted = [line for line in logs[0].splitlines() if "auto-inserting" in line]
    # The one conversion left is the poster's single frame, to full-range JPEG.
    assert len(inserted) == 1 and "trim" in inserted[0], inserted


def test_timeline_clamps_the_crossfade_to_half_a_scene() -> None:
    tl = make_timeline(4, 1.0, 12, 0.9)
    assert (tl.scene_frames, tl.fade_frames) == (12, 6)
    assert tl.frames == 4 * 12 - 3 * 6
    assert make_timeline(1, 2.0, 24, 0.5).fade_frames == 0
    spans = [tl.cue(i) for i in range(4)]
    assert all(spans[i][1] == spans[i + 1][0] for i in range(3))


def test_bad_input_raises_render_error_with_ffmpeg_stderr(tmp_path: Path) -> None:
    story = CpuStoryGenerator(scene_seconds=1.0).write_story(
        prompt="broken", title=None, style="noir", scene_count=1, seed=1
    )
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nnot really a png")
    with pytest.raises(RenderError, match=r"ffmpeg exited with \d+: .+"):
        CpuVideoGenerator(scene_seconds=1.0).assemble(
            story=story, image_paths=[bad], out_dir=tmp_path / "out"
        )
    assert not (tmp_path / "out" / "movie.mp4").exists()


def test_timeout_raises_render_error(three: Render, tmp_path: Path) -> None:
    gen = CpuVideoGenerator(scene_seconds=1.5, timeout_s=0.01)
    with pytest.raises(RenderError, match="timed out"):
        gen.assemble(story=three.story, image_paths=three.images, out_dir=tmp_path)


def test_input_mistakes_are_refused_before_ffmpeg(three: Render, tmp_path: Path) -> None:
    gen = CpuVideoGenerator()
    with pytest.raises(ValueError, match="at least one"):
        gen.assemble(story=three.story, image_paths=[], out_dir=tmp_path)
    with pytest.raises(ValueError, match="2 images for 3 scenes"):
        gen.assemble(story=three.story, image_paths=three.images[:2], out_dir=tmp_path)
    with pytest.raises(FileNotFoundError):
        gen.assemble(
            story=three.story, image_paths=[*three.images[:2], tmp_path / "x.png"], out_dir=tmp_path
        )
    with pytest.raises(ValueError):
        CpuVideoGenerator(scene_seconds=0)
