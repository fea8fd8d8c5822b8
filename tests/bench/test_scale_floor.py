"""`bench/scale_floor.py`: the compute floor of an asset, measured with the real shipped CLIP,
C2PA signer and native Poseidon on a few images."""

from __future__ import annotations

import pytest

from bench.scale_floor import compute_floor

pytestmark = pytest.mark.offchain


def png_of(seed: int, side: int = 32) -> bytes:
    """A PNG of random pixels."""
    import io
    import random

    from PIL import Image

    buffer = io.BytesIO()
    Image.frombytes("RGB", (side, side), random.Random(seed).randbytes(side * side * 3)).save(buffer, "PNG")
    return buffer.getvalue()


def test_the_floor_measures_each_computation_and_the_ceiling_follows_from_their_sum():
    items = [(f"a red circle on a blue background {i}", png_of(i)) for i in range(3)]
    figures = compute_floor(items, repeats=1, cores=2)
    floor = figures["compute_floor_ms_per_asset"]
    parts = ("clip_image", "clip_text", "c2pa_sign", "poseidon")
    assert set(floor) == {*parts, "total"}
    assert all(floor[name] > 0 for name in parts), floor  # each one measured, none skipped
    assert floor["total"] == pytest.approx(sum(floor[name] for name in parts), abs=0.01)
    assert figures["ceiling_cores"] == 2
    assert figures["ceiling_assets_per_min"] == pytest.approx(2 * 60_000 / floor["total"], rel=1e-3)


def test_no_items_is_refused_saying_what_is_needed():
    with pytest.raises(ValueError, match="at least one"):
        compute_floor([])
