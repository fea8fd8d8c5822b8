"""What the paywall reads of `LicenseManager`, served from a cache that the contract's events keep
current: a paid fetch costs no chain read while nothing changed.

`LicenseIndex` wraps `ChainView`. Escrow cover (payer, currency, service), channel settlements
(payer, service, terms) and terms are read from the chain on a miss and kept; every event that
can change one (deposits, withdrawal requests, cancellations and withdrawals, settled vouchers,
terms switched on or off, a record taken over) drops what it touches. The paywall calls `sync()`
first: a read barrier that returns once the index has taken in every event up to a block at
least as new as the latest one when the call began, so a check never decides on a figure older
than the one a direct read would have given. Concurrent checks share one round (one
`eth_blockNumber`, and one `eth_getLogs` when blocks came); a round that sees the chain
reorganised (the block it last read is no longer canonical) drops everything.

A read racing a round is kept only if nothing dropped its key meanwhile (a generation count per
key), so a figure read before an event is never cached after the event's invalidation.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Hashable
from typing import Any, Final

from eth_utils.abi import event_abi_to_log_topic

from agents.api.chainview import LICENSES, ChainView
from agents.api.paywall import TermsInfo
from agents.core.addresses import address_of

#: The events that change what the index serves, and what each drops.
WATCHED: Final = (
    "EscrowDeposited",
    "WithdrawalRequested",
    "WithdrawalCancelled",
    "EscrowWithdrawn",
    "VoucherSettled",
    "TermsActiveSet",
    "AssetEpochAdvanced",
)


def _address(value: Any) -> str:
    return address_of(value)


class LicenseIndex:
    """See the module docstring. Reads go through `view`; `chain_id` and `settlement` are its."""

    def __init__(self, view: ChainView) -> None:
        self.view = view
        self.chain_id, self.settlement = view.chain_id, view.settlement
        self.client = view.client
        contract = self.client.contract(LICENSES)
        self._address = contract.address
        self._events = {
            "0x" + event_abi_to_log_topic(abi).hex(): getattr(contract.events, abi["name"])()
            for abi in contract.abi
            if abi.get("type") == "event" and abi["name"] in WATCHED
        }
        self._cache: dict[Hashable, Any] = {}
        self._reading: dict[Hashable, tuple[tuple[int, int], asyncio.Future[Any]]] = {}
        self._generation: dict[Hashable, int] = {}
        self._epoch = 0  # bumped when everything is dropped (a reorganisation)
        self._next_block: int | None = None
        self._last: tuple[int, bytes] | None = None  # the newest block read: number, hash
        self._synced_at = float("-inf")
        self._round = asyncio.Lock()
        self.rounds = self.hits = self.misses = 0

    # -- the read barrier -----------------------------------------------------------------------

    async def sync(self) -> None:
        asked = time.monotonic()
        async with self._round:
            if self._synced_at >= asked:  # a round that began after this call finished meanwhile
                return
            began = time.monotonic()
            await self._catch_up()
            self._synced_at = began
            self.rounds += 1

    async def _catch_up(self) -> None:
        head = await self.client.block_number()
        if self._next_block is None:  # first round: nothing cached yet, start at the head
            self._next_block = head + 1
            self._last = (head, await self._hash(head))
            return
        if head < self._next_block:
            return
        if self._last is not None and await self._hash(self._last[0]) != self._last[1]:
            self._drop_all()  # the block read last is gone: the chain reorganised
        logs = await self.client.node(
            self.client.web3.eth.get_logs,
            {"address": self._address, "fromBlock": self._next_block, "toBlock": head},
        )
        for log in logs:
            self._apply(log)
        self._drop(("terms-count",))  # blocks came: terms may have come with them
        self._next_block = head + 1
        self._last = (head, await self._hash(head))

    async def _hash(self, number: int) -> bytes:
        block = await self.client.node(self.client.web3.eth.get_block, number)
        return bytes(block["hash"])

    def _apply(self, raw: Any) -> None:
        topics = raw.get("topics") or []
        if not topics:
            return
        event = self._events.get("0x" + bytes(topics[0]).hex())
        if event is None:
            return
        args = event.process_log(raw)["args"]
        name = event.event_name
        if name == "VoucherSettled":  # the batch's service and currency come in another event: drop the payer's
            payer = _address(args["payer"])
            self._drop_where(lambda key: key[0] in ("cover", "settled") and key[1] == payer)
        elif name in ("TermsActiveSet",):
            self._drop(("terms", int(args["termsId"])))
        elif name == "AssetEpochAdvanced":
            self._drop_where(lambda key: key[0] == "terms")  # which terms are the asset's: read again
        else:
            self._drop(("cover", _address(args["payer"]), _address(args["currency"]), _address(args["service"])))

    def _drop(self, key: Hashable) -> None:
        self._cache.pop(key, None)
        self._generation[key] = self._generation.get(key, 0) + 1

    def _drop_where(self, matches: Any) -> None:
        for key in [key for key in list(self._cache) + list(self._generation) if matches(key)]:
            self._drop(key)

    def _drop_all(self) -> None:
        self._cache.clear()
        self._epoch += 1

    async def _cached(self, key: Hashable, read: Any) -> Any:
        """The cached figure, or one read: a read of the key already under way since its last
        drop is shared (checks of one batch ask for the same terms at once), never one begun
        before an event that dropped the key."""
        if key in self._cache:
            self.hits += 1
            return self._cache[key]
        version = (self._generation.get(key, 0), self._epoch)
        under_way = self._reading.get(key)
        if under_way is not None and under_way[0] == version:
            self.hits += 1
            return await asyncio.shield(under_way[1])  # a caller giving up leaves it to the others
        self.misses += 1
        future = asyncio.ensure_future(read())
        future.add_done_callback(lambda f: f.cancelled() or f.exception())  # whoever reads its outcome
        self._reading[key] = (version, future)
        try:
            value = await asyncio.shield(future)
        finally:
            if self._reading.get(key, (None, None))[1] is future:
                del self._reading[key]
        if (self._generation.get(key, 0), self._epoch) == version:
            self._cache[key] = value
        return value

    # -- what the paywall reads -------------------------------------------------------------------

    async def terms(self, terms_id: int) -> TermsInfo | None:
        if not 0 < terms_id <= await self._terms_count():
            return None  # no such id as of the barrier's block: nothing to read (a stranger's junk ids cost nothing)
        found: TermsInfo | None = await self._cached(("terms", terms_id), lambda: self.view.terms(terms_id, fresh=True))
        if found is None:  # not attached yet: no event would tell when it is, so keep asking
            self._cache.pop(("terms", terms_id), None)
        return found

    async def _terms_count(self) -> int:
        """`termsCount`, read once per block the barrier reached (terms only come in blocks)."""
        return int(await self._cached(("terms-count",), lambda: self.client.read(LICENSES, "termsCount")))

    async def settled(self, payer: str, service: str, terms_id: int) -> int:
        key = ("settled", _address(payer), _address(service), terms_id)
        return int(await self._cached(key, lambda: self.view.settled(payer, service, terms_id)))

    async def cover(self, payer: str, currency: str, service: str, *, fresh: bool = False) -> int:
        if fresh:
            self.misses += 1
            return int(await self.view.cover(payer, currency, service))
        key = ("cover", _address(payer), _address(currency), _address(service))
        return int(await self._cached(key, lambda: self.view.cover(payer, currency, service)))
