"""zkml.pipeline and zkml.evm: a real EZKL circuit built, cached, proved, verified, and its
Solidity verifier rendered and compiled with the project's solc (a 16-8-1 head, batch 2)."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from tests.zk_support import BATCH, HEAD_SEED, SHAPE, ZkKit, solc_path
from zkml.curation_head import build_curation_head, export_onnx
from zkml.evm import EIP170_LIMIT, VerifierError, compile_verifier, decode_signed, felt_to_int, proof_calldata
from zkml.pipeline import EZKL_DEFAULTS, TUNED, Circuit, ProvingError, Tuning, circuit_key
from zkml.settings import PINNED, PinnedSettings

pytestmark = pytest.mark.slow

STEPS = ["model", "calibration data", "settings", "compile", "srs", "keys"]


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> tuple[Circuit, Path, list[str]]:
    """A build from an empty cache, its ONNX file and the progress lines it printed."""
    root = tmp_path_factory.mktemp("zk-fresh")
    onnx = export_onnx(build_curation_head(SHAPE, seed=HEAD_SEED), root / "head.onnx", batch=BATCH)
    lines: list[str] = []
    circuit = Circuit.build(onnx, root / "cache", batch=BATCH, embed_dim=SHAPE.embed_dim, progress=lines.append)
    return circuit, onnx, lines


def test_build_shows_every_step_then_reuses_the_cache(fresh):
    circuit, onnx, lines = fresh
    assert [line.split(":")[0] for line in lines if not line.endswith("running")] == STEPS
    assert [line.split(":")[0] for line in lines if line.endswith("running")] == STEPS, "each long step announced"
    for path in (circuit.artifacts.vk, circuit.artifacts.pk, circuit.artifacts.compiled, circuit.artifacts.srs):
        assert path.stat().st_size > 0
    assert not list(circuit.artifacts.root.glob(".*.tmp")), "no temporary file left behind"

    again: list[str] = []
    started = time.monotonic()
    second = Circuit.build(
        onnx, circuit.artifacts.root.parent, batch=BATCH, embed_dim=SHAPE.embed_dim, progress=again.append
    )
    assert time.monotonic() - started < 5
    assert again == [f"{step}: cached" for step in STEPS]
    assert second.artifacts == circuit.artifacts


def test_tuning_shrinks_the_circuit(fresh):
    circuit, _, _ = fresh
    run_args = circuit.settings()["run_args"]
    assert (run_args["num_inner_cols"], run_args["decomp_base"], run_args["decomp_legs"]) == (1, 1024, 3)
    # ezkl's default range-check base 2^14 alone would need 2^15 rows; this head fits far fewer.
    assert circuit.logrows <= 12


def test_cache_key_follows_model_pins_tuning_and_srs(fresh, tmp_path: Path):
    _, onnx, _ = fresh
    other = export_onnx(build_curation_head(SHAPE, seed=HEAD_SEED + 1), tmp_path / "other.onnx", batch=BATCH)
    base = circuit_key(onnx.read_bytes(), PINNED, TUNED)
    assert circuit_key(onnx.read_bytes(), PINNED, TUNED) == base
    assert circuit_key(other.read_bytes(), PINNED, TUNED) != base
    assert circuit_key(onnx.read_bytes(), PinnedSettings(check_mode="unsafe"), TUNED) != base
    assert circuit_key(onnx.read_bytes(), PINNED, EZKL_DEFAULTS) != base
    assert circuit_key(onnx.read_bytes(), PINNED, Tuning(target="accuracy")) != base
    assert circuit_key(onnx.read_bytes(), PINNED, TUNED, "public") != base


def test_proof_instances_are_commitments_then_scores(zk_kit: ZkKit):
    proof = zk_kit.proofs["ab"]
    instances = [felt_to_int(f) for f in proof.json["instances"][0]]
    assert len(instances) == 2 * BATCH
    assert instances[:BATCH] == [zk_kit.commitments["a"], zk_kit.commitments["b"]]
    assert proof.calldata.instances == instances
    assert proof.calldata.scores(BATCH) == [decode_signed(v) for v in instances[BATCH:]]
    assert zk_kit.circuit.verify(proof.path)


def test_scores_match_the_float_model_within_quantisation(zk_kit: ZkKit):
    import torch

    head = build_curation_head(SHAPE, seed=HEAD_SEED)
    scale = 2.0 ** int(zk_kit.circuit.settings()["model_output_scales"][0])
    with torch.no_grad():
        expected = [float(head(torch.tensor([zk_kit.embeddings[n]])).item()) for n in ("a", "b")]
    proven = [s / scale for s in zk_kit.proofs["ab"].calldata.scores(BATCH)]
    for got, want in zip(proven, expected, strict=True):
        assert abs(got - want) < 0.01, (proven, expected)


def test_tampered_instances_fail_ezkl_verify(zk_kit: ZkKit, tmp_path: Path):
    base = json.loads(zk_kit.proofs["ab"].path.read_text())
    for index in range(2 * BATCH):
        doc = json.loads(json.dumps(base))
        felt = bytearray(bytes.fromhex(doc["instances"][0][index]))
        felt[0] ^= 0x01
        doc["instances"][0][index] = felt.hex()
        bad = tmp_path / f"tampered-{index}.json"
        bad.write_text(json.dumps(doc))
        assert not zk_kit.circuit.verify(bad), f"instance {index} changed, proof still verified"
    assert not zk_kit.circuit.verify(zk_kit.proofs["other_keys_ab"].path), "a proof of other keys"


def test_prove_refuses_a_wrong_batch(zk_kit: ZkKit, tmp_path: Path):
    with pytest.raises(ValueError, match="expected 2 embeddings of 16 values"):
        zk_kit.circuit.prove([zk_kit.embeddings["a"]], tmp_path / "short")
    with pytest.raises(ValueError, match="expected 2 embeddings of 16 values"):
        zk_kit.circuit.prove([zk_kit.embeddings["a"], [0.0] * 3], tmp_path / "narrow")
    with pytest.raises(ProvingError, match="4 instances"):
        zk_kit.circuit.calldata({"hex_proof": "0x00", "instances": [["00" * 32]]})


def test_verifier_fits_eip170_and_names_its_vk(zk_kit: ZkKit):
    compiled = zk_kit.verifier
    assert 0 < compiled.runtime_size <= EIP170_LIMIT
    assert len(compiled.vk_digest) == 32
    assert compiled.vk_digest != zk_kit.other_verifier.vk_digest, "other weights, other verifying key"
    assert any(item.get("name") == "verifyProof" for item in compiled.abi)
    # A second call is served from the cache.
    lines: list[str] = []
    assert zk_kit.circuit.verifier(solc_path(), progress=lines.append).vk_digest == compiled.vk_digest
    assert lines == ["verifier: cached"]


def test_compile_verifier_refuses_broken_source_and_non_proofs(tmp_path: Path):
    broken = tmp_path / "Verifier.sol"
    broken.write_text("pragma solidity ^0.8.0; contract Halo2Verifier { function f( }")
    with pytest.raises(VerifierError, match=r"Verifier\.sol"):
        compile_verifier(broken, solc_path())
    other = tmp_path / "Other.sol"
    other.write_text("pragma solidity ^0.8.0; contract Other {}")
    with pytest.raises(VerifierError, match="no contract Halo2Verifier"):
        compile_verifier(other, solc_path())
    with pytest.raises(VerifierError, match="not an ezkl proof"):
        proof_calldata({"instances": []})


def test_a_crash_mid_build_leaves_no_half_artifact(fresh, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    circuit, onnx, _ = fresh
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
