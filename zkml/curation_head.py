"""The curation head: a small MLP from a CLIP image embedding to one score, the model proofmint
proves inference of. Its trained weights are shipped by the tiny-models work; this module fixes
the architecture, a deterministic initialisation and the ONNX export EZKL reads.

A batch of K embeddings is exported as one graph of K inputs of shape (1, embed_dim) and one
output of K scores. EZKL hashes each input on its own, so one proof covers K inferences and its
public instances are the K input commitments (one per embedding, in order) followed by the K
scores: the layout `ProvenanceRegistry.attestInference` reads.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn

from zkml.shape import HeadShape

__all__ = ["ONNX_OPSET", "BatchedHead", "CurationHead", "HeadShape", "build_curation_head", "export_onnx"]

ONNX_OPSET = 18
"""The newest opset ezkl 23's tract is tested against (9..18); newer exports only warn, but the
project does not rely on untested operators."""


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


class BatchedHead(nn.Module):
    """K embeddings in, K scores out: the graph one proof of K inferences is made of."""

    def __init__(self, head: CurationHead) -> None:
        super().__init__()
        self.head = head

    def forward(self, *embeddings: torch.Tensor) -> torch.Tensor:
        scores: torch.Tensor = self.head(torch.cat(embeddings, dim=0)).reshape(-1)
        return scores


def export_onnx(head: CurationHead, path: Path, *, batch: int) -> Path:
    """Write the head as ONNX for a fixed batch of `batch` embeddings (inputs `embedding_0` ..,
    each of shape (1, embed_dim); output `score` of shape (batch,)), through the TorchScript
    exporter that ezkl reads."""
    if batch < 1:
        raise ValueError(f"batch must be at least 1, got {batch}")
    path.parent.mkdir(parents=True, exist_ok=True)
    examples = tuple(torch.zeros(1, head.shape.embed_dim) for _ in range(batch))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, message=".*legacy TorchScript-based ONNX")
        torch.onnx.export(
            BatchedHead(head).eval(),
            examples,
            str(path),
            input_names=[f"embedding_{i}" for i in range(batch)],
            output_names=["score"],
            opset_version=ONNX_OPSET,
            dynamo=False,
        )
    return path
