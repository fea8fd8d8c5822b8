"""An independent procedural judge: reads object colour, shape and count from pixels.

It knows the palette and nothing else (no model): each pixel goes to its nearest palette colour
(object colours, backgrounds and their pattern shades); the objects are the connected regions of
the most common object colour; a region's shape comes from how it fills its bounding box and how
its width changes from top to bottom (a triangle widens downwards, a square fills its box, a
circle does neither).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from media.dataset import BACKGROUNDS, COLOURS, Composition, shade, to_array

#: A pixel farther than this (Euclidean RGB) from every palette colour is unclassified.
MAX_DISTANCE = 90.0
#: Regions smaller than this fraction of the image area are noise.
MIN_REGION_FRACTION = 0.006

_OBJECT_NAMES = tuple(COLOURS)
_PALETTE = np.array(
    [COLOURS[n] for n in _OBJECT_NAMES] + list(BACKGROUNDS.values()) + [shade(c) for c in BACKGROUNDS.values()],
    dtype=np.float32,
)


@dataclass(frozen=True)
class Judgement:
    colour: str | None
    shape: str | None
    count: int

    def matches(self, c: Composition) -> bool:
        """True when colour and shape are the composition's (the judged attributes)."""
        return self.colour == c.colour and self.shape == c.shape


def _regions(mask: NDArray[np.bool_]) -> list[NDArray[np.int64]]:
    """Connected regions (4-neighbour) of a boolean mask, each as an array of (y, x)."""
    seen = np.zeros_like(mask, dtype=bool)
    h, w = mask.shape
    found: list[NDArray[np.int64]] = []
    for y0, x0 in zip(*np.nonzero(mask), strict=True):
        if seen[y0, x0]:
            continue
        seen[y0, x0] = True
        queue = deque([(int(y0), int(x0))])
        pixels: list[tuple[int, int]] = []
        while queue:
            y, x = queue.popleft()
            pixels.append((y, x))
            for ny, nx in ((y - 1, x), (y + 1, x), (y, x - 1), (y, x + 1)):
                if 0 <= ny < h and 0 <= nx < w and mask[ny, nx] and not seen[ny, nx]:
                    seen[ny, nx] = True
                    queue.append((ny, nx))
        found.append(np.array(pixels))
    return found


def shape_of(region: NDArray[np.int64]) -> str:
    """circle, square or triangle, from a region's (y, x) pixels."""
    ys, xs = region[:, 0], region[:, 1]
    top, bottom, left, right = ys.min(), ys.max(), xs.min(), xs.max()
    height, width = bottom - top + 1, right - left + 1
    fill = len(region) / float(height * width)
    rows = np.bincount(ys - top, minlength=height).astype(np.float32)
    third = max(1, height // 3)
    widening = (rows[-third:].mean() - rows[:third].mean()) / max(1.0, float(rows.max()))
    if widening > 0.35:
        return "triangle"
    if fill > 0.88:
        return "square"
    return "circle"


def judge(image: Image.Image | NDArray[np.uint8]) -> Judgement:
    """The colour, shape and count of the objects in an image."""
    pixels = to_array(image) if isinstance(image, Image.Image) else np.asarray(image, dtype=np.uint8)
    flat = pixels.reshape(-1, 3).astype(np.float32)
    distances = np.linalg.norm(flat[:, None, :] - _PALETTE[None, :, :], axis=2)
    nearest = distances.argmin(axis=1)
    close = distances.min(axis=1) <= MAX_DISTANCE
    labels = np.where(close, nearest, -1).reshape(pixels.shape[:2])
    votes = np.bincount(labels[labels >= 0].ravel(), minlength=len(_PALETTE))[: len(_OBJECT_NAMES)]
    if votes.sum() == 0:
        return Judgement(None, None, 0)
    colour_index = int(votes.argmax())
    min_size = max(2, round(MIN_REGION_FRACTION * labels.size))
    regions = [r for r in _regions(labels == colour_index) if len(r) >= min_size]
    if not regions:
        return Judgement(_OBJECT_NAMES[colour_index], None, 0)
    shapes = [shape_of(r) for r in regions]
    shape = max(set(shapes), key=lambda s: (shapes.count(s), s))
    return Judgement(_OBJECT_NAMES[colour_index], shape, len(regions))
