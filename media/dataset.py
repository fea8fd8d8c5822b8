"""A deterministic procedural dataset of generative-art compositions, with captions.

Every image shows 1-3 identical shapes of one colour and size, grouped in one region, over a
plain, striped or dotted background. The caption names all seven attributes, e.g.
"two large red circles on the left over a striped navy background".

Determinism: an example is a pure function of (split, seed, index). The split of a composition
is fixed by a hash of its caption, so the held-out split has compositions (and prompts) that
training never sees, not just new pixels.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields
from itertools import product
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw

Split = Literal["train", "test"]
RGB = tuple[int, int, int]

COUNTS: dict[int, str] = {1: "a", 2: "two", 3: "three"}
SIZES: tuple[str, ...] = ("small", "large")
COLOURS: dict[str, RGB] = {
    "red": (220, 40, 40),
    "green": (40, 190, 60),
    "blue": (60, 110, 245),
    "yellow": (240, 220, 50),
    "magenta": (220, 60, 220),
    "cyan": (50, 210, 220),
    "white": (245, 245, 245),
    "orange": (250, 140, 30),
}
SHAPES: tuple[str, ...] = ("circle", "square", "triangle")
POSITIONS: dict[str, str] = {
    "left": "on the left",
    "right": "on the right",
    "top": "at the top",
    "bottom": "at the bottom",
    "centre": "in the centre",
}
BACKGROUNDS: dict[str, RGB] = {"black": (20, 20, 24), "gray": (110, 110, 110), "navy": (24, 34, 96)}
PATTERNS: tuple[str, ...] = ("plain", "striped", "dotted")

#: How far a pattern's marks move the background colour towards white.
PATTERN_SHADE = 0.35
#: Largest per-channel jitter of an object's colour.
COLOUR_JITTER = 12
#: One held-out composition in this many (chosen by caption hash).
TEST_ONE_IN = 10

_RADIUS_AT_32 = {"small": 3, "large": 5}
# Regions where the objects' centres lie, as fractions of the side: (x0, y0, x1, y1).
_REGIONS: dict[str, tuple[float, float, float, float]] = {
    "left": (0.0, 0.0, 0.5, 1.0),
    "right": (0.5, 0.0, 1.0, 1.0),
    "top": (0.0, 0.0, 1.0, 0.5),
    "bottom": (0.0, 0.5, 1.0, 1.0),
    "centre": (0.3, 0.3, 0.7, 0.7),
}
# How far (fraction of the side) one centre may lie outside its region.
_SLACK = 0.2


def shade(colour: RGB) -> RGB:
    """The colour of a background's stripes or dots."""
    r, g, b = (round(c + PATTERN_SHADE * (255 - c)) for c in colour)
    return (r, g, b)


@dataclass(frozen=True, order=True)
class Composition:
    """The attributes of one image; `caption` is its text."""

    count: int
    size: str
    colour: str
    shape: str
    position: str
    background: str
    pattern: str

    def __post_init__(self) -> None:
        for name, allowed in _ALLOWED.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} {getattr(self, name)!r} is not one of {sorted(map(str, allowed))}")

    @property
    def caption(self) -> str:
        noun = self.shape if self.count == 1 else f"{self.shape}s"
        return (
            f"{COUNTS[self.count]} {self.size} {self.colour} {noun} {POSITIONS[self.position]}"
            f" over a {self.pattern} {self.background} background"
        )

    @property
    def split(self) -> Split:
        digest = hashlib.sha256(self.caption.encode()).digest()
        return "test" if int.from_bytes(digest[:8], "big") % TEST_ONE_IN == 0 else "train"

    def radius(self, side: int) -> int:
        return max(1, round(_RADIUS_AT_32[self.size] * side / 32))


_ALLOWED: dict[str, Sequence[object]] = {
    "count": tuple(COUNTS),
    "size": SIZES,
    "colour": tuple(COLOURS),
    "shape": SHAPES,
    "position": tuple(POSITIONS),
    "background": tuple(BACKGROUNDS),
    "pattern": PATTERNS,
}
ATTRIBUTES: tuple[str, ...] = tuple(f.name for f in fields(Composition))


def all_compositions() -> list[Composition]:
    """Every composition, in a fixed order."""
    return [
        Composition(count, size, colour, shape, position, background, pattern)
        for count, size, colour, shape, position, background, pattern in product(
            COUNTS, SIZES, COLOURS, SHAPES, POSITIONS, BACKGROUNDS, PATTERNS
        )
    ]


def compositions(split: Split) -> list[Composition]:
    """The compositions of one split, in a fixed order."""
    return [c for c in all_compositions() if c.split == split]


def vocabulary() -> list[str]:
    """Every word a caption can contain, sorted."""
    words: set[str] = set()
    for c in all_compositions():
        words.update(c.caption.split())
    return sorted(words)


def parse_caption(text: str) -> Composition | None:
    """The composition a caption describes, or None when it is not one of this grammar's."""
    return _CAPTIONS.get(" ".join(text.lower().split()))


_CAPTIONS: dict[str, Composition] = {c.caption: c for c in all_compositions()}


def _centres(c: Composition, side: int, rng: random.Random) -> list[tuple[int, int]]:
    """Object centres whose mean lies in the composition's region, boxes apart (no touching).

    Each centre may stray a little outside the region (three large shapes do not fit inside
    half of a 32-pixel image), but the group's centre is in it.
    """
    r = c.radius(side)
    x0, y0, x1, y1 = (f * (side - 1) for f in _REGIONS[c.position])
    slack = _SLACK * side
    lo, hi = r + 1, side - r - 2
    xs = (max(lo, round(x0 - slack)), min(hi, round(x1 + slack)))
    ys = (max(lo, round(y0 - slack)), min(hi, round(y1 + slack)))
    gap = 2 * r + 2
    for _ in range(10_000):
        centres = [(rng.randint(*xs), rng.randint(*ys)) for _ in range(c.count)]
        mean_x = sum(x for x, _ in centres) / c.count
        mean_y = sum(y for _, y in centres) / c.count
        if not (x0 <= mean_x <= x1 and y0 <= mean_y <= y1):
            continue
        if all(
            max(abs(ax - bx), abs(ay - by)) >= gap for i, (ax, ay) in enumerate(centres) for bx, by in centres[i + 1 :]
        ):
            return centres
    raise RuntimeError(f"no room for {c.caption!r} at {side}x{side}")  # pragma: no cover - sizes are fixed


def _jitter(colour: RGB, rng: random.Random) -> RGB:
    r, g, b = (min(255, max(0, v + rng.randint(-COLOUR_JITTER, COLOUR_JITTER))) for v in colour)
    return (r, g, b)


def render(c: Composition, seed: int, side: int = 32) -> Image.Image:
    """The image of a composition; the seed picks the layout, pattern phase and colour jitter."""
    if side < 16 or side % 16:
        raise ValueError(f"side must be a multiple of 16, at least 16; got {side}")
    rng = random.Random(f"{c.caption}|{seed}|{side}")
    base = BACKGROUNDS[c.background]
    image = Image.new("RGB", (side, side), base)
    draw = ImageDraw.Draw(image)
    period = max(4, side // 8)
    phase = rng.randrange(period)
    mark = shade(base)
    if c.pattern == "striped":
        for y in range(-period, side, period):
            draw.rectangle((0, y + phase, side - 1, y + phase + period // 2 - 1), fill=mark)
    elif c.pattern == "dotted":
        dot = max(1, period // 4)
        for y in range(phase % period, side, period):
            for x in range(phase % period, side, period):
                draw.rectangle((x, y, x + dot - 1, y + dot - 1), fill=mark)
    colour = _jitter(COLOURS[c.colour], rng)
    r = c.radius(side)
    for cx, cy in _centres(c, side, rng):
        box = (cx - r, cy - r, cx + r, cy + r)
        if c.shape == "circle":
            draw.ellipse(box, fill=colour)
        elif c.shape == "square":
            draw.rectangle(box, fill=colour)
        else:
            draw.polygon([(cx, cy - r), (cx + r, cy + r), (cx - r, cy + r)], fill=colour)
    return image


@dataclass(frozen=True)
class Example:
    composition: Composition
    seed: int
    image: Image.Image

    @property
    def caption(self) -> str:
        return self.composition.caption


def example(split: Split, seed: int, index: int, side: int = 32) -> Example:
    """Example `index` of the stream (split, seed): a composition of the split and its image."""
    pool = _POOLS[split]
    rng = random.Random(f"{split}|{seed}|{index}")
    composition = pool[rng.randrange(len(pool))]
    image_seed = rng.getrandbits(63)
    return Example(composition, image_seed, render(composition, image_seed, side))


_POOLS: dict[Split, list[Composition]] = {"train": compositions("train"), "test": compositions("test")}


def examples(split: Split, seed: int, count: int, side: int = 32, start: int = 0) -> Iterator[Example]:
    for index in range(start, start + count):
        yield example(split, seed, index, side)


def to_array(image: Image.Image) -> NDArray[np.uint8]:
    """An image as an (H, W, 3) uint8 array."""
    return np.asarray(image.convert("RGB"), dtype=np.uint8)
