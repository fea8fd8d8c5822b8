"""The pieces both trainers share: schedule and checkpoint."""

from __future__ import annotations

from itertools import pairwise

import pytest
import torch

from media.dataset import examples
from media.training import load_checkpoint, pixels, save_checkpoint, warmup_cosine


def test_warmup_then_cosine_down_to_the_floor():
    lr = [warmup_cosine(s, lr=1.0, warmup=10, steps=110) for s in range(110)]
    assert lr[0] == pytest.approx(0.1) and lr[9] == pytest.approx(1.0) and lr[10] == pytest.approx(1.0)
    assert lr[60] == pytest.approx(0.5) and lr[-1] < 0.001
    assert all(a >= b for a, b in pairwise(lr[10:]))
    assert warmup_cosine(110, lr=1.0, warmup=10, steps=110, floor=0.1) == pytest.approx(0.1)


def test_a_checkpoint_resumes_only_the_run_that_wrote_it(tmp_path):
    assert load_checkpoint(tmp_path, {"config": 1}) is None
    save_checkpoint(tmp_path, {"config": 1, "shape": "a", "step": 7, "weights": torch.ones(2)})
    state = load_checkpoint(tmp_path, {"config": 1, "shape": "a"})
    assert state is not None and state["step"] == 7 and torch.equal(state["weights"], torch.ones(2))
    assert load_checkpoint(tmp_path, {"config": 2, "shape": "a"}) is None
    assert load_checkpoint(tmp_path, {"config": 1, "shape": "b"}) is None
    assert not (tmp_path / "checkpoint.tmp").exists()


def test_pixels_are_a_unit_range_channel_first_batch():
    batch = pixels([e.image for e in examples("test", 0, 3)])
    assert batch.shape == (3, 3, 32, 32) and batch.dtype == torch.float32
    assert float(batch.min()) >= 0.0 and float(batch.max()) <= 1.0
