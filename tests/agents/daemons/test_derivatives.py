"""Derivatives through the API (`POST /v1/derivatives`), as the dApp uses it: a licensee drafts
a derivative of an asset it holds a licence for, signs the answered transaction with its own key
and the chain registers it; the draft applies the contract's own rules (a simulated `register`
as the creator), so a stranger with the licensee's public licence id, a licence of another
asset, terms that allow no derivatives and a digest already registered are each refused with the
contract's custom error, and nothing is stored for them. A draft itself stores nothing: the
files are kept once the chain holds exactly the drafted record, and the image of a registered
asset is paid content under any of its CIDs, never free."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from PIL import Image

from agents.api.openapi import document
from agents.app.wiring import Parts
from agents.storage.cid import Cid
from tests.agents.api.schema_check import check_answer
from tests.agents.daemons.helpers import FINNEY, contract
from tests.agents.daemons.test_api import run_api
from tests.contracts.helpers import asset_record, buy_license, register_asset, terms_input

pytestmark = [pytest.mark.chain, pytest.mark.slow]  # the embedded pass runs it (make test budget)

DOC = document()


def png(colour: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def send(web3: Any, key: str, tx: dict[str, Any]) -> Any:
    """What a wallet does with the draft: sign the transaction as given, send it, wait."""
    account = web3.eth.account.from_key(key)
    assert tx["from"] == account.address
    full = {
        "to": tx["to"],
        "data": tx["data"],
        "from": account.address,
        "nonce": web3.eth.get_transaction_count(account.address),
        "chainId": web3.eth.chain_id,
        "gasPrice": web3.eth.gas_price,
    }
    full["gas"] = web3.eth.estimate_gas(full) * 2
    signed = account.sign_transaction(full)
    receipt = web3.eth.wait_for_transaction_receipt(web3.eth.send_raw_transaction(signed.raw_transaction))
    assert receipt["status"] == 1
    return receipt


def test_a_licensee_registers_a_derivative_through_the_api_and_others_cannot(
    parts: Parts, project: Any, local_chain: Any, accounts: Any, chain: Any, tmp_path: Path
):
    operator, licensee, stranger = accounts[0], accounts[6], accounts[7]
    model = local_chain.t2i_model_id
    registry = contract(project, local_chain, "ProvenanceRegistry")
    licenses = contract(project, local_chain, "LicenseManager")
    parent, closed, other = (asset_record(label, operator, model) for label in ("parent", "closed", "other"))
    for record in (parent, closed, other):
        register_asset(registry, operator, record)
    licenses.attachTerms(parent.content_digest, terms_input(price=FINNEY), sender=operator)
    open_terms = int(licenses.termsCount())
    closed_input = terms_input(price=FINNEY, derivatives=False, derivative_bps=0)
    licenses.attachTerms(closed.content_digest, closed_input, sender=operator)
    closed_terms = int(licenses.termsCount())
    licence = buy_license(licenses, licensee, open_terms)
    closed_licence = buy_license(licenses, licensee, closed_terms)
    image = png((200, 40, 90))

    def body(creator: Any, parents: list[bytes], ids: list[int], picture: bytes = image) -> dict[str, Any]:
        return {
            "creator": str(creator.address),
            "modelId": model,
            "parents": ["0x" + p.hex() for p in parents],
            "licenseIds": [str(i) for i in ids],
            "image": base64.b64encode(picture).decode(),
            "title": "a pinker circle",
        }

    async def scenario(session: aiohttp.ClientSession, server: TestServer, deps: Any) -> None:
        url = server.make_url("/v1/derivatives")
        blocks = set((tmp_path / "state" / "store").rglob("*"))

        async def refused(payload: Any, code: str, why: str) -> None:
            async with session.post(url, json=payload) as r:
                answer = await r.json()
                check_answer(DOC, "POST", "/v1/derivatives", r.status, answer)
                assert r.status == 422 and answer["error"]["code"] == code, answer
                assert why in answer["error"]["message"], answer

        # the squatter: the licensee's licence id is public, but the stranger does not hold it
        await refused(body(stranger, [parent.content_digest], [licence]), "would_revert", "LicenseManager__NoLicense")
        # a licence of another asset, and terms that allow no derivatives
        await refused(
            body(licensee, [other.content_digest], [licence]), "would_revert", "LicenseManager__LicenseNotForAsset"
        )
        await refused(
            body(licensee, [closed.content_digest], [closed_licence]),
            "would_revert",
            "LicenseManager__DerivativesNotAllowed",
        )
        await refused(body(licensee, [parent.content_digest], []), "bad_derivative", "one licence per parent")
        good = body(licensee, [parent.content_digest], [licence])
        await refused({**good, "image": "%%%"}, "bad_derivative", "base64")
        await refused(body(licensee, [parent.content_digest], [licence], b""), "bad_derivative", "image is empty")
        await refused({**good, "modelId": 999}, "would_revert", "ModelNotActive")
        assert set((tmp_path / "state" / "store").rglob("*")) == blocks, "nothing stored for a refused draft"

        async with session.post(url, json=good) as r:
            draft = await r.json()
            check_answer(DOC, "POST", "/v1/derivatives", r.status, draft)
        assert r.status == 200, draft
        digest = hashlib.sha256(image).digest()
        assert draft["digest"] == "0x" + digest.hex() and draft["input"]["parents"] == [
            "0x" + parent.content_digest.hex()
        ]
        # a draft stores nothing: no free hosting for uploads that are never registered
        assert set((tmp_path / "state" / "store").rglob("*")) == blocks
        # a stranger cannot have the files kept before the creator registers them, nor after (below)
        async with session.post(url, json={**good, "title": "someone else's"}) as r:
            assert r.status == 200 and "stored" not in await r.json()
        send(chain.provider.web3, licensee.private_key, draft["transaction"])
        record = registry.getAsset(digest)
        assert record.creator == licensee.address and int(record.modelId) == model
        parents, shares = registry.parentsOf(digest)
        assert [bytes(p) for p in parents] == [parent.content_digest] and list(shares) == [1_000]
        assert registry.tokenURI(int.from_bytes(digest, "big")) == draft["input"]["metadataURI"]
        assert int(licenses.balanceOf(licensee.address, licence)) == 0, "one unit of the licence consumed"
        # the API finds it at once (the dApp opens its page next), with the metadata it stored
        async with session.get(server.make_url(f"/v1/assets/0x{digest.hex()}")) as r:
            shown = await r.json()
            check_answer(DOC, "GET", f"/v1/assets/0x{digest.hex()}", r.status, shown)
        assert shown["metadataCid"] == draft["metadataCid"] and shown["parents"] == draft["input"]["parents"]
        assert shown["creator"] == licensee.address
        # registered: the same request again keeps its files here (the chain holds exactly that record)
        async with session.post(url, json={**good, "title": "someone else's"}) as r:
            assert r.status == 409 and (await r.json())["error"]["code"] == "registered"
        assert set((tmp_path / "state" / "store").rglob("*")) == blocks
        async with session.post(url, json=good) as r:
            kept = await r.json()
            check_answer(DOC, "POST", "/v1/derivatives", r.status, kept)
        assert r.status == 201 and kept["stored"] is True
        # the parameters document is public and hashes to the digest the chain holds
        params = await deps.store.get(Cid.parse(draft["paramsCid"]))
        assert "0x" + hashlib.sha256(params).hexdigest() == draft["paramsDigest"] == draft["input"]["paramsDigest"]
        assert json.loads(params)["licenseIds"] == [str(licence)]
        metadata = json.loads(await deps.store.get(Cid.parse(draft["metadataCid"])))
        assert metadata["image"] == f"ipfs://{draft['cid']}" and metadata["name"] == "a pinker circle"
        assert await deps.store.get(Cid.parse(draft["cid"])) == image
        async with session.get(server.make_url(f"/v1/content/{draft['metadataCid']}")) as r:
            assert r.status == 200  # documents are free
        # the image of a registered asset is never free, under any of its CIDs
        v0 = Cid(0, 0x70, Cid.parse(draft["cid"]).digest)  # not stored as such: 404, not the image
        for path in (f"/v1/content/{draft['cid']}", f"/v1/assets/0x{digest.hex()}/content"):
            async with session.get(server.make_url(path)) as r:
                assert r.status == 403 and (await r.json())["error"]["code"] == "not_for_sale", path
        async with session.get(server.make_url(f"/v1/content/{v0}")) as r:
            assert r.status in (403, 404) and r.content_type == "application/json"
        licenses.attachTerms(digest, terms_input(price=FINNEY, price_per_use=FINNEY), sender=licensee)
        await asyncio.sleep(1.1)  # the API reads new terms at most once a second
        for path in (f"/v1/content/{draft['cid']}", f"/v1/assets/0x{digest.hex()}/content"):
            async with session.get(server.make_url(path)) as r:
                assert r.status == 402 and "PAYMENT-REQUIRED" in r.headers, path

    run_api(parts, tmp_path, scenario)
