"""The curation head: a small MLP from one row (an image's CLIP embedding followed by its
prompt's CLIP text embedding) to one score, the model proofmint proves inference of. Its trained
weights ship in `models/curation-head` (`make train-head`, `media.head_training`); this module
fixes the architecture, loads trained weights (`load_weights`, `CurationHead.from_state`), gives a
deterministic random initialisation (for sizing circuits only: a proof of random weights proves
nothing) and the ONNX export EZKL reads.

A batch of K inferences is exported as one graph of K inputs of shape (1, embed_dim + 1): each
row is an asset's embedding followed by one field element, its proven digest (the top 253
bits of the content digest's keccak256, `zkml.evm.proven_digest`). The graph has two outputs: `score`, the K
scores the head computes from the embedding part alone, and `digest`, the K proven digests
passed through unchanged. EZKL hashes each input row on its own, so one proof covers K
inferences and its public instances are the K input commitments (one per row, in order), then the
K scores, then the K proven digests: the layout `ProvenanceRegistry.attestInference` reads. The
proven digests among the public outputs, with the commitments, are what bind a proof to the
assets it was made for.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import warnings
from pathlib import Path

import torch
from torch import nn

from zkml.shape import HeadShape

__all__ = [
    "ONNX_OPSET",
    "BatchedHead",
    "CurationHead",
    "HeadShape",
    "build_curation_head",
    "export_onnx",
    "load_weights",
]

WEIGHTS_FILE = "curation_head.safetensors"
CONFIG_FILE = "head.json"

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

    @classmethod
    def from_state(cls, state: dict[str, torch.Tensor]) -> CurationHead:
        """A head of the shape `state` has, holding those weights, in eval mode; ValueError when
        `state` is not this layout's."""
        try:
            hidden, embed_dim = state["net.0.weight"].shape
            head = cls(HeadShape(int(embed_dim), int(hidden)))
            head.load_state_dict(state)
        except (KeyError, ValueError, RuntimeError) as exc:
            raise ValueError(f"not curation-head weights (Linear -> ReLU -> Linear): {exc}") from None
        return head.eval()


def load_weights(path: Path) -> dict[str, torch.Tensor]:
    """A head's weights from a head folder (its safetensors file, which must be the one its
    `head.json` names by sha256), a `.safetensors` file or a torch state_dict file; ValueError
    when it is none of these."""
    from safetensors.torch import load_file

    try:
        if path.is_dir():
            weights = path / WEIGHTS_FILE
            named = json.loads((path / CONFIG_FILE).read_text(encoding="utf8")).get("weights_sha256")
            if named != hashlib.sha256(weights.read_bytes()).hexdigest():
                raise ValueError(f"{weights} is not the weights {path / CONFIG_FILE} names")
            return dict(load_file(str(weights)))
        if path.suffix == ".safetensors":
            return dict(load_file(str(path)))
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, KeyError, pickle.UnpicklingError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not curation-head weights ({exc})") from None
    if not isinstance(state, dict):
        raise ValueError(f"{path}: not a state_dict")
    return state


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
    """K rows (embedding ‖ proven digest) in; K scores and the K proven digests out: the graph
    one proof of K inferences is made of."""

    def __init__(self, head: CurationHead) -> None:
        super().__init__()
        self.head = head

    def forward(self, *rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        batch = torch.cat(rows, dim=0)
        embed_dim = self.head.shape.embed_dim
        scores: torch.Tensor = self.head(batch[:, :embed_dim]).reshape(-1)
        digests = batch[:, embed_dim:].reshape(-1)
        return scores, digests


def export_onnx(head: CurationHead, path: Path, *, batch: int) -> Path:
    """Write the head as ONNX for a fixed batch of `batch` inferences (inputs `input_0` ..,
    each of shape (1, embed_dim + 1); outputs `score` and `digest`, each of shape (batch,)),
    through the TorchScript exporter that ezkl reads."""
    if batch < 1:
        raise ValueError(f"batch must be at least 1, got {batch}")
    path.parent.mkdir(parents=True, exist_ok=True)
    examples = tuple(torch.zeros(1, head.shape.embed_dim + 1) for _ in range(batch))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, message=".*legacy TorchScript-based ONNX")
        torch.onnx.export(
            BatchedHead(head).eval(),
            examples,
            str(path),
            input_names=[f"input_{i}" for i in range(batch)],
            output_names=["score", "digest"],
            opset_version=ONNX_OPSET,
            dynamo=False,
        )
    return path
