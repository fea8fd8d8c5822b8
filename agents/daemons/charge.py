"""Charging x402 `upto` payments for generation requests (`agents.api.upto`) once their work is done.

A payment is a journal job of kind `x402-upto` that the API wrote at `upto-authorised` beside its
request's job. Two steps, each one journal transition:

1. Pricing (`UptoStage.idle_work`, a scan whenever nothing is ready to charge): a payment whose
   request is done consuming (rejected, failed, cancelled, or registered, or whose permit is
   within `SETTLE_MARGIN_S` of its deadline) gets its charge fixed from the request's `Usage`
   (`RequestPricing.charge`) and moves to `upto-charging` with a compare-and-set: two workers
   never price one payment twice, and a price once fixed is the one settled.
2. Settling (`UptoStage.process`, a leased stage): a zero charge settles with no transaction;
   any other is one call of x402's upto proxy, `settle(permit, charge, ...)`, from the service's
   key (the permit's facilitator). A settle the chain refuses is looked up first: if this
   service's own settle transaction (the same calldata) moved the charge already, a previous
   life sent it and that is the settlement; otherwise the payer cancelled the nonce or spent
   the funds, and the payment is `upto-refused` with the chain's reason.

A payment whose request job never appeared (the API stopped between the two journal writes) is
void after `ORPHAN_AFTER_S`: nothing was made for it, nothing is charged.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, Final

from agents.core import costs
from agents.core.addresses import checksummed
from agents.core.metering import STANDARD_LANE, RequestPricing, Usage
from agents.core.permits import TRANSFER_TOPIC, UPTO_PROXY_ADDRESS, UptoPermit, transferred
from agents.core.reverts import WouldRevertError
from agents.runtime import jobs
from agents.runtime.chain import ChainClient, tx_hash_hex
from agents.runtime.journal import Job, StaleJobError
from agents.runtime.sender import RevertedOnChainError
from agents.runtime.stage import Done, Failed, Outcome, Stage

AUTHORISED: Final = jobs.UPTO_AUTHORISED
CHARGING: Final = jobs.UPTO_CHARGING
SETTLED: Final = jobs.UPTO_SETTLED
REFUSED: Final = jobs.UPTO_REFUSED
VOID: Final = jobs.UPTO_VOID
SETTLE_MARGIN_S: Final = 180
"""A payment whose permit has less than this left is charged what its job has consumed so far,
whatever stage the job is at (a job waiting on a person in review, say). The API accepts only
permits with far longer to live (`agents.api.upto.MIN_VALIDITY_S`)."""
ORPHAN_AFTER_S: Final = 120.0
SCAN_EVERY_S: Final = 1.0
SCAN_LIMIT: Final = 500
DONE_CONSUMING: Final = frozenset({jobs.REJECTED, jobs.FAILED, jobs.CANCELLED})
"""Request stages after which a job consumes nothing more (registered ones are found by their
registration transaction)."""


def usage_of(job: Job, pricing: RequestPricing, batch_gas: int | None) -> Usage:
    """What a request's job consumed: nothing unless it made an image and is not failed or
    cancelled (the service's fault, or the requester's, before any charge); the image's steps
    and pixels from its lineage; its registration batch's gas (`batch_gas`) and size."""
    payload = job.payload
    lineage = payload.get("lineage")
    if job.stage in (jobs.FAILED, jobs.CANCELLED) or not isinstance(lineage, dict) or "sha256" not in payload:
        return Usage(generated=False)
    side = pricing.default_side
    pixels = int(lineage.get("height") or side) * int(lineage.get("width") or side)
    size = payload.get("register_batch")
    return Usage(
        generated=True,
        steps=int(lineage["steps"]),
        pixels=pixels,
        batch_gas=batch_gas,
        batch_size=int(size) if batch_gas is not None and size else None,
        lane=str(payload.get("lane", STANDARD_LANE)),
    )


class UptoStage(Stage):
    """See the module docstring: prices done payments while idle, settles priced ones."""

    name = "upto"
    origin = CHARGING
    target = SETTLED
    give_up = jobs.FAILED

    def __init__(
        self,
        journal: Any,
        client: ChainClient,
        pricing: RequestPricing,
        *,
        scan_limit: int = SCAN_LIMIT,
        **options: Any,
    ) -> None:
        super().__init__(journal, **options)
        self.client, self.pricing, self.scan_limit = client, pricing, scan_limit
        self._gas: dict[str, int] = {}  # registration transaction -> gas used
        self._scanned = 0.0
        self._offset = 0  # where the next page of authorised payments starts

    async def idle_work(self) -> None:
        if time.monotonic() - self._scanned < SCAN_EVERY_S:
            return
        self._scanned = time.monotonic()
        await self.price_due()

    async def finish(self) -> None:
        await self.price_due()

    async def price_due(self, now: float | None = None) -> int:
        """Fixes the charge of each authorised payment whose request is done (step 1), a page of
        `scan_limit` a call: the pages follow each other round the stage, so every payment is
        looked at however many wait; how many it priced."""
        at = time.time() if now is None else now
        page = await self.journal.call(self.journal.at_stage, AUTHORISED, limit=self.scan_limit, offset=self._offset)
        priced = left = 0
        for payment in page:
            moved = await self._price(payment, at)
            priced += moved == CHARGING
            left += moved is None
        self._offset = 0 if len(page) < self.scan_limit else self._offset + left
        return priced

    async def _price(self, payment: Job, at: float) -> str | None:
        """Prices or voids one payment if its request is done; the stage it moved to, or None."""
        request = await self.journal.call(self.journal.get, payment.payload.get("request", ""))
        deadline = int(payment.payload["permit"]["deadline"])
        if request is None:
            if at - payment.created_at < ORPHAN_AFTER_S:
                return None
            return await self._move(payment, VOID, {"reason": "its request was never journaled: nothing was made"})
        if request.payload.get("payment") != payment.key:  # a lost write, then a retry with a new permit
            reason = f"its request is paid by another permit ({request.payload.get('payment')}): not used"
            return await self._move(payment, VOID, {"reason": reason})
        registered = request.payload.get("register_tx")
        if not (request.stage in DONE_CONSUMING or registered or deadline - at < SETTLE_MARGIN_S):
            return None
        if request.stage == jobs.REQUESTED:  # the permit runs out before the generator got to it: nothing
            try:  # is made for it (a generator holding it now loses its compare-and-set)
                reason = "cancelled: its x402 upto permit ran out before the generator reached it"
                await self.journal.call(
                    self.journal.advance, [request.key], jobs.REQUESTED, jobs.CANCELLED,
                    updates={request.key: {"reason": reason}},
                )  # fmt: skip
            except StaleJobError:  # generated a moment ago: charged when it is done
                return None
            request = await self.journal.call(self.journal.get, request.key)
            if request is None:
                return None
        gas = await self._batch_gas(str(registered)) if registered else None
        charge = self.pricing.charge(
            usage_of(request, self.pricing, gas), authorised=int(payment.payload["permit"]["amount"])
        )
        charge["requestStage"] = request.stage
        charge["fromBlock"] = await self.client.block_number()
        return await self._move(payment, CHARGING, {"charge": charge})

    async def _move(self, payment: Job, stage: str, updates: dict[str, Any]) -> str | None:
        try:
            await self.journal.call(
                self.journal.advance, [payment.key], AUTHORISED, stage, updates={payment.key: updates}
            )
        except StaleJobError:  # another worker priced it a moment ago
            return None
        return stage

    async def _batch_gas(self, tx: str) -> int:
        if tx not in self._gas:
            receipt = await self.client.node(self.client.web3.eth.get_transaction_receipt, tx)
            self._gas[tx] = int(receipt["gasUsed"])
        return self._gas[tx]

    async def process(self, batch: Sequence[Job]) -> Sequence[Outcome]:
        outcomes: list[Outcome] = []
        for job in batch:
            try:
                permit = UptoPermit.from_json(job.payload["permit"])
                amount = int(job.payload["charge"]["total"])
            except (KeyError, ValueError, TypeError) as error:
                outcomes.append(Failed(job.key, f"not a priced upto payment: {error}", retryable=False))
                continue
            outcomes.append(await self._settle(job, permit, amount))
        return outcomes

    async def _settle(self, job: Job, permit: UptoPermit, amount: int) -> Outcome:
        if amount == 0:
            return Done(job.key, {"transaction": None})
        calldata = permit.settle_calldata(amount)
        try:
            receipt = await self.client.sender.send_and_wait(
                UPTO_PROXY_ADDRESS, calldata, label="x402 upto charge", keys=[job.key]
            )
        except (WouldRevertError, RevertedOnChainError) as refused:
            earlier = await self._sent_before(job, permit, calldata, amount)
            if earlier is not None:
                return Done(job.key, {"transaction": earlier})
            if "PaymentTooEarly" in str(refused):  # the chain's clock is behind the payer's: later
                return Failed(job.key, f"not yet: {refused}", retryable=True)
            return Done(job.key, {"reason": f"the chain refused the charge: {refused}"}, stage=REFUSED)
        if not transferred(receipt, permit.token, permit.payer, permit.to, amount):
            return Failed(job.key, "the settle transaction moved no such payment", retryable=False)
        tx = tx_hash_hex(receipt["transactionHash"])
        return Done(job.key, {"transaction": tx, costs.SETTLE: costs.transaction_share(receipt, tx, 1)})

    async def _sent_before(self, job: Job, permit: UptoPermit, calldata: bytes, amount: int) -> str | None:
        """The hash of this service's settle transaction for `calldata` that moved `amount` since
        the payment was priced, or None."""
        web3 = self.client.web3
        word = "0x" + bytes(12).hex() + "{}"
        logs = await self.client.node(
            web3.eth.get_logs,
            {
                "address": checksummed(permit.token),
                "fromBlock": int(job.payload["charge"].get("fromBlock", 0)),
                "toBlock": "latest",
                "topics": [
                    "0x" + TRANSFER_TOPIC.hex(),
                    word.format(checksummed(permit.payer)[2:].lower()),
                    word.format(checksummed(permit.to)[2:].lower()),
                ],
            },
        )
        for log in logs:
            tx = await self.client.node(web3.eth.get_transaction, log["transactionHash"])
            data = tx["input"]
            sent = bytes.fromhex(data[2:]) if isinstance(data, str) else bytes(data)
            if sent == calldata and checksummed(str(tx["to"])) == UPTO_PROXY_ADDRESS:
                receipt = await self.client.node(web3.eth.get_transaction_receipt, log["transactionHash"])
                if transferred(dict(receipt), permit.token, permit.payer, permit.to, amount):
                    return tx_hash_hex(log["transactionHash"])
        return None
