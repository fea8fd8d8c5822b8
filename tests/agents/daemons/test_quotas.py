"""Requester quotas at the door (`POST /v1/requests`, `agents.core.quotas`): a request past its
requester's limit of requests, compute seconds, spend or high-cost requests this period is refused with 429
`quota_exceeded`, saying which limit, what was used and when it resets (`Retry-After` too),
before anything is journaled or computed; other requesters are not held back. The spend of a
paid request is its x402 `upto` maximum, checked before its permit is claimed."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from agents.app.wiring import Parts
from agents.core import costs
from agents.core.metering import DEFAULT_PRICING, RequestPricing
from agents.core.quotas import Quota, Quotas
from agents.core.requests import GenerationRequest
from agents.core.toolchain import project_root
from agents.runtime import jobs
from tests.agents.daemons.test_api import documented, run_api
from tests.agents.daemons.test_upto_faults import Market

pytestmark = pytest.mark.chain

PRICING = RequestPricing.from_json(project_root() / DEFAULT_PRICING)


def test_a_request_past_its_requesters_quota_is_refused_before_anything_is_journaled(
    parts: Parts, project: Any, local_chain: Any, chain: Any, accounts: Any, tmp_path: Path
) -> None:
    quotas = Quotas(
        Quota(period_s=3_600, requests=2),
        {
            "heavy": Quota(period_s=3_600, compute_seconds=5.0),
            "big": Quota(period_s=3_600, requests=10, costly_over=0.05, costly_requests=1),
        },
    )
    journal = parts.journal
    # what "heavy" already spent this period: one job whose records show 6 CPU seconds
    held = GenerationRequest("a blue square", 1)
    jobs.submit_request(journal, held, requester="heavy", source="api",
                        extra={costs.GENERATE: costs.compute(3.0, 6.0, "cpu")})  # fmt: skip

    async def scenario(session: aiohttp.ClientSession, server: TestServer, deps: Any) -> None:
        url = server.make_url("/v1/requests")
        for seed in (1, 2):
            async with session.post(url, json={"prompt": "a red circle", "seed": seed, "requester": "ann"}) as r:
                assert r.status == 202
        before = journal.counts().get(jobs.REQUESTED, 0)
        async with session.post(url, json={"prompt": "a red circle", "seed": 3, "requester": "ANN"}) as r:
            refused = await documented(r)
            retry = int(r.headers["Retry-After"])
        assert r.status == 429 and refused["error"]["code"] == "quota_exceeded"
        details = refused["error"]["details"]
        assert (details["limit"], details["allowed"], details["used"]) == ("requests", 2, 2)
        assert details["resetsAt"] > time.time() and 0 < retry <= 3_600
        assert "requests limit: 2 of 2 used" in refused["error"]["message"]
        async with session.post(url, json={"prompt": "a red circle", "seed": 3, "requester": "bob"}) as r:
            assert r.status == 202  # another requester is not held back
        async with session.post(url, json={"prompt": "a red circle", "seed": 4, "requester": "heavy"}) as r:
            over = await documented(r)
        assert r.status == 429 and over["error"]["details"]["limit"] == "compute_seconds"
        assert over["error"]["details"]["used"] == 6.0
        assert journal.counts().get(jobs.REQUESTED, 0) == before + 1  # only bob's
        # high-cost requests (here over 0.05 step-megapixels: 100 steps at 32 x 32 is 0.1024) have
        # a limit of their own; cheap ones from the same requester still pass
        costly = {"prompt": "a red circle", "requester": "big", "steps": 100}
        async with session.post(url, json={**costly, "seed": 5}) as r:
            assert r.status == 202
        async with session.post(url, json={**costly, "seed": 6}) as r:
            throttled = await documented(r)
        assert r.status == 429 and throttled["error"]["details"]["limit"] == "costly_requests"
        assert (throttled["error"]["details"]["allowed"], throttled["error"]["details"]["used"]) == (1, 1)
        assert "high-cost requests limit" in throttled["error"]["message"] and int(r.headers["Retry-After"]) > 0
        async with session.post(url, json={"prompt": "a red circle", "requester": "big", "steps": 25, "seed": 7}) as r:
            assert r.status == 202
        assert journal.counts().get(jobs.REQUESTED, 0) == before + 3

    run_api(parts, tmp_path, scenario, accept_requests=True, quotas=quotas)

    market = Market(parts, project, local_chain, chain, accounts[0])
    payer = accounts[5]
    market.usd.approve("0x000000000022D473030F116dDEE9F6B43aC78BA3", 2**256 - 1, sender=payer)
    request = GenerationRequest("a red circle", 9)
    offer = market.offer(request)
    spend = Quotas(None, {payer.address: Quota(period_s=3_600, spend=offer.maximum - 1)})

    async def paid(session: aiohttp.ClientSession, server: TestServer, deps: Any) -> None:
        permit = market.permit(payer, offer, 7_001)
        header = base64.b64encode(json.dumps(market.header(permit, offer)).encode()).decode()
        body = {"prompt": "a red circle", "seed": 9}
        async with session.post(server.make_url("/v1/requests"), json=body, headers={"PAYMENT-SIGNATURE": header}) as r:
            over = await documented(r)
        assert r.status == 429 and over["error"]["details"]["limit"] == "spend"
        assert deps.journal.of_requester(jobs.X402_UPTO, payer.address, limit=5)[0] == 0  # the permit was not claimed

    run_api(parts, tmp_path / "paid", paid, accept_requests=True, request_pricing=PRICING, quotas=spend)
