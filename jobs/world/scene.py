"""Draw a learnable-world scene (world_truth.SceneSpec) as a PIL image.

Every random choice comes from the rng passed in, so one seed gives the same pixels; the
jitter (tone, positions, sizes, rotation, pixel noise) makes two images of one spec differ,
as two photos of one thing do.
"""
from __future__ import annotations

import math
import random

from PIL import Image, ImageChops, ImageDraw

from realsyn.jobs.world.truth import COLOURS, SceneSpec, ShapeGroup

# Light neutral tones: every object colour stands out from every background.
BACKGROUND_TONES = ((226, 224, 218), (208, 212, 216), (232, 222, 204), (196, 200, 192), (218, 206, 202))
RADIUS = {"small": 0.075, "large": 0.125}   # of the image side
# Centres (fractions of the side) for 1, 2 or 3 shapes at each position.
LAYOUTS: dict[str, dict[int, tuple[tuple[float, float], ...]]] = {
    "left": {1: ((0.2, 0.5),), 2: ((0.2, 0.32), (0.2, 0.68)), 3: ((0.2, 0.2), (0.2, 0.5), (0.2, 0.8))},
    "right": {1: ((0.8, 0.5),), 2: ((0.8, 0.32), (0.8, 0.68)), 3: ((0.8, 0.2), (0.8, 0.5), (0.8, 0.8))},
    "top": {1: ((0.5, 0.2),), 2: ((0.32, 0.2), (0.68, 0.2)), 3: ((0.2, 0.2), (0.5, 0.2), (0.8, 0.2))},
    "bottom": {1: ((0.5, 0.8),), 2: ((0.32, 0.8), (0.68, 0.8)), 3: ((0.2, 0.8), (0.5, 0.8), (0.8, 0.8))},
    "centre": {1: ((0.5, 0.5),), 2: ((0.36, 0.5), (0.64, 0.5)), 3: ((0.5, 0.36), (0.36, 0.62), (0.64, 0.62))},
}


def _jitter(rgb: tuple[int, ...], rng: random.Random, amount: int) -> tuple[int, int, int]:
    r, g, b = (max(0, min(255, v + rng.randint(-amount, amount))) for v in rgb)
    return (r, g, b)


def _darker(rgb: tuple[int, ...], by: int) -> tuple[int, int, int]:
    r, g, b = (max(0, v - by) for v in rgb)
    return (r, g, b)


def add_noise(img: Image.Image, rng: random.Random, amplitude: int) -> Image.Image:
    """Grey per-pixel noise in [-amplitude, amplitude], drawn from rng (PIL's own noise is not seeded)."""
    w, h = img.size
    noise = Image.frombytes("L", (w, h), rng.randbytes(w * h)).point(lambda v: v * 2 * amplitude // 255)
    return ImageChops.add(img, Image.merge("RGB", (noise, noise, noise)), 1.0, -amplitude)


def background(kind: str, size: int, rng: random.Random) -> Image.Image:
    tone = _jitter(rng.choice(BACKGROUND_TONES), rng, 8)
    img = Image.new("RGB", (size, size), tone)
    draw = ImageDraw.Draw(img)
    shade = _darker(tone, rng.randint(25, 45))
    if kind == "striped":
        width = rng.randint(4, 10)
        dx, dy = rng.choice(((1, 0), (0, 1), (1, 1), (1, -1)))   # horizontal, vertical, diagonals
        for offset in range(-2 * size, 2 * size, 2 * width):   # lines across the whole square
            cx, cy = size // 2 - dy * offset, size // 2 + dx * offset
            draw.line([(cx - dx * 2 * size, cy - dy * 2 * size), (cx + dx * 2 * size, cy + dy * 2 * size)],
                      fill=shade, width=width)
    elif kind == "dotted":
        step, r = rng.randint(8, 14), rng.randint(1, 2)
        ox, oy = rng.randrange(step), rng.randrange(step)
        for y in range(oy, size, step):
            for x in range(ox, size, step):
                draw.ellipse([x - r, y - r, x + r, y + r], fill=shade)
    elif kind == "noisy":
        img = add_noise(img, rng, 40)
    return img


def _polygon(cx: float, cy: float, radii: list[float], turn: float) -> list[tuple[float, float]]:
    """Points at equal angles around (cx, cy), starting straight up and turned by `turn` radians."""
    n = len(radii)
    return [(cx + r * math.cos(turn - math.pi / 2 + 2 * math.pi * i / n),
             cy + r * math.sin(turn - math.pi / 2 + 2 * math.pi * i / n)) for i, r in enumerate(radii)]


def draw_shape(draw: ImageDraw.ImageDraw, kind: str, cx: float, cy: float, r: float,
               fill: tuple[int, int, int], rng: random.Random) -> None:
    turn = math.radians(rng.uniform(-15, 15))
    if kind == "circle":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill)
    elif kind == "ring":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], outline=fill, width=max(2, round(r * 0.35)))
    elif kind == "square":
        draw.polygon(_polygon(cx, cy, [r * 1.1] * 4, turn + math.pi / 4), fill=fill)
    elif kind == "triangle":
        draw.polygon(_polygon(cx, cy, [r * 1.15] * 3, turn), fill=fill)
    elif kind == "star":
        draw.polygon(_polygon(cx, cy, [r * 1.15, r * 0.48] * 5, turn), fill=fill)
    elif kind == "cross":
        arm = r * 0.34   # a plus sign: 12 corners, at distances from the centre
        outer, inner = math.hypot(r, arm), math.hypot(arm, arm)
        tip = math.atan2(arm, r)
        points = []
        for quarter in range(4):
            base = turn + quarter * math.pi / 2
            for a, d in ((-tip, outer), (tip, outer), (math.pi / 4, inner)):
                points.append((cx + d * math.cos(base + a), cy + d * math.sin(base + a)))
        draw.polygon(points, fill=fill)
    else:
        raise ValueError(f"unknown shape kind {kind!r}")


def draw_group(draw: ImageDraw.ImageDraw, g: ShapeGroup, size: int, rng: random.Random) -> None:
    for fx, fy in LAYOUTS[g.position][g.count]:
        cx, cy = (fx + rng.uniform(-0.04, 0.04)) * size, (fy + rng.uniform(-0.04, 0.04)) * size
        r = RADIUS[g.size] * size * rng.uniform(0.85, 1.15)
        draw_shape(draw, g.kind, cx, cy, r, _jitter(COLOURS[g.colour], rng, 12), rng)


def draw_scene(spec: SceneSpec, rng: random.Random, size: int = 128) -> Image.Image:
    """An RGB size x size picture of the spec (the pipeline keeps shorter sides >= 100 px)."""
    img = background(spec.background, size, rng)
    draw = ImageDraw.Draw(img)
    for g in spec.groups:
        draw_group(draw, g, size, rng)
    return add_noise(img, rng, 6)   # sensor-like grain: no two renders share bytes
