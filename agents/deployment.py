"""Deploy proofmint's contracts through ape and record where they went.

Used by `ape run deploy` and by the demo. Live networks get a JSON record per network under
`deployments/` (committed, so integrators find the addresses); local chains are ephemeral and
recorded nowhere.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

CORE_CONTRACTS: tuple[str, ...] = ("ModelRegistry",)
"""Deployed in this order; each entry is a contract name in `contracts/`. Test-only contracts never appear."""

LOCAL_NETWORKS = frozenset({"local"})


@dataclass(frozen=True)
class Deployed:
    """One deployed contract."""

    name: str
    address: str
    txn_hash: str
    gas_used: int
    block_number: int


def is_live(network_name: str) -> bool:
    """True for every network except the local ones (embedded test chain, anvil)."""
    return network_name not in LOCAL_NETWORKS


def deploy_core(project: Any, account: Any, chain: Any) -> list[Deployed]:
    """Deploy every contract in CORE_CONTRACTS from `account`; return what was deployed."""
    deployed: list[Deployed] = []
    for name in CORE_CONTRACTS:
        instance = account.deploy(getattr(project, name))
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


def record_deployment(root: Path, network_choice: str, chain_id: int, deployed: list[Deployed]) -> Path:
    """Write deployments/<ecosystem>_<network>.json atomically and return its path."""
    folder = root / "deployments"
    folder.mkdir(exist_ok=True)
    stem = network_choice.replace(":", "_").replace("/", "_")
    target = folder / f"{stem}.json"
    payload = {"network": network_choice, "chainId": chain_id, "contracts": [asdict(d) for d in deployed]}
    tmp = target.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf8")
    tmp.replace(target)
    return target


def format_table(deployed: list[Deployed]) -> str:
    """A fixed-width table of name, address and gas."""
    rows = [("contract", "address", "gas used")] + [(d.name, d.address, f"{d.gas_used:,}") for d in deployed]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = [f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:>{widths[2]}}" for r in rows]
    lines.insert(1, "-" * len(lines[0]))
    total = sum(d.gas_used for d in deployed)
    lines.append(f"{'total':<{widths[0]}}  {'':<{widths[1]}}  {total:>{widths[2]},}")
    return "\n".join(lines)
