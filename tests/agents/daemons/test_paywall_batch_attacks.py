"""An attacker's look at the batched paywall (commit 089fcc4), on the chain under test (a fresh
deployment per test, real SQLite book and journal, PostgreSQL where two API processes share a
book).

What holds (plain tests): a voucher replayed many times in one batch unlocks one use; one payer's
vouchers on two channels in one batch never owe more than its escrow; two API processes whose
batches cross on two escrows neither deadlock nor overspend; a client cancelling its request
mid-batch fails nothing of anyone else's, nor does a batch-wide failure or a cancelled worker
stop later checks; a failing settled/cover read fails only its own check; the read barrier
(an event mined while a batch is in flight is seen by a check that came after it);
`ChainClient.read` returns what web3's `call` returns for `settledOf` and `escrowOf`.

What the review found, fixed since (each test failed before the fix): the terms reads, awaited
one voucher after another with an error failing the whole batch, are read at once and fail only
their own check, and ids past `termsCount` cost no read; the uncovered retry path (`_refresh`,
after the book has committed every other voucher of the batch) fails only its own check; a read
holds the batch `read_timeout_s` at most; a check whose client went away before the book step
is neither booked nor journaled; the uncovered retry reads the escrow's cover from the chain
after the settled figures (a settlement racing it let the book owe more than the escrow holds);
and `read` leaves arguments web3 would refuse (an address not checksummed) to web3's `call`.

Faults and latency are injected by `_Faulty`, a `LicenseReader` that passes every call on to the
real licence index over the real chain and only adds a delay or an error to chosen calls (what a
slow or failing node does to one read); nothing of the chain is mocked.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from agents.api.chainview import LICENSES, ChainView
from agents.api.license_index import LicenseIndex
from agents.api.paywall import MIN_DEADLINE_S, ChannelBook, PaymentRejectedError, Paywall, TermsInfo
from agents.core.settlement import SignedVoucher
from agents.core.vouchers import Voucher, settle_arguments, sign_voucher
from agents.runtime import jobs
from tests.agents.daemons import paywall_chain
from tests.agents.daemons.paywall_chain import ETH, PRICE

pytestmark = pytest.mark.chain

UNKNOWN_TERMS = 999

Hook = Callable[..., Awaitable[None]]


class _Faulty:
    """The real licence index, with a hook awaited before chosen reads (a delay or an error)."""

    def __init__(self, inner: LicenseIndex) -> None:
        self.inner = inner
        self.chain_id, self.settlement = inner.chain_id, inner.settlement
        self.hooks: dict[str, Hook] = {}

    async def _hook(self, name: str, *args: Any) -> None:
        hook = self.hooks.get(name)
        if hook is not None:
            await hook(*args)

    async def sync(self) -> None:
        await self._hook("sync")
        await self.inner.sync()

    async def terms(self, terms_id: int) -> TermsInfo | None:
        await self._hook("terms", terms_id)
        return await self.inner.terms(terms_id)

    async def settled(self, payer: str, service: str, terms_id: int) -> int:
        await self._hook("settled", payer, service, terms_id)
        return await self.inner.settled(payer, service, terms_id)

    async def cover(self, payer: str, currency: str, service: str, *, fresh: bool = False) -> int:
        await self._hook("cover", payer, currency, service)
        return await self.inner.cover(payer, currency, service, fresh=fresh)


@dataclass
class Deployed(paywall_chain.Deployed):
    """The shared deployment, its reader a `_Faulty` one."""

    def junk(self, terms_id: int = UNKNOWN_TERMS) -> SignedVoucher:
        """What a stranger sends with no key and no escrow: unknown terms, a signature of nothing."""
        deadline = self.now() + 2 * MIN_DEADLINE_S
        v = Voucher(str(Account.create().address), self.service, self.asset, terms_id, PRICE, deadline)
        return SignedVoucher(v, b"\x11" * 65)

    def reader(self) -> _Faulty:
        return _Faulty(super().reader())


@pytest.fixture
def deployed(project: Any, chain: Any, accounts: Any, tmp_path: Path) -> Iterator[Deployed]:
    shared = paywall_chain.deploy(project, chain, accounts, tmp_path, "batch-attacks")
    yield Deployed(**vars(shared))
    shared.journal.close()


async def _send(paywall: Paywall, voucher: SignedVoucher) -> str:
    """The queue key, or the refusal's code, or the exception's type for anything else."""
    try:
        return await paywall.accept(voucher, asset=voucher.voucher.asset, terms_id=voucher.voucher.terms_id)
    except PaymentRejectedError as refused:
        return refused.code
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # a batch-wide failure reaching this check
        return f"error:{type(exc).__name__}"


def _ok(outcome: str) -> bool:
    """A queue key: the check was accepted."""
    return outcome.startswith("voucher-")


async def _gate(event: asyncio.Event) -> Hook:
    async def wait(*_: Any) -> None:
        await event.wait()

    return wait


def _only(payer: Any, hook: Hook) -> Hook:
    """`hook` for reads of `payer`'s figures only."""

    async def chosen(who: str, *rest: Any) -> None:
        if who == str(payer.address):
            await hook(who, *rest)

    return chosen


# -- (a) and (b): what the batch accepts -------------------------------------------------------------


def test_a_voucher_replayed_many_times_in_one_batch_and_the_next_unlocks_one_use(deployed: Deployed, tmp_path: Path):
    d = deployed
    book = ChannelBook(tmp_path / "book.db")
    voucher = d.signed(d.terms[0], PRICE)

    async def main() -> tuple[list[str], list[str]]:
        paywall = d.paywall(book)
        first = await asyncio.gather(*(_send(paywall, voucher) for _ in range(6)))
        again = await asyncio.gather(*(_send(paywall, voucher) for _ in range(3)))
        return list(first), list(again)

    first, again = asyncio.run(main())
    assert sum(1 for o in first if o != "replayed_or_short") == 1, first
    assert again == ["replayed_or_short"] * 3
    assert book.channel(str(d.payer.address), d.service, d.terms[0]) == (PRICE, 0)
    book.close()


def test_one_payers_vouchers_on_two_channels_in_one_batch_never_owe_more_than_its_escrow(
    deployed: Deployed, tmp_path: Path
):
    d = deployed
    book = ChannelBook(tmp_path / "book.db")
    # 16 uses (8 a channel, interleaved) offered at once on an escrow of 10
    vouchers = [d.signed(d.terms[i % 2], (i // 2 + 1) * PRICE) for i in range(16)]

    async def main() -> list[str]:
        paywall = d.paywall(book)
        outcomes = await asyncio.gather(*(_send(paywall, v) for v in vouchers))
        assert paywall.batches == 1
        return list(outcomes)

    outcomes = asyncio.run(main())
    refused = [o for o in outcomes if o in ("insufficient_escrow", "replayed_or_short", "deadline_too_soon")]
    served = len(outcomes) - len(refused)
    owed = book.owed(str(d.payer.address), ETH, d.service)
    assert sum(c for c, _ in owed.values()) == served * PRICE <= 10 * PRICE, outcomes
    assert served == 10 and refused.count("insufficient_escrow") == 6, outcomes
    book.close()


def test_two_api_processes_with_crossing_batches_neither_deadlock_nor_overspend(deployed: Deployed, postgres_url: str):
    d = deployed
    first, second = ChannelBook(postgres_url), ChannelBook(postgres_url)
    p, q = d.payer, d.other
    # each escrow holds 10 uses; each process's batch spends 6 on each escrow, in opposite orders
    batch_a = [d.signed(d.terms[0], 6 * PRICE, q), d.signed(d.terms[0], 6 * PRICE, p)]
    batch_b = [d.signed(d.terms[1], 6 * PRICE, p), d.signed(d.terms[1], 6 * PRICE, q)]
    replayed = batch_a[1]  # a stranger sends one of them to the other process too

    async def main() -> list[str]:
        a, b = d.paywall(first), d.paywall(second)
        jobs_ = [*(_send(a, v) for v in batch_a), *(_send(b, v) for v in batch_b), _send(b, replayed)]
        return list(await asyncio.wait_for(asyncio.gather(*jobs_), 60))

    outcomes = asyncio.run(main())
    assert not any(o.startswith("error:") for o in outcomes), outcomes
    for payer in (p, q):
        owed = first.owed(str(payer.address), ETH, d.service)
        assert sum(c for c, _ in owed.values()) == 6 * PRICE, (payer, owed, outcomes)
    assert outcomes.count("insufficient_escrow") + outcomes.count("replayed_or_short") == 3, outcomes
    first.close()
    second.close()


def test_a_settlement_racing_the_uncovered_retry_never_lets_the_book_owe_more_than_the_escrow(
    deployed: Deployed, tmp_path: Path
):
    d = deployed
    book = ChannelBook(tmp_path / "book.db")
    payer = str(d.payer.address)
    earlier = d.signed(d.terms[1], 6 * PRICE)

    async def main() -> str:
        assert _ok(await _send(d.paywall(book), earlier))  # 6 of the 10 uses, unsettled
        reader = d.reader()  # a restarted API (or another process on a shared book): nothing cached
        mined: list[bool] = []

        async def settle_now(who: str, service: str, terms_id: int) -> None:
            if who == payer and terms_id == d.terms[1] and not mined:
                mined.append(True)  # the settlement daemon's batch lands now, between the two reads
                calls, wallets = settle_arguments([(earlier.voucher, earlier.signature)])
                await d.client.node(lambda: d.licenses.settle(ETH, d.service, calls, wallets, sender=d.operator))

        reader.hooks["settled"] = settle_now
        return await _send(d.paywall(book, reader), d.signed(d.terms[0], 5 * PRICE))  # 5 more uses

    outcome = asyncio.run(main())
    owed = sum(max(0, c - s) for c, s in book.owed(payer, ETH, d.service).values())
    balance, pending, _ = d.licenses.escrowOf(payer, ETH, d.service)
    book.close()
    assert int(balance) - int(pending) == 4 * PRICE  # 10 deposited, 6 settled
    assert owed <= 4 * PRICE, f"{outcome}: the book owes {owed // PRICE} uses on an escrow of 4"


# -- (c) and (d): one check must not fail or hold another ----------------------------------------------


def test_a_client_cancelling_mid_batch_fails_nothing_else_and_the_worker_goes_on(deployed: Deployed, tmp_path: Path):
    d = deployed
    book = ChannelBook(tmp_path / "book.db")
    reader = d.reader()

    async def main() -> tuple[str, str]:
        gate = asyncio.Event()
        reader.hooks["cover"] = _only(d.other, await _gate(gate))
        paywall = d.paywall(book, reader)
        # the payer's request starts the worker; the other payer's read holds the batch
        mine = asyncio.create_task(_send(paywall, d.signed(d.terms[0], PRICE)))
        theirs = asyncio.create_task(_send(paywall, d.signed(d.terms[0], PRICE, d.other)))
        await asyncio.sleep(0.3)
        mine.cancel()  # the client that started the worker goes away mid-batch
        with pytest.raises(asyncio.CancelledError):
            await mine
        gate.set()
        outcome = await asyncio.wait_for(theirs, 20)
        known = book.channel(str(d.payer.address), d.service, d.terms[0])
        paid = known[0] if known is not None else 0
        later = await asyncio.wait_for(_send(paywall, d.signed(d.terms[0], paid + PRICE)), 20)
        return outcome, later

    outcome, later = asyncio.run(main())
    assert _ok(outcome) and _ok(later), (outcome, later)
    book.close()


def test_a_batch_wide_failure_and_a_cancelled_worker_do_not_stop_later_checks(deployed: Deployed, tmp_path: Path):
    d = deployed
    book = ChannelBook(tmp_path / "book.db")
    calls = {"n": 0}

    def flaky(vouchers: Sequence[SignedVoucher]) -> list[str]:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("the journal is unreachable")
        return jobs.submit_vouchers(d.journal, vouchers)

    async def main() -> list[str]:
        reader = d.reader()
        paywall = d.paywall(book, reader, flaky)
        failed = await asyncio.gather(_send(paywall, d.signed(d.terms[0], PRICE)), _send(paywall, d.junk()))
        after = await _send(paywall, d.signed(d.terms[0], 2 * PRICE))
        # the worker itself is cancelled mid-batch (shutdown of a task group, say)
        gate = asyncio.Event()
        reader.hooks["cover"] = await _gate(gate)
        stuck = asyncio.create_task(_send(paywall, d.signed(d.terms[0], 3 * PRICE)))
        await asyncio.sleep(0.2)
        assert paywall._worker is not None
        paywall._worker.cancel()
        with pytest.raises(asyncio.CancelledError):
            await stuck
        reader.hooks.clear()
        fresh = await asyncio.wait_for(_send(paywall, d.signed(d.terms[1], PRICE)), 20)
        return [*failed, after, fresh]

    failed_a, failed_junk, after, fresh = asyncio.run(main())
    assert failed_a == "error:RuntimeError" and failed_junk == "unknown_terms", (failed_a, failed_junk)
    assert _ok(after) and _ok(fresh), (after, fresh)
    book.close()


def test_a_failing_figure_read_for_one_voucher_fails_only_its_own_check(deployed: Deployed, tmp_path: Path):
    d = deployed
    book = ChannelBook(tmp_path / "book.db")
    reader = d.reader()

    async def fail(*_: Any) -> None:
        raise ConnectionError("the node dropped this read")

    reader.hooks["cover"] = _only(d.other, fail)

    async def main() -> list[str]:
        paywall = d.paywall(book, reader)
        return list(
            await asyncio.gather(
                _send(paywall, d.signed(d.terms[0], PRICE, d.other)), _send(paywall, d.signed(d.terms[0], PRICE))
            )
        )

    theirs, mine = asyncio.run(main())
    assert theirs == "error:ConnectionError" and _ok(mine), (theirs, mine)
    book.close()


def test_a_failing_terms_read_for_a_strangers_voucher_fails_only_its_own_check(deployed: Deployed, tmp_path: Path):
    d = deployed
    book = ChannelBook(tmp_path / "book.db")
    reader = d.reader()

    async def fail(terms_id: int) -> None:
        if terms_id == UNKNOWN_TERMS:
            raise ConnectionError("the node dropped this read")

    reader.hooks["terms"] = fail

    async def main() -> list[str]:
        paywall = d.paywall(book, reader)
        return list(await asyncio.gather(_send(paywall, d.junk()), _send(paywall, d.signed(d.terms[0], PRICE))))

    junk, mine = asyncio.run(main())
    book.close()
    assert junk == "error:ConnectionError"
    assert _ok(mine), mine


def test_a_failing_read_in_one_payers_uncovered_retry_fails_only_its_own_check(deployed: Deployed, tmp_path: Path):
    d = deployed
    book = ChannelBook(tmp_path / "book.db")
    reader = d.reader()
    attacker = d.other

    async def main() -> tuple[str, str]:
        paywall = d.paywall(book, reader)
        # the attacker owes one use on terms[1] (something `_refresh` will read again)
        assert _ok(await _send(paywall, d.signed(d.terms[1], PRICE, attacker)))

        async def fail(payer: str, service: str, terms_id: int) -> None:
            if payer == str(attacker.address) and terms_id == d.terms[1]:
                raise ConnectionError("the node dropped this read")

        reader.hooks["settled"] = fail
        # in one batch: the payer's honest use, and the attacker's voucher above its escrow
        mine, theirs = await asyncio.gather(
            _send(paywall, d.signed(d.terms[0], PRICE)), _send(paywall, d.signed(d.terms[0], 20 * PRICE, attacker))
        )
        return mine, theirs

    mine, theirs = asyncio.run(main())
    booked = book.channel(str(d.payer.address), d.service, d.terms[0])
    book.close()
    assert booked == (PRICE, 0)  # the book took the payer's voucher either way
    assert not _ok(theirs)
    assert _ok(mine), (mine, theirs)  # ... but the payer was told its check failed
    assert d.journal.get(mine) is not None


def test_a_stuck_read_for_one_payer_does_not_hold_another_payers_check(deployed: Deployed, tmp_path: Path):
    d = deployed
    book = ChannelBook(tmp_path / "book.db")
    reader = d.reader()

    async def main() -> tuple[bool, bool, str]:
        gate = asyncio.Event()
        reader.hooks["cover"] = _only(d.other, await _gate(gate))
        paywall = d.paywall(book, reader, read_timeout_s=1.0)  # a stuck read holds the batch 1 s at most
        stuck = asyncio.create_task(_send(paywall, d.signed(d.terms[0], PRICE, d.other)))
        same_batch = asyncio.create_task(_send(paywall, d.signed(d.terms[0], PRICE)))
        await asyncio.sleep(0.3)
        next_batch = asyncio.create_task(_send(paywall, d.signed(d.terms[1], PRICE)))
        done, _ = await asyncio.wait({same_batch, next_batch}, timeout=3.0)
        gate.set()  # the stuck read answers at last
        await asyncio.wait_for(asyncio.gather(stuck, same_batch, next_batch), 20)
        return same_batch in done, next_batch in done, stuck.result()

    same_batch_done, next_batch_done, stuck = asyncio.run(main())
    book.close()
    assert same_batch_done and next_batch_done, (same_batch_done, next_batch_done)
    assert stuck == "error:TimeoutError", stuck  # the stuck check alone failed, saying so


def test_strangers_unsigned_vouchers_do_not_multiply_an_honest_checks_latency(deployed: Deployed, tmp_path: Path):
    d = deployed
    book = ChannelBook(tmp_path / "book.db")
    reader = d.reader()

    async def main() -> float:
        paywall = d.paywall(book, reader)
        assert _ok(await _send(paywall, d.signed(d.terms[0], PRICE)))  # terms cached, like a busy server's

        async def round_trip(terms_id: int) -> None:
            if terms_id == UNKNOWN_TERMS:
                await asyncio.sleep(0.1)  # a remote node's round trip for a read the index cannot cache

        reader.hooks["terms"] = round_trip
        junk = [asyncio.create_task(_send(paywall, d.junk())) for _ in range(20)]
        began = time.monotonic()
        mine = await _send(paywall, d.signed(d.terms[0], 2 * PRICE))
        took = time.monotonic() - began
        assert _ok(mine) and set(await asyncio.gather(*junk)) == {"unknown_terms"}
        return took

    took = asyncio.run(main())
    book.close()
    assert took < 1.0, f"the honest check took {took:.2f} s behind 20 unsigned vouchers"


def test_a_check_cancelled_before_the_book_step_is_not_charged(deployed: Deployed, tmp_path: Path):
    d = deployed
    book = ChannelBook(tmp_path / "book.db")
    reader = d.reader()

    async def main() -> None:
        gate = asyncio.Event()
        reader.hooks["cover"] = await _gate(gate)
        paywall = d.paywall(book, reader)
        mine = asyncio.create_task(_send(paywall, d.signed(d.terms[0], PRICE)))
        await asyncio.sleep(0.3)  # the batch is reading the escrow
        mine.cancel()  # the client gives up (a timeout, a closed connection)
        with pytest.raises(asyncio.CancelledError):
            await mine
        gate.set()
        assert paywall._worker is not None
        await asyncio.wait({paywall._worker}, timeout=20)  # the batch ends

    asyncio.run(main())
    booked = book.channel(str(d.payer.address), d.service, d.terms[0])
    book.close()
    assert booked is None, f"charged {booked} for a use never served"


# -- the read barrier --------------------------------------------------------------------------------


def test_an_event_mined_while_a_batch_runs_is_seen_by_a_check_that_came_after_it(deployed: Deployed, tmp_path: Path):
    d = deployed
    book = ChannelBook(tmp_path / "book.db")
    reader = d.reader()

    async def main() -> tuple[str, str, str]:
        paywall = d.paywall(book, reader)
        assert _ok(await _send(paywall, d.signed(d.terms[0], PRICE)))  # the payer's cover is cached now
        gate = asyncio.Event()
        reader.hooks["cover"] = _only(d.other, await _gate(gate))
        held = asyncio.create_task(_send(paywall, d.signed(d.terms[0], PRICE, d.other)))
        await asyncio.sleep(0.3)  # a batch is in flight, past its barrier
        # the payer asks to withdraw its whole escrow (mined on the node's own thread)
        await d.client.node(lambda: d.licenses.requestWithdrawal(ETH, d.service, 10 * PRICE, sender=d.payer))
        after = asyncio.create_task(_send(paywall, d.signed(d.terms[0], 2 * PRICE)))
        await asyncio.sleep(0.1)
        gate.set()
        return await held, await after, str(await reader.inner.cover(str(d.payer.address), ETH, d.service))

    held, after, cover = asyncio.run(main())
    book.close()
    assert _ok(held), held
    assert after == "insufficient_escrow", after
    assert cover == "0"


# -- (e) ChainClient.read against web3's call ----------------------------------------------------------


def test_read_is_what_web3s_call_returns_for_settled_and_escrow_at_their_edges(deployed: Deployed):
    d = deployed
    payer, other, stranger = str(d.payer.address), str(d.other.address), str(Account.create().address)
    # a channel settled on chain (3 uses), and a pending withdrawal with its unlock time
    voucher = Voucher(payer, d.service, d.asset, d.terms[0], 3 * PRICE, d.now() + 2 * MIN_DEADLINE_S)
    signature = sign_voucher(voucher, d.payer.private_key, d.chain_id, d.licenses.address)
    calls, wallets = settle_arguments([(voucher, signature)])
    d.licenses.settle(ETH, d.service, calls, wallets, sender=d.operator)
    d.licenses.requestWithdrawal(ETH, d.service, 4 * PRICE, sender=d.other)
    cases: list[tuple[str, tuple[Any, ...]]] = [
        ("settledOf", (payer, d.service, d.terms[0])),
        ("settledOf", (payer, d.service, d.terms[1])),
        ("settledOf", (payer, d.service, 0)),
        ("settledOf", (payer, d.service, 2**256 - 1)),
        ("settledOf", (stranger, stranger, 7)),
        ("escrowOf", (payer, ETH, d.service)),
        ("escrowOf", (other, ETH, d.service)),
        ("escrowOf", (stranger, ETH, d.service)),
        ("escrowOf", (payer, ETH, stranger)),
        ("escrowOf", (payer, stranger, d.service)),
    ]

    async def main() -> None:
        for function, args in cases:
            read = await d.client.read(LICENSES, function, *args)
            called = await d.client.call(LICENSES, function, *args)
            assert read == called and type(read) is type(called), (function, args, read, called)
            if function == "escrowOf":
                assert all(type(a) is type(b) for a, b in zip(read, called, strict=True))
        view = ChainView(d.client, d.chain_id)
        assert await view.settled(payer, d.service, d.terms[0]) == 3 * PRICE
        balance, pending, unlock = await d.client.call(LICENSES, "escrowOf", other, ETH, d.service)
        assert pending == 4 * PRICE and unlock > 0
        assert await view.cover(other, ETH, d.service) == balance - pending

    asyncio.run(main())


def test_read_refuses_what_web3s_call_refuses(deployed: Deployed):
    d = deployed
    payer = str(d.payer.address)

    async def outcome(read: bool, function: str, *args: Any) -> Any:
        try:
            return await (d.client.read if read else d.client.call)(LICENSES, function, *args)
        except Exception as exc:
            return type(exc).__name__

    async def main() -> None:
        for function, args in [
            ("escrowOf", (payer.lower(), ETH, d.service.lower())),
            ("settledOf", (payer.lower(), d.service, d.terms[0])),
            ("settledOf", (payer, d.service, 2**256)),
        ]:
            assert await outcome(True, function, *args) == await outcome(False, function, *args), (function, args)

    asyncio.run(main())
