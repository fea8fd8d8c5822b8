"""Stateful property test of GenerationMarket's money: random request (in either lane) / fulfil /
refund / time / price / operator / withdraw sequences, with a stranger acting on public data,
against the real contracts.

A ghost keeps every request (requester, lane, fee, deadline, state), each lane's price and every
balance. Each step also takes the stranger's moves: fulfilling without being the operator,
refunding another's request, fulfilling with an asset registered before the request, or with one
that fulfilled another request, setting a price; and the requester's mistakes: paying the other
lane's price, or a price the owner changed since it was read; each must revert with its named error
and move nothing.

After every step: each request's stored status and fee are the ghost's; the market holds exactly
the fees of open requests plus every unwithdrawn balance; what left it went to the withdrawers'
receiver and equals what they were credited; fees paid == fees credited to operators + refunds +
open fees (no wei created or lost); each request keeps the lane it paid for; the fast lane never
costs less than the standard lane.

Fixed seed (derandomized), so a failure reproduces; `slow` because it sends a few hundred
transactions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import ape
import pytest
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from tests.contracts.helpers import asset_record, register_asset, stateful_settings

pytestmark = [pytest.mark.slow, pytest.mark.anvil_pass]  # as fast on anvil: evens out the passes

WINDOW = 3_600
OPEN, FULFILLED, REFUNDED = 1, 2, 3
STANDARD, FAST = 0, 1  # IGenerationMarket.Lane
PRICE = 10**15
SINK = "0x000000000000000000000000000000000000dEaD"


@dataclass
class Request:
    requester: Any
    lane: int
    fee: int
    deadline: int
    status: int = OPEN


def make_machine(
    chain: Any,
    core: Any,
    market: Any,
    owner: Any,
    operators: tuple[Any, ...],
    requesters: tuple[Any, ...],
    stranger: Any,
    creator: Any,
    model_id: int,
) -> type[RuleBasedStateMachine]:
    requester_st = st.integers(0, len(requesters) - 1)

    class Market(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.snapshot = chain.snapshot()
            self.requests: dict[int, Request] = {}
            self.balances: dict[str, int] = {}
            self.paid_in = 0
            self.withdrawn = 0
            self.operator = operators[0]
            self.used: list[bytes] = []
            self.serial = 0
            self.prices = {STANDARD: PRICE, FAST: 2 * PRICE}
            self.stale = dict(self.prices)  # the prices before the owner's last change

        def teardown(self) -> None:
            chain.restore(self.snapshot)

        def fresh_asset(self) -> bytes:
            self.serial += 1
            record = asset_record(f"market/{self.serial}", creator, model_id)
            register_asset(core.provenance, creator, record)
            return record.content_digest

        def open_request(self, pick: int) -> int | None:
            live = [i for i, r in self.requests.items() if r.status == OPEN and r.deadline >= chain.pending_timestamp]
            return live[pick % len(live)] if live else None

        # -------------------------------------------------------------- rules

        @rule(
            r=requester_st,
            steps=st.integers(1, 1_000),
            lane=st.sampled_from([STANDARD, FAST]),
            mistake=st.sampled_from(["none", "none", "other lane's price", "stale price"]),
        )
        def request(self, r: int, steps: int, lane: int, mistake: str) -> None:
            who = requesters[r]
            price = self.prices[lane]
            assert int(market.price(lane)) == price
            wrong = {"other lane's price": self.prices[1 - lane], "stale price": self.stale[lane]}.get(mistake, price)
            if wrong != price:  # the other lane's or the old price may be this lane's price now
                with ape.reverts(market.GenerationMarket__WrongPayment, lane=lane, sent=wrong, price=price):
                    market.requestGeneration("a prompt", 1, steps, 1_500, lane, sender=who, value=wrong)
                return
            receipt = market.requestGeneration("a prompt", 1, steps, 1_500, lane, sender=who, value=price)
            event = receipt.events.filter(market.GenerationRequested)[0]
            assert (event.lane, event.fee) == (lane, price)
            self.requests[int(event.requestId)] = Request(who, lane, price, int(event.deadline))
            self.paid_in += price

        @rule(pick=st.integers(0, 10**6), attack=st.sampled_from(["none", "stranger", "old asset", "used asset"]))
        def fulfill(self, pick: int, attack: str) -> None:
            request_id = self.open_request(pick)
            if request_id is None:
                return
            if attack == "stranger":
                with ape.reverts(market.GenerationMarket__NotOperator, caller=stranger.address):
                    market.fulfill(request_id, self.fresh_asset(), sender=stranger)
                return
            if attack == "old asset":
                old = asset_record("market/registered-before-every-request", creator, model_id).content_digest
                with ape.reverts(market.GenerationMarket__AssetPredatesRequest, asset=old):
                    market.fulfill(request_id, old, sender=self.operator)
                return
            if attack == "used asset" and self.used:
                used = self.used[pick % len(self.used)]
                with ape.reverts(market.GenerationMarket__AssetAlreadyUsed, asset=used):
                    market.fulfill(request_id, used, sender=self.operator)
                return
            asset = self.fresh_asset()
            market.fulfill(request_id, asset, sender=self.operator)
            request = self.requests[request_id]
            request.status = FULFILLED
            self.balances[self.operator.address] = self.balances.get(self.operator.address, 0) + request.fee
            self.used.append(asset)

        @rule(pick=st.integers(0, 10**6), by_stranger=st.booleans())
        def refund(self, pick: int, by_stranger: bool) -> None:
            lapsed = [i for i, r in self.requests.items() if r.status == OPEN and r.deadline < chain.pending_timestamp]
            if not lapsed:
                live = self.open_request(pick)
                if live is not None:
                    with ape.reverts(market.GenerationMarket__NotExpired):
                        market.refund(live, sender=self.requests[live].requester)
                return
            request_id = lapsed[pick % len(lapsed)]
            request = self.requests[request_id]
            if by_stranger and stranger.address != request.requester.address:
                with ape.reverts(market.GenerationMarket__NotRequester, caller=stranger.address):
                    market.refund(request_id, sender=stranger)
                return
            with ape.reverts(market.GenerationMarket__Expired):
                market.fulfill(request_id, self.fresh_asset(), sender=self.operator)
            market.refund(request_id, sender=request.requester)
            request.status = REFUNDED
            who = request.requester.address
            self.balances[who] = self.balances.get(who, 0) + request.fee

        @rule(seconds=st.sampled_from([60, WINDOW // 2, WINDOW + 1]))
        def time_passes(self, seconds: int) -> None:
            chain.pending_timestamp += seconds

        @rule(lane=st.sampled_from([STANDARD, FAST, None]), price=st.integers(0, 10**18), other=st.integers(0, 10**18))
        def set_price(self, lane: int | None, price: int, other: int) -> None:
            """One lane's price (refused with `LanesOutOfOrder` where it would put the fast lane
            under the standard one), or both at once (`setPrices`, in order)."""
            with ape.reverts(market.OwnableUnauthorizedAccount):
                market.setPrice(STANDARD if lane is None else lane, price, sender=stranger)
            if lane is None:
                standard, fast = sorted((price, other))
                with ape.reverts(market.OwnableUnauthorizedAccount):
                    market.setPrices(standard, fast, sender=stranger)
                if standard != fast:
                    with ape.reverts(market.GenerationMarket__LanesOutOfOrder):
                        market.setPrices(fast, standard, sender=owner)
                market.setPrices(standard, fast, sender=owner)
                self.stale, self.prices = self.prices, {STANDARD: standard, FAST: fast}
                return
            after = {**self.prices, lane: price}
            if after[FAST] < after[STANDARD]:
                with ape.reverts(
                    market.GenerationMarket__LanesOutOfOrder, standardPrice=after[STANDARD], fastPrice=after[FAST]
                ):
                    market.setPrice(lane, price, sender=owner)
                return
            market.setPrice(lane, price, sender=owner)
            self.stale, self.prices = self.prices, after

        @rule(o=st.integers(0, len(operators) - 1))
        def set_operator(self, o: int) -> None:
            market.setOperator(operators[o], sender=owner)
            self.operator = operators[o]

        @rule(who=st.sampled_from(["operator", "requester", "stranger"]), r=requester_st)
        def withdraw(self, who: str, r: int) -> None:
            account = {"operator": self.operator, "requester": requesters[r], "stranger": stranger}[who]
            owed = self.balances.get(account.address, 0)
            if owed == 0:
                with ape.reverts(market.GenerationMarket__NothingToWithdraw):
                    market.withdraw(SINK, sender=account)
                return
            before = chain.provider.get_balance(SINK)
            market.withdraw(SINK, sender=account)
            assert chain.provider.get_balance(SINK) == before + owed
            self.balances[account.address] = 0
            self.withdrawn += owed

        # -------------------------------------------------------------- invariants

        @invariant()
        def money_is_conserved(self) -> None:
            open_fees = sum(r.fee for r in self.requests.values() if r.status == OPEN)
            credited = sum(self.balances.values())
            assert chain.provider.get_balance(market.address) == open_fees + credited
            for account in {*operators, *requesters, stranger}:
                assert market.balanceOf(account) == self.balances.get(account.address, 0)
            fulfilled = sum(r.fee for r in self.requests.values() if r.status == FULFILLED)
            refunded = sum(r.fee for r in self.requests.values() if r.status == REFUNDED)
            assert self.paid_in == fulfilled + refunded + open_fees
            assert self.paid_in == credited + self.withdrawn + open_fees

        @invariant()
        def requests_are_the_ghosts(self) -> None:
            assert market.requestCount() == len(self.requests)
            for request_id, ghost in self.requests.items():
                stored = market.getRequest(request_id)
                assert (stored.requester, stored.lane, stored.fee, stored.status) == (
                    ghost.requester.address,
                    ghost.lane,
                    ghost.fee,
                    ghost.status,
                )

        @invariant()
        def the_fast_lane_never_costs_less(self) -> None:
            standard, fast = int(market.price(STANDARD)), int(market.price(FAST))
            assert (standard, fast) == (self.prices[STANDARD], self.prices[FAST]) and fast >= standard

    return Market


def test_market_money_is_conserved_under_random_sequences(
    project, chain, core, deployer, developer, creator, payer, other_payer, other_creator, stranger, model_id
):
    # The registry already holds an asset registered before any request: the "old asset" attack.
    register_asset(core.provenance, creator, asset_record("market/registered-before-every-request", creator, model_id))
    market = deployer.deploy(project.GenerationMarket, core.provenance, developer, PRICE, 2 * PRICE, WINDOW, deployer)
    run_state_machine_as_test(
        make_machine(
            chain, core, market, deployer, (developer, other_creator), (payer, other_payer), stranger, creator, model_id
        ),
        # 6 x 20 steps in the suite's budget; PROOFMINT_STATEFUL_SCALE=10 for a longer hunt
        settings=stateful_settings(examples=6, steps=20),
    )
