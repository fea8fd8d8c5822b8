"""Priority lanes: the generator claims the fast lane first and never starves the standard lane
(`GenerateStage.claim` over a real journal), serves standard requests that waited too long with
fewer steps where the operator allows it (adaptive production, the lineage saying so), and the API
takes a request's lane, shows it, and prices a paid fast-lane request at the fast lane's price."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from agents.app.wiring import Parts
from agents.core.metering import DEFAULT_PRICING, FAST_LANE, RequestPricing
from agents.core.requests import GenerationRequest
from agents.core.toolchain import project_root
from agents.daemons.generate import AdaptiveSteps, GenerateStage
from agents.runtime import jobs
from agents.runtime.journal import Journal
from agents.storage.cid import Cid
from agents.storage.store import LocalStore
from tests.agents.daemons.test_api import documented, run_api

PRICING = RequestPricing.from_json(project_root() / DEFAULT_PRICING)


def test_the_generator_serves_the_fast_lane_first_and_the_standard_lane_still_moves(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.db", final=jobs.FINAL)
    try:
        standard = [jobs.submit_request(journal, GenerationRequest("a red circle", i), requester="slow", source="api",
                                        extra={"lane": "standard"})[0] for i in range(2)]  # fmt: skip
        fast = [jobs.submit_request(journal, GenerationRequest("a blue square", i), requester="rush", source="api",
                                    extra={"lane": FAST_LANE})[0] for i in range(40)]  # fmt: skip
        stage = GenerateStage(journal, None, None, worker="w", batch=8)  # type: ignore[arg-type]
        first = [job.key for job in asyncio.run(stage.claim())]
        assert first[:6] == fast[:6] and first[6:] == standard  # the flood came later, yet waits its share
        second = [job.key for job in asyncio.run(stage.claim())]
        assert second == fast[6:14]  # nobody else waits: the fast lane takes the whole batch
    finally:
        journal.close()


def test_adaptive_steps_refuse_a_bad_policy_and_leave_the_fast_lane_and_short_requests_alone() -> None:
    policy = AdaptiveSteps(after_s=10.0, min_steps=8, factor=0.5)
    request = GenerationRequest("a red circle", 1, steps=25)
    assert policy.steps_for(request, "standard", 10.0) is None  # at the target is not over it
    assert policy.steps_for(request, "standard", 10.5) == 13  # half, rounded up
    assert policy.steps_for(GenerationRequest("a", 1, steps=10), "standard", 99.0) == 8  # the floor
    assert policy.steps_for(GenerationRequest("a", 1, steps=8), "standard", 99.0) is None  # at the floor already
    assert policy.steps_for(request, FAST_LANE, 999.0) is None  # the fast lane keeps its settings
    for bad in ((0.0, 8, 0.5), (10.0, 0, 0.5), (10.0, 8, 1.0), (10.0, 8, 0.0), (float("nan"), 8, 0.5)):
        with pytest.raises(ValueError, match="adaptive steps"):
            AdaptiveSteps(*bad)


def test_under_load_standard_requests_get_fewer_steps_and_their_lineage_names_what_they_got(
    models: Any, tmp_path: Path
) -> None:
    journal = Journal(tmp_path / "journal.db", final=jobs.FINAL)
    store = LocalStore(tmp_path / "store")
    policy = AdaptiveSteps(after_s=60.0, min_steps=8, factor=0.5)
    try:
        old = {"requested_at": 1.0}  # waited since the epoch: far over any target

        def submit(prompt: str, seed: int, lane: str, **extra: Any) -> str:
            key, _ = jobs.submit_request(journal, GenerationRequest(prompt, seed), requester=lane, source="api",
                                         extra={"lane": lane, **extra})  # fmt: skip
            return key

        def generate(batch: int) -> None:
            stage = GenerateStage(journal, models.generator, store, worker="w", batch=batch, model_id=4,
                                  adaptive=policy)  # fmt: skip
            asyncio.run(stage.step())

        # a batch of standard requests whose oldest waited too long: all served with fewer steps
        waited, fresh = submit("a red circle", 1, "standard", **old), submit("a green triangle", 3, "standard")
        generate(batch=2)
        # a fast request rides in this batch: it keeps its settings, and so does the old standard one
        # beside it (fewer steps for it would cost a micro-batch of its own)
        rushed, beside = submit("a blue square", 2, FAST_LANE, **old), submit("a red square", 4, "standard", **old)
        generate(batch=2)
        # a lone standard request that has not waited long: as asked
        calm = submit("a white circle", 5, "standard")
        generate(batch=1)
        lineages = {key: journal.get(key).payload["lineage"] for key in (waited, fresh, rushed, beside, calm)}  # type: ignore[union-attr]
        for adapted in (waited, fresh):
            assert (lineages[adapted]["steps"], lineages[adapted]["requested_steps"]) == (13, 25)
            assert "standard lane under load: its batch's oldest request waited" in lineages[adapted]["adaptation"]
        for kept in (rushed, beside, calm):
            assert lineages[kept]["steps"] == 25 and not {"requested_steps", "adaptation"} & set(lineages[kept])
        # the parameters document (the pre-image of paramsDigest) names the steps served and why;
        # a lineage served as asked has no such fields
        adapted_doc = json.loads(store.read(Cid.parse(journal.get(waited).payload["params_cid"])))  # type: ignore[union-attr]
        assert (adapted_doc["steps"], adapted_doc["requested_steps"]) == (13, 25) and adapted_doc["adaptation"]
        plain = json.loads(store.read(Cid.parse(journal.get(calm).payload["params_cid"])))  # type: ignore[union-attr]
        assert "requested_steps" not in plain and "adaptation" not in plain
        # and the image is what the served steps make: the same request asked at 13 steps gives the same bytes
        again = asyncio.run(models.generator.generate_each([GenerationRequest("a red circle", 1, steps=13)]))[0]
        assert again.digest.hex() == journal.get(waited).payload["sha256"]  # type: ignore[union-attr]
    finally:
        journal.close()


@pytest.mark.chain
def test_the_api_takes_a_lane_shows_it_and_prices_the_fast_lane(
    parts: Parts, project: Any, local_chain: Any, chain: Any, accounts: Any, tmp_path: Path
) -> None:
    from tests.agents.daemons.test_upto_faults import Market

    market = Market(parts, project, local_chain, chain, accounts[0])

    async def free(session: aiohttp.ClientSession, server: TestServer, deps: Any) -> None:
        url = server.make_url("/v1/requests")
        async with session.post(url, json={"prompt": "a red circle", "lane": "fast", "project": "p"}) as r:
            key = (await documented(r))["key"]
        async with session.get(server.make_url(f"/v1/requests/{key}")) as r:
            status = await documented(r)
        assert (status["lane"], status["project"]) == ("fast", "p")
        for bad in ({"prompt": "a", "lane": "express"}, {"prompt": "a", "lane": 1}, {"prompt": "a", "project": ""}):
            async with session.post(url, json=bad) as r:
                assert r.status == 422 and (await r.json())["error"]["code"] == "bad_request_fields", bad

    run_api(parts, tmp_path, free, accept_requests=True)

    async def paid(session: aiohttp.ClientSession, server: TestServer, deps: Any) -> None:
        url = server.make_url("/v1/requests")
        offers = {}
        for lane in ("standard", "fast"):
            async with session.post(url, json={"prompt": "a red circle", "seed": 5, "lane": lane}) as r:
                assert r.status == 402
                (offers[lane],) = json.loads(base64.b64decode(r.headers["PAYMENT-REQUIRED"]))["accepts"]
        request = GenerationRequest("a red circle", 5)
        assert int(offers["standard"]["amount"]) == PRICING.maximum(request)
        assert int(offers["fast"]["amount"]) == PRICING.maximum(request, FAST_LANE) > PRICING.maximum(request)
        # a permit for the standard price does not buy the fast lane
        permit = market.permit(accounts[5], market.offer(request), 8_001)
        header = base64.b64encode(json.dumps(market.header(permit, market.offer(request))).encode()).decode()
        body = {"prompt": "a red circle", "seed": 5, "lane": "fast"}
        async with session.post(url, json=body, headers={"PAYMENT-SIGNATURE": header}) as r:
            assert r.status == 402 and (await r.json())["error"]["code"] == "bad_payment"

    run_api(parts, tmp_path / "paid", paid, accept_requests=True, request_pricing=PRICING)
