"""ZkmlValidator: proofmint as an ERC-8004 zkML validator, answering Validation Registry requests
about generated assets from their `attestInference` records. Attestations go through the
TestVerifier stand-in so any verdict can be made (real EZKL proofs: test_attest_inference.py; the
validator reads only what the registry recorded).

respond(requestHash, modelId, assets):
  request unknown to the registry                        -> ValidationRegistry__UnknownRequest
  request names another validator                        -> NotOurRequest
  answered already (also after a stranger answered it)   -> AlreadyAnswered
  no asset / more than MAX_ASSETS                        -> BadAssetCount
  assets or model version do not hash to the request
    (reordered, one left out, another model version)     -> RequestMismatch
  an asset's creator is not the agent's (a squatter's agent asks about another's assets;
    after the agent changed hands)                       -> NotAgentsWork
  an asset not attested by the model version             -> NotProven
  an unknown asset                                       -> ProvenanceRegistry__UnknownAsset
  verdicts differ                                        -> MixedVerdicts
  otherwise -> Answered, and the registry's ValidationResponse: 100 (accept), 50 (review),
    0 (reject), URI = base + request hash, responseHash = keccak256(abi.encode(modelId, assets)),
    tag "zkml"; whoever calls it. The creator may be the agent's owner, its verified wallet, or a
    creator that approved either as registrar.
itemResponse(requestHash, asset, modelId, index, proof):
  not answered -> NotAnswered; a foreign asset, another model version or another index
  -> NotCovered; index past the count -> ProvenanceRegistry__LeafIndexOutOfRange;
  otherwise the batch's response, for every member.
itemLeaf / requestHashOf agree with agents.core.validation (1, 2, 3, 5 and 8 assets).
constructor: a zero registry or provenance registry -> BadConfig.
"""

from __future__ import annotations

from typing import Any

import pytest
from eth_abi import encode
from eth_account import Account
from eth_utils import keccak

from agents.core.merkle import AssetRecord
from agents.core.validation import ValidationDomain
from tests.contracts.helpers import (
    ACCEPT,
    REJECT,
    REVIEW,
    SHIPPED_BANDS,
    asset_record,
    bind_verifier,
    digest,
    field_commitment,
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


def request(registry: Any, owner: Any, agent: int, validator: Any, request_hash: bytes) -> Any:
    return registry.validationRequest(validator, agent, REQUEST_URI, request_hash, sender=owner)


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
    request(registry, creator, agent, validator, batch.request_hash)

    receipt = validator.respond(batch.request_hash, head, batch.assets, sender=stranger)

    answered = receipt.decode_logs(validator.Answered)
    assert [(e.requestHash, e.agentId, e.modelId, e.count, e.response) for e in answered] == [
        (batch.request_hash, agent, head, 5, expected)
    ]
    [event] = receipt.decode_logs(registry.ValidationResponse)
    assert event.validatorAddress == validator.address
    assert event.agentId == agent
    assert event.requestHash == batch.request_hash
    assert event.response == expected
    assert event.responseURI == BASE_URI + "0x" + batch.request_hash.hex()
    assert event.responseHash == batch.response_hash()
    assert event.responseHash == keccak(encode(["uint256", "bytes32[]"], [head, list(batch.assets)]))
    assert event.tag == "zkml"
    status = registry.getValidationStatus(batch.request_hash)
    assert (status.validatorAddress, status.agentId, status.response, status.tag) == (
        validator.address,
        agent,
        expected,
        "zkml",
    )
    assert registry.getSummary(agent, [validator], "zkml") == (1, expected)
    assert validator.answerOf(batch.request_hash) == (True, expected, 5)
    for index, asset in enumerate(batch.assets):
        assert validator.itemResponse(batch.request_hash, asset, head, index, batch.proof(index)) == expected


def test_a_single_asset_request_is_its_leaf(core, head, identity, registry, validator, domain, creator, deployer):
    [record] = proven(core, creator, head, "single", [ACCEPT_SCORE], deployer)
    batch = domain.batch(head, [record.content_digest])
    assert batch.request_hash == domain.leaf(record.content_digest, head)
    agent = register_agent(identity, creator)
    request(registry, creator, agent, validator, batch.request_hash)
    validator.respond(batch.request_hash, head, batch.assets, sender=creator)
    assert validator.itemResponse(batch.request_hash, record.content_digest, head, 0, []) == 100


@pytest.mark.parametrize("count", [1, 2, 3, 5, 8])
def test_leaves_and_request_hashes_agree_with_the_agents(validator, domain, head, count):
    assets = [digest(f"differential/{count}/{i}") for i in range(count)]
    for asset in assets:
        assert validator.itemLeaf(asset, head) == domain.leaf(asset, head)
    assert validator.requestHashOf(head, assets) == domain.batch(head, assets).request_hash


def test_request_hash_bounds(validator, head):
    assert validator.MAX_ASSETS() == 256
    validator.requestHashOf(head, [digest(f"bound/{i}") for i in range(256)])
    with reverts(validator.ZkmlValidator__BadAssetCount, count=257, max=256):
        validator.requestHashOf(head, [digest(f"bound/{i}") for i in range(257)])
    with reverts(validator.ZkmlValidator__BadAssetCount, count=0, max=256):
        validator.requestHashOf(head, [])


def test_respond_reverts_for_an_unknown_request(validator, registry, head, stranger):
    with reverts_raw("ValidationRegistry__UnknownRequest(bytes32)", digest("nobody asked")):
        validator.respond(digest("nobody asked"), head, [digest("x")], sender=stranger)


def test_respond_reverts_for_a_request_to_another_validator(
    core, head, identity, registry, validator, domain, creator, other_creator, deployer
):
    records = proven(core, creator, head, "elsewhere", [ACCEPT_SCORE], deployer)
    batch = domain.batch(head, assets_of(records))
    agent = register_agent(identity, creator)
    request(registry, creator, agent, other_creator, batch.request_hash)
    with reverts(validator.ZkmlValidator__NotOurRequest, validatorAddress=other_creator.address):
        validator.respond(batch.request_hash, head, batch.assets, sender=creator)


def test_respond_reverts_when_answered_already_even_by_a_front_runner(
    core, head, identity, registry, validator, domain, creator, stranger, deployer
):
    records = proven(core, creator, head, "twice", [ACCEPT_SCORE, ACCEPT_SCORE], deployer)
    batch = domain.batch(head, assets_of(records))
    agent = register_agent(identity, creator)
    request(registry, creator, agent, validator, batch.request_hash)
    validator.respond(batch.request_hash, head, batch.assets, sender=stranger)  # the front-runner
    with reverts(validator.ZkmlValidator__AlreadyAnswered, requestHash=batch.request_hash):
        validator.respond(batch.request_hash, head, batch.assets, sender=creator)
    # What the front-runner posted is what the owner would have: it follows from the chain.
    assert registry.getValidationStatus(batch.request_hash).response == 100


def test_respond_reverts_for_no_asset_or_too_many(core, head, identity, registry, validator, creator):
    agent = register_agent(identity, creator)
    request(registry, creator, agent, validator, digest("sizes"))
    with reverts(validator.ZkmlValidator__BadAssetCount, count=0):
        validator.respond(digest("sizes"), head, [], sender=creator)
    with reverts(validator.ZkmlValidator__BadAssetCount, count=257):
        validator.respond(digest("sizes"), head, [digest(f"many/{i}") for i in range(257)], sender=creator)


def test_respond_reverts_when_the_assets_or_model_do_not_hash_to_the_request(
    core, head, other_head, identity, registry, validator, domain, creator, deployer
):
    records = proven(core, creator, head, "mismatch", [ACCEPT_SCORE] * 3, deployer)
    attest(core, other_head, records, [ACCEPT_SCORE] * 3, deployer)
    batch = domain.batch(head, assets_of(records))
    agent = register_agent(identity, creator)
    request(registry, creator, agent, validator, batch.request_hash)
    for model, assets in [
        (head, list(reversed(batch.assets))),
        (head, list(batch.assets[:2])),
        (other_head, list(batch.assets)),
    ]:
        with reverts(validator.ZkmlValidator__RequestMismatch, requestHash=batch.request_hash):
            validator.respond(batch.request_hash, model, assets, sender=creator)


def test_a_squatters_agent_cannot_get_anothers_proven_work_validated(
    core, head, identity, registry, validator, domain, creator, stranger, deployer
):
    """The stranger registers an agent and asks about the creator's proven assets: public data,
    refused, since the assets are not its agent's work."""
    records = proven(core, creator, head, "squat", [ACCEPT_SCORE] * 2, deployer)
    batch = domain.batch(head, assets_of(records))
    squatter = register_agent(identity, stranger)
    request(registry, stranger, squatter, validator, batch.request_hash)
    with reverts(validator.ZkmlValidator__NotAgentsWork, creator=creator.address, agentId=squatter):
        validator.respond(batch.request_hash, head, batch.assets, sender=stranger)


def test_the_agents_work_is_its_owners_its_wallets_or_a_creator_that_approved_either(
    chain, core, head, identity, registry, validator, domain, creator, other_creator, payer, stranger, deployer
):
    """Owner `stranger`; wallet `payer` (verified by its signature); `other_creator` approved the
    owner as its registrar: assets of all three are the agent's work."""
    agent = register_agent(identity, stranger)
    deadline = chain.pending_timestamp + 60
    signature = Account.sign_typed_data(
        payer.private_key,
        {
            "name": "ERC8004IdentityRegistry",
            "version": "1",
            "chainId": chain.chain_id,
            "verifyingContract": identity.address,
        },
        {
            "AgentWalletSet": [
                {"name": "agentId", "type": "uint256"},
                {"name": "newWallet", "type": "address"},
                {"name": "owner", "type": "address"},
                {"name": "deadline", "type": "uint256"},
            ]
        },
        {"agentId": agent, "newWallet": payer.address, "owner": stranger.address, "deadline": deadline},
    ).signature
    identity.setAgentWallet(agent, payer, deadline, signature, sender=stranger)
    core.provenance.setRegistrar(stranger, True, sender=other_creator)
    records = (
        proven(core, stranger, head, "owned", [ACCEPT_SCORE], deployer)
        + proven(core, payer, head, "walleted", [ACCEPT_SCORE], deployer)
        + proven(core, other_creator, head, "approved", [ACCEPT_SCORE], deployer)
    )
    batch = domain.batch(head, assets_of(records))
    request(registry, stranger, agent, validator, batch.request_hash)
    assert (
        validator.respond(batch.request_hash, head, batch.assets, sender=stranger)
        .decode_logs(validator.Answered)[0]
        .response
        == 100
    )

    # `creator` approved nobody: its asset in the batch makes the whole request fail.
    foreign = proven(core, creator, head, "foreign", [ACCEPT_SCORE], deployer)
    mixed = domain.batch(head, assets_of(records[:1] + foreign))
    request(registry, stranger, agent, validator, mixed.request_hash)
    with reverts(validator.ZkmlValidator__NotAgentsWork, asset=foreign[0].content_digest):
        validator.respond(mixed.request_hash, head, mixed.assets, sender=stranger)


def test_an_agent_that_changed_hands_no_longer_vouches_for_its_old_owners_work(
    core, head, identity, registry, validator, domain, creator, other_creator, deployer
):
    records = proven(core, creator, head, "sold", [ACCEPT_SCORE], deployer)
    agent = register_agent(identity, creator)
    batch = domain.batch(head, assets_of(records))
    request(registry, creator, agent, validator, batch.request_hash)
    identity.transferFrom(creator, other_creator, agent, sender=creator)
    with reverts(validator.ZkmlValidator__NotAgentsWork, creator=creator.address):
        validator.respond(batch.request_hash, head, batch.assets, sender=creator)


def test_respond_reverts_for_an_asset_not_yet_proven_then_answers_once_it_is(
    core, head, identity, registry, validator, domain, creator, deployer, model_id
):
    record = asset_record("unproven", creator, model_id, commitment=field_commitment("unproven"))
    core.provenance.register(record.as_tuple(), [], sender=creator)
    batch = domain.batch(head, [record.content_digest])
    agent = register_agent(identity, creator)
    request(registry, creator, agent, validator, batch.request_hash)
    with reverts(validator.ZkmlValidator__NotProven, asset=record.content_digest, modelId=head):
        validator.respond(batch.request_hash, head, batch.assets, sender=creator)
    attest(core, head, [record], [REJECT_SCORE], deployer)
    assert (
        validator.respond(batch.request_hash, head, batch.assets, sender=creator)
        .decode_logs(validator.Answered)[0]
        .response
        == 0
    )


def test_respond_reverts_for_an_unknown_asset(core, head, identity, registry, validator, domain, creator):
    batch = domain.batch(head, [digest("never registered")])
    agent = register_agent(identity, creator)
    request(registry, creator, agent, validator, batch.request_hash)
    with reverts_raw("ProvenanceRegistry__UnknownAsset(bytes32)", digest("never registered")):
        validator.respond(batch.request_hash, head, batch.assets, sender=creator)


def test_respond_reverts_for_mixed_verdicts(core, head, identity, registry, validator, domain, creator, deployer):
    records = proven(core, creator, head, "mixed", [ACCEPT_SCORE, ACCEPT_SCORE, REVIEW_SCORE], deployer)
    batch = domain.batch(head, assets_of(records))
    agent = register_agent(identity, creator)
    request(registry, creator, agent, validator, batch.request_hash)
    with reverts(validator.ZkmlValidator__MixedVerdicts, asset=records[2].content_digest, verdict=REVIEW, first=ACCEPT):
        validator.respond(batch.request_hash, head, batch.assets, sender=creator)


def test_item_response_checks_membership(
    core, head, other_head, identity, registry, validator, domain, creator, deployer
):
    records = proven(core, creator, head, "members", [ACCEPT_SCORE] * 3, deployer)
    batch = domain.batch(head, assets_of(records))
    with reverts(validator.ZkmlValidator__NotAnswered, requestHash=batch.request_hash):
        validator.itemResponse(batch.request_hash, batch.assets[0], head, 0, batch.proof(0))
    agent = register_agent(identity, creator)
    request(registry, creator, agent, validator, batch.request_hash)
    validator.respond(batch.request_hash, head, batch.assets, sender=creator)

    foreign = digest("not a member")
    with reverts(validator.ZkmlValidator__NotCovered, asset=foreign):
        validator.itemResponse(batch.request_hash, foreign, head, 0, batch.proof(0))
    with reverts(validator.ZkmlValidator__NotCovered):
        validator.itemResponse(batch.request_hash, batch.assets[0], other_head, 0, batch.proof(0))
    with reverts(validator.ZkmlValidator__NotCovered):
        validator.itemResponse(batch.request_hash, batch.assets[0], head, 1, batch.proof(1))
    with reverts_raw("ProvenanceRegistry__LeafIndexOutOfRange(uint256,uint256)", 3, 3):
        validator.itemResponse(batch.request_hash, batch.assets[0], head, 3, batch.proof(0))


def test_constructor_refuses_zero_addresses(project, deployer, registry, core):
    zero = "0x" + "00" * 20
    with reverts_raw("ZkmlValidator__BadConfig()"):
        deployer.deploy(project.ZkmlValidator, zero, core.provenance, BASE_URI)
    with reverts_raw("ZkmlValidator__BadConfig()"):
        deployer.deploy(project.ZkmlValidator, registry, zero, BASE_URI)


def test_response_base_uri_is_the_constructors(validator):
    assert validator.responseBaseURI() == BASE_URI
    assert validator.TAG() == "zkml"
