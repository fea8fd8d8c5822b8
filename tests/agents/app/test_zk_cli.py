"""`proofmint zk setup|prove|verify|export-verifier`, run in process on the small test head."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from agents.app.main import cli
from agents.app.zk_cli import ZkInputError
from tests.zk_support import BATCH, HEAD_SEED, SHAPE, ZkKit, content_digest
from zkml.evm import proven_digest
from zkml.srs import SrsError

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[3]
SMALL = [
    "--batch", str(BATCH), "--embed-dim", str(SHAPE.embed_dim), "--hidden", str(SHAPE.hidden),
    "--seed", str(HEAD_SEED), "--cache", str(ROOT / ".cache" / "zk-tests"),
]  # fmt: skip


def run(*args: str) -> object:
    return CliRunner().invoke(cli, ["zk", *args])


def test_help_names_every_command():
    result = CliRunner().invoke(cli, ["zk", "--help"])
    assert result.exit_code == 0
    for command in ("setup", "prove", "verify", "export-verifier"):
        assert command in result.output
    prove_help = CliRunner().invoke(cli, ["zk", "prove", "--help"]).output
    assert "--batch" in prove_help and "--chain" in prove_help and "--srs" in prove_help
    assert "INPUTS" in prove_help and '"sha256"' in prove_help and '"embedding"' in prove_help


def test_setup_prove_verify_and_tamper(zk_kit: ZkKit, tmp_path: Path):
    result = run("setup", *SMALL)
    assert result.exit_code == 0, result.output
    assert f"logrows   {zk_kit.circuit.logrows}" in result.output
    assert str(zk_kit.circuit.artifacts.root) in result.output, "the CLI reuses the same cached circuit"

    rows = tmp_path / "rows.json"
    a, b = zk_kit.inputs["a"], zk_kit.inputs["b"]
    rows.write_text(
        json.dumps(
            [
                {"sha256": a.digest.hex(), "embedding": list(a.embedding)},
                {"sha256": "0x" + b.digest.hex(), "embedding": list(b.embedding)},
            ]
        )
    )
    out = tmp_path / "out"
    result = run("prove", *SMALL, str(rows), "--out", str(out))
    assert result.exit_code == 0, result.output
    record = json.loads((out / "calldata.json").read_text())
    assert record["digests"] == ["0x" + content_digest("a").hex(), "0x" + content_digest("b").hex()]
    assert [int(d, 16) for d in record["proven_digests"]] == [proven_digest(content_digest(n)) for n in "ab"]
    assert [int(c, 16) for c in record["commitments"]] == [zk_kit.commitments["a"], zk_kit.commitments["b"]]
    assert record["scores"] == zk_kit.proofs["ab"].calldata.scores
    assert [int(v) for v in record["instances"]] == zk_kit.proofs["ab"].calldata.instances
    assert f"asset 0x{content_digest('b').hex()}" in result.output
    assert "seqs = the assets' registration numbers" in result.output

    result = run("verify", *SMALL, str(out / "proof.json"))
    assert result.exit_code == 0 and "valid" in result.output
    # the proof says its batch: no --batch needed, and no circuit of another size is built for it
    cache = ROOT / ".cache" / "zk-tests"
    before = sorted(cache.iterdir())
    result = run("verify", *SMALL[2:], str(out / "proof.json"))
    assert result.exit_code == 0 and "valid" in result.output, result.output
    assert f"a proof of {BATCH} inferences" in result.output
    assert sorted(cache.iterdir()) == before
    wrong = run("verify", "--batch", str(BATCH + 1), *SMALL[2:], str(out / "proof.json"))
    assert isinstance(wrong.exception, ZkInputError) and f"not --batch {BATCH + 1}" in str(wrong.exception)
    # what is not a proof says so (exit 2 from the command line), never INVALID
    for name, content in (
        ("rows", rows.read_bytes()),
        ("binary", bytes(range(256))),
        ("calldata", (out / "calldata.json").read_bytes()),
        ("short", json.dumps({"proof": [], "instances": [["00" * 32] * (3 * BATCH - 1)]}).encode()),
    ):
        other = tmp_path / f"{name}.json"
        other.write_bytes(content)
        result = run("verify", *SMALL[2:], str(other))
        assert isinstance(result.exception, ZkInputError), (name, result.output)
        assert "not an ezkl proof" in str(result.exception) and "INVALID" not in result.output

    doc = json.loads((out / "proof.json").read_text())
    felt = bytearray(bytes.fromhex(doc["instances"][0][-1]))
    felt[0] ^= 1
    doc["instances"][0][-1] = felt.hex()
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    result = run("verify", *SMALL, str(bad))
    assert result.exit_code == 1 and "INVALID" in result.output


def _row(digest: object = "ab" * 32, embedding: object = None, **extra: object) -> dict[str, object]:
    return {"sha256": digest, "embedding": [0.1] * 16 if embedding is None else embedding, **extra}


@pytest.mark.parametrize(
    "content",
    [
        "not json",
        "[]",
        json.dumps([[0.1] * 16, [0.1] * 16]),  # embeddings without digests
        json.dumps([_row()]),
        json.dumps([_row(), _row(embedding=[0.1] * 15)]),
        json.dumps([_row(), _row(embedding=["x"] * 16)]),
        json.dumps([_row(), _row(embedding=[True] * 16)]),
        json.dumps([_row(), _row(digest="ab" * 31)]),
        json.dumps([_row(), _row(digest="zz" * 32)]),
        json.dumps([_row(), _row(digest=7)]),
        json.dumps([_row(), {"embedding": [0.1] * 16}]),
        json.dumps([_row(), _row(name="b")]),
    ],
)
def test_prove_refuses_malformed_inputs(tmp_path: Path, content: str):
    rows = tmp_path / "rows.json"
    rows.write_text(content)
    result = run("prove", *SMALL, str(rows), "--out", str(tmp_path / "out"))
    assert isinstance(result.exception, ZkInputError)
    assert str(rows) in str(result.exception)
    assert not (tmp_path / "out").exists(), "nothing proved, nothing written"


def test_export_verifier_writes_source_abi_bytecode_and_vk_digest(zk_kit: ZkKit, tmp_path: Path):
    out = tmp_path / "verifier"
    result = run("export-verifier", *SMALL, "--out", str(out))
    assert result.exit_code == 0, result.output
    record = json.loads((out / "verifier.json").read_text())
    assert record["vkDigest"] == "0x" + zk_kit.verifier.vk_digest.hex()
    assert record["bytecode"] == "0x" + zk_kit.verifier.bytecode.hex()
    assert "contract Halo2Verifier" in (out / "Verifier.sol").read_text()
    assert "local development chains only" in result.output


def test_live_chain_without_a_pinned_public_srs_is_refused(tmp_path: Path):
    result = run("setup", *SMALL[:-2], "--cache", str(tmp_path / "cache"), "--chain", "live")
    assert isinstance(result.exception, SrsError)
    assert "--srs PATH" in str(result.exception)


def test_weights_that_do_not_fit_the_head_are_refused(tmp_path: Path):
    weights = tmp_path / "w.pt"
    weights.write_bytes(b"not a state dict")
    result = run("setup", "--batch", "2", "--cache", str(tmp_path / "cache"), "--weights", str(weights))
    assert isinstance(result.exception, ZkInputError)
    assert "not a curation head folder or weights file" in str(result.exception)
    assert not (tmp_path / "cache").exists()


def test_the_circuit_is_the_shipped_trained_head_unless_told_otherwise(tmp_path: Path):
    """No weights and no seed: the shipped head (its shape from its head.json); --seed gives random
    weights for sizing only, never together with --weights; a shape that is not the weights' is
    refused; a folder that is no head is one clear error."""
    from agents.app.zk_cli import resolve_options

    common = {"batch": 2, "cache": tmp_path, "chain": "local", "srs": None, "tuning": "tuned"}
    shipped = resolve_options(embed_dim=None, hidden=None, seed=None, weights=None, **common)
    assert shipped.weights == ROOT / "models" / "curation-head"
    assert (shipped.embed_dim, shipped.hidden) == (64, 8)
    random_head = resolve_options(embed_dim=16, hidden=4, seed=3, weights=None, **common)
    assert (random_head.weights, random_head.embed_dim, random_head.seed) == (None, 16, 3)
    result = run("setup", "--seed", "1", "--weights", str(ROOT / "models" / "curation-head"), "--cache", str(tmp_path))
    assert result.exit_code == 2 and "--seed builds random weights: not with --weights" in result.output
    result = run("setup", "--embed-dim", "32", "--cache", str(tmp_path))
    assert result.exit_code == 2 and "--embed-dim 32, but the head at" in result.output and "has 64" in result.output
    result = run("setup", "--weights", str(tmp_path), "--cache", str(tmp_path))
    assert isinstance(result.exception, ZkInputError) and "not a curation head folder or weights file" in str(
        result.exception
    )
    assert not any(tmp_path.iterdir()), "nothing built for a refused command"
