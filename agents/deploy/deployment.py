"""Deploy proofmint's contracts through ape and record where they went.

Used by `ape run deploy` and by the demo; where records go and how scripts find them again is
`agents.deploy.operator`'s job.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

import rlp  # type: ignore[import-untyped]
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from agents.core.errors import PermanentError

CORE_CONTRACTS: tuple[str, ...] = ("ModelRegistry", "ProvenanceRegistry", "LicenseManager", "RoyaltySplitter")
"""Deployed in this order, from consecutive nonces of one account; each entry is a contract name
in `contracts/`. Test-only contracts never appear."""

LOCAL_NETWORKS = frozenset({"local"})


class DeploymentError(PermanentError):
    """A deployment went somewhere other than planned (another transaction used a nonce between
    two of ours). Nothing half-wired is left usable: the contracts check their wiring in their
    constructors. Deploy again from an account nobody else is using."""


@dataclass(frozen=True)
class CoreConfig:
    """Constructor parameters of the core contracts. Addresses default to the deployer."""

    protocol_fee_bps: int = 250
    secondary_royalty_bps: int = 500
    withdrawal_delay_s: int = 86_400
    treasury: str | None = None
    owner: str | None = None


def create_address(sender: str, nonce: int) -> str:
    """The address CREATE gives the contract that `sender` deploys with `nonce`."""
    encoded = rlp.encode([bytes.fromhex(sender[2:]), nonce])
    return to_checksum_address(keccak(encoded)[12:])


@dataclass(frozen=True)
class Deployed:
    """One deployed contract."""

    name: str
    address: str
    txn_hash: str
    gas_used: int
    block_number: int


def is_live(network_name: str) -> bool:
    """True for every network except the local ones (embedded test chain, anvil) and local forks."""
    return network_name not in LOCAL_NETWORKS and not network_name.endswith("-fork")


def deploy_core(project: Any, account: Any, chain: Any, config: CoreConfig | None = None) -> list[Deployed]:
    """Deploy the four core contracts from `account` and return what was deployed.

    The registry, licence manager and splitter refer to each other through immutables, so each
    is given the address its neighbour will get from the next nonce; the constructors check the
    wiring and revert when it is wrong.
    """
    cfg = config or CoreConfig()
    sender = str(account.address)
    nonce = int(account.nonce)
    planned = {name: create_address(sender, nonce + i) for i, name in enumerate(CORE_CONTRACTS)}
    args: dict[str, tuple[Any, ...]] = {
        "ModelRegistry": (),
        "ProvenanceRegistry": (
            planned["ModelRegistry"],
            planned["LicenseManager"],
            cfg.protocol_fee_bps,
            cfg.secondary_royalty_bps,
        ),
        "LicenseManager": (
            planned["ProvenanceRegistry"],
            planned["RoyaltySplitter"],
            cfg.withdrawal_delay_s,
            cfg.owner or sender,
        ),
        "RoyaltySplitter": (
            planned["ProvenanceRegistry"],
            planned["ModelRegistry"],
            planned["LicenseManager"],
            cfg.treasury or sender,
        ),
    }
    deployed: list[Deployed] = []
    for name in CORE_CONTRACTS:
        instance = account.deploy(getattr(project, name), *args[name])
        if str(instance.address) != planned[name]:
            raise DeploymentError(
                f"{name} landed at {instance.address}, planned {planned[name]}: another transaction from "
                f"{sender} used a nonce during the deployment"
            )
        receipt = chain.get_receipt(instance.txn_hash)
        deployed.append(
            Deployed(
                name=name,
                address=str(instance.address),
                txn_hash=str(receipt.txn_hash),
                gas_used=int(receipt.gas_used),
                block_number=int(receipt.block_number),
            )
        )
    return deployed


DEV_TOKEN: Final = "DevUsd"
"""The EIP-3009 dollar development chains get for x402 `exact` payments (never deployed live)."""
DEV_TOKEN_GRANT: Final = 1_000 * 10**6
"""What each development account is minted of it: 1,000 pUSD (6 decimals)."""


def deploy_dev_token(project: Any, owner: Any, licenses: Any, holders: Sequence[str]) -> Any:
    """A development chain's EIP-3009 dollar (`contracts/dev/DevUsd.sol`), allow-listed in the
    licence manager (which `owner` must own) and `DEV_TOKEN_GRANT` minted to each of `holders`."""
    token = owner.deploy(getattr(project, DEV_TOKEN), owner.address)
    licenses.setCurrencyAllowed(token.address, True, sender=owner)
    for holder in holders:
        token.mint(holder, DEV_TOKEN_GRANT, sender=owner)
    return token


def record_deployment(path: Path, network_choice: str, chain_id: int, deployed: list[Deployed]) -> Path:
    """Write the deployment record to `path` atomically (a crash leaves the old record or the new
    one, never half of one) and return `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"network": network_choice, "chainId": chain_id, "contracts": [asdict(d) for d in deployed]}
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf8")
    tmp.replace(path)
    return path


def format_table(deployed: list[Deployed]) -> str:
    """A fixed-width table of name, address and gas."""
    rows = [("contract", "address", "gas used")] + [(d.name, d.address, f"{d.gas_used:,}") for d in deployed]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = [f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:>{widths[2]}}" for r in rows]
    lines.insert(1, "-" * len(lines[0]))
    total = sum(d.gas_used for d in deployed)
    lines.append(f"{'total':<{widths[0]}}  {'':<{widths[1]}}  {total:>{widths[2]},}")
    return "\n".join(lines)
