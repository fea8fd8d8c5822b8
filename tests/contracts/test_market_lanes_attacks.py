"""GenerationMarket's priced lanes under attack (the review of 75541e1): the stranger, the front-
runner, the requester, the operator and the owner against the contract, and a hostile or
reorganised chain against the market watcher and the delivery stage (`agents/daemons/market.py`).

A passing test shows an attack failing. The review's five findings (a request reorged out and
mined again left cancelled; a job delivered to another request that took its id in a reorg; a
job of an older market delivered to the new one; a malformed log blocking the watcher; a log from
another address trusted) were fixed in `agents/daemons/market.py`; their tests now pass, and a
regression fails them with `Finding`, naming what broke."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ape
import pytest
from ape.exceptions import ContractLogicError, CustomError
from eth_abi.abi import encode
from eth_account import Account
from eth_utils.crypto import keccak

from agents.core import costs
from agents.core.metering import FAST_LANE, STANDARD_LANE
from agents.core.toolchain import project_root
from agents.daemons.market import (
    _DATA_TYPES,
    _REQUEST_ASSET,
    _REQUEST_STATUS,
    LANES_ON_CHAIN,
    REQUESTED_TOPIC,
    DeliverStage,
    MarketWatcher,
    decode_request,
    market_key,
)
from agents.runtime import jobs
from agents.runtime.chain import ChainClient, load_abis
from agents.runtime.events import ChainEvent
from agents.runtime.journal import Journal
from agents.runtime.stage import Done
from tests.contracts.helpers import asset_record, register_asset
from tests.strict_reverts import revert_data

pytestmark = pytest.mark.chain

STANDARD, FAST = 0, 1  # IGenerationMarket.Lane
OPEN, FULFILLED, REFUNDED = 1, 2, 3
PRICE = 10**15
FAST_PRICE = 2 * PRICE
PRICES = {STANDARD: PRICE, FAST: FAST_PRICE}
MAX_PRICE = 1_000 * 10**18
WINDOW = 3_600
PROMPT = "two small magenta circles at the top over a plain black background"
OTHER_PROMPT = "a single green square in the middle of a plain white background"
MARKET_NAMES = ("GenerationMarket", "ProvenanceRegistry")


class Finding(Exception):  # noqa: N818 - what a strict xfail here expects, and nothing else
    """The attack worked: the check that should hold does not (yet)."""


def should(holds: bool, what: str) -> None:
    if not holds:
        raise Finding(what)


# ------------------------------------------------------------------------------------- fixtures


@pytest.fixture
def operator(accounts: Any) -> Any:
    return accounts[7]


@pytest.fixture
def requester(accounts: Any) -> Any:
    return accounts[5]


@pytest.fixture
def other_requester(accounts: Any) -> Any:
    return accounts[6]


def deploy_market(project: Any, core: Any, deployer: Any, operator: Any) -> Any:
    return deployer.deploy(
        project.GenerationMarket, core.provenance.address, operator.address, PRICE, FAST_PRICE, WINDOW, deployer.address
    )


@pytest.fixture
def market(project: Any, core: Any, deployer: Any, operator: Any) -> Any:
    return deploy_market(project, core, deployer, operator)


@pytest.fixture
def make_asset(core: Any, creator: Any, model_id: int) -> Any:
    """Registers an asset now (fulfilment takes only assets registered after the request)."""

    def make(label: str) -> bytes:
        record = asset_record(label, creator, model_id)
        register_asset(core.provenance, creator, record)
        return record.content_digest

    return make


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    opened = Journal(tmp_path / "journal.db", final=jobs.FINAL)
    yield opened
    opened.close()


def agents_client(chain: Any, core: Any, market: Any, key: Any, journal: Journal) -> ChainClient:
    """The operator's agents' view of the chain, pointed at `market` (as `proofmint up` wires it)."""
    return ChainClient(
        chain.provider.web3,
        Account.from_key(key),
        journal,
        {"GenerationMarket": market.address, "ProvenanceRegistry": core.provenance.address},
        load_abis(project_root(), MARKET_NAMES),
        poll=0.02,
    )


def ask(market: Any, who: Any, *, lane: int = STANDARD, prompt: str = PROMPT, seed: int = 7) -> int:
    receipt = market.requestGeneration(prompt, seed, 25, 1_500, lane, sender=who, value=PRICES[lane])
    return int(receipt.events.filter(market.GenerationRequested)[0].requestId)


def requested_logs(chain: Any, address: str) -> list[ChainEvent]:
    """Every `GenerationRequested`-topic log at `address`, as the event watcher builds them."""
    logs = chain.provider.web3.eth.get_logs(
        {"fromBlock": 0, "toBlock": "latest", "address": address, "topics": [REQUESTED_TOPIC]}
    )
    return [
        ChainEvent(
            int(log["blockNumber"]),
            "0x" + bytes(log["blockHash"]).hex(),
            "0x" + bytes(log["transactionHash"]).hex(),
            int(log["logIndex"]),
            str(log["address"]),
            tuple("0x" + bytes(t).hex() for t in log["topics"]),
            bytes(log["data"]),
        )
        for log in logs
    ]


def bare_revert(error: BaseException) -> bool:
    """The ABI decoder's revert: no custom error, no data."""
    return isinstance(error, ContractLogicError) and not isinstance(error, CustomError) and not revert_data(error)


def with_word(data: bytes, index: int, word: int) -> bytes:
    """Calldata with its `index`-th head word replaced."""
    start = 4 + 32 * index
    return data[:start] + word.to_bytes(32, "big") + data[start + 32 :]


# ------------------------------------------------------------ the layout market.py relies on


def test_market_py_reads_the_abi_the_contract_has(project: Any, market: Any, requester: Any, chain: Any):
    """`getRequest`'s tuple positions, the event's topic and data types, and the lane order that
    `agents/daemons/market.py` hard-codes are the compiled contract's; decoding a real log of each
    lane gives back what was stored and emitted."""
    abi = {(item.get("type"), item.get("name")): item for item in project.GenerationMarket.contract_type.model_dump(
        by_alias=True, mode="json")["abi"]}  # fmt: skip
    (output,) = abi[("function", "getRequest")]["outputs"]
    names = [c["name"] for c in output["components"]]
    assert names == ["requester", "fee", "deadline", "status", "lane", "assetsBefore", "asset"]
    assert (names.index("status"), names.index("asset")) == (_REQUEST_STATUS, _REQUEST_ASSET)
    event = abi[("event", "GenerationRequested")]
    indexed = [i["type"] for i in event["inputs"] if i["indexed"]]
    unindexed = [i["type"] for i in event["inputs"] if not i["indexed"]]
    assert indexed == ["uint256", "address"] and unindexed == _DATA_TYPES
    signature = "GenerationRequested(" + ",".join(i["type"] for i in event["inputs"]) + ")"
    assert "0x" + keccak(text=signature).hex() == REQUESTED_TOPIC
    lane_input = next(i for i in event["inputs"] if i["name"] == "lane")
    assert lane_input["internalType"] == "enum IGenerationMarket.Lane"
    assert LANES_ON_CHAIN == (STANDARD_LANE, FAST_LANE)  # Standard = 0, Fast = 1 in the interface
    for lane in (STANDARD, FAST):
        ask(market, requester, lane=lane, seed=lane)
    decoded = [decode_request(e) for e in requested_logs(chain, market.address)]
    for request_id, who, request, facts in decoded:
        stored = market.getRequest(request_id)
        lane = int(stored.lane)
        assert (who, request.prompt, request.seed, facts["lane"]) == (
            requester.address,
            PROMPT,
            lane,
            LANES_ON_CHAIN[lane],
        )
        assert (int(facts["fee"]), facts["deadline"]) == (int(stored.fee), int(stored.deadline))
        assert int(stored.fee) == PRICES[lane]
    assert [facts["lane"] for *_, facts in decoded] == [STANDARD_LANE, FAST_LANE]


def test_the_agents_read_status_and_asset_at_their_positions_through_web3(
    chain: Any, core: Any, market: Any, requester: Any, operator: Any, make_asset: Any, journal: Journal
):
    """web3 (what `DeliverStage` calls) returns the struct as a plain tuple: position 3 is the
    status, 4 the lane and 6 the asset, before and after fulfilment of a fast request."""
    client = agents_client(chain, core, market, operator.private_key, journal)
    request_id = ask(market, requester, lane=FAST)
    stored = asyncio.run(client.call("GenerationMarket", "getRequest", request_id))
    assert isinstance(stored, tuple) and len(stored) == 7
    assert (stored[_REQUEST_STATUS], stored[4], bytes(stored[_REQUEST_ASSET])) == (OPEN, FAST, b"\x00" * 32)
    asset = make_asset("positions")
    market.fulfill(request_id, asset, sender=operator)
    stored = asyncio.run(client.call("GenerationMarket", "getRequest", request_id))
    assert (stored[_REQUEST_STATUS], stored[4], bytes(stored[_REQUEST_ASSET])) == (FULFILLED, FAST, asset)
    assert (stored[0], stored[1]) == (requester.address, FAST_PRICE)


# ---------------------------------------------------------------------- the requester's moves


@pytest.mark.parametrize("lane_word", [2, 3, 255, 256, 257, 2**255, 2**256 - 1])
def test_a_lane_outside_the_enum_reaches_neither_price_nor_set_price(market: Any, deployer: Any, lane_word: int):
    """Raw calldata with a lane word that is not 0 or 1 (dirty high bits included): `price` and
    the owner's `setPrice` revert in the ABI decoder, so no third lane ever gets a price (and a
    request in it, which would then be payable, cannot exist)."""
    good_call = bytes(market.price.encode_input(FAST))
    with pytest.raises(ContractLogicError) as raised:
        deployer.transfer(market.address, 0, data=with_word(good_call, 0, lane_word))
    assert bare_revert(raised.value), repr(raised.value)
    good_set = bytes(market.setPrice.encode_input(FAST, 5 * PRICE))
    with pytest.raises(ContractLogicError) as raised:
        deployer.transfer(market.address, 0, data=with_word(good_set, 0, lane_word))  # the owner itself
    assert bare_revert(raised.value), repr(raised.value)
    assert (market.price(STANDARD), market.price(FAST)) == (PRICE, FAST_PRICE)
    deployer.transfer(market.address, 0, data=good_set)  # the same bytes with lane 1 pass
    assert market.price(FAST) == 5 * PRICE


def test_an_invalid_utf8_prompt_is_paid_on_chain_skipped_by_the_watcher_and_refundable(
    chain: Any, core: Any, market: Any, requester: Any, operator: Any, journal: Journal
):
    """The requester sends prompt bytes that are not UTF-8 (Solidity's `string` does not check):
    the market takes it, the watcher's decoder refuses it (UnicodeDecodeError is a ValueError, which
    `on_event` catches), the watcher does not stall on it (the next request is journaled), and the
    requester gets the fee back after the window."""
    good = bytes(market.requestGeneration.encode_input("xxxx", 1, 25, 1_500, FAST))
    bad = good.replace(b"xxxx", b"\xff\xfe\xfd\xfc")
    assert len(bad) == len(good) and bad != good
    requester.transfer(market.address, FAST_PRICE, data=bad)
    assert market.getRequest(1).status == OPEN and market.getRequest(1).lane == FAST
    ask(market, requester, lane=STANDARD)  # request 2, well-formed
    client = agents_client(chain, core, market, operator.private_key, journal)
    watcher = MarketWatcher(journal, client, confirmations=0)
    assert asyncio.run(watcher.poll()) == 2  # both seen: the bad one skipped (logged), not a poison pill
    chain_id = int(chain.chain_id)
    assert journal.get(market_key(chain_id, market.address, 1)) is None
    second = journal.get(market_key(chain_id, market.address, 2))
    assert second is not None and second.payload["lane"] == STANDARD_LANE
    chain.pending_timestamp += WINDOW + 1
    market.refund(1, sender=requester)
    assert market.balanceOf(requester) == FAST_PRICE


def test_reentry_through_withdraw_refunds_only_what_is_owed(project: Any, market: Any, deployer: Any, chain: Any):
    """A requester contract with two lapsed fast requests: while being paid the first refund it
    re-enters `refund` for the second (allowed: it is its own, lapsed) and `withdraw` (blocked by the
    guard); nothing is paid twice and every wei is accounted for."""
    actor = deployer.deploy(project.HostileActor)
    request = market.requestGeneration.encode_input(PROMPT, 1, 25, 1_500, FAST)
    actor.exec(market.address, request, sender=deployer, value=FAST_PRICE)
    actor.exec(market.address, request, sender=deployer, value=FAST_PRICE)
    chain.pending_timestamp += WINDOW + 1
    actor.exec(market.address, market.refund.encode_input(1), sender=deployer)
    actor.setMode(3, sender=deployer)  # re-enter when paid
    actor.setReentry(market.address, market.refund.encode_input(2), sender=deployer)
    start = actor.balance
    actor.exec(market.address, market.withdraw.encode_input(actor.address), sender=deployer)
    assert actor.lastReentrySucceeded() is True  # the second refund, credited during the payment
    assert actor.balance == start + FAST_PRICE and market.balanceOf(actor) == FAST_PRICE
    assert market.getRequest(2).status == REFUNDED
    with ape.reverts(market.GenerationMarket__NotOpen):  # refunded once only
        actor.exec(market.address, market.refund.encode_input(2), sender=deployer)
    actor.setMode(0, sender=deployer)
    actor.exec(market.address, market.withdraw.encode_input(actor.address), sender=deployer)
    assert actor.balance == start + 2 * FAST_PRICE and chain.provider.get_balance(market.address) == 0


@pytest.mark.parametrize("lane", [STANDARD, FAST])
def test_fulfil_and_refund_never_both_at_any_second_of_the_boundary(
    market: Any, requester: Any, operator: Any, chain: Any, make_asset: Any, lane: int
):
    """Refund then fulfil, fulfil then refund, at the deadline and one second after: exactly one of
    them is possible at each second, in either lane."""
    request_id = ask(market, requester, lane=lane)
    asset = make_asset(f"boundary-{lane}")
    deadline = int(market.getRequest(request_id).deadline)
    snapshot = chain.snapshot()
    chain.pending_timestamp = deadline  # the last second of the window: no refund ...
    with ape.reverts(market.GenerationMarket__NotExpired):
        market.refund(request_id, sender=requester)
    chain.restore(snapshot)
    snapshot = chain.snapshot()  # a snapshot is used up by its restore
    chain.pending_timestamp = deadline  # ... but a fulfilment, after which no refund
    market.fulfill(request_id, asset, sender=operator)
    with ape.reverts(market.GenerationMarket__NotOpen):
        market.refund(request_id, sender=requester)
    assert market.balanceOf(operator) == PRICES[lane]
    chain.restore(snapshot)
    chain.pending_timestamp = deadline + 1  # one second later: no fulfilment ...
    with ape.reverts(market.GenerationMarket__Expired):
        market.fulfill(request_id, asset, sender=operator)
    market.refund(request_id, sender=requester)  # ... but a refund, after which no fulfilment
    with ape.reverts(market.GenerationMarket__NotOpen):
        market.fulfill(request_id, asset, sender=operator)
    assert market.balanceOf(requester) == PRICES[lane] and market.balanceOf(operator) == 0


# ------------------------------------------------------------------------ the operator's moves


def test_the_operator_cannot_reuse_or_backdate_an_asset_across_lanes(
    market: Any, requester: Any, other_requester: Any, operator: Any, make_asset: Any
):
    """A standard request, an asset, then a fast request: the asset predates the fast request (it
    cannot answer it) and answers the standard one; an asset made after both answers one of them
    and then neither the other nor the same one again."""
    standard = ask(market, requester, lane=STANDARD)
    between = make_asset("between-the-requests")
    fast = ask(market, other_requester, lane=FAST)
    with ape.reverts(market.GenerationMarket__AssetPredatesRequest, asset=between):
        market.fulfill(fast, between, sender=operator)
    after = make_asset("after-both")
    market.fulfill(fast, after, sender=operator)
    with ape.reverts(market.GenerationMarket__AssetAlreadyUsed, asset=after, requestId=fast):
        market.fulfill(standard, after, sender=operator)  # the fast request's image, reused
    market.fulfill(standard, between, sender=operator)
    with ape.reverts(market.GenerationMarket__NotOpen):
        market.fulfill(fast, make_asset("second-answer"), sender=operator)  # double fulfilment
    assert market.balanceOf(operator) == PRICE + FAST_PRICE


def test_the_chain_cannot_tell_which_request_an_asset_answers_swaps_are_trust_in_the_operator(
    market: Any, requester: Any, other_requester: Any, operator: Any, make_asset: Any
):
    """By design (SECURITY.md trusts the operator with the prompt): the operator can answer a fast
    request with the image made for a standard one and the reverse; the fees follow the requests,
    and the provenance record (parameters digest) is how a requester finds out. Recorded here so a
    change of that trust is a visible change of this test."""
    fast = ask(market, requester, lane=FAST, prompt=PROMPT)
    standard = ask(market, other_requester, lane=STANDARD, prompt=OTHER_PROMPT)
    made_for_standard, made_for_fast = make_asset("for-standard"), make_asset("for-fast")
    market.fulfill(fast, made_for_standard, sender=operator)
    market.fulfill(standard, made_for_fast, sender=operator)
    assert market.balanceOf(operator) == PRICE + FAST_PRICE


# --------------------------------------------------------------------------- the owner's moves


def test_a_max_price_fast_request_is_stored_and_refunded_to_the_wei(
    market: Any, deployer: Any, requester: Any, chain: Any
):
    """At MAX_PRICE (1,000 ether, far below 2**96) the fee's uint96 cast truncates nothing: the
    stored fee, the event and the refund are the full price; past it no lane can be priced."""
    assert MAX_PRICE < 2**96 and int(market.MAX_PRICE()) == MAX_PRICE
    market.setPrices(MAX_PRICE, MAX_PRICE, sender=deployer)
    for lane in (STANDARD, FAST):
        with ape.reverts(market.GenerationMarket__BadConfig):
            market.setPrice(lane, MAX_PRICE + 1, sender=deployer)
    with ape.reverts(market.GenerationMarket__BadConfig):
        market.setPrices(MAX_PRICE, 2**96 + 1, sender=deployer)  # a price that would wrap in 96 bits
    receipt = market.requestGeneration(PROMPT, 1, 25, 1_500, FAST, sender=requester, value=MAX_PRICE)
    assert receipt.events.filter(market.GenerationRequested)[0].fee == MAX_PRICE
    assert int(market.getRequest(1).fee) == MAX_PRICE
    chain.pending_timestamp += WINDOW + 1
    market.refund(1, sender=requester)
    before = requester.balance
    receipt = market.withdraw(requester.address, sender=requester)
    assert requester.balance == before + MAX_PRICE - receipt.total_fees_paid


def test_owner_price_changes_landing_out_of_order_never_invert_the_lanes(market: Any, deployer: Any, requester: Any):
    """The owner means to go from (1, 2) to (3, 4) finney with two `setPrice` transactions that a
    relayer or a multisig lands in the wrong order: the standard change reverts rather than putting
    the fast lane under the standard one, the fast change lands, and a request paid in between pays
    a consistent price of its lane."""
    with ape.reverts(market.GenerationMarket__LanesOutOfOrder, standardPrice=3 * PRICE, fastPrice=FAST_PRICE):
        market.setPrice(STANDARD, 3 * PRICE, sender=deployer)
    market.setPrice(FAST, 4 * PRICE, sender=deployer)
    assert market.price(FAST) >= market.price(STANDARD)
    market.requestGeneration(PROMPT, 1, 25, 1_500, STANDARD, sender=requester, value=PRICE)  # still the old one
    market.setPrice(STANDARD, 3 * PRICE, sender=deployer)  # resent: now in order
    assert (market.price(STANDARD), market.price(FAST)) == (3 * PRICE, 4 * PRICE)
    assert market.getRequest(1).fee == PRICE


def test_a_pending_owner_cannot_price_the_lanes_until_it_accepts(
    market: Any, deployer: Any, stranger: Any, requester: Any
):
    """Ownership moves in two steps: the proposed owner (here `stranger`) cannot price either lane
    before accepting, nobody else can accept, and the old owner loses the prices once it does."""
    market.transferOwnership(stranger.address, sender=deployer)
    with ape.reverts(market.OwnableUnauthorizedAccount, account=stranger.address):
        market.setPrices(0, 0, sender=stranger)
    with ape.reverts(market.OwnableUnauthorizedAccount, account=requester.address):
        market.acceptOwnership(sender=requester)
    market.setPrice(FAST, 3 * PRICE, sender=deployer)  # still the owner until accepted
    market.acceptOwnership(sender=stranger)
    with ape.reverts(market.OwnableUnauthorizedAccount, account=deployer.address):
        market.setPrice(FAST, 4 * PRICE, sender=deployer)
    market.setPrices(0, 0, sender=stranger)
    assert (market.price(STANDARD), market.price(FAST)) == (0, 0)


# --------------------------------------------------- the watcher: events from elsewhere, bad data


def log3_emitter(topic1: int, requester: str) -> bytes:
    """Creation code of a contract that logs its calldata under GenerationRequested's topic with
    the given request id and requester: anyone can deploy one and forge the event's shape."""
    topics = [bytes.fromhex(REQUESTED_TOPIC[2:]), topic1.to_bytes(32, "big"), bytes(12) + bytes.fromhex(requester[2:])]
    runtime = bytes.fromhex("366000600037")  # calldatacopy(0, 0, calldatasize)
    for topic in reversed(topics):
        runtime += b"\x7f" + topic
    runtime += bytes.fromhex("366000a300")  # log3(0, calldatasize, t0, t1, t2); stop
    return bytes.fromhex(f"60{len(runtime):02x}600c60003960{len(runtime):02x}6000f3") + runtime


def send_raw(chain: Any, account: Any, to: str | None, data: bytes, value: int = 0) -> Any:
    web3 = chain.provider.web3
    signer = Account.from_key(account.private_key)
    tx = {
        "chainId": int(web3.eth.chain_id),
        "nonce": web3.eth.get_transaction_count(signer.address),
        "gas": 500_000,
        "maxFeePerGas": 2 * int(web3.eth.get_block("latest")["baseFeePerGas"]) + 10**9,
        "maxPriorityFeePerGas": 10**9,
        "value": value,
        "data": data,
    }
    if to is not None:
        tx["to"] = to
    signed = signer.sign_transaction(tx)
    receipt = web3.eth.wait_for_transaction_receipt(web3.eth.send_raw_transaction(signed.raw_transaction))
    assert receipt["status"] == 1
    return receipt


def test_forged_and_foreign_requested_events_are_not_journaled(
    project: Any,
    chain: Any,
    core: Any,
    market: Any,
    deployer: Any,
    operator: Any,
    requester: Any,
    stranger: Any,
    journal: Journal,
):
    """A stranger's contract logs a perfect GenerationRequested (fast lane, fee 0, the victim as
    requester, request id 1) and another with truncated data; a second, genuine market has its own
    request 1. The watcher journals only its own market's request: the node's address filter is
    what stops the forgery (it decodes cleanly, so nothing else would)."""
    stranger_emitter = send_raw(chain, stranger, None, log3_emitter(1, requester.address))["contractAddress"]
    forged = encode(_DATA_TYPES, [FAST, 0, 2**63, 1, 25, 1_500, "forged: " + PROMPT])
    send_raw(chain, stranger, stranger_emitter, forged)
    send_raw(chain, stranger, stranger_emitter, forged[:40])  # data of the wrong length
    elsewhere = deploy_market(project, core, deployer, operator)
    ask(elsewhere, stranger, lane=FAST, prompt="another market's request")
    ask(market, requester, lane=STANDARD)
    (forgery, truncated) = requested_logs(chain, stranger_emitter)
    assert decode_request(forgery)[3]["lane"] == FAST_LANE  # it would pass for a real request
    with pytest.raises(Exception):  # noqa: B017 - eth_abi's decoding error
        decode_request(truncated)
    client = agents_client(chain, core, market, operator.private_key, journal)
    watcher = MarketWatcher(journal, client, confirmations=0)
    assert asyncio.run(watcher.poll()) == 1
    (job,) = journal.at_stage(jobs.REQUESTED)
    assert job.key == market_key(int(chain.chain_id), market.address, 1)
    assert (job.payload["market"], job.payload["lane"], job.payload["fee"]) == (
        market.address,
        STANDARD_LANE,
        str(PRICE),
    )
    assert job.payload["request"]["prompt"] == PROMPT


class _NoChain:
    """What a bare watcher has for a chain and a journal: reaching it means the log was taken for a
    request."""

    def __getattr__(self, name: str) -> Any:
        raise Finding(f"a malformed log got past decoding (to {name}): it was taken for a request")


def _bare_watcher(market_address: str) -> MarketWatcher:
    """A watcher whose decoding runs before it touches the chain or the journal."""
    watcher = object.__new__(MarketWatcher)
    watcher.market, watcher.client, watcher.journal = market_address, _NoChain(), _NoChain()  # type: ignore[assignment]
    watcher._chain_id = None
    return watcher


def test_a_malformed_requested_log_is_skipped_not_a_poison_pill(market: Any):
    good = encode(_DATA_TYPES, [FAST, FAST_PRICE, 2**40, 1, 25, 1_500, PROMPT])
    topics = (REQUESTED_TOPIC, "0x" + (1).to_bytes(32, "big").hex(), "0x" + "00" * 12 + "ab" * 20)
    malformed = [
        ChainEvent(5, "0x" + "11" * 32, "0x" + "22" * 32, 0, market.address, topics, good[:-32]),  # short
        ChainEvent(5, "0x" + "11" * 32, "0x" + "22" * 32, 1, market.address, topics, b"\x01" + good[1:]),  # dirty pad
        ChainEvent(5, "0x" + "11" * 32, "0x" + "22" * 32, 2, market.address, topics[:2], good),  # no requester topic
    ]
    watcher = _bare_watcher(market.address)
    escaped = []
    for event in malformed:
        try:
            asyncio.run(watcher.on_event(event))
        except Exception as error:  # a Finding from _NoChain included
            escaped.append(f"{type(error).__name__}: {error}")
    should(not escaped, f"on_event raised {escaped} instead of logging and skipping")


def test_on_event_refuses_a_log_from_another_address(
    chain: Any, core: Any, market: Any, operator: Any, requester: Any, journal: Journal
):
    data = encode(_DATA_TYPES, [FAST, 0, 2**40, 1, 25, 1_500, "forged: " + PROMPT])
    topics = (REQUESTED_TOPIC, "0x" + (1).to_bytes(32, "big").hex(), "0x" + "00" * 12 + requester.address[2:].lower())
    forged = ChainEvent(5, "0x" + "11" * 32, "0x" + "22" * 32, 0, "0x" + "ee" * 20, topics, data)
    watcher = MarketWatcher(journal, agents_client(chain, core, market, operator.private_key, journal), confirmations=0)
    asyncio.run(watcher.on_event(forged))
    should(not journal.at_stage(jobs.REQUESTED), "a log from 0xeeee... was journaled as a paid fast request")


# ----------------------------------------------------------------- delivery and reorganisation


def test_delivery_reads_each_state_and_sends_only_for_an_open_request(
    chain: Any, core: Any, market: Any, requester: Any, operator: Any, make_asset: Any, journal: Journal
):
    """`DeliverStage` on fast requests that are open, refunded and lapsed: it fulfils the open one
    (and records the transaction's cost), sends nothing for the refunded one, and reports the lapsed
    one as expired (the simulation catches the revert)."""
    open_, refunded, lapsed = (ask(market, requester, lane=FAST, seed=s) for s in (1, 2, 3))
    assets = {r: make_asset(f"delivery-{r}") for r in (open_, refunded, lapsed)}
    client = agents_client(chain, core, market, operator.private_key, journal)
    stage = DeliverStage(journal, client, worker="attack/deliver")

    def job(request_id: int) -> Any:
        payload = {"market_request": request_id, "sha256": assets[request_id].hex(), "lane": FAST_LANE}
        journal.submit(f"k{request_id}", jobs.ASSET, payload, stage=jobs.REGISTERED)
        return journal.get(f"k{request_id}")

    async def deliver(request_id: int) -> Any:
        await client.start()
        (outcome,) = await stage.process([job(request_id)])
        assert isinstance(outcome, Done)
        return outcome.updates

    first = asyncio.run(deliver(open_))
    assert first["delivery"] == "fulfilled" and first[costs.SETTLE]["gas"] > 0
    assert market.getRequest(open_).status == FULFILLED and market.getRequest(open_).asset == assets[open_]
    chain.pending_timestamp += WINDOW + 1
    chain.mine()
    market.refund(refunded, sender=requester)
    assert asyncio.run(deliver(refunded)) == {"delivery": "refunded"}
    assert asyncio.run(deliver(lapsed)) == {"delivery": "expired"}
    assert market.getRequest(lapsed).status == OPEN and market.balanceOf(operator) == FAST_PRICE


def _poll(watcher: MarketWatcher) -> int:
    return asyncio.run(watcher.poll())


def test_a_request_reorged_out_and_reincluded_is_served(
    chain: Any, core: Any, market: Any, requester: Any, operator: Any, journal: Journal, tmp_path: Path
):
    client = agents_client(chain, core, market, operator.private_key, journal)
    watcher = MarketWatcher(journal, client, confirmations=0)
    key = market_key(int(chain.chain_id), market.address, 1)
    fork = chain.snapshot()
    ask(market, requester, lane=FAST)
    assert _poll(watcher) == 1 and journal.get(key).stage == jobs.REQUESTED
    chain.restore(fork)  # the block that held the request is orphaned ...
    chain.pending_timestamp += 13
    chain.mine(2)
    ask(market, requester, lane=FAST)  # ... and the same request is mined again, in a later block
    assert int(market.requestCount()) == 1 and market.getRequest(1).status == OPEN
    assert _poll(watcher) == 2  # one removal, one delivery
    fresh_journal = Journal(tmp_path / "fresh.db", final=jobs.FINAL)
    try:  # what a fresh rescan of the canonical chain journals
        _poll(MarketWatcher(fresh_journal, agents_client(chain, core, market, operator.private_key, fresh_journal),
                            confirmations=0))  # fmt: skip
        assert fresh_journal.get(key).stage == jobs.REQUESTED
    finally:
        fresh_journal.close()
    should(
        journal.get(key).stage == jobs.REQUESTED,
        f"the re-included paid fast request is left {journal.get(key).stage}, a fresh rescan has it requested",
    )


def test_a_job_is_never_delivered_to_a_different_request_that_took_its_id_in_a_reorg(
    chain: Any,
    core: Any,
    market: Any,
    requester: Any,
    other_requester: Any,
    operator: Any,
    make_asset: Any,
    journal: Journal,
):
    client = agents_client(chain, core, market, operator.private_key, journal)
    watcher = MarketWatcher(journal, client, confirmations=0)
    key = market_key(int(chain.chain_id), market.address, 1)
    fork = chain.snapshot()
    ask(market, requester, lane=FAST, prompt=PROMPT)  # A's fast request 1 ...
    assert _poll(watcher) == 1
    journal.advance([key], jobs.REQUESTED, jobs.GENERATED)  # ... the generator has taken it
    chain.restore(fork)  # a reorg drops A's transaction; B's standard request becomes request 1
    chain.pending_timestamp += 13
    chain.mine()
    ask(market, other_requester, lane=STANDARD, prompt=OTHER_PROMPT)
    assert _poll(watcher) == 2
    job = journal.get(key)
    assert job.stage == jobs.GENERATED and job.payload["request"]["prompt"] == PROMPT  # still A's
    assert (job.payload["requester"], job.payload["lane"]) == (requester.address, FAST_LANE)
    image_of_a = make_asset("the image made for A's prompt")
    registered = dataclasses.replace(job, payload={**job.payload, "sha256": image_of_a.hex()})

    async def deliver() -> Any:
        await client.start()
        return await DeliverStage(journal, client, worker="attack/deliver").process([registered])

    (outcome,) = asyncio.run(deliver())
    stored = market.getRequest(1)
    assert (stored.requester, stored.lane) == (other_requester.address, STANDARD)
    should(
        stored.status == OPEN and outcome.updates.get("delivery") != "fulfilled",
        f"B's standard request for {OTHER_PROMPT!r} was fulfilled with the image of A's prompt "
        f"({outcome.updates.get('delivery')}); the operator took B's fee",
    )


def test_a_job_from_the_old_market_is_not_delivered_to_the_new_one(
    project: Any,
    chain: Any,
    core: Any,
    market: Any,
    deployer: Any,
    requester: Any,
    other_requester: Any,
    operator: Any,
    make_asset: Any,
    journal: Journal,
):
    ask(market, requester, lane=FAST, prompt=PROMPT)  # on the old market
    old_client = agents_client(chain, core, market, operator.private_key, journal)
    assert _poll(MarketWatcher(journal, old_client, confirmations=0)) == 1
    (job,) = journal.at_stage(jobs.REQUESTED)
    assert job.payload["market"] == market.address
    upgraded = deploy_market(project, core, deployer, operator)  # the operator redeploys
    ask(upgraded, other_requester, lane=STANDARD, prompt=OTHER_PROMPT)  # its request 1
    image = make_asset("the image made for the old market's request 1")
    registered = dataclasses.replace(job, payload={**job.payload, "sha256": image.hex()})
    new_client = agents_client(chain, core, upgraded, operator.private_key, journal)

    async def deliver() -> Any:
        await new_client.start()
        return await DeliverStage(journal, new_client, worker="attack/deliver").process([registered])

    (outcome,) = asyncio.run(deliver())
    should(
        upgraded.getRequest(1).status == OPEN,
        f"the new market's request 1 ({OTHER_PROMPT!r}) was fulfilled with the old market's image "
        f"({outcome.updates.get('delivery')})",
    )
