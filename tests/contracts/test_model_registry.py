"""ModelRegistry: registration, verifier and band binding, retirement, two-step developer transfer.

Branch tree of registerModel (each leaf is a test below):
  weightsDigest == 0                        -> ZeroWeightsDigest
  weightsDigest already registered by the caller -> WeightsAlreadyRegistered(digest, id)
                                            (by another developer: ok, a version of its own)
  developerBps + dataBps > MAX (and == MAX) -> SharesTooHigh / ok
  dataRoot == 0 xor dataBps == 0            -> DataRootMismatch (both ways)
  uri empty / > MAX_URI_LENGTH (== ok)      -> BadMetadataURI
  predecessor unknown                       -> UnknownModel
  predecessor of another developer          -> NotDeveloper
  predecessor already succeeded             -> AlreadySucceeded
  otherwise                                 -> stored, ModelRegistered, successor linked
"""

from __future__ import annotations

import hashlib
from typing import Any

import ape
import pytest
from eth_utils import keccak

pytestmark = pytest.mark.chain

ZERO32 = b"\x00" * 32
ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"


def digest(label: str) -> bytes:
    return hashlib.sha256(label.encode()).digest()


def model_input(label: str = "tiny-sd-v1", **overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "weightsDigest": digest(label),
        "paramsCommitment": digest(label + "/params"),
        "dataRoot": digest(label + "/data"),
        "predecessor": 0,
        "developerBps": 1_000,
        "dataBps": 500,
        "metadataURI": "ipfs://bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku",
    }
    base.update(overrides)
    return base


def register(registry: Any, sender: Any, **overrides: Any) -> int:
    inp = model_input(**overrides)
    # The embedded provider cannot trace a sent transaction's return value, so read it by
    # simulating the same call first; it must name the id the transaction then stores.
    returned = int(registry.registerModel.call(inp, sender=sender))
    registry.registerModel(inp, sender=sender)
    assert returned == registry.modelCount()
    return returned


# --- registerModel: happy path -------------------------------------------------------------


@pytest.mark.smoke  # also on anvil
def test_register_stores_version_and_emits_event(model_registry, developer):
    inp = model_input()
    tx = model_registry.registerModel(inp, sender=developer)

    assert model_registry.modelCount() == 1
    stored = model_registry.getModel(1)
    assert stored.developer == developer.address
    assert stored.weightsDigest == inp["weightsDigest"]
    assert stored.paramsCommitment == inp["paramsCommitment"]
    assert stored.dataRoot == inp["dataRoot"]
    assert stored.verifier == ZERO_ADDRESS
    assert stored.vkDigest == ZERO32
    assert stored.predecessor == 0
    assert stored.developerBps == 1_000
    assert stored.dataBps == 500
    assert stored.retiredAt == 0
    assert stored.registeredAt == model_registry.provider.get_block(tx.block_number).timestamp
    assert stored.metadataURI == inp["metadataURI"]
    assert model_registry.modelIdOf(developer, inp["weightsDigest"]) == 1
    assert model_registry.isActive(1) is True

    events = tx.decode_logs(model_registry.ModelRegistered)
    assert len(events) == 1
    ev = events[0]
    assert ev.modelId == 1
    assert ev.developer == developer.address
    assert ev.weightsDigest == inp["weightsDigest"]
    assert ev.developerBps == 1_000 and ev.dataBps == 500
    assert ev.metadataURI == inp["metadataURI"]


def test_register_assigns_sequential_ids(model_registry, developer, other_developer):
    assert register(model_registry, developer, label="a") == 1
    assert register(model_registry, other_developer, label="b") == 2
    assert model_registry.getModel(2).developer == other_developer.address


def test_register_without_data_share_needs_no_root(model_registry, developer):
    register(model_registry, developer, dataRoot=ZERO32, dataBps=0)
    assert model_registry.getModel(1).dataRoot == ZERO32


def test_register_new_version_links_predecessor(model_registry, developer):
    first = register(model_registry, developer, label="v1")
    tx = model_registry.registerModel(model_input("v2", predecessor=first), sender=developer)
    assert model_registry.getModel(2).predecessor == first
    assert model_registry.successorOf(first) == 2
    assert model_registry.successorOf(2) == 0
    assert tx.decode_logs(model_registry.ModelRegistered)[0].predecessor == first


# --- registerModel: every revert ----------------------------------------------------------


def test_register_reverts_when_weights_digest_zero(model_registry, developer):
    with ape.reverts(model_registry.ModelRegistry__ZeroWeightsDigest):
        model_registry.registerModel(model_input(weightsDigest=ZERO32), sender=developer)


def test_register_reverts_when_the_developer_registered_the_weights_already(model_registry, developer):
    register(model_registry, developer, label="same")
    with ape.reverts(
        model_registry.ModelRegistry__WeightsAlreadyRegistered, weightsDigest=digest("same"), existingId=1
    ):
        model_registry.registerModel(model_input("same"), sender=developer)
    assert model_registry.modelCount() == 1


def test_a_squatter_registering_public_weights_first_gains_nothing(model_registry, developer, stranger):
    # A model's weights digest is public (model cards, hubs). A squatter registers it first with
    # the highest shares; the real developer still registers its own version, and anyone who
    # resolves the model under the developer they trust (agents, auditors) finds that one.
    squatted = model_input("public-model")
    squatted["developerBps"], squatted["dataBps"], squatted["dataRoot"] = 5_000, 0, b"\x00" * 32
    model_registry.registerModel(squatted, sender=stranger)
    tx = model_registry.registerModel(model_input("public-model"), sender=developer)
    assert tx.decode_logs(model_registry.ModelRegistered)[0].modelId == 2
    assert model_registry.modelIdOf(developer, digest("public-model")) == 2
    assert model_registry.modelIdOf(stranger, digest("public-model")) == 1
    assert model_registry.getModel(2).developer == developer.address
    assert model_registry.getModel(2).developerBps == 1_000


def test_the_weights_index_follows_a_developer_transfer(model_registry, developer, other_developer):
    register(model_registry, developer, label="moving")
    model_registry.transferDeveloper(1, other_developer.address, sender=developer)
    model_registry.acceptDeveloper(1, sender=other_developer)
    assert model_registry.modelIdOf(other_developer, digest("moving")) == 1
    assert model_registry.modelIdOf(developer, digest("moving")) == 0
    # The old developer may register the same weights again as a version of its own.
    register(model_registry, developer, label="moving")
    assert model_registry.modelIdOf(developer, digest("moving")) == 2
    # A developer cannot take over a second version of weights it already has.
    model_registry.transferDeveloper(2, other_developer.address, sender=developer)
    with ape.reverts(
        model_registry.ModelRegistry__WeightsAlreadyRegistered, weightsDigest=digest("moving"), existingId=1
    ):
        model_registry.acceptDeveloper(2, sender=other_developer)


def test_register_accepts_shares_at_cap(model_registry, developer):
    cap = model_registry.MAX_MODEL_SHARE_BPS()
    register(model_registry, developer, developerBps=cap - 1, dataBps=1)
    assert model_registry.getModel(1).developerBps + model_registry.getModel(1).dataBps == cap


def test_register_reverts_when_shares_past_cap(model_registry, developer):
    cap = model_registry.MAX_MODEL_SHARE_BPS()
    with ape.reverts(model_registry.ModelRegistry__SharesTooHigh, totalBps=cap + 1, maxBps=cap):
        model_registry.registerModel(model_input(developerBps=cap, dataBps=1), sender=developer)


def test_register_reverts_when_data_share_without_root(model_registry, developer):
    with ape.reverts(model_registry.ModelRegistry__DataRootMismatch):
        model_registry.registerModel(model_input(dataRoot=ZERO32, dataBps=10), sender=developer)


def test_register_reverts_when_root_without_data_share(model_registry, developer):
    with ape.reverts(model_registry.ModelRegistry__DataRootMismatch):
        model_registry.registerModel(model_input(dataBps=0), sender=developer)


def test_register_reverts_when_uri_empty(model_registry, developer):
    with ape.reverts(model_registry.ModelRegistry__BadMetadataURI, length=0):
        model_registry.registerModel(model_input(metadataURI=""), sender=developer)


def test_register_accepts_uri_at_max_length(model_registry, developer):
    limit = model_registry.MAX_URI_LENGTH()
    register(model_registry, developer, metadataURI="u" * limit)
    assert len(model_registry.getModel(1).metadataURI) == limit


def test_register_reverts_when_uri_past_max_length(model_registry, developer):
    limit = model_registry.MAX_URI_LENGTH()
    with ape.reverts(model_registry.ModelRegistry__BadMetadataURI, length=limit + 1, maxLength=limit):
        model_registry.registerModel(model_input(metadataURI="u" * (limit + 1)), sender=developer)


def test_register_reverts_when_predecessor_unknown(model_registry, developer):
    with ape.reverts(model_registry.ModelRegistry__UnknownModel, modelId=7):
        model_registry.registerModel(model_input(predecessor=7), sender=developer)


def test_register_reverts_when_predecessor_not_callers(model_registry, developer, stranger):
    register(model_registry, developer, label="v1")
    with ape.reverts(model_registry.ModelRegistry__NotDeveloper, modelId=1, caller=stranger.address):
        model_registry.registerModel(model_input("v2", predecessor=1), sender=stranger)


def test_register_reverts_when_predecessor_already_succeeded(model_registry, developer):
    register(model_registry, developer, label="v1")
    register(model_registry, developer, label="v2", predecessor=1)
    with ape.reverts(model_registry.ModelRegistry__AlreadySucceeded, predecessor=1, successor=2):
        model_registry.registerModel(model_input("v2b", predecessor=1), sender=developer)


# --- bindVerifier ----------------------------------------------------------------------------
#
# Branch tree of bindVerifier(modelId, verifier, vkDigest, acceptAt, reviewAt):
#   unknown model                               -> UnknownModel
#   caller is not the developer                 -> NotDeveloper
#   retired                                     -> ModelRetired
#   verifier already bound                      -> VerifierAlreadySet
#   verifier without code / vkDigest == 0       -> BadVerifier
#   reviewAt > acceptAt                         -> BadBands
#   acceptAt >= 2^29 / reviewAt <= -2^29        -> BadBands (each edge at +-(2^29 - 1): ok)
#   otherwise                                   -> verifier, code hash and bands stored, VerifierBound

BAND_LIMIT = 1 << 29
"""Band edges lie strictly between -BAND_LIMIT and BAND_LIMIT (what an attestation cell holds)."""
ACCEPT_AT, REVIEW_AT = 6_472, 4_588
"""The shipped curation head's bands (scores at 2^-13)."""


@pytest.fixture
def verifier_contract(project, deployer):  # type: ignore[no-untyped-def]
    # Any contract with code stands for the verifier here; the zkml work binds real EZKL verifiers.
    return deployer.deploy(project.TestToken, "Verifier stand-in", "VFY", 18)


def bind(registry: Any, sender: Any, verifier: Any, vk: bytes | None = None, **bands: int) -> Any:
    """bindVerifier(1, verifier, vk, acceptAt, reviewAt), the shipped bands unless given."""
    accept_at, review_at = bands.get("accept_at", ACCEPT_AT), bands.get("review_at", REVIEW_AT)
    address = getattr(verifier, "address", verifier)
    return registry.bindVerifier(1, address, vk or digest("vk"), accept_at, review_at, sender=sender)


def test_bind_verifier_stores_once_and_emits(model_registry, developer, verifier_contract):
    register(model_registry, developer)
    vk = digest("vk")
    tx = model_registry.bindVerifier(1, verifier_contract.address, vk, ACCEPT_AT, REVIEW_AT, sender=developer)
    stored = model_registry.getModel(1)
    assert stored.verifier == verifier_contract.address
    assert stored.vkDigest == vk
    assert (stored.acceptAt, stored.reviewAt) == (ACCEPT_AT, REVIEW_AT)
    # The verifier's code is pinned: its EXTCODEHASH, which the provenance registry checks.
    code_hash = keccak(bytes(model_registry.provider.get_code(verifier_contract.address)))
    assert stored.verifierCodeHash == code_hash
    assert model_registry.verifierOf(1) == (verifier_contract.address, vk, code_hash)
    assert model_registry.bandsOf(1) == (ACCEPT_AT, REVIEW_AT)
    assert model_registry.attestationTermsOf(1) == (verifier_contract.address, code_hash, 0, ACCEPT_AT, REVIEW_AT)
    ev = tx.decode_logs(model_registry.VerifierBound)[0]
    assert (ev.modelId, ev.verifier, ev.vkDigest, ev.codeHash, ev.acceptAt, ev.reviewAt) == (
        1,
        verifier_contract.address,
        vk,
        code_hash,
        ACCEPT_AT,
        REVIEW_AT,
    )


def test_get_model_places_the_bands_right_after_the_verifier(model_registry, developer, verifier_contract):
    """The ABI tuple of getModel, in order, as Python callers unpack it."""
    register(model_registry, developer)
    bind(model_registry, developer, verifier_contract)
    stored = model_registry.getModel(1)
    (get_model,) = [item for item in model_registry.contract_type.abi if getattr(item, "name", "") == "getModel"]
    names = [component.name for component in get_model.outputs[0].components]
    assert names[4:9] == ["verifier", "acceptAt", "reviewAt", "vkDigest", "verifierCodeHash"]
    assert tuple(stored)[4:7] == (verifier_contract.address, ACCEPT_AT, REVIEW_AT)


def test_bands_and_terms_are_zero_before_a_verifier_is_bound(model_registry, developer):
    register(model_registry, developer)
    assert model_registry.bandsOf(1) == (0, 0)
    stored = model_registry.getModel(1)
    assert (stored.verifier, stored.acceptAt, stored.reviewAt) == (ZERO_ADDRESS, 0, 0)
    assert model_registry.attestationTermsOf(1) == (ZERO_ADDRESS, ZERO32, 0, 0, 0)


def test_bands_views_revert_for_unknown_models(model_registry, developer):
    register(model_registry, developer)
    for unknown in (0, 2):
        with ape.reverts(model_registry.ModelRegistry__UnknownModel, modelId=unknown):
            model_registry.bandsOf(unknown)
        with ape.reverts(model_registry.ModelRegistry__UnknownModel, modelId=unknown):
            model_registry.attestationTermsOf(unknown)


def test_attestation_terms_carry_the_retirement(model_registry, developer, verifier_contract, chain):
    register(model_registry, developer)
    bind(model_registry, developer, verifier_contract, accept_at=-5, review_at=-9)
    tx = model_registry.retire(1, sender=developer)
    retired_at = chain.provider.get_block(tx.block_number).timestamp
    verifier, _, code_hash = model_registry.verifierOf(1)
    assert model_registry.attestationTermsOf(1) == (verifier, code_hash, retired_at, -5, -9)


@pytest.mark.parametrize(
    ("accept_at", "review_at"),
    [
        (ACCEPT_AT, ACCEPT_AT),  # no review band: reject below, accept at and above
        (BAND_LIMIT - 1, -(BAND_LIMIT - 1)),  # both edges at their extremes
        (BAND_LIMIT - 1, BAND_LIMIT - 1),
        (-(BAND_LIMIT - 1), -(BAND_LIMIT - 1)),
        (-100, -200),  # negative bands
        (0, 0),
    ],
)
def test_bind_verifier_accepts_bands_within_the_cell_range(
    model_registry, developer, verifier_contract, accept_at, review_at
):
    register(model_registry, developer)
    tx = bind(model_registry, developer, verifier_contract, accept_at=accept_at, review_at=review_at)
    assert model_registry.bandsOf(1) == (accept_at, review_at)
    ev = tx.decode_logs(model_registry.VerifierBound)[0]
    assert (ev.acceptAt, ev.reviewAt) == (accept_at, review_at)


@pytest.mark.parametrize(
    ("accept_at", "review_at"),
    [
        (REVIEW_AT, ACCEPT_AT),  # review above accept
        (0, 1),
        (-(BAND_LIMIT - 1), BAND_LIMIT - 1),
        (BAND_LIMIT, REVIEW_AT),  # acceptAt at 2^29
        (BAND_LIMIT, BAND_LIMIT),
        (2**31 - 1, 0),  # int32 extremes
        (ACCEPT_AT, -BAND_LIMIT),  # reviewAt at -2^29
        (-BAND_LIMIT, -BAND_LIMIT),
        (0, -(2**31)),
    ],
)
def test_bind_verifier_reverts_for_bad_bands(model_registry, developer, verifier_contract, accept_at, review_at):
    register(model_registry, developer)
    with ape.reverts(model_registry.ModelRegistry__BadBands, acceptAt=accept_at, reviewAt=review_at):
        bind(model_registry, developer, verifier_contract, accept_at=accept_at, review_at=review_at)
    assert model_registry.verifierOf(1)[0] == ZERO_ADDRESS, "nothing bound"
    # Good bands bind afterwards.
    bind(model_registry, developer, verifier_contract)


def test_bind_verifier_reverts_when_already_set(model_registry, developer, verifier_contract):
    register(model_registry, developer)
    bind(model_registry, developer, verifier_contract)
    # Neither another verifier nor other bands: a change of either is a new model version.
    with ape.reverts(model_registry.ModelRegistry__VerifierAlreadySet, modelId=1):
        bind(model_registry, developer, model_registry, digest("vk2"))
    with ape.reverts(model_registry.ModelRegistry__VerifierAlreadySet, modelId=1):
        bind(model_registry, developer, verifier_contract, accept_at=1, review_at=0)
    assert model_registry.bandsOf(1) == (ACCEPT_AT, REVIEW_AT)


def test_bind_verifier_reverts_when_verifier_has_no_code(model_registry, developer, stranger):
    register(model_registry, developer)
    with ape.reverts(model_registry.ModelRegistry__BadVerifier, verifier=stranger.address):
        bind(model_registry, developer, stranger)


def test_bind_verifier_reverts_when_vk_digest_zero(model_registry, developer, verifier_contract):
    register(model_registry, developer)
    with ape.reverts(model_registry.ModelRegistry__BadVerifier, vkDigest=ZERO32):
        model_registry.bindVerifier(1, verifier_contract.address, ZERO32, ACCEPT_AT, REVIEW_AT, sender=developer)


def test_bind_verifier_reverts_for_stranger(model_registry, developer, stranger, verifier_contract):
    register(model_registry, developer)
    with ape.reverts(model_registry.ModelRegistry__NotDeveloper, modelId=1, caller=stranger.address):
        bind(model_registry, stranger, verifier_contract)
    # Bad bands from a stranger: the caller is checked first.
    with ape.reverts(model_registry.ModelRegistry__NotDeveloper, modelId=1, caller=stranger.address):
        bind(model_registry, stranger, verifier_contract, accept_at=0, review_at=1)
    assert model_registry.bandsOf(1) == (0, 0)


def test_bind_verifier_reverts_when_retired(model_registry, developer, verifier_contract):
    register(model_registry, developer)
    model_registry.retire(1, sender=developer)
    with ape.reverts(model_registry.ModelRegistry__ModelRetired, modelId=1):
        bind(model_registry, developer, verifier_contract)


def test_bind_verifier_reverts_when_unknown(model_registry, developer, verifier_contract):
    with ape.reverts(model_registry.ModelRegistry__UnknownModel, modelId=3):
        model_registry.bindVerifier(3, verifier_contract.address, digest("vk"), ACCEPT_AT, REVIEW_AT, sender=developer)


# --- retire ----------------------------------------------------------------------------------


def test_retire_marks_inactive_and_emits(model_registry, developer):
    register(model_registry, developer)
    tx = model_registry.retire(1, sender=developer)
    assert model_registry.isActive(1) is False
    assert model_registry.getModel(1).retiredAt > 0
    assert model_registry.retiredAt(1) == model_registry.getModel(1).retiredAt
    assert tx.decode_logs(model_registry.ModelRetired)[0].modelId == 1


def test_retire_reverts_when_already_retired(model_registry, developer):
    register(model_registry, developer)
    model_registry.retire(1, sender=developer)
    with ape.reverts(model_registry.ModelRegistry__ModelRetired, modelId=1):
        model_registry.retire(1, sender=developer)


def test_retire_reverts_for_stranger(model_registry, developer, stranger):
    register(model_registry, developer)
    with ape.reverts(model_registry.ModelRegistry__NotDeveloper, modelId=1, caller=stranger.address):
        model_registry.retire(1, sender=stranger)


def test_retire_reverts_when_unknown(model_registry, developer):
    with ape.reverts(model_registry.ModelRegistry__UnknownModel, modelId=1):
        model_registry.retire(1, sender=developer)


# --- two-step developer transfer --------------------------------------------------------------


def test_developer_moves_in_two_steps(model_registry, developer, other_developer):
    register(model_registry, developer)
    tx = model_registry.transferDeveloper(1, other_developer.address, sender=developer)
    ev = tx.decode_logs(model_registry.DeveloperTransferStarted)[0]
    assert (ev.developer, ev.pendingDeveloper) == (developer.address, other_developer.address)
    # Nothing moves until the new developer accepts.
    assert model_registry.getModel(1).developer == developer.address
    assert model_registry.pendingDeveloper(1) == other_developer.address

    tx = model_registry.acceptDeveloper(1, sender=other_developer)
    ev = tx.decode_logs(model_registry.DeveloperTransferred)[0]
    assert (ev.previousDeveloper, ev.newDeveloper) == (developer.address, other_developer.address)
    assert model_registry.getModel(1).developer == other_developer.address
    assert model_registry.pendingDeveloper(1) == ZERO_ADDRESS

    # The old developer lost its rights; the new one has them.
    with ape.reverts(model_registry.ModelRegistry__NotDeveloper, modelId=1, caller=developer.address):
        model_registry.retire(1, sender=developer)
    model_registry.retire(1, sender=other_developer)


def test_transfer_developer_can_be_replaced_before_acceptance(model_registry, developer, other_developer, stranger):
    register(model_registry, developer)
    model_registry.transferDeveloper(1, stranger.address, sender=developer)
    model_registry.transferDeveloper(1, other_developer.address, sender=developer)
    with ape.reverts(model_registry.ModelRegistry__NotPendingDeveloper, modelId=1, caller=stranger.address):
        model_registry.acceptDeveloper(1, sender=stranger)


def test_transfer_developer_reverts_for_stranger(model_registry, developer, stranger):
    register(model_registry, developer)
    with ape.reverts(model_registry.ModelRegistry__NotDeveloper, modelId=1, caller=stranger.address):
        model_registry.transferDeveloper(1, stranger.address, sender=stranger)


def test_transfer_developer_reverts_for_zero_address(model_registry, developer):
    register(model_registry, developer)
    with ape.reverts(model_registry.ModelRegistry__ZeroDeveloper):
        model_registry.transferDeveloper(1, ZERO_ADDRESS, sender=developer)


def test_transfer_developer_reverts_when_unknown(model_registry, developer, stranger):
    with ape.reverts(model_registry.ModelRegistry__UnknownModel, modelId=2):
        model_registry.transferDeveloper(2, stranger.address, sender=developer)


def test_accept_developer_reverts_without_pending_transfer(model_registry, developer, stranger):
    register(model_registry, developer)
    with ape.reverts(model_registry.ModelRegistry__NotPendingDeveloper, modelId=1, caller=stranger.address):
        model_registry.acceptDeveloper(1, sender=stranger)


def test_accept_developer_reverts_when_unknown(model_registry, stranger):
    with ape.reverts(model_registry.ModelRegistry__UnknownModel, modelId=1):
        model_registry.acceptDeveloper(1, sender=stranger)


# --- views --------------------------------------------------------------------------------------


def test_get_model_reverts_for_id_zero_and_past_count(model_registry, developer):
    register(model_registry, developer)
    with ape.reverts(model_registry.ModelRegistry__UnknownModel, modelId=0):
        model_registry.getModel(0)
    with ape.reverts(model_registry.ModelRegistry__UnknownModel, modelId=2):
        model_registry.getModel(2)


def test_is_active_false_for_unknown_ids(model_registry):
    assert model_registry.isActive(0) is False
    assert model_registry.isActive(1) is False
    assert model_registry.modelIdOf(ZERO_ADDRESS, digest("nothing")) == 0
