"""What each generated asset cost (`agents.core.costs`): the stages record, job by job, what they
consumed (compute seconds and where, bytes stored, the job's share of each transaction's gas and
fee as its receipt says); `GET /v1/costs`, `proofmint costs` and Prometheus sum those records, the
first two priced by the operator's configuration and filtered by requester, project, model
version and time. On the chain under test with the real daemons (generator through prover)."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from click.testing import CliRunner

from agents.app.main import cli
from agents.app.wiring import Parts, build_agents
from agents.core import costs
from agents.core.costs import DEFAULT_PRICES, CostPrices, summarise
from agents.core.requests import GenerationRequest
from agents.core.toolchain import project_root
from agents.runtime import jobs
from agents.runtime.telemetry import Metrics
from agents.storage.cid import Cid
from tests.agents.daemons.helpers import ASSET_PROMPTS, FRONT
from tests.agents.daemons.test_api import documented, run_api

pytestmark = [pytest.mark.chain, pytest.mark.slow]  # the prover too: once, on the embedded chain

PRICES = CostPrices.from_json(project_root() / DEFAULT_PRICES)


def test_each_stage_records_what_a_job_consumed_and_the_reports_sum_it(
    parts: Parts, chain: Any, accounts: Any, tmp_path: Path
) -> None:
    operator = str(accounts[0].address)
    journal = parts.journal
    for i, (prompt, project) in enumerate(zip(ASSET_PROMPTS, ("posters", "covers"), strict=True)):
        request = GenerationRequest(prompt, 7_000 + i)
        jobs.submit_request(journal, request, requester=operator, source="api", extra={"project": project})
    parts.metrics = Metrics()
    started = time.time()

    async def run() -> None:
        agents = build_agents(parts, names=[*FRONT, "prover"], register_batch=2, linger_s=0.2, idle=0.05,
                              withdraw_every_s=None)  # fmt: skip
        await agents.start()
        try:
            await agents.until(lambda c: c.get(jobs.ATTESTED, 0) == 2, within_s=600)
        finally:
            await agents.stop()

    asyncio.run(run())
    done = journal.at_stage(jobs.ATTESTED)
    web3 = chain.provider.web3
    for job in done:
        p = job.payload
        generate = p[costs.GENERATE]
        params = parts.store.read(Cid.parse(p["params_cid"]))
        png = parts.store.read(Cid.parse(p["cid"]))
        assert generate["wall_s"] > 0 and generate["cpu_s"] > 0 and generate["device"] == p["lineage"]["device"]
        assert generate["stored_bytes"] == len(png) + len(params)
        assert p[costs.CURATE]["wall_s"] > 0 and p[costs.CURATE]["device"] == "cpu"
        assert p[costs.PUBLISH]["stored_bytes"] > 0
        for key, tx, count in ((costs.REGISTER, p["register_tx"], p["register_batch"]),
                               (costs.PROVE, p["attest_tx"], p["proof_size"])):  # fmt: skip
            receipt = web3.eth.get_transaction_receipt(tx if tx.startswith("0x") else "0x" + tx)
            share = p[key]
            assert (share["tx"].removeprefix("0x"), share["jobs"]) == (tx.removeprefix("0x"), count)
            assert share["gas"] == -(-receipt["gasUsed"] // count)
            assert share["fee_wei"] == -(-receipt["gasUsed"] * receipt["effectiveGasPrice"] // count)
        assert p[costs.PROVE]["proof_s"] > 0

    everything = summarise([job.payload for job in done], PRICES)
    assert everything["jobs"] == everything["registered"] == 2
    register_gas = sum(job.payload[costs.REGISTER]["gas"] for job in done)
    assert everything["byStage"]["register"]["gas"] == register_gas
    rendered = parts.metrics.render().decode()
    assert f'proofmint_cost_gas_total{{stage="register"}} {float(register_gas)}' in rendered
    assert 'proofmint_cost_seconds_total{device="cpu",kind="cpu",stage="generate"}' in rendered
    posters = next(job for job in done if job.payload["project"] == "posters")
    model = posters.payload["lineage"]["model_id"]

    async def scenario(session: aiohttp.ClientSession, server: TestServer, deps: Any) -> None:
        url = server.make_url("/v1/costs")
        async with session.get(url) as r:
            report = await documented(r)
        assert r.status == 200 and {k: report[k] for k in everything} == everything
        # the same gas at the chain's price now (its fee history), beside what the receipts paid
        now = report["gasNow"]
        gas = sum(int(stage["gas"]) for stage in everything["byStage"].values())
        assert now["priceWei"] > 0 and now["gas"] == gas and now["blocks"] == costs.FEE_HISTORY_BLOCKS
        assert now["feeUsd"] == pytest.approx(gas * now["priceWei"] / 1e18 * PRICES.usd_per_eth)
        assert now["feeUsdPerRegisteredAsset"] == pytest.approx(now["feeUsd"] / 2)
        async with session.get(url, params={"project": "posters", "requester": operator.lower()}) as r:
            one = await documented(r)
        assert one["jobs"] == 1 and one["usd"] == summarise([posters.payload], PRICES)["usd"] > 0
        assert one["filters"] == {"requester": operator.lower(), "project": "posters", "model": None, "since": 0.0}
        for query, jobs_counted in (({"model": str(model)}, 2), ({"model": str(model + 1)}, 0),
                                    ({"since": str(started - 60)}, 2), ({"since": str(time.time() + 60)}, 0),
                                    ({"requester": "someone-else"}, 0)):  # fmt: skip
            async with session.get(url, params=query) as r:
                assert (await documented(r))["jobs"] == jobs_counted, query
        for bad in ({"requester": "r" * 65}, {"project": ""}, {"since": "yesterday"}, {"since": "-1"},
                    {"since": "nan"}, {"model": "-1"}, {"model": "one"}):  # fmt: skip
            async with session.get(url, params=bad) as r:
                assert r.status == 400 and (await r.json())["error"]["code"] == "bad_query", bad

    run_api(parts, tmp_path, scenario)

    result = CliRunner().invoke(cli, ["costs", "--state", str(tmp_path / "state"), "--project", "covers", "--json"])
    assert result.exit_code == 0, result.output
    covers = json.loads(result.output)
    assert covers["jobs"] == 1 and covers["usd"] + one_usd(posters.payload) == pytest.approx(everything["usd"])
    table = CliRunner().invoke(cli, ["costs", "--state", str(tmp_path / "state")])
    assert table.exit_code == 0 and "2 jobs, 2 registered" in table.output and "register" in table.output
    bad = CliRunner().invoke(cli, ["costs", "--state", str(tmp_path / "state"), "--cost-prices", str(tmp_path)])
    assert bad.exit_code == 2 and "--cost-prices" in bad.output


def one_usd(payload: dict[str, Any]) -> float:
    return float(summarise([payload], PRICES)["usd"])
