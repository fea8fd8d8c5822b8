"""`bench/scale_prove_settle.py` in a tiny configuration on the chain under test: one real proof of
two inferences attested through the deployed verifier, six vouchers settled in one batch and two
one a claim, the figures derived as the module says; and the prover's measurement refuses a
journal where other jobs wait at `delivered` (the settlement's assets, measured after it)."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path
from typing import Any

import pytest

from agents.app.wiring import open_local
from agents.core.toolchain import project_root
from bench.scale_prove_settle import FUNDER_INDEX, TARGET_PER_MIN, measure_prover, measure_settlement

pytestmark = pytest.mark.chain


def test_tiny_run_attests_and_settles_everything_and_derives_the_figures(accounts: Any, tmp_path: Path) -> None:
    import ape

    async def main() -> tuple[dict[str, float], dict[str, float]]:
        _, parts = await open_local(
            ape,
            project_root(),
            tmp_path / "state",
            originators=[(str(accounts[2].address), 1_000_000)],
            head_sizes=(2, 1),
            names=["prover"],
        )
        try:
            prover = await measure_prover(parts, batch=2, proofs=1)
            settlement = await measure_settlement(
                ape, parts, accounts[FUNDER_INDEX], vouchers=6, payers=2, assets=2, baseline_vouchers=2
            )
            with pytest.raises(ValueError, match="delivered"):
                await measure_prover(parts, batch=2, proofs=1)
        finally:
            parts.close()
        return prover, settlement

    prover, settlement = asyncio.run(main())
    assert (prover["prover_batch"], prover["prover_proofs"], prover["prover_inferences"]) == (2, 1, 2)
    assert prover["prover_inferences_per_min_per_core"] == pytest.approx(60 * 2 / prover["prover_seconds"], rel=0.01)
    per_min = 60 * 2 / prover["prover_seconds"]  # unrounded, as the figure is derived from it
    assert math.ceil(TARGET_PER_MIN / per_min * 0.99) <= prover["prover_cores_for_10k_per_min"]
    assert prover["prover_cores_for_10k_per_min"] <= math.ceil(TARGET_PER_MIN / per_min * 1.01)
    assert 0 < prover["prover_core_share"] <= 1.05
    assert settlement["settlement_settle_txs"] == 1  # six vouchers, one batch
    assert settlement["settlement_txs"] == 1 + 2  # and one distribution per asset
    assert (settlement["baseline_settle_txs"], settlement["baseline_txs"]) == (2, 4)
    assert settlement["vouchers_settled_per_min"] == pytest.approx(60 * 6 / settlement["settlement_seconds"], rel=0.01)
