"""Pipeline benchmark: `python bench/pipeline.py [--count N] [--rate R]` (or `make bench-pipeline`).

On the embedded chain, one run, side by side:
- baseline, the raw generator: N requests through `Generator.generate` alone (model inference
  and nothing else), images per second;
- the pipeline: the same N requests (other seeds, so nothing is cached) submitted at once
  through every daemon that turns a request into a registered asset: generator, curator,
  publisher (C2PA sidecar, metadata, content store), registrar (batch commit and claims);
  requests per second from the first submission until the last one reached its end (registered
  on chain, or set aside by the curator, whose verdict is part of the work). Proving is not in it
  (the issue counts model inference and proving outside the agents' cost); `bench/zk.py`
  measures it. `overhead_ratio` = 1 - pipeline / raw: what orchestration costs;
- latency: requests arriving one every 1/R seconds (R below the raw rate), each timed from its
  submission (the request event) to its registration on chain: p50 and p95.
The last line is one JSON object.
"""

from __future__ import annotations

import asyncio
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import click

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FRONT = ["generator", "curator", "publisher", "registrar"]


def captions(count: int, seed: int) -> list[str]:
    from media.dataset import compositions

    pool = sorted(c.caption for c in compositions("test"))
    rng = random.Random(seed)
    return [rng.choice(pool) for _ in range(count)]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


async def raw_rate(parts: Any, count: int) -> float:
    from agents.generator import GenerationRequest

    requests = [GenerationRequest(prompt=p, seed=10_000 + i) for i, p in enumerate(captions(count, 1))]
    await parts.generator.generate(requests[:8])  # warm-up (allocations, kernels)
    started = time.perf_counter()
    await parts.generator.generate(requests)
    return count / (time.perf_counter() - started)


async def pipeline_run(parts: Any, count: int, requester: str, seed_base: int, rate: float | None) -> dict[str, Any]:
    from agents.daemons import jobs
    from agents.daemons.local import build_agents
    from agents.generator import GenerationRequest

    requests = [GenerationRequest(prompt=p, seed=seed_base + i) for i, p in enumerate(captions(count, seed_base))]
    agents = build_agents(
        parts,
        names=FRONT,
        register_batch=16,
        linger_s=1.0,
        idle=0.05,
        withdraw_every_s=None,
        worker=f"bench{seed_base}",
    )
    await agents.start()
    journal = parts.journal
    before = set(await journal.call(journal.reached, jobs.REQUESTED))
    started = time.time()
    try:
        for index, request in enumerate(requests):
            if rate is not None:
                await asyncio.sleep(max(0.0, started + index / rate - time.time()))
            await journal.call(jobs.submit_request, journal, request, requester=requester, source="bench")
        new = {k for k in await journal.call(journal.reached, jobs.REQUESTED) if k not in before}

        def finished(counts: dict[str, int]) -> bool:
            waiting = ("requested", "generated", "curated", "published", "committed")
            return not any(counts.get(stage) for stage in waiting)

        await agents.until(finished, within_s=3_600)
    finally:
        await agents.stop()
    ends: dict[str, dict[str, tuple[float, float]]] = {}
    for stage in (jobs.REGISTERED, jobs.REVIEW, jobs.REJECTED):
        ends[stage] = {k: v for k, v in (await journal.call(journal.reached, stage)).items() if k in new}
    finished = [at for by_key in ends.values() for _, at in by_key.values()]
    return {
        "registered": len(ends[jobs.REGISTERED]),
        "curated_out": len(ends[jobs.REVIEW]) + len(ends[jobs.REJECTED]),
        "finished": len(finished),
        "submitted": len(new),
        "wall_s": max(finished) - started,
        "latencies": [at - created for created, at in ends[jobs.REGISTERED].values()],
    }


async def measure(count: int, rate: float, latency_count: int) -> dict[str, Any]:
    import ape

    from agents.daemons.local import build_head_circuits, open_parts, prepare_chain
    from agents.storage.store import LocalStore
    from agents.toolchain import solc_executable

    accounts = ape.accounts.test_accounts
    state = Path(tempfile.mkdtemp(prefix="proofmint-bench-"))
    try:
        circuits = build_head_circuits(ROOT / ".cache" / "zkml-agents", (1,))
        setup = prepare_chain(
            ape.project,
            ape.chain,
            operator=accounts[0],
            developer=accounts[1],
            originators=[(str(accounts[2].address), 1_000_000)],
            t2i_folder=ROOT / "models" / "tiny-t2i",
            circuits=circuits,
            store=LocalStore(state / "store"),
            solc=solc_executable(ROOT),
        )
        parts = await open_parts(
            ROOT,
            state,
            web3=ape.chain.provider.web3,
            key=accounts[0].private_key,
            addresses=setup.addresses,
            t2i_model_id=setup.t2i_model_id,
            head_models=setup.head_models,
            names=FRONT,
            sender_poll=0.01,
        )
        try:
            click.echo(f"raw generator: {count} images ...", err=True)
            raw = await raw_rate(parts, count)
            click.echo(f"pipeline: {count} requests at once ...", err=True)
            burst = await pipeline_run(parts, count, str(accounts[0].address), 20_000, None)
            click.echo(f"latency: {latency_count} requests at {rate}/s ...", err=True)
            paced = await pipeline_run(parts, latency_count, str(accounts[0].address), 30_000, rate)
        finally:
            parts.close()
    finally:
        shutil.rmtree(state, ignore_errors=True)
    return {"raw": raw, "burst": burst, "paced": paced}


@click.command()
@click.option("--count", type=click.IntRange(8, 4_096), default=48, show_default=True, help="Requests per burst")
@click.option("--rate", type=click.FloatRange(0.05, 100.0), default=1.0, show_default=True, help="Paced arrivals/s")
@click.option("--latency-count", type=click.IntRange(4, 4_096), default=24, show_default=True)
def main(count: int, rate: float, latency_count: int) -> None:
    from ape import networks
    from ape.logging import LogLevel, logger

    from agents.daemons.cli import quiet_libraries

    quiet_libraries()
    logger.set_level(LogLevel.ERROR)
    with networks.parse_network_choice("ethereum:local:test"):
        result = asyncio.run(measure(count, rate, latency_count))
    raw, burst, paced = result["raw"], result["burst"], result["paced"]
    pipeline = burst["finished"] / burst["wall_s"]
    overhead = 1.0 - pipeline / raw
    latencies = paced["latencies"]
    p50, p95 = statistics.median(latencies), percentile(latencies, 0.95)
    click.echo("")
    click.echo(f"{'figure':<44} {'proofmint':>12} {'baseline / target':>20}")
    click.echo(f"{'images/s, raw generator (baseline)':<44} {raw:>12.3f} {'-':>20}")
    click.echo(f"{'requests/s, request to its end (pipeline)':<44} {pipeline:>12.3f} {f'raw {raw:.3f}':>20}")
    click.echo(f"{'orchestration overhead (1 - pipeline/raw)':<44} {overhead:>12.1%} {'target <= 10.0%':>20}")
    click.echo(
        f"{'registered + curated out / submitted (burst)':<44} "
        f"{burst['registered']:>5} + {burst['curated_out']} / {burst['submitted']}"
    )
    click.echo(f"{'request to registered, p50 s (paced)':<44} {p50:>12.2f} {f'{rate}/s arrivals':>20}")
    click.echo(f"{'request to registered, p95 s (paced)':<44} {p95:>12.2f}")
    click.echo(f"{'registered / submitted (paced)':<44} {paced['registered']:>8} / {paced['submitted']:<3}")
    figures = {
        "raw_generator_images_per_s": round(raw, 3),
        "pipeline_assets_per_s": round(pipeline, 3),
        "overhead_ratio": round(overhead, 4),
        "event_to_registered_p50_s": round(p50, 3),
        "event_to_registered_p95_s": round(p95, 3),
        "burst_requests": count,
        "burst_registered": burst["registered"],
        "paced_rate_per_s": rate,
        "paced_registered": paced["registered"],
    }
    click.echo(json.dumps(figures))


if __name__ == "__main__":
    main()
