"""What both trainers share: the image batch, the learning-rate schedule, the crash-safe checkpoint."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from media.dataset import to_array


def pixels(images: list[Any]) -> torch.Tensor:
    """PIL images to a (B, 3, H, W) float batch in [0, 1]."""
    array = np.stack([to_array(image) for image in images]).astype(np.float32) / 255.0
    return torch.from_numpy(array).permute(0, 3, 1, 2)


def warmup_cosine(step: int, *, lr: float, warmup: int, steps: int, floor: float = 0.0) -> float:
    """Linear warm-up over `warmup` steps, then a cosine from `lr` down to `floor * lr`."""
    if step < warmup:
        return lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return lr * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress)))


CHECKPOINT = "checkpoint.pt"


def save_checkpoint(work: Path, state: dict[str, Any]) -> None:
    """Writes `work/checkpoint.pt` atomically: a crash leaves the previous one whole."""
    temporary = work / "checkpoint.tmp"
    torch.save(state, temporary)
    temporary.replace(work / CHECKPOINT)


def load_checkpoint(
    work: Path, identity: dict[str, Any], *, ignore: frozenset[str] = frozenset()
) -> dict[str, Any] | None:
    """The checkpoint in `work` when it was written by a run with the same `identity` entries
    (configuration, shapes, inputs), else None: a changed run starts afresh. Keys of a `config`
    entry named in `ignore` (evaluation-only settings, which never change the weights) are left
    out of the comparison on both sides."""
    path = work / CHECKPOINT
    if not path.exists():
        return None
    state: dict[str, Any] = torch.load(path, weights_only=False)

    def same(key: str, value: Any) -> bool:
        stored = state.get(key)
        if key == "config" and isinstance(stored, dict) and isinstance(value, dict):
            return {k: v for k, v in stored.items() if k not in ignore} == {
                k: v for k, v in value.items() if k not in ignore
            }
        return bool(stored == value)

    return state if all(same(key, value) for key, value in identity.items()) else None
