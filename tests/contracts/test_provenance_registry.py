"""ProvenanceRegistry: single registration, batches, lineage, ERC-721/2981/7007.

Branch tree of register / claimFromBatch (each leaf is a test below):
  caller not creator and not approved registrar       -> NotAuthorized (approved registrar: ok)
  contentDigest == 0                                  -> ZeroContentDigest
  creator == 0 (nobody can act for it)                -> NotAuthorized
  digest already registered (also same block)         -> AlreadyRegistered
  model unknown / retired                             -> ModelNotActive
  uri empty / too long (== MAX ok)                    -> BadMetadataURI
  parents > MAX_PARENTS                               -> TooManyParents
  licence ids count != parents count                  -> LicenseCountMismatch
  parent == self                                      -> SelfParent
  parent repeated / descending                        -> DuplicateParent / ParentsNotSorted
  parent unknown                                      -> UnknownParent
  depth > MAX_DEPTH (== MAX ok)                       -> TooDeep
  licence missing / not for parent / no derivatives / expired -> LicenseManager errors
  royalty stack > 100%                                -> RoyaltyStackTooHigh
  otherwise                                           -> token minted, AssetRegistered
registerMany adds: no inputs / more than MAX_REGISTER_MANY -> BadBatchSize; licence lists count
  != inputs count -> LicenseCountMismatch; any member failing reverts all (its own error).
claimFromBatch adds: unknown batch, index >= count, wrong proof length, wrong proof (licence
  ids are part of the leaf: other licences than the committed ones are a wrong proof),
  submitter not authorized by the member's creator before the commit (an approval after it does
  not count; a revocation stops it), model retired before/after the commit; digest already
  registered: by the same creator, directly before the commit, or from an earlier batch ->
  AlreadyRegistered; registered after the commit (directly or from a later batch) -> the claim
  takes the record over (AssetSuperseded), unless a parent was registered after the commit
  (ParentAfterCommit).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import ape
import pytest
from eth_abi import encode
from eth_utils import keccak

from agents.core.merkle import BatchTree
from tests.contracts.helpers import (
    FIELD_MODULUS,
    NONE,
    REJECT,
    URI,
    ZERO_ADDRESS,
    asset_record,
    attach_terms,
    bind_verifier,
    buy_license,
    digest,
    field_commitment,
    params_document,
    register_asset,
    register_model,
    reverts,
)
from zkml.evm import proven_digest

pytestmark = pytest.mark.chain


# --- single registration ------------------------------------------------------------------


@pytest.mark.smoke  # also on anvil
def test_register_mints_token_and_stores_record(core, model_id, creator):
    record = asset_record("cat.png", creator, model_id)
    receipt = register_asset(core.provenance, creator, record)
    token_id = int.from_bytes(record.content_digest, "big")
    assert core.provenance.ownerOf(token_id) == creator.address
    assert core.provenance.tokenURI(token_id) == URI
    stored = core.provenance.getAsset(record.content_digest)
    assert stored.creator == creator.address
    assert stored.modelId == model_id
    assert stored.depth == 0
    assert stored.parentCount == 0
    assert stored.paramsDigest == record.params_digest
    assert stored.inputBinding == input_binding(record)
    assert core.provenance.exists(record.content_digest)
    assert core.provenance.creatorOf(record.content_digest) == creator.address
    events = receipt.events.filter(core.provenance.AssetRegistered)
    assert len(events) == 1
    assert events[0].contentDigest == record.content_digest
    assert events[0].batchId == 0
    assert events[0].seq == stored.seq == 0
    assert core.provenance.assetCount() == 1


def test_the_proven_digest_is_the_top_253_bits_of_the_digests_keccak(core):
    """`provenDigestOf` (how proofs name assets) equals the Python twin, and keeps every bit of
    the digest: neighbours that differ in their lowest bits get unrelated proven digests."""
    base = digest("proven")
    for d in (b"\x00" * 32, b"\xff" * 32, base):
        value = int(core.provenance.provenDigestOf(d))
        assert value == int.from_bytes(keccak(d), "big") >> 3 == proven_digest(d)
        assert value < 2**253
    for bit in range(3):
        neighbour = base[:31] + bytes([base[31] ^ (1 << bit)])
        assert int(core.provenance.provenDigestOf(neighbour)) != int(core.provenance.provenDigestOf(base))


def test_registration_numbers_count_up_and_carry_the_input_binding(core, model_id, creator):
    plain = asset_record("numbered-0", creator, model_id, commitment=b"\x00" * 32)
    committed = asset_record("numbered-1", creator, model_id, commitment=b"\x07" * 32)
    register_asset(core.provenance, creator, plain)
    receipt = register_asset(core.provenance, creator, committed)
    assert core.provenance.getAsset(plain.content_digest).seq == 0
    assert core.provenance.getAsset(plain.content_digest).inputBinding == b"\x00" * 32
    stored = core.provenance.getAsset(committed.content_digest)
    # The binding hashes the proven digest (top 253 bits of the digest's keccak) with the commitment.
    expected = keccak(
        encode(["uint256", "uint256"], [proven_digest(committed.content_digest), int.from_bytes(b"\x07" * 32, "big")])
    )
    assert (stored.seq, stored.inputBinding) == (1, expected)
    (event,) = receipt.events.filter(core.provenance.AssetRegistered)
    assert (event.seq, event.inputCommitment) == (1, b"\x07" * 32)


def test_register_by_approved_registrar(core, model_id, creator, stranger):
    core.provenance.setRegistrar(stranger, True, sender=creator)
    assert core.provenance.isRegistrar(creator, stranger)
    register_asset(core.provenance, stranger, asset_record("a", creator, model_id))
    assert core.provenance.creatorOf(digest("a")) == creator.address


def test_register_reverts_when_caller_not_creator(core, model_id, creator, stranger):
    with ape.reverts(
        core.provenance.ProvenanceRegistry__NotAuthorized, creator=creator.address, caller=stranger.address
    ):
        register_asset(core.provenance, stranger, asset_record("a", creator, model_id))


def test_register_reverts_after_registrar_revoked(core, model_id, creator, stranger):
    core.provenance.setRegistrar(stranger, True, sender=creator)
    receipt = core.provenance.setRegistrar(stranger, False, sender=creator)
    assert not receipt.events.filter(core.provenance.RegistrarSet)[0].approved
    with ape.reverts(core.provenance.ProvenanceRegistry__NotAuthorized):
        register_asset(core.provenance, stranger, asset_record("a", creator, model_id))


def test_register_reverts_on_zero_digest(core, model_id, creator):
    record = asset_record("a", creator, model_id)
    bad = record.as_tuple()
    bad = (b"\x00" * 32, *bad[1:])
    with ape.reverts(core.provenance.ProvenanceRegistry__ZeroContentDigest):
        core.provenance.register(bad, [], sender=creator)


def test_register_reverts_on_zero_creator(core, model_id, creator):
    record = asset_record("a", ZERO_ADDRESS, model_id)
    # The zero address cannot approve anyone, so the authorization check fails first.
    with ape.reverts(core.provenance.ProvenanceRegistry__NotAuthorized):
        register_asset(core.provenance, creator, record)


def test_register_reverts_when_digest_registered_twice(core, model_id, creator, other_creator):
    record = asset_record("a", creator, model_id)
    register_asset(core.provenance, creator, record)
    with ape.reverts(core.provenance.ProvenanceRegistry__AlreadyRegistered, contentDigest=record.content_digest):
        register_asset(core.provenance, creator, record)
    copy = asset_record("a", other_creator, model_id)
    with ape.reverts(core.provenance.ProvenanceRegistry__AlreadyRegistered):
        register_asset(core.provenance, other_creator, copy)
    assert core.provenance.balanceOf(creator) == 1


def test_register_reverts_on_unknown_or_retired_model(core, model_id, creator, developer):
    with ape.reverts(core.provenance.ProvenanceRegistry__ModelNotActive, modelId=0):
        register_asset(core.provenance, creator, asset_record("a", creator, 0))
    with ape.reverts(core.provenance.ProvenanceRegistry__ModelNotActive, modelId=99):
        register_asset(core.provenance, creator, asset_record("a", creator, 99))
    core.models.retire(model_id, sender=developer)
    with ape.reverts(core.provenance.ProvenanceRegistry__ModelNotActive, modelId=model_id):
        register_asset(core.provenance, creator, asset_record("a", creator, model_id))


@pytest.mark.parametrize("length", [0, 257])
def test_register_reverts_on_bad_uri(core, model_id, creator, length):
    with ape.reverts(core.provenance.ProvenanceRegistry__BadMetadataURI, length=length, maxLength=256):
        register_asset(core.provenance, creator, asset_record("a", creator, model_id, uri="x" * length))


def test_register_accepts_uri_at_max_length(core, model_id, creator):
    register_asset(core.provenance, creator, asset_record("a", creator, model_id, uri="x" * 256))
    assert core.provenance.tokenURI(int.from_bytes(digest("a"), "big")) == "x" * 256


# --- lineage ------------------------------------------------------------------------------


def _original_with_terms(core, model_id, creator, label, **terms):  # type: ignore[no-untyped-def]
    record = asset_record(label, creator, model_id)
    register_asset(core.provenance, creator, record)
    terms_id = attach_terms(core.licenses, creator, record.content_digest, **terms)
    return record.content_digest, terms_id


@pytest.mark.smoke  # also on anvil
def test_derivative_with_licence_records_parent_share_and_depth(core, model_id, creator, other_creator):
    parent, terms_id = _original_with_terms(core, model_id, creator, "parent", derivative_bps=1_200)
    licence = buy_license(core.licenses, other_creator, terms_id)
    child = asset_record("child", other_creator, model_id, parents=(parent,))
    register_asset(core.provenance, other_creator, child, [licence])
    stored = core.provenance.getAsset(child.content_digest)
    assert stored.depth == 1
    assert stored.parentCount == 1
    parents, shares = core.provenance.parentsOf(child.content_digest)
    assert list(parents) == [parent]
    assert list(shares) == [1_200]
    # One licence unit was consumed.
    assert core.licenses.balanceOf(other_creator, licence) == 0


def test_derivative_reverts_without_licence_of_each_parent(core, model_id, creator, other_creator):
    p1, t1 = _original_with_terms(core, model_id, creator, "p1")
    p2, _ = _original_with_terms(core, model_id, creator, "p2")
    licence1 = buy_license(core.licenses, other_creator, t1)
    parents = tuple(sorted((p1, p2)))
    child = asset_record("child", other_creator, model_id, parents=parents)
    # The licence of p1 offered for both parents: the one for p2 is refused.
    with ape.reverts(core.licenses.LicenseManager__LicenseNotForAsset, licenseId=licence1, parent=p2):
        register_asset(core.provenance, other_creator, child, [licence1, licence1])
    with ape.reverts(core.licenses.LicenseManager__LicenseNotForAsset):
        # A licence of p1 offered for p2.
        register_asset(
            core.provenance, other_creator, asset_record("c2", other_creator, model_id, parents=(p2,)), [licence1]
        )
    # A licence id for a parent that the creator never bought.
    _, t2 = _original_with_terms(core, model_id, creator, "p3")
    unbought = (t2 << 64) | (2**64 - 1)
    p3 = digest("p3")
    with ape.reverts(core.licenses.LicenseManager__NoLicense, holder=other_creator.address, licenseId=unbought):
        register_asset(
            core.provenance, other_creator, asset_record("c3", other_creator, model_id, parents=(p3,)), [unbought]
        )


def test_derivative_reverts_when_licence_forbids_derivatives(core, model_id, creator, other_creator):
    parent, terms_id = _original_with_terms(core, model_id, creator, "p", derivative_bps=0, derivatives=False)
    licence = buy_license(core.licenses, other_creator, terms_id)
    with ape.reverts(core.licenses.LicenseManager__DerivativesNotAllowed, licenseId=licence):
        register_asset(
            core.provenance, other_creator, asset_record("c", other_creator, model_id, parents=(parent,)), [licence]
        )


def test_derivative_reverts_when_licence_expired(core, model_id, creator, other_creator, chain):
    parent, terms_id = _original_with_terms(core, model_id, creator, "p", duration=3_600)
    licence = buy_license(core.licenses, other_creator, terms_id)
    chain.pending_timestamp += 3_601
    with ape.reverts(core.licenses.LicenseManager__LicenseExpired):
        register_asset(
            core.provenance, other_creator, asset_record("c", other_creator, model_id, parents=(parent,)), [licence]
        )


def test_derivative_reverts_on_self_parent(core, model_id, creator):
    record = asset_record("self", creator, model_id, parents=(digest("self"),))
    with ape.reverts(core.provenance.ProvenanceRegistry__SelfParent, contentDigest=digest("self")):
        register_asset(core.provenance, creator, record, [1])


def test_derivative_reverts_on_duplicate_and_unsorted_parents(core, model_id, creator, other_creator):
    p1, _ = _original_with_terms(core, model_id, creator, "p1")
    p2, _ = _original_with_terms(core, model_id, creator, "p2")
    dup = asset_record("c", other_creator, model_id)
    dup_tuple = (*dup.as_tuple()[:5], [p1, p1], URI)
    with ape.reverts(core.provenance.ProvenanceRegistry__DuplicateParent, parent=p1):
        core.provenance.register(dup_tuple, [1, 1], sender=other_creator)
    low, high = sorted((p1, p2))
    unsorted = (*dup.as_tuple()[:5], [high, low], URI)
    with ape.reverts(core.provenance.ProvenanceRegistry__ParentsNotSorted, index=1):
        core.provenance.register(unsorted, [1, 1], sender=other_creator)


def test_derivative_reverts_on_unknown_parent(core, model_id, creator):
    ghost = digest("never registered")
    with ape.reverts(core.provenance.ProvenanceRegistry__UnknownParent, parent=ghost):
        register_asset(core.provenance, creator, asset_record("c", creator, model_id, parents=(ghost,)), [1])


def test_derivative_reverts_on_licence_count_mismatch(core, model_id, creator):
    p, _ = _original_with_terms(core, model_id, creator, "p")
    with ape.reverts(core.provenance.ProvenanceRegistry__LicenseCountMismatch, parents=1, licenses=0):
        register_asset(core.provenance, creator, asset_record("c", creator, model_id, parents=(p,)), [])


def test_derivative_reverts_past_max_parents(core, model_id, creator):
    parents = tuple(digest(f"p{i}") for i in range(17))
    with ape.reverts(core.provenance.ProvenanceRegistry__TooManyParents, count=17, maxParents=16):
        register_asset(core.provenance, creator, asset_record("c", creator, model_id, parents=parents), list(range(17)))


def test_derivative_at_max_parents_and_royalty_stack_cap(core, model_id, creator, other_creator):
    # Model 15% + fee 2.5% + 16 parents: 16 x 500 = 80% -> 97.5%: allowed.
    licences = []
    parents = []
    for i in range(16):
        p, t = _original_with_terms(core, model_id, creator, f"p{i}", derivative_bps=500, price=0)
        parents.append(p)
        licences.append((p, buy_license(core.licenses, other_creator, t)))
    licences.sort()
    record = asset_record("c", other_creator, model_id, parents=tuple(parents))
    register_asset(core.provenance, other_creator, record, [lic for _, lic in licences])
    assert core.provenance.getAsset(record.content_digest).parentCount == 16


def test_derivative_reverts_when_royalty_stack_exceeds_100_percent(core, model_id, creator, other_creator):
    # Model 15% + fee 2.5% + 2 x 50% = 117.5%.
    pairs = []
    for i in range(2):
        p, t = _original_with_terms(core, model_id, creator, f"p{i}", derivative_bps=5_000, price=0)
        pairs.append((p, buy_license(core.licenses, other_creator, t)))
    pairs.sort()
    record = asset_record("c", other_creator, model_id, parents=tuple(p for p, _ in pairs))
    with ape.reverts(core.provenance.ProvenanceRegistry__RoyaltyStackTooHigh, totalBps=11_750):
        register_asset(core.provenance, other_creator, record, [lic for _, lic in pairs])


def test_depth_bound_at_and_past_max(core, model_id, creator):
    # A chain of derivatives from one creator: depth 32 is allowed, 33 is not.
    parent, terms_id = _original_with_terms(core, model_id, creator, "d0", derivative_bps=0, price=0)
    for depth in range(1, 34):
        licence = buy_license(core.licenses, creator, terms_id)
        record = asset_record(f"d{depth}", creator, model_id, parents=(parent,))
        if depth == 33:
            with ape.reverts(core.provenance.ProvenanceRegistry__TooDeep, depth=33, maxDepth=32):
                register_asset(core.provenance, creator, record, [licence])
            break
        register_asset(core.provenance, creator, record, [licence])
        assert core.provenance.getAsset(record.content_digest).depth == depth
        parent = record.content_digest
        terms_id = attach_terms(core.licenses, creator, parent, derivative_bps=0, price=0)


def test_lineage_cannot_be_added_after_registration(core, model_id, creator):
    # Parents are fixed at registration; registering the same digest again with parents (the only
    # way to name them) reverts, so an asset with children can never gain a parent.
    p, t = _original_with_terms(core, model_id, creator, "p")
    child = asset_record("child", creator, model_id, parents=(p,))
    register_asset(core.provenance, creator, child, [buy_license(core.licenses, creator, t)])
    again = asset_record("p", creator, model_id, parents=(child.content_digest,))
    with ape.reverts(core.provenance.ProvenanceRegistry__AlreadyRegistered):
        register_asset(core.provenance, creator, again, [1])


# --- batches ------------------------------------------------------------------------------


def _batch(core, model_id, creator, n):  # type: ignore[no-untyped-def]
    records = [asset_record(f"b{i}", creator, model_id) for i in range(n)]
    return records, BatchTree([r.leaf() for r in records])


def test_leaf_and_root_match_python(core, model_id, creator):
    records, tree = _batch(core, model_id, creator, 7)
    derivative = asset_record("leafy", creator, model_id, parents=(digest("p1"), digest("p2")))
    derivative = replace(derivative, license_ids=(5 << 64 | 77, 2**256 - 1))
    for r in [*records, derivative]:
        assert core.provenance.leafOf(r.as_tuple(), list(r.license_ids)) == r.leaf()
    # The licences are part of the leaf.
    assert replace(derivative, license_ids=(5 << 64 | 78, 2**256 - 1)).leaf() != derivative.leaf()
    assert core.provenance.rootOf([r.leaf() for r in records]) == tree.root


def test_batch_with_leaves_stores_root_and_members_claim(core, model_id, creator, stranger):
    records, tree = _batch(core, model_id, creator, 5)
    receipt = core.provenance.registerBatchLeaves(list(tree.leaves), sender=creator)
    event = receipt.events.filter(core.provenance.BatchCommitted)[0]
    assert event.batchId == 1 and event.root == tree.root and event.leafCount == 5 and event.leavesOnChain
    batch = core.provenance.getBatch(1)
    assert batch.root == tree.root and batch.submitter == creator.address and batch.leafCount == 5
    # Anyone may materialize a member; the token goes to its creator.
    for i in (4, 0, 2):
        receipt = core.provenance.claimFromBatch(1, i, records[i].as_tuple(), tree.proof(i), [], sender=stranger)
        assert receipt.events.filter(core.provenance.AssetRegistered)[0].batchId == 1
        assert core.provenance.ownerOf(int.from_bytes(records[i].content_digest, "big")) == creator.address
    with ape.reverts(core.provenance.ProvenanceRegistry__AlreadyRegistered):
        core.provenance.claimFromBatch(1, 4, records[4].as_tuple(), tree.proof(4), [], sender=stranger)


def test_batch_root_only_mode(core, model_id, creator, stranger, chain):
    records, tree = _batch(core, model_id, creator, 9)
    register_asset(core.provenance, creator, asset_record("before-the-batch", creator, model_id))
    receipt = core.provenance.registerBatchRoot(tree.root, 9, "ipfs://bafy-manifest", sender=creator)
    event = receipt.events.filter(core.provenance.BatchCommitted)[0]
    assert event.manifestURI == "ipfs://bafy-manifest" and not event.leavesOnChain
    batch = core.provenance.getBatch(1)
    assert (batch.leafCount, batch.assetsBefore) == (9, 1)
    assert batch.committedAt == chain.blocks.head.timestamp
    core.provenance.claimFromBatch(1, 8, records[8].as_tuple(), tree.proof(8), [], sender=stranger)
    assert core.provenance.exists(records[8].content_digest)


def test_batch_size_bounds(core, creator):
    with ape.reverts(core.provenance.ProvenanceRegistry__BadBatchSize, leafCount=0):
        core.provenance.registerBatchLeaves([], sender=creator)
    with ape.reverts(core.provenance.ProvenanceRegistry__BadBatchSize, leafCount=4_097, maxLeaves=4_096):
        core.provenance.registerBatchLeaves([digest(str(i)) for i in range(4_097)], sender=creator)
    with ape.reverts(core.provenance.ProvenanceRegistry__BadBatchSize, leafCount=0):
        core.provenance.registerBatchRoot(digest("r"), 0, "ipfs://m", sender=creator)
    with ape.reverts(core.provenance.ProvenanceRegistry__BadBatchSize, leafCount=2**20 + 1):
        core.provenance.registerBatchRoot(digest("r"), 2**20 + 1, "ipfs://m", sender=creator)
    core.provenance.registerBatchRoot(digest("r"), 2**20, "ipfs://m", sender=creator)
    with ape.reverts(core.provenance.ProvenanceRegistry__BadBatchCommitment):
        core.provenance.registerBatchRoot(b"\x00" * 32, 1, "ipfs://m", sender=creator)
    with ape.reverts(core.provenance.ProvenanceRegistry__BadBatchCommitment):
        core.provenance.registerBatchRoot(digest("r"), 1, "", sender=creator)
    with ape.reverts(core.provenance.ProvenanceRegistry__BadMetadataURI, length=257):
        core.provenance.registerBatchRoot(digest("r"), 1, "x" * 257, sender=creator)


def test_claim_rejects_inner_node_as_leaf_swapped_siblings_and_empty_proof(core, model_id, creator):
    records, tree = _batch(core, model_id, creator, 4)
    core.provenance.registerBatchLeaves(list(tree.leaves), sender=creator)
    proof = tree.proof(0)
    # Swapped siblings: the same hashes on the other side give another root.
    with ape.reverts(core.provenance.ProvenanceRegistry__InvalidProof, batchId=1, index=1):
        core.provenance.claimFromBatch(1, 1, records[0].as_tuple(), proof, [], sender=creator)
    # Empty proof for a batch of more than one leaf.
    with ape.reverts(core.provenance.ProvenanceRegistry__BadProofLength, given=0, expected=2):
        core.provenance.claimFromBatch(1, 0, records[0].as_tuple(), [], [], sender=creator)
    # Too long a proof.
    with ape.reverts(core.provenance.ProvenanceRegistry__BadProofLength, given=3, expected=2):
        core.provenance.claimFromBatch(1, 0, records[0].as_tuple(), [*proof, proof[0]], [], sender=creator)
    # Index out of range.
    with ape.reverts(core.provenance.ProvenanceRegistry__LeafIndexOutOfRange, index=4, leafCount=4):
        core.provenance.claimFromBatch(1, 4, records[0].as_tuple(), proof, [], sender=creator)
    # A record whose leaf is not in the batch.
    outsider = asset_record("outsider", creator, model_id)
    with ape.reverts(core.provenance.ProvenanceRegistry__InvalidProof):
        core.provenance.claimFromBatch(1, 0, outsider.as_tuple(), proof, [], sender=creator)


def test_inner_node_cannot_pass_as_a_leaf(core, model_id, creator):
    # The inner nodes of a 4-leaf tree are themselves the leaves of a 2-leaf tree with the same
    # root. A batch fixes its leaf count, so an inner node offered as a leaf of the 4-leaf batch
    # needs a 2-sibling proof and cannot stop one level early; and claims hash a record with the
    # 0x00 prefix, so no record's leaf equals an inner node.
    records, tree = _batch(core, model_id, creator, 4)
    inner = tree.levels[1]
    assert core.provenance.processBatchProof(inner[0], 0, 2, [inner[1]]) == tree.root
    with ape.reverts(core.provenance.ProvenanceRegistry__BadProofLength, given=1, expected=2):
        core.provenance.processBatchProof(inner[0], 0, 4, [inner[1]])
    assert core.provenance.processBatchProof(inner[0], 0, 4, tree.proof(0)) != tree.root
    assert all(r.leaf() not in inner for r in records)


def test_reused_leaf_in_one_batch_mints_once(core, model_id, creator):
    record = asset_record("dup", creator, model_id)
    tree = BatchTree([record.leaf(), record.leaf(), record.leaf()])
    core.provenance.registerBatchLeaves(list(tree.leaves), sender=creator)
    core.provenance.claimFromBatch(1, 0, record.as_tuple(), tree.proof(0), [], sender=creator)
    with ape.reverts(core.provenance.ProvenanceRegistry__AlreadyRegistered):
        core.provenance.claimFromBatch(1, 2, record.as_tuple(), tree.proof(2), [], sender=creator)
    assert core.provenance.balanceOf(creator) == 1


def test_claim_reverts_for_unknown_batch(core, model_id, creator):
    with ape.reverts(core.provenance.ProvenanceRegistry__UnknownBatch, batchId=1):
        core.provenance.claimFromBatch(1, 0, asset_record("a", creator, model_id).as_tuple(), [], [], sender=creator)
    with ape.reverts(core.provenance.ProvenanceRegistry__UnknownBatch, batchId=0):
        core.provenance.getBatch(0)


def test_claim_reverts_when_submitter_not_authorized_by_member_creator(core, model_id, creator, stranger):
    # A stranger commits a batch naming `creator` as creator: it cannot be claimed, and an
    # approval given after the commitment does not make it claimable (authority as of the commit).
    records, tree = _batch(core, model_id, creator, 2)
    core.provenance.registerBatchLeaves(list(tree.leaves), sender=stranger)
    with ape.reverts(
        core.provenance.ProvenanceRegistry__NotAuthorized, creator=creator.address, caller=stranger.address
    ):
        core.provenance.claimFromBatch(1, 0, records[0].as_tuple(), tree.proof(0), [], sender=creator)
    receipt = core.provenance.setRegistrar(stranger, True, sender=creator)
    event = receipt.events.filter(core.provenance.RegistrarSet)[0]
    assert (event.approved, event.firstBatchId) == (True, 2)
    assert core.provenance.registrarSince(creator, stranger) == 2 and core.provenance.isRegistrar(creator, stranger)
    with ape.reverts(
        core.provenance.ProvenanceRegistry__NotAuthorized, creator=creator.address, caller=stranger.address
    ):
        core.provenance.claimFromBatch(1, 0, records[0].as_tuple(), tree.proof(0), [], sender=creator)
    # A batch the approved registrar commits afterwards is claimable.
    core.provenance.registerBatchLeaves(list(tree.leaves), sender=stranger)
    core.provenance.claimFromBatch(2, 0, records[0].as_tuple(), tree.proof(0), [], sender=creator)


def test_registrar_authority_counts_as_of_the_commitment(core, model_id, creator, stranger, developer, chain):
    # The review's scenario: a registrar commits a batch in the creator's name before it is
    # approved, the model is retired, then the creator approves the registrar. The old batch's
    # commitment time must not let it register with the retired model: it stays unclaimable.
    records, tree = _batch(core, model_id, creator, 2)
    core.provenance.registerBatchLeaves(list(tree.leaves), sender=stranger)
    chain.pending_timestamp += 10
    core.models.retire(model_id, sender=developer)
    core.provenance.setRegistrar(stranger, True, sender=creator)
    with ape.reverts(core.provenance.ProvenanceRegistry__NotAuthorized):
        core.provenance.claimFromBatch(1, 0, records[0].as_tuple(), tree.proof(0), [], sender=stranger)


def test_registrar_approval_keeps_its_start_and_revocation_stops_pending_batches(core, model_id, creator, stranger):
    records, tree = _batch(core, model_id, creator, 3)
    core.provenance.setRegistrar(stranger, True, sender=creator)
    core.provenance.registerBatchLeaves(list(tree.leaves), sender=stranger)
    # Approving again does not move the start past batches already committed.
    core.provenance.setRegistrar(stranger, True, sender=creator)
    assert core.provenance.registrarSince(creator, stranger) == 1
    core.provenance.claimFromBatch(1, 0, records[0].as_tuple(), tree.proof(0), [], sender=stranger)
    # Revoking stops the claims of the registrar's pending batches and its direct registrations.
    receipt = core.provenance.setRegistrar(stranger, False, sender=creator)
    assert receipt.events.filter(core.provenance.RegistrarSet)[0].firstBatchId == 0
    assert core.provenance.registrarSince(creator, stranger) == 0
    with ape.reverts(core.provenance.ProvenanceRegistry__NotAuthorized):
        core.provenance.claimFromBatch(1, 1, records[1].as_tuple(), tree.proof(1), [], sender=stranger)
    with ape.reverts(core.provenance.ProvenanceRegistry__NotAuthorized):
        register_asset(core.provenance, stranger, records[2])


def test_claim_after_model_retired_only_for_batches_committed_before(core, model_id, creator, developer, chain):
    records, tree = _batch(core, model_id, creator, 2)
    core.provenance.registerBatchLeaves(list(tree.leaves), sender=creator)
    chain.pending_timestamp += 10
    core.models.retire(model_id, sender=developer)
    core.provenance.claimFromBatch(1, 0, records[0].as_tuple(), tree.proof(0), [], sender=creator)
    chain.pending_timestamp += 10
    core.provenance.registerBatchLeaves(list(tree.leaves), sender=creator)
    with ape.reverts(core.provenance.ProvenanceRegistry__ModelNotActive):
        core.provenance.claimFromBatch(2, 1, records[1].as_tuple(), tree.proof(1), [], sender=creator)


# --- ERC-165 / 2981 / 7007 ----------------------------------------------------------------


def test_supports_interfaces(core):
    def iface(*sigs: str) -> bytes:
        value = 0
        for s in sigs:
            value ^= int.from_bytes(keccak(text=s)[:4], "big")
        return value.to_bytes(4, "big")

    assert core.provenance.supportsInterface(iface("royaltyInfo(uint256,uint256)"))
    assert core.provenance.supportsInterface(
        iface("addAigcData(uint256,bytes,bytes,bytes)", "verify(bytes,bytes,bytes)")
    )
    assert core.provenance.supportsInterface(bytes.fromhex("80ac58cd"))  # ERC-721
    assert not core.provenance.supportsInterface(bytes.fromhex("deadbeef"))


def test_royalty_info_pays_creator(core, model_id, creator, other_creator):
    record = asset_record("a", creator, model_id)
    register_asset(core.provenance, creator, record)
    token = int.from_bytes(record.content_digest, "big")
    core.provenance.transferFrom(creator, other_creator, token, sender=creator)
    receiver, amount = core.provenance.royaltyInfo(token, 10_000)
    assert receiver == creator.address and amount == 500
    assert core.provenance.royaltyInfo(123, 10_000) == (ZERO_ADDRESS, 0)


def test_token_uri_reverts_for_unknown_token(core):
    with reverts(core.provenance.ERC721NonexistentToken, tokenId=5):
        core.provenance.tokenURI(5)


@dataclass
class Verified:
    """A registered asset and a stand-in proof of it by an attesting model (TestVerifier accepts
    a proof equal to keccak256(abi.encode(instances))); real EZKL proofs of the same layout are
    tested in test_attest_inference.py."""

    record: Any
    attester: int
    instances: list[int]
    prompt: bytes

    def proof(self, instances: list[int] | None = None, model: int | None = None) -> bytes:
        shown = self.instances if instances is None else instances
        zk = keccak(encode(["uint256[]"], [shown]))
        return encode(["uint256", "bytes", "uint256[]"], [self.attester if model is None else model, zk, shown])


def input_binding(record: Any) -> bytes:
    """What `getAsset(...).inputBinding` is for a record."""
    commitment = int.from_bytes(record.input_commitment, "big")
    return keccak(encode(["uint256", "uint256"], [proven_digest(record.content_digest), commitment]))


def seq_of(core: Any, asset: bytes) -> int:
    return int(core.provenance.getAsset(asset).seq)


def attest_layout(pairs: list[tuple[int, bytes]], score: int = 1234) -> list[int]:
    """attestInference's instances for (commitment, content digest) pairs."""
    return [c for c, _ in pairs] + [score] * len(pairs) + [proven_digest(d) for _, d in pairs]


@pytest.fixture
def verified(project, core, model_id, creator, developer) -> Verified:  # type: ignore[no-untyped-def]
    verifier = developer.deploy(project.TestVerifier)
    attester = register_model(core.models, developer, label="attesting-head", data_bps=0, developer_bps=0)
    bind_verifier(core.models, developer, attester, verifier, digest("vk"))
    record = asset_record("proven", creator, model_id, commitment=field_commitment("proven"))
    register_asset(core.provenance, creator, record)
    instances = attest_layout([(int.from_bytes(record.input_commitment, "big"), record.content_digest)])
    return Verified(record, attester, instances, params_document("proven"))


@pytest.mark.smoke  # also on anvil
def test_erc7007_verify_and_add_aigc_data(core, verified, creator):
    v = verified
    assert core.provenance.verify(v.prompt, v.record.content_digest, v.proof())
    token = int.from_bytes(v.record.content_digest, "big")
    receipt = core.provenance.addAigcData(token, v.prompt, v.record.content_digest, v.proof(), sender=creator)
    assert len(receipt.events.filter(core.provenance.AigcData)) == 1


def test_erc7007_verify_finds_the_asset_anywhere_in_a_batch_proof(core, verified, model_id, creator):
    other = asset_record("batch-mate", creator, model_id, commitment=field_commitment("batch-mate"))
    register_asset(core.provenance, creator, other)
    pairs = [(int.from_bytes(other.input_commitment, "big"), other.content_digest)]
    pairs.append((int.from_bytes(verified.record.input_commitment, "big"), verified.record.content_digest))
    proof = verified.proof(attest_layout(pairs))
    assert core.provenance.verify(verified.prompt, verified.record.content_digest, proof)
    assert core.provenance.verify(params_document("batch-mate"), other.content_digest, proof)


def test_erc7007_verify_false_cases(core, verified, model_id, creator):
    v = verified
    asset, commitment = v.record.content_digest, int.from_bytes(v.record.input_commitment, "big")
    # The prompt is bound: only the document whose sha256 is the asset's paramsDigest verifies.
    assert not core.provenance.verify(b"a cat", asset, v.proof())
    assert not core.provenance.verify(b"", asset, v.proof())
    # The proof must name this asset's content digest beside its commitment (a proof made for
    # another asset with the same commitment does not verify).
    assert not core.provenance.verify(v.prompt, asset, v.proof(attest_layout([(commitment, digest("other"))])))
    # Commitment and digest at different positions of a batch proof.
    crossed = attest_layout([(commitment, digest("x")), (7, asset)])
    assert not core.provenance.verify(v.prompt, asset, v.proof(crossed))
    # Not the attestation layout (old two-instance proofs), or an instance outside the field.
    assert not core.provenance.verify(v.prompt, asset, v.proof([commitment, 1234]))
    assert not core.provenance.verify(v.prompt, asset, v.proof([*v.instances, 0]))
    assert not core.provenance.verify(
        v.prompt, asset, v.proof([*v.instances[:1], FIELD_MODULUS + 1234, *v.instances[2:]])
    )
    # The verifier rejects (the proof bytes are for other instances).
    tampered = encode(["uint256", "bytes", "uint256[]"], [v.attester, keccak(b"x"), v.instances])
    assert not core.provenance.verify(v.prompt, asset, tampered)
    # Unknown model ids, a model with no verifier, an unknown asset, wrong length.
    assert not core.provenance.verify(v.prompt, asset, v.proof(model=0))
    assert not core.provenance.verify(v.prompt, asset, v.proof(model=99))
    assert not core.provenance.verify(v.prompt, asset, v.proof(model=model_id))
    assert not core.provenance.verify(v.prompt, digest("nope"), v.proof())
    assert not core.provenance.verify(v.prompt, b"\x01" * 31, v.proof())
    # An asset registered without a commitment has nothing a proof can bind to.
    bare = asset_record("bare", creator, model_id, commitment=b"\x00" * 32)
    register_asset(core.provenance, creator, bare)
    bare_proof = v.proof(attest_layout([(0, bare.content_digest)]))
    assert not core.provenance.verify(params_document("bare"), bare.content_digest, bare_proof)


def test_add_aigc_data_reverts(core, verified, creator, stranger):
    v = verified
    token = int.from_bytes(v.record.content_digest, "big")
    with ape.reverts(core.provenance.ProvenanceRegistry__NotOwnerOrCreator):
        core.provenance.addAigcData(token, v.prompt, v.record.content_digest, v.proof(), sender=stranger)
    with ape.reverts(core.provenance.ProvenanceRegistry__AigcProofRejected):
        core.provenance.addAigcData(token, v.prompt, digest("other"), v.proof(), sender=creator)
    with ape.reverts(core.provenance.ProvenanceRegistry__AigcProofRejected):
        core.provenance.addAigcData(token, b"any prompt", v.record.content_digest, v.proof(), sender=creator)
    with reverts(core.provenance.ERC721NonexistentToken, tokenId=1):
        core.provenance.addAigcData(1, v.prompt, v.record.content_digest, v.proof(), sender=creator)


# --- registerMany -------------------------------------------------------------------------


@pytest.mark.smoke  # also on anvil
def test_register_many_registers_each_as_register_would(core, model_id, creator, other_creator, stranger):
    parent, terms_id = _original_with_terms(core, model_id, creator, "many-parent")
    licence = buy_license(core.licenses, other_creator, terms_id)
    core.provenance.setRegistrar(stranger, True, sender=creator)
    core.provenance.setRegistrar(stranger, True, sender=other_creator)
    records = [
        asset_record("many-a", creator, model_id),
        asset_record("many-b", other_creator, model_id, parents=(parent,)),
        asset_record("many-c", creator, model_id, commitment=b"\x07" * 32),
    ]
    before = int(core.provenance.assetCount())
    receipt = core.provenance.registerMany([r.as_tuple() for r in records], [[], [licence], []], sender=stranger)
    events = receipt.events.filter(core.provenance.AssetRegistered)
    assert [e.contentDigest for e in events] == [r.content_digest for r in records]
    assert [e.seq for e in events] == [before, before + 1, before + 2]
    assert all(e.batchId == 0 for e in events)
    for record, event in zip(records, events, strict=True):
        assert core.provenance.ownerOf(int.from_bytes(record.content_digest, "big")) == record.creator
        assert core.provenance.getAsset(record.content_digest).seq == event.seq
    assert core.provenance.getAsset(records[1].content_digest).depth == 1
    assert core.licenses.balanceOf(other_creator, licence) == 0


def test_register_many_reverts(core, model_id, creator, stranger):
    one = asset_record("many-1", creator, model_id)
    cap = int(core.provenance.MAX_REGISTER_MANY())
    with ape.reverts(core.provenance.ProvenanceRegistry__BadBatchSize, leafCount=0, maxLeaves=cap):
        core.provenance.registerMany([], [], sender=creator)
    too_many = [asset_record(f"many-{i}", creator, model_id).as_tuple() for i in range(cap + 1)]
    with ape.reverts(core.provenance.ProvenanceRegistry__BadBatchSize, leafCount=cap + 1, maxLeaves=cap):
        core.provenance.registerMany(too_many, [[]] * (cap + 1), sender=creator)
    with ape.reverts(core.provenance.ProvenanceRegistry__LicenseCountMismatch):
        core.provenance.registerMany([one.as_tuple()], [], sender=creator)
    with ape.reverts(
        core.provenance.ProvenanceRegistry__NotAuthorized, creator=creator.address, caller=stranger.address
    ):
        core.provenance.registerMany([one.as_tuple()], [[]], sender=stranger)
    # all or nothing: the second member is a copy of the first, so neither is registered
    with ape.reverts(core.provenance.ProvenanceRegistry__AlreadyRegistered, contentDigest=one.content_digest):
        core.provenance.registerMany([one.as_tuple(), one.as_tuple()], [[], []], sender=creator)
    assert not core.provenance.exists(one.content_digest)
    bad_uri = asset_record("many-uri", creator, model_id, uri="")
    with ape.reverts(core.provenance.ProvenanceRegistry__BadMetadataURI):
        core.provenance.registerMany([one.as_tuple(), bad_uri.as_tuple()], [[], []], sender=creator)
    assert not core.provenance.exists(one.content_digest)


def test_register_many_at_the_cap_fits_in_a_block(core, model_id, creator, chain):
    cap = int(core.provenance.MAX_REGISTER_MANY())
    records = [asset_record(f"cap-{i}", creator, model_id).as_tuple() for i in range(cap)]
    receipt = core.provenance.registerMany(records, [[]] * cap, sender=creator)
    assert receipt.gas_used < chain.blocks.head.gas_limit // 2
    assert int(core.provenance.assetCount()) == cap


# --- adversaries with public data: licence choice, squatting --------------------------------


def _commit(core, submitter, *records):  # type: ignore[no-untyped-def]
    tree = BatchTree([r.leaf() for r in records])
    receipt = core.provenance.registerBatchLeaves(list(tree.leaves), sender=submitter)
    return int(receipt.events.filter(core.provenance.BatchCommitted)[0].batchId), tree


def test_a_stranger_cannot_pick_the_licence_a_committed_derivative_registers_with(
    core, model_id, creator, other_creator, stranger, treasury
):
    # The review's scenario. Bob (other_creator) holds a 5% derivative licence of Alice's P and
    # commits derivative D. Alice then attaches free 50% terms, buys one of those licences TO
    # BOB, and claims D herself with it. The leaf commits D's licences, so her claim fails; any
    # claim must use the 5% licence Bob committed to.
    alice, bob = creator, other_creator
    parent, five = _original_with_terms(core, model_id, alice, "P", derivative_bps=500, price=0)
    bobs_licence = buy_license(core.licenses, bob, five)
    d = replace(asset_record("D", bob, model_id, parents=(parent,)), license_ids=(bobs_licence,))
    batch, tree = _commit(core, bob, d)
    fifty = attach_terms(core.licenses, alice, parent, derivative_bps=5_000, price=0)
    planted = buy_license(core.licenses, alice, fifty, to=bob)
    with ape.reverts(core.provenance.ProvenanceRegistry__InvalidProof, batchId=batch, index=0):
        core.provenance.claimFromBatch(batch, 0, d.as_tuple(), tree.proof(0), [planted], sender=alice)
    # A third party choosing among the licences Bob holds fails the same way.
    with ape.reverts(core.provenance.ProvenanceRegistry__InvalidProof):
        core.provenance.claimFromBatch(batch, 0, d.as_tuple(), tree.proof(0), [planted], sender=stranger)
    # Anyone may claim with the committed licence; it is Bob's 5% that is consumed.
    core.provenance.claimFromBatch(batch, 0, d.as_tuple(), tree.proof(0), [bobs_licence], sender=stranger)
    assert core.provenance.parentsOf(d.content_digest) == ([parent], [500])
    assert core.licenses.balanceOf(bob, bobs_licence) == 0 and core.licenses.balanceOf(bob, planted) == 1
    # Of 1 ETH of D's revenue Bob keeps what the 5% licence leaves him.
    eth = 10**18
    core.splitter.pay(d.content_digest, ZERO_ADDRESS, eth, sender=stranger, value=eth)
    core.splitter.distribute(d.content_digest, ZERO_ADDRESS, sender=stranger)
    assert core.splitter.balanceOf(bob, ZERO_ADDRESS) == eth * (10_000 - 250 - 1_000 - 500 - 500) // 10_000


def test_a_squatter_who_registers_a_committed_member_first_is_taken_over_by_the_claim(
    core, model_id, creator, other_creator, stranger
):
    # Alice commits a batch; Mallory learns a member's digest (published content) and registers
    # it directly before Alice claims: she becomes creator, token holder and ERC-2981 receiver,
    # attaches terms and sells the token on. The commitment came first, so Alice's claim takes
    # the record, the token and everything that follows the creator over.
    alice, mallory, buyer = creator, stranger, other_creator
    member = asset_record("committed", alice, model_id)
    batch, tree = _commit(core, alice, member)
    squat = replace(member, creator=mallory.address, input_commitment=digest("mallory's commitment"))
    register_asset(core.provenance, mallory, squat)
    squatted_seq = core.provenance.getAsset(member.content_digest).seq
    token = int.from_bytes(member.content_digest, "big")
    terms = attach_terms(core.licenses, mallory, member.content_digest, price=10**15)
    # Mallory sells herself a free derivative licence (0% to the parent) while she holds the record.
    free = attach_terms(core.licenses, mallory, member.content_digest, price=0, derivative_bps=0)
    mallorys_licence = buy_license(core.licenses, mallory, free)
    core.splitter.pay(member.content_digest, ZERO_ADDRESS, 1_000, sender=buyer, value=1_000)
    core.splitter.distribute(member.content_digest, ZERO_ADDRESS, sender=buyer)
    core.provenance.transferFrom(mallory, buyer, token, sender=mallory)
    assert core.provenance.royaltyInfo(token, 10_000)[0] == mallory.address

    receipt = core.provenance.claimFromBatch(batch, 0, member.as_tuple(), tree.proof(0), [], sender=buyer)
    (event,) = receipt.events.filter(core.provenance.AssetSuperseded)
    assert (event.previousCreator, event.creator, event.batchId, event.previousSeq) == (
        mallory.address,
        alice.address,
        batch,
        squatted_seq,
    )
    stored = core.provenance.getAsset(member.content_digest)
    assert stored.creator == alice.address and stored.seq != squatted_seq
    assert stored.inputBinding == input_binding(member)
    assert core.provenance.ownerOf(token) == alice.address
    assert core.provenance.royaltyInfo(token, 10_000)[0] == alice.address
    assert core.provenance.claimedFrom(member.content_digest) == batch
    # Terms attached under Mallory's record neither sell nor license derivatives any more (the
    # review's F3): her free 0% licence cannot register a derivative of Alice's asset.
    assert core.licenses.assetEpoch(member.content_digest) == 1
    with ape.reverts(core.licenses.LicenseManager__TermsSuperseded, termsId=terms):
        core.licenses.purchase(terms, buyer, sender=buyer, value=10**15)
    child = asset_record("mallory's derivative", mallory, model_id, parents=(member.content_digest,))
    with ape.reverts(core.licenses.LicenseManager__TermsSuperseded, termsId=free):
        register_asset(core.provenance, mallory, child, [mallorys_licence])
    with ape.reverts(core.licenses.LicenseManager__NotCreator):
        core.licenses.setTermsActive(terms, False, sender=mallory)
    # Alice's own terms sell; revenue after the takeover splits by Alice's record (the split's
    # totals started again with it, so an earlier record's floors ask nothing back).
    alices = attach_terms(core.licenses, alice, member.content_digest, price=10**15)
    core.licenses.purchase(alices, buyer, sender=buyer, value=10**15)
    mallory_before = core.splitter.balanceOf(mallory, ZERO_ADDRESS)
    core.splitter.distribute(member.content_digest, ZERO_ADDRESS, sender=buyer)
    assert core.splitter.balanceOf(mallory, ZERO_ADDRESS) == mallory_before
    assert core.splitter.balanceOf(alice, ZERO_ADDRESS) == 10**15 * (10_000 - 250 - 1_000 - 500) // 10_000
    assert core.splitter.distributedOf(member.content_digest, ZERO_ADDRESS) == 10**15
    # Nothing of Mallory's record is left to claim or prove against: claiming again reverts.
    with ape.reverts(core.provenance.ProvenanceRegistry__AlreadyRegistered):
        core.provenance.claimFromBatch(batch, 0, member.as_tuple(), tree.proof(0), [], sender=mallory)


def test_a_squatter_who_commits_later_cannot_take_the_member_back(core, model_id, creator, stranger):
    alice, mallory = creator, stranger
    member = asset_record("raced", alice, model_id)
    first, tree = _commit(core, alice, member)
    squat = replace(member, creator=mallory.address)
    later, squat_tree = _commit(core, mallory, squat)
    # Mallory claims her later batch first; Alice's earlier commitment takes it over ...
    core.provenance.claimFromBatch(later, 0, squat.as_tuple(), squat_tree.proof(0), [], sender=mallory)
    assert core.provenance.claimedFrom(member.content_digest) == later
    core.provenance.claimFromBatch(first, 0, member.as_tuple(), tree.proof(0), [], sender=alice)
    assert core.provenance.creatorOf(member.content_digest) == alice.address
    # ... and Mallory's later batch cannot take it back.
    with ape.reverts(core.provenance.ProvenanceRegistry__AlreadyRegistered):
        core.provenance.claimFromBatch(later, 0, squat.as_tuple(), squat_tree.proof(0), [], sender=mallory)
    assert core.provenance.creatorOf(member.content_digest) == alice.address


def test_a_registration_before_the_commitment_is_not_taken_over(core, model_id, creator, stranger):
    # First come, first registered still holds against commitments made later: whoever
    # registered before the batch was committed keeps the asset.
    early = asset_record("early", stranger, model_id)
    register_asset(core.provenance, stranger, early)
    late_claim = replace(early, creator=creator.address)
    batch, tree = _commit(core, creator, late_claim)
    with ape.reverts(core.provenance.ProvenanceRegistry__AlreadyRegistered):
        core.provenance.claimFromBatch(batch, 0, late_claim.as_tuple(), tree.proof(0), [], sender=creator)
    # Nor does a creator's own batch replace its own record.
    mine = asset_record("mine", creator, model_id)
    batch, tree = _commit(core, creator, mine)
    register_asset(core.provenance, creator, replace(mine, metadata_uri="ipfs://other"))
    with ape.reverts(core.provenance.ProvenanceRegistry__AlreadyRegistered):
        core.provenance.claimFromBatch(batch, 0, mine.as_tuple(), tree.proof(0), [], sender=creator)


def test_a_takeover_cannot_close_a_lineage_cycle(core, model_id, creator, stranger):
    # A committer tries to turn the takeover into a cycle: it commits D naming as parent an asset
    # P that does not exist yet, an accomplice registers D directly after the commitment and
    # then P as a derivative of D, and the claim of D (naming P) would make D its own ancestor.
    # A takeover may only name parents registered before the commitment.
    committer, accomplice = creator, stranger
    p = asset_record("P-later", accomplice, model_id)
    d = replace(asset_record("D-cycle", committer, model_id, parents=(p.content_digest,)), license_ids=(1 << 64,))
    batch, tree = _commit(core, committer, d)
    squat = asset_record("D-cycle", accomplice, model_id)
    register_asset(core.provenance, accomplice, squat)
    t = attach_terms(core.licenses, accomplice, squat.content_digest, price=0, derivative_bps=0)
    licence = buy_license(core.licenses, accomplice, t)
    child = replace(p, parents=(squat.content_digest,))
    register_asset(core.provenance, accomplice, child, [licence])
    p_seq = core.provenance.getAsset(p.content_digest).seq
    assets_before = core.provenance.getBatch(batch).assetsBefore
    with ape.reverts(
        core.provenance.ProvenanceRegistry__ParentAfterCommit,
        parent=p.content_digest,
        parentSeq=p_seq,
        assetsBefore=assets_before,
    ):
        core.provenance.claimFromBatch(batch, 0, d.as_tuple(), tree.proof(0), list(d.license_ids), sender=committer)


# --- the verifier's code is pinned ------------------------------------------------------------


@pytest.mark.anvil
def test_a_verifier_whose_code_changed_attests_and_verifies_nothing(project, core, verified, creator, developer, chain):
    # A verifier's code is pinned when it is bound. Code cannot change under Cancun's SELFDESTRUCT
    # rules, but chains differ (and a CREATE2 + SELFDESTRUCT verifier did it before): anvil's
    # setCode stands in for such a chain. Afterwards nothing is attested or verified through it.
    if chain.provider.name != "foundry":
        pytest.skip("changing a contract's code needs anvil_setCode: runs in the anvil pass")
    verifier, _, code_hash = core.models.verifierOf(verified.attester)
    v = verified
    assert core.provenance.verify(v.prompt, v.record.content_digest, v.proof())
    always_true = bytes(chain.provider.get_code(core.splitter.address))  # any other code will do
    chain.provider.make_request("anvil_setCode", [verifier, "0x" + always_true.hex()])
    assert keccak(bytes(chain.provider.get_code(verifier))) != code_hash
    assert not core.provenance.verify(v.prompt, v.record.content_digest, v.proof())
    zk = keccak(encode(["uint256[]"], [v.instances]))
    with ape.reverts(core.provenance.ProvenanceRegistry__VerifierCodeChanged, modelId=v.attester, verifier=verifier):
        core.provenance.attestInference(
            v.attester, [seq_of(core, v.record.content_digest)], zk, v.instances, sender=creator
        )


def test_a_commitment_reserves_its_members_for_the_priority_window_only(core, model_id, creator, stranger, chain):
    # The review's F2: a hidden one-leaf commitment made just before someone's direct
    # registration (front-running it from a public mempool) can take the record over, but only
    # within PRIORITY_WINDOW of the commitment: no sleeper claim months later.
    alice, mallory = creator, stranger
    window = int(core.provenance.PRIORITY_WINDOW())
    assert window == 86_400
    early = asset_record("front-run", mallory, model_id)
    batch, tree = _commit(core, mallory, early)
    register_asset(core.provenance, alice, replace(early, creator=alice.address))
    chain.pending_timestamp = int(core.provenance.getBatch(batch).committedAt) + window + 1
    with ape.reverts(core.provenance.ProvenanceRegistry__AlreadyRegistered):
        core.provenance.claimFromBatch(batch, 0, early.as_tuple(), tree.proof(0), [], sender=mallory)
    assert core.provenance.creatorOf(early.content_digest) == alice.address
    # Within the window the earlier commitment wins (the documented cost of direct
    # registration where front-running is possible): the last second still counts.
    again = asset_record("front-run-2", mallory, model_id)
    batch, tree = _commit(core, mallory, again)
    register_asset(core.provenance, alice, replace(again, creator=alice.address))
    chain.pending_timestamp = int(core.provenance.getBatch(batch).committedAt) + window
    core.provenance.claimFromBatch(batch, 0, again.as_tuple(), tree.proof(0), [], sender=mallory)
    assert core.provenance.creatorOf(again.content_digest) == mallory.address


def test_a_creators_claimed_record_stands_against_its_own_other_commitment(
    core, model_id, creator, other_creator, stranger
):
    # One creator committed the same digest twice (a batch resent after a crash, or a second
    # version). Whichever is claimed first is the asset: the second review's R2 showed that
    # letting the earlier commitment replace it lets anyone (claims are open) void the licences
    # sold under the first record and change its lineage.
    v1 = asset_record("versioned", creator, model_id)
    v2 = replace(v1, metadata_uri="ipfs://v2-later")
    first, tree1 = _commit(core, creator, v1)
    second, tree2 = _commit(core, creator, v2)
    core.provenance.claimFromBatch(second, 0, v2.as_tuple(), tree2.proof(0), [], sender=creator)
    terms = attach_terms(core.licenses, creator, v1.content_digest, price=0, derivative_bps=500)
    licence = buy_license(core.licenses, other_creator, terms)
    with ape.reverts(core.provenance.ProvenanceRegistry__AlreadyRegistered):
        core.provenance.claimFromBatch(first, 0, v1.as_tuple(), tree1.proof(0), [], sender=stranger)
    token = int.from_bytes(v1.content_digest, "big")
    assert (
        core.provenance.tokenURI(token) == "ipfs://v2-later"
        and core.provenance.claimedFrom(v1.content_digest) == second
    )
    assert core.licenses.assetEpoch(v1.content_digest) == 0
    child = asset_record("licensed child", other_creator, model_id, parents=(v1.content_digest,))
    register_asset(core.provenance, other_creator, child, [licence])


def test_an_attestation_made_during_a_squat_does_not_block_the_rightful_record(
    project, core, model_id, creator, developer, stranger
):
    # The review's F4: Mallory squats a committed member with its public commitment and attests
    # her record; the statement hashes the records' numbers, so Alice's record (same content and
    # commitment, new number) is attested with the very same instances after the takeover.
    verifier = developer.deploy(project.TestVerifier)
    attester = register_model(core.models, developer, label="squat-attester", data_bps=0, developer_bps=0)
    bind_verifier(core.models, developer, attester, verifier, digest("vk"))
    member = asset_record("attested-member", creator, model_id, commitment=field_commitment("attested-member"))
    batch, tree = _commit(core, creator, member)
    register_asset(core.provenance, stranger, replace(member, creator=stranger.address))
    instances = attest_layout([(int.from_bytes(member.input_commitment, "big"), member.content_digest)])
    zk = keccak(encode(["uint256[]"], [instances]))
    squatted = seq_of(core, member.content_digest)
    core.provenance.attestInference(attester, [squatted], zk, instances, sender=stranger)
    core.provenance.claimFromBatch(batch, 0, member.as_tuple(), tree.proof(0), [], sender=creator)
    assert core.provenance.attestationOf(member.content_digest, attester) == (False, 0, NONE)
    # The record taken over is gone: its number attests nothing any more.
    rescored = attest_layout([(int.from_bytes(member.input_commitment, "big"), member.content_digest)], score=99)
    with ape.reverts(core.provenance.ProvenanceRegistry__InputBindingMismatch, seq=squatted, index=0):
        core.provenance.attestInference(
            attester, [squatted], keccak(encode(["uint256[]"], [rescored])), rescored, sender=stranger
        )
    rightful = seq_of(core, member.content_digest)
    receipt = core.provenance.attestInference(attester, [rightful], zk, instances, sender=creator)
    assert len(receipt.events.filter(core.provenance.InferenceAttested)) == 1
    assert core.provenance.attestationOf(member.content_digest, attester) == (True, 1234, REJECT)
    with ape.reverts(core.provenance.ProvenanceRegistry__StatementAlreadyAttested):
        core.provenance.attestInference(attester, [rightful], zk, instances, sender=creator)


def test_only_the_registry_advances_an_assets_terms_epoch(core, stranger):
    with ape.reverts(core.licenses.LicenseManager__OnlyProvenanceRegistry, caller=stranger.address):
        core.licenses.onAssetSuperseded(digest("any"), sender=stranger)
