"""The settlement daemon: collected vouchers are settled in batches, revenue is distributed and
what this key is owed is withdrawn on a schedule. Only a service may settle the vouchers that
name it, so the daemon's key is the service's: it settles the vouchers naming its address.

Vouchers are jobs (`received`), keyed by their signature, so a voucher handed in twice (by the
API, a file, a retrying client) is one job. `SettleStage` lifecycle, per batch of jobs:

1. Claim up to `batch` vouchers, by size or after `linger_s`.
2. Read what planning needs (terms, each channel's settled amount, each escrow's balance, which
   payers hold code) and plan with `agents.core.settlement.plan_settlement`: the newest voucher
   per channel among those `settle` would not revert on, so a bad voucher never supersedes a
   good one; nothing expired, unmetered, settled, beyond its escrow, or naming another service;
   batches of at most `MAX_WALLET_SIGNATURES` listed signatures. What is left out is journaled
   at once with the reason: `settled` when the chain already holds exactly its amount (a crash
   after our own transaction, or another settler with this key first), `skipped` otherwise.
3. Send one `settle(currency, service, vouchers, walletSignatures)` per batch (one currency
   each; payers with code are ERC-1271 wallets, whose signatures travel whole). A batch that
   would revert (a bad signature among good vouchers) is bisected by simulation
   (`agents.core.settlement.settleable`): each voucher that reverts alone is skipped with the
   reason and the rest go back into one transaction. One bad voucher among n costs O(log n)
   simulations and one more transaction, never one per voucher, so a stranger's vouchers
   cannot make the operator pay for a transaction per voucher.
4. Read the outcome of every voucher from the receipt, never from the plan: the contract emits
   `VoucherSettled` or `VoucherSkipped` (with its reason) for each, so a voucher settled by
   another settler between planning and mining, left uncovered by a withdrawal, or refused by
   its wallet is journaled as what happened to it (settled already, or skipped with the
   reason), and only the vouchers this transaction settled carry its hash.
5. Once every batch is sent, `distribute` each asset the batches paid, once per asset and
   currency (pull payments: the shares land in the splitter's balances). `withdraw_due` (on the
   runner's schedule) withdraws this key's balances.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any, Final

from eth_utils.address import to_checksum_address

from agents.core import costs
from agents.core.addresses import checksummed
from agents.core.reverts import WouldRevertError, preflight
from agents.core.settlement import (
    ALREADY_SETTLED,
    MAX_VOUCHERS,
    SKIP_REASONS,
    Batch,
    Channel,
    Refused,
    SignedVoucher,
    SkipKind,
    TermsView,
    parse_voucher,
    plan_settlement,
    settleable,
)
from agents.runtime import jobs
from agents.runtime.chain import ChainClient
from agents.runtime.journal import Job
from agents.runtime.stage import Done, Failed, Outcome, Stage

LICENSES: Final = "LicenseManager"
SPLITTER: Final = "RoyaltySplitter"
ZERO32: Final = b"\x00" * 32


async def distribute(client: ChainClient, asset: bytes, currency: str) -> bool:
    """Splits an asset's pending revenue in `currency` into its recipients' balances (pull
    payments), if it has any; whether a distribution was sent."""
    if int(await client.call(SPLITTER, "pendingRevenueOf", asset, currency)) == 0:
        return False
    try:
        await client.transact(SPLITTER, "distribute", asset, currency)
    except WouldRevertError as error:
        if "NothingToDistribute" not in str(error):
            raise
        return False
    return True


def _tx_hex(tx: Any) -> str:
    text = tx.hex() if hasattr(tx, "hex") else str(tx)
    return text if text.startswith("0x") else "0x" + text


def _left_out(key: str, kind: SkipKind, reason: str, **extra: Any) -> Done:
    stage = jobs.SETTLED if kind.settled else jobs.SKIPPED
    return Done(key, {"reason": reason, "skip": kind.value, **extra}, stage=stage)


class SettleStage(Stage):
    """See the module docstring. The service is the client's key's address."""

    name = "settlement"
    origin = jobs.RECEIVED
    target = jobs.SETTLED
    give_up = jobs.FAILED

    def __init__(self, journal: Any, client: ChainClient, **options: Any) -> None:
        options.setdefault("batch", MAX_VOUCHERS)
        super().__init__(journal, **options)
        self.client = client
        self.service: str = to_checksum_address(client.address)
        self._wallets: dict[str, bool] = {}

    async def _wallets_among(self, payers: Iterable[str]) -> set[str]:
        """The payers that hold code (ERC-1271 wallets), each looked up once."""
        payers = set(payers)
        for payer in payers - self._wallets.keys():
            code = await self.client.node(self.client.web3.eth.get_code, payer)
            self._wallets[payer] = len(bytes(code)) > 0
        return {payer for payer in payers if self._wallets[payer]}

    async def _views(
        self, vouchers: Iterable[SignedVoucher]
    ) -> tuple[dict[int, TermsView | None], dict[Channel, int], dict[tuple[str, str, str], int]]:
        vouchers = list(vouchers)
        # getTerms reverts for an id never attached: such a voucher is left out (unknown terms), and
        # its neighbours still settle
        count = int(await self.client.read(LICENSES, "termsCount"))
        wanted = {sv.voucher.terms_id for sv in vouchers}
        terms: dict[int, TermsView | None] = {t: None for t in wanted if not 0 < t <= count}
        terms_ids = sorted(wanted - set(terms))
        read = await asyncio.gather(*(self.client.read(LICENSES, "getTerms", t) for t in terms_ids))
        for terms_id, t in zip(terms_ids, read, strict=True):
            asset, currency, price_per_use = bytes(t[0]), str(t[1]), int(t[2])
            terms[terms_id] = None if asset == ZERO32 else TermsView(asset, currency, price_per_use)
        # only this service's channels are planned (the plan drops the rest before reading them)
        channels = sorted({sv.channel for sv in vouchers if sv.channel[1] == self.service})
        escrows = sorted(
            {
                (payer, view.currency, service)
                for payer, service, terms_id in channels
                if (view := terms[terms_id]) is not None
            }
        )
        settled_read, escrow_read = await asyncio.gather(
            asyncio.gather(*(self.client.read(LICENSES, "settledOf", *channel) for channel in channels)),
            asyncio.gather(*(self.client.read(LICENSES, "escrowOf", *escrow) for escrow in escrows)),
        )
        settled = {channel: int(amount) for channel, amount in zip(channels, settled_read, strict=True)}
        balances = {escrow: int(held[0]) for escrow, held in zip(escrows, escrow_read, strict=True)}
        return terms, settled, balances

    async def process(self, batch: Sequence[Job]) -> Sequence[Outcome]:
        outcomes: list[Outcome] = []
        by_key: dict[str, SignedVoucher] = {}
        for job in batch:
            try:
                by_key[job.key] = parse_voucher(job.payload)
            except ValueError as error:
                outcomes.append(Failed(job.key, f"not a voucher: {error}", retryable=False))
        key_of = {id(sv): key for key, sv in by_key.items()}
        terms, settled, balances = await self._views(by_key.values())
        wallets = await self._wallets_among(sv.channel[0] for sv in by_key.values() if sv.channel[1] == self.service)
        block = await self.client.node(self.client.web3.eth.get_block, "latest")
        now = max(int(time.time()), int(block["timestamp"]))
        plan = plan_settlement(
            list(by_key.values()),
            now=now,
            settled_of=lambda payer, service, terms_id: settled[(payer, service, terms_id)],
            terms_of=lambda terms_id: terms[terms_id],
            escrow_of=lambda payer, currency, service: balances[(payer, currency, service)],
            service=self.service,
            wallets=wallets,
        )
        for skipped in plan.skipped:
            outcomes.append(_left_out(key_of[id(skipped.voucher)], skipped.kind, skipped.reason))
        paid: set[tuple[bytes, str]] = set()
        for planned in plan.batches:
            settled_here = await self._settle(planned, key_of)
            paid |= {
                (by_key[o.key].voucher.asset, planned.currency)
                for o in settled_here
                if isinstance(o, Done) and "settle_tx" in o.updates
            }
            outcomes += settled_here
        for asset, currency in sorted(paid):  # once per asset, however many batches paid it
            await self.distribute(asset, currency)
        return outcomes

    async def _settle(self, batch: Batch, key_of: dict[int, str]) -> list[Outcome]:
        """Send `batch` (step 3) and read each voucher's outcome from the receipt (step 4); a
        batch that would revert is bisected and what passes is sent again (step 3)."""
        chunk = batch.vouchers
        keys = [key_of[id(sv)] for sv in chunk]
        wallets = await self._wallets_among(sv.channel[0] for sv in chunk)
        try:
            receipt = await self.client.transact(LICENSES, "settle", *batch.call_args(wallets), keys=keys)
        except WouldRevertError as error:
            if len(chunk) == 1:
                return [Done(keys[0], {"reason": str(error)}, stage=jobs.SKIPPED)]
            parts, set_aside = await self._settleable(batch, wallets)
            outcomes: list[Outcome] = [
                Done(key_of[id(sv)], {"reason": why}, stage=jobs.SKIPPED) for sv, why in set_aside
            ]
            if parts == [batch]:  # simulates cleanly now yet would not send: halve it, so this ends
                half = len(chunk) // 2
                parts = [replace(batch, vouchers=chunk[:half]), replace(batch, vouchers=chunk[half:])]
            for part in parts:  # each smaller than `batch`
                outcomes += await self._settle(part, key_of)
            return outcomes
        tx = _tx_hex(receipt["transactionHash"])
        results = self._results(receipt)
        outcomes = []
        settled_here = sum(1 for kind in results.values() if kind is None)
        for sv, key in zip(chunk, keys, strict=True):
            v = sv.voucher
            found = (sv.channel[0], v.terms_id, v.cumulative_amount)
            if found not in results:  # every voucher has its event: a receipt without one is not ours
                raise RuntimeError(f"settle transaction {tx} has no event for voucher {key}")
            kind = results[found]
            share = {costs.SETTLE: costs.transaction_share(receipt, tx, len(chunk))}  # skipped ones cost gas too
            if kind is None:
                outcomes.append(Done(key, {"settle_tx": tx, "batch_size": settled_here, **share}))
            else:
                outcomes.append(_left_out(key, kind, _receipt_reason(kind, sv), skipped_tx=tx, **share))
        return outcomes

    async def _settleable(self, batch: Batch, wallets: set[str]) -> tuple[list[Batch], list[Refused]]:
        """`settleable(batch)`, simulated as this service on the pending state (`eth_call`s only:
        nothing is signed), all on the node's thread."""
        licenses = self.client.contract(LICENSES)

        def simulate(part: Batch) -> bytes:
            data = licenses.encode_abi("settle", args=list(part.call_args(wallets)))
            call = {"from": self.service, "to": licenses.address, "data": data, "value": 0}
            return preflight(self.client.web3, call, self.client.errors)

        found: tuple[list[Batch], list[Refused]] = await self.client.node(settleable, batch, simulate)
        return found

    def _results(self, receipt: dict[str, Any]) -> dict[tuple[str, int, int], SkipKind | None]:
        """What `settle` did with each voucher of the batch (all of this service), by (payer,
        termsId, cumulativeAmount): None for settled, else why it was skipped."""
        results: dict[tuple[str, int, int], SkipKind | None] = {}
        for log in self.client.logs(LICENSES, "VoucherSettled", receipt):
            a = log["args"]
            results[(to_checksum_address(a["payer"]), int(a["termsId"]), int(a["cumulativeAmount"]))] = None
        for log in self.client.logs(LICENSES, "VoucherSkipped", receipt):
            a = log["args"]
            voucher = (to_checksum_address(a["payer"]), int(a["termsId"]), int(a["cumulativeAmount"]))
            results[voucher] = SKIP_REASONS[int(a["reason"])]
        return results

    async def distribute(self, asset: bytes, currency: str) -> bool:
        """Splits an asset's pending revenue into its recipients' balances, if it has any."""
        return await distribute(self.client, asset, currency)

    async def withdraw_due(self, currencies: Iterable[str], minimum: int = 1) -> dict[str, int]:
        """Withdraws this key's splitter balance in each currency where it is at least `minimum`."""
        withdrawn: dict[str, int] = {}
        for currency in currencies:
            balance = int(await self.client.call(SPLITTER, "balanceOf", self.client.address, currency))
            if balance >= minimum:
                await self.client.transact(SPLITTER, "withdraw", currency, self.client.address)
                withdrawn[currency] = balance
        return withdrawn


def _receipt_reason(kind: SkipKind, voucher: SignedVoucher) -> str:
    """Why `settle` skipped a voucher, as the journal records it."""
    if kind is SkipKind.ALREADY_SETTLED:
        return ALREADY_SETTLED
    if kind is SkipKind.BELOW_SETTLED:
        return "below what its channel settled when the batch was mined: a newer voucher was settled first"
    if kind is SkipKind.WALLET_REJECTED:
        return f"the payer's wallet {voucher.channel[0]} (ERC-1271) refused the signature"
    return (
        f"the payer's escrow with service {voucher.channel[1]} could not cover it when the batch was mined "
        "(withdrawn or spent meanwhile)"
    )


class SweepStage(Stage):
    """Push payments into royalty splits: x402 `exact` payments the API settled (`x402-paid`
    jobs, `agents.api.exact`) wait in their asset's payment receiver until one
    `LicenseManager.sweepPayments(asset, token)` per asset and token credits all of them to the
    asset's revenue, which is then distributed. The receiver pays only into its asset, so a
    sweep someone else sent first (`NothingToSweep`) leaves these payments where they belong:
    in the split, swept."""

    name = "sweeper"
    origin = jobs.X402_PAID
    target = jobs.X402_SWEPT
    give_up = jobs.FAILED

    def __init__(self, journal: Any, client: ChainClient, **options: Any) -> None:
        super().__init__(journal, **options)
        self.client = client

    async def process(self, batch: Sequence[Job]) -> Sequence[Outcome]:
        groups: dict[tuple[bytes, str], list[str]] = {}
        outcomes: list[Outcome] = []
        for job in batch:
            try:
                key = (bytes.fromhex(job.payload["asset"][2:]), checksummed(job.payload["token"]))
            except (KeyError, ValueError, TypeError) as error:
                outcomes.append(Failed(job.key, f"not an x402 payment: {error}", retryable=False))
                continue
            groups.setdefault(key, []).append(job.key)
        for (asset, token), keys in sorted(groups.items()):
            try:
                receipt = await self.client.transact(LICENSES, "sweepPayments", asset, token)
                updates: dict[str, Any] = {"sweep_tx": _tx_hex(receipt["transactionHash"])}
            except WouldRevertError as error:
                if "NothingToSweep" not in str(error):
                    raise
                updates = {"sweep_tx": None, "swept": "by another sweep before this one"}
            outcomes += [Done(key, updates) for key in keys]
            await distribute(self.client, asset, token)
        return outcomes
