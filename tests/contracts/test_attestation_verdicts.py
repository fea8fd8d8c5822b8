"""The verdicts `ProvenanceRegistry.attestInference` derives from proven scores and the attesting
model version's bands, driven through the TestVerifier stand-in (a proof is keccak256(abi.encode(
instances))), so any score can be attested; real EZKL proofs are in test_attest_inference.py.

Branch tree of a score q under bands (acceptAt, reviewAt) bound with the verifier
(`Bands.decide_fixed` in media/head_training.py):
- |q| >= 2^29 (q = 2^29 and q = -2^29, and beyond): ScoreOutOfRange, nothing recorded
  (q = +-(2^29 - 1): recorded exactly)
- q >= acceptAt: Accept (q == acceptAt included)
- q < reviewAt: Reject (q == reviewAt - 1)
- otherwise: Review (q == reviewAt and q == acceptAt - 1)
each for the shipped bands, negative bands, bands with no review band (reviewAt == acceptAt) and
bands at the edges of the cell range; and for every attested asset:
- the cell holds verdict and score, read back by `attestationOf` as (true, q, verdict); `None`
  and 0 before; neighbours in one storage word (also attested in separate calls) keep their own
- `InferenceAttested` carries seqs, scores and verdicts in instance order
- attesting the asset again by the same model version (another score, another statement):
  AlreadyAttested, its verdict and score unchanged; another model version judges by its own bands
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import ape
import pytest
from eth_abi import encode
from eth_utils import keccak

from agents.core.merkle import AssetRecord
from tests.contracts.helpers import (
    ACCEPT,
    FIELD_MODULUS,
    NONE,
    REJECT,
    REVIEW,
    SHIPPED_BANDS,
    asset_record,
    bind_verifier,
    digest,
    field_commitment,
    register_model,
    verdict_of,
)
from zkml.evm import proven_digest

pytestmark = pytest.mark.chain

SCORE_LIMIT = 1 << 29
"""Scores (and band edges) lie strictly between -SCORE_LIMIT and SCORE_LIMIT."""

BANDS = {
    "shipped": SHIPPED_BANDS,
    "negative": (-100, -200),
    "no review band": (0, 0),
    "cell extremes": (SCORE_LIMIT - 1, -(SCORE_LIMIT - 1)),
}


@dataclass
class Heads:
    """Model versions bound to TestVerifiers, one per band set in `BANDS`."""

    ids: dict[str, int]

    def bands(self, name: str) -> tuple[int, int]:
        return BANDS[name]


@pytest.fixture(scope="module", autouse=True)
def heads(project, core, developer) -> Heads:  # type: ignore[no-untyped-def]
    ids: dict[str, int] = {}
    for name, bands in BANDS.items():
        head = register_model(core.models, developer, label=f"verdict-head/{name}", data_bps=0, developer_bps=0)
        verifier = developer.deploy(project.TestVerifier)
        bind_verifier(core.models, developer, head, verifier, digest(f"vk/{name}"), bands)
        ids[name] = head
    return Heads(ids)


def register(core: Any, creator: Any, model_id: int, labels: list[str]) -> list[AssetRecord]:
    """Registers one asset per label (one after another: eight share an attestation word)."""
    records = [asset_record(label, creator, model_id, commitment=field_commitment(label)) for label in labels]
    core.provenance.registerMany([r.as_tuple() for r in records], [[] for _ in records], sender=creator)
    return records


def instances_of(records: list[AssetRecord], scores: list[int]) -> list[int]:
    """attestInference's layout: commitments, scores as field elements (p - |q| for q < 0),
    proven digests."""
    commitments = [int.from_bytes(r.input_commitment, "big") for r in records]
    return commitments + [q % FIELD_MODULUS for q in scores] + [proven_digest(r.content_digest) for r in records]


def attest(core: Any, head: int, records: list[AssetRecord], scores: list[int], sender: Any) -> Any:
    """Attests `records` with `scores` through the TestVerifier bound to `head`."""
    instances = instances_of(records, scores)
    seqs = [int(core.provenance.getAsset(r.content_digest).seq) for r in records]
    proof = keccak(encode(["uint256[]"], [instances]))
    return core.provenance.attestInference(head, seqs, proof, instances, sender=sender)


def edge_scores(bands: tuple[int, int]) -> list[int]:
    """Scores just below, at and just above each band edge, zero, and negatives, all in range."""
    accept_at, review_at = bands
    candidates = [accept_at - 1, accept_at, accept_at + 1, review_at - 1, review_at, review_at + 1]
    candidates += [0, -1, 1, -accept_at, -review_at, SCORE_LIMIT - 1, -(SCORE_LIMIT - 1)]
    return sorted({q for q in candidates if abs(q) < SCORE_LIMIT})


@pytest.mark.parametrize("name", list(BANDS))
def test_verdicts_at_and_around_each_band_edge(core, heads, model_id, creator, stranger, name):
    bands = heads.bands(name)
    scores = edge_scores(bands)
    records = register(core, creator, model_id, [f"edge/{name}/{i}" for i in range(len(scores))])
    for record in records:
        assert core.provenance.attestationOf(record.content_digest, heads.ids[name]) == (False, 0, NONE)

    receipt = attest(core, heads.ids[name], records, scores, stranger)

    expected = [verdict_of(q, bands) for q in scores]
    (event,) = receipt.decode_logs(core.provenance.InferenceAttested)
    assert event.modelId == heads.ids[name]
    assert list(event.seqs) == [int(core.provenance.getAsset(r.content_digest).seq) for r in records]
    assert list(event.scores) == scores
    assert list(event.verdicts) == expected
    for record, q, verdict in zip(records, scores, expected, strict=True):
        assert core.provenance.attestationOf(record.content_digest, heads.ids[name]) == (True, q, verdict), q
    # The edges themselves, spelled out.
    accept_at, review_at = bands
    by_score = dict(zip(scores, expected, strict=True))
    if abs(accept_at) < SCORE_LIMIT:
        assert by_score[accept_at] == ACCEPT
    if accept_at - 1 >= review_at:
        assert by_score[accept_at - 1] == REVIEW
    if review_at < accept_at:
        assert by_score[review_at] == REVIEW
    if review_at - 1 > -SCORE_LIMIT:
        assert by_score[review_at - 1] == REJECT


def test_the_shipped_bands_judge_as_the_python_head_decides(core, heads, model_id, creator, stranger):
    """Differential: the contract's verdicts are `media.head_training.Bands.decide_fixed`'s on the
    same integer scores, for the shipped bands (0.79 / 0.56 at 2^-13: 6,472 / 4,588)."""
    import numpy as np

    from media.head_training import ACCEPT as PY_ACCEPT
    from media.head_training import REJECT as PY_REJECT
    from media.head_training import REVIEW as PY_REVIEW
    from media.head_training import Bands

    shipped = Bands(accept_at=0.79, review_at=0.56)
    assert shipped.fixed() == SHIPPED_BANDS
    rng = random.Random(20261129)
    scores = edge_scores(SHIPPED_BANDS) + [rng.randint(-12_000, 12_000) for _ in range(40)]
    records = register(core, creator, model_id, [f"differential/{i}" for i in range(len(scores))])
    receipt = attest(core, heads.ids["shipped"], records, scores, stranger)

    (event,) = receipt.decode_logs(core.provenance.InferenceAttested)
    names = {PY_ACCEPT: ACCEPT, PY_REVIEW: REVIEW, PY_REJECT: REJECT}
    python = [names[str(v)] for v in shipped.decide_fixed(np.array(scores, dtype=np.int64))]
    assert list(event.verdicts) == python, f"seed 20261129, scores {scores}"


@pytest.mark.parametrize(
    ("score", "instance"),
    [
        (SCORE_LIMIT, SCORE_LIMIT),
        (-SCORE_LIMIT, FIELD_MODULUS - SCORE_LIMIT),
        (SCORE_LIMIT + 1, SCORE_LIMIT + 1),
        (-SCORE_LIMIT - 1, FIELD_MODULUS - SCORE_LIMIT - 1),
        (1 << 30, 1 << 30),  # fitted the old 31-bit cell
        (-(1 << 30), FIELD_MODULUS - (1 << 30)),
        ((FIELD_MODULUS - 1) // 2, (FIELD_MODULUS - 1) // 2),  # the largest positive field score
        (-((FIELD_MODULUS - 1) // 2), (FIELD_MODULUS + 1) // 2),  # the most negative
    ],
)
def test_scores_at_or_past_2_to_the_29_are_refused(core, heads, model_id, creator, stranger, score, instance):
    records = register(core, creator, model_id, ["in-range", "out-of-range"])
    head = heads.ids["shipped"]
    assert instances_of(records, [0, score])[3] == instance
    seq = int(core.provenance.getAsset(records[1].content_digest).seq)
    with ape.reverts(core.provenance.ProvenanceRegistry__ScoreOutOfRange, seq=seq, instance=instance):
        attest(core, head, records, [0, score], stranger)
    assert core.provenance.attestationOf(records[0].content_digest, head) == (False, 0, NONE)


def test_scores_just_inside_2_to_the_29_are_recorded_exactly(core, heads, model_id, creator, stranger):
    records = register(core, creator, model_id, ["top", "bottom"])
    head = heads.ids["shipped"]
    top, bottom = SCORE_LIMIT - 1, -(SCORE_LIMIT - 1)
    assert instances_of(records, [top, bottom])[2:4] == [top, FIELD_MODULUS - top]
    attest(core, head, records, [top, bottom], stranger)
    assert core.provenance.attestationOf(records[0].content_digest, head) == (True, top, ACCEPT)
    assert core.provenance.attestationOf(records[1].content_digest, head) == (True, bottom, REJECT)


def test_neighbouring_cells_keep_their_own_verdicts_across_calls(core, heads, model_id, creator, stranger):
    """Sixteen assets in two storage words, attested in three calls that share words: extreme
    scores of either sign next to each other neither bleed into a neighbour's score nor its
    verdict, and a later call keeps the cells an earlier one set."""
    head, bands = heads.ids["shipped"], heads.bands("shipped")
    records = register(core, creator, model_id, [f"neighbour/{i}" for i in range(16)])
    extremes = [SCORE_LIMIT - 1, -(SCORE_LIMIT - 1), SHIPPED_BANDS[0], -1, SHIPPED_BANDS[1], 0, -SHIPPED_BANDS[0], 1]
    scores = extremes + extremes[::-1]
    for chunk in (range(0, 5), range(5, 11), range(11, 16)):
        attest(core, head, [records[i] for i in chunk], [scores[i] for i in chunk], stranger)
    for record, q in zip(records, scores, strict=True):
        assert core.provenance.attestationOf(record.content_digest, head) == (True, q, verdict_of(q, bands)), q


def test_a_verdict_cannot_be_changed_by_attesting_again(core, heads, model_id, creator, stranger):
    head = heads.ids["shipped"]
    judged, fresh = register(core, creator, model_id, ["judged", "fresh"])
    attest(core, head, [judged], [1_234], stranger)
    assert core.provenance.attestationOf(judged.content_digest, head) == (True, 1_234, REJECT)
    seq = int(core.provenance.getAsset(judged.content_digest).seq)
    # Another proof (another statement) with an accepting score, alone or beside a fresh asset.
    for records, scores in (([judged], [9_999]), ([fresh, judged], [7_000, 9_999])):
        with ape.reverts(core.provenance.ProvenanceRegistry__AlreadyAttested, seq=seq, modelId=head):
            attest(core, head, records, scores, creator)
    assert core.provenance.attestationOf(judged.content_digest, head) == (True, 1_234, REJECT)
    assert core.provenance.attestationOf(fresh.content_digest, head) == (False, 0, NONE)


def test_each_model_version_judges_by_its_own_bands(core, heads, model_id, creator, stranger):
    (record,) = register(core, creator, model_id, ["judged twice"])
    attest(core, heads.ids["shipped"], [record], [5_000], stranger)
    attest(core, heads.ids["negative"], [record], [5_000], stranger)
    assert core.provenance.attestationOf(record.content_digest, heads.ids["shipped"]) == (True, 5_000, REVIEW)
    assert core.provenance.attestationOf(record.content_digest, heads.ids["negative"]) == (True, 5_000, ACCEPT)
    assert core.provenance.attestationOf(record.content_digest, heads.ids["no review band"]) == (False, 0, NONE)


def test_attestation_gas_per_asset_in_a_batch(core, heads, model_id, creator, deployer):
    """The registry's own cost of an attested inference, in a batch of 193 assets registered one
    after another (bench/zk.py's old batch; the TestVerifier's share is a keccak of the instances):
    calldata, a cold input binding, an eighth of a storage word, a 96-byte share of the event.
    bench/zk.py adds the real verifier's share; its target is 15,000 gas per inference. Measured
    8,883 when written, of which 256 are the verdict's 32 bytes in the event."""
    count = 193
    records: list[AssetRecord] = []
    for start in range(0, count, 64):
        records += register(core, creator, model_id, [f"gas/{i}" for i in range(start, min(start + 64, count))])
    rng = random.Random(193)
    scores = [rng.randint(-20_000, 20_000) for _ in range(count)]
    receipt = attest(core, heads.ids["shipped"], records, scores, deployer)
    assert len(receipt.decode_logs(core.provenance.InferenceAttested)[0].verdicts) == count
    per_asset = receipt.gas_used / count
    assert per_asset < 9_100, per_asset
