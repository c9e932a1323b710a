"""Procedural scene painter: mood- and style-tinted landscapes with the narration as a caption."""

from __future__ import annotations

import functools
import math
import random
import unicodedata
from pathlib import Path

from PIL import Image, ImageDraw, ImageEnhance, ImageFont, ImageOps

from deepflix.stages.generators.base import Scene, Story
from deepflix.stages.generators.story import stable_hash

WIDTH, HEIGHT = 1280, 720
RGB = tuple[int, int, int]
Font = ImageFont.FreeTypeFont | ImageFont.ImageFont

# sky top, sky bottom (horizon), distant land, accent (sun/moon/lights); night draws stars.
_PALETTES: dict[str, tuple[RGB, RGB, RGB, RGB, bool]] = {
    "hopeful": ((92, 140, 205), (250, 196, 150), (96, 112, 140), (255, 236, 170), False),
    "tense": ((40, 18, 30), (196, 72, 40), (70, 30, 36), (255, 120, 60), False),
    "mysterious": ((12, 14, 48), (70, 52, 120), (30, 40, 80), (210, 220, 255), True),
    "joyful": ((60, 150, 240), (190, 230, 255), (80, 160, 90), (255, 240, 120), False),
    "melancholic": ((70, 84, 104), (160, 166, 176), (88, 98, 112), (220, 224, 230), False),
    "triumphant": ((150, 60, 40), (255, 190, 80), (120, 80, 50), (255, 245, 200), False),
}
# Bottom strip holding the scene heading and narration. The video generator keeps it still
# while the picture above moves, so captions are never cropped by the Ken Burns motion.
CAPTION_BAND = 120
_CAPTION_SIZE = 34
_HEADING_SIZE = 20
_TITLE_SIZE = 72


@functools.cache
def _font(size: int) -> Font:
    try:
        # Pillow's bundled FreeType font: identical output on every machine, no system fonts.
        return ImageFont.load_default(size=size)
    except (OSError, ImportError):  # Pillow built without FreeType: small bitmap font
        return ImageFont.load_default()


@functools.cache
def _vignette() -> Image.Image:
    """Mask that is white in the middle and darkens toward the corners (built once)."""
    radial = Image.radial_gradient("L").resize((WIDTH, HEIGHT))  # 0 centre .. 255 edge
    return radial.point(lambda v: 255 - max(0, v - 110) * 150 // 145)


def _ascii_fold(text: str) -> str:
    """The bundled font covers ASCII only: fold accents ("café" -> "cafe") to avoid tofu."""
    decomposed = unicodedata.normalize("NFKD", text)
    folded = "".join(c for c in decomposed if not unicodedata.combining(c))
    return folded.replace("\u2014", "-").replace("\u2019", "'")


def _mix(a: RGB, b: RGB, t: float) -> RGB:
    return (
        round(a[0] + (b[0] - a[0]) * t),
        round(a[1] + (b[1] - a[1]) * t),
        round(a[2] + (b[2] - a[2]) * t),
    )


def _wrap(draw: ImageDraw.ImageDraw, text: str, font: Font, width: int) -> list[str]:
    lines: list[str] = []
    for word in text.split():
        if lines and draw.textlength(f"{lines[-1]} {word}", font=font) <= width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return lines[:2] or [""]


class CpuImageGenerator:
    """Paints one 1280x720 PNG per scene; varies by scene index, mood and style."""

    # Pillow's pixel work and PNG encoding run outside the GIL (its text drawing does not),
    # so a second thread keeps a second core busy.
    threads = 2

    def render_scene(self, *, story: Story, scene: Scene, out_path: Path) -> None:
        rng = random.Random(stable_hash(f"{story.seed}:{story.prompt}:{scene.index}"))  # nosec B311 # seeded drawing from the request's seed, not a secret
        sky_top, sky_low, land, accent, night = _PALETTES.get(scene.mood, _PALETTES["hopeful"])
        horizon = int(HEIGHT * rng.uniform(0.52, 0.66))

        # Gradient sky: a 256-step grey ramp colourised in one C call, much faster than lines.
        ramp = Image.linear_gradient("L").resize((WIDTH, horizon))
        img = Image.new("RGB", (WIDTH, HEIGHT), land)
        img.paste(ImageOps.colorize(ramp, sky_top, sky_low), (0, 0))
        draw = ImageDraw.Draw(img, "RGBA")

        if night:
            for _ in range(140):
                x, y = rng.randrange(WIDTH), rng.randrange(horizon)
                r = rng.choice((1, 1, 1, 2))
                draw.ellipse((x - r, y - r, x + r, y + r), fill=(*accent, rng.randrange(120, 255)))
        self._celestial(draw, rng, accent, horizon, night)
        self._ridges(draw, rng, sky_low, land, horizon)
        self._silhouettes(draw, rng, land, accent, horizon, scene.index)

        img = self._apply_style(img, story.style)
        self._caption(img, story, scene)
        out_path.parent.mkdir(parents=True, exist_ok=True)
        # Level 1: the PNG is transient input to the encoder, so favour speed over size.
        img.save(out_path, format="PNG", compress_level=1)

    @staticmethod
    def _celestial(
        draw: ImageDraw.ImageDraw, rng: random.Random, accent: RGB, horizon: int, night: bool
    ) -> None:
        cx = rng.randrange(WIDTH // 8, WIDTH * 7 // 8)
        cy = rng.randrange(horizon // 5, max(horizon // 5 + 1, horizon - 60))
        radius = rng.randrange(36, 70) if night else rng.randrange(50, 95)
        # Concentric translucent discs fake a glow without a costly blur.
        for k in range(6, 0, -1):
            r = radius + k * 18
            draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=(*accent, 14))
        draw.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), fill=(*accent, 255))

    @staticmethod
    def _ridges(
        draw: ImageDraw.ImageDraw, rng: random.Random, sky_low: RGB, land: RGB, horizon: int
    ) -> None:
        layers = 3
        for layer in range(layers):
            # Far ridges fade into the sky (aerial perspective), near ones are darkest.
            colour = _mix(sky_low, _mix(land, (0, 0, 0), layer / layers), 0.45 + 0.2 * layer)
            base = horizon - 70 + layer * 45
            amp = rng.uniform(20, 60)
            waves = [(rng.uniform(0.002, 0.012), rng.uniform(0, math.tau)) for _ in range(3)]
            points = [(0.0, float(HEIGHT))]
            for x in range(0, WIDTH + 32, 32):
                y = base - amp * sum(math.sin(x * f + p) for f, p in waves) / 3
                points.append((float(x), y))
            points.append((float(WIDTH), float(HEIGHT)))
            draw.polygon(points, fill=colour)

    @staticmethod
    def _silhouettes(
        draw: ImageDraw.ImageDraw,
        rng: random.Random,
        land: RGB,
        accent: RGB,
        horizon: int,
        index: int,
    ) -> None:
        dark = _mix(land, (0, 0, 0), 0.8)
        ground = horizon + 40
        draw.rectangle((0, ground, WIDTH, HEIGHT), fill=dark)
        kind = ("trees", "city", "figures")[index % 3]
        if kind == "trees":
            for _ in range(rng.randrange(6, 14)):
                x, h = rng.randrange(WIDTH), rng.randrange(60, 190)
                w = h // 3
                draw.polygon([(x, ground - h), (x - w, ground + 2), (x + w, ground + 2)], fill=dark)
        elif kind == "city":
            x = rng.randrange(-40, 40)
            while x < WIDTH:
                w, h = rng.randrange(40, 110), rng.randrange(60, 260)
                draw.rectangle((x, ground - h, x + w, ground), fill=dark)
                for wy in range(ground - h + 12, ground - 12, 22):
                    for wx in range(x + 8, x + w - 10, 18):
                        if rng.random() < 0.3:  # a few lit windows read as "city at dusk"
                            draw.rectangle((wx, wy, wx + 7, wy + 10), fill=(*accent, 200))
                x += w + rng.randrange(4, 30)
        else:
            for _ in range(rng.randrange(2, 5)):
                x, h = rng.randrange(120, WIDTH - 120), rng.randrange(110, 170)
                head = h // 7
                draw.ellipse((x - head, ground - h, x + head, ground - h + 2 * head), fill=dark)
                draw.rounded_rectangle(
                    (x - h // 6, ground - h + 2 * head, x + h // 6, ground), radius=12, fill=dark
                )

    @staticmethod
    def _apply_style(img: Image.Image, style: str) -> Image.Image:
        if style == "noir":
            return ImageOps.autocontrast(ImageOps.grayscale(img), cutoff=2).convert("RGB")
        if style == "anime":
            return ImageEnhance.Color(img).enhance(1.6)
        if style == "watercolor":
            # Posterise a quarter-size copy, then upscale: soft, pigment-like edges cheaply.
            small = ImageOps.posterize(img.resize((WIDTH // 4, HEIGHT // 4)), 5)
            soft = small.resize((WIDTH, HEIGHT), Image.Resampling.BICUBIC)
            return Image.blend(soft, Image.new("RGB", img.size, (250, 244, 230)), 0.18)
        if style == "documentary":
            return ImageEnhance.Color(img).enhance(0.6)
        if style == "retro":
            sepia = ImageOps.colorize(ImageOps.grayscale(img), (40, 26, 10), (255, 236, 196))
            out = Image.blend(img, sepia, 0.6)
            lines = ImageDraw.Draw(out, "RGBA")
            for y in range(0, HEIGHT, 4):  # scanlines
                lines.line((0, y, WIDTH, y), fill=(0, 0, 0, 40))
            return out
        # cinematic (and any unknown style): extra contrast and a dark vignette.
        out = ImageEnhance.Contrast(img).enhance(1.12)
        return Image.composite(out, Image.new("RGB", img.size), _vignette())

    @staticmethod
    def _caption(img: Image.Image, story: Story, scene: Scene) -> None:
        draw = ImageDraw.Draw(img, "RGBA")
        if scene.index == 0:  # the opening shot doubles as the title card
            title_font = _font(_TITLE_SIZE)
            y = HEIGHT // 4
            for line in _wrap(draw, _ascii_fold(story.title), title_font, WIDTH - 160):
                x = (WIDTH - draw.textlength(line, font=title_font)) / 2
                draw.text((x + 3, y + 3), line, font=title_font, fill=(0, 0, 0, 170))
                draw.text((x, y), line, font=title_font, fill=(255, 255, 255, 255))
                y += _TITLE_SIZE + 10
        top = HEIGHT - CAPTION_BAND
        # Nearly opaque, so the seam between the still band and the moving picture is hidden.
        draw.rectangle((0, top, WIDTH, HEIGHT), fill=(8, 8, 10, 225))
        heading = _ascii_fold(scene.heading)
        draw.text((28, top + 8), heading, font=_font(_HEADING_SIZE), fill=(200, 200, 200, 200))
        font = _font(_CAPTION_SIZE)
        lines = _wrap(draw, _ascii_fold(scene.narration), font, WIDTH - 120)
        line_h = _CAPTION_SIZE + 6
        y = top + 34 + (2 - len(lines)) * line_h // 2
        for line in lines:
            x = (WIDTH - draw.textlength(line, font=font)) / 2
            draw.text((x + 2, y + 2), line, font=font, fill=(0, 0, 0, 220))  # drop shadow
            draw.text((x, y), line, font=font, fill=(255, 255, 255, 255))
            y += line_h
