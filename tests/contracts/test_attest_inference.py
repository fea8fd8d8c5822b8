"""ProvenanceRegistry.attestInference and ERC-7007 `verify`/`addAigcData` with real EZKL proofs and
the real generated verifier.

CHECKLIST item 7: a valid proof attests once; any changed instance, an instance >= the field
modulus, a proof for asset A submitted for asset B, a proof made with other keys and a second
proof of the same statement are each rejected with their own error; `ezkl.verify` and the
on-chain verifier agree on the valid proof and on every tampered one.

The issue "a proof for asset A attests asset B": a proof names its assets by proven digest (the
top 253 bits of the keccak256 of the content digest, which the circuit reads after the embedding
and passes through to a public instance), and each record stores the input binding
keccak256(abi.encode(provenDigest, inputCommitment)), so content registered with another
asset's input commitment (public in that asset's `AssetRegistered` event) is neither attested nor
verified by that asset's proof (CHECKLIST items 19 and 20).

Branch tree of `attestInference(modelId, seqs, proof, instances)` (n = seqs.length):
- n == 0 or n > MAX_ATTEST_BATCH: BadAttestationSize (n == MAX_ATTEST_BATCH passes it)
- instances != 3 n (commitment, score, proven digest each): BadInstanceCount
- unknown model: ModelRegistry__UnknownModel; no verifier: NoVerifier; retired: ModelNotActive
- statement (model, seqs, instances) attested before: StatementAlreadyAttested
- for each asset i, in order: its commitment (index i), score (n + i) or proven digest (2n + i)
  >= the field modulus: InstanceNotInField; keccak256(abi.encode(digest, commitment)) is not
  the binding of record seqs[i]: UnknownSeq when no record has that number, else
  InputBindingMismatch (also for a record without a commitment); |score| >= 2^29:
  ScoreOutOfRange; attested by this model (or twice in the call): AlreadyAttested
- the verifier rejects (changed score or proven digest naming another record, changed proof
  bytes, other keys): ProofRejected
- otherwise: InferenceAttested with each asset's score and verdict, one cell per asset (verdict
  and score), the statement recorded
The head here is bound with acceptAt = asset "a"'s proven score and reviewAt = 0, so the real
proof of "a" and "b" is judged at an edge: "a" accepted at exactly acceptAt, "b" (negative)
rejected. Every verdict edge, with any score, is in test_attestation_verdicts.py.
(VerifierCodeChanged needs a verifier whose code changes after binding, which only a contract
that self-destructs in its creating transaction can do; no such contract is in contracts/.)
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ape
import pytest
from eth_abi import encode
from eth_utils import keccak

from agents.core.merkle import AssetRecord
from agents.models.generator import Lineage
from tests.contracts.helpers import (
    ACCEPT,
    NONE,
    REJECT,
    asset_record,
    bind_verifier,
    register_asset,
    register_model,
    verdict_of,
)
from tests.zk_support import ZkKit, content_digest, label, prove
from zkml.evm import (
    FIELD_MODULUS,
    INSTANCES_PER_ASSET,
    PROVEN_DIGEST_BITS,
    decode_signed,
    deploy_verifier,
    input_binding,
    proven_digest,
)
from zkml.pipeline import HeadInput

pytestmark = [pytest.mark.chain, pytest.mark.slow]

N = 2
"""Assets per proof in the kit."""

MAX_ATTEST_BATCH = 256
"""`ProvenanceRegistry.MAX_ATTEST_BATCH`."""


def b32(value: int) -> bytes:
    return value.to_bytes(32, "big")


def statement(model_id: int, seqs: list[int], instances: list[int]) -> bytes:
    """keccak256(abi.encode(modelId, seqs, instances)): `seqs` the assets' registration numbers."""
    return keccak(encode(["uint256", "uint256[]", "uint256[]"], [model_id, seqs, instances]))


def params_document(name: str) -> bytes:
    """The generation-parameters document of asset `name` (what its `paramsDigest` hashes)."""
    return Lineage(
        model_id=1,
        model_digest="00" * 32,
        pipeline="StableDiffusionPipeline",
        scheduler="DDIMScheduler",
        adapters=(),
        prompt=f"a picture of {name}",
        negative_prompt="",
        seed=sum(name.encode()),
        steps=20,
        guidance=7.5,
        height=32,
        width=32,
        parents=(),
        device="cpu",
        dtype="float32",
        batch=1,
    ).canonical()


def record_of(name: str, creator: Any, model_id: int, commitment: int) -> AssetRecord:
    """Asset `name`'s record: its content digest, its parameters document's digest, `commitment`."""
    record = asset_record(label(name), creator, model_id, commitment=b32(commitment))
    return dataclasses.replace(record, params_digest=hashlib.sha256(params_document(name)).digest())


def aigc_proof(model_id: int, proof: bytes, instances: list[int]) -> bytes:
    """ERC-7007 `proof`: abi.encode(uint256 modelId, bytes zkProof, uint256[] instances)."""
    return encode(["uint256", "bytes", "uint256[]"], [model_id, proof, instances])


@dataclass
class Attest:
    provenance: Any
    model_id: int
    assets: dict[str, bytes]
    """Asset name -> content digest."""
    registered: dict[str, Any]
    """Asset name -> the receipt of its registration."""
    verifier: Any
    kit: ZkKit
    bands: tuple[int, int]
    """(acceptAt, reviewAt) bound with the verifier."""

    def seq(self, name: str) -> int:
        """Asset `name`'s registration number (what `attestInference` names it by)."""
        return int(self.provenance.getAsset(self.assets[name]).seq)

    def statement(self, names: list[str], instances: list[int]) -> bytes:
        """The statement attesting assets `names` with `instances` proves."""
        return statement(self.model_id, [self.seq(name) for name in names], instances)

    def call(self, names: list[str], proof: bytes, instances: list[int], sender: Any) -> Any:
        seqs = [self.seq(name) for name in names]
        return self.provenance.attestInference(self.model_id, seqs, proof, instances, sender=sender)


@pytest.fixture(scope="module", autouse=True)
def attest(core, model_id, developer, creator, deployer, zk_kit) -> Attest:  # type: ignore[no-untyped-def]
    curation_id = register_model(core.models, developer, label="curation-head", data_bps=0, developer_bps=0)
    verifier = deploy_verifier(deployer, zk_kit.verifier)
    bands = (zk_kit.proofs["ab"].calldata.scores[0], 0)
    bind_verifier(core.models, developer, curation_id, verifier, zk_kit.verifier.vk_digest, bands)
    # Seven fillers first, so asset "a" has seq 7 and "b" seq 8: one proof spans two storage words.
    for i in range(7):
        register_asset(core.provenance, creator, asset_record(f"filler-{i}", creator, model_id))
    assets: dict[str, bytes] = {}
    registered: dict[str, Any] = {}
    for name in ("a", "b", "c"):
        record = record_of(name, creator, model_id, zk_kit.commitments[name])
        assert record.content_digest == content_digest(name)
        registered[name] = register_asset(core.provenance, creator, record)
        assets[name] = record.content_digest
    record = asset_record("no-commitment", creator, model_id, commitment=b"\x00" * 32)
    register_asset(core.provenance, creator, record)
    assets["zero"] = record.content_digest
    assets["filler"] = asset_record("filler-0", creator, model_id).content_digest
    return Attest(core.provenance, curation_id, assets, registered, verifier, zk_kit, bands)


def test_commitments_and_proven_digests_computed_in_python_are_the_proof_instances(zk_kit):
    ab = zk_kit.proofs["ab"].calldata
    assert len(ab.instances) == INSTANCES_PER_ASSET * N == 3 * N
    assert ab.commitments == [zk_kit.commitments["a"], zk_kit.commitments["b"]]
    assert zk_kit.circuit.commitments([zk_kit.inputs["a"]] * 2) == [zk_kit.commitments["a"]] * 2
    assert ab.proven_digests == [proven_digest(content_digest("a")), proven_digest(content_digest("b"))]
    assert ab.instances[2 * N :] == [int.from_bytes(keccak(content_digest(n)), "big") >> 3 for n in ("a", "b")]
    assert ab.names([content_digest("a"), content_digest("b")])
    scores = ab.scores
    assert any(s < 0 for s in scores) and any(s > 0 for s in scores), "fixtures cover both signs"


def test_the_registrys_input_binding_is_the_python_twins(attest):
    """`getAsset(d).inputBinding` is keccak256(abi.encode(uint256(keccak256(d)) >> 3, commitment)), as
    `zkml.evm.input_binding` computes it; a record without a commitment has none."""
    provenance, kit = attest.provenance, attest.kit
    assert int(provenance.PROVEN_DIGEST_BITS()) == PROVEN_DIGEST_BITS == 253
    for name in ("a", "b", "c"):
        digest, commitment = attest.assets[name], kit.commitments[name]
        by_hand = keccak(encode(["uint256", "uint256"], [int.from_bytes(keccak(digest), "big") >> 3, commitment]))
        assert int(provenance.provenDigestOf(digest)) == proven_digest(digest)
        assert input_binding(digest, commitment) == by_hand
        assert bytes(provenance.getAsset(digest).inputBinding) == by_hand, name
        # The raw commitment is published in the registration event, not stored.
        (event,) = attest.registered[name].decode_logs(provenance.AssetRegistered)
        assert bytes(event.inputCommitment) == b32(commitment)
    assert bytes(provenance.getAsset(attest.assets["zero"]).inputBinding) == b"\x00" * 32


def test_verifier_of_pins_the_keccak_of_the_verifiers_runtime_code(attest, core, chain):
    verifier, vk_digest, code_hash = core.models.verifierOf(attest.model_id)
    runtime = bytes(chain.provider.get_code(attest.verifier.address))
    assert verifier == attest.verifier.address
    assert bytes(vk_digest) == attest.kit.verifier.vk_digest
    assert len(runtime) == attest.kit.verifier.runtime_size
    assert bytes(code_hash) == keccak(runtime)


def test_valid_proof_attests_each_asset_once_across_storage_words(attest, core, stranger):
    ab = attest.kit.proofs["ab"].calldata
    assert attest.seq("a") == 7 and attest.seq("b") == 8
    assert attest.provenance.attestationOf(attest.assets["a"], attest.model_id) == (False, 0, NONE)
    assert tuple(core.models.bandsOf(attest.model_id)) == attest.bands

    receipt = attest.call(["a", "b"], ab.proof, ab.instances, stranger)  # anyone may post a proof

    (event,) = receipt.decode_logs(attest.provenance.InferenceAttested)
    expected_scores = [decode_signed(v) for v in ab.instances[N : 2 * N]]
    # "a" is proven at exactly acceptAt, "b" below reviewAt (0).
    assert [verdict_of(q, attest.bands) for q in expected_scores] == [ACCEPT, REJECT]
    assert event.modelId == attest.model_id
    assert event.statement == statement(attest.model_id, [7, 8], ab.instances)
    assert list(event.seqs) == [7, 8]
    assert list(event.scores) == expected_scores
    assert list(event.verdicts) == [ACCEPT, REJECT]
    provenance = attest.provenance
    assert provenance.attestationOf(attest.assets["a"], attest.model_id) == (True, expected_scores[0], ACCEPT)
    assert provenance.attestationOf(attest.assets["b"], attest.model_id) == (True, expected_scores[1], REJECT)
    assert provenance.attestationOf(attest.assets["c"], attest.model_id) == (False, 0, NONE)
    assert attest.provenance.isStatementAttested(attest.statement(["a", "b"], ab.instances))


def test_second_proof_of_the_same_statement_is_refused(attest, stranger):
    first, again = attest.kit.proofs["ab"].calldata, attest.kit.proofs["ab_again"].calldata
    assert first.proof != again.proof and first.instances == again.instances, "a fresh proof, the same statement"
    attest.call(["a", "b"], first.proof, first.instances, stranger)
    with ape.reverts(
        attest.provenance.ProvenanceRegistry__StatementAlreadyAttested,
        statement=attest.statement(["a", "b"], first.instances),
    ):
        attest.call(["a", "b"], again.proof, again.instances, stranger)


def test_an_asset_is_attested_once_per_model_version(attest, stranger):
    ab, ac = attest.kit.proofs["ab"].calldata, attest.kit.proofs["ac"].calldata
    attest.call(["a", "b"], ab.proof, ab.instances, stranger)
    with ape.reverts(
        attest.provenance.ProvenanceRegistry__AlreadyAttested, seq=attest.seq("a"), modelId=attest.model_id
    ):
        attest.call(["a", "c"], ac.proof, ac.instances, stranger)
    # "a" keeps the score and verdict of its first attestation; "c" stays unattested.
    assert attest.provenance.attestationOf(attest.assets["a"], attest.model_id) == (True, ab.scores[0], ACCEPT)
    assert attest.provenance.attestationOf(attest.assets["c"], attest.model_id) == (False, 0, NONE)


def test_the_same_asset_twice_in_one_call_is_refused(attest, stranger):
    ab = attest.kit.proofs["ab"].calldata
    commitment, score, digest = ab.instances[0], ab.instances[N], ab.instances[2 * N]
    twice = [commitment, commitment, score, score, digest, digest]
    with ape.reverts(
        attest.provenance.ProvenanceRegistry__AlreadyAttested, seq=attest.seq("a"), modelId=attest.model_id
    ):
        attest.call(["a", "a"], ab.proof, twice, stranger)


def test_a_proof_for_asset_a_never_attests_asset_b(attest, stranger):
    ab = attest.kit.proofs["ab"].calldata
    mismatch = attest.provenance.ProvenanceRegistry__InputBindingMismatch
    with ape.reverts(mismatch, seq=attest.seq("b"), index=0):
        attest.call(["b", "a"], ab.proof, ab.instances, stranger)
    with ape.reverts(mismatch, seq=attest.seq("c"), index=1):
        attest.call(["a", "c"], ab.proof, ab.instances, stranger)
    # A record without a commitment has no binding: nothing attests it.
    with ape.reverts(mismatch, seq=attest.seq("zero"), index=0):
        attest.call(["zero", "b"], ab.proof, ab.instances, stranger)
    # A filler registered a commitment too, just not this one.
    with ape.reverts(mismatch, seq=attest.seq("filler"), index=0):
        attest.call(["filler", "b"], ab.proof, ab.instances, stranger)


def test_content_registered_with_a_copied_commitment_is_not_attested_by_the_original_proof(
    attest, model_id, other_creator, stranger
):
    """The issue as reproduced: Mallory registers unrelated content under the input commitments
    "a" and "b" published at their registration, and submits their proof for her content."""
    kit, provenance = attest.kit, attest.provenance
    ab = kit.proofs["ab"].calldata
    published = {}
    for name in ("a", "b"):
        (event,) = attest.registered[name].decode_logs(provenance.AssetRegistered)
        published[name] = int.from_bytes(bytes(event.inputCommitment), "big")
    assert published == {"a": kit.commitments["a"], "b": kit.commitments["b"]}
    for name, copied in (("mallory-a", "a"), ("mallory-b", "b")):
        record = record_of(name, other_creator, model_id, published[copied])
        register_asset(provenance, other_creator, record)
        attest.assets[name] = record.content_digest
    # Her records bind her digests to the copied commitments: other bindings than "a"'s and "b"'s.
    mallory_a = bytes(provenance.getAsset(attest.assets["mallory-a"]).inputBinding)
    assert mallory_a == input_binding(attest.assets["mallory-a"], kit.commitments["a"])
    assert mallory_a != bytes(provenance.getAsset(attest.assets["a"]).inputBinding)

    mismatch = provenance.ProvenanceRegistry__InputBindingMismatch
    with ape.reverts(mismatch, seq=attest.seq("mallory-a"), index=0):
        attest.call(["mallory-a", "mallory-b"], ab.proof, ab.instances, other_creator)
    with ape.reverts(mismatch, seq=attest.seq("mallory-a"), index=0):
        attest.call(["mallory-a", "b"], ab.proof, ab.instances, other_creator)
    with ape.reverts(mismatch, seq=attest.seq("mallory-b"), index=1):
        attest.call(["a", "mallory-b"], ab.proof, ab.instances, other_creator)
    # Her proven digests edited into the instances match her bindings; the proof then fails the
    # verifier.
    hers = [proven_digest(attest.assets["mallory-a"]), proven_digest(attest.assets["mallory-b"])]
    edited = [*ab.instances[: 2 * N], *hers]
    with ape.reverts(provenance.ProvenanceRegistry__ProofRejected, modelId=attest.model_id):
        attest.call(["mallory-a", "mallory-b"], ab.proof, edited, other_creator)
    assert provenance.attestationOf(attest.assets["mallory-a"], attest.model_id) == (False, 0, NONE)
    assert not provenance.isStatementAttested(attest.statement(["mallory-a", "mallory-b"], edited))

    # The proof still attests the assets it was made for.
    attest.call(["a", "b"], ab.proof, ab.instances, stranger)
    assert provenance.attestationOf(attest.assets["a"], attest.model_id) == (True, ab.scores[0], ACCEPT)
    assert provenance.attestationOf(attest.assets["mallory-a"], attest.model_id) == (False, 0, NONE)
    assert provenance.attestationOf(attest.assets["mallory-b"], attest.model_id) == (False, 0, NONE)


def test_a_neighbour_of_a_digest_registered_with_its_commitment_is_not_attested_by_its_proof(
    attest, model_id, other_creator, stranger, tmp_path
):
    """Mallory registers records whose digests differ from "a"'s in their lowest bits (no content
    needed) under "a"'s published commitment. The proven digest hashes the digest first, so each
    neighbour's binding differs from "a"'s: "a"'s proof attests none of them, ERC-7007 `verify`
    says false for them, and a proof of "a"'s embedding under a neighbour's digest is another
    commitment that attests nothing of "a"'s."""
    kit, provenance = attest.kit, attest.provenance
    a, b = kit.inputs["a"], kit.inputs["b"]
    ab = kit.proofs["ab"].calldata
    for bit in range(4):
        neighbour = bytes([*a.digest[:31], a.digest[31] ^ (1 << bit)])
        assert proven_digest(neighbour) != proven_digest(a.digest)
        record = dataclasses.replace(
            record_of("a", other_creator, model_id, kit.commitments["a"]), content_digest=neighbour
        )
        register_asset(provenance, other_creator, record)
        attest.assets[f"neighbour-{bit}"] = neighbour
        assert bytes(provenance.getAsset(neighbour).inputBinding) == input_binding(neighbour, kit.commitments["a"])
        assert bytes(provenance.getAsset(neighbour).inputBinding) != bytes(provenance.getAsset(a.digest).inputBinding)
        with ape.reverts(
            provenance.ProvenanceRegistry__InputBindingMismatch, seq=attest.seq(f"neighbour-{bit}"), index=0
        ):
            attest.call([f"neighbour-{bit}", "b"], ab.proof, ab.instances, other_creator)
        assert not provenance.verify(
            params_document("a"), neighbour, aigc_proof(attest.model_id, ab.proof, ab.instances)
        )

    # Proved under the neighbour's digest, "a"'s embedding gives another commitment and proven
    # digest: that proof names the neighbour, not "a".
    neighbour = attest.assets["neighbour-0"]
    other = prove(kit.circuit, [HeadInput(a.embedding, neighbour), b], tmp_path / "neighbour").calldata
    assert other.commitments[0] != kit.commitments["a"] and not other.names([a.digest, b.digest])
    with ape.reverts(provenance.ProvenanceRegistry__InputBindingMismatch, seq=attest.seq("a"), index=0):
        attest.call(["a", "b"], other.proof, other.instances, stranger)
    # "a"'s own proof still attests "a".
    attest.call(["a", "b"], ab.proof, ab.instances, stranger)
    assert provenance.attestationOf(a.digest, attest.model_id) == (True, ab.scores[0], ACCEPT)
    assert provenance.attestationOf(neighbour, attest.model_id) == (False, 0, NONE)


def test_an_unknown_registration_number_is_refused(attest, stranger):
    ab = attest.kit.proofs["ab"].calldata
    count = int(attest.provenance.assetCount())
    # The last number names a record (without this binding); the next one names none.
    with ape.reverts(attest.provenance.ProvenanceRegistry__InputBindingMismatch, seq=count - 1, index=1):
        attest.provenance.attestInference(attest.model_id, [7, count - 1], ab.proof, ab.instances, sender=stranger)
    for ghost in (count, count + 1, 2**256 - 1):
        with ape.reverts(attest.provenance.ProvenanceRegistry__UnknownSeq, seq=ghost):
            attest.provenance.attestInference(attest.model_id, [7, ghost], ab.proof, ab.instances, sender=stranger)


@pytest.mark.parametrize("index", [N, N + 1])
def test_a_changed_score_is_rejected_by_the_verifier(attest, stranger, index):
    ab = attest.kit.proofs["ab"].calldata
    tampered = list(ab.instances)
    tampered[index] = (tampered[index] + 1) % FIELD_MODULUS
    with ape.reverts(attest.provenance.ProvenanceRegistry__ProofRejected, modelId=attest.model_id):
        attest.call(["a", "b"], ab.proof, tampered, stranger)


@pytest.mark.parametrize("change", ["flip the lowest bit", "add 2^252"])
@pytest.mark.parametrize("position", [0, 1])
def test_a_changed_proven_digest_no_longer_matches_the_records_binding(attest, stranger, position, change):
    """A proven digest changed alone no longer hashes to the named record's binding, also when it
    only gains a high bit (still a field element); proven digests changed to name another
    registered asset pass this check and fail the verifier (see the copied-commitment test)."""
    ab = attest.kit.proofs["ab"].calldata
    tampered = list(ab.instances)
    if change == "add 2^252":
        tampered[2 * N + position] += 1 << (PROVEN_DIGEST_BITS - 1)
        assert tampered[2 * N + position] < FIELD_MODULUS
    else:
        tampered[2 * N + position] ^= 1
    name = ("a", "b")[position]
    with ape.reverts(attest.provenance.ProvenanceRegistry__InputBindingMismatch, seq=attest.seq(name), index=position):
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
    assert attest.provenance.attestationOf(attest.assets["a"], attest.model_id) == (False, 0, NONE)
    assert not attest.provenance.isStatementAttested(attest.statement(["a", "b"], ab.instances))


def test_a_proof_made_with_other_keys_is_rejected(attest, stranger):
    other = attest.kit.proofs["other_keys_ab"].calldata
    assert other.commitments == attest.kit.proofs["ab"].calldata.commitments, "same inputs, other model"
    assert other.proven_digests == attest.kit.proofs["ab"].calldata.proven_digests
    with ape.reverts(attest.provenance.ProvenanceRegistry__ProofRejected, modelId=attest.model_id):
        attest.call(["a", "b"], other.proof, other.instances, stranger)


@pytest.mark.parametrize("index", range(INSTANCES_PER_ASSET * N))
def test_an_instance_at_or_above_the_field_modulus_is_refused(attest, stranger, index):
    """Every instance, each asset's commitment (index i), score (N + i) and proven digest
    (2N + i), is checked as it is used."""
    ab = attest.kit.proofs["ab"].calldata
    tampered = list(ab.instances)
    tampered[index] += FIELD_MODULUS  # the same residue: a verifier reducing mod p would accept it
    assert tampered[index] < 2**256
    with ape.reverts(attest.provenance.ProvenanceRegistry__InstanceNotInField, index=index, value=tampered[index]):
        attest.call(["a", "b"], ab.proof, tampered, stranger)


def test_scores_of_2_to_the_29_or_more_are_refused_before_the_verifier(attest, stranger):
    ab = attest.kit.proofs["ab"].calldata

    def with_score(score: int) -> list[int]:
        return [*ab.instances[:N], score, *ab.instances[N + 1 :]]

    # 2^29 and -2^29 (p - 2^29), and what fitted the old 31-bit cell.
    for score in (1 << 29, FIELD_MODULUS - (1 << 29), 1 << 30, FIELD_MODULUS - (1 << 30)):
        with ape.reverts(attest.provenance.ProvenanceRegistry__ScoreOutOfRange, seq=attest.seq("a"), instance=score):
            attest.call(["a", "b"], ab.proof, with_score(score), stranger)
    # The largest scores that fit are decoded and reach the verifier, which rejects them.
    for score in ((1 << 29) - 1, FIELD_MODULUS - ((1 << 29) - 1)):
        with ape.reverts(attest.provenance.ProvenanceRegistry__ProofRejected):
            attest.call(["a", "b"], ab.proof, with_score(score), stranger)


def test_batch_and_instance_counts_are_checked(attest, stranger):
    ab = attest.kit.proofs["ab"].calldata
    provenance = attest.provenance
    assert int(provenance.MAX_ATTEST_BATCH()) == MAX_ATTEST_BATCH
    size = provenance.ProvenanceRegistry__BadAttestationSize
    with ape.reverts(size, count=0, maxCount=MAX_ATTEST_BATCH):
        provenance.attestInference(attest.model_id, [], ab.proof, [], sender=stranger)
    past = MAX_ATTEST_BATCH + 1
    with ape.reverts(size, count=past, maxCount=MAX_ATTEST_BATCH):
        provenance.attestInference(attest.model_id, [7] * past, ab.proof, [0] * 3 * past, sender=stranger)
    # At the bound the call gets past the size checks, to the first asset's binding.
    with ape.reverts(provenance.ProvenanceRegistry__InputBindingMismatch, seq=7, index=0):
        provenance.attestInference(
            attest.model_id, [7] * MAX_ATTEST_BATCH, ab.proof, [0] * 3 * MAX_ATTEST_BATCH, sender=stranger
        )
    count = provenance.ProvenanceRegistry__BadInstanceCount
    with ape.reverts(count, given=5, expected=6):
        attest.call(["a", "b"], ab.proof, ab.instances[:-1], stranger)
    # The layout without digests (commitments and scores only) and the two-limb layout (a fourth
    # instance per asset) are refused.
    with ape.reverts(count, given=4, expected=6):
        attest.call(["a", "b"], ab.proof, ab.instances[: 2 * N], stranger)
    with ape.reverts(count, given=8, expected=6):
        attest.call(["a", "b"], ab.proof, [*ab.instances, 0, 0], stranger)
    with ape.reverts(count, given=6, expected=3):
        attest.call(["a"], ab.proof, ab.instances, stranger)


def test_model_without_verifier_retired_or_unknown_is_refused(attest, core, developer, stranger):
    ab = attest.kit.proofs["ab"].calldata
    seqs = [attest.seq("a"), attest.seq("b")]
    unbound = register_model(core.models, developer, label="unbound-head", data_bps=0)
    with ape.reverts(attest.provenance.ProvenanceRegistry__NoVerifier, modelId=unbound):
        attest.provenance.attestInference(unbound, seqs, ab.proof, ab.instances, sender=stranger)
    with ape.reverts(core.models.ModelRegistry__UnknownModel, modelId=999):
        attest.provenance.attestInference(999, seqs, ab.proof, ab.instances, sender=stranger)
    core.models.retire(attest.model_id, sender=developer)
    with ape.reverts(attest.provenance.ProvenanceRegistry__ModelNotActive, modelId=attest.model_id):
        attest.call(["a", "b"], ab.proof, ab.instances, stranger)


def test_attestation_of_unknown_asset_reverts(attest):
    with ape.reverts(attest.provenance.ProvenanceRegistry__UnknownAsset):
        attest.provenance.attestationOf(b"\x13" * 32, attest.model_id)


# --- ERC-7007: verify and addAigcData -------------------------------------------------------


def test_erc7007_verify_accepts_each_asset_of_a_real_proof_and_add_aigc_data_emits(attest, creator):
    ab = attest.kit.proofs["ab"].calldata
    proof = aigc_proof(attest.model_id, ab.proof, ab.instances)
    for name in ("a", "b"):
        assert attest.provenance.verify(params_document(name), attest.assets[name], proof), name
    token = int.from_bytes(attest.assets["a"], "big")
    receipt = attest.provenance.addAigcData(token, params_document("a"), attest.assets["a"], proof, sender=creator)
    (event,) = receipt.decode_logs(attest.provenance.AigcData)
    assert event.tokenId == token and bytes(event.proof) == proof
    # verify attests nothing: the proof still attests its assets once.
    attest.call(["a", "b"], ab.proof, ab.instances, creator)


def test_erc7007_verify_refuses_a_proof_for_content_registered_with_a_copied_commitment(
    attest, model_id, other_creator
):
    ab = attest.kit.proofs["ab"].calldata
    record = record_of("mallory", other_creator, model_id, attest.kit.commitments["a"])
    register_asset(attest.provenance, other_creator, record)
    proof = aigc_proof(attest.model_id, ab.proof, ab.instances)
    assert attest.provenance.verify(params_document("a"), attest.assets["a"], proof)
    assert not attest.provenance.verify(params_document("mallory"), record.content_digest, proof)
    # With her proven digest edited in at "a"'s position her record is named; the verifier refuses.
    edited = [*ab.instances[: 2 * N], proven_digest(record.content_digest), ab.instances[-1]]
    named = aigc_proof(attest.model_id, ab.proof, edited)
    assert not attest.provenance.verify(params_document("mallory"), record.content_digest, named)
    token = int.from_bytes(record.content_digest, "big")
    with ape.reverts(attest.provenance.ProvenanceRegistry__AigcProofRejected, contentDigest=record.content_digest):
        attest.provenance.addAigcData(
            token, params_document("mallory"), record.content_digest, proof, sender=other_creator
        )


def test_erc7007_verify_is_false_for_every_other_input(attest, core, developer):
    kit = attest.kit
    ab, other_keys = kit.proofs["ab"].calldata, kit.proofs["other_keys_ab"].calldata
    prompt, asset = params_document("a"), attest.assets["a"]
    honest = aigc_proof(attest.model_id, ab.proof, ab.instances)
    assert attest.provenance.verify(prompt, asset, honest)

    other_id = register_model(core.models, developer, label="other-head", data_bps=0, developer_bps=0)
    other_verifier = deploy_verifier(developer, kit.other_verifier)
    bind_verifier(core.models, developer, other_id, other_verifier, kit.other_verifier.vk_digest)
    # The other circuit's model accepts its own proof of "a" and refuses this one.
    assert attest.provenance.verify(prompt, asset, aigc_proof(other_id, other_keys.proof, other_keys.instances))
    unbound = register_model(core.models, developer, label="unbound-head", data_bps=0)

    bad_byte = bytearray(ab.proof)
    bad_byte[len(bad_byte) // 2] ^= 0x01
    changed_score = list(ab.instances)
    changed_score[N] = (changed_score[N] + 1) % FIELD_MODULUS
    changed_b_digest = list(ab.instances)
    changed_b_digest[-1] ^= 1  # asset "b"'s proven digest: "a" is still named, the verifier rejects
    changed_a_digest = list(ab.instances)
    changed_a_digest[2 * N] ^= 1  # asset "a"'s proven digest: "a" is no longer named
    not_in_field = list(ab.instances)
    not_in_field[N] += FIELD_MODULUS
    ac_instances = kit.proofs["ac"].calldata.instances  # names "a" too, with other scores
    cases: dict[str, tuple[bytes, bytes, bytes]] = {
        "prompt not the parameters document": (prompt + b" ", asset, honest),
        "another asset's parameters document": (params_document("b"), asset, honest),
        "the other circuit's model id": (prompt, asset, aigc_proof(other_id, ab.proof, ab.instances)),
        "a model without a verifier": (prompt, asset, aigc_proof(unbound, ab.proof, ab.instances)),
        "an unknown model id": (prompt, asset, aigc_proof(999, ab.proof, ab.instances)),
        "a tampered proof byte": (prompt, asset, aigc_proof(attest.model_id, bytes(bad_byte), ab.instances)),
        "a changed score": (prompt, asset, aigc_proof(attest.model_id, ab.proof, changed_score)),
        "another asset's changed proven digest": (
            prompt,
            asset,
            aigc_proof(attest.model_id, ab.proof, changed_b_digest),
        ),
        "the asset's changed proven digest": (prompt, asset, aigc_proof(attest.model_id, ab.proof, changed_a_digest)),
        "an instance past the modulus": (prompt, asset, aigc_proof(attest.model_id, ab.proof, not_in_field)),
        "instances without digests": (prompt, asset, aigc_proof(attest.model_id, ab.proof, ab.instances[: 2 * N])),
        "a fourth instance per asset": (prompt, asset, aigc_proof(attest.model_id, ab.proof, [*ab.instances, 0, 0])),
        "another proof's instances": (prompt, asset, aigc_proof(attest.model_id, ab.proof, ac_instances)),
        "an asset the proof does not name": (params_document("c"), attest.assets["c"], honest),
        "an unknown asset": (prompt, hashlib.sha256(b"ghost").digest(), honest),
        "aigcData of 31 bytes": (prompt, asset[:31], honest),
        "aigcData of 33 bytes": (prompt, asset + b"\x00", honest),
    }
    accepted = [name for name, args in cases.items() if attest.provenance.verify(*args)]
    assert not accepted, f"verify accepted: {accepted}"


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
    assert len(cases) == 2 + INSTANCES_PER_ASSET * N + 3, "every instance, proven digests included, is changed once"
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
