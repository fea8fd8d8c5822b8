"""What an account is owed (the dApp's dashboard): its withdrawable royalty balance, the revenue
of the assets it created still waiting to be split, the model versions it develops, and its
shares of models' training-data pools with the Merkle proof that claims them.

Data shares need the originators' tree of each model (only its root is on chain): the API is
given the trees it can serve (`DataTrees`: `proofmint up` passes its own; `register_model`'s
`<csv>.tree.json` files otherwise)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from eth_utils.address import to_checksum_address

from agents.api.catalog import Catalog
from agents.api.chainview import ChainView
from agents.api.views import Asset
from agents.core.merkle import WEIGHT_SCALE, DataTree, MerkleError

SPLITTER = "RoyaltySplitter"
#: At most this many of an account's assets are listed (newest last), each one chain read.
MAX_ASSETS = 200

DataTrees = Mapping[int, DataTree]


def load_tree_file(path: Path) -> tuple[int, DataTree]:
    """A model's originators' tree from `register_model`'s `<csv>.tree.json`; ValueError if the
    file does not hold one whose root is the one it names."""
    try:
        obj = json.loads(path.read_text(encoding="utf8"))
        shares = [(address, int(entry["weight"])) for address, entry in obj["originators"].items()]
        model_id = int(obj["modelId"])
        tree = DataTree(shares)
    except (OSError, ValueError, KeyError, TypeError, AttributeError, MerkleError) as exc:
        raise ValueError(f"{path}: not a data tree file ({exc})") from exc
    if "0x" + tree.root.hex() != str(obj.get("root", "")).lower():
        raise ValueError(f"{path}: its originators do not hash to the root it names")
    return model_id, tree


#: An asset's cost in US dollars by its digest (`{"usd", "byStage"}`), None where unknown here.
AssetCosts = Callable[[list[str]], Awaitable[dict[str, dict[str, Any] | None]]]


async def owed(
    view: ChainView,
    catalog: Catalog,
    trees: DataTrees,
    account: str,
    currency: str,
    *,
    costs_of: AssetCosts | None = None,
    usd_per_unit: float | None = None,
) -> dict[str, Any]:
    """What `account` is owed and earned in `currency`: its assets' revenue (beside what each
    cost the operator, `costs_of`, and the margin where `usd_per_unit` prices the currency), its
    splitter balance, the models it developed and its training-data shares."""
    client = view.client
    account = to_checksum_address(account)
    mine = await catalog.created_by(account, MAX_ASSETS)

    async def asset_row(item: Asset) -> dict[str, Any]:
        digest = bytes.fromhex(item["digest"][2:])
        pending, distributed = await asyncio.gather(
            client.call(SPLITTER, "pendingRevenueOf", digest, currency),
            client.call(SPLITTER, "distributedOf", digest, currency),
        )
        return {
            "digest": item["digest"],
            "prompt": item["prompt"],
            "pendingRevenue": str(pending),
            "distributed": str(distributed),
        }

    def with_margin(row: dict[str, Any], cost: dict[str, Any] | None) -> dict[str, Any]:
        revenue = (
            (int(row["pendingRevenue"]) + int(row["distributed"])) * usd_per_unit if usd_per_unit is not None else None
        )
        usd = None if cost is None else float(cost["usd"])
        margin = None if usd is None or revenue is None else revenue - usd
        return {
            **row,
            "costUsd": usd,
            "costByStage": None if cost is None else cost["byStage"],
            "revenueUsd": None if revenue is None else round(revenue, 9),
            "marginUsd": None if margin is None else round(margin, 9),
        }

    balance, rows, models = await asyncio.gather(
        client.call(SPLITTER, "balanceOf", account, currency),
        asyncio.gather(*(asset_row(item) for item in mine)),
        view.models(),
    )
    if costs_of is not None:
        found = await costs_of([row["digest"] for row in rows])
        rows = [with_margin(row, found.get(row["digest"])) for row in rows]
    developed = [
        {"modelId": m["modelId"], "developerBps": m["developerBps"], "dataBps": m["dataBps"]}
        for m in models
        if str(m["developer"]).lower() == account.lower()
    ]
    roots = {m["modelId"]: m["dataRoot"] for m in models}
    shares = []
    for model_id, tree in sorted(trees.items()):
        if roots.get(model_id) != "0x" + tree.root.hex():
            continue  # not this chain's model, or a tree for another root: its proofs would fail
        try:
            weight = tree.weight_of(account)
        except MerkleError:
            continue
        (pool, paid), claimed = await asyncio.gather(
            client.call(SPLITTER, "dataPoolOf", model_id, currency),
            client.call(SPLITTER, "dataClaimedOf", model_id, currency, account, weight),
        )
        entitled = int(pool) * weight // WEIGHT_SCALE
        claimable = min(max(entitled - int(claimed), 0), int(pool) - int(paid))
        shares.append(
            {
                "modelId": model_id,
                "weight": weight,
                "proof": ["0x" + p.hex() for p in tree.proof(account)],
                "claimed": str(claimed),
                "claimable": str(claimable),
            }
        )
    return {
        "account": account,
        "currency": to_checksum_address(currency),
        "balance": str(balance),
        "assets": list(rows),
        "models": developed,
        "dataShares": shares,
    }
