"""Pipeline benchmark: `python bench/pipeline.py [--count N] [--rate R] [--fast F] [--standard S]`
(or `make bench-pipeline`).

On the embedded chain, one run, side by side:
- baseline, the raw generator: N requests through `Generator.generate` alone (model inference
  and nothing else), images per second; measured before, between and after the pipeline's
  bursts (other seeds), and the mean taken, so the machine's drift during the run does not
  favour either side;
- the pipeline: after a warm-up burst of 8 requests (as the raw generator warms up first: the
  first calls of each model, signer and contract are slower), B bursts (`--bursts`, 2 by
  default: one burst of 48 varied by 3 points from run to run) of N requests (other seeds, so
  nothing is cached) submitted at once
  through every daemon that turns a request into a registered asset: generator, curator,
  publisher (C2PA sidecar, metadata, content store), registrar (batch commit and claims);
  requests per second from the first submission until the last one reached its end (registered
  on chain, or set aside by the curator, whose verdict is part of the work). Proving is not in it
  (the issue counts model inference and proving outside the agents' cost); `bench/zk.py`
  measures it. `overhead_ratio` = 1 - pipeline / raw (the means): what orchestration costs;
- latency: paid requests on chain (`GenerationMarket.requestGeneration`, one every 1/R seconds,
  R below the raw rate), each timed from the moment its transaction is mined (the
  `GenerationRequested` event exists) to its asset's registration on chain: p50 and p95. The
  market watcher reads events at confirmation depth 0 here (the embedded chain mines one block
  per transaction and never reorganises); on a real network the depth adds its block time;
- cost accounting: each pipeline burst is run again (other seeds) with the stages keeping no
  cost records; `cost_accounting_overhead_ratio` = 1 - with / without (the means; target <= 0.02);
- lanes under overload: `--standard` standard-lane requests then `--fast` fast-lane ones submitted
  at once, each timed from submission to its end, p95 by lane (`fast_lane_p95_s`,
  `standard_lane_p95_s`); then the same burst with adaptive production (`--adapt-after`: a
  standard request that waited longer gets half its steps, at least 8), its p95s, how many assets
  were served fewer steps, and how many lineages misstate what they got (must be 0).
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


def stage_seconds(metrics: Any) -> dict[str, tuple[float, int]]:
    """Per stage: total seconds spent processing batches, and how many batches."""
    totals: dict[str, list[float]] = {}
    for family in metrics.registry.collect():
        if family.name != "proofmint_stage_seconds":
            continue
        for sample in family.samples:
            stage = sample.labels.get("stage", "")
            if sample.name.endswith("_sum"):
                totals.setdefault(stage, [0.0, 0.0])[0] = sample.value
            elif sample.name.endswith("_count"):
                totals.setdefault(stage, [0.0, 0.0])[1] = sample.value
    return {stage: (seconds, int(count)) for stage, (seconds, count) in totals.items()}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


async def raw_rate(parts: Any, count: int, seed: int = 10_000) -> float:
    from agents.core.requests import GenerationRequest

    requests = [GenerationRequest(prompt=p, seed=seed + i) for i, p in enumerate(captions(count, seed))]
    await parts.generator.generate(requests[:8])  # warm-up (allocations, kernels)
    started = time.perf_counter()
    await parts.generator.generate(requests)
    return count / (time.perf_counter() - started)


def front_agents(parts: Any, worker: str, *, cost_records: bool = True, adaptive: Any = None) -> Any:
    from agents.app.wiring import build_agents

    return build_agents(
        parts,
        names=FRONT,
        register_batch=16,
        linger_s=1.0,
        withdraw_every_s=None,
        worker=worker,
        cost_records=cost_records,
        adaptive=adaptive,
    )


WAITING = ("requested", "generated", "curated", "published", "committed", "registered")


async def burst_run(parts: Any, count: int, requester: str, seed: int, *, cost_records: bool = True) -> dict[str, Any]:
    """`count` requests submitted at once; how long until every one reached its end
    (`cost_records=False`: the stages keep no cost records, the accounting's baseline)."""
    from agents.core.requests import GenerationRequest
    from agents.runtime import jobs

    requests = [GenerationRequest(prompt=p, seed=seed + i) for i, p in enumerate(captions(count, seed))]
    journal = parts.journal
    agents = front_agents(parts, f"burst-{seed}", cost_records=cost_records)
    await agents.start()
    before = set(await journal.call(journal.reached, jobs.REQUESTED))
    started, cpu = time.time(), time.process_time()
    try:
        for request in requests:
            await journal.call(jobs.submit_request, journal, request, requester=requester, source="bench")
        await agents.until(lambda c: not any(c.get(stage) for stage in WAITING), within_s=3_600)
    finally:
        cpu = time.process_time() - cpu  # this process, every thread: the agents and the chain
        await agents.stop()
    new = {k for k in await journal.call(journal.reached, jobs.REQUESTED) if k not in before}
    ends: dict[str, dict[str, tuple[float, float]]] = {}
    for stage in (jobs.DELIVERED, jobs.REVIEW, jobs.REJECTED):
        ends[stage] = {k: v for k, v in (await journal.call(journal.reached, stage)).items() if k in new}
    finished = [at for by_key in ends.values() for _, at in by_key.values()]
    generated = [at for k, (_, at) in (await journal.call(journal.reached, jobs.GENERATED)).items() if k in new]
    return {
        "tail_s": max(finished) - max(generated),  # from the last image made to the last request's end
        "registered": len(ends[jobs.DELIVERED]),
        "curated_out": len(ends[jobs.REVIEW]) + len(ends[jobs.REJECTED]),
        "finished": len(finished),
        "submitted": len(new),
        "wall_s": max(finished) - started,
        "agents_cpu_s": cpu,
    }


async def lane_run(parts: Any, fast: int, standard: int, seed: int, adaptive: Any = None) -> dict[str, Any]:
    """An overload burst: `standard` standard-lane requests, then `fast` fast-lane ones, all at
    once; each timed from its submission to its end (registered, or set aside by the curator), by
    lane; `adaptive`: the generator's adaptive production (None: every request as asked). Also
    counts the assets served with fewer steps and checks that each one's lineage names the steps it
    got and why, and that no fast-lane or unadapted asset claims an adaptation."""
    from agents.core.metering import FAST_LANE, STANDARD_LANE
    from agents.core.requests import GenerationRequest
    from agents.runtime import jobs

    journal = parts.journal
    lanes = [STANDARD_LANE] * standard + [FAST_LANE] * fast
    prompts = captions(len(lanes), seed)
    agents = front_agents(parts, f"lanes-{seed}", adaptive=adaptive)
    await agents.start()
    submitted: dict[str, tuple[str, float]] = {}
    try:
        for index, (lane, prompt) in enumerate(zip(lanes, prompts, strict=True)):
            request = GenerationRequest(prompt=prompt, seed=seed + index)
            key, _ = await journal.call(
                jobs.submit_request, journal, request, requester=f"lane-{lane}", source="bench", extra={"lane": lane}
            )
            submitted[key] = (lane, time.time())
        await agents.until(lambda c: not any(c.get(stage) for stage in WAITING), within_s=3_600)
    finally:
        await agents.stop()
    ends: dict[str, float] = {}
    for stage in (jobs.DELIVERED, jobs.REVIEW, jobs.REJECTED):
        ends |= {k: at for k, (_, at) in (await journal.call(journal.reached, stage)).items() if k in submitted}
    latency: dict[str, list[float]] = {STANDARD_LANE: [], FAST_LANE: []}
    adapted = mislabelled = 0
    asked_steps = GenerationRequest(prompt="x", seed=0).steps  # what every request of the burst asks for
    for key, (lane, at) in submitted.items():
        if key in ends:
            latency[lane].append(ends[key] - at)
        job = await journal.call(journal.get, key)
        lineage = job.payload.get("lineage") or {}
        if lineage.get("requested_steps") is not None:
            adapted += 1
            named = bool(lineage.get("adaptation")) and lineage["steps"] < lineage["requested_steps"]
            mislabelled += lane == FAST_LANE or not named
        elif lineage.get("adaptation") is not None or (lineage and lineage.get("steps") != asked_steps):
            mislabelled += 1
    return {"latency": latency, "adapted": adapted, "mislabelled": mislabelled, "ended": len(ends)}


async def paced_run(parts: Any, payer: Any, count: int, rate: float) -> dict[str, Any]:
    """Paid `GenerationRequested` events, one every 1/rate s; each timed from the moment its
    transaction is mined (the event is on chain) to its asset's registration."""
    from agents.runtime import jobs
    from agents.runtime.chain import ChainClient

    journal = parts.journal
    market = parts.chain().contract("GenerationMarket")
    price = int(await parts.chain().call("GenerationMarket", "price", 0))  # the standard lane
    agents = front_agents(parts, "paced")
    await agents.start()
    payer_client = ChainClient(
        parts.chain().web3,
        payer,
        journal,
        {"GenerationMarket": market.address},
        {"GenerationMarket": market.abi},
        poll=0.01,
    )
    await payer_client.start()
    mined_at: dict[int, float] = {}
    base = sum((await journal.call(journal.counts)).values())
    started = time.time()
    try:
        for index, prompt in enumerate(captions(count, 30_000)):
            await asyncio.sleep(max(0.0, started + index / rate - time.time()))
            receipt = await payer_client.transact(
                "GenerationMarket", "requestGeneration", prompt, 30_000 + index, 25, 1_500, 0, value=price
            )
            mined_at[
                int(payer_client.logs("GenerationMarket", "GenerationRequested", receipt)[0]["args"]["requestId"])
            ] = time.time()
        expected = base + len(mined_at)
        await agents.until(
            lambda c: sum(c.values()) >= expected and not any(c.get(stage) for stage in WAITING), within_s=3_600
        )
    finally:
        await agents.stop()
    latencies: list[float] = []
    registered = await journal.call(journal.reached, jobs.REGISTERED)
    for stage in (jobs.DELIVERED, jobs.ATTESTED):
        for job in await journal.call(journal.at_stage, stage):
            request_id = job.payload.get("market_request")
            if request_id is not None and int(request_id) in mined_at and job.key in registered:
                latencies.append(registered[job.key][1] - mined_at[int(request_id)])
    return {"registered": len(latencies), "submitted": len(mined_at), "latencies": latencies}


async def measure(
    count: int, rate: float, latency_count: int, bursts: int, lanes: tuple[int, int], adapt_after_s: float
) -> dict[str, Any]:
    import ape
    from eth_account import Account

    from agents.app.wiring import open_local
    from agents.daemons.generate import AdaptiveSteps
    from agents.runtime.telemetry import Metrics

    accounts = ape.accounts.test_accounts
    state = Path(tempfile.mkdtemp(prefix="proofmint-bench-"))
    try:
        _, parts = await open_local(
            ape,
            ROOT,
            state,
            originators=[(str(accounts[2].address), 1_000_000)],
            head_sizes=(1,),
            names=FRONT,
            sender_poll=0.01,
            metrics=Metrics(),
        )
        try:
            click.echo(f"raw generator: {count} images ...", err=True)
            raws = [await raw_rate(parts, count)]
            click.echo("pipeline warm-up: 8 requests (not measured) ...", err=True)
            await burst_run(parts, 8, str(accounts[0].address), seed=19_000)
            warm = stage_seconds(parts.metrics)
            runs, unaccounted = [], []
            for index in range(bursts):
                click.echo(f"pipeline, burst {index + 1} of {bursts}: {count} requests at once ...", err=True)
                runs.append(await burst_run(parts, count, str(accounts[0].address), seed=20_000 + 1_000 * index))
                click.echo(f"  and again without cost records: {count} requests at once ...", err=True)
                unaccounted.append(
                    await burst_run(
                        parts, count, str(accounts[0].address), seed=60_000 + 1_000 * index, cost_records=False
                    )
                )
                click.echo(f"raw generator again: {count} images ...", err=True)
                raws.append(await raw_rate(parts, count, seed=40_000 + 1_000 * index))
            busy = {  # over the measured bursts
                stage: (seconds - warm.get(stage, (0.0, 0))[0], batches - warm.get(stage, (0.0, 0))[1])
                for stage, (seconds, batches) in stage_seconds(parts.metrics).items()
            }
            click.echo(f"latency: {latency_count} paid on-chain requests at {rate}/s ...", err=True)
            payer = Account.from_key(accounts[5].private_key)
            paced = await paced_run(parts, payer, latency_count, rate)
            fast, standard = lanes
            click.echo(f"lanes: overload burst of {standard} standard + {fast} fast requests, as asked ...", err=True)
            as_asked = await lane_run(parts, fast, standard, seed=80_000)
            policy = AdaptiveSteps(after_s=adapt_after_s, min_steps=8, factor=0.5)
            click.echo(f"lanes: the same burst, adaptive after {adapt_after_s:g} s ...", err=True)
            adapted = await lane_run(parts, fast, standard, seed=90_000, adaptive=policy)
        finally:
            parts.close()
    finally:
        shutil.rmtree(state, ignore_errors=True)
    return {
        "raw": raws,
        "bursts": runs,
        "unaccounted": unaccounted,
        "busy": busy,
        "paced": paced,
        "lanes": as_asked,
        "lanes_adaptive": adapted,
    }


@click.command()
@click.option("--count", type=click.IntRange(8, 4_096), default=48, show_default=True, help="Requests per burst")
@click.option("--rate", type=click.FloatRange(0.05, 100.0), default=1.0, show_default=True, help="Paced arrivals/s")
@click.option("--latency-count", type=click.IntRange(4, 4_096), default=24, show_default=True)
@click.option("--bursts", type=click.IntRange(1, 16), default=2, show_default=True, help="Pipeline bursts")
@click.option("--fast", type=click.IntRange(1, 4_096), default=48, show_default=True, help="Overload: fast requests")
@click.option(
    "--standard", type=click.IntRange(1, 4_096), default=48, show_default=True, help="Overload: standard requests"
)
@click.option(
    "--adapt-after",
    type=click.FloatRange(0.1, 600.0),
    default=3.0,
    show_default=True,
    help="Overload, adaptive run: standard requests waiting longer get half their steps (at least 8)",
)
def main(
    count: int, rate: float, latency_count: int, bursts: int, fast: int, standard: int, adapt_after: float
) -> None:
    from ape import networks
    from ape.logging import LogLevel, logger

    from agents.runtime.processes import quiet_libraries

    quiet_libraries()
    logger.set_level(LogLevel.ERROR)
    with networks.parse_network_choice("ethereum:local:test"):
        result = asyncio.run(measure(count, rate, latency_count, bursts, (fast, standard), adapt_after))
    raws, runs, paced = result["raw"], result["bursts"], result["paced"]
    raw = statistics.mean(raws)  # measured around every burst: drift cancels
    rates = [run["finished"] / run["wall_s"] for run in runs]
    pipeline = statistics.mean(rates)
    overhead = 1.0 - pipeline / raw
    totals = ("registered", "curated_out", "submitted", "finished", "agents_cpu_s")
    burst = {key: sum(run[key] for run in runs) for key in totals}  # over every burst
    latencies = paced["latencies"]
    p50, p95 = statistics.median(latencies), percentile(latencies, 0.95)
    click.echo("")
    click.echo(f"{'figure':<44} {'proofmint':>12} {'baseline / target':>20}")
    click.echo(f"{'images/s, raw generator (baseline)':<44} {raw:>12.3f} {f'mean of {len(raws)} runs':>20}")
    click.echo(f"{'  around the bursts':<44} {' / '.join(f'{r:.3f}' for r in raws)}")
    click.echo(f"{'requests/s, request to its end (pipeline)':<44} {pipeline:>12.3f} {f'raw {raw:.3f}':>20}")
    click.echo(f"{'  each burst':<44} {' / '.join(f'{r:.3f}' for r in rates)}")
    click.echo(f"{'  overhead of each burst':<44} {' / '.join(f'{1 - r / raw:.1%}' for r in rates)}")
    click.echo(f"{'orchestration overhead (1 - pipeline/raw)':<44} {overhead:>12.1%} {'target <= 5.0%':>20}")
    click.echo(
        f"{'registered + curated out / submitted (bursts)':<44} "
        f"{burst['registered']:>5} + {burst['curated_out']} / {burst['submitted']}"
    )
    per_asset_ms = 1_000 * burst["agents_cpu_s"] / max(1, burst["finished"])
    click.echo(
        f"{'  CPU of agents + embedded chain, ms/request':<44} {per_asset_ms:>12.1f} {'(not the generator)':>20}"
    )
    tail = statistics.mean(run["tail_s"] for run in runs)
    click.echo(f"{'  last image made to last request done, s':<44} {tail:>12.2f} {'mean of the bursts':>20}")
    for stage, (seconds, batches) in sorted(result["busy"].items()):
        click.echo(f"{'  busy in ' + stage + ' (bursts), s':<44} {seconds:>12.2f} {f'{batches} batches':>20}")
    click.echo(f"{'paid event to registered, p50 s (paced)':<44} {p50:>12.2f} {f'{rate}/s arrivals':>20}")
    click.echo(f"{'paid event to registered, p95 s (paced)':<44} {p95:>12.2f}")
    click.echo(f"{'registered / submitted (paced)':<44} {paced['registered']:>8} / {paced['submitted']:<3}")
    unaccounted_rate = statistics.mean(run["finished"] / run["wall_s"] for run in result["unaccounted"])
    accounting = 1.0 - pipeline / unaccounted_rate
    each = " / ".join(f"{run['finished'] / run['wall_s']:.3f}" for run in result["unaccounted"])
    click.echo(f"{'requests/s without cost records':<44} {unaccounted_rate:>12.3f} {each:>20}")
    click.echo(f"{'cost accounting overhead (1 - with/without)':<44} {accounting:>12.1%} {'target <= 2.0%':>20}")
    lanes, adaptive = result["lanes"], result["lanes_adaptive"]
    lane_p95 = {
        name: {lane: percentile(values, 0.95) if values else float("nan") for lane, values in run["latency"].items()}
        for name, run in (("as asked", lanes), ("adaptive", adaptive))
    }
    click.echo(f"{'overload: ' + str(standard) + ' standard + ' + str(fast) + ' fast at once':<44}")
    for name in ("as asked", "adaptive"):
        standard_p95 = f"standard {lane_p95[name]['standard']:.2f}"
        click.echo(f"{'  ' + name + ': fast / standard p95 s':<44} {lane_p95[name]['fast']:>12.2f} {standard_p95:>20}")
    wrong = f"lineage wrong: {adaptive['mislabelled'] + lanes['mislabelled']}"
    click.echo(f"{'  adaptive: standard assets served fewer steps':<44} {adaptive['adapted']:>12} {wrong:>20}")
    figures = {
        "raw_generator_images_per_s": round(raw, 3),
        "pipeline_assets_per_s": round(pipeline, 3),
        "overhead_ratio": round(overhead, 4),
        "event_to_registered_p50_s": round(p50, 3),
        "event_to_registered_p95_s": round(p95, 3),
        "burst_requests": count,
        "bursts": bursts,
        "overhead_ratio_per_burst": [round(1.0 - r / raw, 4) for r in rates],
        "burst_registered": burst["registered"],
        "paced_rate_per_s": rate,
        "paced_registered": paced["registered"],
        "registration_batch_max": 16,
        "agents_cpu_ms_per_request": round(per_asset_ms, 2),
        "burst_tail_s": round(tail, 3),
        "pipeline_assets_per_s_without_cost_records": round(unaccounted_rate, 3),
        "cost_accounting_overhead_ratio": round(accounting, 4),
        "overload_fast_requests": fast,
        "overload_standard_requests": standard,
        "fast_lane_p95_s": round(lane_p95["as asked"]["fast"], 3),
        "standard_lane_p95_s": round(lane_p95["as asked"]["standard"], 3),
        "fast_lane_p95_s_adaptive": round(lane_p95["adaptive"]["fast"], 3),
        "standard_lane_p95_s_adaptive": round(lane_p95["adaptive"]["standard"], 3),
        "adaptive_after_s": adapt_after,
        "adapted_assets": adaptive["adapted"],
        "adapted_lineage_errors": adaptive["mislabelled"] + lanes["mislabelled"],
    }
    click.echo(json.dumps(figures))


if __name__ == "__main__":
    main()
