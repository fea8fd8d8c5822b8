"""The paywall at scale (issue 23, item 6), on the chain under test (a fresh deployment per test):

- the channel book shared through PostgreSQL: two API processes (each its own book connection,
  chain index and paywall) accepting one payer's vouchers at once never accept beyond the
  payer's escrow; with a book each (the SQLite default, one API process) they would, which is
  why API processes that share a journal share its book; a stranger replaying one voucher to four
  API processes at once unlocks one use, not four;
- the licence index: escrow cover, settlements and terms come from a cache that the contract's
  events keep current; a withdrawal request or a deposit, terms switched off, are seen by the
  very next check (the read barrier), with no time-to-live to wait out; concurrent checks share
  one catch-up round.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from agents.api.chainview import ChainView
from agents.api.license_index import LicenseIndex
from agents.api.paywall import MIN_DEADLINE_S, ChannelBook, PaymentRejectedError, Paywall
from agents.core.settlement import SignedVoucher
from agents.core.vouchers import Voucher, sign_voucher
from tests.agents.daemons.paywall_chain import ETH, PRICE, Deployed, deploy
from tests.contracts.helpers import attach_terms

pytestmark = pytest.mark.chain


@pytest.fixture
def deployed(project: Any, chain: Any, accounts: Any, tmp_path: Path) -> Iterator[Deployed]:
    d = deploy(project, chain, accounts, tmp_path, "index")
    yield d
    d.journal.close()


async def _pay_uses(paywall: Paywall, d: Deployed, terms_id: int, uses: int) -> list[str]:
    """One use after another on one channel, from what the paywall already took on it: the
    outcome of each ("ok" or the refusal's code)."""
    outcomes = []
    known = paywall.book.channel(str(d.payer.address), d.service, terms_id)
    paid = known[0] if known is not None else 0
    for _ in range(uses):
        try:
            await paywall.accept(d.signed(terms_id, paid + PRICE), asset=d.asset, terms_id=terms_id)
        except PaymentRejectedError as refused:
            outcomes.append(refused.code)
            continue
        paid += PRICE
        outcomes.append("ok")
    return outcomes


def _race(d: Deployed, first: ChannelBook, second: ChannelBook) -> list[str]:
    """Two API processes at once, each paying 8 uses on a channel of its own of one escrow of 10 uses."""

    async def main() -> list[str]:
        a, b = d.paywall(first), d.paywall(second)
        left, right = await asyncio.gather(_pay_uses(a, d, d.terms[0], 8), _pay_uses(b, d, d.terms[1], 8))
        return left + right

    return asyncio.run(main())


def test_two_api_processes_sharing_the_book_never_accept_beyond_the_escrow(deployed: Deployed, postgres_url: str):
    first, second = ChannelBook(postgres_url), ChannelBook(postgres_url)  # two connections: two processes
    outcomes = _race(deployed, first, second)
    assert outcomes.count("ok") == 10 and outcomes.count("insufficient_escrow") == 6, outcomes
    owed = first.owed(str(deployed.payer.address), ETH, deployed.service)
    assert sum(cumulative for cumulative, _ in owed.values()) == 10 * PRICE  # exactly the escrow
    first.close()
    second.close()


def test_a_voucher_replayed_to_two_api_processes_at_once_unlocks_one_use(deployed: Deployed, postgres_url: str):
    # a stranger who saw a payer's voucher on its way (it travels in a request header) sends it
    # to every API process at once, hoping each unlocks a use for it
    d = deployed
    books = [ChannelBook(postgres_url) for _ in range(4)]
    voucher = d.signed(d.terms[0], PRICE)

    async def main() -> list[str]:
        async def send(paywall: Paywall) -> str:
            try:
                await paywall.accept(voucher, asset=d.asset, terms_id=d.terms[0])
            except PaymentRejectedError as refused:
                return refused.code
            return "ok"

        return list(await asyncio.gather(*(send(d.paywall(book)) for book in books)))

    outcomes = asyncio.run(main())
    assert sorted(outcomes) == ["ok", "replayed_or_short", "replayed_or_short", "replayed_or_short"], outcomes
    assert books[0].channel(str(d.payer.address), d.service, d.terms[0]) == (PRICE, 0)
    for book in books:
        book.close()


def test_with_a_book_each_two_api_processes_would_accept_beyond_the_escrow(deployed: Deployed, tmp_path: Path):
    first, second = ChannelBook(tmp_path / "a.db"), ChannelBook(tmp_path / "b.db")
    outcomes = _race(deployed, first, second)
    assert outcomes.count("ok") == 16  # each saw only its own vouchers: 16 uses on 10 of escrow
    first.close()
    second.close()


def test_the_index_drops_cover_and_terms_on_their_events_and_the_next_check_sees_them(
    deployed: Deployed, tmp_path: Path
):
    d = deployed
    payer = d.payer
    book = ChannelBook(tmp_path / "book.db")

    async def main() -> None:
        index = LicenseIndex(ChainView(d.client, d.chain_id))
        paywall = d.paywall(book, index)
        assert await _pay_uses(paywall, d, d.terms[0], 3) == ["ok"] * 3
        reads = index.misses
        assert await _pay_uses(paywall, d, d.terms[0], 1) == ["ok"]  # nothing changed: no chain read
        assert index.misses == reads and index.hits > 0
        # the payer asks to withdraw all but 4 uses of its escrow: counted as gone at once
        d.licenses.requestWithdrawal(ETH, d.service, 6 * PRICE, sender=payer)
        assert await _pay_uses(paywall, d, d.terms[0], 1) == ["insufficient_escrow"]
        d.licenses.cancelWithdrawal(ETH, d.service, sender=payer)
        assert await _pay_uses(paywall, d, d.terms[0], 1) == ["ok"]
        d.licenses.setTermsActive(d.terms[0], False, sender=d.creator)
        assert await _pay_uses(paywall, d, d.terms[0], 1) == ["terms_inactive"]
        d.licenses.deposit(ETH, d.service, PRICE, sender=payer, value=PRICE)
        assert await index.cover(str(payer.address), ETH, d.service) == 10 * PRICE  # cached: not synced yet
        await index.sync()
        assert await index.cover(str(payer.address), ETH, d.service) == 11 * PRICE
        rounds = index.rounds
        await asyncio.gather(*(index.sync() for _ in range(20)))  # twenty checks at once
        assert index.rounds - rounds <= 2

    asyncio.run(main())
    book.close()


def test_checks_at_once_share_a_batch_and_a_refused_voucher_fails_only_its_own(deployed: Deployed, tmp_path: Path):
    d = deployed
    book = ChannelBook(tmp_path / "book.db")
    stranger = Account.create()
    deadline = d.now() + 2 * MIN_DEADLINE_S
    forged_v = Voucher(str(d.payer.address), d.service, d.asset, d.terms[0], 2 * PRICE, deadline)
    forged = SignedVoucher(forged_v, sign_voucher(forged_v, stranger.key, d.chain_id, d.licenses.address))
    soon_v = Voucher(str(d.payer.address), d.service, d.asset, d.terms[1], 3 * PRICE, d.now() + 60)
    soon = SignedVoucher(soon_v, sign_voucher(soon_v, d.payer.private_key, d.chain_id, d.licenses.address))
    broken = SignedVoucher(d.signed(d.terms[1], PRICE).voucher, b"\x01" * 64)  # no v
    unknown_v = Voucher(str(d.payer.address), d.service, d.asset, 99, PRICE, deadline)
    unknown = SignedVoucher(unknown_v, sign_voucher(unknown_v, d.payer.private_key, d.chain_id, d.licenses.address))
    first, second = d.signed(d.terms[0], PRICE), d.signed(d.terms[1], 2 * PRICE)
    # 8 uses on one channel and 8 on another of one escrow of 10, in one batch: the first fits
    over_a, over_b = d.signed(d.terms[0], 8 * PRICE), d.signed(d.terms[1], 8 * PRICE)

    async def main() -> tuple[list[str], list[int]]:
        paywall = d.paywall(book)

        async def send(voucher: SignedVoucher) -> str:
            try:
                return await paywall.accept(voucher, asset=d.asset, terms_id=voucher.voucher.terms_id)
            except PaymentRejectedError as refused:
                return refused.code

        outcomes = await asyncio.gather(*(send(v) for v in (first, forged, soon, broken, unknown, second, first)))
        batches = paywall.batches
        late = await asyncio.gather(send(over_a), send(over_b))
        return [*outcomes, *late], [batches, paywall.batches]

    outcomes, batches = asyncio.run(main())
    keys = outcomes[0], outcomes[5]
    assert [*outcomes[1:5], outcomes[6]] == [
        "wrong_signer",
        "deadline_too_soon",
        "bad_signature",
        "unknown_terms",
        "replayed_or_short",
    ], outcomes
    assert d.journal.get(keys[0]) is not None and d.journal.get(keys[1]) is not None  # journaled for settlement
    assert outcomes[7] != "insufficient_escrow" and outcomes[8] == "insufficient_escrow", outcomes
    assert batches == [1, 2], batches  # seven checks at once went in one batch, the two after in one more
    payer = str(d.payer.address)
    assert book.channel(payer, d.service, d.terms[0]) == (8 * PRICE, 0)
    assert book.channel(payer, d.service, d.terms[1]) == (2 * PRICE, 0)
    book.close()


def test_a_view_read_straight_from_the_node_is_what_web3s_call_returns(deployed: Deployed):
    d = deployed
    payer = str(d.payer.address)

    async def main() -> None:
        for function, args in [
            ("escrowOf", (payer, ETH, d.service)),
            ("settledOf", (payer, d.service, d.terms[0])),
            ("termsCount", ()),
            ("getTerms", (d.terms[1],)),
            ("paymentReceiverOf", (d.asset,)),
        ]:
            assert await d.client.read("LicenseManager", function, *args) == await d.client.call(
                "LicenseManager", function, *args
            ), function
        # an error answer (unknown terms): raised as web3's call raises it, on either kind of node
        with pytest.raises(Exception) as called:
            await d.client.call("LicenseManager", "getTerms", 99)
        with pytest.raises(type(called.value)) as read:
            await d.client.read("LicenseManager", "getTerms", 99)
        assert str(read.value) == str(called.value)

    asyncio.run(main())


def test_reads_under_way_are_shared_but_never_one_begun_before_an_event_that_dropped_the_key(deployed: Deployed):
    d = deployed
    payer = str(d.payer.address)
    view = ChainView(d.client, d.chain_id)
    index = LicenseIndex(view)
    gate, reads = asyncio.Event(), []
    cover = view.cover

    async def slow_cover(*args: Any, **kwargs: Any) -> int:
        value = await cover(*args, **kwargs)  # read now, answered late: a figure of the moment it began
        reads.append(value)
        await gate.wait()
        return value

    view.cover = slow_cover  # type: ignore[method-assign]

    async def main() -> list[int]:
        await index.sync()
        first = asyncio.create_task(index.cover(payer, ETH, d.service))
        await asyncio.sleep(0.05)
        joined = asyncio.create_task(index.cover(payer, ETH, d.service))  # shares the read under way
        await asyncio.sleep(0.05)
        d.licenses.deposit(ETH, d.service, PRICE, sender=d.payer, value=PRICE)
        await index.sync()  # the deposit's event drops the payer's cover
        after = asyncio.create_task(index.cover(payer, ETH, d.service))  # must not take the older read
        await asyncio.sleep(0.05)
        gate.set()
        figures = list(await asyncio.gather(first, joined, after))
        return [*figures, await index.cover(payer, ETH, d.service)]

    assert asyncio.run(main()) == [10 * PRICE, 10 * PRICE, 11 * PRICE, 11 * PRICE]
    assert reads == [10 * PRICE, 11 * PRICE]  # two reads for three callers; the last figure was cached


def test_terms_ids_past_the_count_cost_no_read_and_new_terms_are_seen_after_their_block(deployed: Deployed):
    d = deployed
    index = LicenseIndex(ChainView(d.client, d.chain_id))

    async def main() -> None:
        await index.sync()
        assert await index.terms(d.terms[0]) is not None
        misses = index.misses
        for junk in (0, d.terms[1] + 1, 10**9, 2**255):
            assert await index.terms(junk) is None
        assert index.misses == misses  # the count is read once a block: a stranger's ids cost nothing
        added = attach_terms(d.licenses, d.creator, d.asset, price=0, price_per_use=PRICE)
        assert added == d.terms[1] + 1
        await index.sync()
        found = await index.terms(added)
        assert found is not None and found.price_per_use == PRICE

    asyncio.run(main())
