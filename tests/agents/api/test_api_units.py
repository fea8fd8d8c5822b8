"""The API's parts that need no chain: rate limiting, the x402 header codec and offer, voucher
signatures as the contract judges them, and the channel book's compare-and-set and durability."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from pathlib import Path

import pytest
from eth_account import Account

from agents.api.paywall import ChannelBook, ChannelBookError, Offered, PaymentRejectedError, signer_of
from agents.api.ratelimit import RateLimiter
from agents.api.x402 import Offer, PaymentHeaderError, decode_header, encode_header, parse_payment
from agents.core.settlement import SignedVoucher
from agents.core.vouchers import Voucher, sign_voucher

MANAGER = "0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0"
KEY = "0x" + "11" * 32
PAYER = Account.from_key(KEY).address
ASSET = bytes(range(32))
SERVICE = Account.from_key("0x" + "55" * 32).address
OFFER = Offer(ASSET, 3, "0x" + "00" * 20, 1_000, 1337, MANAGER, SERVICE)


def signed(amount: int, key: str = KEY, terms: int = 3, service: str = SERVICE) -> SignedVoucher:
    v = Voucher(PAYER, service, ASSET, terms, amount, 2**40)
    return SignedVoucher(v, sign_voucher(v, key, 1337, MANAGER))


def test_the_rate_limiter_refills_and_forgets_the_least_recent_clients():
    now = [0.0]
    limiter = RateLimiter(2.0, 3, max_clients=2, clock=lambda: now[0])
    assert [limiter.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("a") == pytest.approx(0.5)  # empty: one token comes back in 1/2 s
    now[0] += 0.5
    assert limiter.take("a") == 0.0
    limiter.take("b"), limiter.take("c")  # "a" is the least recent of three: forgotten
    assert limiter.take("a") == 0.0 and len(limiter._buckets) == 2
    with pytest.raises(ValueError):
        RateLimiter(0, 1)


def test_payment_headers_are_read_strictly():
    header = encode_header({"x402Version": 2, "accepted": OFFER.requirements(), "payload": signed(1_000).as_json()})
    assert parse_payment(header, OFFER) == signed(1_000)
    bad = [
        "%%%",
        base64.b64encode(b"[1]").decode(),
        base64.b64encode(b"{not json").decode(),
        "A" * 9_000,
        encode_header({"x402Version": 3}),
        encode_header({"x402Version": 2, "accepted": None}),
        encode_header({"x402Version": 2, "accepted": {**OFFER.requirements(), "scheme": "exact"}}),
        encode_header({"x402Version": 2, "accepted": {**OFFER.requirements(), "network": "eip155:1"}}),
        encode_header({"x402Version": 2, "accepted": OFFER.requirements(), "payload": {"payer": PAYER}}),
        encode_header({"x402Version": 2, "accepted": OFFER.requirements(), "payload": signed(1, terms=4).as_json()}),
    ]
    for value in bad:
        with pytest.raises(PaymentHeaderError):
            parse_payment(value, OFFER)
    assert decode_header(encode_header({"a": 1})) == {"a": 1}
    requirements = OFFER.requirements()
    extra = requirements["extra"]
    assert extra["eip712"]["primaryType"] == "Voucher" and extra["eip712"]["domain"]["verifyingContract"] == MANAGER
    # the service is paid: payTo names it, extra repeats it, and the typed data has it in the voucher
    assert requirements["payTo"] == extra["service"] == SERVICE and extra["settlementContract"] == MANAGER
    assert {"name": "service", "type": "address"} in extra["eip712"]["types"]["Voucher"]
    assert json.loads(json.dumps(OFFER.requirements())) == OFFER.requirements()


def test_signatures_are_judged_as_the_contract_does():
    good = signed(5)
    assert signer_of(good, 1337, MANAGER) == PAYER
    # the service is signed: the same signature over a voucher naming another service is another signer's
    moved = SignedVoucher(signed(5, service=MANAGER).voucher, good.signature)
    assert signer_of(moved, 1337, MANAGER) != PAYER
    assert signer_of(good, 1, MANAGER) != PAYER  # another chain's domain: another signer
    assert signer_of(signed(5, key="0x" + "22" * 32), 1337, MANAGER) != PAYER
    n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    sig = bytearray(good.signature)
    sig[32:64] = (n - int.from_bytes(sig[32:64], "big")).to_bytes(32, "big")
    sig[64] = 55 - sig[64]
    for bad in (good.signature[:64], bytes(sig), good.signature[:64] + b"\x05", b"\x00" * 65):
        with pytest.raises(PaymentRejectedError) as caught:
            signer_of(SignedVoucher(good.voucher, bad), 1337, MANAGER)
        assert caught.value.code == "bad_signature"


@pytest.fixture(params=["sqlite", "postgresql"])
def book_location(request: pytest.FixtureRequest, tmp_path: Path) -> str | Path:
    """Where a channel book lives: its own SQLite file, or (API processes sharing a journal) PostgreSQL."""
    return tmp_path / "channels.db" if request.param == "sqlite" else str(request.getfixturevalue("postgres_url"))


def test_the_channel_book_only_moves_forward_and_survives_a_restart(book_location: str | Path):
    book = ChannelBook(book_location)
    assert book.accept(signed(2_000), "0x0", 0, 1.0)
    assert not book.accept(signed(2_000), "0x0", 0, 2.0)  # replay
    assert not book.accept(signed(1_000), "0x0", 0, 2.0)  # older
    assert book.accept(signed(3_000), "0x0", 500, 3.0)
    book.note_settled(PAYER, SERVICE, 3, 1_000)
    # another service's channel with the same payer and terms is a channel of its own
    assert book.accept(signed(500, service=MANAGER), "0x0", 0, 4.0)
    book.close()
    again = ChannelBook(book_location)
    assert again.channel(PAYER, SERVICE, 3) == (3_000, 1_000) and again.channel(PAYER, MANAGER, 3) == (500, 0)
    assert again.owed(PAYER, "0x0", SERVICE) == {3: (3_000, 1_000)} and again.owed(PAYER, "0x1", SERVICE) == {}
    assert again.owed(PAYER, "0x0", MANAGER) == {3: (500, 0)}
    assert sorted(again.newest(), key=lambda v: v.voucher.cumulative_amount) == [
        signed(500, service=MANAGER),
        signed(3_000),
    ]
    again.close()


def test_a_covered_accept_refuses_what_the_escrow_or_the_deadline_does_not_allow(book_location: str | Path):
    book = ChannelBook(book_location)
    assert book.accept_covered(signed(2_000), "0x0", 0, 1.0, cover=5_000).outcome == "accepted"
    short = book.accept_covered(signed(6_000), "0x0", 0, 2.0, cover=5_000)
    assert short.outcome == "uncovered" and short.owed == 6_000 and short.channels == {3: (6_000, 0)}
    assert book.accept_covered(signed(5_000), "0x0", 1_000, 2.0, cover=4_000).outcome == "accepted"  # 4_000 owed
    early = signed(6_000)
    early = SignedVoucher(replace(early.voucher, deadline=early.voucher.deadline - 1), early.signature)
    late = book.accept_covered(early, "0x0", 1_000, 3.0, cover=10_000)
    assert late.outcome == "deadline" and late.known == signed(5_000)
    assert book.accept_covered(signed(5_000), "0x0", 0, 3.0).outcome == "behind"
    assert book.channel(PAYER, SERVICE, 3) == (5_000, 1_000)  # what was refused changed nothing
    book.close()


def test_a_batch_of_vouchers_is_decided_in_order_in_one_transaction(book_location: str | Path):
    book = ChannelBook(book_location)
    other = Account.from_key("0x" + "22" * 32)
    mine = [
        Offered(signed(2_000), "0x0", 0, 5_000),
        Offered(signed(2_000), "0x0", 0, 5_000),  # the same voucher again in the batch: a replay
        Offered(signed(4_000, terms=4), "0x0", 0, 5_000),  # with the first, 6_000 owed on 5_000 of cover
        Offered(signed(3_000, terms=4), "0x0", 0, 5_000),  # 5_000 owed: covered
        Offered(_signed_by(other.key.hex(), other.address, 1_000), "0x0", 0, 1_000),  # another payer's escrow
    ]
    outcomes = [a.outcome for a in book.accept_many(mine, 1.0)]
    assert outcomes == ["accepted", "behind", "uncovered", "accepted", "accepted"]
    assert book.owed(PAYER, "0x0", SERVICE) == {3: (2_000, 0), 4: (3_000, 0)}
    assert book.channel(other.address, SERVICE, 3) == (1_000, 0)
    assert book.accept_many([], 2.0) == []
    book.close()


def test_batches_on_one_shared_book_in_opposite_orders_never_deadlock(postgres_url: str):
    # two API processes, each holding the escrows its batch draws on: were the locks taken in
    # batch order, one batch (A then B) and the other (B then A) would wait on each other
    import threading

    a_key, b_key = "0x" + "31" * 32, "0x" + "32" * 32
    a, b = Account.from_key(a_key).address, Account.from_key(b_key).address
    books = [ChannelBook(postgres_url), ChannelBook(postgres_url)]
    failures: list[BaseException] = []

    def run(book: ChannelBook, first: tuple[str, str], second: tuple[str, str], terms: int) -> None:
        try:
            for use in range(1, 31):
                batch = [Offered(_signed_by(k, p, use * 10, terms), "0x0", 0, None) for k, p in (first, second)]
                assert [x.outcome for x in book.accept_many(batch, float(use))] == ["accepted", "accepted"]
        except BaseException as exc:  # the test reports it
            failures.append(exc)

    threads = [
        threading.Thread(target=run, args=(books[0], (a_key, a), (b_key, b), 3)),
        threading.Thread(target=run, args=(books[1], (b_key, b), (a_key, a), 4)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not failures, failures
    assert books[0].channel(a, SERVICE, 3) == (300, 0) and books[1].channel(b, SERVICE, 4) == (300, 0)
    for book in books:
        book.close()


def _signed_by(key: str, payer: str, amount: int, terms: int = 3) -> SignedVoucher:
    v = Voucher(payer, SERVICE, ASSET, terms, amount, 2**40)
    return SignedVoucher(v, sign_voucher(v, key, 1337, MANAGER))


def test_a_version_1_channel_book_is_refused_with_what_to_do(tmp_path: Path):
    import sqlite3

    path = tmp_path / "channels.db"
    old = sqlite3.connect(path)
    old.execute(
        "CREATE TABLE channels (payer TEXT NOT NULL, terms_id INTEGER NOT NULL, currency TEXT NOT NULL,"
        " cumulative TEXT NOT NULL, settled TEXT NOT NULL, voucher TEXT NOT NULL, updated_at REAL NOT NULL,"
        " PRIMARY KEY (payer, terms_id))"
    )
    old.close()
    with pytest.raises(ChannelBookError, match=r"version-1 vouchers .* move the file away"):
        ChannelBook(path)


def test_the_direct_voucher_digest_is_eth_accounts_typed_data_hash():
    from eth_utils.crypto import keccak

    from agents.core.vouchers import signable_voucher, voucher_digest

    for i in range(50):
        v = Voucher(PAYER, SERVICE, (i * 7919).to_bytes(32, "big"), i, i * 10**15, 2**32 + i)
        for chain_id, manager in ((1337, MANAGER), (8453, MANAGER.lower()), (1, "0x" + "ab" * 20)):
            s = signable_voucher(v, chain_id, manager)
            assert voucher_digest(v, chain_id, manager) == keccak(b"\x19" + s.version + s.header + s.body)


def test_the_paying_client_signs_for_the_service_the_offer_names_and_no_other():
    from agents.api.client import PayingClient, PaymentError, service_of

    offer = OFFER.requirements()
    assert service_of(offer) == SERVICE
    for bad in (
        {**offer, "payTo": MANAGER},  # pays one address, names another service: refused
        {**offer, "payTo": "0x12"},
        {k: v for k, v in offer.items() if k != "payTo"},
    ):
        with pytest.raises(PaymentError):
            service_of(bad)
    client = PayingClient(None, KEY)  # type: ignore[arg-type]  # no request is made here
    voucher, price = client._voucher(offer)
    assert (voucher.voucher.service, voucher.voucher.cumulative_amount, price) == (SERVICE, 1_000, 1_000)
    assert signer_of(voucher, 1337, MANAGER) == PAYER
    assert client._pick({"accepts": [{**offer, "payTo": MANAGER}, offer]}) == offer
    with pytest.raises(PaymentError, match="no offer this client can pay"):
        PayingClient(None, KEY, expect_service=MANAGER)._pick({"accepts": [offer]})  # type: ignore[arg-type]


@pytest.mark.asyncio
async def test_what_the_http_parser_refuses_is_a_json_error_and_one_log_line(caplog: pytest.LogCaptureFixture):
    import socket

    import aiohttp
    from aiohttp import web

    from agents.api.errors import json_errors
    from agents.api.serve import MAX_LINE_BYTES, serve

    app = web.Application(middlewares=[json_errors])
    app.router.add_get("/ok", lambda _: web.json_response({"ok": True}))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    runner = await serve(app, port=port)
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:
            for query, headers in ((f"?q={'A' * MAX_LINE_BYTES}", {}), ("", {"X-Big": "b" * (MAX_LINE_BYTES + 1)})):
                async with session.get(f"{base}/ok{query}", headers=headers) as r:
                    assert r.status == 400 and r.content_type == "application/json"
                    error = (await r.json())["error"]
                    assert error["code"] == "bad_http_request" and "Got more than 65536 bytes" in error["message"]
            async with session.get(f"{base}/ok?q={'A' * 9_000}") as r:  # past aiohttp's default: served
                assert r.status == 200
    finally:
        await runner.cleanup()
    refusals = [r for r in caplog.records if "malformed HTTP request" in r.getMessage()]
    assert len(refusals) == 2 and all(r.exc_info is None and r.levelname == "WARNING" for r in refusals)
    assert not any(r.exc_info for r in caplog.records), "no traceback logged"
