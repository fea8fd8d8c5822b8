"""GenerationMarket: paid requests, fulfilment by the operator with a registered asset, refunds
after the window, pull withdrawals; every revert path; a hostile receiver and a re-entrant one."""

from __future__ import annotations

from typing import Any

import ape
import pytest

from tests.contracts.helpers import asset_record, register_asset

pytestmark = pytest.mark.chain

PRICE = 10**15
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
        project.GenerationMarket, core.provenance.address, operator.address, PRICE, WINDOW, deployer.address
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
    value: int = PRICE,
) -> int:
    receipt = market.requestGeneration(prompt, seed, steps, guidance, sender=who, value=value)
    return int(receipt.events.filter(market.GenerationRequested)[0].requestId)


def test_constructor_refuses_bad_config(project: Any, core: Any, deployer: Any, operator: Any, stranger: Any):
    good = (core.provenance.address, operator.address, PRICE, WINDOW, deployer.address)
    bad = [
        (stranger.address, *good[1:]),  # no code at the registry address
        (good[0], "0x0000000000000000000000000000000000000000", *good[2:]),
        (*good[:2], 1_000 * 10**18 + 1, *good[3:]),
        (*good[:3], 5 * 60 - 1, good[4]),
        (*good[:3], 30 * 86_400 + 1, good[4]),
    ]
    for args in bad:
        with ape.reverts(project.GenerationMarket.GenerationMarket__BadConfig):
            deployer.deploy(project.GenerationMarket, *args)


def test_a_request_is_paid_stored_and_announced(market: Any, requester: Any, chain: Any):
    receipt = market.requestGeneration(PROMPT, 42, 30, 2_500, sender=requester, value=PRICE)
    (event,) = receipt.events.filter(market.GenerationRequested)
    assert (
        event.requestId,
        event.requester,
        event.fee,
        event.seed,
        event.steps,
        event.guidanceMilli,
        event.prompt,
    ) == (1, requester.address, PRICE, 42, 30, 2_500, PROMPT)
    stored = market.getRequest(1)
    assert (stored.requester, stored.fee, stored.status, stored.asset) == (requester.address, PRICE, 1, b"\x00" * 32)
    assert stored.deadline == event.deadline == chain.blocks.head.timestamp + WINDOW
    assert market.requestCount() == 1 and ask(market, requester) == 2
    assert market.getRequest(99).status == 0


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
        market.requestGeneration(prompt, 1, steps, guidance, sender=requester, value=value)
    assert market.requestCount() == 0


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
    request_data = market.requestGeneration.encode_input(PROMPT, 1, 25, 1_500)
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
        market.setPrice(1, sender=stranger)
    with ape.reverts(market.OwnableUnauthorizedAccount):
        market.setOperator(stranger.address, sender=stranger)
    with ape.reverts(market.GenerationMarket__BadConfig):
        market.setPrice(1_000 * 10**18 + 1, sender=deployer)
    with ape.reverts(market.GenerationMarket__BadConfig):
        market.setOperator("0x0000000000000000000000000000000000000000", sender=deployer)
    receipt = market.setPrice(2 * PRICE, sender=deployer)
    assert receipt.events.filter(market.PriceSet)[0].price == 2 * PRICE and market.price() == 2 * PRICE
    receipt = market.setOperator(stranger.address, sender=deployer)
    assert (
        receipt.events.filter(market.OperatorSet)[0].operator == stranger.address
        and market.operator() == stranger.address
    )
    with ape.reverts(market.GenerationMarket__NotOperator):
        market.fulfill(request, asset, sender=operator)
    market.fulfill(request, asset, sender=stranger)
    assert market.balanceOf(stranger) == PRICE  # the fee paid at the old price
