"""The procedural dataset and the pixel judge that scores generated images."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from media.dataset import (
    ATTRIBUTES,
    COLOURS,
    Composition,
    all_compositions,
    compositions,
    example,
    examples,
    parse_caption,
    render,
    to_array,
    vocabulary,
)
from media.judge import judge


def test_every_composition_has_a_distinct_caption_that_parses_back():
    every = all_compositions()
    assert len(every) == 3 * 2 * 8 * 3 * 5 * 3 * 3
    assert len({c.caption for c in every}) == len(every)
    for c in every[::97]:
        assert parse_caption(c.caption) == c
        assert parse_caption("  " + c.caption.upper() + " ") == c


def test_captions_read_naturally():
    c = Composition(1, "large", "red", "circle", "left", "navy", "striped")
    assert c.caption == "a large red circle on the left over a striped navy background"
    assert Composition(3, "small", "cyan", "triangle", "centre", "gray", "dotted").caption == (
        "three small cyan triangles in the centre over a dotted gray background"
    )


def test_split_is_by_composition_and_holds_out_about_a_tenth():
    train, test = set(compositions("train")), set(compositions("test"))
    assert not train & test
    assert len(train) + len(test) == len(all_compositions())
    assert 0.07 < len(test) / len(all_compositions()) < 0.13
    assert {e.composition.split for e in examples("test", 3, 50)} == {"test"}
    # Every attribute value still appears in training.
    for name in ATTRIBUTES:
        assert {getattr(c, name) for c in train} == {getattr(c, name) for c in all_compositions()}


@pytest.mark.parametrize("side", [32, 64])
def test_rendering_is_deterministic(side):
    first = [to_array(e.image).tobytes() for e in examples("train", 5, 20, side)]
    again = [to_array(example("train", 5, i, side).image).tobytes() for i in range(20)]
    assert first == again
    assert hashlib.sha256(b"".join(first)).hexdigest() == hashlib.sha256(b"".join(again)).hexdigest()
    assert len({hashlib.sha256(b).digest() for b in first}) == 20
    assert to_array(examples("train", 6, 1, side).__next__().image).tobytes() != first[0]


def test_bad_values_and_sizes_are_refused():
    with pytest.raises(ValueError, match="colour 'teal'"):
        Composition(1, "large", "teal", "circle", "left", "navy", "plain")
    with pytest.raises(ValueError, match="count 4"):
        Composition(4, "large", "red", "circle", "left", "navy", "plain")
    with pytest.raises(ValueError, match="multiple of 16"):
        render(all_compositions()[0], 0, side=20)
    assert parse_caption("a photo of a cat") is None


def test_the_vocabulary_is_small():
    words = vocabulary()
    assert len(words) == 36
    assert "triangles" in words and "centre" in words


@pytest.mark.parametrize("side", [32, 64])
def test_judge_reads_colour_shape_and_count_of_every_real_image(side):
    held = list(examples("test", 11, 300, side))
    for e in held:
        verdict = judge(e.image)
        assert verdict.matches(e.composition), (e.caption, verdict)
        assert verdict.count == e.composition.count, (e.caption, verdict)


def test_judge_is_not_fooled_by_a_blank_or_a_recoloured_image():
    e = example("test", 2, 0)
    blank = np.zeros((32, 32, 3), dtype=np.uint8)
    assert judge(blank).colour is None and not judge(blank).matches(e.composition)
    pixels = to_array(e.image).copy()
    mask = np.all(np.abs(pixels.astype(int) - COLOURS[e.composition.colour]) <= 12, axis=2)
    other = next(c for c in COLOURS if c != e.composition.colour)
    pixels[mask] = COLOURS[other]
    verdict = judge(pixels)
    assert verdict.colour == other and not verdict.matches(e.composition)
