"""ERC-8004 (Trustless Agents) registries for development chains: IdentityRegistry,
ReputationRegistry and ValidationRegistry (contracts/erc8004/), ports of the reference
implementation 2.0.0 with proofmint's custom errors. Agent 0 (`agent`) belongs to `owner`.

IdentityRegistry (each leaf a test below):
  register(), register(uri), register(uri, metadata)
    ids count from 0; events Transfer, MetadataSet(agentWallet = owner), [MetadataUpdate],
      one MetadataSet per entry, Registered
    `agentWallet` among the entries (first or later)     -> IdentityRegistry__ReservedKey, nothing minted
    a contract caller that is no ERC-721 receiver        -> ERC721InvalidReceiver, nothing minted
  setMetadata / setAgentURI / setAgentWallet / unsetAgentWallet
    agent does not exist                                 -> ERC721NonexistentToken
    caller neither owner nor approved (a stranger; the owner or operator after a transfer)
                                                         -> IdentityRegistry__NotAuthorized
    owner, approve()d address, setApprovalForAll operator -> done, with its event
  setMetadata key `agentWallet`                          -> IdentityRegistry__ReservedKey
  getMetadata of an unset key or an unknown agent        -> empty
  setAgentWallet
    wallet zero                                          -> IdentityRegistry__ZeroWallet
    now > deadline                                       -> IdentityRegistry__Expired (now == deadline passes)
    deadline > now + MAX_DEADLINE_DELAY                  -> IdentityRegistry__DeadlineTooFar (at the bound passes)
    not the wallet's consent to exactly this (another agent, another owner, another deadline or
      wallet, another key, another chain's or contract's domain, malformed)
                                                         -> IdentityRegistry__BadWalletSignature
    ERC-1271 wallet: its owner's key signs               -> set; one that refuses (rejects, writes
      state, answers 150 KB of zeroes)                   -> IdentityRegistry__BadWalletSignature
    otherwise -> MetadataSet(agentWallet = wallet); the consent has no nonce: it sets the same
      wallet again within its deadline
  transfer (transferFrom, safeTransferFrom) -> MetadataSet(agentWallet = "") before Transfer,
    wallet cleared; the new owner re-verifies with a consent naming it
  isAuthorizedOrOwner: owner, approved, operator true; stranger, zero false; unknown agent reverts

ReputationRegistry:
  constructor(0)                                          -> ReputationRegistry__BadIdentityRegistry
  giveFeedback
    decimals > 18                                         -> ReputationRegistry__TooManyDecimals (18 passes)
    |value| > 1e38                                        -> ReputationRegistry__ValueTooLarge (+-1e38 pass)
    caller the owner, an approved address or an operator  -> ReputationRegistry__SelfFeedback
    agent does not exist                                  -> ERC721NonexistentToken
    otherwise -> NewFeedback, index 1, 2 ... per (agent, client); client listed once
  revokeFeedback: index 0, past the caller's last (someone else's) -> ReputationRegistry__BadIndex;
    twice -> ReputationRegistry__AlreadyRevoked; otherwise FeedbackRevoked
  appendResponse: index 0 -> BadIndex; empty URI -> EmptyURI; past the last -> BadIndex (in that
    order); otherwise ResponseAppended, by anyone, to revoked feedback too
  readFeedback: index 0 or past the last -> BadIndex
  getSummary: no clients -> ReputationRegistry__ClientsRequired; revoked and other tags left out;
    average at 18 decimals returned at the most used decimals (ties: fewest), toward zero
  readAllFeedback: every client or the named ones; tag filters; revoked only when asked
  getResponseCount: every client (client zero), every feedback of a client (index 0), one
    feedback; all responders or the named ones

ValidationRegistry:
  constructor(0)                                          -> ValidationRegistry__BadIdentityRegistry
  validationRequest
    validator zero                                        -> ValidationRegistry__ZeroValidator
    hash requested already (by anyone)                    -> ValidationRegistry__RequestExists
    agent does not exist                                  -> ERC721NonexistentToken
    caller neither owner nor approved                     -> ValidationRegistry__NotAuthorized
    otherwise -> ValidationRequest; listed for the agent and the validator
  validationResponse
    unknown request                                       -> ValidationRegistry__UnknownRequest
    caller not the request's validator (the agent's owner too) -> ValidationRegistry__NotValidator
    response > 100                                        -> ValidationRegistry__BadResponse (100 passes)
    otherwise -> ValidationResponse; again and again, the last one stored
  getValidationStatus of an unknown request               -> ValidationRegistry__UnknownRequest
  getSummary: answered requests only, by validator and tag, average rounded down
"""

from __future__ import annotations

from typing import Any

import ape
import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils.crypto import keccak

from tests.contracts.helpers import reverts, reverts_raw

pytestmark = pytest.mark.chain

ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
MAX_ABS_VALUE = 10**38
UNKNOWN_AGENT = 999
AGENT_URI = "ipfs://bafyagentregistration"
WALLET_KEY = "agentWallet"

DOMAIN_FIELDS = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]
WALLET_SET_FIELDS = [
    {"name": "agentId", "type": "uint256"},
    {"name": "newWallet", "type": "address"},
    {"name": "owner", "type": "address"},
    {"name": "deadline", "type": "uint256"},
]


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def owner(accounts):  # type: ignore[no-untyped-def]
    """Owns agent 0."""
    return accounts[1]


@pytest.fixture(scope="module")
def operator(accounts):  # type: ignore[no-untyped-def]
    """Approved for agent 0 when a test says so."""
    return accounts[2]


@pytest.fixture(scope="module")
def client(accounts):  # type: ignore[no-untyped-def]
    return accounts[3]


@pytest.fixture(scope="module")
def other_client(accounts):  # type: ignore[no-untyped-def]
    return accounts[4]


@pytest.fixture(scope="module")
def wallet(accounts):  # type: ignore[no-untyped-def]
    """An EOA the owner wants payments sent to."""
    return accounts[5]


@pytest.fixture(scope="module")
def validator(accounts):  # type: ignore[no-untyped-def]
    return accounts[6]


@pytest.fixture(scope="module")
def other_validator(accounts):  # type: ignore[no-untyped-def]
    return accounts[7]


@pytest.fixture(scope="module")
def identity(project, deployer):  # type: ignore[no-untyped-def]
    return deployer.deploy(project.IdentityRegistry)


@pytest.fixture(scope="module")
def reputation(project, deployer, identity):  # type: ignore[no-untyped-def]
    return deployer.deploy(project.ReputationRegistry, identity)


@pytest.fixture(scope="module")
def validation(project, deployer, identity):  # type: ignore[no-untyped-def]
    return deployer.deploy(project.ValidationRegistry, identity)


@pytest.fixture(scope="module")
def agent(identity, owner) -> int:  # type: ignore[no-untyped-def]
    """Agent 0, `owner`'s, with a URI."""
    return register(identity, owner, AGENT_URI)


@pytest.fixture(scope="module", autouse=True)
def _registries(  # type: ignore[no-untyped-def]
    identity,
    reputation,
    validation,
    agent,
    owner,
    operator,
    client,
    other_client,
    wallet,
    validator,
    other_validator,
    stranger,
    deployer,
    chain,
) -> None:
    """Deploys the three registries, registers agent 0 and resolves every wider-scoped fixture
    before the module's first test (see tests/contracts/conftest.py on ape's snapshots)."""


# --- helpers ----------------------------------------------------------------------------------


def register(identity: Any, who: Any, *args: Any) -> int:
    """Registers an agent for `who` (register's overload by `args`) and returns its id."""
    receipt = identity.register(*args, sender=who)
    return int(receipt.events.filter(identity.Registered)[0].agentId)


def event_names(receipt: Any) -> list[str]:
    return [log.event_name for log in receipt.events]


def wallet_consent(
    identity: Any,
    key: Any,
    agent_id: int,
    new_wallet: str,
    agent_owner: str,
    deadline: int,
    *,
    chain_id: int | None = None,
    verifying_contract: str | None = None,
) -> bytes:
    """`key`'s EIP-712 signature of AgentWalletSet(agentId, newWallet, owner, deadline) under the
    identity registry's domain ("ERC8004IdentityRegistry", "1"), as a wallet signs it."""
    typed = {
        "types": {"EIP712Domain": DOMAIN_FIELDS, "AgentWalletSet": WALLET_SET_FIELDS},
        "primaryType": "AgentWalletSet",
        "domain": {
            "name": "ERC8004IdentityRegistry",
            "version": "1",
            "chainId": ape.chain.chain_id if chain_id is None else chain_id,
            "verifyingContract": verifying_contract or identity.address,
        },
        "message": {"agentId": agent_id, "newWallet": new_wallet, "owner": agent_owner, "deadline": deadline},
    }
    return bytes(Account.sign_message(encode_typed_data(full_message=typed), key).signature)


def pin_time(chain: Any) -> int:
    """Fixes the next block's timestamp (a little ahead of the chain) and returns it."""
    now = int(chain.pending_timestamp) + 10
    chain.pending_timestamp = now
    return now


def give(
    reputation: Any, client: Any, agent_id: int, value: int, decimals: int = 0, tag1: str = "", tag2: str = ""
) -> Any:
    return reputation.giveFeedback(agent_id, value, decimals, tag1, tag2, "", "", b"\x00" * 32, sender=client)


def request_hash(label: str) -> bytes:
    return keccak(text=label)


# --- IdentityRegistry: registration -----------------------------------------------------------


def test_identity_registry_names_its_token_domain_version_and_bounds(identity: Any, chain: Any) -> None:
    assert (identity.name(), identity.symbol(), identity.getVersion()) == ("AgentIdentity", "AGENT", "2.0.0")
    assert identity.MAX_DEADLINE_DELAY() == 300
    assert identity.AGENT_WALLET_SET_TYPEHASH() == keccak(
        text="AgentWalletSet(uint256 agentId,address newWallet,address owner,uint256 deadline)"
    )
    domain = identity.eip712Domain()
    assert (domain[1], domain[2], domain[3], domain[4]) == (
        "ERC8004IdentityRegistry",
        "1",
        chain.chain_id,
        identity.address,
    )
    for interface in ("0x80ac58cd", "0x5b5e139f", "0x49064906", "0x01ffc9a7"):  # 721, metadata, 4906, 165
        assert identity.supportsInterface(interface)


def test_register_without_uri_mints_the_next_id_with_its_owner_as_wallet(
    identity: Any, owner: Any, stranger: Any, agent: int
) -> None:
    assert agent == 0
    receipt = identity.register(sender=stranger)
    assert event_names(receipt) == ["Transfer", "MetadataSet", "Registered"]
    transfer, wallet_set, registered = receipt.events
    assert (transfer["from"], transfer.to, transfer.tokenId) == (ZERO_ADDRESS, stranger.address, 1)
    assert (wallet_set.agentId, wallet_set.metadataKey) == (1, WALLET_KEY)
    assert wallet_set.indexedMetadataKey == keccak(text=WALLET_KEY)
    assert wallet_set.metadataValue == bytes.fromhex(stranger.address[2:])
    assert (registered.agentId, registered.agentURI, registered.owner) == (1, "", stranger.address)
    assert identity.ownerOf(1) == stranger.address and identity.tokenURI(1) == ""
    assert identity.getAgentWallet(1) == stranger.address
    assert identity.getMetadata(1, WALLET_KEY) == bytes.fromhex(stranger.address[2:])
    assert register(identity, owner) == 2  # ids count on, whoever registers


def test_register_with_uri_sets_the_token_uri(identity: Any, owner: Any, agent: int) -> None:
    assert identity.tokenURI(agent) == AGENT_URI and identity.ownerOf(agent) == owner.address
    receipt = identity.register("data:application/json;base64,eyJ9", sender=owner)
    assert event_names(receipt) == ["Transfer", "MetadataSet", "MetadataUpdate", "Registered"]
    assert receipt.events[-1].agentURI == "data:application/json;base64,eyJ9"
    assert identity.tokenURI(1) == "data:application/json;base64,eyJ9"


def test_register_with_metadata_sets_each_entry_and_emits_registered_last(identity: Any, owner: Any) -> None:
    entries = [("name", b"proofmint"), ("x402", b"\x01"), ("AgentWallet", b"not the reserved key")]
    receipt = identity.register(AGENT_URI, entries, sender=owner)
    assert event_names(receipt) == [
        "Transfer",
        "MetadataSet",
        "MetadataUpdate",
        "MetadataSet",
        "MetadataSet",
        "MetadataSet",
        "Registered",
    ]
    logs = receipt.events.filter(identity.MetadataSet)
    assert [(log.metadataKey, log.metadataValue) for log in logs[1:]] == entries
    assert logs[1].indexedMetadataKey == keccak(text="name")
    for key, value in entries:
        assert identity.getMetadata(1, key) == value
    assert identity.getAgentWallet(1) == owner.address  # "AgentWallet" is just another key
    assert register(identity, owner, "", []) == 2  # no entries, no URI: still an agent


@pytest.mark.parametrize("position", [0, 1])
def test_register_refuses_agent_wallet_among_the_entries(identity: Any, owner: Any, wallet: Any, position: int) -> None:
    entries = [("name", b"x")]
    entries.insert(position, (WALLET_KEY, bytes.fromhex(wallet.address[2:])))
    with reverts(identity.IdentityRegistry__ReservedKey):
        identity.register(AGENT_URI, entries, sender=owner)
    assert identity.balanceOf(owner) == 1  # agent 0 only
    assert register(identity, owner) == 1  # id 1 was not used


def test_register_reverts_for_a_contract_caller_that_is_no_erc721_receiver(
    project: Any, identity: Any, deployer: Any
) -> None:
    actor = deployer.deploy(project.HostileActor)  # exec bubbles the revert up
    with reverts_raw("ERC721InvalidReceiver(address)", actor.address):
        actor.exec(identity, identity.register.encode_input(AGENT_URI), sender=deployer)
    assert identity.balanceOf(actor) == 0
    assert register(identity, deployer) == 1


# --- IdentityRegistry: who may change an agent ------------------------------------------------


def change_agent(identity: Any, which: str, agent_id: int, caller: Any, wallet: Any) -> Any:
    """One of the four owner-or-operator functions, called by `caller` with arguments that pass
    every other check (setAgentWallet: `wallet`'s consent naming the agent's current owner)."""
    if which == "setMetadata":
        return identity.setMetadata(agent_id, "name", b"renamed", sender=caller)
    if which == "setAgentURI":
        return identity.setAgentURI(agent_id, "ipfs://new", sender=caller)
    if which == "unsetAgentWallet":
        return identity.unsetAgentWallet(agent_id, sender=caller)
    agent_owner = identity.ownerOf(agent_id) if agent_id != UNKNOWN_AGENT else ZERO_ADDRESS
    deadline = int(ape.chain.pending_timestamp) + 120
    signature = wallet_consent(identity, wallet.private_key, agent_id, wallet.address, agent_owner, deadline)
    return identity.setAgentWallet(agent_id, wallet, deadline, signature, sender=caller)


CHANGES = ["setMetadata", "setAgentURI", "setAgentWallet", "unsetAgentWallet"]


@pytest.mark.parametrize("which", CHANGES)
def test_a_stranger_cannot_change_an_agent(identity: Any, agent: int, stranger: Any, wallet: Any, which: str) -> None:
    with reverts(identity.IdentityRegistry__NotAuthorized, caller=stranger.address, agentId=agent):
        change_agent(identity, which, agent, stranger, wallet)


@pytest.mark.parametrize("which", CHANGES)
def test_changing_an_unknown_agent_reverts(identity: Any, owner: Any, wallet: Any, which: str) -> None:
    with reverts_raw("ERC721NonexistentToken(uint256)", UNKNOWN_AGENT):
        change_agent(identity, which, UNKNOWN_AGENT, owner, wallet)


@pytest.mark.parametrize("which", CHANGES)
@pytest.mark.parametrize("approval", ["owner", "approve", "setApprovalForAll"])
def test_the_owner_and_approved_operators_change_an_agent(
    identity: Any, agent: int, owner: Any, operator: Any, wallet: Any, which: str, approval: str
) -> None:
    caller = owner
    if approval == "approve":
        identity.approve(operator, agent, sender=owner)
        caller = operator
    elif approval == "setApprovalForAll":
        identity.setApprovalForAll(operator, True, sender=owner)
        caller = operator
    receipt = change_agent(identity, which, agent, caller, wallet)
    if which == "setMetadata":
        assert identity.getMetadata(agent, "name") == b"renamed"
        (log,) = receipt.events.filter(identity.MetadataSet)
        assert (log.agentId, log.metadataKey, log.metadataValue) == (agent, "name", b"renamed")
    elif which == "setAgentURI":
        assert identity.tokenURI(agent) == "ipfs://new"
        assert event_names(receipt) == ["MetadataUpdate", "URIUpdated"]
        (log,) = receipt.events.filter(identity.URIUpdated)
        assert (log.agentId, log.newURI, log.updatedBy) == (agent, "ipfs://new", caller.address)
    elif which == "setAgentWallet":
        assert identity.getAgentWallet(agent) == wallet.address
        (log,) = receipt.events.filter(identity.MetadataSet)
        assert (log.metadataKey, log.metadataValue) == (WALLET_KEY, bytes.fromhex(wallet.address[2:]))
    else:
        assert identity.getAgentWallet(agent) == ZERO_ADDRESS and identity.getMetadata(agent, WALLET_KEY) == b""
        (log,) = receipt.events.filter(identity.MetadataSet)
        assert (log.metadataKey, log.metadataValue) == (WALLET_KEY, b"")


def test_set_metadata_refuses_the_reserved_key_even_to_the_owner(
    identity: Any, agent: int, owner: Any, wallet: Any
) -> None:
    with reverts(identity.IdentityRegistry__ReservedKey):
        identity.setMetadata(agent, WALLET_KEY, bytes.fromhex(wallet.address[2:]), sender=owner)
    assert identity.getAgentWallet(agent) == owner.address


def test_get_metadata_is_empty_for_unset_keys_and_unknown_agents(identity: Any, agent: int) -> None:
    assert identity.getMetadata(agent, "unset") == b""
    assert identity.getMetadata(UNKNOWN_AGENT, WALLET_KEY) == b""
    assert identity.getAgentWallet(UNKNOWN_AGENT) == ZERO_ADDRESS


def test_is_authorized_or_owner(
    identity: Any, agent: int, owner: Any, operator: Any, stranger: Any, accounts: Any
) -> None:
    assert identity.isAuthorizedOrOwner(owner, agent)
    assert not identity.isAuthorizedOrOwner(operator, agent)
    identity.approve(operator, agent, sender=owner)
    assert identity.isAuthorizedOrOwner(operator, agent)
    identity.setApprovalForAll(accounts[8], True, sender=owner)
    assert identity.isAuthorizedOrOwner(accounts[8], agent)
    assert not identity.isAuthorizedOrOwner(stranger, agent)
    assert not identity.isAuthorizedOrOwner(ZERO_ADDRESS, agent)
    with reverts_raw("ERC721NonexistentToken(uint256)", UNKNOWN_AGENT):
        identity.isAuthorizedOrOwner(owner, UNKNOWN_AGENT)


# --- IdentityRegistry: the agent's wallet -----------------------------------------------------


def test_set_agent_wallet_refuses_the_zero_wallet(identity: Any, agent: int, owner: Any, chain: Any) -> None:
    deadline = int(chain.pending_timestamp) + 60
    with reverts(identity.IdentityRegistry__ZeroWallet):
        identity.setAgentWallet(agent, ZERO_ADDRESS, deadline, b"\x00" * 65, sender=owner)


def test_set_agent_wallet_deadline_bounds(identity: Any, agent: int, owner: Any, wallet: Any, chain: Any) -> None:
    def consent(deadline: int) -> bytes:
        return wallet_consent(identity, wallet.private_key, agent, wallet.address, owner.address, deadline)

    now = pin_time(chain)
    with reverts(identity.IdentityRegistry__Expired, deadline=now - 1, nowTime=now):
        identity.setAgentWallet(agent, wallet, now - 1, consent(now - 1), sender=owner)
    now = pin_time(chain)
    with reverts(identity.IdentityRegistry__DeadlineTooFar, deadline=now + 301, latest=now + 300):
        identity.setAgentWallet(agent, wallet, now + 301, consent(now + 301), sender=owner)
    now = pin_time(chain)
    identity.setAgentWallet(agent, wallet, now, consent(now), sender=owner)  # the last second counts
    identity.unsetAgentWallet(agent, sender=owner)
    now = pin_time(chain)
    identity.setAgentWallet(agent, wallet, now + 300, consent(now + 300), sender=owner)  # the furthest allowed
    assert identity.getAgentWallet(agent) == wallet.address


def test_a_wallet_consent_is_good_only_for_what_it_names(
    identity: Any, agent: int, owner: Any, wallet: Any, stranger: Any, chain: Any, accounts: Any
) -> None:
    deadline = int(chain.pending_timestamp) + 120
    other_agent = register(identity, owner)
    key = wallet.private_key
    refused = {
        "another agent's consent": (
            agent,
            wallet_consent(identity, key, other_agent, wallet.address, owner.address, deadline),
        ),
        "another owner named": (
            agent,
            wallet_consent(identity, key, agent, wallet.address, stranger.address, deadline),
        ),
        "another deadline signed": (
            agent,
            wallet_consent(identity, key, agent, wallet.address, owner.address, deadline - 1),
        ),
        "another wallet's consent": (
            agent,
            wallet_consent(identity, key, agent, accounts[8].address, owner.address, deadline),
        ),
        "signed by another key": (
            agent,
            wallet_consent(identity, stranger.private_key, agent, wallet.address, owner.address, deadline),
        ),
        "another chain's domain": (
            agent,
            wallet_consent(identity, key, agent, wallet.address, owner.address, deadline, chain_id=1),
        ),
        "another registry's domain": (
            agent,
            wallet_consent(
                identity, key, agent, wallet.address, owner.address, deadline, verifying_contract=stranger.address
            ),
        ),
        "malformed": (agent, b"\x01" * 64),
        "the agent-0 consent replayed for another agent": (
            other_agent,
            wallet_consent(identity, key, agent, wallet.address, owner.address, deadline),
        ),
    }
    for reason, (agent_id, signature) in refused.items():
        with reverts(identity.IdentityRegistry__BadWalletSignature, wallet=wallet.address):
            identity.setAgentWallet(agent_id, wallet, deadline, signature, sender=owner)
        assert identity.getAgentWallet(agent_id) == owner.address, reason
    good = wallet_consent(identity, key, agent, wallet.address, owner.address, deadline)
    identity.setAgentWallet(agent, wallet, deadline, good, sender=owner)
    assert identity.getAgentWallet(agent) == wallet.address
    # No nonce: within its deadline the same consent sets the same wallet again (after an unset too).
    identity.unsetAgentWallet(agent, sender=owner)
    identity.setAgentWallet(agent, wallet, deadline, good, sender=owner)
    assert identity.getAgentWallet(agent) == wallet.address


def test_a_stale_consent_is_refused_after_the_deadline(
    identity: Any, agent: int, owner: Any, wallet: Any, chain: Any
) -> None:
    now = pin_time(chain)
    signature = wallet_consent(identity, wallet.private_key, agent, wallet.address, owner.address, now + 60)
    chain.pending_timestamp = now + 61
    with reverts(identity.IdentityRegistry__Expired, deadline=now + 60, nowTime=now + 61):
        identity.setAgentWallet(agent, wallet, now + 60, signature, sender=owner)


def test_an_erc1271_wallet_consents_through_its_owner_key_and_a_refusing_one_is_rejected(
    project: Any, identity: Any, agent: int, owner: Any, wallet: Any, deployer: Any, chain: Any
) -> None:
    contract_wallet = deployer.deploy(project.TestWallet1271, wallet)  # `wallet`'s key signs for it
    deadline = int(chain.pending_timestamp) + 120
    signature = wallet_consent(identity, wallet.private_key, agent, contract_wallet.address, owner.address, deadline)
    for mode in (1, 2, 4):  # RejectAll, WriteState (a write under STATICCALL fails), ReturnBomb
        contract_wallet.setMode(mode, sender=deployer)
        with reverts(identity.IdentityRegistry__BadWalletSignature, wallet=contract_wallet.address):
            identity.setAgentWallet(agent, contract_wallet, deadline, signature, sender=owner)
    contract_wallet.setMode(0, sender=deployer)  # OwnerSigns
    receipt = identity.setAgentWallet(agent, contract_wallet, deadline, signature, sender=owner)
    assert identity.getAgentWallet(agent) == contract_wallet.address
    assert receipt.events.filter(identity.MetadataSet)[0].metadataValue == bytes.fromhex(contract_wallet.address[2:])
    # The key's own ECDSA consent for the wallet contract is not the contract's consent to another.
    twin = deployer.deploy(project.TestWallet1271, wallet)
    with reverts(identity.IdentityRegistry__BadWalletSignature, wallet=twin.address):
        identity.setAgentWallet(agent, twin, deadline, signature, sender=owner)


@pytest.mark.parametrize("safe", [False, True])
def test_a_transfer_clears_the_wallet_and_the_new_owner_must_verify_again(
    identity: Any, agent: int, owner: Any, operator: Any, wallet: Any, stranger: Any, chain: Any, safe: bool
) -> None:
    deadline = int(chain.pending_timestamp) + 200
    consent = wallet_consent(identity, wallet.private_key, agent, wallet.address, owner.address, deadline)
    identity.setAgentWallet(agent, wallet, deadline, consent, sender=owner)
    identity.approve(operator, agent, sender=owner)
    move = identity.safeTransferFrom if safe else identity.transferFrom
    receipt = move(owner, stranger, agent, sender=owner)
    assert event_names(receipt) == ["MetadataSet", "Transfer"]
    cleared = receipt.events[0]
    assert (cleared.agentId, cleared.metadataKey, cleared.metadataValue) == (agent, WALLET_KEY, b"")
    assert identity.getAgentWallet(agent) == ZERO_ADDRESS and identity.getMetadata(agent, WALLET_KEY) == b""
    # The old owner's consent cannot be replayed for the new owner, by the new owner either ...
    with reverts(identity.IdentityRegistry__BadWalletSignature):
        identity.setAgentWallet(agent, wallet, deadline, consent, sender=stranger)
    # ... and the old owner and its operator (approval cleared) can no longer act.
    for caller in (owner, operator):
        with reverts(identity.IdentityRegistry__NotAuthorized, caller=caller.address, agentId=agent):
            identity.setAgentWallet(agent, wallet, deadline, consent, sender=caller)
    fresh = wallet_consent(identity, wallet.private_key, agent, wallet.address, stranger.address, deadline)
    identity.setAgentWallet(agent, wallet, deadline, fresh, sender=stranger)
    assert identity.getAgentWallet(agent) == wallet.address


def test_a_transfer_to_oneself_clears_the_wallet_too(identity: Any, agent: int, owner: Any) -> None:
    identity.transferFrom(owner, owner, agent, sender=owner)
    assert identity.getAgentWallet(agent) == ZERO_ADDRESS


# --- ReputationRegistry -----------------------------------------------------------------------


def test_registries_refuse_a_zero_identity_registry(project: Any, deployer: Any) -> None:
    with reverts(project.ReputationRegistry.ReputationRegistry__BadIdentityRegistry):
        deployer.deploy(project.ReputationRegistry, ZERO_ADDRESS)
    with reverts(project.ValidationRegistry.ValidationRegistry__BadIdentityRegistry):
        deployer.deploy(project.ValidationRegistry, ZERO_ADDRESS)


def test_reputation_registry_names_its_identity_registry_version_and_bounds(reputation: Any, identity: Any) -> None:
    assert reputation.getIdentityRegistry() == identity.address
    assert reputation.getVersion() == "2.0.0"
    assert (reputation.MAX_ABS_VALUE(), reputation.MAX_VALUE_DECIMALS()) == (MAX_ABS_VALUE, 18)


def test_give_feedback_stores_it_at_the_next_index_and_lists_the_client_once(
    reputation: Any, agent: int, client: Any, other_client: Any
) -> None:
    receipt = reputation.giveFeedback(
        agent, 87, 0, "starred", "week", "https://agent.example/mcp", "ipfs://feedback", b"\x11" * 32, sender=client
    )
    (log,) = receipt.events
    assert (log.agentId, log.clientAddress, log.feedbackIndex, log.value, log.valueDecimals) == (
        agent,
        client.address,
        1,
        87,
        0,
    )
    assert log.indexedTag1 == keccak(text="starred")
    assert (log.tag1, log.tag2, log.endpoint, log.feedbackURI, log.feedbackHash) == (
        "starred",
        "week",
        "https://agent.example/mcp",
        "ipfs://feedback",
        b"\x11" * 32,
    )
    assert give(reputation, client, agent, -32, 1).events[0].feedbackIndex == 2
    assert give(reputation, other_client, agent, 1).events[0].feedbackIndex == 1
    assert give(reputation, client, agent, 5).events[0].feedbackIndex == 3
    assert reputation.getLastIndex(agent, client) == 3 and reputation.getLastIndex(agent, other_client) == 1
    assert reputation.getLastIndex(agent, ZERO_ADDRESS) == 0
    assert reputation.getClients(agent) == [client.address, other_client.address]
    assert reputation.readFeedback(agent, client, 1) == (87, 0, "starred", "week", False)
    assert reputation.readFeedback(agent, client, 2) == (-32, 1, "", "", False)


def test_give_feedback_value_and_decimals_bounds(reputation: Any, agent: int, client: Any) -> None:
    with reverts(reputation.ReputationRegistry__TooManyDecimals, valueDecimals=19):
        give(reputation, client, agent, 1, 19)
    for value in (MAX_ABS_VALUE + 1, -MAX_ABS_VALUE - 1, 2**127 - 1, -(2**127)):
        with reverts(reputation.ReputationRegistry__ValueTooLarge, value=value):
            give(reputation, client, agent, value)
    for value, decimals in ((MAX_ABS_VALUE, 18), (-MAX_ABS_VALUE, 0)):
        give(reputation, client, agent, value, decimals)
    assert reputation.getLastIndex(agent, client) == 2


@pytest.mark.parametrize("approval", ["owner", "approve", "setApprovalForAll"])
def test_the_owner_and_its_operators_cannot_rate_the_agent(
    identity: Any, reputation: Any, agent: int, owner: Any, operator: Any, approval: str
) -> None:
    caller = owner
    if approval == "approve":
        identity.approve(operator, agent, sender=owner)
        caller = operator
    elif approval == "setApprovalForAll":
        identity.setApprovalForAll(operator, True, sender=owner)
        caller = operator
    with reverts(reputation.ReputationRegistry__SelfFeedback, caller=caller.address, agentId=agent):
        give(reputation, caller, agent, 100)


def test_feedback_on_an_unknown_agent_reverts(identity: Any, reputation: Any, client: Any) -> None:
    with reverts_raw("ERC721NonexistentToken(uint256)", UNKNOWN_AGENT):
        give(reputation, client, UNKNOWN_AGENT, 1)


def test_a_past_owner_may_rate_the_agent(identity: Any, reputation: Any, agent: int, owner: Any, stranger: Any) -> None:
    identity.transferFrom(owner, stranger, agent, sender=owner)
    give(reputation, owner, agent, 1)
    with reverts(reputation.ReputationRegistry__SelfFeedback):
        give(reputation, stranger, agent, 1)


def test_revoke_feedback(reputation: Any, agent: int, client: Any, stranger: Any) -> None:
    give(reputation, client, agent, 10)
    with reverts(reputation.ReputationRegistry__BadIndex, feedbackIndex=0, lastIndex=1):
        reputation.revokeFeedback(agent, 0, sender=client)
    with reverts(reputation.ReputationRegistry__BadIndex, feedbackIndex=2, lastIndex=1):
        reputation.revokeFeedback(agent, 2, sender=client)
    with reverts(reputation.ReputationRegistry__BadIndex, feedbackIndex=1, lastIndex=0):
        reputation.revokeFeedback(agent, 1, sender=stranger)  # the client's feedback is not the stranger's
    receipt = reputation.revokeFeedback(agent, 1, sender=client)
    (log,) = receipt.events
    assert (log.event_name, log.agentId, log.clientAddress, log.feedbackIndex) == (
        "FeedbackRevoked",
        agent,
        client.address,
        1,
    )
    assert reputation.readFeedback(agent, client, 1) == (10, 0, "", "", True)
    with reverts(reputation.ReputationRegistry__AlreadyRevoked, feedbackIndex=1):
        reputation.revokeFeedback(agent, 1, sender=client)


def test_read_feedback_reverts_for_an_index_that_was_never_given(reputation: Any, agent: int, client: Any) -> None:
    with reverts(reputation.ReputationRegistry__BadIndex, feedbackIndex=1, lastIndex=0):
        reputation.readFeedback(agent, client, 1)
    give(reputation, client, agent, 10)
    with reverts(reputation.ReputationRegistry__BadIndex, feedbackIndex=0, lastIndex=1):
        reputation.readFeedback(agent, client, 0)
    with reverts(reputation.ReputationRegistry__BadIndex, feedbackIndex=2, lastIndex=1):
        reputation.readFeedback(agent, client, 2)


def test_append_response(reputation: Any, agent: int, owner: Any, client: Any, stranger: Any) -> None:
    give(reputation, client, agent, 10)
    with reverts(reputation.ReputationRegistry__BadIndex, feedbackIndex=0, lastIndex=1):
        reputation.appendResponse(agent, client, 0, "", b"\x00" * 32, sender=stranger)  # index 0 first
    with reverts(reputation.ReputationRegistry__EmptyURI):
        reputation.appendResponse(agent, client, 2, "", b"\x00" * 32, sender=stranger)  # then the URI
    with reverts(reputation.ReputationRegistry__BadIndex, feedbackIndex=2, lastIndex=1):
        reputation.appendResponse(agent, client, 2, "ipfs://response", b"\x00" * 32, sender=stranger)
    receipt = reputation.appendResponse(agent, client, 1, "ipfs://refund", b"\x22" * 32, sender=owner)
    (log,) = receipt.events
    assert (log.event_name, log.agentId, log.clientAddress, log.feedbackIndex, log.responder) == (
        "ResponseAppended",
        agent,
        client.address,
        1,
        owner.address,
    )
    assert (log.responseURI, log.responseHash) == ("ipfs://refund", b"\x22" * 32)
    reputation.revokeFeedback(agent, 1, sender=client)
    reputation.appendResponse(agent, client, 1, "ipfs://spam-tag", b"\x00" * 32, sender=stranger)  # revoked too
    assert reputation.getResponseCount(agent, client, 1, []) == 2


def test_get_summary_requires_clients(reputation: Any, agent: int) -> None:
    with reverts(reputation.ReputationRegistry__ClientsRequired):
        reputation.getSummary(agent, [], "", "")


def test_get_summary_averages_at_the_most_used_decimals(
    reputation: Any, agent: int, client: Any, other_client: Any, stranger: Any
) -> None:
    """87 (0 decimals), 99.77 and 99.50 (2 decimals): mean 95.4233..., at 2 decimals 9542."""
    give(reputation, client, agent, 87, 0, "uptime")
    give(reputation, client, agent, 9977, 2, "uptime")
    give(reputation, other_client, agent, 9950, 2, "uptime")
    assert reputation.getSummary(agent, [client, other_client], "", "") == (3, 9542, 2)
    assert reputation.getSummary(agent, [client], "", "") == (2, 93, 0)  # a tie, 1 to 1: 93.385 at 0 decimals
    assert reputation.getSummary(agent, [stranger], "", "") == (0, 0, 0)
    assert reputation.getSummary(agent, [client, client, other_client], "", "") == (
        5,
        9460,
        2,
    )  # named twice, counted twice


def test_get_summary_ties_take_the_fewest_decimals_and_round_toward_zero(
    reputation: Any, agent: int, client: Any, other_client: Any
) -> None:
    give(reputation, client, agent, 1, 0)  # 1
    give(reputation, other_client, agent, 5, 1)  # 0.5
    assert reputation.getSummary(agent, [client, other_client], "", "") == (2, 0, 0)  # 0.75 at 0 decimals -> 0
    give(reputation, client, agent, -32, 1, "yield")
    give(reputation, other_client, agent, -33, 1, "yield")
    assert reputation.getSummary(agent, [client, other_client], "yield", "") == (2, -32, 1)  # -3.25 -> -3.2


def test_get_summary_at_the_value_bound_does_not_overflow(
    reputation: Any, agent: int, client: Any, other_client: Any
) -> None:
    give(reputation, client, agent, MAX_ABS_VALUE, 0)
    give(reputation, other_client, agent, MAX_ABS_VALUE, 0)
    give(reputation, other_client, agent, -MAX_ABS_VALUE, 18)  # -1e20
    wad = 10**18
    mean = (2 * MAX_ABS_VALUE * wad - MAX_ABS_VALUE) // 3 // wad  # the sum at 18 decimals, near 2e56
    assert reputation.getSummary(agent, [client, other_client], "", "") == (3, mean, 0)


def test_get_summary_filters_tags_and_leaves_revoked_feedback_out(
    reputation: Any, agent: int, client: Any, other_client: Any
) -> None:
    give(reputation, client, agent, 90, 0, "starred", "week")
    give(reputation, client, agent, 70, 0, "starred", "month")
    give(reputation, other_client, agent, 1, 0, "reachable", "week")
    give(reputation, other_client, agent, 10, 0, "starred", "week")
    clients = [client, other_client]
    assert reputation.getSummary(agent, clients, "starred", "") == (3, 56, 0)  # 170 / 3
    assert reputation.getSummary(agent, clients, "starred", "week") == (2, 50, 0)
    assert reputation.getSummary(agent, clients, "", "week") == (3, 33, 0)  # 101 / 3
    assert reputation.getSummary(agent, clients, "uptime", "") == (0, 0, 0)
    reputation.revokeFeedback(agent, 2, sender=other_client)
    assert reputation.getSummary(agent, clients, "starred", "") == (2, 80, 0)


def test_read_all_feedback_filters_clients_tags_and_revocation(
    reputation: Any, agent: int, client: Any, other_client: Any, stranger: Any
) -> None:
    give(reputation, client, agent, 90, 0, "starred", "week")
    give(reputation, other_client, agent, 1, 0, "reachable")
    give(reputation, client, agent, 70, 2, "starred", "month")
    reputation.revokeFeedback(agent, 1, sender=client)

    everyone = reputation.readAllFeedback(agent, [], "", "", True)
    assert list(map(list, everyone)) == [
        [client.address, client.address, other_client.address],  # clients in order of first feedback
        [1, 2, 1],
        [90, 70, 1],
        [0, 2, 0],
        ["starred", "starred", "reachable"],
        ["week", "month", ""],
        [True, False, False],
    ]
    unrevoked = reputation.readAllFeedback(agent, [], "", "", False)
    assert list(unrevoked[0]) == [client.address, other_client.address] and list(unrevoked[1]) == [2, 1]
    named = reputation.readAllFeedback(agent, [other_client], "", "", True)
    assert list(named[0]) == [other_client.address] and list(named[2]) == [1]
    tagged = reputation.readAllFeedback(agent, [], "starred", "week", True)
    assert list(tagged[1]) == [1] and list(tagged[6]) == [True]
    by_tag2 = reputation.readAllFeedback(agent, [], "", "month", False)
    assert list(by_tag2[2]) == [70]
    assert all(len(column) == 0 for column in reputation.readAllFeedback(agent, [stranger], "", "", True))
    assert all(len(column) == 0 for column in reputation.readAllFeedback(UNKNOWN_AGENT, [], "", "", True))


def test_get_response_count_by_client_feedback_and_responder(
    reputation: Any, agent: int, owner: Any, client: Any, other_client: Any, stranger: Any
) -> None:
    give(reputation, client, agent, 1)
    give(reputation, client, agent, 2)
    give(reputation, other_client, agent, 3)
    for responder, who, index in (
        (owner, client, 1),
        (owner, client, 1),
        (stranger, client, 1),
        (stranger, client, 2),
        (owner, other_client, 1),
    ):
        reputation.appendResponse(agent, who, index, "ipfs://r", b"\x00" * 32, sender=responder)
    count = reputation.getResponseCount
    assert count(agent, ZERO_ADDRESS, 0, []) == 5  # every client
    assert count(agent, ZERO_ADDRESS, 7, [stranger]) == 2  # client zero ignores the index
    assert count(agent, client, 0, []) == 4  # every feedback of the client
    assert count(agent, client, 0, [owner]) == 2
    assert count(agent, client, 1, []) == 3  # one feedback
    assert count(agent, client, 1, [stranger]) == 1
    assert count(agent, client, 1, [owner, stranger]) == 3
    assert count(agent, client, 2, [owner]) == 0
    assert count(agent, other_client, 1, []) == 1
    assert count(agent, client, 9, []) == 0  # past the last: nothing, no revert
    assert count(UNKNOWN_AGENT, ZERO_ADDRESS, 0, []) == 0


# --- ValidationRegistry -----------------------------------------------------------------------


def test_validation_registry_names_its_identity_registry_version_and_bound(validation: Any, identity: Any) -> None:
    assert validation.getIdentityRegistry() == identity.address
    assert (validation.getVersion(), validation.MAX_RESPONSE()) == ("2.0.0", 100)


def test_a_validation_request_is_recorded_and_listed(
    validation: Any, agent: int, owner: Any, validator: Any, chain: Any
) -> None:
    now = pin_time(chain)
    receipt = validation.validationRequest(validator, agent, "ipfs://request", request_hash("work"), sender=owner)
    (log,) = receipt.events
    assert (log.event_name, log.validatorAddress, log.agentId, log.requestURI, log.requestHash) == (
        "ValidationRequest",
        validator.address,
        agent,
        "ipfs://request",
        request_hash("work"),
    )
    assert validation.getValidationStatus(request_hash("work")) == (validator.address, agent, 0, b"\x00" * 32, "", now)
    assert list(validation.getAgentValidations(agent)) == [request_hash("work")]
    assert list(validation.getValidatorRequests(validator)) == [request_hash("work")]
    assert validation.getSummary(agent, [], "") == (0, 0)  # not answered yet


def test_validation_request_reverts(
    identity: Any, validation: Any, agent: int, owner: Any, validator: Any, stranger: Any
) -> None:
    with reverts(validation.ValidationRegistry__ZeroValidator):
        validation.validationRequest(ZERO_ADDRESS, agent, "ipfs://r", request_hash("a"), sender=owner)
    with reverts(validation.ValidationRegistry__NotAuthorized, caller=stranger.address, agentId=agent):
        validation.validationRequest(validator, agent, "ipfs://r", request_hash("a"), sender=stranger)
    with reverts_raw("ERC721NonexistentToken(uint256)", UNKNOWN_AGENT):
        validation.validationRequest(validator, UNKNOWN_AGENT, "ipfs://r", request_hash("a"), sender=owner)
    validation.validationRequest(validator, agent, "ipfs://r", request_hash("a"), sender=owner)
    with reverts(validation.ValidationRegistry__RequestExists, requestHash=request_hash("a")):
        validation.validationRequest(validator, agent, "ipfs://r2", request_hash("a"), sender=owner)
    stranger_agent = register(identity, stranger)  # a hash is one request, whichever agent asks
    with reverts(validation.ValidationRegistry__RequestExists):
        validation.validationRequest(stranger, stranger_agent, "ipfs://r", request_hash("a"), sender=stranger)


@pytest.mark.parametrize("approval", ["approve", "setApprovalForAll"])
def test_an_approved_operator_requests_validation(
    identity: Any, validation: Any, agent: int, owner: Any, operator: Any, validator: Any, approval: str
) -> None:
    if approval == "approve":
        identity.approve(operator, agent, sender=owner)
    else:
        identity.setApprovalForAll(operator, True, sender=owner)
    validation.validationRequest(validator, agent, "ipfs://r", request_hash("op"), sender=operator)
    assert validation.getValidationStatus(request_hash("op"))[1] == agent


def test_validation_response_reverts(validation: Any, agent: int, owner: Any, validator: Any, stranger: Any) -> None:
    with reverts(validation.ValidationRegistry__UnknownRequest, requestHash=request_hash("none")):
        validation.validationResponse(request_hash("none"), 100, "", b"\x00" * 32, "", sender=validator)
    with reverts(validation.ValidationRegistry__UnknownRequest, requestHash=request_hash("none")):
        validation.getValidationStatus(request_hash("none"))
    validation.validationRequest(validator, agent, "ipfs://r", request_hash("w"), sender=owner)
    for caller in (stranger, owner):
        with reverts(
            validation.ValidationRegistry__NotValidator, caller=caller.address, validatorAddress=validator.address
        ):
            validation.validationResponse(request_hash("w"), 100, "", b"\x00" * 32, "", sender=caller)
    with reverts(validation.ValidationRegistry__BadResponse, response=101):
        validation.validationResponse(request_hash("w"), 101, "", b"\x00" * 32, "", sender=validator)
    validation.validationResponse(request_hash("w"), 100, "", b"\x00" * 32, "", sender=validator)  # the bound
    assert validation.getValidationStatus(request_hash("w"))[2] == 100


def test_repeated_responses_the_last_one_stands(
    validation: Any, agent: int, owner: Any, validator: Any, chain: Any
) -> None:
    validation.validationRequest(validator, agent, "ipfs://r", request_hash("w"), sender=owner)
    first = pin_time(chain)
    receipt = validation.validationResponse(
        request_hash("w"), 40, "ipfs://soft", b"\x01" * 32, "soft-finality", sender=validator
    )
    (log,) = receipt.events
    assert (log.event_name, log.validatorAddress, log.agentId, log.requestHash) == (
        "ValidationResponse",
        validator.address,
        agent,
        request_hash("w"),
    )
    assert (log.response, log.responseURI, log.responseHash, log.tag) == (
        40,
        "ipfs://soft",
        b"\x01" * 32,
        "soft-finality",
    )
    status = validation.getValidationStatus(request_hash("w"))
    assert status == (validator.address, agent, 40, b"\x01" * 32, "soft-finality", first)
    chain.pending_timestamp = first + 100
    validation.validationResponse(request_hash("w"), 0, "", b"\x02" * 32, "hard-finality", sender=validator)
    status = validation.getValidationStatus(request_hash("w"))
    assert status == (validator.address, agent, 0, b"\x02" * 32, "hard-finality", first + 100)
    assert validation.getSummary(agent, [], "") == (1, 0)  # answered 0 counts


def test_validation_summary_filters_validators_and_tags(
    identity: Any, validation: Any, agent: int, owner: Any, validator: Any, other_validator: Any, stranger: Any
) -> None:
    answers = [(validator, "a", 100, "zkml"), (validator, "b", 51, "tee"), (other_validator, "c", 0, "zkml")]
    for who, label, _, _ in [*answers, (other_validator, "unanswered", 0, "")]:
        validation.validationRequest(who, agent, "ipfs://r", request_hash(label), sender=owner)
    for who, label, response, tag in answers:
        validation.validationResponse(request_hash(label), response, "", b"\x00" * 32, tag, sender=who)
    assert validation.getSummary(agent, [], "") == (3, 50)  # 151 / 3, rounded down
    assert validation.getSummary(agent, [validator], "") == (2, 75)  # 151 / 2
    assert validation.getSummary(agent, [other_validator], "") == (1, 0)
    assert validation.getSummary(agent, [validator, other_validator], "zkml") == (2, 50)
    assert validation.getSummary(agent, [], "tee") == (1, 51)
    assert validation.getSummary(agent, [stranger], "") == (0, 0)
    assert validation.getSummary(UNKNOWN_AGENT, [], "") == (0, 0)
    assert list(validation.getAgentValidations(agent)) == [request_hash(x) for x in ("a", "b", "c", "unanswered")]
    assert list(validation.getValidatorRequests(other_validator)) == [request_hash("c"), request_hash("unanswered")]
    assert list(validation.getValidatorRequests(stranger)) == []
