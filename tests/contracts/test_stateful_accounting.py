"""Stateful property test of the money: random deposit / settle / escrow withdrawal / pay / purchase
/ distribute / data claim / withdraw sequences, in ETH and an ERC-20, against the real contracts.

After every step, for each currency:
  - conservation: reserve + sum(pending) + sum(balances) + sum(data pool - paid) + dust
                  == deposited - withdrawn == what the splitter actually holds;
  - escrow: the payers' escrow balances add up to the reserve, and each payer's escrow is
    deposits - settled - withdrawn escrow (ghost bookkeeping);
  - exact roles: every role of every asset has been credited exactly floor(T * bps / 10_000) of
    the asset's cumulative distribution T (so rounding never moved money between roles), the
    parent's revenue is its own inflow plus its derivative's parent share, and the dust is what
    the floors left over.

Every rule also takes its failure paths (insufficient escrow, replayed vouchers, nothing to
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

from agents.merkle import DataTree
from tests.contracts.helpers import (
    stateful_settings,
    ETH,
    asset_record,
    attach_terms,
    buy_license,
    register_asset,
    register_model,
    signed_voucher,
)

# Not `chain`: py-evm is a real EVM and the sequences are long, so this runs once, on the
# embedded chain, rather than again on anvil.
pytestmark = pytest.mark.slow

BPS = 10_000
FEE_BPS = 250
DEVELOPER_BPS = 1_000
DATA_BPS = 500
PARENT_BPS = 1_000
WEIGHTS = (600_000, 400_000)
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
    tree: DataTree
    terms: list[tuple[int, str, str]] = field(default_factory=list)  # (termsId, asset key, currency)

    @property
    def recipients(self) -> tuple[Any, ...]:
        return (*self.creators.values(), self.developer, self.treasury, *self.originators)

    def creator_bps(self, key: str) -> int:
        return BPS - FEE_BPS - DEVELOPER_BPS - DATA_BPS - (PARENT_BPS if key == "D" else 0)


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
    delay = int(licenses.WITHDRAWAL_DELAY())
    currency_st = st.sampled_from(w.currencies)
    payer_st = st.integers(0, len(w.payers) - 1)
    asset_st = st.sampled_from(sorted(w.assets))
    recipient_st = st.integers(0, len(w.recipients) - 1)
    # Small amounts make rounding remainders matter; large ones exercise the ranges.
    amount_st = st.one_of(st.integers(1, 1_000), st.integers(1, 10**18))

    class Accounting(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.snapshot = w.chain.snapshot()
            self.settled: dict[tuple[str, int], int] = defaultdict(int)
            self.escrow: dict[tuple[str, str], int] = defaultdict(int)
            self.inflow: dict[tuple[str, str], int] = defaultdict(int)
            self.withdrawn: dict[tuple[str, str], int] = defaultdict(int)
            self.touched: tuple[str, ...] = w.currencies

        def teardown(self) -> None:
            w.chain.restore(self.snapshot)

        # -------------------------------------------------------------- rules

        @initialize(amounts=st.lists(st.integers(10**17, 10**19), min_size=4, max_size=4))
        def fund_escrows(self, amounts: list[int]) -> None:
            """Both payers start with escrow in both currencies, so most settlements can succeed."""
            pairs = [(payer, currency) for payer in w.payers for currency in w.currencies]
            for (payer, currency), amount in zip(pairs, amounts, strict=True):
                licenses.deposit(currency, amount, sender=payer, value=amount if currency == ETH else 0)
                self.escrow[(payer.address, currency)] += amount

        @rule(p=payer_st, currency=currency_st, amount=st.integers(1, 10**18))
        def deposit(self, p: int, currency: str, amount: int) -> None:
            self.touched = (currency,)
            payer = w.payers[p]
            licenses.deposit(currency, amount, sender=payer, value=amount if currency == ETH else 0)
            self.escrow[(payer.address, currency)] += amount

        @rule(
            currency=currency_st,
            entries=st.lists(st.tuples(payer_st, st.integers(0, 2), amount_st), min_size=1, max_size=5),
            replay=st.booleans(),
            then_sweep=st.booleans(),
        )
        def settle(self, currency: str, entries: list[tuple[int, int, int]], replay: bool, then_sweep: bool) -> None:
            self.touched = (currency,)
            metered = [(t, key) for t, key, c in w.terms if c == currency]
            deadline = w.chain.pending_timestamp + 3_600
            cumulative = dict(self.settled)
            vouchers, debits = [], defaultdict(int)
            credits: dict[str, int] = defaultdict(int)
            for p, which, increment in entries:
                payer = w.payers[p]
                terms_id, key = metered[which]
                cumulative[(payer.address, terms_id)] = cumulative.get((payer.address, terms_id), 0) + increment
                vouchers.append(
                    signed_voucher(
                        licenses,
                        w.chain.chain_id,
                        payer,
                        asset=w.assets[key],
                        terms_id=terms_id,
                        cumulative=cumulative[(payer.address, terms_id)],
                        deadline=deadline,
                    )
                )
                debits[payer.address] += increment
                credits[key] += increment
            before = self.totals(currency)
            short = [a for a, d in debits.items() if d > self.escrow[(a, currency)]]
            if short:
                # Escrow is checked voucher by voucher, so this fires before any replay appended.
                with ape.reverts(licenses.LicenseManager__InsufficientEscrow):
                    licenses.settle(currency, vouchers + vouchers[-1:] * replay, sender=w.stranger)
            elif replay:
                # Resubmitting the last voucher in the same batch: its channel has just moved to it.
                with ape.reverts(licenses.LicenseManager__VoucherAlreadySettled, index=len(vouchers)):
                    licenses.settle(currency, [*vouchers, vouchers[-1]], sender=w.stranger)
            else:
                licenses.settle(currency, vouchers, sender=w.stranger)
                self.settled = defaultdict(int, cumulative)
                for account, debit in debits.items():
                    self.escrow[(account, currency)] -= debit
                for key, credit in credits.items():
                    self.inflow[(key, currency)] += credit
                if then_sweep:
                    self.keeper_sweep(currency)
                return
            assert self.totals(currency) == before, "a reverted settlement moved money"

        @rule(p=payer_st, currency=currency_st, amount=st.integers(1, 2 * 10**18))
        def withdraw_escrow(self, p: int, currency: str, amount: int) -> None:
            self.touched = (currency,)
            payer = w.payers[p]
            licenses.requestWithdrawal(currency, amount, sender=payer)
            with ape.reverts(licenses.LicenseManager__WithdrawalLocked):
                licenses.withdrawEscrow(currency, SINK, sender=payer)
            w.chain.pending_timestamp += delay
            held = self.escrow[(payer.address, currency)]
            if held == 0:
                with ape.reverts(licenses.LicenseManager__ZeroAmount):
                    licenses.withdrawEscrow(currency, SINK, sender=payer)
                licenses.cancelWithdrawal(currency, sender=payer)
                return
            sink_before = sink_balance(w, currency)
            licenses.withdrawEscrow(currency, SINK, sender=payer)
            paid = min(amount, held)
            assert sink_balance(w, currency) == sink_before + paid
            self.escrow[(payer.address, currency)] -= paid

        @rule(key=asset_st, currency=currency_st, amount=amount_st, then_distribute=st.booleans())
        def pay(self, key: str, currency: str, amount: int, then_distribute: bool) -> None:
            self.touched = (currency,)
            value = amount if currency == ETH else 0
            splitter.pay(w.assets[key], currency, amount, sender=w.stranger, value=value)
            self.inflow[(key, currency)] += amount
            if then_distribute:
                self.distribute(key, currency)

        @rule(which=st.integers(0, 5), then_distribute=st.booleans())
        def purchase(self, which: int, then_distribute: bool) -> None:
            terms_id, key, currency = w.terms[which]
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
            claimed = splitter.dataClaimedOf(w.model_id, currency, originator)
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
                if pool * WEIGHTS[o] // 10**6 > splitter.dataClaimedOf(w.model_id, currency, originator):
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
                *(licenses.escrowOf(p, currency).balance for p in w.payers),
            )

        @invariant()
        def books_balance(self) -> None:
            # Only the currency the last step used can have moved.
            for currency in self.touched:
                self.check_books(currency)

        def check_books(self, currency: str) -> None:
            deposited, withdrawn = splitter.totalsOf(currency)
            reserve = splitter.reserveOf(currency)
            pending = {k: splitter.pendingRevenueOf(a, currency) for k, a in w.assets.items()}
            balances = {acct.address: splitter.balanceOf(acct, currency) for acct in w.recipients}
            pool, paid = splitter.dataPoolOf(w.model_id, currency)
            dust = splitter.dustOf(currency)
            held = reserve + sum(pending.values()) + sum(balances.values()) + (pool - paid) + dust
            assert held == deposited - withdrawn == holdings(w, currency)

            escrows = [licenses.escrowOf(p, currency).balance for p in w.payers]
            assert sum(escrows) == reserve
            for p, balance in zip(w.payers, escrows, strict=True):
                assert balance == self.escrow[(p.address, currency)]

            distributed = {k: splitter.distributedOf(a, currency) for k, a in w.assets.items()}

            def credited(account: Any) -> int:
                return balances[account.address] + self.withdrawn[(account.address, currency)]

            for key, total in distributed.items():
                assert credited(w.creators[key]) == total * w.creator_bps(key) // BPS
            assert credited(w.developer) == sum(t * DEVELOPER_BPS // BPS for t in distributed.values())
            assert credited(w.treasury) == sum(t * FEE_BPS // BPS for t in distributed.values())
            assert pool == sum(t * DATA_BPS // BPS for t in distributed.values())
            for originator in w.originators:
                assert credited(originator) == splitter.dataClaimedOf(w.model_id, currency, originator)
            assert paid == sum(credited(o) for o in w.originators)
            parent_credit = distributed["D"] * PARENT_BPS // BPS
            assert pending["A"] + distributed["A"] == self.inflow[("A", currency)] + parent_credit
            assert pending["B"] + distributed["B"] == self.inflow[("B", currency)]
            assert pending["D"] + distributed["D"] == self.inflow[("D", currency)]
            leftover = sum(
                t
                - t * w.creator_bps(k) // BPS
                - t * DEVELOPER_BPS // BPS
                - t * FEE_BPS // BPS
                - t * DATA_BPS // BPS
                - (t * PARENT_BPS // BPS if k == "D" else 0)
                for k, t in distributed.items()
            )
            assert dust == leftover

    return Accounting


def test_money_is_conserved_under_random_sequences(world):
    run_state_machine_as_test(
        make_machine(world),
        settings=stateful_settings(examples=10, steps=20),
    )
