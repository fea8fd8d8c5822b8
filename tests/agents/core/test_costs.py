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
    # an OP-stack receipt's L1 data fee is part of what the transaction cost (int or hex quantity)
    op = {"gasUsed": 100, "effectiveGasPrice": 2, "l1Fee": "0x3e8"}
    assert costs.transaction_share(op, "ab", 3)["fee_wei"] == -(-(200 + 1_000) // 3)
    assert costs.transaction_share({**op, "l1Fee": 1_000}, "ab", 1)["fee_wei"] == 1_200


def test_settlement_costs_belong_to_the_asset_a_voucher_paid_for_and_the_request_a_payment_paid() -> None:
    digest = "ab" * 32
    asset = {"sha256": digest, "seq": 1, "payment": "x402-upto-0xpayer-7", costs.GENERATE: costs.compute(1, 1, "cpu")}
    other = {"sha256": "cd" * 32, "seq": 2, costs.GENERATE: costs.compute(1, 1, "cpu")}
    eth = 10**15  # $2 at these prices
    settlements = costs.Settlements(
        {
            "voucher-1": {
                "asset": "0x" + digest.upper(),
                costs.SETTLE: {"tx": "s1", "jobs": 2, "gas": 10, "fee_wei": eth},
            },
            "voucher-2": {"asset": "0x" + digest, costs.SETTLE: {"tx": "s2", "jobs": 1, "gas": 5, "fee_wei": 0}},
            "voucher-3": {"asset": "0x" + "ef" * 32, costs.SETTLE: {"tx": "s3", "jobs": 1, "gas": 7, "fee_wei": eth}},
            "x402-upto-0xpayer-7": {
                "permit": {},
                costs.SETTLE: {"tx": "s4", "jobs": 1, "gas": 20, "fee_wei": eth // 2},
            },
            "voucher-4": {"asset": "0x" + digest},  # not settled yet: no record, no cost
        }
    )
    assert [r["tx"] for r in settlements.of(asset)] == ["s1", "s2", "s4"] and settlements.of(other) == []
    summary = summarise([asset, other], PRICES, settlements)
    assert summary["byStage"]["settle"]["gas"] == 35 and summary["byStage"]["settle"]["usd"] == pytest.approx(3.0)
    one = costs.asset_usd(asset, PRICES, settlements)
    assert one["byStage"] == {"generate": pytest.approx(0.01), "settle": pytest.approx(3.0)}
    assert one["usd"] == pytest.approx(3.01)
    assert costs.asset_usd(other, PRICES) == {"usd": pytest.approx(0.01), "byStage": {"generate": pytest.approx(0.01)}}
    assert summarise([asset], PRICES)["byStage"]["settle"]["gas"] == 0  # without the settlements: none
    updates = {"seq": 1, costs.REGISTER: {"gas": 1}, costs.SETTLE: {"gas": 2}}
    assert costs.without_costs(updates) == {"seq": 1}


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
        record = {"tx": "ab", "jobs": 1, "gas": 1, "fee_wei": 1}
        for i in range(3):
            journal.submit(f"voucher-s{i}", jobs.VOUCHER, {"asset": "0x01", costs.SETTLE: record}, stage=jobs.RECEIVED)
        journal.submit("x402-upto-p-1", jobs.X402_UPTO, {costs.SETTLE: record}, stage=jobs.UPTO_SETTLED)
        journal.submit("x402-upto-p-2", jobs.X402_UPTO, {"permit": {}}, stage=jobs.UPTO_AUTHORISED)
        found = jobs.settlements_since(journal, 0.0, most=10, page=2)
        assert sorted(found) == ["voucher-s0", "voucher-s1", "voucher-s2", "x402-upto-p-1"]
        # at most 2 of each kind read: voucher-1 (no record) and voucher-s0; both payments
        assert sorted(jobs.settlements_since(journal, 0.0, most=2, page=1)) == ["voucher-s0", "x402-upto-p-1"]
        assert jobs.settlements_since(journal, 1e12, most=10) == {}
    finally:
        journal.close()


def test_the_gas_price_now_is_the_next_base_fee_plus_the_median_tip_of_recent_blocks() -> None:
    history = {"baseFeePerGas": ["0x64", "0x6e", "0x78"], "reward": [["0x1"], ["0x5"], ["0x3"]]}
    assert costs.gas_price_of(history) == 0x78 + 3
    assert costs.gas_price_of({"baseFeePerGas": [7, 9], "reward": []}) == 9  # no tips reported
    with pytest.raises(ValueError, match="no base fees"):
        costs.gas_price_of({"baseFeePerGas": []})
    summary = {"registered": 2, "byStage": {"register": {"gas": 300_000.0}, "prove": {"gas": 100_000.0}}}
    now = costs.at_gas_price(summary, 10**9, PRICES)  # 1 gwei
    assert (now["gas"], now["priceWei"]) == (400_000, 10**9)
    assert now["feeUsd"] == pytest.approx(400_000 * 1e-9 * PRICES.usd_per_eth)
    assert now["feeUsdPerRegisteredAsset"] == pytest.approx(now["feeUsd"] / 2)
    assert costs.at_gas_price({**summary, "registered": 0}, 1, PRICES)["feeUsdPerRegisteredAsset"] is None
