"""x402 `exact` over EIP-3009 (agents.api.exact), against the stock x402 SDK client (the `x402`
package's `x402ClientSync` with its `ExactEvmScheme`, not proofmint's code) on the chain under
test: the SDK reads proofmint's PAYMENT-REQUIRED header and signs; proofmint parses its
PAYMENT-SIGNATURE header, verifies, settles from the service's key, and the payment lands in the
asset's royalty split once (swept from the asset's receiver). Replays, under- and over-payments,
payments to another address, expiring or forged authorizations are refused; a front-runner who
submits the authorization first changes only who paid the gas."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from x402 import x402ClientSync
from x402.http.utils import decode_payment_required_header, encode_payment_signature_header
from x402.mechanisms.evm.exact.client import ExactEvmScheme

from agents.api.exact import (
    PAID,
    ExactOffer,
    ExactToken,
    accept_exact,
    exact_key,
    parse_exact,
    verify_exact,
)
from agents.api.paywall import PaymentRejectedError
from agents.api.x402 import X402_VERSION, PaymentHeaderError, decode_header, encode_header
from agents.core.toolchain import project_root
from agents.deploy.deployment import CoreConfig, deploy_core
from agents.runtime import jobs
from agents.runtime.chain import CORE, ChainClient, load_abis
from agents.runtime.journal import Journal
from tests.contracts.helpers import asset_record, attach_terms, register_asset, register_model

pytestmark = pytest.mark.chain

DOLLAR = 10**6
PRICE = DOLLAR // 100  # a cent a view


@dataclasses.dataclass
class Market:
    client: ChainClient
    journal: Journal
    licenses: Any
    splitter: Any
    usd: Any
    offer: ExactOffer
    payer: Any
    stranger: Any
    developer: Any


@pytest.fixture
def market(project: Any, chain: Any, accounts: Any, tmp_path: Path) -> Iterator[Market]:
    operator, developer, creator, payer, stranger = accounts[0], accounts[1], accounts[3], accounts[5], accounts[9]
    addresses = {d.name: d.address for d in deploy_core(project, operator, chain, CoreConfig())}
    licenses = project.LicenseManager.at(addresses["LicenseManager"])
    usd = operator.deploy(project.DevUsd, operator)
    licenses.setCurrencyAllowed(usd, True, sender=operator)
    usd.mint(payer, 10 * DOLLAR, sender=operator)
    model = register_model(project.ModelRegistry.at(addresses["ModelRegistry"]), developer, label="x", data_bps=0)
    record = asset_record("paid with exact", creator, model)
    register_asset(project.ProvenanceRegistry.at(addresses["ProvenanceRegistry"]), creator, record)
    terms_id = attach_terms(
        licenses, creator, record.content_digest, currency=usd.address, price=0, price_per_use=PRICE
    )
    journal = Journal(tmp_path / "journal.db", final=jobs.REGISTERED_OR_FINAL)
    client = ChainClient(
        chain.provider.web3, Account.from_key(operator.private_key), journal, addresses, load_abis(project_root(), CORE)
    )
    asyncio.run(client.start())
    token = ExactToken(usd.address, "Proofmint Dev USD", "2")
    receiver = licenses.paymentReceiverOf(record.content_digest)
    offer = ExactOffer(record.content_digest, terms_id, PRICE, token, receiver, int(chain.chain_id))
    splitter = project.RoyaltySplitter.at(addresses["RoyaltySplitter"])
    yield Market(client, journal, licenses, splitter, usd, offer, payer, stranger, developer)
    journal.close()


def sdk_header(market: Market, requirements: dict[str, Any] | None = None, account: Any = None) -> str:
    """What a stock x402 client sends back: the SDK decodes proofmint's PAYMENT-REQUIRED header,
    picks the exact requirements, signs the EIP-3009 authorization and encodes PAYMENT-SIGNATURE."""
    required = {
        "x402Version": X402_VERSION,
        "error": "payment required",
        "resource": {
            "url": "http://proofmint.test/v1/assets/x/content",
            "description": "a view",
            "mimeType": "image/png",
        },
        "accepts": [requirements or market.offer.requirements()],
    }
    payment_required = decode_payment_required_header(encode_header(required))
    wallet = Account.from_key((account or market.payer).private_key)
    client = x402ClientSync().register("eip155:*", ExactEvmScheme(wallet))
    # a stock client pays only in tokens it was told to trust, up to a cap: the payer opts in to pUSD
    allowed = {
        "network": f"eip155:{market.offer.chain_id}",
        "asset": market.usd.address,
        "max_amount_per_payment": "100000",
    }
    client.set_spend_controls({"allowed_assets": [allowed]})  # type: ignore[typeddict-item]
    return encode_payment_signature_header(client.create_payment_payload(payment_required))


def test_a_stock_client_pays_a_view_and_it_lands_in_the_split_once(market: Market):
    header = sdk_header(market)
    payment = decode_header(header)
    assert payment["accepted"]["scheme"] == "exact" and payment["payload"]["authorization"]["to"] == market.offer.pay_to
    auth = parse_exact(payment, market.offer)
    tx = asyncio.run(accept_exact(market.journal, market.client, auth, market.offer))
    assert tx.startswith("0x") and len(tx) == 66
    job = market.journal.get(exact_key(auth))
    assert job is not None and job.stage == PAID and job.payload["transaction"] == tx
    assert market.usd.balanceOf(market.offer.pay_to) == PRICE  # at the asset's receiver
    # the same header again: the authorization paid for a use already
    with pytest.raises(PaymentRejectedError) as replay:
        asyncio.run(
            accept_exact(market.journal, market.client, parse_exact(decode_header(header), market.offer), market.offer)
        )
    assert replay.value.code == "replayed"
    # a second view, then one sweep credits both to the asset, and the split pays its parties
    second = parse_exact(decode_header(sdk_header(market)), market.offer)
    asyncio.run(accept_exact(market.journal, market.client, second, market.offer))
    market.licenses.sweepPayments(market.offer.asset, market.usd, sender=market.stranger)
    assert market.splitter.pendingRevenueOf(market.offer.asset, market.usd) == 2 * PRICE
    assert market.usd.balanceOf(market.payer) == 10 * DOLLAR - 2 * PRICE
    market.splitter.distribute(market.offer.asset, market.usd, sender=market.stranger)
    assert market.splitter.balanceOf(market.developer, market.usd) == 2 * PRICE * 1_000 // 10_000


def test_a_front_runner_submitting_the_authorization_first_changes_only_who_paid_gas(market: Market):
    auth = parse_exact(decode_header(sdk_header(market)), market.offer)
    v, r, s = auth.signature[64], auth.signature[:32], auth.signature[32:64]
    market.usd.transferWithAuthorization(
        auth.payer,
        auth.to,
        auth.value,
        auth.valid_after,
        auth.valid_before,
        auth.nonce,
        v,
        r,
        s,
        sender=market.stranger,
    )
    tx = asyncio.run(accept_exact(market.journal, market.client, auth, market.offer))  # the front-runner's tx
    assert market.usd.balanceOf(market.offer.pay_to) == PRICE  # paid once, to the asset
    assert market.journal.get(exact_key(auth)).payload["transaction"] == tx  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"amount": str(PRICE - 1)}, "wrong_amount"),  # under-payment
        ({"amount": str(PRICE + 1)}, "wrong_amount"),  # exact means exact
        ({"payTo": "0x" + "11" * 20}, "wrong_payee"),  # to the service's or anybody's own address
        ({"maxTimeoutSeconds": 10}, "expires_too_soon"),  # too short to land on chain
    ],
)
def test_authorizations_for_something_else_are_refused_before_any_transaction(market: Market, change: dict, code: str):
    requirements = {**market.offer.requirements(), **change}
    payment = decode_header(sdk_header(market, requirements))
    payment["accepted"] = market.offer.requirements()  # claims to accept the real offer
    auth = parse_exact(payment, market.offer)
    nonce_before = market.client.web3.eth.get_transaction_count(market.client.address)
    with pytest.raises(PaymentRejectedError) as refused:
        asyncio.run(accept_exact(market.journal, market.client, auth, market.offer))
    assert refused.value.code == code
    assert market.client.web3.eth.get_transaction_count(market.client.address) == nonce_before
    assert market.usd.balanceOf(market.offer.pay_to) == 0


def test_a_forged_or_unfunded_authorization_pays_nothing(market: Market):
    forged = parse_exact(decode_header(sdk_header(market, account=market.stranger)), market.offer)
    forged = dataclasses.replace(forged, payer=market.payer.address)  # signed by the stranger, charged to the payer
    with pytest.raises(PaymentRejectedError) as refused:
        verify_exact(forged, market.offer)
    assert refused.value.code == "wrong_signer"
    broke = parse_exact(decode_header(sdk_header(market, account=market.stranger)), market.offer)  # no pUSD
    with pytest.raises(PaymentRejectedError) as failed:
        asyncio.run(accept_exact(market.journal, market.client, broke, market.offer))
    assert failed.value.code == "payment_failed"
    assert market.journal.get(exact_key(broke)).stage == "x402-refused"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda p: p.update(x402Version=1), "x402Version"),
        (lambda p: p["accepted"].update(scheme="upto"), "exact"),
        (lambda p: p["accepted"].update(network="eip155:1"), "accepted.network"),
        (lambda p: p["accepted"].update(asset="0x" + "22" * 20), "accepted.asset"),
        (lambda p: p.update(payload={"signature": "0x00"}), "no EIP-3009 authorization"),
        (lambda p: p["payload"].update(signature="0x1234"), "payload.signature is 2 bytes"),
        (lambda p: p["payload"]["authorization"].update(nonce="0xab"), "authorization.nonce is 1 bytes"),
        (lambda p: p["payload"]["authorization"].update(value="ten"), "value is not an integer"),
        (lambda p: p["payload"]["authorization"].update(value=str(2**256)), "value is out of range"),
        (lambda p: p["payload"]["authorization"].update(to="nowhere"), "authorization.to is not 0x"),
    ],
)
def test_malformed_payments_say_what_is_wrong(market: Market, mutate: Any, message: str):
    payment = decode_header(sdk_header(market))
    mutate(payment)
    with pytest.raises(PaymentHeaderError, match=message):
        parse_exact(payment, market.offer)


def test_the_settlement_daemons_sweeper_moves_paid_views_into_the_split_once_per_asset(market: Market):
    from agents.daemons.settle import SweepStage
    from agents.runtime.stage import Done

    for _ in range(3):
        auth = parse_exact(decode_header(sdk_header(market)), market.offer)
        asyncio.run(accept_exact(market.journal, market.client, auth, market.offer))
    sweeper = SweepStage(market.journal, market.client, worker="test/sweeper")
    paid = market.journal.at_stage(PAID)
    assert len(paid) == 3
    nonce = market.client.web3.eth.get_transaction_count(market.client.address)
    outcomes = asyncio.run(sweeper.process(paid))
    assert all(isinstance(o, Done) and o.updates["sweep_tx"] for o in outcomes) and len(outcomes) == 3
    # one sweep for the three, then one distribution
    assert market.client.web3.eth.get_transaction_count(market.client.address) == nonce + 2
    assert market.splitter.pendingRevenueOf(market.offer.asset, market.usd) == 0
    assert market.splitter.balanceOf(market.developer, market.usd) == 3 * PRICE * 1_000 // 10_000
    # a payment someone else swept first is swept all the same: its receiver pays only into its asset
    auth = parse_exact(decode_header(sdk_header(market)), market.offer)
    asyncio.run(accept_exact(market.journal, market.client, auth, market.offer))
    market.licenses.sweepPayments(market.offer.asset, market.usd, sender=market.stranger)
    (late,) = asyncio.run(sweeper.process([j for j in market.journal.at_stage(PAID) if j.key == exact_key(auth)]))
    assert isinstance(late, Done) and late.updates["sweep_tx"] is None


def test_a_server_whose_key_cannot_pay_gas_refuses_the_payment_and_serves_nothing(market: Market):
    """A settling key without gas money: the node refuses its transaction, the payer is told
    `payment_failed` (no use served), and nothing moved."""
    broke = ChainClient(
        market.client.web3,
        Account.create(),
        market.journal,
        {n: c.address for n, c in market.client.contracts.items()},
        load_abis(project_root(), CORE),
    )
    asyncio.run(broke.start())
    auth = parse_exact(decode_header(sdk_header(market)), market.offer)
    with pytest.raises(PaymentRejectedError) as failed:
        asyncio.run(accept_exact(market.journal, broke, auth, market.offer))
    assert failed.value.code == "payment_failed"
    assert market.usd.balanceOf(market.offer.pay_to) == 0
