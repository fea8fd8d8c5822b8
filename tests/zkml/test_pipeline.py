"""zkml.pipeline and zkml.evm: a real EZKL circuit built, cached, proved, verified, and its
Solidity verifier rendered and compiled with the project's solc (a 16-8-1 head, batch 2), and
the proven digests (the top 253 bits of content digests' keccak256) its proofs pass through to
their public instances."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import ezkl
import pytest
from eth_utils import keccak

from tests.zk_support import BATCH, HEAD_SEED, SHAPE, ZkKit, content_digest, embedding, solc_path
from zkml.curation_head import build_curation_head, export_onnx
from zkml.evm import (
    EIP170_LIMIT,
    FIELD_MODULUS,
    INSTANCES_PER_ASSET,
    PROVEN_DIGEST_BITS,
    ProofCalldata,
    VerifierError,
    compile_verifier,
    decode_signed,
    felt_to_int,
    input_binding,
    proof_calldata,
    proven_digest,
)
from zkml.pipeline import (
    EZKL_DEFAULTS,
    TUNED,
    Circuit,
    HeadInput,
    ProvingError,
    Tuning,
    circuit_key,
    input_commitment,
    input_felts,
)
from zkml.settings import PINNED, PinnedSettings

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
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
    # ezkl's default range-check base 2^14 alone would need 2^15 rows; two inferences of this head
    # take 1,434.
    assert circuit.settings()["num_rows"] == 1_434
    assert circuit.logrows == 11


def test_cache_key_follows_model_pins_tuning_and_srs(fresh, tmp_path: Path):
    _, onnx, _ = fresh
    other = export_onnx(build_curation_head(SHAPE, seed=HEAD_SEED + 1), tmp_path / "other.onnx", batch=BATCH)
    base = circuit_key(onnx.read_bytes(), PINNED, TUNED)
    assert circuit_key(onnx.read_bytes(), PINNED, TUNED) == base
    assert circuit_key(other.read_bytes(), PINNED, TUNED) != base
    assert circuit_key(onnx.read_bytes(), PinnedSettings(check_mode="unsafe"), TUNED) != base
    assert circuit_key(onnx.read_bytes(), PinnedSettings(ignore_range_check_inputs_outputs=False), TUNED) != base
    assert circuit_key(onnx.read_bytes(), PINNED, EZKL_DEFAULTS) != base
    assert circuit_key(onnx.read_bytes(), PINNED, Tuning(target="accuracy")) != base
    assert circuit_key(onnx.read_bytes(), PINNED, TUNED, "public") != base


def test_proof_instances_are_commitments_then_scores_then_proven_digests(zk_kit: ZkKit):
    proof = zk_kit.proofs["ab"]
    instances = [felt_to_int(f) for f in proof.json["instances"][0]]
    assert len(instances) == INSTANCES_PER_ASSET * BATCH == 3 * BATCH
    assert instances[:BATCH] == [zk_kit.commitments["a"], zk_kit.commitments["b"]]
    assert instances[2 * BATCH :] == [proven_digest(content_digest("a")), proven_digest(content_digest("b"))]
    assert proof.calldata.instances == instances
    assert proof.calldata.commitments == instances[:BATCH]
    assert proof.calldata.scores == [decode_signed(v) for v in instances[BATCH : 2 * BATCH]]
    assert proof.calldata.proven_digests == instances[2 * BATCH :]
    assert proof.calldata.names([content_digest("a"), content_digest("b")])
    assert zk_kit.circuit.verify(proof.path)


def test_the_commitment_hashes_the_embedding_then_the_proven_digest(zk_kit: ZkKit):
    a = zk_kit.inputs["a"]
    scale = int(zk_kit.circuit.settings()["run_args"]["input_scale"])
    assert zk_kit.circuit.commitments([a, zk_kit.inputs["b"]]) == [zk_kit.commitments["a"], zk_kit.commitments["b"]]
    # Same embedding, another asset's digest: another commitment.
    assert input_commitment(HeadInput(a.embedding, content_digest("b")), scale) != zk_kit.commitments["a"]
    felts = input_felts(a, scale)
    assert len(felts) == SHAPE.embed_dim + 1
    assert felt_to_int(felts[-1]) == proven_digest(a.digest) == int.from_bytes(keccak(a.digest), "big") >> 3
    assert felt_to_int(ezkl.poseidon_hash(felts)[0]) == zk_kit.commitments["a"]
    # The hash reads the proven digest, which every bit of the digest reaches.
    for bit in range(4):
        neighbour = bytearray(a.digest)
        neighbour[31] ^= 1 << bit
        assert input_commitment(HeadInput(a.embedding, bytes(neighbour)), scale) != zk_kit.commitments["a"]


@pytest.mark.parametrize(
    "digest",
    [b"\x00" * 32, b"\xff" * 32, bytes(range(32)), hashlib.sha256(b"x").digest(), b"\x00" * 31 + b"\x07"],
    ids=["zero", "ones", "ramp", "sha", "low-bits-only"],
)
def test_the_proven_digest_is_the_top_253_bits_of_the_digests_keccak(digest: bytes):
    value = int.from_bytes(keccak(digest), "big")
    # ProvenanceRegistry.provenDigestOf: uint256(keccak256(contentDigest)) >> (256 - PROVEN_DIGEST_BITS).
    assert PROVEN_DIGEST_BITS == 253
    assert proven_digest(digest) == value >> 3 == value // 8
    assert 0 <= proven_digest(digest) < 2**253 < FIELD_MODULUS
    # No bit of the digest is dropped: each of its neighbours has another proven digest.
    raw = int.from_bytes(digest, "big")
    for bit in (0, 1, 2, 3, 255):
        assert proven_digest((raw ^ (1 << bit)).to_bytes(32, "big")) != proven_digest(digest)


def test_the_input_binding_is_keccak_of_the_abi_encoded_proven_digest_and_commitment():
    from eth_abi import encode
    from eth_utils import keccak

    digest, commitment = hashlib.sha256(b"x").digest(), FIELD_MODULUS - 1
    encoded = encode(["uint256", "uint256"], [int.from_bytes(keccak(digest), "big") >> 3, commitment])
    assert input_binding(digest, commitment) == keccak(encoded)
    assert input_binding(digest, commitment) != input_binding(digest, commitment - 1)
    with pytest.raises(ValueError, match="a uint256, not -1"):
        input_binding(digest, -1)
    with pytest.raises(ValueError, match="32 bytes, not 31"):
        input_binding(digest[:31], commitment)


def test_names_compares_proven_digests_and_other_counts_are_refused():
    a, b = hashlib.sha256(b"a").digest(), hashlib.sha256(b"b").digest()
    calldata = ProofCalldata(b"", [1, 2, 3, 4, proven_digest(a), proven_digest(b)])
    assert calldata.count == 2 and calldata.commitments == [1, 2] and calldata.scores == [3, 4]
    assert calldata.names([a, b])
    for flip in (0x01, 0x07, 0x08):
        assert not calldata.names([bytes([*a[:31], a[31] ^ flip]), b]), "every bit of the digest is carried"
    assert not calldata.names([b, a])
    assert not calldata.names([a])
    assert not calldata.names([a, b, b])
    with pytest.raises(ValueError, match="32 bytes, not 31"):
        calldata.names([a[:31], b])
    with pytest.raises(ValueError, match="32 bytes, not 31"):
        proven_digest(b"\x01" * 31)
    with pytest.raises(ValueError, match="32 bytes, not 33"):
        HeadInput([0.0] * SHAPE.embed_dim, b"\x01" * 33)
    # No instances; the two-limb layout (4 per asset) of one asset and of two (4 is also two
    # assets without digests).
    for count in (0, 4, 8):
        with pytest.raises(VerifierError, match=f"{count} instances are not 3 per asset"):
            ProofCalldata(b"", [0] * count)


def big_digest() -> bytes:
    """A content digest whose proven digest is above (p - 1) / 2: a "negative" felt to ezkl."""
    for i in range(1_000):
        candidate = hashlib.sha256(f"big-{i}".encode()).digest()
        if proven_digest(candidate) > (FIELD_MODULUS - 1) // 2:
            return candidate
    raise AssertionError("no digest in 1,000 has a proven digest above (p - 1) / 2")


def prove_felts(circuit: Circuit, rows: list[list[str]], out: Path) -> Path:
    """Prove input rows given as felts (what `input_felts` writes), so a test can put any field
    element where a proven digest goes; returns the proof file."""
    out.mkdir(parents=True, exist_ok=True)
    data, witness, proof = out / "input.json", out / "witness.json", out / "proof.json"
    data.write_text(json.dumps({"input_data": rows}))
    artifacts = circuit.artifacts
    ezkl.gen_witness(data=str(data), model=str(artifacts.compiled), output=str(witness), srs_path=str(artifacts.srs))
    ezkl.prove(
        witness=str(witness),
        model=str(artifacts.compiled),
        pk_path=str(artifacts.pk),
        proof_path=str(proof),
        srs_path=str(artifacts.srs),
    )
    return proof


def test_a_proven_digest_above_half_the_field_is_proven_and_any_felt_passes_through_whole(
    zk_kit: ZkKit, tmp_path: Path
):
    """The circuit takes its inputs as field elements (the pin): a proven digest above (p - 1) / 2
    (a "negative" felt to ezkl) is proven as it is, and so are the largest proven digest
    (2^253 - 1) and felts no digest has (2^253, p - 1), which only `names` (and the registry's
    binding) refuses."""
    circuit, a = zk_kit.circuit, zk_kit.inputs["a"]
    big = HeadInput(zk_kit.inputs["b"].embedding, big_digest())
    proof = circuit.prove([a, big], tmp_path / "big")
    calldata = circuit.calldata(proof)
    assert calldata.proven_digests == [proven_digest(a.digest), proven_digest(big.digest)]
    assert calldata.names([a.digest, big.digest])
    assert calldata.commitments == circuit.commitments([a, big])
    assert circuit.verify(tmp_path / "big" / "proof.json")

    scale = int(circuit.settings()["run_args"]["input_scale"])
    for name, felt in (("max", 2**253 - 1), ("past", 2**253), ("top", FIELD_MODULUS - 1)):
        rows = [input_felts(a, scale), input_felts(big, scale)]
        rows[1][-1] = felt.to_bytes(32, "little").hex()
        proof_path = prove_felts(circuit, rows, tmp_path / name)
        assert circuit.verify(proof_path), name
        passed = circuit.calldata(json.loads(proof_path.read_text()))
        assert passed.proven_digests[-1] == felt, name
        assert passed.commitments[1] == felt_to_int(ezkl.poseidon_hash(rows[1])[0])
        assert not passed.names([a.digest, big.digest]), name


def test_without_the_pin_a_253_bit_proven_digest_fails_ezkls_input_range_check(tmp_path: Path):
    """Why `ignore_range_check_inputs_outputs` is pinned: with ezkl's input range checks
    (decomp_base^decomp_legs, 2^30 tuned), a digest's proven digest does not get past the
    witness."""
    unpinned = PinnedSettings(ignore_range_check_inputs_outputs=False)
    one = export_onnx(build_curation_head(SHAPE, seed=HEAD_SEED), tmp_path / "head.onnx", batch=1)
    circuit = Circuit.build(one, tmp_path / "cache", batch=1, embed_dim=SHAPE.embed_dim, pinned=unpinned)
    assert circuit.settings()["run_args"]["ignore_range_check_inputs_outputs"] is False
    row = HeadInput(embedding(7), hashlib.sha256(b"x").digest())
    with pytest.raises(RuntimeError, match="witness"):
        circuit.prove([row], tmp_path / "proof")
    # The same row with a felt below 2^30 where the proven digest goes is proven: the range check
    # is the cause (no digest has so small a proven digest, so the felt is written directly).
    scale = int(circuit.settings()["run_args"]["input_scale"])
    felts = input_felts(row, scale)
    felts[-1] = (2**29 + 5).to_bytes(32, "little").hex()
    proof = prove_felts(circuit, [felts], tmp_path / "small")
    assert circuit.verify(proof)
    assert circuit.calldata(json.loads(proof.read_text())).proven_digests == [2**29 + 5]


def test_ezkl_defaults_prove_digests_and_scores_at_the_input_scale(tmp_path: Path):
    """The benchmark's baseline (ezkl's own tuning, under the pins): a digest's 253-bit proven
    digest passes through, and its scores come out at the input scale, which the registry's 31-bit attestation
    record needs (calibration left free keeps them at 2^-39)."""
    import torch

    head = build_curation_head(SHAPE, seed=HEAD_SEED)
    onnx = export_onnx(head, tmp_path / "head.onnx", batch=1)
    circuit = Circuit.build(
        onnx, ROOT / ".cache" / "zk-tests", batch=1, embed_dim=SHAPE.embed_dim, tuning=EZKL_DEFAULTS
    )
    settings = circuit.settings()
    run_args = settings["run_args"]
    assert (run_args["num_inner_cols"], run_args["decomp_base"], run_args["decomp_legs"]) == (2, 2**14, 2)
    assert settings["model_output_scales"] == [PINNED.input_scale, PINNED.input_scale]
    row = HeadInput(embedding(7), b"\xff" * 32)
    calldata = circuit.calldata(circuit.prove([row], tmp_path / "proof"))
    assert calldata.proven_digests == [proven_digest(row.digest)] and calldata.names([row.digest])
    with torch.no_grad():
        want = float(head(torch.tensor([list(row.embedding)])).item())
    (score,) = calldata.scores
    assert abs(score / 2.0**PINNED.input_scale - want) < 0.01
    assert circuit.verify(tmp_path / "proof" / "proof.json")


def test_scores_match_the_float_model_within_quantisation(zk_kit: ZkKit):
    import torch

    head = build_curation_head(SHAPE, seed=HEAD_SEED)
    scale = 2.0 ** int(zk_kit.circuit.settings()["model_output_scales"][0])
    with torch.no_grad():
        expected = [float(head(torch.tensor([list(zk_kit.inputs[n].embedding)])).item()) for n in ("a", "b")]
    proven = [s / scale for s in zk_kit.proofs["ab"].calldata.scores]
    for got, want in zip(proven, expected, strict=True):
        assert abs(got - want) < 0.01, (proven, expected)


def test_tampered_instances_fail_ezkl_verify(zk_kit: ZkKit, tmp_path: Path):
    base = json.loads(zk_kit.proofs["ab"].path.read_text())
    assert len(base["instances"][0]) == INSTANCES_PER_ASSET * BATCH
    for index in range(INSTANCES_PER_ASSET * BATCH):
        doc = json.loads(json.dumps(base))
        felt = bytearray(bytes.fromhex(doc["instances"][0][index]))
        felt[0] ^= 0x01
        doc["instances"][0][index] = felt.hex()
        bad = tmp_path / f"tampered-{index}.json"
        bad.write_text(json.dumps(doc))
        assert not zk_kit.circuit.verify(bad), f"instance {index} changed, proof still verified"
    assert not zk_kit.circuit.verify(zk_kit.proofs["other_keys_ab"].path), "a proof of other keys"


def test_prove_refuses_a_wrong_batch(zk_kit: ZkKit, tmp_path: Path):
    a = zk_kit.inputs["a"]
    with pytest.raises(ValueError, match="expected 2 embeddings of 16 values"):
        zk_kit.circuit.prove([a], tmp_path / "short")
    with pytest.raises(ValueError, match="expected 2 embeddings of 16 values"):
        zk_kit.circuit.prove([a, HeadInput([0.0] * 3, a.digest)], tmp_path / "narrow")
    with pytest.raises(ProvingError, match="6 instances, not 3"):
        zk_kit.circuit.calldata({"hex_proof": "0x00", "instances": [["00" * 32] * 3]})
    with pytest.raises(ProvingError, match="6 instances, not 9"):
        zk_kit.circuit.calldata({"hex_proof": "0x00", "instances": [["00" * 32] * 9]})
    with pytest.raises(VerifierError, match="8 instances are not 3 per asset"):
        zk_kit.circuit.calldata({"hex_proof": "0x00", "instances": [["00" * 32] * 8]})
    with pytest.raises(VerifierError, match="0 instances are not 3 per asset"):
        ProofCalldata(b"", [])


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


BUILD_ONE = """
import sys
from pathlib import Path
from zkml.pipeline import Circuit
from tests.zk_support import BATCH, SHAPE
lines = []
Circuit.build(Path(sys.argv[1]), Path(sys.argv[2]), batch=BATCH, embed_dim=SHAPE.embed_dim, progress=lines.append)
print("\\n".join(lines))
"""


def test_two_builders_of_one_circuit_take_turns(fresh, tmp_path: Path):
    """Two processes on one host build the same circuit from an empty cache at once: one builds,
    the other waits and finds every step cached (a generated SRS is random, so racing builders
    could leave one SRS's keys beside another SRS)."""
    _, onnx, _ = fresh
    cache = tmp_path / "cache"
    builders = [
        subprocess.Popen(
            [sys.executable, "-c", BUILD_ONE, str(onnx), str(cache)], cwd=ROOT, stdout=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outputs = [b.communicate(timeout=300)[0].splitlines() for b in builders]
    assert [b.returncode for b in builders] == [0, 0]
    ran = [lines for lines in outputs if "keys: running" in lines]
    waited = [lines for lines in outputs if "keys: running" not in lines]
    assert len(ran) == 1 and waited == [[f"{step}: cached" for step in STEPS]], outputs
