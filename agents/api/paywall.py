"""Checks a cumulative licence voucher before licensed content is served, and keeps it for
settlement. A paywall serves one service: the address whose vouchers it accepts, and with
which payers keep the escrow that pays for its uses (`LicenseManager` keeps one escrow per
payer, currency and service, and only vouchers naming a service draw on its escrow, so what
this service accepted is everything its escrow is promised to). A voucher unlocks one use only
if all of these hold (CHECKLIST 18: a forged, replayed or under-funded payment never unlocks
content):

1. it names this service;
2. the terms exist, are metered, are the asset's, are active (a creator who stops selling
   stops new uses; vouchers already accepted still settle) and not superseded (the asset's
   record since taken over by a batch claim voids its earlier terms);
3. the cumulative amount fits a channel (`MAX_CUMULATIVE`) and the deadline is at least
   `MIN_DEADLINE_S` (a day) ahead, so settlement that runs late still finds it valid;
4. the EIP-712 signature (LicenseManager's domain: chain id and address) is the payer's, 65
   bytes, low s (what the contract accepts);
5. the cumulative amount is at least one use above everything already accepted on the channel
   (payer, service, terms) here and everything settled on chain: the same voucher twice, or an
   older one, is a replay. The refusal (`replayed_or_short`) carries the payer's own newest
   voucher on the channel (`acceptedVoucher`), so a paying client catches up to a figure it can
   check rather than one it must believe (`agents.api.client`);
6. the deadline is not before that of the channel's newest voucher while that one is unsettled:
   settlement settles only a channel's newest voucher (each supersedes the ones before), so a
   newer voucher that expired first would leave every use since the last settlement unpaid;
7. the payer's escrow with this service, less a pending withdrawal (counted as gone, expired or
   not: it may unlock before the vouchers settle), covers what all its accepted, unsettled
   vouchers in that currency owe, this one included. Escrow with any other service counts for
   nothing here.

Accepted vouchers go into the channel book (SQLite, WAL, one row per channel holding the newest
voucher) in one compare-and-set transaction, then into the journal for the settlement daemon;
`resubmit` at start puts any the journal lacks back (a crash between the two loses nothing).
Checks for one payer run one at a time, so two requests at once cannot spend the same escrow.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from coincurve import PublicKey
from eth_utils.address import is_address, to_checksum_address
from eth_utils.crypto import keccak

from agents.core.errors import PermanentError
from agents.core.settlement import MAX_CUMULATIVE, SignedVoucher, parse_voucher
from agents.core.vouchers import voucher_digest

_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_HALF_N = _N // 2
MIN_DEADLINE_S = 86_400
"""How far ahead a voucher's deadline must be for the paywall to take it (offers say so as
`minDeadlineSeconds`). Settlement settles only a channel's newest voucher and plans none that
expires within `agents.core.settlement.DEADLINE_MARGIN_S`, so a newest voucher that expired
before settlement ran would leave every use since the last settlement unpaid. A day covers a
settlement daemon that is down, restarting or queued behind a slow node; it is also the
deployment's default escrow `WITHDRAWAL_DELAY`."""


class PaymentRejectedError(ValueError):
    """The voucher does not pay for this use; `code` is stable, the message says why."""

    def __init__(self, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code, self.details = code, details or {}


@dataclass(frozen=True)
class TermsInfo:
    asset: bytes
    currency: str
    price_per_use: int
    active: bool
    superseded: bool = False
    """The asset's record epoch moved past the terms' (a batch claim took the record over)."""


class LicenseReader(Protocol):
    """What the paywall reads of `LicenseManager` (`agents.api.chainview.ChainView` on a node)."""

    chain_id: int
    settlement: str

    async def terms(self, terms_id: int) -> TermsInfo | None: ...

    async def settled(self, payer: str, service: str, terms_id: int) -> int: ...

    async def cover(self, payer: str, currency: str, service: str) -> int:
        """The payer's escrow with `service` less its pending withdrawal (never below 0)."""
        ...


def signer_of(voucher: SignedVoucher, chain_id: int, settlement: str) -> str:
    """The address that signed the voucher; PaymentRejectedError for a signature the contract would refuse."""
    sig = voucher.signature
    if len(sig) != 65:
        raise PaymentRejectedError("bad_signature", f"the signature is {len(sig)} bytes, not 65")
    r, s, v = int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:64], "big"), sig[64]
    if v in (27, 28):
        v -= 27
    if v not in (0, 1) or not 0 < s <= _HALF_N or r == 0:
        raise PaymentRejectedError("bad_signature", "the signature is malformed or malleable (high s)")
    digest = voucher_digest(voucher.voucher, chain_id, settlement)
    if r >= _N:
        raise PaymentRejectedError("bad_signature", "the signature is malformed (r out of range)")
    try:  # libsecp256k1 (coincurve): ecrecover as the EVM precompile does it
        point = PublicKey.from_signature_and_message(sig[:64] + bytes([v]), digest, hasher=None)
    except ValueError as exc:
        raise PaymentRejectedError("bad_signature", "the signature does not recover to any key") from exc
    return to_checksum_address(keccak(point.format(compressed=False)[1:])[12:])


class ChannelBookError(PermanentError, ValueError):
    """The channel book on disk is not one this version can use; the message says what to do."""


class ChannelBook:
    """The newest accepted voucher of every channel (payer, service, terms), durable (see the
    module docstring). Addresses are stored checksummed."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        columns = {row[1] for row in self.db.execute("PRAGMA table_info(channels)")}
        if columns and "service" not in columns:
            self.db.close()
            raise ChannelBookError(
                f"{path} holds channels of version-1 vouchers (no service), which LicenseManager v2 cannot "
                "settle: settle them with the old deployment, then move the file away (or use a fresh --state)"
            )
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS channels (payer TEXT NOT NULL, service TEXT NOT NULL,"
            " terms_id INTEGER NOT NULL, currency TEXT NOT NULL, cumulative TEXT NOT NULL, settled TEXT NOT NULL,"
            " voucher TEXT NOT NULL, updated_at REAL NOT NULL, PRIMARY KEY (payer, service, terms_id))"
        )
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self.db.close()

    def channel(self, payer: str, service: str, terms_id: int) -> tuple[int, int] | None:
        """(accepted cumulative, settled as last read) of a channel, or None."""
        with self._lock:
            row = self.db.execute(
                "SELECT cumulative, settled FROM channels WHERE payer = ? AND service = ? AND terms_id = ?",
                (payer, service, terms_id),
            ).fetchone()
        return (int(row[0]), int(row[1])) if row else None

    def voucher(self, payer: str, service: str, terms_id: int) -> SignedVoucher | None:
        """The newest voucher accepted on a channel, or None."""
        with self._lock:
            row = self.db.execute(
                "SELECT voucher FROM channels WHERE payer = ? AND service = ? AND terms_id = ?",
                (payer, service, terms_id),
            ).fetchone()
        return parse_voucher(json.loads(row[0])) if row else None

    def owed(self, payer: str, currency: str, service: str) -> dict[int, tuple[int, int]]:
        """Per terms id: (accepted cumulative, settled as last read) of the payer's channels with
        `service` in `currency`."""
        with self._lock:
            rows = self.db.execute(
                "SELECT terms_id, cumulative, settled FROM channels WHERE payer = ? AND currency = ? AND service = ?",
                (payer, currency, service),
            ).fetchall()
        return {int(t): (int(c), int(s)) for t, c, s in rows}

    def note_settled(self, payer: str, service: str, terms_id: int, settled: int) -> None:
        with self._lock:
            self.db.execute(
                "UPDATE channels SET settled = ? WHERE payer = ? AND service = ? AND terms_id = ?",
                (str(settled), payer, service, terms_id),
            )

    def accept(self, voucher: SignedVoucher, currency: str, settled: int, now: float) -> bool:
        """Records the voucher as its channel's newest if it is above the one there (atomic)."""
        payer, service, terms_id = voucher.channel
        amount = voucher.voucher.cumulative_amount
        body = json.dumps(voucher.as_json(), separators=(",", ":"))
        with self._lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                row = self.db.execute(
                    "SELECT cumulative FROM channels WHERE payer = ? AND service = ? AND terms_id = ?",
                    (payer, service, terms_id),
                ).fetchone()
                if row is not None and int(row[0]) >= amount:
                    self.db.execute("ROLLBACK")
                    return False
                self.db.execute(
                    "INSERT OR REPLACE INTO channels VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (payer, service, terms_id, currency, str(amount), str(settled), body, now),
                )
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
        return True

    def newest(self) -> list[SignedVoucher]:
        """Every channel's newest voucher."""
        with self._lock:
            rows = self.db.execute("SELECT voucher FROM channels").fetchall()
        return [parse_voucher(json.loads(row[0])) for row in rows]


class Paywall:
    """See the module docstring. `service`: the address whose vouchers this paywall accepts.
    `submit` journals an accepted voucher for settlement and returns its queue key (blocking: it
    runs in a thread)."""

    def __init__(
        self,
        book: ChannelBook,
        chain: LicenseReader,
        submit: Callable[[SignedVoucher], str],
        *,
        service: str,
        clock: Callable[[], float] = time.time,
        max_payers: int = 65_536,
    ) -> None:
        if not is_address(service) or int(service, 16) == 0:
            raise ValueError(f"the service {service!r} is not a non-zero address")
        self.book, self.chain, self._submit, self._clock = book, chain, submit, clock
        self.service: str = to_checksum_address(service)
        self._locks: OrderedDict[str, asyncio.Lock] = OrderedDict()
        self._max_payers = max_payers

    def _lock_of(self, payer: str) -> asyncio.Lock:
        lock = self._locks.pop(payer, None) or asyncio.Lock()
        self._locks[payer] = lock
        while len(self._locks) > self._max_payers:
            oldest, held = next(iter(self._locks.items()))
            if held.locked():
                break
            del self._locks[oldest]
        return lock

    async def resubmit(self) -> int:
        """Puts every channel's newest voucher into the journal (idempotent); how many there were."""
        vouchers = await asyncio.to_thread(self.book.newest)
        for voucher in vouchers:
            await asyncio.to_thread(self._submit, voucher)
        return len(vouchers)

    async def accept(self, voucher: SignedVoucher, *, asset: bytes, terms_id: int) -> str:
        """Checks the voucher for one use of `asset` under `terms_id` and keeps it; its queue key."""
        v = voucher.voucher
        if v.asset != asset or v.terms_id != terms_id:
            raise PaymentRejectedError("wrong_resource", "the voucher pays for another asset or other terms")
        payer, service, _ = voucher.channel
        if service != self.service:
            raise PaymentRejectedError(
                "wrong_service",
                f"the voucher names service {service}; this server is service {self.service}: sign for it "
                "(and hold escrow with it)",
                {"service": self.service},
            )
        terms = await self.chain.terms(terms_id)
        if terms is None or terms.asset != asset:
            raise PaymentRejectedError("unknown_terms", f"terms {terms_id} are not terms of this asset")
        if terms.price_per_use == 0:
            raise PaymentRejectedError("not_metered", f"terms {terms_id} are not sold per use")
        if not terms.active:
            raise PaymentRejectedError(
                "terms_inactive", f"terms {terms_id} are inactive: the creator stopped selling under them"
            )
        if terms.superseded:
            raise PaymentRejectedError(
                "terms_superseded", f"terms {terms_id} are of an earlier record of the asset: they license nothing now"
            )
        if v.cumulative_amount > MAX_CUMULATIVE:
            raise PaymentRejectedError(
                "amount_too_large", f"the cumulative amount is above {MAX_CUMULATIVE}: no channel can settle it"
            )
        now = self._clock()
        if v.deadline < now + MIN_DEADLINE_S:
            raise PaymentRejectedError(
                "deadline_too_soon",
                f"the voucher's deadline must be at least {MIN_DEADLINE_S} s ahead (the offer's minDeadlineSeconds), "
                "so settlement that runs late still finds it valid: sign again with a later deadline",
                {"deadline": v.deadline, "now": int(now), "minDeadlineSeconds": MIN_DEADLINE_S},
            )
        signer = await asyncio.to_thread(signer_of, voucher, self.chain.chain_id, self.chain.settlement)
        if signer != payer:
            raise PaymentRejectedError("wrong_signer", f"the voucher is signed by {signer}, not by its payer {payer}")
        async with self._lock_of(payer):
            known, settled, cover = await asyncio.gather(  # the two chain reads at once on a real node
                asyncio.to_thread(self.book.voucher, payer, service, terms_id),
                self.chain.settled(payer, service, terms_id),
                self.chain.cover(payer, terms.currency, service),
            )
            if v.cumulative_amount < _accepted(known, settled) + terms.price_per_use:
                raise _behind(
                    known,
                    settled,
                    terms.price_per_use,
                    "the cumulative amount must be at least one use above what this channel already paid "
                    "(acceptedCumulative)",
                )
            if known is not None and known.voucher.cumulative_amount > settled and v.deadline < known.voucher.deadline:
                raise PaymentRejectedError(
                    "deadline_too_soon",
                    f"the voucher's deadline is before {known.voucher.deadline}, that of the channel's newest "
                    "unsettled voucher: settlement settles only the newest, so it must not expire first; sign again "
                    "with a deadline at least that late",
                    {"deadline": v.deadline, "now": int(now), "channelDeadline": known.voucher.deadline},
                )
            await self._check_cover(payer, terms, terms_id, v.cumulative_amount, settled, cover)
            if not await asyncio.to_thread(self.book.accept, voucher, terms.currency, settled, now):
                known = await asyncio.to_thread(self.book.voucher, payer, service, terms_id)
                raise _behind(known, settled, terms.price_per_use, "a voucher at least as high was accepted meanwhile")
        return await asyncio.to_thread(self._submit, voucher)

    async def promised(self, payer: str, currency: str) -> int:
        """What the payer's vouchers in `currency` accepted here owe beyond what is settled on
        chain, the settled figures read afresh where something still seemed owed."""
        channels = await asyncio.to_thread(self.book.owed, payer, currency, self.service)
        return _owed(await self._refresh(payer, channels))

    async def _refresh(
        self, payer: str, channels: dict[int, tuple[int, int]], keep: int | None = None
    ) -> dict[int, tuple[int, int]]:
        """Reads again the settled figure of every channel (but `keep`) that still owes something
        (settlement only raises it, so a channel that owes nothing stays so) and books it."""
        stale = [t for t, (c, s) in channels.items() if c > s and t != keep]
        fresh = await asyncio.gather(*(self.chain.settled(payer, self.service, t) for t in stale))
        for terms_id, settled in zip(stale, fresh, strict=True):
            await asyncio.to_thread(self.book.note_settled, payer, self.service, terms_id, settled)
            channels[terms_id] = (channels[terms_id][0], settled)
        return channels

    async def _check_cover(
        self, payer: str, terms: TermsInfo, terms_id: int, cumulative: int, settled: int, cover: int
    ) -> None:
        channels = await asyncio.to_thread(self.book.owed, payer, terms.currency, self.service)
        channels[terms_id] = (cumulative, settled)
        if _owed(channels) <= cover:
            return
        # the settled figures of the other channels may be stale (settlement lowers what is owed
        # and the escrow alike): read them again before refusing
        owed = _owed(await self._refresh(payer, channels, keep=terms_id))
        if owed > cover:
            raise PaymentRejectedError(
                "insufficient_escrow",
                f"the payer's escrow with service {self.service}, less any pending withdrawal, does not cover "
                "its unsettled vouchers with this one: deposit with this service (or cancel the withdrawal)",
                {"owed": str(owed), "escrow": str(cover), "currency": terms.currency, "service": self.service},
            )


def _accepted(known: SignedVoucher | None, settled: int) -> int:
    """What a channel already paid: its newest voucher here or its settled figure on chain."""
    return max(known.voucher.cumulative_amount if known is not None else 0, settled)


def _behind(known: SignedVoucher | None, settled: int, price: int, message: str) -> PaymentRejectedError:
    """`replayed_or_short`, with what the channel already paid and, when a voucher here says so,
    that voucher (`acceptedVoucher`: the payer's own signature is the proof of the figure). Only
    a voucher signed by the payer reaches this check, so only the payer learns it."""
    details: dict[str, Any] = {"acceptedCumulative": str(_accepted(known, settled)), "pricePerUse": str(price)}
    if known is not None and known.voucher.cumulative_amount >= settled:
        details["acceptedVoucher"] = known.as_json()
    return PaymentRejectedError("replayed_or_short", message, details)


def _owed(channels: dict[int, tuple[int, int]]) -> int:
    """What (accepted cumulative, settled) channels owe in all."""
    return sum(max(0, c - s) for c, s in channels.values())
