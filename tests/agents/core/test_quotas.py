"""Requester quotas without a chain (`agents.core.quotas`): the file and every way it is refused,
fixed windows, which limit a request would pass (requests, compute seconds, spend) and when it
resets, and what counts as used."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agents.core import costs
from agents.core.quotas import Quota, QuotaError, Quotas, Usage, check, usage_of
from agents.core.toolchain import project_root


def test_the_example_file_loads_and_a_bad_one_says_why(tmp_path: Path) -> None:
    example = Quotas.from_json(project_root() / "models" / "quotas.example.json")
    assert example.default == Quota(period_s=3600, requests=100, compute_seconds=600)
    payer = example.of("0x9965507d1a55bcc2695c58ba16fb37d819b0a4dc")  # any case
    assert payer is not None and payer.spend == 5_000_000 and payer.compute_seconds is None
    assert example.of("someone") == example.default
    assert Quotas(None).of("someone") is None
    assert Quotas(None, {"0xABC": Quota(period_s=60)}).of("0xabc") == Quota(period_s=60)
    for broken, why in (
        ({"default": {"requests": 1}}, "periodSeconds"),
        ({"default": {"periodSeconds": 0}}, "at least 1"),
        ({"default": {"periodSeconds": 60, "requests": -1}}, "requests must be a non-negative integer"),
        ({"default": {"periodSeconds": 60, "requests": 1.5}}, "requests must be a non-negative integer"),
        ({"default": {"periodSeconds": 60, "spend": True}}, "spend must be"),
        ({"default": {"periodSeconds": 60, "computeSeconds": "10"}}, "compute_seconds must be a non-negative number"),
        ({"default": {"periodSeconds": 60, "colour": 1}}, "an object with periodSeconds"),
        ({"requesters": []}, "maps a requester"),
        ({"limits": {}}, "'default' and/or 'requesters'"),
    ):
        path = tmp_path / "quotas.json"
        path.write_text(json.dumps(broken))
        with pytest.raises(QuotaError, match=why):
            Quotas.from_json(path)
    with pytest.raises(QuotaError, match="not a readable JSON"):
        Quotas.from_json(tmp_path / "missing.json")


def test_a_request_is_checked_against_each_limit_in_order_and_told_when_it_resets() -> None:
    quota = Quota(period_s=3600, requests=3, compute_seconds=10.0, spend=1_000)
    assert quota.window(7_250.5) == (7_200.0, 10_800.0)
    assert check(quota, Usage(2, 9.9, 900), 7_250.5, spending=100) is None
    over = check(quota, Usage(3, 0.0, 0), 7_250.5)
    assert over is not None and (over.limit, over.allowed, over.used, over.resets_at) == ("requests", 3, 3, 10_800.0)
    assert "requests limit: 3 of 3 used" in over.message() and "10800" in over.message()
    over = check(quota, Usage(0, 10.0, 0), 7_250.5)
    assert over is not None and over.limit == "compute_seconds"
    over = check(quota, Usage(0, 0.0, 950), 7_250.5, spending=51)
    assert over is not None and (over.limit, over.used) == ("spend", 950)
    assert check(Quota(period_s=60), Usage(10**9, 1e9, 10**30), 0.0, spending=10**30) is None  # no limits


def test_used_is_one_per_request_and_the_cpu_and_proving_seconds_of_their_cost_records() -> None:
    jobs = [
        {costs.GENERATE: costs.compute(1.0, 2.0, "cpu"), costs.CURATE: costs.compute(0.5, 0.25, "cpu")},
        {costs.PROVE: {"tx": "ab", "jobs": 1, "gas": 1, "fee_wei": 1, "proof_s": 3.0}},
        {"requester": "r"},
    ]
    assert usage_of(jobs, 77) == Usage(3, 5.25, 77)
