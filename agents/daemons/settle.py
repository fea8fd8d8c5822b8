"""The settlement daemon: collected vouchers are settled in batches, revenue is distributed and
what this key is owed is withdrawn on a schedule.

Vouchers are jobs (`received`), keyed by their signature, so a voucher handed in twice (by the
API, a file, a retrying client) is one job. `SettleStage` claims up to `batch` of them, by size or
after `linger_s`, plans with `agents.settlement.plan_settlement` (newest voucher per channel,
nothing expired, settled or unmetered), and sends one `settle` per currency and batch. A batch
that would revert (a bad signature or an empty escrow among good vouchers) is split: each
voucher is tried alone and the ones that would revert are skipped with the reason, so one bad
voucher never holds up the rest. A voucher the chain shows settled (a crash after the
transaction) counts as settled. Each asset the batch paid is then `distribute`d (pull payments:
the shares land in the splitter's balances). `withdraw_due` withdraws this key's balances.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any, Final

from agents.daemons import jobs
from agents.daemons.chain import ChainClient
from agents.reverts import WouldRevertError
from agents.runtime.journal import Job, Journal
from agents.runtime.stage import Done, Failed, Outcome, Stage
from agents.settlement import MAX_VOUCHERS, SignedVoucher, TermsView, parse_voucher, plan_settlement

LICENSES: Final = "LicenseManager"
SPLITTER: Final = "RoyaltySplitter"
ZERO32: Final = b"\x00" * 32


def voucher_key(voucher: SignedVoucher) -> str:
    return "voucher-" + voucher.signature.hex()[:64]


def submit_voucher(journal: Journal, voucher: SignedVoucher) -> tuple[str, bool]:
    """Journals a signed voucher for settlement (blocking); its key and whether it was new."""
    key = voucher_key(voucher)
    return key, journal.submit(key, jobs.VOUCHER, voucher.as_json(), stage=jobs.RECEIVED)


class SettleStage(Stage):
    name = "settlement"
    origin = jobs.RECEIVED
    target = jobs.SETTLED
    give_up = jobs.FAILED

    def __init__(self, journal: Any, client: ChainClient, **options: Any) -> None:
        options.setdefault("batch", MAX_VOUCHERS)
        super().__init__(journal, **options)
        self.client = client

    async def _views(
        self, vouchers: Iterable[SignedVoucher]
    ) -> tuple[dict[int, TermsView | None], dict[tuple[str, int], int]]:
        terms: dict[int, TermsView | None] = {}
        settled: dict[tuple[str, int], int] = {}
        for sv in vouchers:
            v = sv.voucher
            if v.terms_id not in terms:
                t = await self.client.call(LICENSES, "getTerms", v.terms_id)
                asset, currency, price_per_use = bytes(t[0]), str(t[1]), int(t[2])
                terms[v.terms_id] = None if asset == ZERO32 else TermsView(asset, currency, price_per_use)
            channel = (v.payer, v.terms_id)
            if channel not in settled:
                settled[channel] = int(await self.client.call(LICENSES, "settledOf", v.payer, v.terms_id))
        return terms, settled

    async def process(self, batch: Sequence[Job]) -> Sequence[Outcome]:
        outcomes: list[Outcome] = []
        by_key: dict[str, SignedVoucher] = {}
        for job in batch:
            try:
                by_key[job.key] = parse_voucher(job.payload)
            except ValueError as error:
                outcomes.append(Failed(job.key, f"not a voucher: {error}", retryable=False))
        key_of = {id(sv): key for key, sv in by_key.items()}
        terms, settled = await self._views(by_key.values())
        now = int(time.time())
        block = await self.client.node(self.client.web3.eth.get_block, "latest")
        now = max(now, int(block["timestamp"]))
        plan = plan_settlement(
            list(by_key.values()),
            now=now,
            settled_of=lambda payer, terms_id: settled[(payer, terms_id)],
            terms_of=lambda terms_id: terms[terms_id],
        )
        for skipped in plan.skipped:
            stage = jobs.SETTLED if skipped.reason == "already settled" else jobs.SKIPPED
            outcomes.append(Done(key_of[id(skipped.voucher)], {"reason": skipped.reason}, stage=stage))
        for currency, chunk in plan.batches:
            outcomes += await self._settle(currency, chunk, key_of)
        return outcomes

    async def _settle(self, currency: str, chunk: list[SignedVoucher], key_of: dict[int, str]) -> list[Outcome]:
        keys = [key_of[id(sv)] for sv in chunk]
        try:
            receipt = await self.client.transact(
                LICENSES, "settle", currency, [sv.as_call_tuple() for sv in chunk], keys=keys
            )
        except WouldRevertError as error:
            if len(chunk) == 1:
                return [Done(keys[0], {"reason": str(error)}, stage=jobs.SKIPPED)]
            outcomes: list[Outcome] = []
            for sv in chunk:  # isolate the voucher(s) that would revert
                outcomes += await self._settle(currency, [sv], key_of)
            return outcomes
        tx = receipt["transactionHash"]
        tx_hex = tx.hex() if hasattr(tx, "hex") else str(tx)
        for asset in sorted({sv.voucher.asset for sv in chunk}):
            await self.distribute(asset, currency)
        return [Done(key, {"settle_tx": tx_hex, "batch_size": len(chunk)}) for key in keys]

    async def distribute(self, asset: bytes, currency: str) -> bool:
        """Splits an asset's pending revenue into its recipients' balances, if it has any."""
        if int(await self.client.call(SPLITTER, "pendingRevenueOf", asset, currency)) == 0:
            return False
        try:
            await self.client.transact(SPLITTER, "distribute", asset, currency)
        except WouldRevertError as error:
            if "NothingToDistribute" not in str(error):
                raise
            return False
        return True

    async def withdraw_due(self, currencies: Iterable[str], minimum: int = 1) -> dict[str, int]:
        """Withdraws this key's splitter balance in each currency where it is at least `minimum`."""
        withdrawn: dict[str, int] = {}
        for currency in currencies:
            balance = int(await self.client.call(SPLITTER, "balanceOf", self.client.address, currency))
            if balance >= minimum:
                await self.client.transact(SPLITTER, "withdraw", currency, self.client.address)
                withdrawn[currency] = balance
        return withdrawn
