"""ERC-8004 (Trustless Agents) for proofmint's agents: the registries on development chains, the
canonical ones on live networks, and each operator's agents registered with a verified wallet.

On a development chain `deploy_agent_registries` deploys conforming Identity, Reputation and
Validation registries (`contracts/erc8004/`) and proofmint's zkML validator; on a live network the
Identity and Reputation registries are the canonical singletons (`CANONICAL`, the addresses the
ERC-8004 team deployed on every chain: one for mainnets, one for testnets), or those configured.
`register_agents` mints one agent per role to the operator, its `agentURI` the API's registration
file for it, and sets each agent's wallet with that wallet's EIP-712 proof of control
(`AgentWalletSet`), as the specification asks."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from eth_account import Account

from agents.core.errors import PermanentError

IDENTITY: Final = "IdentityRegistry"
REPUTATION: Final = "ReputationRegistry"
VALIDATION: Final = "ValidationRegistry"
VALIDATOR: Final = "ZkmlValidator"
CONTRACTS: Final = (IDENTITY, REPUTATION, VALIDATION, VALIDATOR)
"""The contract names these addresses go by in deployment records and the API's chain client."""

ROLES: Final[Mapping[str, str]] = {
    "generator": "Generates images with a registered text-to-image model version and records each "
    "asset's lineage (model, weights digest, prompt, seed, parameters, parents) on chain.",
    "prover": "Curates generated images with a trained curation head and proves its inference with EZKL; "
    "the on-chain verifier's verdict is what proofmint's zkML validator answers from.",
    "settlement": "Takes per-use licence payments (x402 exact, and proofmint-voucher cumulative vouchers) "
    "and settles them into each asset's royalty split.",
}
"""The agents each operator registers, and what each does (its registration file's description)."""

_MAINNET_IDENTITY: Final = "0x8004A169FB4a3325136EB29fA0ceB6D2e539a432"
_MAINNET_REPUTATION: Final = "0x8004BAa17C55a88189AE136b182e5fdA19dE9b63"
_TESTNET_IDENTITY: Final = "0x8004A818BFB912233c491871b3d84c89A494BD9e"
_TESTNET_REPUTATION: Final = "0x8004B663056A597Dffe9eCcC1965A193B7388713"
CANONICAL: Final[Mapping[int, tuple[str, str]]] = {
    **{chain: (_MAINNET_IDENTITY, _MAINNET_REPUTATION) for chain in (1, 10, 8453, 42161)},
    **{chain: (_TESTNET_IDENTITY, _TESTNET_REPUTATION) for chain in (11155111, 11155420, 84532, 421614)},
}
"""(Identity, Reputation) registries by chain id on the networks proofmint's ape configuration
names (Ethereum, OP, Base, Arbitrum and their Sepolia testnets), from erc-8004/erc-8004-contracts.
The Validation Registry has no canonical deployment yet: a live network needs one configured."""

WALLET_SIGNATURE_TTL_S: Final = 240
"""How long an agent-wallet signature is good for (the registry takes at most 5 minutes)."""

REGISTRATION_TYPE: Final = "https://eips.ethereum.org/EIPS/eip-8004#registration-v1"


class AgentRegistryError(PermanentError, ValueError):
    """No ERC-8004 registry for this network: configure its addresses."""


@dataclass(frozen=True)
class AgentRegistries:
    """Where one chain's ERC-8004 registries (and proofmint's validator) are."""

    chain_id: int
    identity: str
    reputation: str
    validation: str | None = None
    validator: str | None = None

    @property
    def agent_registry(self) -> str:
        """The specification's `agentRegistry`: eip155:{chainId}:{identityRegistry}."""
        return f"eip155:{self.chain_id}:{self.identity}"

    def addresses(self) -> dict[str, str]:
        """Contract name -> address, for deployment records and the chain client."""
        named = {
            IDENTITY: self.identity,
            REPUTATION: self.reputation,
            VALIDATION: self.validation,
            VALIDATOR: self.validator,
        }
        return {name: address for name, address in named.items() if address is not None}


@dataclass(frozen=True)
class AgentDirectory:
    """An operator's registered agents: the registries, role -> agent id, the owner, and the API
    base URL their registration files are served from."""

    registries: AgentRegistries
    ids: Mapping[str, int]
    owner: str
    public_url: str


def canonical_registries(
    chain_id: int, *, validation: str | None = None, validator: str | None = None
) -> AgentRegistries:
    """A live network's registries: the canonical Identity and Reputation registries, with the
    Validation Registry and validator given (none is canonical yet)."""
    try:
        identity, reputation = CANONICAL[chain_id]
    except KeyError:
        known = ", ".join(str(c) for c in sorted(CANONICAL))
        raise AgentRegistryError(
            f"no canonical ERC-8004 registry is known for chain {chain_id} (known: {known}); configure the identity "
            "and reputation registry addresses"
        ) from None
    return AgentRegistries(chain_id, identity, reputation, validation, validator)


def deploy_agent_registries(
    project: Any, owner: Any, chain_id: int, provenance: str, response_base: str
) -> AgentRegistries:
    """A development chain's registries and validator, deployed by `owner` (blocking, through ape).
    `response_base`: where the validator's responses point (the API's /v1/validations/)."""
    identity = owner.deploy(getattr(project, IDENTITY))
    reputation = owner.deploy(getattr(project, REPUTATION), identity.address)
    validation = owner.deploy(getattr(project, VALIDATION), identity.address)
    validator = owner.deploy(getattr(project, VALIDATOR), validation.address, provenance, response_base)
    return AgentRegistries(
        chain_id, str(identity.address), str(reputation.address), str(validation.address), str(validator.address)
    )


def wallet_signature(
    wallet_key: Any, *, chain_id: int, identity: str, agent_id: int, owner: str, deadline: int
) -> bytes:
    """The wallet's EIP-712 proof of control that `setAgentWallet` checks:
    AgentWalletSet(agentId, newWallet, owner, deadline) in the registry's domain
    ("ERC8004IdentityRegistry", "1")."""
    wallet = Account.from_key(wallet_key)
    signed = Account.sign_typed_data(
        wallet.key,
        {"name": "ERC8004IdentityRegistry", "version": "1", "chainId": chain_id, "verifyingContract": identity},
        {
            "AgentWalletSet": [
                {"name": "agentId", "type": "uint256"},
                {"name": "newWallet", "type": "address"},
                {"name": "owner", "type": "address"},
                {"name": "deadline", "type": "uint256"},
            ]
        },
        {"agentId": agent_id, "newWallet": wallet.address, "owner": owner, "deadline": deadline},
    )
    return bytes(signed.signature)


def agent_uri(public_url: str, role: str) -> str:
    """Where the API serves `role`'s registration file."""
    return f"{public_url.rstrip('/')}/v1/agents/{role}/registration.json"


def register_agents(
    project: Any, owner: Any, registries: AgentRegistries, public_url: str, wallet_keys: Mapping[str, Any], now: int
) -> dict[str, int]:
    """Registers one agent per role of `ROLES` to `owner` (blocking, through ape), its URI the
    API's registration file at `public_url`, and sets its wallet to the key `wallet_keys[role]`
    holds with that key's signature (valid `WALLET_SIGNATURE_TTL_S` from `now`, the chain's
    time). Returns role -> agent id."""
    identity = getattr(project, IDENTITY).at(registries.identity)
    ids: dict[str, int] = {}
    for role in ROLES:
        receipt = identity.register(agent_uri(public_url, role), sender=owner)
        agent_id = int(receipt.decode_logs(identity.Registered)[0].agentId)
        key = wallet_keys[role]
        deadline = now + WALLET_SIGNATURE_TTL_S
        signature = wallet_signature(
            key,
            chain_id=registries.chain_id,
            identity=registries.identity,
            agent_id=agent_id,
            owner=str(owner.address),
            deadline=deadline,
        )
        identity.setAgentWallet(agent_id, Account.from_key(key).address, deadline, signature, sender=owner)
        ids[role] = agent_id
    return ids
