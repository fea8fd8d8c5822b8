"""ZkmlValidator: proofmint as an ERC-8004 zkML validator, answering Validation Registry requests
about generated assets from their `attestInference` records. Attestations go through the
TestVerifier stand-in so any verdict can be made (real EZKL proofs: test_attest_inference.py; the
validator reads only what the registry recorded). A request hash is the assets' root sealed with
the agent and a salt: keccak256(0x02 ‖ abi.encode(agentId, salt, root)).

respond(requestHash, salt, modelId, assets):
  request unknown to the registry                        -> ValidationRegistry__UnknownRequest
  request names another validator                        -> NotOurRequest
  answered already (also after a stranger answered it)   -> AlreadyAnswered
  no asset / more than MAX_ASSETS                        -> BadAssetCount
  the request's agent, the salt, the assets or the model version do not hash to it
    (reordered, one left out, another model version, another salt; a squatter's copy of an
    agent's hash requested under the squatter's agent, also once given to the owner)
                                                         -> RequestMismatch
  an asset's creator is not the agent's (a squatter's agent asks about another's assets;
    after the agent changed hands)                       -> NotAgentsWork
  an asset not attested by the model version             -> NotProven
  an unknown asset                                       -> ProvenanceRegistry__UnknownAsset
  verdicts differ                                        -> MixedVerdicts
  otherwise -> Answered (listing the assets), and the registry's ValidationResponse: 100
    (accept), 50 (review), 0 (reject), URI = base + request hash, responseHash =
    keccak256(abi.encode(modelId, assets)), tag "zkml"; whoever calls it. The creator may be the
    agent's owner, its verified wallet, or a creator that approved either as registrar.
  A squatted hash blocks nothing: the agent requests with another salt and is answered.
revoke(requestHash, assets):
  not answered -> NotAnswered; revoked already -> AlreadyRevoked; other assets -> RequestMismatch;
  every asset still attested -> StillProven; an asset's record taken over by an earlier batch
  commitment (its attestation gone) -> Revoked, response 0 in the registry, itemResponse 0; the
  rightful creator's own agent is then validated with a request of its own.
itemResponse(requestHash, asset, index, proof):
  not answered -> NotAnswered; a foreign asset or another index -> NotCovered; index past the
  count -> ProvenanceRegistry__LeafIndexOutOfRange; a proof of the wrong length ->
  ProvenanceRegistry__BadProofLength; otherwise the batch's response, for every member.
itemLeaf / rootOf / requestHashOf agree with agents.core.validation (1, 2, 3, 5 and 8 assets).
constructor: a zero registry or provenance registry -> BadConfig.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from eth_abi import encode
from eth_utils import keccak

from agents.core.merkle import AssetRecord
from agents.core.validation import ValidationBatch, ValidationDomain
from agents.deploy.erc8004 import wallet_signature
from tests.contracts.helpers import (
    ACCEPT,
    REJECT,
    REVIEW,
    SHIPPED_BANDS,
    asset_record,
    bind_verifier,
    digest,
    field_commitment,
    register_asset,
    register_model,
    reverts,
    reverts_raw,
)
from tests.contracts.test_attestation_verdicts import attest

pytestmark = pytest.mark.chain

BASE_URI = "http://127.0.0.1:8080/v1/validations/"
REQUEST_URI = "http://127.0.0.1:8080/v1/validations/pending"
ACCEPT_SCORE, REVIEW_SCORE, REJECT_SCORE = SHIPPED_BANDS[0] + 10, SHIPPED_BANDS[1] + 10, SHIPPED_BANDS[1] - 10


@pytest.fixture(scope="module")
def head(project, core, developer) -> int:  # type: ignore[no-untyped-def]
    """A curation-head model version bound to a TestVerifier with the shipped bands."""
    model = register_model(core.models, developer, label="validator-head", data_bps=0, developer_bps=0)
    bind_verifier(core.models, developer, model, developer.deploy(project.TestVerifier), digest("vk/validator"))
    return model


@pytest.fixture(scope="module")
def other_head(project, core, developer) -> int:  # type: ignore[no-untyped-def]
    model = register_model(core.models, developer, label="validator-head-2", data_bps=0, developer_bps=0)
    bind_verifier(core.models, developer, model, developer.deploy(project.TestVerifier), digest("vk/validator-2"))
    return model


@pytest.fixture(scope="module")
def identity(project, deployer):  # type: ignore[no-untyped-def]
    return deployer.deploy(project.IdentityRegistry)


@pytest.fixture(scope="module")
def registry(project, deployer, identity):  # type: ignore[no-untyped-def]
    return deployer.deploy(project.ValidationRegistry, identity)


@pytest.fixture(scope="module")
def validator(project, deployer, registry, core):  # type: ignore[no-untyped-def]
    return deployer.deploy(project.ZkmlValidator, registry, core.provenance, BASE_URI)


@pytest.fixture(scope="module")
def domain(chain, validator, core) -> ValidationDomain:  # type: ignore[no-untyped-def]
    return ValidationDomain(chain.chain_id, str(validator.address), str(core.provenance.address))


@pytest.fixture(scope="module", autouse=True)
def _module_contracts(
    head, other_head, identity, registry, validator, domain, creator, other_creator, payer, stranger
) -> None:  # type: ignore[no-untyped-def]
    """Deployed before the module's first test (see tests/contracts/conftest.py)."""


def register_agent(identity: Any, owner: Any) -> int:
    receipt = identity.register("https://agents.example/generator.json", sender=owner)
    return int(receipt.decode_logs(identity.Registered)[0].agentId)


def proven(core: Any, creator: Any, head: int, label: str, scores: list[int], sender: Any) -> list[AssetRecord]:
    """Registers one asset per score in `creator`'s name (generated by the module's model
    version, 1) and attests them by `head` with those scores."""
    records = [
        asset_record(f"{label}/{i}", creator, 1, commitment=field_commitment(f"{label}/{i}"))
        for i in range(len(scores))
    ]
    core.provenance.registerMany([r.as_tuple() for r in records], [[] for _ in records], sender=creator)
    attest(core, head, records, scores, sender)
    return records


SALT = keccak(text="a salt nobody guesses")


def request(registry: Any, owner: Any, agent: int, validator: Any, request_hash: bytes) -> Any:
    return registry.validationRequest(validator, agent, REQUEST_URI, request_hash, sender=owner)


def ask(registry: Any, owner: Any, agent: int, validator: Any, batch: ValidationBatch, salt: bytes = SALT) -> bytes:
    """The agent's request for `batch` sealed with `salt`; its hash."""
    request_hash = batch.request_hash(agent, salt)
    request(registry, owner, agent, validator, request_hash)
    return request_hash


def assets_of(records: list[AssetRecord]) -> list[bytes]:
    return [r.content_digest for r in records]


@pytest.mark.parametrize(
    ("score", "verdict", "expected"),
    [(ACCEPT_SCORE, ACCEPT, 100), (REVIEW_SCORE, REVIEW, 50), (REJECT_SCORE, REJECT, 0)],
)
def test_a_proven_batch_is_answered_with_its_verdict_in_one_response(
    core, head, identity, registry, validator, domain, creator, stranger, deployer, score, verdict, expected
):
    records = proven(core, creator, head, f"verdict-{verdict}", [score] * 5, deployer)
    for r in records:
        assert core.provenance.attestationOf(r.content_digest, head)[2] == verdict
    agent = register_agent(identity, creator)
    batch = domain.batch(head, assets_of(records))
    request_hash = ask(registry, creator, agent, validator, batch)

    receipt = validator.respond(request_hash, SALT, head, batch.assets, sender=stranger)

    [answered] = receipt.decode_logs(validator.Answered)
    assert (answered.requestHash, answered.agentId, answered.modelId, answered.root, answered.response) == (
        request_hash,
        agent,
        head,
        batch.root,
        expected,
    )
    assert [bytes(a) for a in answered.assets] == list(batch.assets)
    [event] = receipt.decode_logs(registry.ValidationResponse)
    assert event.validatorAddress == validator.address
    assert event.agentId == agent
    assert event.requestHash == request_hash
    assert event.response == expected
    assert event.responseURI == BASE_URI + "0x" + request_hash.hex()
    assert event.responseHash == batch.response_hash()
    assert event.responseHash == keccak(encode(["uint256", "bytes32[]"], [head, list(batch.assets)]))
    assert event.tag == "zkml"
    status = registry.getValidationStatus(request_hash)
    assert (status.validatorAddress, status.agentId, status.response, status.tag) == (
        validator.address,
        agent,
        expected,
        "zkml",
    )
    assert registry.getSummary(agent, [validator], "zkml") == (1, expected)
    assert validator.answerOf(request_hash) == (True, expected, 5, head, batch.root, False)
    for index, asset in enumerate(batch.assets):
        assert validator.itemResponse(request_hash, asset, index, batch.proof(index)) == expected


def test_a_single_asset_request_seals_its_leaf(core, head, identity, registry, validator, domain, creator, deployer):
    [record] = proven(core, creator, head, "single", [ACCEPT_SCORE], deployer)
    batch = domain.batch(head, [record.content_digest])
    assert batch.root == domain.leaf(record.content_digest, head)
    agent = register_agent(identity, creator)
    request_hash = ask(registry, creator, agent, validator, batch)
    validator.respond(request_hash, SALT, head, batch.assets, sender=creator)
    assert validator.itemResponse(request_hash, record.content_digest, 0, []) == 100


@pytest.mark.parametrize("count", [1, 2, 3, 5, 8])
def test_leaves_roots_and_request_hashes_agree_with_the_agents(validator, domain, head, count):
    assets = [digest(f"differential/{count}/{i}") for i in range(count)]
    for asset in assets:
        assert validator.itemLeaf(asset, head) == domain.leaf(asset, head)
    batch = domain.batch(head, assets)
    assert validator.rootOf(head, assets) == batch.root
    assert validator.requestHashOf(7, SALT, batch.root) == batch.request_hash(7, SALT)
    assert batch.request_hash(7, SALT) != batch.request_hash(8, SALT) != batch.request_hash(7, digest("other"))


def test_root_bounds(validator, head):
    assert validator.MAX_ASSETS() == 256
    validator.rootOf(head, [digest(f"bound/{i}") for i in range(256)])
    with reverts(validator.ZkmlValidator__BadAssetCount, count=257, max=256):
        validator.rootOf(head, [digest(f"bound/{i}") for i in range(257)])
    with reverts(validator.ZkmlValidator__BadAssetCount, count=0, max=256):
        validator.rootOf(head, [])


def test_respond_reverts_for_an_unknown_request(validator, registry, head, stranger):
    with reverts_raw("ValidationRegistry__UnknownRequest(bytes32)", digest("nobody asked")):
        validator.respond(digest("nobody asked"), SALT, head, [digest("x")], sender=stranger)


def test_respond_reverts_for_a_request_to_another_validator(
    core, head, identity, registry, validator, domain, creator, other_creator, deployer
):
    records = proven(core, creator, head, "elsewhere", [ACCEPT_SCORE], deployer)
    batch = domain.batch(head, assets_of(records))
    agent = register_agent(identity, creator)
    request_hash = ask(registry, creator, agent, other_creator, batch)
    with reverts(validator.ZkmlValidator__NotOurRequest, validatorAddress=other_creator.address):
        validator.respond(request_hash, SALT, head, batch.assets, sender=creator)


def test_respond_reverts_when_answered_already_even_by_a_front_runner(
    core, head, identity, registry, validator, domain, creator, stranger, deployer
):
    records = proven(core, creator, head, "twice", [ACCEPT_SCORE, ACCEPT_SCORE], deployer)
    batch = domain.batch(head, assets_of(records))
    agent = register_agent(identity, creator)
    request_hash = ask(registry, creator, agent, validator, batch)
    validator.respond(request_hash, SALT, head, batch.assets, sender=stranger)  # the front-runner
    with reverts(validator.ZkmlValidator__AlreadyAnswered, requestHash=request_hash):
        validator.respond(request_hash, SALT, head, batch.assets, sender=creator)
    # What the front-runner posted is what the owner would have: it follows from the chain.
    assert registry.getValidationStatus(request_hash).response == 100


def test_respond_reverts_for_no_asset_or_too_many(core, head, identity, registry, validator, creator):
    agent = register_agent(identity, creator)
    request(registry, creator, agent, validator, digest("sizes"))
    with reverts(validator.ZkmlValidator__BadAssetCount, count=0):
        validator.respond(digest("sizes"), SALT, head, [], sender=creator)
    with reverts(validator.ZkmlValidator__BadAssetCount, count=257):
        validator.respond(digest("sizes"), SALT, head, [digest(f"many/{i}") for i in range(257)], sender=creator)


def test_respond_reverts_when_the_salt_assets_or_model_do_not_hash_to_the_request(
    core, head, other_head, identity, registry, validator, domain, creator, deployer
):
    records = proven(core, creator, head, "mismatch", [ACCEPT_SCORE] * 3, deployer)
    attest(core, other_head, records, [ACCEPT_SCORE] * 3, deployer)
    batch = domain.batch(head, assets_of(records))
    agent = register_agent(identity, creator)
    request_hash = ask(registry, creator, agent, validator, batch)
    for salt, model, assets in [
        (SALT, head, list(reversed(batch.assets))),
        (SALT, head, list(batch.assets[:2])),
        (SALT, other_head, list(batch.assets)),
        (digest("another salt"), head, list(batch.assets)),
    ]:
        computed = domain.batch(model, assets).request_hash(agent, salt)
        with reverts(validator.ZkmlValidator__RequestMismatch, requestHash=request_hash, computed=computed):
            validator.respond(request_hash, salt, model, assets, sender=creator)


def test_a_squatters_agent_cannot_get_anothers_proven_work_validated(
    core, head, identity, registry, validator, domain, creator, stranger, deployer
):
    """The stranger registers an agent and asks about the creator's proven assets: public data,
    refused, since the assets are not its agent's work."""
    records = proven(core, creator, head, "squat", [ACCEPT_SCORE] * 2, deployer)
    batch = domain.batch(head, assets_of(records))
    squatter = register_agent(identity, stranger)
    request_hash = ask(registry, stranger, squatter, validator, batch)
    with reverts(validator.ZkmlValidator__NotAgentsWork, creator=creator.address, agentId=squatter):
        validator.respond(request_hash, SALT, head, batch.assets, sender=stranger)


def test_a_squatted_request_hash_never_lands_on_the_squatter_and_blocks_nothing(
    core, head, identity, registry, validator, domain, creator, stranger, deployer
):
    """A stranger copies the agent's request hash (from the mempool, say) and requests it first
    under an agent of its own, then even gives that agent to the creator: the hash names the
    creator's agent, so it is never answered for another. The creator's agent requests with
    another salt and is validated."""
    records = proven(core, creator, head, "squatted-hash", [ACCEPT_SCORE] * 2, deployer)
    batch = domain.batch(head, assets_of(records))
    rightful = register_agent(identity, creator)
    squatter = register_agent(identity, stranger)
    copied = batch.request_hash(rightful, SALT)
    request(registry, stranger, squatter, validator, copied)
    with reverts_raw("ValidationRegistry__RequestExists(bytes32)", copied):
        request(registry, creator, rightful, validator, copied)
    mismatch = batch.request_hash(squatter, SALT)
    with reverts(validator.ZkmlValidator__RequestMismatch, requestHash=copied, computed=mismatch):
        validator.respond(copied, SALT, head, batch.assets, sender=stranger)
    identity.transferFrom(stranger, creator, squatter, sender=stranger)  # the "gift"
    with reverts(validator.ZkmlValidator__RequestMismatch, requestHash=copied, computed=mismatch):
        validator.respond(copied, SALT, head, batch.assets, sender=creator)

    fresh = ask(registry, creator, rightful, validator, batch, digest("the next salt"))
    validator.respond(fresh, digest("the next salt"), head, batch.assets, sender=creator)
    assert registry.getSummary(rightful, [validator], "zkml") == (1, 100)
    assert registry.getSummary(squatter, [validator], "zkml") == (0, 0)


def test_the_agents_work_is_its_owners_its_wallets_or_a_creator_that_approved_either(
    chain, core, head, identity, registry, validator, domain, creator, other_creator, payer, stranger, deployer
):
    """Owner `stranger`; wallet `payer` (verified by its signature); `other_creator` approved the
    owner as its registrar, `creator` approved the wallet: assets of all four are the agent's work."""
    agent = register_agent(identity, stranger)
    deadline = chain.pending_timestamp + 60
    signature = wallet_signature(
        payer.private_key,
        chain_id=chain.chain_id,
        identity=identity.address,
        agent_id=agent,
        owner=stranger.address,
        deadline=deadline,
    )
    identity.setAgentWallet(agent, payer, deadline, signature, sender=stranger)
    core.provenance.setRegistrar(stranger, True, sender=other_creator)
    core.provenance.setRegistrar(payer, True, sender=creator)
    records = (
        proven(core, stranger, head, "owned", [ACCEPT_SCORE], deployer)
        + proven(core, payer, head, "walleted", [ACCEPT_SCORE], deployer)
        + proven(core, other_creator, head, "approved", [ACCEPT_SCORE], deployer)
        + proven(core, creator, head, "approved-wallet", [ACCEPT_SCORE], deployer)
    )
    batch = domain.batch(head, assets_of(records))
    request_hash = ask(registry, stranger, agent, validator, batch)
    answered = validator.respond(request_hash, SALT, head, batch.assets, sender=stranger)
    assert answered.decode_logs(validator.Answered)[0].response == 100

    # `deployer` approved nobody: its asset in the batch makes the whole request fail.
    foreign = proven(core, deployer, head, "foreign", [ACCEPT_SCORE], deployer)
    mixed = domain.batch(head, assets_of(records[:1] + foreign))
    mixed_hash = ask(registry, stranger, agent, validator, mixed)
    with reverts(validator.ZkmlValidator__NotAgentsWork, asset=foreign[0].content_digest):
        validator.respond(mixed_hash, SALT, head, mixed.assets, sender=stranger)


def test_an_agent_that_changed_hands_no_longer_vouches_for_its_old_owners_work(
    core, head, identity, registry, validator, domain, creator, other_creator, deployer
):
    records = proven(core, creator, head, "sold", [ACCEPT_SCORE], deployer)
    agent = register_agent(identity, creator)
    batch = domain.batch(head, assets_of(records))
    request_hash = ask(registry, creator, agent, validator, batch)
    identity.transferFrom(creator, other_creator, agent, sender=creator)
    with reverts(validator.ZkmlValidator__NotAgentsWork, creator=creator.address):
        validator.respond(request_hash, SALT, head, batch.assets, sender=creator)


def test_respond_reverts_for_an_asset_not_yet_proven_then_answers_once_it_is(
    core, head, identity, registry, validator, domain, creator, deployer, model_id
):
    record = asset_record("unproven", creator, model_id, commitment=field_commitment("unproven"))
    core.provenance.register(record.as_tuple(), [], sender=creator)
    batch = domain.batch(head, [record.content_digest])
    agent = register_agent(identity, creator)
    request_hash = ask(registry, creator, agent, validator, batch)
    with reverts(validator.ZkmlValidator__NotProven, asset=record.content_digest, modelId=head):
        validator.respond(request_hash, SALT, head, batch.assets, sender=creator)
    attest(core, head, [record], [REJECT_SCORE], deployer)
    receipt = validator.respond(request_hash, SALT, head, batch.assets, sender=creator)
    assert receipt.decode_logs(validator.Answered)[0].response == 0


def test_respond_reverts_for_an_unknown_asset(core, head, identity, registry, validator, domain, creator):
    batch = domain.batch(head, [digest("never registered")])
    agent = register_agent(identity, creator)
    request_hash = ask(registry, creator, agent, validator, batch)
    with reverts_raw("ProvenanceRegistry__UnknownAsset(bytes32)", digest("never registered")):
        validator.respond(request_hash, SALT, head, batch.assets, sender=creator)


def test_respond_reverts_for_mixed_verdicts(core, head, identity, registry, validator, domain, creator, deployer):
    records = proven(core, creator, head, "mixed", [ACCEPT_SCORE, ACCEPT_SCORE, REVIEW_SCORE], deployer)
    batch = domain.batch(head, assets_of(records))
    agent = register_agent(identity, creator)
    request_hash = ask(registry, creator, agent, validator, batch)
    with reverts(validator.ZkmlValidator__MixedVerdicts, asset=records[2].content_digest, verdict=REVIEW, first=ACCEPT):
        validator.respond(request_hash, SALT, head, batch.assets, sender=creator)


def test_an_answer_is_revoked_when_its_evidence_is_taken_over(
    core, head, identity, registry, validator, domain, creator, stranger, deployer
):
    """Alice commits a batch; Mallory registers the published member directly, gets it attested
    and validated under her agent (100). Alice's claim within the priority window takes the
    record over: the attestation belonged to Mallory's record and is gone, so anyone may revoke
    the answer (response 0); Alice's own agent is then validated with a request of its own."""
    alice, mallory = creator, stranger
    member = asset_record("taken-over", alice, 1, commitment=field_commitment("taken-over"))
    receipt = core.provenance.registerBatchLeaves([member.leaf()], sender=alice)
    batch_id = int(receipt.decode_logs(core.provenance.BatchCommitted)[0].batchId)
    squat = replace(member, creator=mallory.address)
    register_asset(core.provenance, mallory, squat)
    attest(core, head, [squat], [ACCEPT_SCORE], deployer)
    batch = domain.batch(head, [member.content_digest])
    mallorys = register_agent(identity, mallory)
    squatted = ask(registry, mallory, mallorys, validator, batch)
    validator.respond(squatted, SALT, head, batch.assets, sender=mallory)
    with reverts(validator.ZkmlValidator__StillProven, requestHash=squatted):
        validator.revoke(squatted, batch.assets, sender=alice)

    core.provenance.claimFromBatch(batch_id, 0, member.as_tuple(), [], [], sender=alice)
    assert core.provenance.attestationOf(member.content_digest, head)[0] is False
    with reverts(validator.ZkmlValidator__RequestMismatch, requestHash=squatted):
        validator.revoke(squatted, [digest("another asset")], sender=alice)
    receipt = validator.revoke(squatted, batch.assets, sender=alice)
    assert [(e.requestHash, e.asset) for e in receipt.decode_logs(validator.Revoked)] == [
        (squatted, member.content_digest)
    ]
    [event] = receipt.decode_logs(registry.ValidationResponse)
    assert (event.response, event.tag) == (0, "zkml")
    assert validator.answerOf(squatted)[:2] == (True, 0) and validator.answerOf(squatted)[5] is True
    assert validator.itemResponse(squatted, member.content_digest, 0, []) == 0
    assert registry.getSummary(mallorys, [validator], "zkml") == (1, 0)
    with reverts(validator.ZkmlValidator__AlreadyRevoked, requestHash=squatted):
        validator.revoke(squatted, batch.assets, sender=alice)

    # Alice's record, attested in its own right, validated for her agent
    attest(core, head, [member], [ACCEPT_SCORE], deployer)
    alices = register_agent(identity, alice)
    own = ask(registry, alice, alices, validator, batch)
    validator.respond(own, SALT, head, batch.assets, sender=alice)
    assert registry.getSummary(alices, [validator], "zkml") == (1, 100)


def test_revoke_reverts_for_an_unanswered_request(validator, stranger):
    with reverts(validator.ZkmlValidator__NotAnswered, requestHash=digest("unanswered")):
        validator.revoke(digest("unanswered"), [digest("x")], sender=stranger)


def test_item_response_checks_membership(core, head, identity, registry, validator, domain, creator, deployer):
    records = proven(core, creator, head, "members", [ACCEPT_SCORE] * 3, deployer)
    batch = domain.batch(head, assets_of(records))
    agent = register_agent(identity, creator)
    request_hash = batch.request_hash(agent, SALT)
    with reverts(validator.ZkmlValidator__NotAnswered, requestHash=request_hash):
        validator.itemResponse(request_hash, batch.assets[0], 0, batch.proof(0))
    ask(registry, creator, agent, validator, batch)
    validator.respond(request_hash, SALT, head, batch.assets, sender=creator)

    foreign = digest("not a member")
    with reverts(validator.ZkmlValidator__NotCovered, asset=foreign):
        validator.itemResponse(request_hash, foreign, 0, batch.proof(0))
    with reverts(validator.ZkmlValidator__NotCovered, asset=batch.assets[0]):
        validator.itemResponse(request_hash, batch.assets[0], 1, batch.proof(1))
    with reverts_raw("ProvenanceRegistry__LeafIndexOutOfRange(uint256,uint256)", 3, 3):
        validator.itemResponse(request_hash, batch.assets[0], 3, batch.proof(0))
    with reverts_raw("ProvenanceRegistry__BadProofLength(uint256,uint256)", 1, 2):
        validator.itemResponse(request_hash, batch.assets[0], 0, batch.proof(0)[:1])


def test_constructor_refuses_zero_addresses(project, deployer, registry, core):
    zero = "0x" + "00" * 20
    with reverts_raw("ZkmlValidator__BadConfig()"):
        deployer.deploy(project.ZkmlValidator, zero, core.provenance, BASE_URI)
    with reverts_raw("ZkmlValidator__BadConfig()"):
        deployer.deploy(project.ZkmlValidator, registry, zero, BASE_URI)


def test_response_base_uri_is_the_constructors(validator):
    assert validator.responseBaseURI() == BASE_URI
    assert validator.TAG() == "zkml"
