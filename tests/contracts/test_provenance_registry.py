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
claimFromBatch adds: unknown batch, index >= count, wrong proof length, wrong proof,
  submitter not authorized by the member's creator, model retired before/after the commit.
"""

from __future__ import annotations

import ape
import pytest
from eth_abi import encode
from eth_utils import keccak

from agents.merkle import BatchTree
from tests.contracts.helpers import (
    URI,
    ZERO_ADDRESS,
    asset_record,
    attach_terms,
    buy_license,
    digest,
    register_asset,
    register_model,
)

pytestmark = pytest.mark.chain


# --- single registration ------------------------------------------------------------------


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
    assert stored.inputCommitment == record.input_commitment
    assert core.provenance.exists(record.content_digest)
    assert core.provenance.creatorOf(record.content_digest) == creator.address
    events = receipt.events.filter(core.provenance.AssetRegistered)
    assert len(events) == 1
    assert events[0].contentDigest == record.content_digest
    assert events[0].batchId == 0
    assert events[0].seq == stored.seq == 0
    assert core.provenance.assetCount() == 1


def test_registration_numbers_count_up_and_carry_the_input_commitment(core, model_id, creator):
    plain = asset_record("numbered-0", creator, model_id, commitment=b"\x00" * 32)
    committed = asset_record("numbered-1", creator, model_id, commitment=b"\x07" * 32)
    register_asset(core.provenance, creator, plain)
    receipt = register_asset(core.provenance, creator, committed)
    assert core.provenance.getAsset(plain.content_digest).seq == 0
    assert core.provenance.getAsset(plain.content_digest).inputCommitment == b"\x00" * 32
    stored = core.provenance.getAsset(committed.content_digest)
    assert (stored.seq, stored.inputCommitment) == (1, b"\x07" * 32)
    assert receipt.events.filter(core.provenance.AssetRegistered)[0].seq == 1


def test_register_by_approved_registrar(core, model_id, creator, stranger):
    core.provenance.setRegistrar(stranger, True, sender=creator)
    assert core.provenance.isRegistrar(creator, stranger)
    register_asset(core.provenance, stranger, asset_record("a", creator, model_id))
    assert core.provenance.creatorOf(digest("a")) == creator.address


def test_register_reverts_when_caller_not_creator(core, model_id, creator, stranger):
    with ape.reverts(core.provenance.ProvenanceRegistry__NotAuthorized, creator=creator.address, caller=stranger.address):
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
        register_asset(core.provenance, other_creator, asset_record("c2", other_creator, model_id, parents=(p2,)), [licence1])
    # A licence id for a parent that the creator never bought.
    _, t2 = _original_with_terms(core, model_id, creator, "p3")
    unbought = (t2 << 64) | (2**64 - 1)
    p3 = digest("p3")
    with ape.reverts(core.licenses.LicenseManager__NoLicense, holder=other_creator.address, licenseId=unbought):
        register_asset(core.provenance, other_creator, asset_record("c3", other_creator, model_id, parents=(p3,)), [unbought])


def test_derivative_reverts_when_licence_forbids_derivatives(core, model_id, creator, other_creator):
    parent, terms_id = _original_with_terms(core, model_id, creator, "p", derivative_bps=0, derivatives=False)
    licence = buy_license(core.licenses, other_creator, terms_id)
    with ape.reverts(core.licenses.LicenseManager__DerivativesNotAllowed, licenseId=licence):
        register_asset(core.provenance, other_creator, asset_record("c", other_creator, model_id, parents=(parent,)), [licence])


def test_derivative_reverts_when_licence_expired(core, model_id, creator, other_creator, chain):
    parent, terms_id = _original_with_terms(core, model_id, creator, "p", duration=3_600)
    licence = buy_license(core.licenses, other_creator, terms_id)
    chain.pending_timestamp += 3_601
    with ape.reverts(core.licenses.LicenseManager__LicenseExpired):
        register_asset(core.provenance, other_creator, asset_record("c", other_creator, model_id, parents=(parent,)), [licence])


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
    for r in records:
        assert core.provenance.leafOf(r.as_tuple()) == r.leaf()
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


def test_batch_root_only_mode(core, model_id, creator, stranger):
    records, tree = _batch(core, model_id, creator, 9)
    receipt = core.provenance.registerBatchRoot(tree.root, 9, "ipfs://bafy-manifest", sender=creator)
    assert receipt.events.filter(core.provenance.BatchCommitted)[0].manifestURI == "ipfs://bafy-manifest"
    assert not core.provenance.getBatch(1).leavesOnChain
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
    # A stranger commits a batch naming `creator` as creator: it cannot be claimed.
    records, tree = _batch(core, model_id, creator, 2)
    core.provenance.registerBatchLeaves(list(tree.leaves), sender=stranger)
    with ape.reverts(core.provenance.ProvenanceRegistry__NotAuthorized, creator=creator.address, caller=stranger.address):
        core.provenance.claimFromBatch(1, 0, records[0].as_tuple(), tree.proof(0), [], sender=creator)
    core.provenance.setRegistrar(stranger, True, sender=creator)
    core.provenance.claimFromBatch(1, 0, records[0].as_tuple(), tree.proof(0), [], sender=creator)


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
    with ape.reverts(core.provenance.ERC721NonexistentToken):
        core.provenance.tokenURI(5)


@pytest.fixture
def verified_asset(project, core, model_id, creator, developer):  # type: ignore[no-untyped-def]
    verifier = developer.deploy(project.TestVerifier)
    core.models.bindVerifier(model_id, verifier, digest("vk"), sender=developer)
    record = asset_record("proven", creator, model_id)
    register_asset(core.provenance, creator, record)
    commitment = int.from_bytes(record.input_commitment, "big")
    instances = [commitment, 1234]
    zk = keccak(encode(["uint256[]"], [instances]))
    return record, encode(["bytes", "uint256[]"], [zk, instances]), instances


def test_erc7007_verify_and_add_aigc_data(core, verified_asset, creator):
    record, proof, _ = verified_asset
    assert core.provenance.verify(b"a cat", record.content_digest, proof)
    receipt = core.provenance.addAigcData(int.from_bytes(record.content_digest, "big"), b"a cat", record.content_digest, proof, sender=creator)
    assert len(receipt.events.filter(core.provenance.AigcData)) == 1


def test_erc7007_verify_false_cases(core, verified_asset, model_id, creator):
    record, proof, instances = verified_asset
    # Proof of other instances (commitment missing).
    other = [7, 1234]
    other_proof = encode(["bytes", "uint256[]"], [keccak(encode(["uint256[]"], [other])), other])
    assert not core.provenance.verify(b"", record.content_digest, other_proof)
    # Verifier rejects (tampered instance value).
    tampered = encode(["bytes", "uint256[]"], [keccak(encode(["uint256[]"], [instances])), [instances[0], 9]])
    assert not core.provenance.verify(b"", record.content_digest, tampered)
    # Unknown asset, wrong length.
    assert not core.provenance.verify(b"", digest("nope"), proof)
    assert not core.provenance.verify(b"", b"\x01" * 31, proof)
    # An asset whose model has no verifier.
    plain = asset_record("plain", creator, register_model(core.models, creator, label="m2", data_bps=0))
    register_asset(core.provenance, creator, plain)
    assert not core.provenance.verify(b"", plain.content_digest, proof)


def test_add_aigc_data_reverts(core, verified_asset, creator, stranger):
    record, proof, _ = verified_asset
    token = int.from_bytes(record.content_digest, "big")
    with ape.reverts(core.provenance.ProvenanceRegistry__NotOwnerOrCreator):
        core.provenance.addAigcData(token, b"", record.content_digest, proof, sender=stranger)
    with ape.reverts(core.provenance.ProvenanceRegistry__AigcProofRejected):
        core.provenance.addAigcData(token, b"", digest("other"), proof, sender=creator)
    with ape.reverts(core.provenance.ERC721NonexistentToken):
        core.provenance.addAigcData(1, b"", record.content_digest, proof, sender=creator)


# --- registerMany -------------------------------------------------------------------------


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
    with ape.reverts(core.provenance.ProvenanceRegistry__NotAuthorized, creator=creator.address, caller=stranger.address):
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
