"""Free previews of licensed images: the image at half its size (at least `MIN_SIDE` pixels on
its shorter side, never larger than the original), PNG, made once per asset and kept in a small
in-memory cache. The full image stays behind the paywall; the gallery and lineage graph show these."""

from __future__ import annotations

import asyncio
import io
from collections import OrderedDict

MIN_SIDE = 16


def make_preview(png: bytes, *, factor: int = 2, min_side: int = MIN_SIDE) -> bytes:
    """`png` reduced by `factor` (box filter), as PNG. ValueError if it is not an image."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(png)) as image:
            image.load()
            rgb = image.convert("RGB")
    except (UnidentifiedImageError, OSError) as exc:
        raise ValueError(f"not an image: {exc}") from exc
    width, height = rgb.size
    scale = max(factor, 1)
    if min(width, height) // scale < min_side:
        scale = max(1, min(width, height) // min_side)
    reduced = rgb.resize((max(1, width // scale), max(1, height // scale)), Image.Resampling.BOX)
    out = io.BytesIO()
    reduced.save(out, format="PNG", optimize=True)
    return out.getvalue()


class Previews:
    """Previews by asset digest; the newest `capacity` are kept."""

    def __init__(self, capacity: int = 512) -> None:
        self._cache: OrderedDict[bytes, bytes] = OrderedDict()
        self._capacity = capacity

    async def get(self, digest: bytes, png: bytes) -> bytes:
        found = self._cache.get(digest)
        if found is not None:
            self._cache.move_to_end(digest)
            return found
        made = await asyncio.to_thread(make_preview, png)
        self._cache[digest] = made
        while len(self._cache) > self._capacity:
            self._cache.popitem(last=False)
        return made
