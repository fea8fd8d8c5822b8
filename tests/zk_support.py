"""Real EZKL circuits, proofs and verifiers for the tests (no stand-ins).

Two small curation heads of the same shape but different weights (so different verifying keys:
"a proof made with other keys"), batch 2. Each input is an embedding with the content digest of
the asset it belongs to: asset "a" is the image whose bytes are `b"img-a"` (so its digest is the
one `tests.contracts.helpers.asset_record("img-a", ...)` registers), and so on. Keys and
verifiers are cached under `.cache/zk-tests/` (rebuilt when the model, pins, tuning or ezkl
change); proofs are made fresh in each session, in a few seconds each at this size.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agents.core.toolchain import project_root, solc_executable
from zkml.curation_head import HeadShape, build_curation_head, export_onnx
from zkml.evm import CompiledVerifier, ProofCalldata
from zkml.pipeline import Circuit, HeadInput, input_commitment

SHAPE = HeadShape(embed_dim=16, hidden=8)
BATCH = 2


HEAD_SEED, OTHER_HEAD_SEED = 1, 4


def embedding(seed: int) -> list[float]:
    rng = random.Random(seed)
    return [rng.uniform(-1.0, 1.0) for _ in range(SHAPE.embed_dim)]


def label(name: str) -> str:
    """The label of asset `name`: its image bytes, and its `asset_record` label."""
    return f"img-{name}"


def content_digest(name: str) -> bytes:
    """The content digest of asset `name` (sha256 of its image bytes)."""
    return hashlib.sha256(label(name).encode()).digest()


def pick_embeddings() -> dict[str, list[float]]:
    """Embeddings "a" (positive score), "b" (negative score) and "c", so both signs are proven."""
    import torch

    head = build_curation_head(SHAPE, seed=HEAD_SEED)

    def score(row: list[float]) -> float:
        with torch.no_grad():
            return float(head(torch.tensor([row])).item())

    candidates = [embedding(seed) for seed in range(100, 200)]
    positive = next(row for row in candidates if score(row) > 0.05)
    negative = next(row for row in candidates if score(row) < -0.05)
    other = next(row for row in candidates if row is not positive and row is not negative)
    return {"a": positive, "b": negative, "c": other}


@dataclass(frozen=True)
class Proof:
    """One proof file and what the chain takes from it."""

    path: Path
    json: dict[str, Any]
    calldata: ProofCalldata


@dataclass(frozen=True)
class ZkKit:
    circuit: Circuit
    verifier: CompiledVerifier
    other_circuit: Circuit
    other_verifier: CompiledVerifier
    inputs: dict[str, HeadInput]
    """Asset name -> its embedding and content digest."""
    commitments: dict[str, int]
    proofs: dict[str, Proof]


def solc_path() -> Path:
    return solc_executable(project_root())


def build_circuit(root: Path, seed: int) -> Circuit:
    onnx = export_onnx(build_curation_head(SHAPE, seed=seed), root / f"head-{seed}.onnx", batch=BATCH)
    return Circuit.build(onnx, project_root() / ".cache" / "zk-tests", batch=BATCH, embed_dim=SHAPE.embed_dim)


def prove(circuit: Circuit, rows: list[HeadInput], work: Path) -> Proof:
    proof_json = circuit.prove(rows, work)
    return Proof(work / "proof.json", proof_json, circuit.calldata(proof_json))


def build_kit(root: Path) -> ZkKit:
    circuit = build_circuit(root, seed=HEAD_SEED)
    other = build_circuit(root, seed=OTHER_HEAD_SEED)
    inputs = {name: HeadInput(row, content_digest(name)) for name, row in pick_embeddings().items()}
    scale = int(circuit.settings()["run_args"]["input_scale"])
    commitments = {name: input_commitment(row, scale) for name, row in inputs.items()}
    i = inputs
    proofs = {
        "ab": prove(circuit, [i["a"], i["b"]], root / "ab"),
        "ab_again": prove(circuit, [i["a"], i["b"]], root / "ab_again"),
        "ac": prove(circuit, [i["a"], i["c"]], root / "ac"),
        "other_keys_ab": prove(other, [i["a"], i["b"]], root / "other_ab"),
    }
    return ZkKit(
        circuit=circuit,
        verifier=circuit.verifier(solc_path()),
        other_circuit=other,
        other_verifier=other.verifier(solc_path()),
        inputs=inputs,
        commitments=commitments,
        proofs=proofs,
    )
