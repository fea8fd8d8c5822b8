"""Cost records and their pricing (`agents.core.costs`) without a chain: the prices file and
every way it is refused, the arithmetic of a transaction's share, and what `summarise` makes of
records (GPU seconds priced as GPU seconds, a registered asset carrying the rejected jobs' costs,
jobs without records left out)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agents.core import costs
from agents.core.costs import DEFAULT_PRICES, CostFilter, CostPrices, CostPricesError, summarise
from agents.core.toolchain import project_root

PRICES = CostPrices(usd_per_cpu_second=0.01, usd_per_gpu_second=1.0, usd_per_eth=2_000.0, usd_per_gb_stored=10.0)


def test_the_shipped_prices_load_and_a_bad_file_says_why(tmp_path: Path) -> None:
    shipped = CostPrices.from_json(project_root() / DEFAULT_PRICES)
    assert shipped.usd_per_eth > 0 and shipped.usd_per_cpu_second > 0
    good = json.loads((project_root() / DEFAULT_PRICES).read_text())
    for broken, why in (
        ({**good, "usdPerEth": -1}, "usd_per_eth"),
        ({**good, "usdPerEth": True}, "usd_per_eth"),
        ({**good, "usdPerEth": "3000"}, "usd_per_eth"),
        ({**good, "colour": 1}, "exactly"),
        ({k: v for k, v in good.items() if k != "usdPerGbStored"}, "exactly"),
        ([], "exactly"),
    ):
        path = tmp_path / "prices.json"
        path.write_text(json.dumps(broken))
        with pytest.raises(CostPricesError, match=why):
            CostPrices.from_json(path)
    with pytest.raises(CostPricesError, match="not a readable JSON"):
        CostPrices.from_json(tmp_path / "missing.json")


def test_a_transaction_share_rounds_up_so_shares_cover_the_transaction() -> None:
    share = costs.transaction_share({"gasUsed": 100_001, "effectiveGasPrice": 3}, "ab", 4, proof_s=1.5)
    assert share == {"tx": "ab", "jobs": 4, "gas": 25_001, "fee_wei": 75_001, "proof_s": 1.5}
    assert 4 * share["gas"] >= 100_001 and 4 * share["fee_wei"] >= 300_003
    assert costs.transaction_share({"gasUsed": 10}, "ab", 1)["fee_wei"] == 0  # a node that reports no price


def test_summarise_prices_each_record_and_spreads_rejected_jobs_over_registered_assets() -> None:
    registered = {
        "seq": 1,
        "requester": "Alice",
        "project": "posters",
        "lineage": {"model_id": 3},
        costs.GENERATE: costs.compute(2.0, 4.0, "cuda:0", stored_bytes=1_000_000_000),
        costs.REGISTER: {"tx": "ab", "jobs": 2, "gas": 50_000, "fee_wei": 10**15},
        costs.PROVE: {"tx": "cd", "jobs": 1, "gas": 1, "fee_wei": 0, "proof_s": 10.0, "device": "cpu"},
    }
    rejected = {"requester": "bob", "lineage": {"model_id": 4}, costs.GENERATE: costs.compute(1.0, 3.0, "cpu")}
    summary = summarise([registered, rejected, {"requester": "carol"}], PRICES)
    assert (summary["jobs"], summary["registered"]) == (2, 1)
    generate = summary["byStage"]["generate"]
    assert generate["cpu_s"] == 7.0 and generate["stored_bytes"] == 1e9
    assert generate["usd"] == pytest.approx(4.0 * 1.0 + 10.0 + 3.0 * 0.01)  # GPU seconds, a gigabyte, CPU seconds
    assert summary["byStage"]["register"]["usd"] == pytest.approx(2.0)  # 0.001 ether
    assert summary["byStage"]["prove"]["usd"] == pytest.approx(0.1)
    assert summary["usd"] == pytest.approx(16.13)
    assert summary["usdPerJob"] == pytest.approx(16.13 / 2) and summary["usdPerRegisteredAsset"] == pytest.approx(16.13)
    assert summarise([], PRICES)["usdPerJob"] is None

    assert CostFilter(requester="alice").takes(registered) and not CostFilter(requester="bob").takes(registered)
    assert CostFilter(project="posters", model=3).takes(registered) and not CostFilter(model=4).takes(registered)
    assert not CostFilter(project="posters").takes(rejected)


def test_payloads_are_read_page_by_page_up_to_a_bound_that_says_when_it_stopped(tmp_path: Path) -> None:
    from agents.runtime import jobs
    from agents.runtime.journal import Journal

    journal = Journal(tmp_path / "journal.db", final=jobs.FINAL)
    try:
        for i in range(5):
            journal.submit(f"req-{i}", jobs.ASSET, {"requester": "a" if i % 2 else "b", "i": i}, stage=jobs.REQUESTED)
        journal.submit("voucher-1", jobs.VOUCHER, {"requester": "a"}, stage=jobs.RECEIVED)
        everything, more = jobs.payloads_since(journal, jobs.ASSET, 0.0, lambda p: True, most=10, page=2)
        assert [p["i"] for p in everything] == [0, 1, 2, 3, 4] and not more
        odd, more = jobs.payloads_since(journal, jobs.ASSET, 0.0, lambda p: p["requester"] == "a", most=10, page=2)
        assert [p["i"] for p in odd] == [1, 3] and not more
        first, more = jobs.payloads_since(journal, jobs.ASSET, 0.0, lambda p: True, most=3, page=2)
        assert [p["i"] for p in first] == [0, 1, 2] and more
        exact, more = jobs.payloads_since(journal, jobs.ASSET, 0.0, lambda p: True, most=5, page=5)
        assert len(exact) == 5 and not more
        assert jobs.payloads_since(journal, jobs.ASSET, 1e12, lambda p: True, most=5) == ([], False)
    finally:
        journal.close()
