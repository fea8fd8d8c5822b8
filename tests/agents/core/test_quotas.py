"""Requester quotas without a chain (`agents.core.quotas`): the file and every way it is refused,
fixed windows, which limit a request would pass (requests, compute seconds, spend) and when it
resets, and what counts as used."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agents.core import costs
from agents.core.quotas import Quota, QuotaError, Quotas, Usage, check, usage_of, work_of
from agents.core.toolchain import project_root


def test_the_example_file_loads_and_a_bad_one_says_why(tmp_path: Path) -> None:
    example = Quotas.from_json(project_root() / "models" / "quotas.example.json")
    assert example.default == Quota(
        period_s=3600, requests=100, compute_seconds=600, costly_over=0.1, costly_requests=10
    )
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
        ({"default": {"periodSeconds": 60, "costlyOver": 0.1}}, "costlyOver and costlyRequests go together"),
        ({"default": {"periodSeconds": 60, "costlyRequests": 2}}, "costlyOver and costlyRequests go together"),
        ({"default": {"periodSeconds": 60, "costlyOver": -1, "costlyRequests": 2}}, "costly_over must be"),
        ({"default": {"periodSeconds": 60, "costlyOver": 1, "costlyRequests": 0.5}}, "costly_requests must be"),
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


def test_high_cost_requests_are_throttled_on_their_own_limit_and_cheap_ones_pass() -> None:
    quota = Quota(period_s=60, requests=100, costly_over=0.1, costly_requests=2)
    cheap = {"steps": 25}  # 25 x 32 x 32 / 1e6 = 0.0256 step-megapixels at the default side
    big = {"steps": 50, "height": 64, "width": 64}  # 0.2048
    many_steps = {"steps": 200}  # 0.2048 at 32 x 32
    assert work_of(cheap, 32) == pytest.approx(0.0256) and work_of(big, 32) == pytest.approx(0.2048)
    assert work_of({"steps": 25}, 64) == pytest.approx(0.1024)  # the pricing's default side counts
    used = usage_of([{"request": r} for r in (cheap, big, many_steps, cheap)], 0, costly_over=quota.costly_over)
    assert (used.requests, used.costly) == (4, 2)
    over = check(quota, used, 30.0, work=0.2048)
    assert over is not None and (over.limit, over.allowed, over.used, over.resets_at) == ("costly_requests", 2, 2, 60.0)
    assert "high-cost requests limit: 2 of 2 used" in over.message()
    assert check(quota, used, 30.0, work=0.0256) is None  # a cheap request still passes
    assert check(quota, used, 30.0, work=0.1) is None  # at the threshold is not over it
    one = usage_of([{"request": cheap}, {"request": big}], 0, costly_over=0.1)
    assert check(quota, one, 30.0, work=0.2048) is None  # one of two used
    assert usage_of([{"request": big}], 0).costly == 0  # no threshold: nothing is high-cost
