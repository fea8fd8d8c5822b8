"""Generation requests paid with x402 `upto` (`agents.api.upto`, `agents.daemons.charge`): the
`x402` package's own client (`UptoEvmScheme`, its `requests` wrapper) signs a Permit2 permit for
the request's maximum against the real Permit2 and x402 upto proxy at their canonical addresses
on the chain under test; the agents make and register the image; the settlement daemon charges
what it cost, once, and the payer sees authorised, charged and unused. Replays, short or wrong
permits, a payer without a Permit2 allowance, and a payer who cancels the nonce are refused or
charged nothing; a prompt refused before any compute costs nothing."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from ape import Contract

from agents.api.upto import KIND, upto_key
from agents.app.wiring import Parts, build_agents
from agents.core import costs
from agents.core.metering import DEFAULT_PRICING, RequestPricing
from agents.core.permits import PERMIT2_ADDRESS, UPTO_PROXY_ADDRESS, UptoPermit
from agents.core.requests import GenerationRequest
from agents.core.toolchain import project_root
from agents.deploy.deployment import DEV_TOKEN
from agents.runtime import jobs
from tests.agents.daemons.helpers import ASSET_PROMPTS, FRONT
from tests.agents.daemons.test_api import documented, run_api

pytestmark = pytest.mark.chain

PERMIT2_ABI = [
    {"type": "function", "name": "invalidateUnorderedNonces", "stateMutability": "nonpayable",
     "inputs": [{"name": "wordPos", "type": "uint256"}, {"name": "mask", "type": "uint256"}], "outputs": []},
]  # fmt: skip


def decode(header: str) -> dict[str, Any]:
    return json.loads(base64.b64decode(header))


def encode(obj: dict[str, Any]) -> str:
    return base64.b64encode(json.dumps(obj).encode()).decode()


def stock_upto_post(
    url: str, key: str, body: dict[str, Any], chain_id: int, token: str, most: int
) -> tuple[int, dict[str, str], Any, dict[str, str]]:
    """POST `body` to `url` with the `x402` package's own client paying with `upto` (at most
    `most` of `token`): status, response headers, JSON body, and the headers of the paid
    request it sent."""
    from eth_account import Account
    from x402 import x402ClientSync
    from x402.http.clients import x402_requests
    from x402.mechanisms.evm.upto.client import UptoEvmScheme

    client = x402ClientSync().register("eip155:*", UptoEvmScheme(Account.from_key(key)))
    allowed = {"network": f"eip155:{chain_id}", "asset": token, "max_amount_per_payment": str(most)}
    client.set_spend_controls({"allowed_assets": [allowed]})  # type: ignore[typeddict-item]
    response = x402_requests(client).post(url, json=body, timeout=60)
    return response.status_code, dict(response.headers), response.json(), dict(response.request.headers)


def test_a_stock_x402_client_pays_a_generation_request_with_upto_and_is_charged_what_it_cost(
    parts: Parts, project: Any, local_chain: Any, accounts: Any, chain: Any, tmp_path: Path
) -> None:
    operator, payer, broke, canceller = accounts[0], accounts[5], accounts[6], accounts[7]
    usd = project.DevUsd.at(local_chain.addresses[DEV_TOKEN])
    pricing = RequestPricing.from_json(project_root() / DEFAULT_PRICING)
    for who in (payer, canceller):
        usd.approve(PERMIT2_ADDRESS, 2**256 - 1, sender=who)  # a Permit2 user's one-time approval
    body = {"prompt": ASSET_PROMPTS[0], "seed": 7_000}  # a seed the curator accepts (`make_assets`)
    maximum = pricing.maximum(GenerationRequest(ASSET_PROMPTS[0], 7_000))
    before = {a.address: usd.balanceOf(a) for a in (payer, operator, canceller)}
    sent: dict[str, Any] = {}

    def pay(url: str, key: str, request: dict[str, Any]) -> tuple[int, dict[str, str], Any, dict[str, str]]:
        return stock_upto_post(url, key, request, int(chain.chain_id), str(usd.address), 10**6)

    async def scenario(session: aiohttp.ClientSession, server: TestServer, deps: Any) -> None:
        url = str(server.make_url("/v1/requests"))
        async with session.post(url, json=body) as r:  # unpaid: the offer
            assert r.status == 402 and (await documented(r))["error"]["code"] == "payment_required"
            required = decode(r.headers["PAYMENT-REQUIRED"])
        (offer,) = required["accepts"]
        assert (offer["scheme"], offer["amount"], offer["payTo"], offer["asset"]) == (
            "upto",
            str(maximum),
            operator.address,
            usd.address,
        )
        assert offer["extra"]["facilitatorAddress"] == operator.address
        assert offer["extra"]["assetTransferMethod"] == "permit2"
        async with session.get(server.make_url("/v1/x402/supported")) as r:
            kinds = {k["scheme"]: k for k in (await documented(r))["kinds"]}
        assert kinds["upto"]["extra"]["facilitatorAddress"] == operator.address

        status, headers, answer, request_headers = await asyncio.to_thread(pay, url, payer.private_key, body)
        assert status == 202 and answer["new"], answer
        settlement = decode(headers["PAYMENT-RESPONSE"])
        assert settlement["success"] and settlement["payer"] == payer.address
        assert settlement["extra"]["settlement"] == "deferred" and settlement["extra"]["authorised"] == str(maximum)
        sent["key"], sent["payment"] = answer["key"], answer["payment"]
        signed = request_headers["PAYMENT-SIGNATURE"]
        sent["header"] = signed
        permit = decode(signed)["payload"]["permit2Authorization"]
        assert permit["spender"] == UPTO_PROXY_ADDRESS and permit["witness"]["to"] == operator.address

        async with session.post(url, json=body, headers={"PAYMENT-SIGNATURE": signed}) as r:  # a replay
            assert r.status == 402 and (await r.json())["error"]["code"] == "replayed"
        async with session.get(server.make_url(f"/v1/requests/{answer['key']}")) as r:
            status_now = await documented(r)
        assert status_now["requester"] == payer.address
        assert status_now["payment"]["state"] == "authorised" and status_now["payment"]["charged"] is None

        # the same request again, newly signed: not paid twice (the permit is not used)
        status, headers, again, _ = await asyncio.to_thread(pay, url, payer.private_key, body)
        assert status == 200 and not again["new"] and again["key"] == answer["key"]
        assert decode(headers["PAYMENT-RESPONSE"])["extra"]["settlement"] == "not used"
        assert deps.journal.get(again["payment"]).stage == jobs.UPTO_VOID

        # a payer whose token does not let Permit2 spend: refused before anything is journaled
        status, _, refused, _ = await asyncio.to_thread(pay, url, broke.private_key, {**body, "seed": 1})
        assert status == 402 and refused["error"]["code"] == "permit2_allowance_required", refused
        assert "approve" in refused["error"]["message"]

        # a permit for less than the maximum, or naming another payee, is not this offer's
        forged = decode(signed)
        forged["accepted"]["amount"] = str(maximum - 1)
        async with session.post(url, json={**body, "seed": 2}, headers={"PAYMENT-SIGNATURE": encode(forged)}) as r:
            assert r.status == 402 and (await r.json())["error"]["code"] == "bad_payment"
        forged = decode(signed)
        forged["payload"]["permit2Authorization"]["witness"]["to"] = canceller.address
        forged["payload"]["permit2Authorization"]["nonce"] = "7"
        async with session.post(url, json={**body, "seed": 2}, headers={"PAYMENT-SIGNATURE": encode(forged)}) as r:
            assert r.status == 402 and (await r.json())["error"]["code"] == "wrong_payee"
        async with session.post(url, json={**body, "requester": "someone"}, headers={"PAYMENT-SIGNATURE": signed}) as r:
            assert r.status == 422 and (await r.json())["error"]["code"] == "bad_request_fields"

        # a prompt refused before any compute: its payment settles at zero
        status, _, blocked, _ = await asyncio.to_thread(
            pay, url, payer.private_key, {"prompt": "a naked magenta circle", "seed": 3}
        )
        assert status == 202
        sent["blocked"] = blocked["payment"]

        # a payer who cancels the nonce before the charge: refused, nothing taken
        status, _, cancelled, _ = await asyncio.to_thread(
            pay, url, canceller.private_key, {"prompt": ASSET_PROMPTS[1], "seed": 4}
        )
        assert status == 202
        sent["cancelled"] = cancelled["payment"]
        nonce = int(deps.journal.get(cancelled["payment"]).payload["permit"]["nonce"])
        permit2 = Contract(PERMIT2_ADDRESS, abi=PERMIT2_ABI)
        permit2.invalidateUnorderedNonces(nonce >> 8, 1 << (nonce & 0xFF), sender=canceller)

        agents = build_agents(parts, names=[*FRONT, "settlement"], register_batch=2, linger_s=0.2, idle=0.05,
                              withdraw_every_s=None)  # fmt: skip
        await agents.start()
        try:
            payments = [sent["payment"], sent["blocked"], sent["cancelled"]]
            await agents.until(lambda _: all(deps.journal.get(k).stage in jobs.FINAL for k in payments), within_s=600)
        finally:
            await agents.stop()

        async with session.get(server.make_url(f"/v1/requests/{sent['key']}")) as r:
            done = await documented(r)
        paid = done["payment"]
        assert paid["state"] == "settled" and paid["transaction"], paid
        charged, unused = int(paid["charged"]), int(paid["unused"])
        assert 0 < charged < maximum and charged + unused == maximum
        charge = paid["charge"]
        request_job = deps.journal.get(sent["key"])
        receipt = chain.provider.web3.eth.get_transaction_receipt(request_job.payload["register_tx"])
        assert (charge["steps"], charge["pixels"]) == (25, 32 * 32)
        assert (charge["batchGas"], charge["batchSize"]) == (receipt["gasUsed"], request_job.payload["register_batch"])
        assert int(charge["batch"]) == pricing.gas(-(-receipt["gasUsed"] // charge["batchSize"]))
        assert charged == pricing.base + pricing.compute(25, 1024) + int(charge["batch"])
        settle = chain.provider.web3.eth.get_transaction_receipt(paid["transaction"])
        assert settle["from"] == operator.address and settle["to"] == UPTO_PROXY_ADDRESS
        sent["charged"] = charged
        # the charge's own transaction is a cost of the request it paid for (stage `settle`)
        share = deps.journal.get(sent["payment"]).payload[costs.SETTLE]
        assert (share["gas"], share["jobs"]) == (settle["gasUsed"], 1)
        assert share["fee_wei"] == settle["gasUsed"] * settle["effectiveGasPrice"]
        async with session.get(server.make_url("/v1/costs")) as r:
            report = await documented(r)
        assert report["byStage"]["settle"]["gas"] == settle["gasUsed"]

        blocked_payment = deps.journal.get(sent["blocked"])
        assert blocked_payment.stage == jobs.UPTO_SETTLED and blocked_payment.payload["charge"]["total"] == "0"
        assert blocked_payment.payload["transaction"] is None
        cancelled_payment = deps.journal.get(sent["cancelled"])
        assert cancelled_payment.stage == jobs.UPTO_REFUSED, cancelled_payment
        assert "InvalidNonce" in cancelled_payment.payload["reason"]

    run_api(parts, tmp_path, scenario, accept_requests=True, request_pricing=pricing)
    charged = sent["charged"]
    assert usd.balanceOf(payer) == before[payer.address] - charged  # the rest never left the wallet
    assert usd.balanceOf(operator) == before[operator.address] + charged
    assert usd.balanceOf(canceller) == before[canceller.address]
    assert sum(1 for job in parts.journal.in_stages([jobs.UPTO_SETTLED], KIND) if job.payload.get("transaction")) == 1
    permit = UptoPermit.from_json(parts.journal.get(sent["payment"]).payload["permit"])
    assert upto_key(permit) == sent["payment"]


def signed_permit(chain: Any, usd: Any, payer: Any, service: str, nonce: int, amount: int) -> UptoPermit:
    from eth_account import Account

    fields = {
        "payer": payer.address, "token": usd.address, "amount": amount, "spender": UPTO_PROXY_ADDRESS,
        "nonce": nonce, "deadline": chain.pending_timestamp + 3_600, "to": service, "facilitator": service,
        "valid_after": 0, "signature": b"",
    }  # fmt: skip
    digest = UptoPermit(**fields).digest(int(chain.chain_id))
    return UptoPermit(
        **{**fields, "signature": bytes(Account.from_key(payer.private_key).unsafe_sign_hash(digest).signature)}
    )


def test_the_charge_survives_a_crash_after_its_transaction_and_prices_orphans_and_stragglers(
    parts: Parts, project: Any, local_chain: Any, accounts: Any, chain: Any
) -> None:
    """A settlement daemon that died after its settle transaction was mined and before the
    journal heard of it: the next life finds the transaction (same calldata, from this key) and
    journals it, charging once. A payment whose request never reached the journal is void after
    `ORPHAN_AFTER_S`; one whose request waits on a person is charged what it consumed before its
    permit runs out; two workers pricing the same payment price it once."""
    from agents.daemons.charge import ORPHAN_AFTER_S, UptoStage
    from agents.runtime.chain import tx_hash_hex
    from agents.runtime.stage import Done

    operator, payer = accounts[0], accounts[5]
    usd = project.DevUsd.at(local_chain.addresses[DEV_TOKEN])
    usd.approve(PERMIT2_ADDRESS, 2**256 - 1, sender=payer)
    pricing = RequestPricing.from_json(project_root() / DEFAULT_PRICING)
    journal = parts.journal
    client = parts.chain()
    before = usd.balanceOf(payer)

    async def main() -> None:
        await client.start()
        stage = UptoStage(journal, client, pricing, worker="w1")
        # 1. a charge whose transaction went out in a previous life
        permit = signed_permit(chain, usd, payer, operator.address, 901, 50_000)
        key = upto_key(permit)
        charge = {"total": "30000", "fromBlock": int(chain.blocks.head.number)}
        journal.submit(key, KIND, {"permit": permit.as_json(), "request": "req-gone", "charge": charge},
                       stage=jobs.UPTO_CHARGING)  # fmt: skip
        sent = await client.sender.send_and_wait(UPTO_PROXY_ADDRESS, permit.settle_calldata(30_000), label="earlier")
        (outcome,) = await stage.process([journal.get(key)])
        assert isinstance(outcome, Done) and outcome.stage is None
        assert outcome.updates["transaction"] == tx_hash_hex(sent["transactionHash"])

        # 2. an orphan: its request never journaled
        orphan = signed_permit(chain, usd, payer, operator.address, 902, 50_000)
        journal.submit(upto_key(orphan), KIND, {"permit": orphan.as_json(), "request": "req-never"},
                       stage=jobs.UPTO_AUTHORISED)  # fmt: skip
        created = journal.get(upto_key(orphan)).created_at
        assert await stage.price_due(now=created + 1) == 0
        await stage.price_due(now=created + ORPHAN_AFTER_S + 1)
        assert journal.get(upto_key(orphan)).stage == jobs.UPTO_VOID

        # 3. a request in review: charged what it consumed once the permit is about to run out
        held = GenerationRequest("a blue square, held", 9)
        straggler = signed_permit(chain, usd, payer, operator.address, 903, 50_000)
        request_key, _ = jobs.submit_request(
            journal, held, requester=payer.address, source="api", extra={"payment": upto_key(straggler)}
        )
        journal.advance([request_key], jobs.REQUESTED, jobs.REVIEW,
                        updates={request_key: {"sha256": "ab" * 32, "lineage": {"steps": 25}}})  # fmt: skip
        journal.submit(upto_key(straggler), KIND, {"permit": straggler.as_json(), "request": request_key},
                       stage=jobs.UPTO_AUTHORISED)  # fmt: skip
        other = UptoStage(journal, client, pricing, worker="w2")
        assert await stage.price_due() == 0  # an hour left: it waits
        late = straggler.deadline - 60
        assert await stage.price_due(now=late) == 1
        assert await other.price_due(now=late) == 0  # priced once
        priced = journal.get(upto_key(straggler))
        assert priced.stage == jobs.UPTO_CHARGING and priced.payload["charge"]["total"] == str(2_000 + 25_600)
        assert priced.payload["charge"]["requestStage"] == jobs.REVIEW

    asyncio.run(main())
    assert usd.balanceOf(payer) == before - 30_000  # the crashed charge, once
