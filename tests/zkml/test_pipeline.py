"""zkml.pipeline: a real EZKL circuit built, cached, proved and verified (a 16-8-1 head, batch 2)."""

from __future__ import annotations

import json
import random
import shutil
import time
from pathlib import Path

import pytest

from zkml.curation_head import HeadShape, build_curation_head, export_onnx
from zkml.pipeline import Circuit, circuit_key
from zkml.settings import PINNED

pytestmark = pytest.mark.slow

SHAPE = HeadShape(16, 8)
BATCH = 2


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Circuit, Path, list[str]]:
    root = tmp_path_factory.mktemp("zk")
    onnx = export_onnx(build_curation_head(SHAPE, seed=3), root / "head.onnx", batch=BATCH)
    steps: list[str] = []
    circuit = Circuit.build(onnx, root / "cache", batch=BATCH, embed_dim=SHAPE.embed_dim, progress=steps.append)
    return circuit, onnx, steps


def embeddings(seed: int) -> list[list[float]]:
    rng = random.Random(seed)
    return [[rng.uniform(-1, 1) for _ in range(SHAPE.embed_dim)] for _ in range(BATCH)]


def test_build_runs_every_step_then_reuses_the_cache(built, tmp_path: Path):
    circuit, onnx, steps = built
    assert [s.split(":")[0] for s in steps] == ["model", "calibration data", "settings", "compile", "srs", "keys"]
    assert not any("cached" in s for s in steps)
    for path in (circuit.artifacts.vk, circuit.artifacts.pk, circuit.artifacts.compiled, circuit.artifacts.srs):
        assert path.stat().st_size > 0
    assert not list(circuit.artifacts.root.glob(".*.tmp")), "no temporary file left behind"

    again: list[str] = []
    started = time.monotonic()
    second = Circuit.build(
        onnx, circuit.artifacts.root.parent, batch=BATCH, embed_dim=SHAPE.embed_dim, progress=again.append
    )
    assert time.monotonic() - started < 5
    assert all(s.endswith("cached") for s in again) and len(again) == 6
    assert second.artifacts == circuit.artifacts


def test_cache_key_follows_model_and_pins(built, tmp_path: Path):
    _, onnx, _ = built
    other = export_onnx(build_curation_head(SHAPE, seed=4), tmp_path / "other.onnx", batch=BATCH)
    base = circuit_key(onnx.read_bytes(), PINNED, "resources")
    assert circuit_key(other.read_bytes(), PINNED, "resources") != base
    assert circuit_key(onnx.read_bytes(), PINNED, "accuracy") != base
    from zkml.settings import PinnedSettings

    assert circuit_key(onnx.read_bytes(), PinnedSettings(check_mode="unsafe"), "resources") != base


def test_prove_and_verify_then_tampering_fails(built, tmp_path: Path):
    circuit, _, _ = built
    proof = circuit.prove(embeddings(1), tmp_path / "w")
    (instances,) = proof["instances"]
    assert len(instances) == 1 + BATCH, "the input hash, then one score per embedding"
    proof_path = tmp_path / "w" / "proof.json"
    assert circuit.verify(proof_path)

    for index in range(len(instances)):
        tampered = json.loads(proof_path.read_text())
        value = tampered["instances"][0][index]
        tampered["instances"][0][index] = value[:-2] + ("00" if value[-2:] != "00" else "01")
        bad = tmp_path / f"tampered-{index}.json"
        bad.write_text(json.dumps(tampered))
        assert not circuit.verify(bad), f"instance {index} changed, proof still verified"

    with pytest.raises(ValueError, match="expected 2 embeddings of 16 values"):
        circuit.prove(embeddings(1)[:1], tmp_path / "short")


def test_a_crash_mid_build_leaves_no_half_artifact(built, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    circuit, onnx, _ = built
    cache = tmp_path / "cache"
    shutil.copytree(circuit.artifacts.root, cache / circuit.artifacts.root.name)
    (cache / circuit.artifacts.root.name / "pk.key").unlink()

    def crash(self: Circuit, tmp: Path) -> None:
        tmp.write_bytes(b"half a key")
        raise KeyboardInterrupt

    monkeypatch.setattr(Circuit, "_keys", crash)
    with pytest.raises(KeyboardInterrupt):
        Circuit.build(onnx, cache, batch=BATCH, embed_dim=SHAPE.embed_dim)
    root = cache / circuit.artifacts.root.name
    assert not (root / "pk.key").exists()
    assert not list(root.glob(".*.tmp"))
