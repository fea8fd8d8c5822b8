"""The curation head: a small MLP from a CLIP image embedding to one score, the model proofmint
proves inference of. Its trained weights are shipped by the tiny-models work; this module fixes
the architecture, a deterministic initialisation and the ONNX export EZKL reads.

A batch of K embeddings is exported as one graph of input shape (K, embed_dim), so one proof
covers K inferences and its public instances carry K input commitments and K scores.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

ONNX_OPSET = 18
"""The newest opset ezkl 23's tract is tested against (9..18); newer exports only warn, but the
project does not rely on untested operators."""


@dataclass(frozen=True)
class HeadShape:
    embed_dim: int = 64
    hidden: int = 32

    def __post_init__(self) -> None:
        if self.embed_dim < 1 or self.hidden < 1:
            raise ValueError(f"embed_dim and hidden must be positive, got {self.embed_dim} and {self.hidden}")


class CurationHead(nn.Module):
    """embedding -> Linear -> ReLU -> Linear -> score (one per row)."""

    def __init__(self, shape: HeadShape) -> None:
        super().__init__()
        self.shape = shape
        self.net = nn.Sequential(nn.Linear(shape.embed_dim, shape.hidden), nn.ReLU(), nn.Linear(shape.hidden, 1))

    def forward(self, embedding: torch.Tensor) -> torch.Tensor:
        score: torch.Tensor = self.net(embedding)
        return score


def build_curation_head(shape: HeadShape | None = None, *, seed: int = 0) -> CurationHead:
    """A head with weights drawn from `seed` (same seed, same weights, on any machine), in eval mode."""
    generator = torch.Generator().manual_seed(seed)
    head = CurationHead(shape or HeadShape())
    with torch.no_grad():
        for param in head.parameters():
            bound = 1.0 / max(1, param.shape[-1]) ** 0.5
            param.copy_(torch.empty(param.shape).uniform_(-bound, bound, generator=generator))
    return head.eval()


def export_onnx(head: CurationHead, path: Path, *, batch: int) -> Path:
    """Write the head as ONNX for a fixed batch of `batch` embeddings (input `embedding`, output
    `score`), through the TorchScript exporter that ezkl reads."""
    if batch < 1:
        raise ValueError(f"batch must be at least 1, got {batch}")
    path.parent.mkdir(parents=True, exist_ok=True)
    example = torch.zeros(batch, head.shape.embed_dim)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, message=".*legacy TorchScript-based ONNX")
        torch.onnx.export(
            head,
            (example,),
            str(path),
            input_names=["embedding"],
            output_names=["score"],
            opset_version=ONNX_OPSET,
            dynamo=False,
        )
    return path
