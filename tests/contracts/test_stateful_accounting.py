"""Stateful property test of the money: random deposit / settle / front-run / escrow withdrawal /
pay / purchase / new terms / distribute / data claim / withdraw sequences, in ETH and an ERC-20,
with two services and an adversary, against the real contracts.

Settlement is modelled voucher by voucher: the ghost knows every channel (payer, service,
terms) and every escrow (payer, currency, service), predicts which vouchers of a batch settle and
which are skipped (and why), and the receipt's events must say exactly that. The adversary (a
stranger with the public mempool) settles part of a pending batch first; the batch must still go
through, nothing paid twice. A creator attaches new terms mid-flow, and later purchases and
vouchers use them.

After every step, for each currency:
  - conservation: reserve + sum(pending) + sum(balances) + sum(data pool - paid) + dust
                  == deposited - withdrawn == what the splitter actually holds;
  - escrow: the escrows (per payer and service) add up to the reserve, and each is deposits -
    settled - withdrawn escrow (ghost bookkeeping);
  - exact roles: every role of every asset has been credited exactly floor(T * bps / 10_000) of
    the asset's cumulative distribution T (so rounding never moved money between roles), except
    that the protocol fee is charged on what the asset itself received (T minus its inherited
    revenue I) and its creator also takes floor(I * fee / 10_000); the parent's revenue is its
    own inflow plus its derivative's parent share, and the dust is what the floors left over.

Every rule also takes its failure paths (a request not yet unlocked or expired, nothing to
distribute / claim / withdraw) and asserts the named revert and that nothing moved.

Fixed seed (derandomized), so a failure reproduces; `slow` because it sends a few hundred
transactions.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import ape
import pytest
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

from agents.core.merkle import DataTree
from tests.contracts.helpers import (
    ETH,
    SERVICE,
    Views,
    asset_record,
    attach_terms,
    buy_license,
    register_asset,
    register_model,
    signed_voucher,
    stateful_settings,
)

# Not `chain`: py-evm is a real EVM and the sequences are long, so this runs once, on the
# embedded chain, rather than again on anvil.
pytestmark = [pytest.mark.slow, pytest.mark.anvil_pass]  # as fast on anvil: evens out the passes

BPS = 10_000
FEE_BPS = 250
DEVELOPER_BPS = 1_000
DATA_BPS = 500
PARENT_BPS = 1_000
WEIGHTS = (600_000, 400_000)
SERVICES = (SERVICE, "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC")
"""Two services: test accounts 7 and 2 (also the data originators: a service only sends the
settlement transactions, so the roles do not mix money)."""
ALREADY_SETTLED, BELOW_SETTLED, INSUFFICIENT_ESCROW = 0, 1, 2
SINK = "0x000000000000000000000000000000000000bEEF"
"""Every withdrawal is sent here: an address with no code and no key, so its balance moves only
by what the contracts pay out."""


@dataclass
class World:
    """What the machine acts on: deployed once per test, restored to this state per example."""

    chain: Any
    core: Any
    token: Any
    currencies: tuple[str, ...]
    model_id: int
    assets: dict[str, bytes]  # "A", "B" (roots) and "D" (derivative of A)
    creators: dict[str, Any]
    developer: Any
    treasury: Any
    originators: tuple[Any, ...]
    payers: tuple[Any, ...]
    stranger: Any
    services: tuple[Any, ...]
    tree: DataTree
    terms: list[tuple[int, str, str]] = field(default_factory=list)  # (termsId, asset key, currency)

    @property
    def recipients(self) -> tuple[Any, ...]:
        return (*self.creators.values(), self.developer, self.treasury, *self.originators)

    def creator_bps(self, key: str) -> int:
        return BPS - FEE_BPS - DEVELOPER_BPS - DATA_BPS - (PARENT_BPS if key == "D" else 0)

    def inherited(self, key: str, currency: str) -> int:
        """What of an asset's distributed revenue came from its derivative (only A has one)."""
        if key != "A":
            return 0
        credited = int(self.core.splitter.distributedOf(self.assets["D"], currency)) * PARENT_BPS // BPS
        return credited - int(self.core.splitter.pendingInheritedOf(self.assets["A"], currency))


@pytest.fixture
def world(
    project, chain, core, deployer, developer, creator, other_creator, treasury, payer, other_payer, stranger, accounts
):  # type: ignore[no-untyped-def]
    token = deployer.deploy(project.TestToken, "Stable", "STB", 6)
    core.licenses.setCurrencyAllowed(token, True, sender=deployer)
    for holder in (payer, other_payer, stranger):
        token.mint(holder, 10**30, sender=holder)
        token.approve(core.licenses, 2**256 - 1, sender=holder)
        token.approve(core.splitter, 2**256 - 1, sender=holder)
    originators = (accounts[2], accounts[7])
    tree = DataTree([(o.address, w) for o, w in zip(originators, WEIGHTS, strict=True)])
    model_id = register_model(
        core.models, developer, label="stateful", developer_bps=DEVELOPER_BPS, data_bps=DATA_BPS, data_root=tree.root
    )
    creators = {"A": creator, "B": other_creator, "D": deployer}
    assets: dict[str, bytes] = {}
    for key in ("A", "B"):
        record = asset_record(f"stateful/{key}", creators[key], model_id)
        register_asset(core.provenance, creators[key], record)
        assets[key] = record.content_digest
    parent_terms = attach_terms(core.licenses, creator, assets["A"], price=0, derivative_bps=PARENT_BPS)
    child = asset_record("stateful/D", deployer, model_id, parents=(assets["A"],))
    register_asset(core.provenance, deployer, child, [buy_license(core.licenses, deployer, parent_terms)])
    assets["D"] = child.content_digest
    w = World(
        chain=chain,
        core=core,
        token=token,
        currencies=(ETH, token.address),
        model_id=model_id,
        assets=assets,
        creators=creators,
        developer=developer,
        treasury=treasury,
        originators=originators,
        payers=(payer, other_payer),
        stranger=stranger,
        services=(accounts[7], accounts[2]),
        tree=tree,
    )
    for key in ("A", "B", "D"):
        for currency in w.currencies:
            terms_id = attach_terms(
                core.licenses, creators[key], assets[key], currency=currency, price=10**6 + 7, price_per_use=10**3
            )
            w.terms.append((terms_id, key, currency))
    return w


def holdings(w: World, currency: str) -> int:
    if currency == ETH:
        return int(w.chain.provider.get_balance(w.core.splitter.address))
    return int(w.token.balanceOf(w.core.splitter))


def sink_balance(w: World, currency: str) -> int:
    if currency == ETH:
        return int(w.chain.provider.get_balance(SINK))
    return int(w.token.balanceOf(SINK))


def make_machine(w: World) -> type[RuleBasedStateMachine]:
    splitter, licenses = w.core.splitter, w.core.licenses
    splitter_views, licenses_views = Views(splitter, w.chain.provider.web3), Views(licenses, w.chain.provider.web3)
    delay = int(licenses.WITHDRAWAL_DELAY())
    window = int(licenses.WITHDRAWAL_WINDOW())
    currency_st = st.sampled_from(w.currencies)
    payer_st = st.integers(0, len(w.payers) - 1)
    service_st = st.integers(0, len(SERVICES) - 1)
    asset_st = st.sampled_from(sorted(w.assets))
    recipient_st = st.integers(0, len(w.recipients) - 1)
    # Small amounts make rounding remainders matter; large ones exercise the ranges.
    amount_st = st.one_of(st.integers(1, 1_000), st.integers(1, 10**18))

    class Accounting(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.snapshot = w.chain.snapshot()
            self.settled: dict[tuple[str, str, int], int] = defaultdict(int)  # (payer, service, terms)
            self.escrow: dict[tuple[str, str, str], int] = defaultdict(int)  # (payer, currency, service)
            self.terms = list(w.terms)
            self.inflow: dict[tuple[str, str], int] = defaultdict(int)
            self.withdrawn: dict[tuple[str, str], int] = defaultdict(int)
            self.touched: tuple[str, ...] = w.currencies

        def teardown(self) -> None:
            w.chain.restore(self.snapshot)

        # -------------------------------------------------------------- rules

        @initialize(amounts=st.lists(st.integers(10**17, 10**19), min_size=4, max_size=4))
        def fund_escrows(self, amounts: list[int]) -> None:
            """Both payers start with escrow in both currencies with the first service, so most
            settlements can succeed (the second service's escrows start empty)."""
            pairs = [(payer, currency) for payer in w.payers for currency in w.currencies]
            for (payer, currency), amount in zip(pairs, amounts, strict=True):
                licenses.deposit(currency, SERVICES[0], amount, sender=payer, value=amount if currency == ETH else 0)
                self.escrow[(payer.address, currency, SERVICES[0])] += amount

        @rule(p=payer_st, currency=currency_st, s=service_st, amount=st.integers(1, 10**18))
        def deposit(self, p: int, currency: str, s: int, amount: int) -> None:
            self.touched = (currency,)
            payer = w.payers[p]
            licenses.deposit(currency, SERVICES[s], amount, sender=payer, value=amount if currency == ETH else 0)
            self.escrow[(payer.address, currency, SERVICES[s])] += amount

        def vouchers(
            self, currency: str, s: int, entries: list[tuple[int, int, int]]
        ) -> list[tuple[tuple[Any, ...], tuple[str, str, int], str, int]]:
            """Signed vouchers for service `s` raising channels by the entries' increments (from
            the ghost's view of what each channel will have been sent), with their channel,
            asset and amount."""
            metered = [(t, key) for t, key, c in self.terms if c == currency]
            deadline = w.chain.pending_timestamp + 3_600
            cumulative = dict(self.settled)
            service = SERVICES[s]
            out = []
            for p, which, increment in entries:
                payer = w.payers[p]
                terms_id, key = metered[which % len(metered)]
                channel = (payer.address, service, terms_id)
                cumulative[channel] = cumulative.get(channel, 0) + increment
                voucher = signed_voucher(
                    licenses,
                    w.chain.chain_id,
                    payer,
                    service=service,
                    asset=w.assets[key],
                    terms_id=terms_id,
                    cumulative=cumulative[channel],
                    deadline=deadline,
                )
                out.append((voucher, channel, key, cumulative[channel]))
            return out

        def submit(
            self, currency: str, s: int, batch: list[tuple[tuple[Any, ...], tuple[str, str, int], str, int]]
        ) -> None:
            """Service `s` settles `batch`; each voucher's fate must be the ghost's prediction."""
            expected = []
            for _, channel, key, amount in batch:
                payer, service, _ = channel
                settled = self.settled[channel]
                if amount <= settled:
                    expected.append(("skip", ALREADY_SETTLED if amount == settled else BELOW_SETTLED))
                    continue
                escrow = (payer, currency, service)
                if amount - settled > self.escrow[escrow]:
                    expected.append(("skip", INSUFFICIENT_ESCROW))
                    continue
                self.escrow[escrow] -= amount - settled
                self.inflow[(key, currency)] += amount - settled
                self.settled[channel] = amount
                expected.append(("settled", amount))
            receipt = licenses.settle(currency, SERVICES[s], [v for v, *_ in batch], [], sender=w.services[s])
            settled_events = iter(receipt.events.filter(licenses.VoucherSettled))
            skipped_events = iter(receipt.events.filter(licenses.VoucherSkipped))
            for (kind, detail), (_, channel, _, amount) in zip(expected, batch, strict=True):
                event = next(settled_events) if kind == "settled" else next(skipped_events)
                assert (event.payer, SERVICES[s], event.termsId) == channel
                assert event.cumulativeAmount == amount
                if kind == "skip":
                    assert event.reason == detail
            (summary,) = receipt.events.filter(licenses.BatchSettled)
            assert (summary.service, summary.settled) == (SERVICES[s], sum(k == "settled" for k, _ in expected))

        @rule(
            currency=currency_st,
            s=service_st,
            entries=st.lists(st.tuples(payer_st, st.integers(0, 5), amount_st), min_size=1, max_size=5),
            replay=st.booleans(),
            then_sweep=st.booleans(),
        )
        def settle(
            self, currency: str, s: int, entries: list[tuple[int, int, int]], replay: bool, then_sweep: bool
        ) -> None:
            self.touched = (currency,)
            batch = self.vouchers(currency, s, entries)
            # Resubmitting the last voucher in the same batch: its channel has just moved to it.
            self.submit(currency, s, batch + batch[-1:] * replay)
            if then_sweep:
                self.keeper_sweep(currency)

        @rule(
            currency=currency_st,
            s=service_st,
            entries=st.lists(st.tuples(payer_st, st.integers(0, 5), amount_st), min_size=2, max_size=5),
            taken=st.sets(st.integers(0, 4), min_size=1, max_size=3),
            # Some of the vouchers (indices past the batch's end take nothing).
            by=st.sampled_from(["stranger", "payer", "service"]),
        )
        def front_run(
            self, currency: str, s: int, entries: list[tuple[int, int, int]], taken: set[int], by: str
        ) -> None:
            """The service's batch sits in the mempool. A stranger, or a payer (the review's
            self-dealing drain), tries to settle some of its vouchers first: refused, nothing
            moves. Or the service itself settled some first (a batch resent after a dropped
            transaction, in another order): the batch still succeeds, nothing paid twice."""
            self.touched = (currency,)
            batch = self.vouchers(currency, s, entries)
            taken_first = [batch[i] for i in sorted(taken, reverse=True) if i < len(batch)]
            if taken_first and by != "service":
                who = w.stranger if by == "stranger" else w.payers[entries[0][0]]
                before = self.totals(currency)
                with ape.reverts(licenses.LicenseManager__NotService):
                    licenses.settle(currency, SERVICES[s], [v for v, *_ in taken_first], [], sender=who)
                assert self.totals(currency) == before
            elif taken_first:
                self.submit(currency, s, taken_first)
            self.submit(currency, s, batch)

        @rule(p=payer_st, currency=currency_st, s=service_st, amount=st.integers(1, 2 * 10**18), late=st.booleans())
        def withdraw_escrow(self, p: int, currency: str, s: int, amount: int, late: bool) -> None:
            self.touched = (currency,)
            payer, service = w.payers[p], SERVICES[s]
            licenses.requestWithdrawal(currency, service, amount, sender=payer)
            with ape.reverts(licenses.LicenseManager__WithdrawalLocked):
                licenses.withdrawEscrow(currency, service, SINK, sender=payer)
            w.chain.pending_timestamp += delay
            if late:  # past the window: the request has expired and moves nothing
                w.chain.pending_timestamp += window + 1
                with ape.reverts(licenses.LicenseManager__WithdrawalExpired):
                    licenses.withdrawEscrow(currency, service, SINK, sender=payer)
                licenses.cancelWithdrawal(currency, service, sender=payer)
                return
            held = self.escrow[(payer.address, currency, service)]
            if held == 0:
                with ape.reverts(licenses.LicenseManager__ZeroAmount):
                    licenses.withdrawEscrow(currency, service, SINK, sender=payer)
                licenses.cancelWithdrawal(currency, service, sender=payer)
                return
            sink_before = sink_balance(w, currency)
            licenses.withdrawEscrow(currency, service, SINK, sender=payer)
            paid = min(amount, held)
            assert sink_balance(w, currency) == sink_before + paid
            self.escrow[(payer.address, currency, service)] -= paid

        @rule(key=asset_st, currency=currency_st, price=st.integers(0, 10**12), per_use=st.integers(1, 10**9))
        def new_terms(self, key: str, currency: str, price: int, per_use: int) -> None:
            """A creator attaches new terms mid-flow; later purchases and vouchers may use them."""
            terms_id = attach_terms(
                licenses, w.creators[key], w.assets[key], currency=currency, price=price, price_per_use=per_use
            )
            self.terms.append((terms_id, key, currency))

        @rule(key=asset_st, currency=currency_st, amount=amount_st, then_distribute=st.booleans())
        def pay(self, key: str, currency: str, amount: int, then_distribute: bool) -> None:
            self.touched = (currency,)
            value = amount if currency == ETH else 0
            splitter.pay(w.assets[key], currency, amount, sender=w.stranger, value=value)
            self.inflow[(key, currency)] += amount
            if then_distribute:
                self.distribute(key, currency)

        @rule(which=st.integers(0, 10**6), then_distribute=st.booleans())
        def purchase(self, which: int, then_distribute: bool) -> None:
            terms_id, key, currency = self.terms[which % len(self.terms)]
            self.touched = (currency,)
            price = int(licenses.getTerms(terms_id).price)
            value = price if currency == ETH else 0
            licenses.purchase(terms_id, w.stranger, sender=w.stranger, value=value)
            self.inflow[(key, currency)] += price
            if then_distribute:
                self.distribute(key, currency)

        @rule(key=asset_st, currency=currency_st)
        def distribute(self, key: str, currency: str) -> None:
            self.touched = (currency,)
            asset = w.assets[key]
            if splitter.pendingRevenueOf(asset, currency) == 0:
                with ape.reverts(splitter.RoyaltySplitter__NothingToDistribute, asset=asset, currency=currency):
                    splitter.distribute(asset, currency, sender=w.stranger)
                return
            splitter.distribute(asset, currency, sender=w.stranger)
            assert splitter.pendingRevenueOf(asset, currency) == 0

        @rule(o=st.integers(0, len(WEIGHTS) - 1), currency=currency_st)
        def claim(self, o: int, currency: str) -> None:
            self.touched = (currency,)
            originator, weight = w.originators[o], WEIGHTS[o]
            pool, _ = splitter.dataPoolOf(w.model_id, currency)
            claimed = splitter.dataClaimedOf(w.model_id, currency, originator, weight)
            owed = pool * weight // 10**6 - claimed
            proof = w.tree.proof(originator.address)
            if owed == 0:
                with ape.reverts(splitter.RoyaltySplitter__NothingToClaim):
                    splitter.claimDataShare(w.model_id, currency, originator, weight, proof, sender=w.stranger)
                return
            before = splitter.balanceOf(originator, currency)
            splitter.claimDataShare(w.model_id, currency, originator, weight, proof, sender=w.stranger)
            assert splitter.balanceOf(originator, currency) == before + owed

        @rule(r=recipient_st, currency=currency_st)
        def withdraw(self, r: int, currency: str) -> None:
            self.touched = (currency,)
            owed_to = [i for i, a in enumerate(w.recipients) if splitter.balanceOf(a, currency) > 0]
            # Mostly someone who is owed (the interesting path); r past the owed list hits the revert.
            account = w.recipients[owed_to[r]] if r < len(owed_to) else w.recipients[r]
            self.withdraw_from(account, currency)

        def withdraw_from(self, account: Any, currency: str) -> None:
            owed = splitter.balanceOf(account, currency)
            if owed == 0:
                with ape.reverts(splitter.RoyaltySplitter__NothingToWithdraw):
                    splitter.withdraw(currency, SINK, sender=account)
                return
            sink_before = sink_balance(w, currency)
            splitter.withdraw(currency, SINK, sender=account)
            assert sink_balance(w, currency) == sink_before + owed
            assert splitter.balanceOf(account, currency) == 0
            self.withdrawn[(account.address, currency)] += owed

        @rule(currency=currency_st)
        def keeper_sweep(self, currency: str) -> None:
            """What a keeper does: distribute what is pending (the derivative first, so its parent
            share is swept too), claim for the originators, pay everyone out."""
            self.touched = (currency,)
            for key in ("D", "A", "B"):
                if splitter.pendingRevenueOf(w.assets[key], currency) > 0:
                    self.distribute(key, currency)
            for o, originator in enumerate(w.originators):
                pool, _ = splitter.dataPoolOf(w.model_id, currency)
                if pool * WEIGHTS[o] // 10**6 > splitter.dataClaimedOf(w.model_id, currency, originator, WEIGHTS[o]):
                    self.claim(o, currency)
            for r, account in enumerate(w.recipients):
                if splitter.balanceOf(account, currency) > 0:
                    self.withdraw_from(w.recipients[r], currency)

        # -------------------------------------------------------------- invariants

        def totals(self, currency: str) -> tuple[int, ...]:
            """Every book entry of a currency, to compare before and after a reverted call."""
            return (
                splitter.reserveOf(currency),
                *splitter.totalsOf(currency),
                *(splitter.pendingRevenueOf(a, currency) for a in w.assets.values()),
                *(licenses.escrowOf(p, currency, s).balance for p in w.payers for s in SERVICES),
            )

        @invariant()
        def books_balance(self) -> None:
            # Only the currency the last step used can have moved.
            for currency in self.touched:
                self.check_books(currency)

        def check_books(self, currency: str) -> None:
            deposited, withdrawn = splitter_views.totalsOf(currency)
            reserve = splitter_views.reserveOf(currency)
            pending = {k: splitter_views.pendingRevenueOf(a, currency) for k, a in w.assets.items()}
            balances = {acct.address: splitter_views.balanceOf(acct, currency) for acct in w.recipients}
            pool, paid = splitter_views.dataPoolOf(w.model_id, currency)
            dust = splitter_views.dustOf(currency)
            held = reserve + sum(pending.values()) + sum(balances.values()) + (pool - paid) + dust
            assert held == deposited - withdrawn == holdings(w, currency)

            escrows = {
                (p.address, s): licenses_views.escrowOf(p, currency, s).balance for p in w.payers for s in SERVICES
            }
            assert sum(escrows.values()) == reserve
            for (payer, service), balance in escrows.items():
                assert balance == self.escrow[(payer, currency, service)]

            distributed = {k: splitter_views.distributedOf(a, currency) for k, a in w.assets.items()}

            def credited(account: Any) -> int:
                return balances[account.address] + self.withdrawn[(account.address, currency)]

            inherited = {k: w.inherited(k, currency) for k in w.assets}
            for key, total in distributed.items():
                fee_part = inherited[key] * FEE_BPS // BPS
                assert credited(w.creators[key]) == total * w.creator_bps(key) // BPS + fee_part
            assert credited(w.developer) == sum(t * DEVELOPER_BPS // BPS for t in distributed.values())
            assert credited(w.treasury) == sum((t - inherited[k]) * FEE_BPS // BPS for k, t in distributed.items())
            assert pool == sum(t * DATA_BPS // BPS for t in distributed.values())
            for originator, weight in zip(w.originators, WEIGHTS, strict=True):
                assert credited(originator) == splitter_views.dataClaimedOf(w.model_id, currency, originator, weight)
            assert paid == sum(credited(o) for o in w.originators)
            parent_credit = distributed["D"] * PARENT_BPS // BPS
            assert pending["A"] + distributed["A"] == self.inflow[("A", currency)] + parent_credit
            assert pending["B"] + distributed["B"] == self.inflow[("B", currency)]
            assert pending["D"] + distributed["D"] == self.inflow[("D", currency)]
            leftover = sum(
                t
                - t * w.creator_bps(k) // BPS
                - inherited[k] * FEE_BPS // BPS
                - t * DEVELOPER_BPS // BPS
                - (t - inherited[k]) * FEE_BPS // BPS
                - t * DATA_BPS // BPS
                - (t * PARENT_BPS // BPS if k == "D" else 0)
                for k, t in distributed.items()
            )
            assert dust == leftover

    return Accounting


def test_money_is_conserved_under_random_sequences(world):
    run_state_machine_as_test(
        make_machine(world),
        # 4 x 20 steps in the suite's budget; PROOFMINT_STATEFUL_SCALE=10 for a longer hunt
        settings=stateful_settings(examples=4, steps=20),
    )
