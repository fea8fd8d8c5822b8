"""Reputation only from paying clients: proofmint's reading of an agent's ERC-8004 feedback.

The Reputation Registry takes feedback from anyone (the specification leaves Sybil resistance to
whoever reads it, and asks readers to name the clients they count). Proofmint counts a client
only with evidence that it paid for this operator's work, found by the client's own address (the
`clientAddress` the registry recorded as the feedback's sender, so nobody can borrow another's
evidence), on an asset that is the operator's (its creator is the agents' owner, or approved the
owner as its registrar: paying oneself for one's own asset buys no standing):
- a settled voucher: a `VoucherSettled` naming the client as payer, on terms of such an asset,
  whose channel with this API's service the chain shows settled (`settledOf > 0`);
- an x402 `exact` receipt: a payment for such an asset that this API settled on chain (receipt
  checked) from the client, as the journal records it (kind `x402`, at `x402-paid` or
  `x402-swept`).
Everyone else's feedback stays on chain, listed as ignored, and is not in the summary, which the
registry itself computes (`getSummary` over the paying clients).

What a reading costs does not grow with the chain's history per client: `VoucherSettled` is
indexed incrementally (one read of the new blocks per refresh), evidence found is kept (it never
stops being true), and at most `MAX_CLIENTS` clients are judged per reading (the rest are
reported as not judged)."""

from __future__ import annotations

from typing import Any, Final

from agents.api.chainview import EventIndex
from agents.core.addresses import checksummed
from agents.deploy.erc8004 import REPUTATION
from agents.runtime import jobs
from agents.runtime.chain import ChainClient, tx_hash_hex
from agents.runtime.journal import Journal

LICENSES: Final = "LicenseManager"
PROVENANCE: Final = "ProvenanceRegistry"
SETTLED_X402: Final = (jobs.X402_PAID, jobs.X402_SWEPT)
MAX_CLIENTS: Final = 2_000
"""Most clients one reading judges (in the registry's order: first feedback first)."""


class PaymentEvidence:
    """Who paid this operator (see the module docstring), for one API process."""

    def __init__(self, client: ChainClient, journal: Journal, service: str, owner: str, *, refresh_s: float = 1.0):
        self.client, self.journal = client, journal
        self.service, self.owner = checksummed(service), checksummed(owner)
        self._settled: dict[str, dict[int, str]] = {}
        """payer (lower case) -> terms id -> a transaction that settled a voucher of it."""
        self._vouchers = EventIndex(client, LICENSES, "VoucherSettled", self._on_settled, refresh_s)
        self._found: dict[str, dict[str, Any]] = {}
        self._ours: dict[bytes, bool] = {}

    def _on_settled(self, log: Any) -> None:
        by_terms = self._settled.setdefault(str(log["args"]["payer"]).lower(), {})
        by_terms.setdefault(int(log["args"]["termsId"]), tx_hash_hex(log["transactionHash"]))

    async def refresh(self) -> None:
        await self._vouchers.refresh()

    async def of(self, payer: str) -> dict[str, Any] | None:
        """The evidence that `payer` paid this operator, or None (call `refresh` first)."""
        payer = checksummed(payer)
        if payer in self._found:
            return self._found[payer]
        evidence = await self._x402(payer) or await self._voucher(payer)
        if evidence is not None:
            self._found[payer] = evidence
        return evidence

    async def _x402(self, payer: str) -> dict[str, Any] | None:
        _, paid = await self.journal.call(self.journal.of_requester, jobs.X402, payer, limit=20)
        for job in paid:
            asset = job.payload.get("asset")
            settled = job.stage in SETTLED_X402 and job.payload.get("transaction") and asset
            if settled and await self._is_ours(bytes.fromhex(str(asset).removeprefix("0x"))):
                tx = "0x" + str(job.payload["transaction"]).removeprefix("0x")
                return {"kind": "x402", "asset": asset, "transaction": tx}
        return None

    async def _voucher(self, payer: str) -> dict[str, Any] | None:
        for terms_id, tx in self._settled.get(payer.lower(), {}).items():
            if int(await self.client.call(LICENSES, "settledOf", payer, self.service, terms_id)) == 0:
                continue  # settled with another service
            asset = bytes((await self.client.call(LICENSES, "getTerms", terms_id))[0])
            if await self._is_ours(asset):
                return {"kind": "voucher", "termsId": terms_id, "asset": "0x" + asset.hex(), "transaction": tx}
        return None

    async def _is_ours(self, asset: bytes) -> bool:
        """Whether the asset is the operator's work: created by the agents' owner, or by a creator
        that approved the owner as registrar (kept: a creator never changes but by a takeover,
        and an approval that lapses later does not undo a payment made)."""
        if asset not in self._ours:
            creator = checksummed(str(await self.client.call(PROVENANCE, "creatorOf", asset)))
            ours = creator == self.owner or bool(await self.client.call(PROVENANCE, "isRegistrar", creator, self.owner))
            self._ours[asset] = ours
        return self._ours[asset]


async def reputation(evidence: PaymentEvidence, agent_id: int, *, tag1: str = "", tag2: str = "") -> dict[str, Any]:
    """The agent's feedback summary over its paying clients, with each counted client's evidence
    and the clients ignored for want of it."""
    client = evidence.client
    clients = [checksummed(str(c)) for c in await client.call(REPUTATION, "getClients", agent_id)]
    await evidence.refresh()
    paying: list[dict[str, Any]] = []
    ignored: list[str] = []
    for address in clients[:MAX_CLIENTS]:
        found = await evidence.of(address)
        if found is None:
            ignored.append(address)
        else:
            paying.append({"address": address, "evidence": found})
    count, value, decimals = 0, 0, 0
    if paying:
        summary = await client.call(REPUTATION, "getSummary", agent_id, [p["address"] for p in paying], tag1, tag2)
        count, value, decimals = int(summary[0]), int(summary[1]), int(summary[2])
    return {
        "agentId": agent_id,
        "count": count,
        "value": value,
        "valueDecimals": decimals,
        "tag1": tag1,
        "tag2": tag2,
        "payingClients": paying,
        "ignoredClients": ignored,
        "notJudged": max(0, len(clients) - MAX_CLIENTS),
    }
