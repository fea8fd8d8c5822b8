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

Accepted vouchers go into the channel book (one row per channel holding the newest voucher) in
one transaction that checks again, against every voucher in the book, that the channel only
moves forward (5), the deadline (6) and the escrow (7), then into the journal for the settlement
daemon; `resubmit` at start puts any the journal lacks back (a crash between the two loses
nothing). The book is a SQLite file of the API's own (WAL, an fsync per commit), or, when the
API shares a PostgreSQL journal with other API processes, a table beside it: the transaction
then holds the payer's escrow (an advisory lock on payer and service) against all of them, so
vouchers accepted by any of them count against the escrow, and two requests at once, in one
process or in two, cannot spend the same escrow.

Checks in one process run in batches, one batch at a time (`Paywall`): the vouchers that came
while the last batch ran share one read barrier, one thread hop for their signatures, one book
transaction (one fsync; each voucher in it sees those before it) and one journal transaction.
A voucher refused fails only its own check.

The chain figures (terms, what a channel settled, the escrow's cover) come from a
`LicenseReader`: the API's is the licence index (`agents.api.license_index`), which serves them
from a cache its events keep current, behind a read barrier (`sync`) that makes each check see
every event up to the block that was latest when it began: no older figure than a direct read
would give, without a chain read per check.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Protocol, TypeVar

from coincurve import PublicKey
from eth_utils.address import is_address, to_checksum_address
from eth_utils.crypto import keccak

from agents.core.addresses import address_of
from agents.core.errors import PermanentError
from agents.core.settlement import MAX_CUMULATIVE, SignedVoucher, parse_voucher
from agents.core.vouchers import voucher_digest

if TYPE_CHECKING:
    from agents.runtime.journal_db import Database

T = TypeVar("T")
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
    """What the paywall reads of `LicenseManager` (`agents.api.chainview.ChainView` on a node;
    `agents.api.license_index.LicenseIndex` over it: the same figures, served from a cache its
    events keep current)."""

    chain_id: int
    settlement: str

    async def sync(self) -> None:
        """Returns once every figure it serves is as of a block at least as new as the latest
        one when the call began (a read barrier)."""
        ...

    async def terms(self, terms_id: int) -> TermsInfo | None: ...

    async def settled(self, payer: str, service: str, terms_id: int) -> int: ...

    async def cover(self, payer: str, currency: str, service: str, *, fresh: bool = False) -> int:
        """The payer's escrow with `service` less its pending withdrawal (never below 0);
        `fresh`: read from the chain now, whatever a cache holds."""
        ...


def signer_of(voucher: SignedVoucher, chain_id: int, settlement: str) -> str:
    """The address that signed the voucher; PaymentRejectedError for a signature the contract would refuse."""
    return recover_signer(voucher.signature, lambda: voucher_digest(voucher.voucher, chain_id, settlement))


def recover_signer(sig: bytes, digest: Callable[[], bytes]) -> str:
    """The address whose key made `sig` (65 bytes, r ‖ s ‖ v with v as 27/28 or 0/1) over the
    32-byte `digest()` (computed only for a well-formed signature), as the EVM's ecrecover and
    OpenZeppelin's ECDSA take it (low s); PaymentRejectedError `bad_signature` otherwise. The
    paywall's vouchers and x402 `exact` authorizations (`agents.api.exact`) both go through it."""
    if len(sig) != 65:
        raise PaymentRejectedError("bad_signature", f"the signature is {len(sig)} bytes, not 65")
    r, s, v = int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:64], "big"), sig[64]
    if v in (27, 28):
        v -= 27
    if v not in (0, 1) or not 0 < s <= _HALF_N or r == 0:
        raise PaymentRejectedError("bad_signature", "the signature is malformed or malleable (high s)")
    message = digest()
    if r >= _N:
        raise PaymentRejectedError("bad_signature", "the signature is malformed (r out of range)")
    try:  # libsecp256k1 (coincurve): ecrecover as the EVM precompile does it
        point = PublicKey.from_signature_and_message(sig[:64] + bytes([v]), message, hasher=None)
    except ValueError as exc:
        raise PaymentRejectedError("bad_signature", "the signature does not recover to any key") from exc
    return address_of(keccak(point.format(compressed=False)[1:])[12:])


class ChannelBookError(PermanentError, ValueError):
    """The channel book on disk is not one this version can use; the message says what to do."""


_BOOK_SCHEMA: Final = {
    "sqlite": (
        "CREATE TABLE IF NOT EXISTS channels (payer TEXT NOT NULL, service TEXT NOT NULL,"
        " terms_id INTEGER NOT NULL, currency TEXT NOT NULL, cumulative TEXT NOT NULL, settled TEXT NOT NULL,"
        " voucher TEXT NOT NULL, updated_at REAL NOT NULL, PRIMARY KEY (payer, service, terms_id))"
    ),
    "postgresql": (
        "CREATE TABLE IF NOT EXISTS channels (payer TEXT NOT NULL, service TEXT NOT NULL,"
        " terms_id BIGINT NOT NULL, currency TEXT NOT NULL, cumulative TEXT NOT NULL, settled TEXT NOT NULL,"
        " voucher TEXT NOT NULL, updated_at DOUBLE PRECISION NOT NULL, PRIMARY KEY (payer, service, terms_id));"
        "CREATE INDEX IF NOT EXISTS channels_by_escrow ON channels (payer, currency, service)"
    ),
}


@dataclass(frozen=True)
class Acceptance:
    """What `ChannelBook.accept_covered` did: `accepted`, or why not (`behind`: a voucher at
    least as high is the channel's; `deadline`: it would expire before the channel's newest
    unsettled one; `uncovered`: with it, the payer's channels would owe `owed` > the cover),
    with the channel's newest voucher and, when uncovered, every channel of that escrow."""

    outcome: str
    known: SignedVoucher | None = None
    owed: int = 0
    channels: dict[int, tuple[int, int]] | None = None


@dataclass(frozen=True)
class Offered:
    """A voucher put to the channel book: its terms' `currency` and `price` (one use), the
    channel's `settled` figure on chain and the escrow's `cover` (None: not checked)."""

    voucher: SignedVoucher
    currency: str
    settled: int
    cover: int | None
    price: int = 1


class ChannelBook:
    """The newest accepted voucher of every channel (payer, service, terms), durable (see the
    module docstring). Addresses are stored checksummed. `location`: a SQLite file (one API
    process; an fsync per commit) or a postgresql:// URL (every API process that shares it sees
    every voucher the others accepted: the escrow check counts them all)."""

    def __init__(self, location: str | Path) -> None:
        from agents.core.locations import is_postgres
        from agents.runtime.journal_db import connect

        if isinstance(location, Path) and location.is_file():
            import sqlite3

            probe = sqlite3.connect(location)
            try:
                columns = {row[1] for row in probe.execute("PRAGMA table_info(channels)")}
            finally:
                probe.close()
            if columns and "service" not in columns:
                raise ChannelBookError(
                    f"{location} holds channels of version-1 vouchers (no service), which LicenseManager v2 cannot "
                    "settle: settle them with the old deployment, then move the file away (or use a fresh --state)"
                )
        self.db = connect(location, synchronous="FULL")
        self.shared = is_postgres(location)
        try:
            self.db.create_schema(_BOOK_SCHEMA[self.db.dialect.name])
        except BaseException:
            self.db.close()
            raise
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
        with self._lock, self.db.transaction() as db:
            db.execute(
                "UPDATE channels SET settled = ? WHERE payer = ? AND service = ? AND terms_id = ?",
                (str(settled), payer, service, terms_id),
            )

    def accept(self, voucher: SignedVoucher, currency: str, settled: int, now: float) -> bool:
        """Records the voucher as its channel's newest if it is above the one there (atomic)."""
        return self.accept_covered(voucher, currency, settled, now).outcome == "accepted"

    def accept_covered(
        self,
        voucher: SignedVoucher,
        currency: str,
        settled: int,
        now: float,
        cover: int | None = None,
        *,
        price: int = 1,
    ) -> Acceptance:
        """In one transaction that holds the payer's escrow (payer, service) against every other
        process sharing this book: records the voucher as its channel's newest if it is at least
        `price` (one use) above what the channel already paid (its newest voucher here, or
        `settled`: the channel's figure on chain), would not expire before the newest while that
        one is unsettled, and, with `cover`, leaves the payer's channels in `currency` owing no
        more than `cover`. Otherwise changes nothing and says why."""
        return self.accept_many([Offered(voucher, currency, settled, cover, price)], now)[0]

    def accept_many(self, offered: Sequence[Offered], now: float) -> list[Acceptance]:
        """`accept_covered` for each of `offered`, in order, in one transaction (one commit, one
        fsync): each sees the vouchers accepted before it, so two on one escrow cannot both
        spend it. On PostgreSQL the transaction first holds every escrow they draw on, in one
        order for every process (no deadlock between two batches)."""
        with self._lock, self.db.transaction() as db:
            if self.shared:  # SQLite's BEGIN IMMEDIATE already holds the one write lock
                for escrow in sorted({f"{o.voucher.channel[0]}|{o.voucher.channel[1]}" for o in offered}):
                    db.execute("SELECT pg_advisory_xact_lock(hashtextextended(?, 18))", (escrow,))
            return [self._decide(db, o, now) for o in offered]

    @staticmethod
    def _decide(db: Database, offered: Offered, now: float) -> Acceptance:
        voucher, settled, cover = offered.voucher, offered.settled, offered.cover
        payer, service, terms_id = voucher.channel
        amount = voucher.voucher.cumulative_amount
        row = db.execute(
            "SELECT cumulative, voucher FROM channels WHERE payer = ? AND service = ? AND terms_id = ?",
            (payer, service, terms_id),
        ).fetchone()
        known = parse_voucher(json.loads(row[1])) if row is not None else None
        if amount < _accepted(known, settled) + offered.price:
            return Acceptance("behind", known)
        if known is not None and int(row[0]) > settled and voucher.voucher.deadline < known.voucher.deadline:
            return Acceptance("deadline", known)
        if cover is not None:
            rows = db.execute(
                "SELECT terms_id, cumulative, settled FROM channels WHERE payer = ? AND currency = ? AND service = ?",
                (payer, offered.currency, service),
            ).fetchall()
            channels = {int(t): (int(c), int(s)) for t, c, s in rows}
            channels[terms_id] = (amount, settled)
            owed = _owed(channels)
            if owed > cover:
                return Acceptance("uncovered", known, owed, channels)
        db.execute(
            "INSERT INTO channels (payer, service, terms_id, currency, cumulative, settled, voucher, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (payer, service, terms_id) DO UPDATE SET"
            " currency = excluded.currency, cumulative = excluded.cumulative, settled = excluded.settled,"
            " voucher = excluded.voucher, updated_at = excluded.updated_at",
            (
                payer,
                service,
                terms_id,
                offered.currency,
                str(amount),
                str(settled),
                json.dumps(voucher.as_json(), separators=(",", ":")),
                now,
            ),
        )
        return Acceptance("accepted", known)

    def newest(self) -> list[SignedVoucher]:
        """Every channel's newest voucher."""
        with self._lock:
            rows = self.db.execute("SELECT voucher FROM channels").fetchall()
        return [parse_voucher(json.loads(row[0])) for row in rows]


@dataclass
class _Check:
    """One voucher waiting in the paywall's next batch, with what the batch learns of it."""

    voucher: SignedVoucher
    done: asyncio.Future[str]
    terms: TermsInfo | None = None
    settled: int = 0
    cover: int = 0

    def fail(self, error: BaseException) -> None:
        if self.done.done():
            return
        if isinstance(error, asyncio.CancelledError):
            self.done.cancel()
        else:
            self.done.set_exception(error)


class Paywall:
    """See the module docstring. `service`: the address whose vouchers this paywall accepts.
    `submit` journals accepted vouchers for settlement, all in one transaction, and returns their
    queue keys in order (blocking: it runs in a thread).

    Checks run in batches, one batch at a time: whatever waits when the last batch ends (at most
    `max_batch`) goes through one read barrier, one thread hop for its signatures, one channel
    book transaction (one fsync) and one journal transaction, its vouchers in the order they
    came. A voucher refused in a batch fails only its own check, and so does a chain read of it
    that fails or takes longer than `read_timeout_s` (the batch waits no longer for it); a check
    whose client went away before the book is not charged."""

    def __init__(
        self,
        book: ChannelBook,
        chain: LicenseReader,
        submit: Callable[[Sequence[SignedVoucher]], list[str]],
        *,
        service: str,
        clock: Callable[[], float] = time.time,
        max_batch: int = 256,
        read_timeout_s: float = 10.0,
    ) -> None:
        if not is_address(service) or int(service, 16) == 0:
            raise ValueError(f"the service {service!r} is not a non-zero address")
        if max_batch < 1:
            raise ValueError(f"a batch holds at least one check, not {max_batch}")
        if not read_timeout_s > 0:
            raise ValueError(f"the read timeout is positive, not {read_timeout_s}")
        self.book, self.chain, self._submit, self._clock = book, chain, submit, clock
        self.service: str = to_checksum_address(service)
        self._max_batch, self._read_timeout_s = max_batch, read_timeout_s
        self._waiting: list[_Check] = []
        self._worker: asyncio.Task[None] | None = None
        self.batches = 0

    async def resubmit(self) -> int:
        """Puts every channel's newest voucher into the journal (idempotent); how many there were."""
        vouchers = await asyncio.to_thread(self.book.newest)
        if vouchers:
            await asyncio.to_thread(self._submit, vouchers)
        return len(vouchers)

    async def accept(self, voucher: SignedVoucher, *, asset: bytes, terms_id: int) -> str:
        """Checks the voucher for one use of `asset` under `terms_id` and keeps it; its queue key."""
        v = voucher.voucher
        if v.asset != asset or v.terms_id != terms_id:
            raise PaymentRejectedError("wrong_resource", "the voucher pays for another asset or other terms")
        service = voucher.channel[1]
        if service != self.service:
            raise PaymentRejectedError(
                "wrong_service",
                f"the voucher names service {service}; this server is service {self.service}: sign for it "
                "(and hold escrow with it)",
                {"service": self.service},
            )
        check = _Check(voucher, asyncio.get_running_loop().create_future())
        self._waiting.append(check)
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._work(), name="paywall-batches")
        return await check.done

    async def _work(self) -> None:
        while self._waiting:
            batch = [c for c in self._waiting[: self._max_batch] if not c.done.done()]
            del self._waiting[: self._max_batch]
            try:
                await self._check(batch)
            except asyncio.CancelledError:
                for check in batch + self._waiting:
                    check.done.cancel()
                raise
            except Exception as exc:  # the batch as a whole failed (the node, the book): each check says so
                for check in batch:
                    check.fail(exc)
            self.batches += 1

    async def _check(self, batch: list[_Check]) -> None:
        await self._bounded(self.chain.sync())  # every chain event up to now is in what the reads below serve
        now = self._clock()
        found = await asyncio.gather(
            *(self._bounded(self._terms_of(c.voucher, now)) for c in batch), return_exceptions=True
        )
        valid: list[_Check] = []
        for check, terms in zip(batch, found, strict=True):
            if isinstance(terms, BaseException):
                check.fail(terms)
            else:
                check.terms = terms
                valid.append(check)
        chain_id, settlement = self.chain.chain_id, self.chain.settlement
        signers = await asyncio.to_thread(_signers, [c.voucher for c in valid], chain_id, settlement)
        signed: list[_Check] = []
        for check, signer in zip(valid, signers, strict=True):
            payer = check.voucher.channel[0]
            if isinstance(signer, PaymentRejectedError):
                check.fail(signer)
            elif signer != payer:
                message = f"the voucher is signed by {signer}, not by its payer {payer}"
                check.fail(PaymentRejectedError("wrong_signer", message))
            else:
                signed.append(check)
        figures = await asyncio.gather(*(self._bounded(self._figures(c)) for c in signed), return_exceptions=True)
        for check, outcome in zip(signed, figures, strict=True):
            if isinstance(outcome, BaseException):
                check.fail(outcome)
        ready = [c for c in signed if not c.done.done()]  # a client gone by now is not charged
        # the book checks each channel and the whole escrow in the transaction that records the
        # vouchers, counting what every API process sharing it accepted
        results = await asyncio.to_thread(self.book.accept_many, [_offered(c) for c in ready], now)
        accepted: list[_Check] = []
        for check, result in zip(ready, results, strict=True):
            try:
                if result.outcome == "uncovered" and result.channels is not None:
                    result = await self._bounded(self._covered_again(check, result.channels, now))
                _verdict(check, result, now)
                accepted.append(check)
            except Exception as exc:  # this check's refusal, or its reads failing: its alone
                check.fail(exc)
        if accepted:
            keys = await asyncio.to_thread(self._submit, [c.voucher for c in accepted])
            for check, key in zip(accepted, keys, strict=True):
                if not check.done.done():
                    check.done.set_result(key)

    async def _bounded(self, work: Awaitable[T]) -> T:
        """`work`, or TimeoutError once it took longer than the read timeout."""
        try:
            return await asyncio.wait_for(work, self._read_timeout_s)
        except TimeoutError:
            raise TimeoutError(f"the chain did not answer within {self._read_timeout_s} s") from None

    async def _covered_again(self, check: _Check, channels: dict[int, tuple[int, int]], now: float) -> Acceptance:
        """The settled figures of the payer's other channels may be stale (settlement lowers what
        is owed and the escrow alike): reads them again, then the escrow's cover from the chain
        (after them: a settlement they saw lowered it too, so it is never counted once), and puts
        the voucher to the book once more. Only the batch worker calls it, one check at a time."""
        assert check.terms is not None
        payer, service, terms_id = check.voucher.channel
        await self._refresh(payer, dict(channels), keep=terms_id)
        check.cover = await self.chain.cover(payer, check.terms.currency, service, fresh=True)
        (result,) = await asyncio.to_thread(self.book.accept_many, [_offered(check)], now)
        return result

    async def _terms_of(self, voucher: SignedVoucher, now: float) -> TermsInfo:
        """The voucher's terms, once checks 2 and 3 of the module docstring hold."""
        v = voucher.voucher
        terms = await self.chain.terms(v.terms_id)
        if terms is None or terms.asset != v.asset:
            raise PaymentRejectedError("unknown_terms", f"terms {v.terms_id} are not terms of this asset")
        if terms.price_per_use == 0:
            raise PaymentRejectedError("not_metered", f"terms {v.terms_id} are not sold per use")
        if not terms.active:
            raise PaymentRejectedError(
                "terms_inactive", f"terms {v.terms_id} are inactive: the creator stopped selling under them"
            )
        if terms.superseded:
            raise PaymentRejectedError(
                "terms_superseded",
                f"terms {v.terms_id} are of an earlier record of the asset: they license nothing now",
            )
        if v.cumulative_amount > MAX_CUMULATIVE:
            raise PaymentRejectedError(
                "amount_too_large", f"the cumulative amount is above {MAX_CUMULATIVE}: no channel can settle it"
            )
        if v.deadline < now + MIN_DEADLINE_S:
            raise PaymentRejectedError(
                "deadline_too_soon",
                f"the voucher's deadline must be at least {MIN_DEADLINE_S} s ahead (the offer's minDeadlineSeconds), "
                "so settlement that runs late still finds it valid: sign again with a later deadline",
                {"deadline": v.deadline, "now": int(now), "minDeadlineSeconds": MIN_DEADLINE_S},
            )
        return terms

    async def _figures(self, check: _Check) -> None:
        """The channel's settled figure and the escrow's cover (two chain reads at once on a node)."""
        assert check.terms is not None
        payer, service, terms_id = check.voucher.channel
        check.settled, check.cover = await asyncio.gather(
            self.chain.settled(payer, service, terms_id), self.chain.cover(payer, check.terms.currency, service)
        )

    async def promised(self, payer: str, currency: str) -> int:
        """What the payer's vouchers in `currency` accepted here owe beyond what is settled on
        chain, the settled figures read afresh where something still seemed owed."""
        await self.chain.sync()
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


def _signers(vouchers: Sequence[SignedVoucher], chain_id: int, settlement: str) -> list[str | PaymentRejectedError]:
    """Each voucher's signer, or why its signature is refused (blocking: one thread hop a batch)."""
    signers: list[str | PaymentRejectedError] = []
    for voucher in vouchers:
        try:
            signers.append(signer_of(voucher, chain_id, settlement))
        except PaymentRejectedError as exc:
            signers.append(exc)
    return signers


def _offered(check: _Check) -> Offered:
    assert check.terms is not None
    return Offered(check.voucher, check.terms.currency, check.settled, check.cover, check.terms.price_per_use)


def _verdict(check: _Check, result: Acceptance, now: float) -> None:
    """PaymentRejectedError unless the book accepted the voucher, saying why not."""
    assert check.terms is not None
    v, service = check.voucher.voucher, check.voucher.channel[1]
    if result.outcome == "behind":
        raise _behind(
            result.known,
            check.settled,
            check.terms.price_per_use,
            "the cumulative amount must be at least one use above what this channel already paid (acceptedCumulative)",
        )
    if result.outcome == "deadline" and result.known is not None:
        raise _late(v.deadline, now, result.known)
    if result.outcome == "uncovered":
        raise PaymentRejectedError(
            "insufficient_escrow",
            f"the payer's escrow with service {service}, less any pending withdrawal, does not cover "
            "its unsettled vouchers with this one: deposit with this service (or cancel the withdrawal)",
            {
                "owed": str(result.owed),
                "escrow": str(check.cover),
                "currency": check.terms.currency,
                "service": service,
            },
        )
    if result.outcome != "accepted":
        raise PaymentRejectedError("rejected", f"the channel book refused the voucher ({result.outcome})")


def _accepted(known: SignedVoucher | None, settled: int) -> int:
    """What a channel already paid: its newest voucher here or its settled figure on chain."""
    return max(known.voucher.cumulative_amount if known is not None else 0, settled)


def _late(deadline: int, now: float, known: SignedVoucher) -> PaymentRejectedError:
    """`deadline_too_soon`: a voucher that would expire before the channel's newest unsettled one."""
    return PaymentRejectedError(
        "deadline_too_soon",
        f"the voucher's deadline is before {known.voucher.deadline}, that of the channel's newest "
        "unsettled voucher: settlement settles only the newest, so it must not expire first; sign again "
        "with a deadline at least that late",
        {"deadline": deadline, "now": int(now), "channelDeadline": known.voucher.deadline},
    )


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
