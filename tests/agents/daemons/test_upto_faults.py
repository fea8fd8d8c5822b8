"""What could make an x402 `upto` payment charge twice, charge nothing for work done, or stop
charging (`agents.api.upto`, `agents.daemons.charge`), on the chain under test with the real
Permit2 and proxy, the real journal and the service's real key. Found by an attacker's review:

- a signature with v as parity (0/1), which Permit2's `ecrecover` refuses, is settled all the same;
- a claim whose request write was lost, then a retry with a new permit: the request is charged once;
- a request the generator has not reached when its permit runs out is cancelled, not made for free;
- however many payments wait, each is looked at (the scan goes round);
- a payer's permits waiting to be charged count together against its balance and allowance, and a
  payer with code (whose wallet would decide at settlement) is refused;
- paid requests without a token to pay in are closed (503), never free."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from agents.api.exact import ExactToken
from agents.api.paywall import PaymentRejectedError
from agents.api.upto import (
    KIND,
    MAX_OUTSTANDING,
    MIN_VALIDITY_S,
    UptoOffer,
    accept_upto,
    check_permit_on_chain,
    parse_upto,
    upto_key,
)
from agents.app.wiring import Parts
from agents.core.metering import DEFAULT_PRICING, RequestPricing
from agents.core.permits import PERMIT2_ADDRESS, UPTO_PROXY_ADDRESS, UptoPermit
from agents.core.requests import GenerationRequest
from agents.core.toolchain import project_root
from agents.daemons.charge import UptoStage
from agents.deploy.deployment import DEV_TOKEN
from agents.runtime import jobs
from agents.runtime.stage import Done
from tests.agents.daemons.test_api import run_api

pytestmark = pytest.mark.chain

PRICING = RequestPricing.from_json(project_root() / DEFAULT_PRICING)


class Market:
    def __init__(self, parts: Parts, project: Any, local_chain: Any, chain: Any, operator: Any) -> None:
        self.parts, self.chain, self.operator = parts, chain, operator
        self.usd = project.DevUsd.at(local_chain.addresses[DEV_TOKEN])
        self.token = ExactToken(str(self.usd.address), "Proofmint Dev USD", "2")
        self.client = parts.chain()

    def offer(self, request: GenerationRequest) -> UptoOffer:
        return UptoOffer(PRICING.maximum(request), self.token, self.operator.address, int(self.chain.chain_id))

    def permit(
        self, payer: Any, offer: UptoOffer, nonce: int, *, deadline: int | None = None, parity: bool = False
    ) -> UptoPermit:
        from eth_account import Account

        fields: dict[str, Any] = {
            "payer": payer.address, "token": self.usd.address, "amount": offer.maximum, "spender": UPTO_PROXY_ADDRESS,
            "nonce": nonce, "deadline": deadline or int(time.time()) + 3_000, "to": self.operator.address,
            "facilitator": self.operator.address, "valid_after": 0, "signature": b"",
        }  # fmt: skip
        signature = bytes(
            Account.from_key(payer.private_key)
            .unsafe_sign_hash(UptoPermit(**fields).digest(int(self.chain.chain_id)))
            .signature
        )
        if parity:
            signature = signature[:64] + bytes([signature[64] - 27])
        return UptoPermit(**{**fields, "signature": signature})

    def header(self, permit: UptoPermit, offer: UptoOffer) -> dict[str, Any]:
        """The decoded PAYMENT-SIGNATURE a client sends for `permit`."""
        return {
            "x402Version": 2,
            "accepted": offer.requirements(),
            "payload": {
                "signature": "0x" + permit.signature.hex(),
                "permit2Authorization": {
                    "from": permit.payer, "spender": permit.spender, "nonce": str(permit.nonce),
                    "deadline": str(permit.deadline),
                    "permitted": {"token": permit.token, "amount": str(permit.amount)},
                    "witness": {"to": permit.to, "facilitator": permit.facilitator, "validAfter": "0"},
                },
            },
        }  # fmt: skip


@pytest.fixture
def market(parts: Parts, project: Any, local_chain: Any, chain: Any, accounts: Any) -> Market:
    made = Market(parts, project, local_chain, chain, accounts[0])
    for payer in (accounts[5], accounts[6]):
        made.usd.approve(PERMIT2_ADDRESS, 2**256 - 1, sender=payer)
    return made


def made(journal: Any, key: str, stage: str = jobs.REJECTED) -> None:
    """The request's job made an image and stopped at `stage` (the curator rejected it, say)."""
    journal.advance([key], jobs.REQUESTED, stage, updates={key: {"sha256": "ab" * 32, "lineage": {"steps": 25}}})


def test_a_parity_signature_settles_and_a_lost_write_then_a_retry_charges_once(market: Market, accounts: Any) -> None:
    payer, journal = accounts[5], market.parts.journal
    request = GenerationRequest("a red circle", 101)
    offer = market.offer(request)
    request_key = jobs.request_key(request, payer.address)
    before = market.usd.balanceOf(payer)

    async def main() -> tuple[str, str]:
        await market.client.start()
        # the API wrote the first permit's claim, then died before the request's job
        lost = market.permit(payer, offer, 5_001)
        claim = {"permit": lost.as_json(), "request": request_key, "requester": payer.address}
        journal.submit(upto_key(lost), KIND, claim, stage=jobs.UPTO_AUTHORISED)
        # the client retried with a new permit, its wallet signing v as parity (0/1)
        retry = parse_upto(market.header(market.permit(payer, offer, 5_002, parity=True), offer), offer)
        assert retry.signature[64] in (27, 28)  # as Permit2's ecrecover takes it
        key, new, payment = await accept_upto(journal, market.client, retry, offer, request)
        assert new and key == request_key
        made(journal, key)
        stage = UptoStage(journal, market.client, PRICING, worker="w")
        assert await stage.price_due() == 1
        (outcome,) = await stage.process([journal.get(payment)])
        assert isinstance(outcome, Done) and outcome.stage is None and outcome.updates["transaction"], outcome
        return upto_key(lost), payment

    lost, payment = asyncio.run(main())
    assert journal.get(lost).stage == jobs.UPTO_VOID and "paid by another permit" in journal.get(lost).payload["reason"]
    assert market.usd.balanceOf(payer) == before - int(journal.get(payment).payload["charge"]["total"])


def test_a_request_not_reached_before_its_permit_runs_out_is_cancelled_not_made_free(
    market: Market, accounts: Any
) -> None:
    payer, journal = accounts[5], market.parts.journal
    request = GenerationRequest("a green square", 102)
    offer = market.offer(request)

    async def main() -> tuple[str, str]:
        permit = market.permit(payer, offer, 5_101, deadline=int(time.time()) + MIN_VALIDITY_S + 5)
        key, _, payment = await accept_upto(journal, market.client, permit, offer, request)
        stage = UptoStage(journal, market.client, PRICING, worker="w")
        assert await stage.price_due() == 0  # still time: it waits
        assert await stage.price_due(now=permit.deadline - 60) == 1
        return key, payment

    key, payment = asyncio.run(main())
    assert journal.get(key).stage == jobs.CANCELLED  # the generator will not make it
    assert "permit ran out" in journal.get(key).payload["reason"]
    assert journal.get(payment).payload["charge"]["total"] == "0"


def test_every_waiting_payment_is_looked_at_however_many_wait(market: Market, accounts: Any) -> None:
    payer, journal = accounts[6], market.parts.journal
    waiting: list[str] = []

    async def main() -> str:
        for seed in range(7):  # requests in review: their payments wait
            request = GenerationRequest("held", 200 + seed)
            offer = market.offer(request)
            key, _, _ = await accept_upto(
                journal, market.client, market.permit(payer, offer, 5_200 + seed), offer, request
            )
            made(journal, key, jobs.REVIEW)
            waiting.append(key)
        request = GenerationRequest("a red circle", 300)
        offer = market.offer(request)
        key, _, payment = await accept_upto(journal, market.client, market.permit(payer, offer, 5_300), offer, request)
        made(journal, key)
        stage = UptoStage(journal, market.client, PRICING, worker="w", scan_limit=3)
        for _ in range(3):  # a page of 3 a call, round the stage: the done one's turn comes
            await stage.price_due()
        return payment

    payment = asyncio.run(main())
    assert journal.get(payment).stage == jobs.UPTO_CHARGING


def test_a_payer_s_waiting_permits_count_together_and_a_payer_with_code_is_refused(
    market: Market, project: Any, accounts: Any
) -> None:
    journal, operator = market.parts.journal, accounts[0]
    payer = accounts[8]  # holds exactly two maximums
    first, second, third = (GenerationRequest("a red circle", 400 + i) for i in range(3))
    offer = market.offer(first)
    held = market.usd.balanceOf(payer)
    market.usd.transfer(operator, held - 2 * offer.maximum, sender=payer)
    market.usd.approve(PERMIT2_ADDRESS, 2**256 - 1, sender=payer)

    async def main() -> None:
        await accept_upto(journal, market.client, market.permit(payer, offer, 5_401), offer, first)
        await accept_upto(journal, market.client, market.permit(payer, market.offer(second), 5_402),
                          market.offer(second), second)  # fmt: skip
        with pytest.raises(PaymentRejectedError) as broke:  # each maximum is still spoken for
            await accept_upto(journal, market.client, market.permit(payer, market.offer(third), 5_403),
                              market.offer(third), third)  # fmt: skip
        assert broke.value.code == "insufficient_funds" and "waiting to be charged" in str(broke.value)
        for n in range(MAX_OUTSTANDING - 2):  # a payer may keep only so many waiting
            fake = market.permit(payer, offer, 6_000 + n)
            journal.submit(upto_key(fake), KIND, {"permit": {**fake.as_json(), "amount": "0"}, "request": "req-x",
                           "requester": payer.address}, stage=jobs.UPTO_AUTHORISED)  # fmt: skip
        with pytest.raises(PaymentRejectedError) as many:
            await accept_upto(journal, market.client, market.permit(payer, market.offer(third), 5_404),
                              market.offer(third), third)  # fmt: skip
        assert many.value.code == "too_many_outstanding"
        contract = market.permit(payer, offer, 5_405)
        contract = UptoPermit(**{**contract.__dict__, "payer": str(market.usd.address)})  # an address with code
        with pytest.raises(PaymentRejectedError) as coded:
            await check_permit_on_chain(market.client, contract)
        assert coded.value.code == "payer_has_code"

    asyncio.run(main())


def test_paid_requests_without_a_token_are_closed_not_free(parts: Parts, tmp_path: Path) -> None:
    async def scenario(session: aiohttp.ClientSession, server: TestServer, deps: Any) -> None:
        assert deps.exact_token is None
        async with session.post(server.make_url("/v1/requests"), json={"prompt": "a red circle"}) as r:
            assert r.status == 503 and (await r.json())["error"]["code"] == "payments_unavailable"
        assert deps.journal.counts().get(jobs.REQUESTED, 0) == 0

    run_api(parts, tmp_path, scenario, accept_requests=True, request_pricing=PRICING, settles_exact=False)
