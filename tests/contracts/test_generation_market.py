"""GenerationMarket: paid requests in two priced lanes, fulfilment by the operator with a registered
asset, refunds after the window, pull withdrawals; every revert path; a hostile receiver and a
re-entrant one; the lanes' price order, a lane outside the enum in raw calldata, a price change
racing a request, and the request's storage packing."""

from __future__ import annotations

from typing import Any

import ape
import pytest
from ape.exceptions import ContractLogicError, CustomError
from eth_abi import encode
from eth_utils.crypto import keccak

from tests.contracts.helpers import asset_record, register_asset
from tests.strict_reverts import revert_data

pytestmark = pytest.mark.chain

STANDARD, FAST = 0, 1  # IGenerationMarket.Lane
PRICE = 10**15
FAST_PRICE = 2 * PRICE
PRICES = {STANDARD: PRICE, FAST: FAST_PRICE}
MAX_PRICE = 1_000 * 10**18
WINDOW = 3_600
PROMPT = "two small magenta circles at the top over a plain black background"


@pytest.fixture
def operator(accounts: Any) -> Any:
    return accounts[7]


@pytest.fixture
def requester(accounts: Any) -> Any:
    return accounts[5]


@pytest.fixture
def market(project: Any, core: Any, deployer: Any, operator: Any) -> Any:
    return deployer.deploy(
        project.GenerationMarket,
        core.provenance.address,
        operator.address,
        PRICE,
        FAST_PRICE,
        WINDOW,
        deployer.address,
    )


@pytest.fixture
def make_asset(core: Any, creator: Any, model_id: int) -> Any:
    """Registers an asset now (fulfilment takes only assets registered after the request)."""

    def make(label: str = "market-asset") -> bytes:
        record = asset_record(label, creator, model_id)
        register_asset(core.provenance, creator, record)
        return record.content_digest

    return make


def ask(
    market: Any,
    who: Any,
    *,
    prompt: str = PROMPT,
    seed: int = 7,
    steps: int = 25,
    guidance: int = 1_500,
    lane: int = STANDARD,
    value: int | None = None,
) -> int:
    paid = PRICES[lane] if value is None else value
    receipt = market.requestGeneration(prompt, seed, steps, guidance, lane, sender=who, value=paid)
    return int(receipt.events.filter(market.GenerationRequested)[0].requestId)


def test_constructor_refuses_bad_config(project: Any, core: Any, deployer: Any, operator: Any, stranger: Any):
    good = (core.provenance.address, operator.address, PRICE, FAST_PRICE, WINDOW, deployer.address)
    bad = [
        (stranger.address, *good[1:]),  # no code at the registry address
        (good[0], "0x0000000000000000000000000000000000000000", *good[2:]),
        (*good[:2], MAX_PRICE + 1, MAX_PRICE + 1, *good[4:]),  # the standard lane past MAX_PRICE
        (*good[:3], MAX_PRICE + 1, *good[4:]),  # the fast lane past MAX_PRICE
        (*good[:4], 5 * 60 - 1, good[5]),
        (*good[:4], 30 * 86_400 + 1, good[5]),
    ]
    for args in bad:
        with ape.reverts(project.GenerationMarket.GenerationMarket__BadConfig):
            deployer.deploy(project.GenerationMarket, *args)
    # The invariant holds from the start: the fast lane never costs less than the standard lane.
    with ape.reverts(
        project.GenerationMarket.GenerationMarket__LanesOutOfOrder, standardPrice=FAST_PRICE, fastPrice=PRICE
    ):
        deployer.deploy(project.GenerationMarket, *good[:2], FAST_PRICE, PRICE, *good[4:])


def test_the_constructor_announces_both_prices_and_takes_equal_ones_and_max_price(
    project: Any, core: Any, deployer: Any, operator: Any
):
    market = deployer.deploy(
        project.GenerationMarket, core.provenance, operator, MAX_PRICE, MAX_PRICE, WINDOW, deployer
    )
    assert (market.price(STANDARD), market.price(FAST)) == (MAX_PRICE, MAX_PRICE)
    creation = market.creation_metadata  # cached by the deploy
    assert creation is not None
    assert [(e.lane, e.price) for e in creation.receipt.events.filter(market.PriceSet)] == [
        (STANDARD, MAX_PRICE),
        (FAST, MAX_PRICE),
    ]


@pytest.mark.parametrize("lane", [STANDARD, FAST])
def test_a_request_is_paid_stored_and_announced_in_its_lane(market: Any, requester: Any, chain: Any, lane: int):
    receipt = market.requestGeneration(PROMPT, 42, 30, 2_500, lane, sender=requester, value=PRICES[lane])
    (event,) = receipt.events.filter(market.GenerationRequested)
    assert (
        event.requestId,
        event.requester,
        event.lane,
        event.fee,
        event.seed,
        event.steps,
        event.guidanceMilli,
        event.prompt,
    ) == (1, requester.address, lane, PRICES[lane], 42, 30, 2_500, PROMPT)
    stored = market.getRequest(1)
    assert (stored.requester, stored.fee, stored.status, stored.lane, stored.asset) == (
        requester.address,
        PRICES[lane],
        1,
        lane,
        b"\x00" * 32,
    )
    assert stored.deadline == event.deadline == chain.blocks.head.timestamp + WINDOW
    assert market.requestCount() == 1 and ask(market, requester) == 2
    assert market.getRequest(99).status == 0 and market.getRequest(99).lane == STANDARD
    assert chain.provider.get_balance(market.address) == PRICES[lane] + PRICE


@pytest.mark.parametrize(
    ("prompt", "steps", "guidance", "value", "error"),
    [
        ("", 25, 1_500, PRICE, "GenerationMarket__BadPrompt"),
        ("x" * 1_001, 25, 1_500, PRICE, "GenerationMarket__BadPrompt"),
        (PROMPT, 0, 1_500, PRICE, "GenerationMarket__BadParameters"),
        (PROMPT, 1_001, 1_500, PRICE, "GenerationMarket__BadParameters"),
        (PROMPT, 25, 50_001, PRICE, "GenerationMarket__BadParameters"),
        (PROMPT, 25, 1_500, PRICE - 1, "GenerationMarket__WrongPayment"),
        (PROMPT, 25, 1_500, PRICE + 1, "GenerationMarket__WrongPayment"),
        (PROMPT, 25, 1_500, 0, "GenerationMarket__WrongPayment"),
    ],
)
def test_request_reverts(market: Any, requester: Any, prompt: str, steps: int, guidance: int, value: int, error: str):
    with ape.reverts(getattr(market, error)):
        market.requestGeneration(prompt, 1, steps, guidance, STANDARD, sender=requester, value=value)
    assert market.requestCount() == 0


@pytest.mark.parametrize(("lane", "value"), [(FAST, PRICE), (STANDARD, FAST_PRICE), (FAST, FAST_PRICE + 1), (FAST, 0)])
def test_each_lane_takes_exactly_its_own_price(market: Any, requester: Any, chain: Any, lane: int, value: int):
    # The standard price for a fast request (or the reverse) names the lane and the price it needed.
    with ape.reverts(market.GenerationMarket__WrongPayment, lane=lane, sent=value, price=PRICES[lane]):
        market.requestGeneration(PROMPT, 1, 25, 1_500, lane, sender=requester, value=value)
    assert market.requestCount() == 0 and chain.provider.get_balance(market.address) == 0


def _lane_word(data: bytes, lane_word: int) -> bytes:
    """`requestGeneration` calldata with its lane argument (the fifth head word) replaced."""
    start = 4 + 4 * 32
    return data[:start] + lane_word.to_bytes(32, "big") + data[start + 32 :]


@pytest.mark.parametrize("lane_word", [2, 255, 256, 2**256 - 1])
def test_a_lane_outside_the_enum_is_refused_by_the_abi_decoder(market: Any, requester: Any, chain: Any, lane_word: int):
    good = bytes(market.requestGeneration.encode_input(PROMPT, 1, 25, 1_500, FAST))
    assert _lane_word(good, FAST) == good
    with pytest.raises(ContractLogicError) as raised:  # raw calldata, as any client could send it
        requester.transfer(market.address, FAST_PRICE, data=_lane_word(good, lane_word))
    error = raised.value
    assert not isinstance(error, CustomError) and not revert_data(error), f"not the decoder's bare revert: {error!r}"
    assert market.requestCount() == 0 and chain.provider.get_balance(market.address) == 0
    requester.transfer(market.address, FAST_PRICE, data=good)  # the same bytes with lane 1 pass
    assert market.getRequest(1).lane == FAST and market.getRequest(1).fee == FAST_PRICE


def test_the_longest_prompt_and_the_bounds_are_accepted(market: Any, requester: Any):
    assert ask(market, requester, prompt="é" * 500, steps=1_000, guidance=50_000) == 1  # 1,000 bytes


@pytest.mark.smoke  # also on anvil
def test_fulfil_credits_the_operator_once_per_request_and_per_asset(
    market: Any, requester: Any, operator: Any, make_asset: Any
):
    first, second = ask(market, requester), ask(market, requester)
    asset = make_asset()
    receipt = market.fulfill(first, asset, sender=operator)
    (event,) = receipt.events.filter(market.GenerationFulfilled)
    assert (event.requestId, event.asset, event.operator, event.fee) == (first, asset, operator.address, PRICE)
    assert market.getRequest(first).status == 2 and market.getRequest(first).asset == asset
    assert market.balanceOf(operator) == PRICE and market.requestOfAsset(asset) == first
    with ape.reverts(market.GenerationMarket__NotOpen):
        market.fulfill(first, asset, sender=operator)
    with ape.reverts(market.GenerationMarket__AssetAlreadyUsed):
        market.fulfill(second, asset, sender=operator)
    with ape.reverts(market.GenerationMarket__NotOpen):
        market.refund(first, sender=requester)  # a fulfilled request is never refunded


def test_fulfil_reverts(market: Any, requester: Any, operator: Any, stranger: Any, make_asset: Any, chain: Any):
    old = make_asset("registered-before-the-request")
    request = ask(market, requester)
    asset = make_asset()
    # An image that existed before the request was paid cannot be passed off as its answer.
    with ape.reverts(market.GenerationMarket__AssetPredatesRequest, asset=old, seq=0, assetsBefore=1):
        market.fulfill(request, old, sender=operator)
    assert market.getRequest(request).assetsBefore == 1
    with ape.reverts(market.GenerationMarket__NotOperator):
        market.fulfill(request, asset, sender=stranger)
    with ape.reverts(market.GenerationMarket__UnknownRequest):
        market.fulfill(request + 1, asset, sender=operator)
    with ape.reverts(market.GenerationMarket__AssetNotRegistered):
        market.fulfill(request, b"\x11" * 32, sender=operator)
    chain.pending_timestamp += WINDOW + 1
    with ape.reverts(market.GenerationMarket__Expired):
        market.fulfill(request, asset, sender=operator)
    assert market.balanceOf(operator) == 0


def test_a_lapsed_request_is_refunded_to_its_requester_only(
    market: Any, requester: Any, operator: Any, stranger: Any, make_asset: Any, chain: Any
):
    request = ask(market, requester)
    asset = make_asset()
    with ape.reverts(market.GenerationMarket__NotExpired):
        market.refund(request, sender=requester)
    with ape.reverts(market.GenerationMarket__UnknownRequest):
        market.refund(request + 1, sender=requester)
    chain.pending_timestamp += WINDOW + 1
    with ape.reverts(market.GenerationMarket__NotRequester):
        market.refund(request, sender=stranger)
    receipt = market.refund(request, sender=requester)
    (event,) = receipt.events.filter(market.GenerationRefunded)
    assert (event.requestId, event.requester, event.fee) == (request, requester.address, PRICE)
    assert market.balanceOf(requester) == PRICE and market.getRequest(request).status == 3
    with ape.reverts(market.GenerationMarket__NotOpen):
        market.refund(request, sender=requester)
    with ape.reverts(market.GenerationMarket__NotOpen):
        market.fulfill(request, asset, sender=operator)


def test_withdraw_pays_the_balance_once(market: Any, requester: Any, operator: Any, stranger: Any, make_asset: Any):
    request = ask(market, requester)
    market.fulfill(request, make_asset(), sender=operator)
    with ape.reverts(market.GenerationMarket__BadConfig):
        market.withdraw("0x0000000000000000000000000000000000000000", sender=operator)
    with ape.reverts(market.GenerationMarket__NothingToWithdraw):
        market.withdraw(stranger.address, sender=stranger)
    before = stranger.balance
    receipt = market.withdraw(stranger.address, sender=operator)
    (event,) = receipt.events.filter(market.Withdrawn)
    assert (event.account, event.to, event.amount) == (operator.address, stranger.address, PRICE)
    assert stranger.balance == before + PRICE and market.balanceOf(operator) == 0
    with ape.reverts(market.GenerationMarket__NothingToWithdraw):
        market.withdraw(operator.address, sender=operator)


def test_a_refusing_receiver_keeps_its_balance_and_a_reentrant_one_gets_paid_once(
    project: Any, market: Any, deployer: Any, requester: Any, chain: Any
):
    actor = deployer.deploy(project.HostileActor)
    request_data = market.requestGeneration.encode_input(PROMPT, 1, 25, 1_500, STANDARD)
    actor.exec(market.address, request_data, sender=deployer, value=PRICE)
    chain.pending_timestamp += WINDOW + 1
    actor.exec(market.address, market.refund.encode_input(1), sender=deployer)
    assert market.balanceOf(actor) == PRICE
    withdraw_data = market.withdraw.encode_input(actor.address)
    actor.setMode(1, sender=deployer)  # revert when paid
    with ape.reverts(market.GenerationMarket__TransferFailed):
        actor.exec(market.address, withdraw_data, sender=deployer)
    assert market.balanceOf(actor) == PRICE
    actor.setMode(3, sender=deployer)  # re-enter withdraw when paid
    actor.setReentry(market.address, withdraw_data, sender=deployer)
    before = actor.balance
    actor.exec(market.address, withdraw_data, sender=deployer)
    assert actor.balance == before + PRICE and market.balanceOf(actor) == 0
    assert actor.lastReentrySucceeded() is False


def test_owner_sets_price_and_operator_and_paid_requests_keep_their_fee(
    market: Any, deployer: Any, stranger: Any, requester: Any, operator: Any, make_asset: Any
):
    request = ask(market, requester)
    asset = make_asset()
    with ape.reverts(market.OwnableUnauthorizedAccount):
        market.setPrice(STANDARD, 1, sender=stranger)
    with ape.reverts(market.OwnableUnauthorizedAccount):
        market.setOperator(stranger.address, sender=stranger)
    with ape.reverts(market.GenerationMarket__BadConfig):
        market.setPrice(FAST, MAX_PRICE + 1, sender=deployer)
    with ape.reverts(market.GenerationMarket__BadConfig):
        market.setOperator("0x0000000000000000000000000000000000000000", sender=deployer)
    receipt = market.setPrice(STANDARD, 2 * PRICE, sender=deployer)
    (event,) = receipt.events.filter(market.PriceSet)
    assert (event.lane, event.price) == (STANDARD, 2 * PRICE) and market.price(STANDARD) == 2 * PRICE
    receipt = market.setOperator(stranger.address, sender=deployer)
    assert (
        receipt.events.filter(market.OperatorSet)[0].operator == stranger.address
        and market.operator() == stranger.address
    )
    with ape.reverts(market.GenerationMarket__NotOperator):
        market.fulfill(request, asset, sender=operator)
    market.fulfill(request, asset, sender=stranger)
    assert market.balanceOf(stranger) == PRICE  # the fee paid at the old price


def test_a_stranger_cannot_set_any_price(market: Any, stranger: Any, operator: Any, requester: Any):
    for who in (stranger, operator, requester):  # neither the operator nor a requester is the owner
        for lane in (STANDARD, FAST):
            with ape.reverts(market.OwnableUnauthorizedAccount, account=who.address):
                market.setPrice(lane, 0, sender=who)
        with ape.reverts(market.OwnableUnauthorizedAccount, account=who.address):
            market.setPrices(0, 0, sender=who)
    assert (market.price(STANDARD), market.price(FAST)) == (PRICE, FAST_PRICE)


def test_set_price_keeps_the_fast_lane_at_or_above_the_standard_lane(market: Any, deployer: Any):
    """The invariant `price(Fast) >= price(Standard)`: one lane at a time in the right order (raise
    the fast lane first, lower the standard lane first), or both at once with `setPrices`."""
    with ape.reverts(market.GenerationMarket__LanesOutOfOrder, standardPrice=FAST_PRICE + 1, fastPrice=FAST_PRICE):
        market.setPrice(STANDARD, FAST_PRICE + 1, sender=deployer)  # the standard lane past the fast one
    with ape.reverts(market.GenerationMarket__LanesOutOfOrder, standardPrice=PRICE, fastPrice=PRICE - 1):
        market.setPrice(FAST, PRICE - 1, sender=deployer)  # the fast lane under the standard one
    assert (market.price(STANDARD), market.price(FAST)) == (PRICE, FAST_PRICE)
    market.setPrice(STANDARD, FAST_PRICE, sender=deployer)  # equal is allowed
    market.setPrice(FAST, 10 * PRICE, sender=deployer)  # raising both: the fast lane first ...
    market.setPrice(STANDARD, 5 * PRICE, sender=deployer)  # ... then the standard lane
    market.setPrice(STANDARD, 0, sender=deployer)  # lowering both: the standard lane first ...
    market.setPrice(FAST, 0, sender=deployer)  # ... then the fast lane
    assert (market.price(STANDARD), market.price(FAST)) == (0, 0)
    market.setPrice(FAST, MAX_PRICE, sender=deployer)  # MAX_PRICE per lane: at it, and past it
    market.setPrice(STANDARD, MAX_PRICE, sender=deployer)
    for lane in (STANDARD, FAST):
        with ape.reverts(market.GenerationMarket__BadConfig):
            market.setPrice(lane, MAX_PRICE + 1, sender=deployer)
    assert (market.price(STANDARD), market.price(FAST)) == (MAX_PRICE, MAX_PRICE)


def test_set_prices_moves_both_lanes_in_one_call(market: Any, deployer: Any):
    # Raising both past the current fast price takes one call, in no particular order.
    receipt = market.setPrices(5 * FAST_PRICE, 6 * FAST_PRICE, sender=deployer)
    assert [(e.lane, e.price) for e in receipt.events.filter(market.PriceSet)] == [
        (STANDARD, 5 * FAST_PRICE),
        (FAST, 6 * FAST_PRICE),
    ]
    assert (market.price(STANDARD), market.price(FAST)) == (5 * FAST_PRICE, 6 * FAST_PRICE)
    with ape.reverts(market.GenerationMarket__LanesOutOfOrder, standardPrice=2, fastPrice=1):
        market.setPrices(2, 1, sender=deployer)
    for standard, fast in ((MAX_PRICE + 1, MAX_PRICE + 1), (0, MAX_PRICE + 1)):
        with ape.reverts(market.GenerationMarket__BadConfig):
            market.setPrices(standard, fast, sender=deployer)
    assert (market.price(STANDARD), market.price(FAST)) == (5 * FAST_PRICE, 6 * FAST_PRICE)
    market.setPrices(MAX_PRICE, MAX_PRICE, sender=deployer)  # at the bound, equal
    market.setPrices(0, 0, sender=deployer)  # free lanes
    assert ask(market, deployer, lane=FAST, value=0) == 1


@pytest.mark.parametrize("lane", [STANDARD, FAST])
@pytest.mark.parametrize("change", ["raised", "lowered"])
def test_a_price_change_mined_first_makes_a_request_at_the_old_price_revert_and_take_nothing(
    market: Any, deployer: Any, requester: Any, operator: Any, chain: Any, make_asset: Any, lane: int, change: str
):
    """The owner (or a front-runner who is the owner) changes a lane's price while a request read
    at the old price is pending: the request reverts naming the new price and nothing is taken;
    a request paid before the change keeps its fee through fulfilment."""
    paid_before = ask(market, requester, lane=lane)
    old = PRICES[lane]
    new = {"raised": 3 * FAST_PRICE, "lowered": PRICE // 2}[change]
    if lane == STANDARD:
        market.setPrices(new, max(new, FAST_PRICE), sender=deployer)
    else:
        market.setPrices(min(new, PRICE), new, sender=deployer)
    held = chain.provider.get_balance(market.address)
    spent_before = requester.balance
    with ape.reverts(market.GenerationMarket__WrongPayment, lane=lane, sent=old, price=new):
        market.requestGeneration(PROMPT, 1, 25, 1_500, lane, sender=requester, value=old)
    assert chain.provider.get_balance(market.address) == held == old and market.requestCount() == 1
    assert spent_before - requester.balance < old  # at most gas, never the fee
    ask(market, requester, lane=lane, value=new)  # at the new price it goes through
    market.fulfill(paid_before, make_asset(), sender=operator)
    assert market.balanceOf(operator) == old  # the request paid before the change kept its fee


@pytest.mark.parametrize("lane", [STANDARD, FAST])
def test_the_lane_survives_fulfilment_and_refund(
    market: Any, deployer: Any, requester: Any, operator: Any, chain: Any, make_asset: Any, lane: int
):
    fulfilled, lapsing = ask(market, requester, lane=lane), ask(market, requester, lane=lane)
    market.setPrices(0, 0, sender=deployer)  # later price changes touch no stored request
    receipt = market.fulfill(fulfilled, make_asset(), sender=operator)
    assert receipt.events.filter(market.GenerationFulfilled)[0].fee == PRICES[lane]
    chain.pending_timestamp += WINDOW + 1
    receipt = market.refund(lapsing, sender=requester)
    assert receipt.events.filter(market.GenerationRefunded)[0].fee == PRICES[lane]
    for request_id, status in ((fulfilled, 2), (lapsing, 3)):
        stored = market.getRequest(request_id)
        assert (stored.status, stored.lane, stored.fee) == (status, lane, PRICES[lane])
    assert market.balanceOf(operator) == market.balanceOf(requester) == PRICES[lane]


def test_a_request_is_three_packed_storage_slots(
    market: Any, requester: Any, operator: Any, chain: Any, make_asset: Any
):
    """`Request` stays packed: (requester, fee), (deadline, status, lane, assetsBefore), asset; the
    lane is one byte beside the status, so adding it took no new slot."""
    make_asset("before")
    request_id = ask(market, requester, lane=FAST)
    stored = market.getRequest(request_id)

    def word(slot: int) -> int:
        return int.from_bytes(bytes(chain.provider.web3.eth.get_storage_at(market.address, slot)), "big")

    bases = [int.from_bytes(keccak(encode(["uint256", "uint256"], [request_id, index])), "big") for index in range(16)]
    (base,) = [b for b in bases if word(b) & (2**160 - 1) == int(requester.address, 16)]
    assert word(base) == (FAST_PRICE << 160) | int(requester.address, 16)
    # deadline (bits 0-63), status (64-71: Open), lane (72-79), assetsBefore (80-127: one asset before)
    assert word(base + 1) == (1 << 80) | (FAST << 72) | (1 << 64) | stored.deadline
    assert word(base + 2) == 0 and word(base + 3) == 0  # the asset (none yet), then nothing
    asset = make_asset()
    market.fulfill(request_id, asset, sender=operator)
    assert word(base + 2) == int.from_bytes(asset, "big") and word(base + 3) == 0
    assert word(base + 1) >> 64 & 0xFF == 2 and word(base + 1) >> 72 & 0xFF == FAST  # fulfilled, still fast


def test_the_chain_does_not_time_the_fast_lane_a_late_fast_fulfilment_earns_the_whole_fee(
    market: Any, requester: Any, operator: Any, chain: Any, make_asset: Any
):
    """The attacker's review, the operator's side: the fast lane's premium buys the agents' order
    of service, which the chain does not see. A fast request fulfilled at the last second of the
    window (after later standard ones) still pays the operator the fast price; SECURITY.md lists
    this as trust in the operator. A refund is owed only after the window, as for the standard lane."""
    fast = ask(market, requester, lane=FAST)
    standard = ask(market, requester, lane=STANDARD)
    market.fulfill(standard, make_asset("standard-first"), sender=operator)
    late = make_asset("fast-last")
    deadline = market.getRequest(fast).deadline
    chain.pending_timestamp = deadline - 1
    with ape.reverts(market.GenerationMarket__NotExpired):
        market.refund(fast, sender=requester)
    chain.pending_timestamp = deadline  # the last second the window allows
    market.fulfill(fast, late, sender=operator)
    assert market.balanceOf(operator) == PRICE + FAST_PRICE and market.balanceOf(requester) == 0
