"""ProvenanceRegistry.attestInference with real EZKL proofs and the real generated verifier.

CHECKLIST item 7: a valid proof attests once; any changed instance, an instance >= the field
modulus, a proof for asset A submitted for asset B, a proof made with other keys and a second
proof of the same statement are each rejected with their own error; `ezkl.verify` and the
on-chain verifier agree on the valid proof and on every tampered one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ape
import pytest
from eth_abi import encode
from eth_utils import keccak

from tests.contracts.helpers import asset_record, register_asset, register_model
from tests.zk_support import ZkKit
from zkml.evm import FIELD_MODULUS, decode_signed, deploy_verifier

pytestmark = [pytest.mark.chain, pytest.mark.slow]


@dataclass
class Attest:
    provenance: Any
    model_id: int
    assets: dict[str, bytes]
    verifier: Any
    kit: ZkKit

    def seq(self, name: str) -> int:
        return int(self.provenance.getAsset(self.assets[name]).seq)

    def call(self, names: list[str], proof: bytes, instances: list[int], sender: Any) -> Any:
        seqs = [self.seq(name) for name in names]
        return self.provenance.attestInference(self.model_id, seqs, proof, instances, sender=sender)


def b32(value: int) -> bytes:
    return value.to_bytes(32, "big")


def statement(model_id: int, instances: list[int]) -> bytes:
    return keccak(encode(["uint256", "uint256[]"], [model_id, instances]))


@pytest.fixture
def attest(core, model_id, developer, creator, deployer, zk_kit) -> Attest:  # type: ignore[no-untyped-def]
    curation_id = register_model(core.models, developer, label="curation-head", data_bps=0, developer_bps=0)
    verifier = deploy_verifier(deployer, zk_kit.verifier)
    core.models.bindVerifier(curation_id, verifier, zk_kit.verifier.vk_digest, sender=developer)
    # Seven fillers first, so asset "a" has seq 7 and "b" seq 8: one proof spans two storage words.
    for i in range(7):
        register_asset(core.provenance, creator, asset_record(f"filler-{i}", creator, model_id))
    assets: dict[str, bytes] = {}
    for name in ("a", "b", "c"):
        record = asset_record(f"img-{name}", creator, model_id, commitment=b32(zk_kit.commitments[name]))
        register_asset(core.provenance, creator, record)
        assets[name] = record.content_digest
    record = asset_record("no-commitment", creator, model_id, commitment=b"\x00" * 32)
    register_asset(core.provenance, creator, record)
    assets["zero"] = record.content_digest
    return Attest(core.provenance, curation_id, assets, verifier, zk_kit)


def test_commitments_computed_in_python_are_the_proof_instances(zk_kit):
    ab = zk_kit.proofs["ab"].calldata
    assert ab.commitments(2) == [zk_kit.commitments["a"], zk_kit.commitments["b"]]
    assert zk_kit.circuit.commitments([zk_kit.embeddings["a"]] * 2) == [zk_kit.commitments["a"]] * 2
    scores = ab.scores(2)
    assert any(s < 0 for s in scores) and any(s > 0 for s in scores), "fixtures cover both signs"


def test_valid_proof_attests_each_asset_once_across_storage_words(attest, stranger):
    ab = attest.kit.proofs["ab"].calldata
    assert attest.provenance.getAsset(attest.assets["a"]).seq == 7
    assert attest.provenance.getAsset(attest.assets["b"]).seq == 8
    assert attest.provenance.attestationOf(attest.assets["a"], attest.model_id) == (False, 0)

    receipt = attest.call(["a", "b"], ab.proof, ab.instances, stranger)  # anyone may post a proof

    (event,) = receipt.decode_logs(attest.provenance.InferenceAttested)
    expected_scores = [decode_signed(v) for v in ab.instances[2:]]
    assert event.modelId == attest.model_id
    assert event.statement == statement(attest.model_id, ab.instances)
    assert list(event.seqs) == [7, 8]
    assert list(event.scores) == expected_scores
    assert attest.provenance.attestationOf(attest.assets["a"], attest.model_id) == (True, expected_scores[0])
    assert attest.provenance.attestationOf(attest.assets["b"], attest.model_id) == (True, expected_scores[1])
    assert attest.provenance.attestationOf(attest.assets["c"], attest.model_id) == (False, 0)
    assert attest.provenance.isStatementAttested(statement(attest.model_id, ab.instances))


def test_second_proof_of_the_same_statement_is_refused(attest, stranger):
    first, again = attest.kit.proofs["ab"].calldata, attest.kit.proofs["ab_again"].calldata
    assert first.proof != again.proof and first.instances == again.instances, "a fresh proof, the same statement"
    attest.call(["a", "b"], first.proof, first.instances, stranger)
    with ape.reverts(
        attest.provenance.ProvenanceRegistry__StatementAlreadyAttested, statement=statement(attest.model_id, first.instances)
    ):
        attest.call(["a", "b"], again.proof, again.instances, stranger)


def test_an_asset_is_attested_once_per_model_version(attest, stranger):
    ab, ac = attest.kit.proofs["ab"].calldata, attest.kit.proofs["ac"].calldata
    attest.call(["a", "b"], ab.proof, ab.instances, stranger)
    with ape.reverts(
        attest.provenance.ProvenanceRegistry__AlreadyAttested, seq=attest.seq("a"), modelId=attest.model_id
    ):
        attest.call(["a", "c"], ac.proof, ac.instances, stranger)
    assert attest.provenance.attestationOf(attest.assets["c"], attest.model_id) == (False, 0)


def test_the_same_asset_twice_in_one_call_is_refused(attest, stranger):
    ab = attest.kit.proofs["ab"].calldata
    twice = [ab.instances[0], ab.instances[0], ab.instances[2], ab.instances[2]]
    with ape.reverts(attest.provenance.ProvenanceRegistry__AlreadyAttested, seq=attest.seq("a")):
        attest.call(["a", "a"], ab.proof, twice, stranger)


def test_a_proof_for_asset_a_never_attests_asset_b(attest, stranger):
    ab = attest.kit.proofs["ab"].calldata
    with ape.reverts(attest.provenance.ProvenanceRegistry__InputCommitmentMismatch, seq=attest.seq("b"), index=0):
        attest.call(["b", "a"], ab.proof, ab.instances, stranger)
    with ape.reverts(attest.provenance.ProvenanceRegistry__InputCommitmentMismatch, seq=attest.seq("c"), index=1):
        attest.call(["a", "c"], ab.proof, ab.instances, stranger)
    with ape.reverts(attest.provenance.ProvenanceRegistry__InputCommitmentMismatch, seq=attest.seq("zero"), index=0):
        attest.call(["zero", "b"], ab.proof, ab.instances, stranger)
    # A filler registered a commitment too, just not this one.
    with ape.reverts(attest.provenance.ProvenanceRegistry__InputCommitmentMismatch, seq=0, index=0):
        attest.provenance.attestInference(attest.model_id, [0, attest.seq("b")], ab.proof, ab.instances, sender=stranger)


def test_a_number_that_names_no_asset_is_refused(attest, stranger):
    ab = attest.kit.proofs["ab"].calldata
    count = int(attest.provenance.assetCount())
    assert count == 11
    for ghost in (count, count + 1, 2**256 - 1):
        with ape.reverts(attest.provenance.ProvenanceRegistry__UnknownSeq, seq=ghost):
            attest.provenance.attestInference(
                attest.model_id, [attest.seq("a"), ghost], ab.proof, ab.instances, sender=stranger
            )


@pytest.mark.parametrize("index", [2, 3])
def test_a_changed_score_is_rejected_by_the_verifier(attest, stranger, index):
    ab = attest.kit.proofs["ab"].calldata
    tampered = list(ab.instances)
    tampered[index] = (tampered[index] + 1) % FIELD_MODULUS
    with ape.reverts(attest.provenance.ProvenanceRegistry__ProofRejected, modelId=attest.model_id):
        attest.call(["a", "b"], ab.proof, tampered, stranger)


def test_changed_proof_bytes_are_rejected_and_nothing_is_recorded(attest, stranger):
    ab = attest.kit.proofs["ab"].calldata
    for position in (0, 100, len(ab.proof) // 2, len(ab.proof) - 1):
        bad = bytearray(ab.proof)
        bad[position] ^= 0x01
        with ape.reverts(attest.provenance.ProvenanceRegistry__ProofRejected):
            attest.call(["a", "b"], bytes(bad), ab.instances, stranger)
    with ape.reverts(attest.provenance.ProvenanceRegistry__ProofRejected):
        attest.call(["a", "b"], ab.proof[:-32], ab.instances, stranger)
    assert attest.provenance.attestationOf(attest.assets["a"], attest.model_id) == (False, 0)
    assert not attest.provenance.isStatementAttested(statement(attest.model_id, ab.instances))


def test_a_proof_made_with_other_keys_is_rejected(attest, stranger):
    other = attest.kit.proofs["other_keys_ab"].calldata
    assert other.commitments(2) == attest.kit.proofs["ab"].calldata.commitments(2), "same inputs, other model"
    with ape.reverts(attest.provenance.ProvenanceRegistry__ProofRejected, modelId=attest.model_id):
        attest.call(["a", "b"], other.proof, other.instances, stranger)


@pytest.mark.parametrize("index", [0, 1, 2, 3])
def test_an_instance_at_or_above_the_field_modulus_is_refused(attest, stranger, index):
    ab = attest.kit.proofs["ab"].calldata
    tampered = list(ab.instances)
    tampered[index] += FIELD_MODULUS  # the same residue: a verifier reducing mod p would accept it
    assert tampered[index] < 2**256
    with ape.reverts(attest.provenance.ProvenanceRegistry__InstanceNotInField, index=index, value=tampered[index]):
        attest.call(["a", "b"], ab.proof, tampered, stranger)


def test_scores_outside_31_signed_bits_are_refused_before_the_verifier(attest, stranger):
    ab = attest.kit.proofs["ab"].calldata
    for score in (1 << 30, FIELD_MODULUS - (1 << 30) - 1):
        with ape.reverts(attest.provenance.ProvenanceRegistry__ScoreOutOfRange, seq=attest.seq("a"), instance=score):
            attest.call(["a", "b"], ab.proof, [ab.instances[0], ab.instances[1], score, ab.instances[3]], stranger)
    # The largest scores that fit are decoded and reach the verifier, which rejects them.
    for score in ((1 << 30) - 1, FIELD_MODULUS - (1 << 30)):
        with ape.reverts(attest.provenance.ProvenanceRegistry__ProofRejected):
            attest.call(["a", "b"], ab.proof, [ab.instances[0], ab.instances[1], score, ab.instances[3]], stranger)


def test_batch_and_instance_counts_are_checked(attest, stranger):
    ab = attest.kit.proofs["ab"].calldata
    with ape.reverts(attest.provenance.ProvenanceRegistry__BadAttestationSize, count=0, maxCount=256):
        attest.provenance.attestInference(attest.model_id, [], ab.proof, [], sender=stranger)
    too_many = [attest.seq("a")] * 257
    with ape.reverts(attest.provenance.ProvenanceRegistry__BadAttestationSize, count=257, maxCount=256):
        attest.provenance.attestInference(attest.model_id, too_many, ab.proof, [0] * 514, sender=stranger)
    with ape.reverts(attest.provenance.ProvenanceRegistry__BadInstanceCount, given=3, expected=4):
        attest.call(["a", "b"], ab.proof, ab.instances[:3], stranger)
    with ape.reverts(attest.provenance.ProvenanceRegistry__BadInstanceCount, given=4, expected=2):
        attest.call(["a"], ab.proof, ab.instances, stranger)


def test_model_without_verifier_retired_or_unknown_is_refused(attest, core, developer, stranger):
    ab = attest.kit.proofs["ab"].calldata
    ids = [attest.seq("a"), attest.seq("b")]
    unbound = register_model(core.models, developer, label="unbound-head", data_bps=0)
    with ape.reverts(attest.provenance.ProvenanceRegistry__NoVerifier, modelId=unbound):
        attest.provenance.attestInference(unbound, ids, ab.proof, ab.instances, sender=stranger)
    with ape.reverts(core.models.ModelRegistry__UnknownModel, modelId=999):
        attest.provenance.attestInference(999, ids, ab.proof, ab.instances, sender=stranger)
    core.models.retire(attest.model_id, sender=developer)
    with ape.reverts(attest.provenance.ProvenanceRegistry__ModelNotActive, modelId=attest.model_id):
        attest.call(["a", "b"], ab.proof, ab.instances, stranger)


def test_attestation_of_unknown_asset_reverts(attest):
    with ape.reverts(attest.provenance.ProvenanceRegistry__UnknownAsset):
        attest.provenance.attestationOf(b"\x13" * 32, attest.model_id)


# --- differential: ezkl.verify and the on-chain verifier agree ---------------------------------


def _tampered_cases(kit: ZkKit, root: Path) -> dict[str, Path]:
    """Proof files: the valid one, each instance changed, proof bytes flipped, other keys."""
    base = json.loads(kit.proofs["ab"].path.read_text())
    cases: dict[str, Path] = {"valid": kit.proofs["ab"].path, "other keys": kit.proofs["other_keys_ab"].path}

    def write(name: str, doc: dict[str, Any]) -> None:
        path = root / f"{name.replace(' ', '_')}.json"
        path.write_text(json.dumps(doc))
        cases[name] = path

    for index in range(len(base["instances"][0])):
        doc = json.loads(json.dumps(base))
        felt = bytearray(bytes.fromhex(doc["instances"][0][index]))
        felt[0] ^= 0x01  # little-endian: the lowest byte
        doc["instances"][0][index] = felt.hex()
        write(f"instance {index}", doc)
    proof = bytes.fromhex(base["hex_proof"][2:])
    for position in (5, len(proof) // 3, len(proof) - 7):
        bad = bytearray(proof)
        bad[position] ^= 0x80
        doc = json.loads(json.dumps(base))
        doc["hex_proof"], doc["proof"] = "0x" + bad.hex(), list(bad)
        write(f"proof byte {position}", doc)
    return cases


def test_ezkl_verify_and_the_onchain_verifier_agree(attest, tmp_path):
    kit = attest.kit
    cases = _tampered_cases(kit, tmp_path)
    verdicts: dict[str, tuple[bool, bool]] = {}
    for name, path in cases.items():
        doc = json.loads(path.read_text())
        calldata = kit.circuit.calldata(doc)
        offchain = kit.circuit.verify(path)
        try:
            onchain = bool(attest.verifier.verifyProof.call(calldata.proof, calldata.instances))
        except ape.exceptions.ContractLogicError:
            onchain = False
        verdicts[name] = (offchain, onchain)
    assert verdicts["valid"] == (True, True)
    disagreements = {name: v for name, v in verdicts.items() if v[0] != v[1]}
    assert not disagreements, f"ezkl.verify and the EVM verifier disagree: {disagreements}"
    rejected = [name for name, (off, _) in verdicts.items() if name != "valid" and not off]
    assert len(rejected) == len(cases) - 1, f"accepted tampered cases: {set(cases) - set(rejected) - {'valid'}}"
