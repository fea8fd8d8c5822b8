"""The HTTP API over the agents' real parts: assets the pipeline registered on the chain under
test, licence terms and escrow set on chain, vouchers checked against the deployed
LicenseManager and settled by the settlement daemon.

- pay per use (x402): 402 with the offer, a signed cumulative voucher unlocks the image, and a
  forged, replayed, expired, mis-addressed or under-funded payment never does (CHECKLIST 18),
  also when two requests race for the same escrow; what was accepted is settled on chain;
- the API is one service: only vouchers naming it and escrow with it pay, a pending withdrawal
  counts as gone, deactivated terms take no new vouchers;
- every read endpoint answers what the chain and the journal say;
- bad input is a JSON 4xx, never a 500 (CHECKLIST 17).
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from PIL import Image

from agents.api.client import PayingClient, PaymentError
from agents.api.openapi import document
from agents.api.paywall import MIN_DEADLINE_S
from agents.api.serve import DEPS, api_app
from agents.app.wiring import Parts, build_agents
from agents.core import costs
from agents.core.requests import GenerationRequest
from agents.core.settlement import SignedVoucher
from agents.core.vouchers import Voucher, sign_voucher
from agents.runtime import jobs
from agents.storage.cid import Cid
from tests.agents.api.schema_check import check_answer
from tests.agents.daemons.helpers import ASSET_PROMPTS as PROMPTS
from tests.agents.daemons.helpers import ETH, FINNEY, attach_terms, contract, make_assets

pytestmark = pytest.mark.chain

DOC = document()


Scenario = Callable[[aiohttp.ClientSession, TestServer, Any], Awaitable[None]]


def run_api(parts: Parts, tmp_path: Path, scenario: Scenario, *, data_trees: Any = None, **app_options: Any) -> None:
    async def main() -> None:
        app = api_app(parts, tmp_path / "api", data_trees=data_trees, **app_options)
        server = TestServer(app)
        await server.start_server()  # the app opens its resources (the channel book) ...
        try:
            async with aiohttp.ClientSession() as session:
                await scenario(session, server, app[DEPS])
        finally:
            await server.close()  # ... and closes them

    asyncio.run(main())


async def documented(r: aiohttp.ClientResponse) -> Any:
    """The JSON of an answer, checked against the schema its operation documents."""
    body = await r.json()
    check_answer(DOC, r.method, r.url.path, r.status, body)
    return body


def decode(header: str) -> dict[str, Any]:
    return json.loads(base64.b64decode(header))


def payment_header(voucher: SignedVoucher, offer: dict[str, Any]) -> str:
    body = {"x402Version": 2, "accepted": offer, "payload": voucher.as_json()}
    return base64.b64encode(json.dumps(body).encode()).decode()


def test_pay_per_use_unlocks_content_only_for_a_good_covered_voucher(
    parts: Parts, project: Any, local_chain: Any, accounts: Any, chain: Any, tmp_path: Path
):
    operator, payer, stranger, broke = accounts[0], accounts[5], accounts[7], accounts[8]
    assets = asyncio.run(make_assets(parts, str(operator.address)))
    licenses = contract(project, local_chain, "LicenseManager")
    splitter = contract(project, local_chain, "RoyaltySplitter")
    digest = bytes.fromhex(assets[0].payload["sha256"])
    other = bytes.fromhex(assets[1].payload["sha256"])
    terms_id = attach_terms(licenses, digest, operator, per_use=FINNEY)
    other_terms = attach_terms(licenses, other, operator, per_use=FINNEY)
    service = str(operator.address)  # the API's service: the operator, whose key the parts hold
    licenses.deposit(ETH, service, 3 * FINNEY, sender=payer, value=3 * FINNEY)  # covers three uses
    png = parts.store.read(Cid.parse(assets[0].payload["cid"]))
    chain_id, manager = int(chain.chain_id), str(licenses.address)
    deadline = int(chain.pending_timestamp) + 2 * MIN_DEADLINE_S  # the paywall takes a day at least

    def signed(amount: int, *, key: Any = payer, terms: int = terms_id, asset: bytes = digest, until: int = deadline):
        v = Voucher(str(payer.address), service, asset, terms, amount, until)
        return SignedVoucher(v, sign_voucher(v, key.private_key, chain_id, manager))

    async def scenario(session: aiohttp.ClientSession, server: TestServer, deps: Any) -> None:
        url = str(server.make_url(f"/v1/assets/0x{digest.hex()}/content"))
        async with session.get(url) as r:  # no payment: the offer, in x402's shape
            assert r.status == 402
            required = decode(r.headers["PAYMENT-REQUIRED"])
            body = await r.json()
        assert body["error"]["code"] == "payment_required" and body["error"]["details"]["x402"] == required
        assert required["x402Version"] == 2 and required["resource"]["url"] == url
        (offer,) = required["accepts"]
        assert offer["scheme"] == "proofmint-voucher" and offer["network"] == f"eip155:{chain_id}"
        assert offer["amount"] == str(FINNEY) and offer["payTo"] == service and offer["asset"] == ETH
        assert offer["extra"]["service"] == service and offer["extra"]["settlementContract"] == manager
        assert offer["extra"]["termsId"] == terms_id and offer["extra"]["eip712"]["domain"]["chainId"] == chain_id

        async def pay(voucher: SignedVoucher) -> tuple[int, dict[str, Any], bytes]:
            async with session.get(url, headers={"PAYMENT-SIGNATURE": payment_header(voucher, offer)}) as r:
                body = await r.read()
                return r.status, dict(r.headers), body

        first = signed(FINNEY)
        status, headers, body = await pay(first)
        assert status == 200 and body == png and headers["Content-Type"] == "image/png"
        settlement = decode(headers["PAYMENT-RESPONSE"])
        assert settlement["success"] and settlement["payer"] == payer.address
        assert settlement["extra"]["cumulativeAmount"] == str(FINNEY)

        async def refused(voucher: SignedVoucher, code: str, header: str | None = None) -> dict[str, Any]:
            headers = {"PAYMENT-SIGNATURE": header or payment_header(voucher, offer)}
            async with session.get(url, headers=headers) as r:
                assert r.status == 402, await r.text()
                assert "PAYMENT-REQUIRED" in r.headers
                error = (await r.json())["error"]
            assert error["code"] == code, error
            return error

        replay = await refused(first, "replayed_or_short")  # the same voucher again
        assert replay["details"]["acceptedCumulative"] == str(FINNEY)
        await refused(signed(FINNEY + FINNEY // 2), "replayed_or_short")  # less than one more use
        await refused(signed(2 * FINNEY, key=stranger), "wrong_signer")  # forged: another key
        bad = signed(2 * FINNEY)
        await refused(SignedVoucher(bad.voucher, bad.signature[:64]), "bad_signature")  # truncated
        high_s = bytearray(bad.signature)
        s = int.from_bytes(high_s[32:64], "big")
        n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
        high_s[32:64] = (n - s).to_bytes(32, "big")
        high_s[64] = 55 - high_s[64]  # the same signature, malleated: the contract refuses it
        await refused(SignedVoucher(bad.voucher, bytes(high_s)), "bad_signature")
        await refused(signed(2 * FINNEY, until=int(chain.pending_timestamp) + 60), "deadline_too_soon")
        await refused(signed(2**128), "amount_too_large")  # no channel holds it: it could never settle
        await refused(signed(2 * FINNEY, terms=other_terms, asset=other), "bad_payment")  # pays for another asset
        await refused(signed(2 * FINNEY), "bad_payment", header="not base64 at all!")
        await refused(signed(4 * FINNEY), "insufficient_escrow")  # escrow covers 3 uses
        v = Voucher(str(broke.address), service, digest, terms_id, FINNEY, deadline)
        await refused(SignedVoucher(v, sign_voucher(v, broke.private_key, chain_id, manager)), "insufficient_escrow")

        # two requests race for the last unit of escrow: exactly one is served
        results = await asyncio.gather(pay(signed(3 * FINNEY)), pay(signed(3 * FINNEY)))
        assert sorted(status for status, _, _ in results) == [200, 402]

        # the one-call client: catches up from the server's figure, pays the next use
        client = PayingClient(session, payer.private_key, max_per_use=FINNEY, expect_chain_id=chain_id)
        with pytest.raises(PaymentError, match="insufficient_escrow"):  # 4 uses > 3 in escrow
            await client.fetch(url)
        other_url = str(server.make_url(f"/v1/assets/0x{other.hex()}/content"))
        with pytest.raises(PaymentError, match="above the limit"):
            await PayingClient(session, payer.private_key, max_per_use=FINNEY - 1).fetch(other_url)

        # settlement: the daemon settles the newest accepted voucher of the channel on chain
        agents = build_agents(parts, names=["settlement"], linger_s=0.1, idle=0.05, withdraw_every_s=None)
        await agents.start()
        try:
            await agents.until(lambda c: not c.get(jobs.RECEIVED), within_s=300)
        finally:
            await agents.stop()
        # the book re-journals nothing new: every accepted voucher is already there
        assert await deps.paywall.resubmit() == 1

        # the book still says the settled channel owes 3 uses; the paywall reads the chain again
        # before refusing, so one more unit of escrow covers a use on another channel
        licenses.deposit(ETH, service, FINNEY, sender=payer, value=FINNEY)
        paid = await PayingClient(session, payer.private_key, max_per_use=FINNEY).fetch(other_url)
        assert paid.body == parts.store.read(Cid.parse(assets[1].payload["cid"]))
        async with session.get(server.make_url(f"/v1/holders/{payer.address}/escrow")) as r:
            escrow = await r.json()
        assert (escrow["balance"], escrow["promised"]) == (str(FINNEY), str(FINNEY))

    run_api(parts, tmp_path, scenario)
    assert int(licenses.settledOf(payer.address, service, terms_id)) == 3 * FINNEY
    assert int(licenses.escrowOf(payer.address, ETH, service)[0]) == FINNEY  # the last use is not settled yet
    assert int(splitter.totalsOf(ETH)[0]) == 4 * FINNEY  # escrow sits in the splitter: 3 uses settled, 1 not yet
    settled = [j for j in parts.journal.at_stage(jobs.SETTLED)]
    assert len(settled) == 1 and int(settled[0].payload["cumulativeAmount"]) == 3 * FINNEY


def stock_x402_fetch(url: str, key: Any, chain_id: int, token: str, most: int) -> tuple[int, dict[str, str], bytes]:
    """GET `url` with the `x402` package's own client paying with `exact` (at most `most` of
    `token` per payment): status, headers, body."""
    from eth_account import Account
    from x402 import x402ClientSync
    from x402.http.clients import x402_requests
    from x402.mechanisms.evm.exact.client import ExactEvmScheme

    client = x402ClientSync().register("eip155:*", ExactEvmScheme(Account.from_key(key)))
    allowed = {"network": f"eip155:{chain_id}", "asset": token, "max_amount_per_payment": str(most)}
    client.set_spend_controls({"allowed_assets": [allowed]})  # type: ignore[typeddict-item]
    response = x402_requests(client).get(url, timeout=60)
    return response.status_code, dict(response.headers), response.content


def test_a_stock_x402_client_pays_a_view_with_exact_and_the_split_gets_it_once(
    parts: Parts, project: Any, local_chain: Any, accounts: Any, chain: Any, tmp_path: Path
):
    """The `x402` package's own HTTP client (requests, wrapped by `x402_requests`, paying with its
    `ExactEvmScheme`) against the API: it reads the 402, signs an EIP-3009 transfer of the
    terms' price to the asset's receiver, and gets the image; the API settled it from the
    service's key. A sweep then puts the payment into the asset's split, once."""
    from agents.deploy.deployment import DEV_TOKEN

    operator, payer, stranger = accounts[0], accounts[5], accounts[9]
    job = asyncio.run(make_assets(parts, str(operator.address)))[0]
    digest = bytes.fromhex(job.payload["sha256"])
    licenses = contract(project, local_chain, "LicenseManager")
    splitter = contract(project, local_chain, "RoyaltySplitter")
    usd = project.DevUsd.at(local_chain.addresses[DEV_TOKEN])
    cent = 10_000  # pUSD has 6 decimals
    terms_id = attach_terms(licenses, digest, operator, per_use=cent, currency=usd.address)
    receiver = licenses.paymentReceiverOf(digest)
    png = parts.store.read(Cid.parse(job.payload["cid"]))
    before = usd.balanceOf(payer)

    def stock_client_fetch(url: str) -> tuple[int, dict[str, str], bytes]:
        return stock_x402_fetch(url, payer.private_key, int(chain.chain_id), str(usd.address), cent)

    async def scenario(session: aiohttp.ClientSession, server: TestServer, deps: Any) -> None:
        url = str(server.make_url(f"/v1/assets/0x{digest.hex()}/content"))
        async with session.get(url) as r:  # what the stock client is offered: both schemes
            offers = {o["scheme"]: o for o in decode(r.headers["PAYMENT-REQUIRED"])["accepts"]}
        exact = offers["exact"]
        assert exact["payTo"] == receiver and exact["asset"] == usd.address and exact["amount"] == str(cent)
        assert exact["extra"]["name"] == "Proofmint Dev USD" and exact["extra"]["termsId"] == terms_id
        assert "proofmint-voucher" in offers
        status, headers, body = await asyncio.to_thread(stock_client_fetch, url)
        assert status == 200 and body == png, body[:500]
        settlement = decode(headers["PAYMENT-RESPONSE"])
        assert settlement["success"] and settlement["payer"] == payer.address and settlement["transaction"]
        receipt = chain.provider.web3.eth.get_transaction_receipt(settlement["transaction"])
        assert receipt["from"] == operator.address  # the service settled it
        status, _, _ = await asyncio.to_thread(stock_client_fetch, url)  # a second view: a second payment
        assert status == 200

    run_api(parts, tmp_path, scenario)
    assert usd.balanceOf(payer) == before - 2 * cent and usd.balanceOf(receiver) == 2 * cent
    licenses.sweepPayments(digest, usd, sender=stranger)
    assert splitter.pendingRevenueOf(digest, usd) == 2 * cent and usd.balanceOf(receiver) == 0


def test_the_api_is_an_x402_facilitator_for_its_exact_offers(
    parts: Parts, project: Any, local_chain: Any, accounts: Any, chain: Any, tmp_path: Path
):
    """The `x402` package's HTTP facilitator client (`HTTPFacilitatorClientSync`) against the
    API's `/v1/x402`: `/supported` lists both schemes and the settling key, `/verify` says valid
    (or why not) and changes nothing, `/settle` settles once per authorization; requirements a
    caller made up (another payee, another price) are looked up again, not trusted."""
    from eth_account import Account
    from x402 import x402ClientSync
    from x402.http.facilitator_client import HTTPFacilitatorClientSync
    from x402.mechanisms.evm.exact.client import ExactEvmScheme
    from x402.schemas import PaymentRequired

    from agents.deploy.deployment import DEV_TOKEN

    operator, payer, stranger = accounts[0], accounts[5], accounts[9]
    job = asyncio.run(make_assets(parts, str(operator.address)))[0]
    digest = bytes.fromhex(job.payload["sha256"])
    licenses = contract(project, local_chain, "LicenseManager")
    usd = project.DevUsd.at(local_chain.addresses[DEV_TOKEN])
    cent = 10_000
    attach_terms(licenses, digest, operator, per_use=cent, currency=usd.address)

    def facilitate(base: str, required: dict[str, Any]) -> dict[str, Any]:
        facilitator = HTTPFacilitatorClientSync({"url": base + "/v1/x402"})
        supported = facilitator.get_supported()
        offered = PaymentRequired.model_validate(required)
        exact = next(r for r in offered.accepts if r.scheme == "exact")

        def signed(by: Any = payer, requirements: Any = exact) -> Any:
            client = x402ClientSync().register("eip155:*", ExactEvmScheme(Account.from_key(by.private_key)))
            client.set_spend_controls({"allowed_assets": True, "max_amount_per_payment": False})  # type: ignore[typeddict-item]
            return client.create_payment_payload(offered.model_copy(update={"accepts": [requirements]}))

        payment = signed()
        out = {
            "kinds": sorted((k.scheme, k.network) for k in supported.kinds),
            "signers": supported.signers,
            "valid": facilitator.verify(payment, exact),
            "broke": facilitator.verify(signed(accounts[8]), exact),
            "settled": facilitator.settle(payment, exact),
            "again": facilitator.settle(payment, exact),
            "verify_used": facilitator.verify(payment, exact),
        }
        cheap = exact.model_copy(update={"amount": "1"})  # a made-up price: the server's own offer is used
        out["cheap"] = facilitator.verify(signed(payer, cheap), cheap)
        return out

    async def scenario(session: aiohttp.ClientSession, server: TestServer, deps: Any) -> None:
        url = str(server.make_url(f"/v1/assets/0x{digest.hex()}/content"))
        async with session.get(url) as r:
            required = decode(r.headers["PAYMENT-REQUIRED"])
        base = str(server.make_url("")).rstrip("/")
        usd.transfer(stranger, usd.balanceOf(accounts[8]), sender=accounts[8])  # account 8 holds nothing now
        out = await asyncio.to_thread(facilitate, base, required)
        network = f"eip155:{chain.chain_id}"
        assert out["kinds"] == [("exact", network), ("proofmint-voucher", network)]
        assert out["signers"] == {"eip155:*": [operator.address]}
        assert out["valid"].is_valid and out["valid"].payer == payer.address
        assert not out["broke"].is_valid and out["broke"].invalid_reason == "insufficient_funds"
        assert out["settled"].success and out["settled"].transaction.startswith("0x")
        assert not out["again"].success and out["again"].error_reason == "replayed"
        assert not out["verify_used"].is_valid and out["verify_used"].invalid_reason == "replayed"
        assert not out["cheap"].is_valid and out["cheap"].invalid_reason == "invalid_payload"
        assert "accepted.amount" in out["cheap"].invalid_message
        async with session.post(base + "/v1/x402/verify", json={"paymentPayload": {}, "paymentRequirements": {}}) as r:
            assert r.status == 400 and (await r.json())["error"]["message"].startswith("only this server's exact")

    run_api(parts, tmp_path, scenario)
    assert usd.balanceOf(licenses.paymentReceiverOf(digest)) == cent  # one settlement


def test_the_paywall_is_one_service_and_counts_a_pending_withdrawal_as_gone(
    parts: Parts, project: Any, local_chain: Any, accounts: Any, chain: Any, tmp_path: Path
):
    """The API is one service (the operator's address): a voucher naming another service is
    refused even where that service's escrow would cover it; escrow with another service unlocks
    nothing here; escrow asked back (a pending withdrawal) is counted as gone until the request is
    cancelled; terms the creator deactivated take no new vouchers."""
    operator, payer, outsider, other_service = accounts[0], accounts[5], accounts[6], accounts[9]
    assets = asyncio.run(make_assets(parts, str(operator.address)))
    licenses = contract(project, local_chain, "LicenseManager")
    digest = bytes.fromhex(assets[0].payload["sha256"])
    other = bytes.fromhex(assets[1].payload["sha256"])
    terms_id = attach_terms(licenses, digest, operator, per_use=FINNEY)
    other_terms = attach_terms(licenses, other, operator, per_use=FINNEY)
    service, another = str(operator.address), str(other_service.address)
    licenses.deposit(ETH, service, 3 * FINNEY, sender=payer, value=3 * FINNEY)
    licenses.deposit(ETH, another, 10 * FINNEY, sender=payer, value=10 * FINNEY)  # ample, but with another service
    licenses.deposit(ETH, another, 10 * FINNEY, sender=outsider, value=10 * FINNEY)  # none with this service
    png = parts.store.read(Cid.parse(assets[0].payload["cid"]))
    chain_id, manager = int(chain.chain_id), str(licenses.address)
    deadline = int(chain.pending_timestamp) + 2 * MIN_DEADLINE_S  # the paywall takes a day at least

    def signed(who: Any, amount: int, *, to: str = service, terms: int = terms_id, asset: bytes = digest):
        v = Voucher(str(who.address), to, asset, terms, amount, deadline)
        return SignedVoucher(v, sign_voucher(v, who.private_key, chain_id, manager))

    async def scenario(session: aiohttp.ClientSession, server: TestServer, deps: Any) -> None:
        assert deps.paywall.service == service
        url = str(server.make_url(f"/v1/assets/0x{digest.hex()}/content"))
        async with session.get(url) as r:
            (offer,) = decode(r.headers["PAYMENT-REQUIRED"])["accepts"]

        async def pay(voucher: SignedVoucher) -> tuple[int, Any]:
            async with session.get(url, headers={"PAYMENT-SIGNATURE": payment_header(voucher, offer)}) as r:
                if r.status == 200:
                    return 200, await r.read()
                return r.status, (await r.json())["error"]

        async def refused(voucher: SignedVoucher, code: str) -> dict[str, Any]:
            status, error = await pay(voucher)
            assert status == 402, f"served, though it should be refused with {code}"
            assert error["code"] == code, error
            return dict(error)

        # a voucher for another service: refused, though that service's escrow (10) would cover it
        error = await refused(signed(payer, FINNEY, to=another), "wrong_service")
        assert error["details"]["service"] == service and another in error["message"]
        async with session.post(server.make_url("/v1/vouchers"), json=signed(payer, FINNEY, to=another).as_json()) as r:
            assert r.status == 422 and (await r.json())["error"]["code"] == "wrong_service"
        # escrow with another service unlocks nothing here
        error = await refused(signed(outsider, FINNEY), "insufficient_escrow")
        assert (error["details"]["escrow"], error["details"]["service"]) == ("0", service)

        # two of the payer's three units asked back: counted as gone, so one use is covered, two are not
        licenses.requestWithdrawal(ETH, service, 2 * FINNEY, sender=payer)
        held = licenses.escrowOf(payer.address, ETH, service)
        async with session.get(server.make_url(f"/v1/holders/{payer.address}/escrow")) as r:
            escrow = await r.json()
        window = int(licenses.WITHDRAWAL_WINDOW())
        assert (escrow["pendingWithdrawal"], escrow["unlockAt"], escrow["expiresAt"]) == (
            str(2 * FINNEY),
            int(held[2]),
            int(held[2]) + window,
        )
        error = await refused(signed(payer, 2 * FINNEY), "insufficient_escrow")
        assert error["details"]["escrow"] == str(FINNEY)
        assert await pay(signed(payer, FINNEY)) == (200, png)
        await refused(signed(payer, 2 * FINNEY), "insufficient_escrow")
        licenses.cancelWithdrawal(ETH, service, sender=payer)  # the escrow pays for uses again
        assert await pay(signed(payer, 3 * FINNEY)) == (200, png)

        # the creator stops selling under the other asset's terms: no new voucher is taken for
        # them, however well covered
        licenses.deposit(ETH, service, 5 * FINNEY, sender=payer, value=5 * FINNEY)
        licenses.setTermsActive(other_terms, False, sender=operator)
        body = signed(payer, FINNEY, terms=other_terms, asset=other).as_json()
        async with session.post(server.make_url("/v1/vouchers"), json=body) as r:
            assert r.status == 422, await r.text()
            error = (await r.json())["error"]
        assert error["code"] == "terms_inactive" and "inactive" in error["message"]

    run_api(parts, tmp_path, scenario)
    accepted = [job.payload for job in parts.journal.at_stage(jobs.RECEIVED)]
    assert sorted(int(v["cumulativeAmount"]) for v in accepted) == [FINNEY, 3 * FINNEY]
    assert {v["service"] for v in accepted} == {service}


def test_read_endpoints_say_what_the_chain_and_the_journal_say(
    parts: Parts, project: Any, local_chain: Any, accounts: Any, chain: Any, tmp_path: Path
):
    operator, buyer = accounts[0], accounts[4]
    assets = asyncio.run(make_assets(parts, str(operator.address)))
    licenses = contract(project, local_chain, "LicenseManager")
    digest = bytes.fromhex(assets[0].payload["sha256"])
    terms_id = attach_terms(licenses, digest, operator, per_use=FINNEY)
    licenses.purchase(terms_id, buyer.address, sender=buyer, value=10 * FINNEY)
    service = str(operator.address)
    licenses.deposit(ETH, service, 4 * FINNEY, sender=buyer, value=4 * FINNEY)

    async def scenario(session: aiohttp.ClientSession, server: TestServer, deps: Any) -> None:
        async def get(path: str, status: int = 200) -> Any:
            async with session.get(server.make_url(path)) as r:
                assert r.status == status, (path, await r.text())
                return await documented(r)

        health = await get("/health")
        assert health["status"] == "ok" and health["chainId"] == int(chain.chain_id)
        doc = await get("/.well-known/openapi.json")
        assert doc == await get("/openapi.json") and "/v1/assets/{digest}/content" in doc["paths"]
        listed = await get("/v1/assets")
        assert listed["total"] == 2 and {a["digest"] for a in listed["items"]} == {
            "0x" + a.payload["sha256"] for a in assets
        }
        hits = await get("/v1/assets?q=Magenta%20circle")
        assert [a["prompt"] for a in hits["items"]] == [PROMPTS[1]]
        assert (await get("/v1/assets?q=zebra"))["total"] == 0
        assert len((await get("/v1/assets?limit=1&offset=1"))["items"]) == 1
        one = await get(f"/v1/assets/0x{digest.hex()}")
        p = assets[0].payload
        assert one["cid"] == p["cid"] and one["manifestCid"] == p["manifest_cid"] and one["prompt"] == PROMPTS[0]
        assert one["zk"]["status"] == "pending" and one["seq"] == p["seq"] and one["parents"] == []
        assert one["lineage"]["modelDigest"] == p["lineage"]["model_digest"] and "model" not in one["lineage"]
        assert one["lineage"]["modelId"] == p["lineage"]["model_id"] and one["lineage"]["paramsCid"] == p["params_cid"]
        assert one["request"]["seed"] == p["request"]["seed"] and one["request"]["negativePrompt"] == ""
        assert one["registration"]["modelId"] == local_chain.t2i_model_id and one["source"] == "agents"
        assert one["metadataURI"] == p["metadata_uri"] and one["paramsDigest"] == "0x" + p["params_digest"]
        assert [t["termsId"] for t in one["terms"]] == [terms_id] and one["terms"][0]["pricePerUse"] == str(FINNEY)
        similar = await get(f"/v1/assets/0x{digest.hex()}/similar")
        assert [s["digest"] for s in similar["items"]] == ["0x" + assets[1].payload["sha256"]]
        assert -1.0 <= similar["items"][0]["similarity"] <= 1.0
        assert (await get(f"/v1/terms/{terms_id}"))["asset"] == "0x" + digest.hex()
        models = (await get("/v1/models"))["items"]
        assert models[0]["modelId"] == local_chain.t2i_model_id and models[0]["developer"] == accounts[1].address
        held = await get(f"/v1/holders/{buyer.address}/licences")
        assert [item["termsId"] for item in held["items"]] == [terms_id]
        escrow = await get(f"/v1/holders/{buyer.address}/escrow")
        assert (escrow["balance"], escrow["service"], escrow["unlockAt"], escrow["expiresAt"]) == (
            str(4 * FINNEY),
            service,
            0,
            0,
        )
        elsewhere = await get(f"/v1/holders/{buyer.address}/escrow?service={accounts[9].address}")
        assert (elsewhere["balance"], elsewhere["service"]) == ("0", accounts[9].address)
        assert (await get("/v1/deployment"))["service"] == service
        typed = await get("/v1/vouchers/eip712")
        assert typed["service"] == service
        v = Voucher(str(buyer.address), service, digest, terms_id, FINNEY, 2**40)
        from agents.core.vouchers import voucher_digest

        assert typed["domain"]["verifyingContract"] == licenses.address
        assert voucher_digest(v, typed["domain"]["chainId"], typed["domain"]["verifyingContract"]) == bytes(
            licenses.voucherDigest(v.payer, v.service, v.asset, v.terms_id, v.cumulative_amount, v.deadline)
        )
        # content by CID: the metadata is free; the image is licensed content (402)
        metadata = await get(f"/v1/content/{p['metadata_cid']}")
        assert metadata["name"].startswith(PROMPTS[0][:20])
        async with session.get(server.make_url(f"/v1/content/{p['cid']}")) as r:
            assert r.status == 402 and "PAYMENT-REQUIRED" in r.headers
        # POST a voucher directly (a wallet that signs in the page does this)
        vv = Voucher(
            str(buyer.address), service, digest, terms_id, FINNEY, int(chain.pending_timestamp) + 2 * MIN_DEADLINE_S
        )
        body = SignedVoucher(vv, sign_voucher(vv, buyer.private_key, int(chain.chain_id), licenses.address)).as_json()
        async with session.post(server.make_url("/v1/vouchers"), json=body) as r:
            assert r.status == 202 and (await documented(r))["cumulativeAmount"] == str(FINNEY)
        async with session.post(server.make_url("/v1/vouchers"), json=body) as r:
            assert r.status == 422 and (await r.json())["error"]["code"] == "replayed_or_short"
        # the one-call client: catches up with the POSTed voucher, then pays from the remembered offer
        client = PayingClient(session, buyer.private_key)
        url = str(server.make_url(f"/v1/assets/0x{digest.hex()}/content"))
        assert [(await client.fetch(url)).paid for _ in range(2)] == [FINNEY, FINNEY]
        ((channel, newest),) = client.channels.items()
        assert (channel.service, channel.terms_id, newest.voucher.cumulative_amount) == (service, terms_id, 3 * FINNEY)
        assert client.spent == 2 * FINNEY
        async with session.get(server.make_url("/metrics")) as r:
            text = await r.text()
        assert r.status == 200 and 'proofmint_api_requests_total{route="/v1/assets/{digest}",status="200"} 1.0' in text
        content = 'proofmint_api_requests_total{route="/v1/assets/{digest}/content",status="%d"} %s'
        assert content % (402, "2.0") in text and content % (200, "2.0") in text  # the second fetch: one trip

    run_api(parts, tmp_path, scenario)
    assert len(parts.journal.at_stage(jobs.RECEIVED)) == 3  # the POSTed voucher and two paid uses wait for settlement


def test_lineage_previews_channels_and_what_each_account_is_owed(
    parts: Parts, project: Any, local_chain: Any, accounts: Any, chain: Any, tmp_path: Path
):
    """What the dApp reads: the deployment, an asset's lineage as the chain records it (with a
    derivative registered by someone else), free previews, a pay-per-use channel, and what a
    creator, the model developer and a data originator are owed, with a proof the chain accepts."""
    from tests.contracts.helpers import asset_record, buy_license, register_asset

    operator, developer, originator, deriver = accounts[0], accounts[1], accounts[2], accounts[7]
    assets = asyncio.run(make_assets(parts, str(operator.address)))
    licenses = contract(project, local_chain, "LicenseManager")
    splitter = contract(project, local_chain, "RoyaltySplitter")
    registry = contract(project, local_chain, "ProvenanceRegistry")
    a = bytes.fromhex(assets[0].payload["sha256"])
    terms_id = attach_terms(licenses, a, operator, per_use=FINNEY)
    licence = buy_license(licenses, deriver, terms_id)  # 10 finney of revenue for A
    child = asset_record("a derivative of A", deriver, local_chain.t2i_model_id, parents=(a,))
    register_asset(registry, deriver, child, [licence])
    grandchild = asset_record("a derivative of the derivative", deriver, local_chain.t2i_model_id)
    register_asset(registry, deriver, grandchild)  # an original: not in A's lineage
    hex_a, hex_child = "0x" + a.hex(), "0x" + child.content_digest.hex()
    model_id = local_chain.t2i_model_id

    async def scenario(session: aiohttp.ClientSession, server: TestServer, deps: Any) -> None:
        async def get(path: str, status: int = 200) -> Any:
            async with session.get(server.make_url(path)) as r:
                assert r.status == status, (path, await r.text())
                return await documented(r)

        deployment = await get("/v1/deployment")
        assert deployment["chainId"] == int(chain.chain_id) and deployment["network"] == f"eip155:{chain.chain_id}"
        for name in ("LicenseManager", "RoyaltySplitter", "ProvenanceRegistry", "ModelRegistry"):
            assert deployment["contracts"][name]["address"] == local_chain.addresses[name]
        functions = {f["name"] for f in deployment["contracts"]["RoyaltySplitter"]["abi"] if f["type"] == "function"}
        assert {"withdraw", "distribute", "claimDataShare", "balanceOf"} <= functions

        lineage = await get(f"/v1/assets/{hex_a}/lineage")
        assert lineage["root"] == hex_a and lineage["edges"] == [[hex_a, hex_child]]
        assert {n["digest"] for n in lineage["nodes"]} == {hex_a, hex_child} and not lineage["truncated"]
        assert (await get(f"/v1/assets/{hex_child}/lineage?depth=1"))["edges"] == [[hex_a, hex_child]]
        one = await get(f"/v1/assets/{hex_a}")
        assert [c["digest"] for c in one["children"]] == [hex_child] and one["source"] == "agents"
        other = await get(f"/v1/assets/{hex_child}")  # registered by someone else: what the chain says
        assert other["source"] == "chain" and other["parents"] == [hex_a] and other["creator"] == deriver.address
        assert other["zk"]["status"] == "unknown" and other["cid"] is None
        assert (
            other["paramsDigest"] == "0x" + child.params_digest.hex() and other["registration"]["modelId"] == model_id
        )
        assert (other["request"], other["lineage"], other["curation"]) == (None, None, None)
        await get(f"/v1/assets/{hex_child}/preview", 404)  # no image of it here

        async with session.get(server.make_url(f"/v1/assets/{hex_a}/preview")) as r:
            assert r.status == 200 and r.content_type == "image/png"
            preview = await r.read()
        full = parts.store.read(Cid.parse(assets[0].payload["cid"]))
        with Image.open(io.BytesIO(preview)) as small, Image.open(io.BytesIO(full)) as big:
            assert small.size == (big.size[0] // 2, big.size[1] // 2)

        assert (await get(f"/v1/channels/{deriver.address}/{terms_id}"))["acceptedCumulative"] == "0"
        service = str(operator.address)
        licenses.deposit(ETH, service, 2 * FINNEY, sender=deriver, value=2 * FINNEY)
        client = PayingClient(session, deriver.private_key)
        await client.fetch(str(server.make_url(f"/v1/assets/{hex_a}/content")))
        paid = await get(f"/v1/channels/{deriver.address}/{terms_id}")
        assert paid == {
            "payer": deriver.address,
            "service": service,
            "termsId": terms_id,
            "acceptedCumulative": str(FINNEY),
            "settled": "0",
        }
        escrow = await get(f"/v1/holders/{deriver.address}/escrow")
        assert (escrow["balance"], escrow["promised"]) == (str(2 * FINNEY), str(FINNEY))

        owed = await get(f"/v1/accounts/{operator.address}/owed")
        rows = {row["digest"]: row for row in owed["assets"]}
        assert set(rows) == {"0x" + j.payload["sha256"] for j in assets}
        assert rows[hex_a]["pendingRevenue"] == str(10 * FINNEY) and rows[hex_a]["distributed"] == "0"
        # beside what it earned, what it cost (its cost records, priced) and the margin, in dollars
        job_a = next(j for j in assets if "0x" + j.payload["sha256"] == hex_a)
        expected = costs.asset_usd(job_a.payload, deps.cost_prices)
        assert expected["usd"] > 0 and rows[hex_a]["costUsd"] == pytest.approx(expected["usd"])
        assert set(rows[hex_a]["costByStage"]) >= {"generate", "curate", "publish", "register"}
        revenue = 10 * FINNEY / 1e18 * deps.cost_prices.usd_per_eth
        assert rows[hex_a]["revenueUsd"] == pytest.approx(revenue)
        assert rows[hex_a]["marginUsd"] == pytest.approx(revenue - expected["usd"])
        in_token = await get(f"/v1/accounts/{operator.address}/owed?currency={'0x' + '11' * 20}")
        assert all(r["revenueUsd"] is None and r["marginUsd"] is None for r in in_token["assets"])  # not priced
        splitter.distribute(a, ETH, sender=operator)
        owed = await get(f"/v1/accounts/{operator.address}/owed")
        assert owed["balance"] == str(splitter.balanceOf(operator.address, ETH)) != "0"
        dev = await get(f"/v1/accounts/{developer.address}/owed")
        assert model_id in [m["modelId"] for m in dev["models"]]
        assert dev["balance"] == str(splitter.balanceOf(developer.address, ETH)) != "0"
        mine = await get(f"/v1/accounts/{originator.address}/owed")
        (share,) = mine["dataShares"]
        pool, _ = splitter.dataPoolOf(model_id, ETH)
        assert share["modelId"] == model_id and share["weight"] == 600_000 and share["claimed"] == "0"
        assert int(share["claimable"]) == int(pool) * 600_000 // 1_000_000 > 0
        proof = [bytes.fromhex(p[2:]) for p in share["proof"]]
        splitter.claimDataShare(model_id, ETH, originator.address, share["weight"], proof, sender=originator)
        after = (await get(f"/v1/accounts/{originator.address}/owed"))["dataShares"][0]
        assert after["claimed"] == share["claimable"] and after["claimable"] == "0"
        assert (await get(f"/v1/accounts/{deriver.address}/owed"))["dataShares"] == []  # not an originator

        async with session.get(server.make_url("/"), allow_redirects=False) as r:
            assert r.status == 302 and r.headers["Location"] == "/app/"
        async with session.get(server.make_url("/app/")) as r:
            assert r.status == 200 and "Content-Security-Policy" in r.headers and "app.js" in await r.text()

    run_api(parts, tmp_path, scenario, data_trees={model_id: local_chain.data_tree})


def test_bad_input_is_a_json_4xx_and_the_server_keeps_serving(
    parts: Parts, project: Any, local_chain: Any, accounts: Any, tmp_path: Path
):
    operator = accounts[0]
    assets = asyncio.run(make_assets(parts, str(operator.address)))
    digest = assets[0].payload["sha256"]
    zero = "0x" + "00" * 32

    async def scenario(session: aiohttp.ClientSession, server: TestServer, deps: Any) -> None:
        async def expect(method: str, path: str, status: int, code: str, **kwargs: Any) -> dict[str, Any]:
            async with session.request(method, server.make_url(path), **kwargs) as r:
                assert r.status == status, (path, r.status, await r.text())
                assert r.content_type == "application/json"
                error = (await r.json())["error"]
            assert error["status"] == status and error["code"] == code and error["message"], error
            return error

        await expect("GET", "/v1/assets/0x1234", 400, "bad_digest")
        await expect("GET", "/v1/assets/" + "zz" * 32, 400, "bad_digest")
        await expect("GET", f"/v1/assets/{zero}", 404, "not_found")
        await expect("GET", f"/v1/assets/{zero}/similar", 404, "not_found")
        await expect("GET", f"/v1/assets/{zero}/content", 404, "not_found")
        await expect("GET", f"/v1/assets/0x{digest}/content", 403, "not_for_sale")  # no terms yet
        await expect("GET", "/v1/assets?limit=0", 400, "bad_query")
        await expect("GET", "/v1/assets?limit=abc", 400, "bad_query")
        await expect("GET", "/v1/assets?offset=-1", 400, "bad_query")
        await expect("GET", "/v1/assets?q=" + "a" * 300, 400, "bad_query")
        await expect("GET", "/v1/content/not-a-cid", 400, "bad_cid")
        await expect("GET", "/v1/content/..%2F..%2Fetc%2Fpasswd", 400, "bad_cid")
        await expect("GET", "/v1/content/" + "b" * 127, 400, "bad_cid")
        missing = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"
        await expect("GET", f"/v1/content/{missing}", 404, "not_found")
        await expect("GET", "/v1/terms/0", 400, "bad_terms_id")
        await expect("GET", "/v1/terms/x", 400, "bad_terms_id")
        await expect("GET", "/v1/terms/999", 404, "not_found")
        await expect("GET", "/v1/holders/0x12/licences", 400, "bad_address")
        await expect("GET", f"/v1/holders/{operator.address}/escrow?currency=eth", 400, "bad_address")
        await expect("GET", "/v1/nowhere", 404, "not_found")
        await expect("GET", f"/v1/assets/{zero}/lineage", 404, "not_found")
        await expect("GET", f"/v1/assets/0x{digest}/lineage?depth=0", 400, "bad_query")
        await expect("GET", f"/v1/assets/0x{digest}/lineage?depth=99", 400, "bad_query")
        await expect("GET", f"/v1/assets/{zero}/preview", 404, "not_found")
        await expect("GET", "/v1/assets/0x12/preview", 400, "bad_digest")
        await expect("GET", "/v1/channels/0x12/1", 400, "bad_address")
        await expect("GET", f"/v1/channels/{operator.address}/0", 400, "bad_terms_id")
        await expect("GET", f"/v1/channels/{operator.address}/x", 400, "bad_terms_id")
        await expect("GET", f"/v1/channels/{operator.address}/999", 404, "not_found")
        await expect("GET", "/v1/accounts/0xzz/owed", 400, "bad_address")
        await expect("GET", f"/v1/accounts/{operator.address}/owed?currency=x", 400, "bad_address")
        await expect("GET", "/app/..%2F..%2Fpyproject.toml", 404, "not_found")
        await expect("GET", "/app/.proofmint-stamp", 404, "not_found")
        await expect("DELETE", "/v1/assets", 405, "method_not_allowed")
        await expect("POST", "/v1/vouchers", 415, "unsupported_media_type", data=b"x")
        await expect(
            "POST", "/v1/vouchers", 400, "bad_json", data=b"{not json", headers={"Content-Type": "application/json"}
        )
        await expect("POST", "/v1/vouchers", 422, "bad_voucher", json=[1, 2])
        await expect("POST", "/v1/vouchers", 422, "bad_voucher", json={"payer": "0x12"})
        await expect("POST", "/v1/vouchers", 413, "body_too_large", json={"pad": "x" * 100_000})
        await expect(
            "POST",
            "/v1/vouchers",
            422,
            "unknown_terms",
            json={
                "payer": operator.address,
                "service": operator.address,
                "asset": "0x" + digest,
                "termsId": 77,
                "cumulativeAmount": "1",
                "deadline": 2**40,
                "signature": "0x" + "11" * 65,
            },
        )
        async with session.get(server.make_url("/health")) as r:
            assert r.status == 200  # still serving
        assert deps.journal.at_stage(jobs.RECEIVED) == []  # nothing was stored

    run_api(parts, tmp_path, scenario)

    async def limited(session: aiohttp.ClientSession, server: TestServer, deps: Any) -> None:
        statuses = []
        for _ in range(5):
            async with session.get(server.make_url("/v1/assets")) as r:
                statuses.append(r.status)
                if r.status == 429:
                    assert int(r.headers["Retry-After"]) >= 1 and (await r.json())["error"]["code"] == "rate_limited"
        assert statuses == [200, 200, 200, 429, 429]
        async with session.get(server.make_url("/health")) as r:
            assert r.status == 200  # health is never rate limited
        opened.append(deps)

    opened: list[Any] = []
    run_api(parts, tmp_path, limited, rate_per_s=0.01, burst=3)
    # the application owned its resources: stopping it closed the channel book it opened
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        opened[0].paywall.book.channel(str(operator.address), str(operator.address), 1)


def test_generation_requests_over_http_are_journaled_once_and_checked(parts: Parts, tmp_path: Path):
    async def scenario(session: aiohttp.ClientSession, server: TestServer, deps: Any) -> None:
        url = server.make_url("/v1/requests")
        body = {"prompt": PROMPTS[0], "seed": 5, "requester": "agent-7"}
        async with session.post(url, json=body) as r:
            assert r.status == 202
            key = (await documented(r))["key"]
        async with session.post(url, json=body) as r:  # the same request again: one job
            assert r.status == 200 and (await documented(r)) == {"key": key, "new": False}
        async with session.get(server.make_url(f"/v1/requests/{key}")) as r:
            assert r.status == 200 and (await documented(r))["stage"] == jobs.REQUESTED
        job = deps.journal.get(key)
        assert job.payload["source"] == "api" and job.payload["request"]["seed"] == 5
        for bad in (
            {"prompt": "x" * 1_001},
            {"prompt": "   "},
            {"prompt": "bad \ud800"},  # valid JSON ("\\ud800"), not valid Unicode
            {"prompt": "a\x00b"},
            {"prompt": "a", "negativePrompt": "\x1b[31m"},
            {"prompt": "a", "negativePrompt": "n" * 1_001},
            {"prompt": "a", "seed": -1},
            {"prompt": "a", "seed": "1"},
            {"prompt": "a", "steps": True},
            {"prompt": "a", "guidance": 99},
            {"prompt": "a", "colour": "red"},
            {"prompt": "a", "requester": "r" * 65},
            {"seed": 1},
            ["a"],
        ):
            async with session.post(url, json=bad) as r:
                assert r.status == 422, bad
                assert (await r.json())["error"]["code"] == "bad_request_fields"
        async with session.get(server.make_url("/v1/requests/req-nothing")) as r:
            assert r.status == 404
        assert len(deps.journal.at_stage(jobs.REQUESTED)) == 1  # nothing else was stored

        # a requester finds its jobs (any case), newest first, and why one stopped in review
        held = GenerationRequest(prompt="a blue square, held for a person", seed=9)
        payload = {
            **jobs.request_payload(held, requester="agent-7", source="api"),
            "sha256": "ab" * 32,
            "curation": {"decision": "review", "reason": "prompt alignment 0.700 is in the human-review band"},
        }
        deps.journal.submit("req-held", jobs.ASSET, payload, stage=jobs.REVIEW)
        async with session.get(url, params={"requester": "AGENT-7", "limit": "10"}) as r:
            page = await documented(r)
        assert r.status == 200 and page["total"] == 2
        newest, first = page["items"]
        assert (newest["key"], newest["stage"], newest["digest"]) == ("req-held", jobs.REVIEW, "0x" + "ab" * 32)
        assert newest["reason"] == "prompt alignment 0.700 is in the human-review band"
        assert (first["key"], first["prompt"], first["seed"], first["reason"]) == (key, PROMPTS[0], 5, None)
        async with session.get(url, params={"requester": "agent-7", "offset": "1", "limit": "1"}) as r:
            assert [i["key"] for i in (await documented(r))["items"]] == [key]
        async with session.get(url, params={"requester": "someone-else"}) as r:
            assert (await documented(r))["total"] == 0
        for query in ({}, {"requester": "r" * 65}, {"requester": "a", "limit": "0"}):
            async with session.get(url, params=query) as r:
                assert r.status == 400 and (await r.json())["error"]["code"] == "bad_query", query

    run_api(parts, tmp_path, scenario, accept_requests=True)

    async def closed(session: aiohttp.ClientSession, server: TestServer, deps: Any) -> None:
        async with session.post(server.make_url("/v1/requests"), json={"prompt": "a"}) as r:
            error = (await r.json())["error"]
            assert r.status == 404 and error["code"] == "requests_not_accepted"
            assert "takes no generation requests" in error["message"] and "proofmint request" in error["message"]

    run_api(parts, tmp_path / "closed", closed)


def test_the_api_serves_the_erc8004_agents_and_their_validations(
    parts: Parts, project: Any, local_chain: Any, accounts: Any, chain: Any, tmp_path: Path
):
    """The registration file each agent's on-chain agentURI names (this API's), the endpoint
    domain's file, and the record a validation response points at: the covered assets, each with
    the Merkle proof the validator checks it by. Bad input is a JSON 4xx; a server with no agents
    says so."""
    from eth_utils.crypto import keccak

    from agents.core.validation import ValidationDomain
    from agents.daemons.prove import ProveStage
    from agents.daemons.validate import Validations
    from tests.agents.daemons.conftest import PUBLIC_URL

    operator = accounts[0]
    assets = asyncio.run(make_assets(parts, str(operator.address)))
    assert parts.validation is not None
    prover = ProveStage(
        parts.journal,
        parts.chain(),
        local_chain.head_models,
        worker="test/prover",
        validations=Validations(parts.journal, parts.chain(), parts.validation),
    )
    asyncio.run(prover.process(assets))
    directory = local_chain.agents
    identity = contract(project, local_chain, "IdentityRegistry")
    validations = contract(project, local_chain, "ValidationRegistry")
    validator = contract(project, local_chain, "ZkmlValidator")
    registry_id = f"eip155:{int(chain.chain_id)}:{identity.address}"

    async def scenario(session: aiohttp.ClientSession, server: TestServer, deps: Any) -> None:
        async def get(path: str, status: int = 200) -> Any:
            async with session.get(server.make_url(path)) as r:
                assert r.status == status, (path, await r.text())
                return await documented(r)

        index = await get("/v1/agents")
        assert index["agentRegistry"] == registry_id and index["owner"] == operator.address
        assert index["registries"]["validator"] == validator.address
        assert [a["role"] for a in index["agents"]] == ["generator", "prover", "settlement"]
        for agent in index["agents"]:
            # on chain: the agent is the operator's, its URI is this API's file, its wallet verified
            assert identity.ownerOf(agent["agentId"]) == operator.address
            assert identity.tokenURI(agent["agentId"]) == agent["agentURI"]
            assert agent["agentURI"].startswith(PUBLIC_URL)
            assert identity.getAgentWallet(agent["agentId"]) == operator.address
            card = await get(agent["agentURI"].removeprefix(PUBLIC_URL))
            assert card["type"] == "https://eips.ethereum.org/EIPS/eip-8004#registration-v1"
            assert card["registrations"] == [{"agentId": agent["agentId"], "agentRegistry": registry_id}]
            assert card["x402Support"] is (deps.exact_token is not None) and card["active"] is True
            assert "reputation" in card["supportedTrust"]
            assert ("zkml" in card["supportedTrust"]) is (agent["role"] == "prover")
        domain = await get("/.well-known/agent-registration.json")
        assert sorted(r["agentId"] for r in domain["registrations"]) == sorted(directory.ids.values())
        # the prover's chunks: one request each, answered 100, every asset covered and checkable
        requested = [bytes(h) for h in validations.getAgentValidations(directory.ids["prover"])]
        assert requested
        covered = []
        for request_hash in requested:
            record = await get(f"/v1/validations/0x{request_hash.hex()}")
            assert record["state"] == "answered" and record["response"] == 100 and record["tag"] == "zkml"
            status = validations.getValidationStatus(request_hash)
            assert int(status.response) == 100 and bytes(status.responseHash).hex() == record["responseHash"][2:]
            for item in record["items"]:
                proof = [bytes.fromhex(node[2:]) for node in item["proof"]]
                asset = bytes.fromhex(item["asset"][2:])
                assert validator.itemResponse(request_hash, asset, item["index"], proof) == 100
                assert item["attestation"]["attested"] and item["verify"] == f"proofmint verify {item['asset']}"
                covered.append(item["asset"])
        assert sorted(covered) == sorted("0x" + a.payload["sha256"] for a in assets)

        async def refused(path: str, status: int, code: str) -> None:
            async with session.get(server.make_url(path)) as r:
                assert r.status == status, (path, await r.text())
                assert (await r.json())["error"]["code"] == code

        await refused("/v1/agents/nobody/registration.json", 404, "unknown_agent")
        await refused("/v1/validations/0x1234", 400, "bad_request_hash")
        await refused("/v1/validations/" + "zz" * 32, 400, "bad_request_hash")
        await refused("/v1/validations/0x" + "00" * 32, 404, "not_found")

    run_api(parts, tmp_path, scenario, agents=directory)

    # anyone may answer, also through a contract: the record still lists what the answer covers
    # (from the validator's own event, not from the transaction that carried it)
    provenance = contract(project, local_chain, "ProvenanceRegistry")
    domain = ValidationDomain(int(chain.chain_id), str(validator.address), str(provenance.address))
    first = bytes.fromhex(assets[0].payload["sha256"])
    model_id = next(m for _, m in local_chain.head_models.values() if provenance.attestationOf(first, m)[0])
    relayed = domain.batch(model_id, [first])
    salt = keccak(text="relayed")
    relayed_hash = relayed.request_hash(directory.ids["prover"], salt)
    validations.validationRequest(validator, directory.ids["prover"], "x", relayed_hash, sender=operator)
    relay = accounts[9].deploy(project.HostileActor)
    relay.exec(validator, validator.respond.encode_input(relayed_hash, salt, model_id, [first]), sender=accounts[9])

    async def relayed_record(session: aiohttp.ClientSession, server: TestServer, deps: Any) -> None:
        async with session.get(server.make_url(f"/v1/validations/0x{relayed_hash.hex()}")) as r:
            assert r.status == 200, await r.text()
            record = await documented(r)
        assert [item["asset"] for item in record["items"]] == ["0x" + first.hex()]

    run_api(parts, tmp_path / "relayed", relayed_record, agents=directory)

    async def without_agents(session: aiohttp.ClientSession, server: TestServer, deps: Any) -> None:
        for path in ("/v1/agents", "/v1/agents/prover/registration.json", "/.well-known/agent-registration.json"):
            async with session.get(server.make_url(path)) as r:
                assert r.status == 404 and (await r.json())["error"]["code"] == "no_agents"

    run_api(parts, tmp_path / "bare", without_agents)


def test_reputation_counts_only_clients_who_paid_this_operator(
    parts: Parts, project: Any, local_chain: Any, accounts: Any, chain: Any, tmp_path: Path
):
    """Anyone may give an agent feedback on chain; proofmint's reading counts a client only with
    evidence of a settled payment by that client's address: an x402 receipt (a stock client paid
    a view) or a voucher settled with this service, for the operator's own work. A stranger who
    never paid, a payer whose voucher was settled with another service, and a farmer who paid the
    service for an asset of its own (its money comes back to it) are listed as ignored and kept
    out of the summary; the agent's owner cannot rate its own agent at all."""
    import ape

    from agents.core.vouchers import settle_arguments
    from agents.deploy.deployment import DEV_TOKEN
    from tests.contracts.helpers import asset_record

    operator, farmer, x402_payer, voucher_payer, elsewhere, other_service, stranger = (
        accounts[0], accounts[4], accounts[5], accounts[6], accounts[8], accounts[7], accounts[9],
    )  # fmt: skip
    job = asyncio.run(make_assets(parts, str(operator.address)))[0]
    digest = bytes.fromhex(job.payload["sha256"])
    licenses = contract(project, local_chain, "LicenseManager")
    reputation = contract(project, local_chain, "ReputationRegistry")
    usd = project.DevUsd.at(local_chain.addresses[DEV_TOKEN])
    cent = 10_000
    attach_terms(licenses, digest, operator, per_use=cent, currency=usd.address)
    eth_terms = attach_terms(licenses, digest, operator, per_use=FINNEY)
    chain_id, manager = int(chain.chain_id), str(licenses.address)
    deadline = int(chain.pending_timestamp) + 2 * MIN_DEADLINE_S
    # vouchers settled on chain: one with this API's service (the operator), one with another
    for payer, service in ((voucher_payer, operator), (elsewhere, other_service)):
        licenses.deposit(ETH, service.address, FINNEY, sender=payer, value=FINNEY)
        voucher = Voucher(str(payer.address), str(service.address), digest, eth_terms, FINNEY, deadline)
        signed_voucher = sign_voucher(voucher, payer.private_key, chain_id, manager)
        calls, signatures = settle_arguments([(voucher, signed_voucher)])
        licenses.settle(ETH, service.address, calls, signatures, sender=service)
    # the farmer's own asset, 1 wei a use, paid to this service and settled by it
    own = asset_record("farmed", farmer, local_chain.t2i_model_id)
    contract(project, local_chain, "ProvenanceRegistry").register(own.as_tuple(), [], sender=farmer)
    farm_terms = attach_terms(licenses, own.content_digest, farmer, per_use=1, price=1)
    licenses.deposit(ETH, operator.address, 1, sender=farmer, value=1)
    farmed = Voucher(str(farmer.address), str(operator.address), own.content_digest, farm_terms, 1, deadline)
    calls, signatures = settle_arguments([(farmed, sign_voucher(farmed, farmer.private_key, chain_id, manager))])
    licenses.settle(ETH, operator.address, calls, signatures, sender=operator)
    assert int(licenses.settledOf(farmer.address, operator.address, farm_terms)) == 1
    agent = local_chain.agents.ids["settlement"]
    with ape.reverts(reputation.ReputationRegistry__SelfFeedback):
        reputation.giveFeedback(agent, 100, 0, "starred", "", "", "", b"\x00" * 32, sender=operator)

    async def scenario(session: aiohttp.ClientSession, server: TestServer, deps: Any) -> None:
        url = str(server.make_url(f"/v1/assets/0x{digest.hex()}/content"))
        status, headers, _ = await asyncio.to_thread(
            stock_x402_fetch, url, x402_payer.private_key, chain_id, str(usd.address), cent
        )
        assert status == 200
        receipt = decode(headers["PAYMENT-RESPONSE"])["transaction"]
        for client, stars in ((x402_payer, 80), (voucher_payer, 60), (elsewhere, 0), (stranger, 0), (farmer, 0)):
            reputation.giveFeedback(agent, stars, 0, "starred", "", "", "", b"\x00" * 32, sender=client)
        async with session.get(server.make_url("/v1/agents/settlement/reputation?tag1=starred")) as r:
            assert r.status == 200, await r.text()
            summary = await documented(r)
        assert (summary["agentId"], summary["count"], summary["value"], summary["valueDecimals"]) == (agent, 2, 70, 0)
        evidence = {p["address"]: p["evidence"] for p in summary["payingClients"]}
        assert evidence[x402_payer.address] == {"kind": "x402", "asset": "0x" + digest.hex(), "transaction": receipt}
        assert evidence[voucher_payer.address]["kind"] == "voucher"
        assert evidence[voucher_payer.address]["termsId"] == eth_terms
        assert sorted(summary["ignoredClients"]) == sorted([elsewhere.address, stranger.address, farmer.address])
        assert summary["notJudged"] == 0
        # what the registry says unfiltered: every client's feedback, the farmed zeros too
        assert tuple(reputation.getSummary(agent, [c.address for c in accounts[4:10]], "starred", "")) == (5, 28, 0)
        async with session.get(server.make_url("/v1/agents/nobody/reputation")) as r:
            assert r.status == 404 and (await r.json())["error"]["code"] == "unknown_agent"
        async with session.get(server.make_url("/v1/agents/prover/reputation?tag1=" + "x" * 65)) as r:
            assert r.status == 400 and (await r.json())["error"]["code"] == "bad_query"
        async with session.get(server.make_url("/v1/agents/prover/reputation")) as r:
            assert (await r.json())["count"] == 0  # nobody rated the prover

    run_api(parts, tmp_path, scenario, agents=local_chain.agents)


def test_a_squatted_validation_hash_costs_the_prover_a_salt_not_its_validation(
    parts: Parts, project: Any, local_chain: Any, accounts: Any, chain: Any
):
    """Someone copies the prover's next request hash (from the mempool: nobody else can compute
    its salt) and requests it first under an agent of its own, which it then gives to the
    operator. The prover finds the hash held by another agent, requests with its next salt,
    and its own agent is answered."""
    from agents.core.validation import ValidationDomain, salt_for
    from agents.daemons.prove import ProveStage
    from agents.daemons.validate import INTENT, ProvenChunk, Validations
    from agents.models.head import VERDICTS

    operator, stranger = accounts[0], accounts[9]
    job = asyncio.run(make_assets(parts, str(operator.address)))[0]
    provenance = contract(project, local_chain, "ProvenanceRegistry")
    identity = contract(project, local_chain, "IdentityRegistry")
    validations = contract(project, local_chain, "ValidationRegistry")
    validator = contract(project, local_chain, "ZkmlValidator")
    asset = bytes.fromhex(job.payload["sha256"])
    asyncio.run(ProveStage(parts.journal, parts.chain(), local_chain.head_models, worker="test/prover").process([job]))
    model_id = next(m for _, m in local_chain.head_models.values() if provenance.attestationOf(asset, m)[0])
    verdict = VERDICTS[int(provenance.attestationOf(asset, model_id)[2])]
    prover = local_chain.agents.ids["prover"]
    domain = ValidationDomain(int(chain.chain_id), str(validator.address), str(provenance.address))
    batch = domain.batch(model_id, [asset])
    copied = batch.request_hash(prover, salt_for(bytes.fromhex(operator.private_key[2:]), domain, batch.root, 0))
    squatter = int(
        identity.register("https://evil.example/agent.json", sender=stranger)
        .decode_logs(identity.Registered)[0]
        .agentId
    )
    validations.validationRequest(validator, squatter, "x", copied, sender=stranger)
    identity.transferFrom(stranger, operator, squatter, sender=stranger)

    assert parts.validation is not None
    sender = Validations(parts.journal, parts.chain(), parts.validation)
    asyncio.run(sender.note(ProvenChunk(model_id, [job.key], [asset], [verdict])))
    [outcome] = asyncio.run(sender.drain())
    assert outcome["attempt"] == 1 and outcome["response"] == 100, outcome
    assert bytes.fromhex(outcome["request_hash"]) in [bytes(h) for h in validations.getAgentValidations(prover)]
    assert validator.answerOf(copied)[0] is False  # the copy is never answered
    assert parts.journal.open_intents(INTENT) == []


def test_the_prover_gathers_chunks_into_one_validation_request(
    parts: Parts, project: Any, local_chain: Any, accounts: Any
):
    """Chunks of one model version and verdict wait until enough assets are gathered (or long
    enough, or the prover stops: `flush`), then one request covers them all; a gathering written
    down before a crash is sent as it was, whatever the next life's gathering rules."""
    from agents.daemons.prove import ProveStage
    from agents.daemons.validate import INTENT, Gathering, ProvenChunk, Validations
    from agents.models.head import VERDICTS

    operator = accounts[0]
    jobs_made = asyncio.run(make_assets(parts, str(operator.address)))
    provenance = contract(project, local_chain, "ProvenanceRegistry")
    validations = contract(project, local_chain, "ValidationRegistry")
    validator = contract(project, local_chain, "ZkmlValidator")
    prover = ProveStage(parts.journal, parts.chain(), local_chain.head_models, worker="test/prover")
    chunks = []
    for job in jobs_made:  # one proof each: two chunks
        asyncio.run(prover.process([job]))
        asset = bytes.fromhex(job.payload["sha256"])
        model_id = next(m for _, m in local_chain.head_models.values() if provenance.attestationOf(asset, m)[0])
        verdict = VERDICTS[int(provenance.attestationOf(asset, model_id)[2])]
        chunks.append(ProvenChunk(model_id, [job.key], [asset], [verdict]))
    assert len({c.model_id for c in chunks}) == 1
    assert parts.validation is not None
    waiting = Validations(parts.journal, parts.chain(), parts.validation, Gathering(min_assets=3, linger_s=3600))
    agent = local_chain.agents.ids["prover"]
    before = list(validations.getAgentValidations(agent))
    for chunk in chunks:
        asyncio.run(waiting.note(chunk))
        assert asyncio.run(waiting.drain()) == []  # 1, then 2 assets: fewer than 3, and not old
    # gathered, then the process dies before sending: a later life sends that gathering
    groups = asyncio.run(waiting._gather(True))
    assert [len(g) for g in groups] == [2]
    later = Validations(parts.journal, parts.chain(), parts.validation, Gathering(min_assets=100, linger_s=3600))
    [outcome] = asyncio.run(later.drain())
    assert outcome["assets"] == 2 and outcome["response"] == 100
    assert parts.journal.open_intents(INTENT) == []
    [new] = [bytes(h) for h in validations.getAgentValidations(agent) if h not in before]
    assert new.hex() == outcome["request_hash"]
    answered, response, count, *_ = validator.answerOf(new)
    assert (answered, response, count) == (True, 100, 2)
