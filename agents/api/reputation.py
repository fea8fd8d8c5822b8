"""Reputation only from paying clients: proofmint's reading of an agent's ERC-8004 feedback.

The Reputation Registry takes feedback from anyone (the specification leaves Sybil resistance to
whoever reads it, and asks readers to name the clients they count). Proofmint counts a client
only with evidence that it paid for this operator's work, found by the client's own address (the
`clientAddress` the registry recorded as the feedback's sender, so nobody can borrow another's
evidence):
- a settled voucher: a `VoucherSettled` log naming the client as payer, on terms whose channel
  with this API's service the chain shows settled (`settledOf > 0`);
- an x402 `exact` receipt: a payment this API settled on chain (receipt checked) from the client,
  as the journal records it (kind `x402`, at `x402-paid` or `x402-swept`).
Everyone else's feedback stays on chain, listed as ignored, and is not in the summary, which the
registry itself computes (`getSummary` over the paying clients)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from agents.core.addresses import checksummed
from agents.deploy.erc8004 import REPUTATION
from agents.runtime import jobs
from agents.runtime.chain import ChainClient
from agents.runtime.journal import Journal

LICENSES = "LicenseManager"
SETTLED_X402 = (jobs.X402_PAID, jobs.X402_SWEPT)


async def payment_evidence(client: ChainClient, journal: Journal, service: str, payer: str) -> dict[str, Any] | None:
    """The first evidence that `payer` paid this operator (see the module docstring), or None."""
    _, paid = await journal.call(journal.of_requester, jobs.X402, payer, limit=20)
    for job in paid:
        if job.stage in SETTLED_X402 and job.payload.get("transaction"):
            return {"kind": "x402", "transaction": "0x" + str(job.payload["transaction"]).removeprefix("0x")}
    logs = await client.get_logs(LICENSES, "VoucherSettled", from_block=0, argument_filters={"payer": payer})
    for log in logs:
        terms_id = int(log["args"]["termsId"])
        if int(await client.call(LICENSES, "settledOf", payer, service, terms_id)) > 0:
            tx = log["transactionHash"]
            return {"kind": "voucher", "termsId": terms_id, "transaction": tx.hex() if hasattr(tx, "hex") else str(tx)}
    return None


async def reputation(
    client: ChainClient, journal: Journal, service: str, agent_id: int, *, tag1: str = "", tag2: str = ""
) -> dict[str, Any]:
    """The agent's feedback summary over its paying clients, with each counted client's evidence
    and the clients ignored for want of it."""
    clients: Sequence[str] = [checksummed(c) for c in await client.call(REPUTATION, "getClients", agent_id)]
    paying: list[dict[str, Any]] = []
    ignored: list[str] = []
    for address in clients:
        evidence = await payment_evidence(client, journal, service, address)
        if evidence is None:
            ignored.append(address)
        else:
            paying.append({"address": address, "evidence": evidence})
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
    }
