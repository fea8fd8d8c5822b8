"""The paying client (`agents.api.client`, `proofmint pay`) against a server that lies: real
aiohttp servers in this process (as in the security review's proof of concept), no chain.

- a `replayed_or_short` refusal claiming the channel holds 10 ETH, shown with no voucher, a
  stranger's, one of the payer's for another channel or domain, or one for another amount: the
  client refuses (PaymentError) and never signs more than one use above what it knows;
- an offer asking for a deadline past the client's cap (`max_deadline_s`, `--max-deadline`): refused
  before anything is signed; within a raised cap, taken;
- `proofmint pay` pins chain, contract and service (`--chain-id`, `--settlement`, `--service`) and
  caps a run (`--budget`): offers for anything else are refused before anything is signed;
- what fetches add counts against the budget.

The honest side (a paywall on the chain whose refusal carries the payer's own voucher, and a
fresh client catching up from it) is in tests/agents/daemons/test_paywall_security.py.
"""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from click.testing import CliRunner
from eth_account import Account

from agents.api.client import MAX_DEADLINE_S, PayingClient, PaymentError
from agents.api.paywall import signer_of
from agents.app.main import cli
from agents.core.settlement import SignedVoucher, parse_voucher
from agents.core.vouchers import Voucher, sign_voucher

KEY = "0x" + "11" * 32
PAYER = Account.from_key(KEY).address
STRANGER_KEY = "0x" + "22" * 32
SERVICE = "0x000000000000000000000000000000000000bEEF"
CONTRACT = "0x1111111111111111111111111111111111111111"
OTHER_CONTRACT = "0x2222222222222222222222222222222222222222"
CHAIN_ID = 8453
ASSET = bytes.fromhex("ab" * 32)
TERMS_ID = 7
TEN_ETH = 10**19
PRICE = 1  # one wei per use: under any per-use limit


def offer(min_deadline_s: int = 86_400, price: int = PRICE) -> dict[str, Any]:
    return {
        "scheme": "proofmint-voucher",
        "network": f"eip155:{CHAIN_ID}",
        "amount": str(price),
        "asset": "0x" + "00" * 20,
        "payTo": SERVICE,
        "maxTimeoutSeconds": 300,
        "extra": {
            "assetDigest": "0x" + ASSET.hex(),
            "termsId": TERMS_ID,
            "service": SERVICE,
            "settlementContract": CONTRACT,
            "chainId": CHAIN_ID,
            "minDeadlineSeconds": min_deadline_s,
        },
    }


def signed(
    amount: int,
    *,
    key: str = KEY,
    service: str = SERVICE,
    terms_id: int = TERMS_ID,
    contract: str = CONTRACT,
    payer: str = PAYER,
) -> dict[str, Any]:
    v = Voucher(payer, service, ASSET, terms_id, amount, int(time.time()) + 86_400)
    return SignedVoucher(v, sign_voucher(v, key, CHAIN_ID, contract)).as_json()


@dataclass
class Server:
    """What a lying server offers and claims, and every voucher it was sent."""

    offer: dict[str, Any] = field(default_factory=offer)
    claimed: int = TEN_ETH
    shown: dict[str, Any] | None = None  # the voucher shown as proof of `claimed`, if any
    honest: bool = False  # take any voucher one use above the last (a server that does not lie)
    seen: list[SignedVoucher] = field(default_factory=list)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/x", self.get)
        return app

    async def get(self, request: web.Request) -> web.Response:
        required = {"x402Version": 2, "error": "pay", "resource": {"url": str(request.url)}, "accepts": [self.offer]}
        headers = {"PAYMENT-REQUIRED": _b64(required)}
        header = request.headers.get("PAYMENT-SIGNATURE")
        if header is None:
            return web.json_response({"error": {"code": "payment_required"}}, status=402, headers=headers)
        voucher = parse_voucher(json.loads(base64.b64decode(header))["payload"])
        self.seen.append(voucher)
        held = self.seen[-2].voucher.cumulative_amount if self.honest and len(self.seen) > 1 else 0
        if self.honest and voucher.voucher.cumulative_amount >= held + int(self.offer["amount"]):
            return web.Response(body=b"thanks", content_type="image/png")
        if not self.honest and voucher.voucher.cumulative_amount >= self.claimed + PRICE:
            return web.Response(body=b"thanks", content_type="image/png")
        details: dict[str, Any] = {"acceptedCumulative": str(self.claimed)}
        if self.shown is not None:
            details["acceptedVoucher"] = self.shown
        error = {"code": "replayed_or_short", "message": "behind", "details": details}
        return web.json_response({"error": error}, status=402, headers=headers)


def _b64(obj: dict[str, Any]) -> str:
    return base64.b64encode(json.dumps(obj).encode()).decode()


async def _fetch(server: Server, **limits: Any) -> tuple[PayingClient, BaseException | None]:
    test_server = TestServer(server.app())
    await test_server.start_server()
    try:
        async with aiohttp.ClientSession() as session:
            client = PayingClient(session, KEY, **limits)
            try:
                await client.fetch(str(test_server.make_url("/x")))
            except PaymentError as exc:
                return client, exc
            return client, None
    finally:
        await test_server.close()


def _assert_nothing_above_one_use(server: Server, signed_before: float) -> None:
    assert server.seen, "the client signed nothing at all"
    for sv in server.seen:
        assert sv.voucher.cumulative_amount <= PRICE, f"signed {sv.voucher.cumulative_amount} on the server's word"
        assert sv.voucher.deadline <= signed_before + MAX_DEADLINE_S + 5
        assert signer_of(sv, CHAIN_ID, CONTRACT) == PAYER


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("no voucher", lambda: None),
        ("a stranger's voucher", lambda: signed(TEN_ETH, key=STRANGER_KEY)),
        ("a stranger's voucher naming the payer", lambda: signed(TEN_ETH, key=STRANGER_KEY, payer=PAYER)),
        ("the payer's voucher for another service", lambda: signed(TEN_ETH, service=CONTRACT)),
        ("the payer's voucher for other terms", lambda: signed(TEN_ETH, terms_id=TERMS_ID + 1)),
        ("the payer's voucher for another contract", lambda: signed(TEN_ETH, contract=OTHER_CONTRACT)),
        ("the payer's voucher for another amount", lambda: signed(TEN_ETH // 2)),
        ("not a voucher", lambda: {"payer": PAYER, "cumulativeAmount": str(TEN_ETH)}),
    ],
)
@pytest.mark.asyncio
async def test_a_server_inflating_the_channel_without_the_payers_own_voucher_gets_nothing_signed_above_one_use(
    name: str, shown: Callable[[], dict[str, Any] | None]
):
    server = Server(shown=shown())
    before = time.time()
    client, refused = await _fetch(server, max_per_use=10**16, budget=10**16)
    assert isinstance(refused, PaymentError), f"{name}: the client paid on the server's word"
    _assert_nothing_above_one_use(server, before)
    assert len(server.seen) == 1 and client.spent == 0 and client.channels == {}


@pytest.mark.asyncio
async def test_the_payers_own_voucher_for_the_channel_is_caught_up_from_and_only_one_use_is_added():
    # a server that holds a voucher the payer really signed (another process of the same payer)
    server = Server(claimed=5 * PRICE, shown=signed(5 * PRICE))
    client, refused = await _fetch(server, max_per_use=PRICE, budget=PRICE)
    assert refused is None
    assert [sv.voucher.cumulative_amount for sv in server.seen] == [PRICE, 6 * PRICE]
    assert client.spent == PRICE
    ((channel, voucher),) = client.channels.items()
    assert (channel.chain_id, channel.settlement, channel.service, channel.terms_id) == (
        CHAIN_ID,
        CONTRACT,
        SERVICE,
        TERMS_ID,
    )
    assert voucher.voucher.cumulative_amount == 6 * PRICE
    assert voucher.voucher.deadline >= parse_voucher(server.shown).voucher.deadline  # never expires first


@pytest.mark.parametrize(
    ("min_deadline_s", "cap", "taken"),
    [
        (MAX_DEADLINE_S, MAX_DEADLINE_S, True),  # at the cap
        (MAX_DEADLINE_S + 1, MAX_DEADLINE_S, False),  # past it
        (10**9, MAX_DEADLINE_S, False),  # the proof of concept's: 31 years
        (30 * 86_400, 31 * 86_400, True),  # the cap raised
    ],
)
@pytest.mark.asyncio
async def test_an_offer_asking_for_a_deadline_past_the_cap_is_refused_before_anything_is_signed(
    min_deadline_s: int, cap: int, taken: bool
):
    server = Server(offer=offer(min_deadline_s), honest=True)
    before = time.time()
    _, refused = await _fetch(server, max_deadline_s=cap)
    if taken:
        assert refused is None and len(server.seen) == 1
        assert int(before) + min_deadline_s <= server.seen[0].voucher.deadline <= time.time() + cap
    else:
        assert isinstance(refused, PaymentError) and "valid" in str(refused) and server.seen == []


@pytest.mark.asyncio
async def test_what_fetches_add_counts_against_the_budget():
    server = Server(offer=offer(price=3), honest=True)
    test_server = TestServer(server.app())
    await test_server.start_server()
    try:
        async with aiohttp.ClientSession() as session:
            client = PayingClient(session, KEY, max_per_use=3, budget=7)
            url = str(test_server.make_url("/x"))
            assert [(await client.fetch(url)).paid for _ in range(2)] == [3, 3]
            with pytest.raises(PaymentError, match="exceed the budget 7"):
                await client.fetch(url)
    finally:
        await test_server.close()
    assert [sv.voucher.cumulative_amount for sv in server.seen] == [3, 6] and client.spent == 6


@contextmanager
def serving(app: web.Application) -> Iterator[str]:
    """`app` served on a free port from a thread of its own (for a command that runs its own loop)."""
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app)
    started = threading.Event()
    port: list[int] = []

    async def start() -> None:
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port.append(runner.addresses[0][1])
        started.set()

    thread = threading.Thread(target=lambda: (loop.run_until_complete(start()), loop.run_forever()), daemon=True)
    thread.start()
    assert started.wait(10)
    try:
        yield f"http://127.0.0.1:{port[0]}/x"
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def _pay(url: str, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["pay", url, "-o", "-", *args], env={"PROOFMINT_PAYER_KEY": KEY})
    return result.exit_code, result.output + str(result.exception or "")


def test_proofmint_pay_against_the_review_server_refuses_and_signs_one_use_only():
    server = Server(offer=offer(min_deadline_s=3_600))
    with serving(server.app()) as url:
        code, text = _pay(url)
    assert code != 0 and "shows no voucher of this payer's" in text and "Traceback" not in text
    assert [sv.voucher.cumulative_amount for sv in server.seen] == [PRICE]


@pytest.mark.parametrize(
    ("args", "why"),
    [
        (["--chain-id", "1"], "no offer this client can pay"),
        (["--settlement", OTHER_CONTRACT], "no offer this client can pay"),
        (["--service", CONTRACT], "no offer this client can pay"),
        (["--max-deadline", "12h"], "more than this client signs"),
        (["--max-per-use", "1", "--budget", "0"], "exceed the budget 0"),
    ],
)
def test_proofmint_pay_refuses_offers_outside_what_it_was_told_before_signing(args: list[str], why: str):
    server = Server(honest=True)
    with serving(server.app()) as url:
        code, text = _pay(url, *args)
    assert code != 0 and why in text, text
    assert server.seen == []


def test_proofmint_pay_pinned_to_the_offer_pays_it():
    server = Server(honest=True)
    pins = ["--chain-id", str(CHAIN_ID), "--settlement", CONTRACT.lower(), "--service", SERVICE, "--budget", "1"]
    with serving(server.app()) as url:
        code, text = _pay(url, *pins, "--max-per-use", "1")
    assert code == 0, text
    assert "paid 1 wei" in text and "1 wei on this channel so far" in text
    assert [sv.voucher.cumulative_amount for sv in server.seen] == [PRICE]


@pytest.mark.parametrize("value", ["0", "soon", "7w", "-1d"])
def test_proofmint_pay_refuses_a_deadline_cap_that_is_not_a_duration(value: str):
    code, text = _pay("http://127.0.0.1:1/x", "--max-deadline", value)
    assert code == 2 and "is not a duration" in text
