"""Prover and settlement capacity (issue 23): `python bench/scale_prove_settle.py [--batch K]
[--proofs N] [--vouchers M] [--payers P]`, on an anvil of its own (`ethereum:local:foundry`) with a
SQLite journal in a temporary state folder. `bench/scale.py` calls the same functions on its own
chain and journal.

- `measure_prover`: the prover daemon's stage as `proofmint agent prover` builds it
  (`build_agents(parts, names=["prover"])`: the shipped `ProveStage` and its pool of one worker
  process), proving real EZKL proofs of the shipped trained curation head (`models/curation-head`,
  circuits of K and 1 inferences from `open_local(..., head_sizes=(K, 1))`, cached under
  .cache/zkml-agents) for N * K registered, delivered assets; each proof is checked by the
  deployed verifier inside `ProvenanceRegistry.attestInference`, and afterwards every asset is
  read back attested on chain. The clock runs from the stage's start to the moment the last asset
  was journaled `attested`: `prover_inferences_per_min_per_core` = inferences attested per minute,
  wall clock. The default K = 24 fills a 2^16-row circuit (about 2,667 rows per inference, as
  `bench/zk.py` says); proving time grows with the rows, so inferences per core-minute depend on
  how full the circuit is, not on K itself (the shipped default, 4, fills 2^14 to 65%).
  `prover_cores_for_10k_per_min` = ceil(10,000 / that figure).

  One core, without touching product code: `open_parts` sizes the pool at one worker (a spawned
  process at `PROVER_NICENESS`); ezkl proves on rayon's global pool, sized by the CPUs the
  process may run on (or `RAYON_NUM_THREADS`). The bench's first task in that pool
  (`pin_worker`) sets `RAYON_NUM_THREADS=1` and `OMP_NUM_THREADS=1` in the worker's environment
  (read when ezkl first builds its pool) and `os.sched_setaffinity` of every thread the worker
  has to one CPU (`--cpu`, default the last this process may use), then imports ezkl, as a
  running daemon's worker has after its first proof. Everything else (event loop, journal,
  anvil) is not pinned: it may run on any CPU, the worker's included, and the worker keeps its
  lower priority, so on a busy machine it yields its core. The worker's CPU time over the run is
  read too: `prover_core_share` (its CPU seconds / wall seconds; 1.0 = it had the core to itself
  and never waited) shows how much of the wall time the core was proving, and
  `prover_inferences_per_cpu_min` what one core gives when proving never waits on the chain or
  the journal (the stage proves, then attests, one batch at a time).

- `measure_settlement`: the settlement daemon's stage as `proofmint agent settlement` builds it
  (`build_agents(parts, names=["settlement"])`: the shipped `SettleStage`, up to 192 vouchers a
  batch), settling M vouchers journaled beforehand (`jobs.submit_voucher`) from P payers (fresh
  eth-account keys funded by an ape test account, each with escrow deposited with the service,
  `bench.api.fund_payers`), each voucher on a channel of its own (payer, service, terms: metered
  terms attached round robin to A registered assets), so every voucher is one to settle. The
  clock runs from the stage's start to the moment the last voucher was journaled final:
  `vouchers_settled_per_min`. The stage also distributes each paid asset's revenue once per
  claimed batch (`RoyaltySplitter.distribute`), so the figure falls as A grows; the transactions
  sent are counted. Baseline: the same stage with batch 1 (one voucher per `settle`, then its
  `distribute`), on vouchers of fresh channels. Scheduled withdrawals (the runner's, not the
  stage's) are off.

Assets are made without the diffusion model: jobs are journaled at `published` with the payload
the publisher leaves (content and parameter digests, an image and a prompt embedding of unit
vectors, the Poseidon input commitment the publisher computes, a metadata URI), and the shipped
registrar daemon (`build_agents(parts, names=["registrar"])`: `registerMany`, then delivery)
registers them on chain; the prover reads the registration numbers it records. Content digests
are random, so no asset is ever found registered or attested already.

The stages work on whatever the journal holds: `measure_prover` refuses a journal with jobs
already at `delivered`, and `measure_settlement` one with vouchers already at `received`. The
settlement's assets stay at `delivered`: on one journal, measure the prover first.
The last line is one JSON object.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import click

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

if TYPE_CHECKING:
    from agents.app.wiring import Parts
    from agents.daemons.runner import Agents
    from agents.runtime.journal import Journal

TARGET_PER_MIN: Final = 10_000
DEFAULT_BATCH: Final = 24
"""Inferences per proof: fills a 2^16-row circuit (24 x about 2,667 rows)."""
DEFAULT_PROOFS: Final = 3
DEFAULT_VOUCHERS: Final = 960
"""Five full settlement batches of 192."""
DEFAULT_PAYERS: Final = 8
DEFAULT_SETTLE_ASSETS: Final = 16
DEFAULT_BASELINE_VOUCHERS: Final = 64
ETH: Final = "0x" + "00" * 20
PRICE_PER_USE: Final = 1  # wei: a finney of escrow covers every payer's vouchers many times over
VOUCHER_TTL_S: Final = 86_400
URI: Final = "ipfs://bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
FUNDER_INDEX: Final = 4
"""The ape test account that funds the payers (0 and 1 deploy and register in `open_local`)."""

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


# ------------------------------------------------------------------ the prover's worker process


def pin_worker(cpu: int) -> dict[str, Any]:
    """Runs in the prover pool's worker process: one rayon (and OpenMP) thread, every thread of
    the process on CPU `cpu`, ezkl imported. What it found and did."""
    os.environ["RAYON_NUM_THREADS"] = "1"
    os.environ["OMP_NUM_THREADS"] = "1"
    ezkl_loaded = "ezkl" in sys.modules  # if so, rayon's pool may exist already (its threads are pinned too)
    threads = [int(task.name) for task in Path("/proc/self/task").iterdir()]
    for tid in threads:
        os.sched_setaffinity(tid, {cpu})
    import zkml.pipeline  # noqa: F401  (ezkl, loaded as a running daemon's worker has it)

    return {"pid": os.getpid(), "cpus": sorted(os.sched_getaffinity(0)), "ezkl_loaded": ezkl_loaded}


def worker_cpu_seconds() -> tuple[int, float]:
    """Runs in the prover pool's worker process: (its pid, its user + system CPU seconds)."""
    times = os.times()
    return os.getpid(), times.user + times.system


# ------------------------------------------------------------------ assets


def _unit(rng: random.Random, dim: int) -> list[float]:
    vector = [rng.gauss(0.0, 1.0) for _ in range(dim)]
    norm = math.sqrt(sum(v * v for v in vector))
    return [v / norm for v in vector]


def published_payload(rng: random.Random, embed_dim: int, input_scale: int) -> dict[str, Any]:
    """A job's payload as the publisher leaves it at `published`, for a random content digest:
    the curator's image and prompt embeddings (unit vectors) and the publisher's input commitment
    of that head row (`agents.daemons.publish.commitment_of`)."""
    from agents.daemons.publish import commitment_of
    from agents.models.head import payload_row

    digest = os.urandom(32)
    payload: dict[str, Any] = {
        "sha256": digest.hex(),
        "params_digest": os.urandom(32).hex(),
        "embedding": _unit(rng, embed_dim // 2),
        "prompt_embedding": _unit(rng, embed_dim - embed_dim // 2),
        "metadata_uri": URI,
    }
    payload["commitment"] = f"{commitment_of(payload_row(payload), digest, input_scale):064x}"
    return payload


async def until_final(
    journal: Journal,
    agents: Agents,
    keys: Collection[str],
    finals: Sequence[str],
    *,
    within_s: float,
    poll_s: float = 0.5,
) -> dict[str, tuple[str, float]]:
    """Waits until every job of `keys` reached one of `finals`: key -> (that stage, when it got
    there, by the journal's clock). Raises the first exception of a stage task that died, and
    TimeoutError after `within_s`."""
    wanted = set(keys)
    deadline = time.monotonic() + within_s
    while True:
        found: dict[str, tuple[str, float]] = {}
        for stage in finals:
            for key, (_, at) in (await journal.call(journal.reached, stage)).items():
                if key in wanted:
                    found[key] = (stage, at)
        if len(found) == len(wanted):
            return found
        failures = agents.failed()
        if failures:
            raise failures[0]
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(wanted) - len(found)} of {len(wanted)} jobs not final after {within_s:.0f} s")
        await asyncio.sleep(poll_s)


async def delivered_assets(
    parts: Parts, count: int, *, seed: int, worker: str = "bench-registrar", within_s: float = 600.0
) -> list[str]:
    """`count` assets journaled at `published` (`published_payload`) and registered on chain by
    the registrar daemon's stages (`registerMany`, then delivery); their job keys, at `delivered`."""
    from agents.app.wiring import build_agents
    from agents.runtime import jobs

    journal = parts.journal
    embed_dim = next(iter(parts.head_models.values()))[0].embed_dim if parts.head_models else 64
    rng = random.Random(seed)
    keys = []
    for _ in range(count):
        payload = await asyncio.to_thread(published_payload, rng, embed_dim, parts.input_scale)
        key = f"asset:{payload['sha256']}"
        await journal.call(journal.submit, key, jobs.ASSET, payload, stage=jobs.PUBLISHED)
        keys.append(key)
    agents = build_agents(parts, names=["registrar"], worker=worker, withdraw_every_s=None)
    await agents.start()
    try:
        ended = await until_final(journal, agents, keys, (jobs.DELIVERED, jobs.FAILED), within_s=within_s)
    finally:
        await agents.stop()
    failed = [key for key, (stage, _) in ended.items() if stage != jobs.DELIVERED]
    if failed:
        job = await journal.call(journal.get, failed[0])
        raise RuntimeError(f"{len(failed)} assets were not registered: {job.error if job else failed[0]}")
    return keys


# ------------------------------------------------------------------ the prover


async def measure_prover(
    parts: Parts,
    *,
    batch: int,
    proofs: int,
    cpu: int | None = None,
    within_s: float = 1_800.0,
    progress: Progress = _quiet,
) -> dict[str, float]:
    """Inferences proven and attested on chain per minute by the prover daemon's stage, its pool
    limited to one core (see the module docstring), over `proofs` proofs of `batch` inferences.

    `parts`: opened with "prover" among `names` (its pool; the parts' key registers the assets
    and attests), with `head_models` of sizes `batch` (the largest) and 1, the
    journal holding no job at `delivered`. `cpu`: the CPU the pool's worker runs on (default:
    the last one this process may use)."""
    from agents.app.wiring import build_agents
    from agents.runtime import jobs

    executor = parts.prover_executor
    if not isinstance(executor, ProcessPoolExecutor):
        raise ValueError("open the parts with 'prover' among names: the prover's process pool is what runs on one core")
    if batch not in parts.head_models or batch != max(parts.head_models) or 1 not in parts.head_models:
        raise ValueError(f"the parts' head circuits are {sorted(parts.head_models)}: open them with ({batch}, 1)")
    journal = parts.journal
    if await journal.call(journal.waiting, [jobs.DELIVERED]):
        raise ValueError(
            "jobs are waiting at `delivered` already: the prover would prove them too; use a fresh journal"
        )
    cpu = max(os.sched_getaffinity(0)) if cpu is None else cpu
    loop = asyncio.get_running_loop()
    pinned = await loop.run_in_executor(executor, pin_worker, cpu)
    threads = (
        "its threads pinned (ezkl was loaded: their number is as it was)"
        if pinned["ezkl_loaded"]
        else "one rayon thread"
    )
    progress(f"prover: worker {pinned['pid']} on CPU {pinned['cpus']}, {threads}")

    count = batch * proofs
    progress(f"prover: registering {count} assets ...")
    keys = await delivered_assets(parts, count, seed=23_001)
    circuit, model_id = parts.head_models[batch]
    progress(f"prover: {proofs} proofs of {batch} inferences (2^{circuit.logrows} rows each) ...")
    agents = build_agents(parts, names=["prover"], worker="bench-prover", withdraw_every_s=None)
    pid, cpu_before = await loop.run_in_executor(executor, worker_cpu_seconds)
    started = time.time()
    await agents.start()
    try:
        ended = await until_final(journal, agents, keys, (jobs.ATTESTED, jobs.UNPROVEN, jobs.FAILED), within_s=within_s)
    finally:
        await agents.stop()
    pid_after, cpu_after = await loop.run_in_executor(executor, worker_cpu_seconds)
    if pid_after != pid or pid != pinned["pid"]:
        raise RuntimeError("the prover's pool changed worker during the run: its CPU figures are not the run's")
    unproven = [key for key, (stage, _) in ended.items() if stage != jobs.ATTESTED]
    if unproven:
        job = await journal.call(journal.get, unproven[0])
        raise RuntimeError(f"{len(unproven)} assets were not attested: {job.error if job else unproven[0]}")
    finished = [await journal.call(journal.get, key) for key in keys]
    sizes = {int(job.payload["proof_size"]) for job in finished if job is not None and "proof_size" in job.payload}
    if sizes != {batch}:
        raise RuntimeError(f"expected proofs of {batch} inferences only, the stage made proofs of {sorted(sizes)}")
    client = parts.chain()
    attested = 0
    for job in finished:
        assert job is not None
        found, _, _ = await client.call(
            "ProvenanceRegistry", "attestationOf", bytes.fromhex(job.payload["sha256"]), model_id
        )
        attested += bool(found)
    if attested != count:
        raise RuntimeError(f"only {attested} of {count} assets read back attested on chain")

    seconds = max(at for _, at in ended.values()) - started
    cpu_s = cpu_after - cpu_before
    per_min = 60.0 * count / seconds
    return {
        "prover_inferences_per_min_per_core": round(per_min, 2),
        "prover_cores_for_10k_per_min": math.ceil(TARGET_PER_MIN / per_min),
        "prover_batch": batch,
        "prover_logrows": circuit.logrows,
        "prover_proofs": proofs,
        "prover_inferences": count,
        "prover_seconds": round(seconds, 2),
        "prover_seconds_per_proof": round(seconds / proofs, 2),
        "prover_core_share": round(cpu_s / seconds, 3),
        "prover_inferences_per_cpu_min": round(60.0 * count / cpu_s, 2),
        "prover_cpu": cpu,
    }


# ------------------------------------------------------------------ settlement


async def _attach_terms(parts: Parts, assets: Sequence[bytes], count: int) -> list[tuple[int, bytes]]:
    """`count` metered terms (ETH, `PRICE_PER_USE` a use), round robin over `assets`, attached by
    their creator (the parts' key): (terms id, asset) each."""
    client = parts.chain()
    terms_input = (ETH, 10**16, PRICE_PER_USE, 0, 0, True, True)

    async def attach(asset: bytes) -> tuple[int, bytes]:
        receipt = await client.transact("LicenseManager", "attachTerms", asset, terms_input)
        (log,) = client.logs("LicenseManager", "TermsAttached", receipt)
        return int(log["args"]["termsId"]), asset

    attached: list[tuple[int, bytes]] = []
    wanted = [assets[i % len(assets)] for i in range(count)]
    for start in range(0, count, 32):  # sent together, one nonce each
        attached += await asyncio.gather(*(attach(asset) for asset in wanted[start : start + 32]))
    return attached


def _signed(
    payers: Sequence[Any],
    service: str,
    terms: Sequence[tuple[int, bytes]],
    count: int,
    deadline: int,
    domain: tuple[int, str],
) -> list[Any]:
    """`count` vouchers, voucher i from payer i % P on terms i // P: a channel each. `domain`:
    (chain id, LicenseManager's address)."""
    from agents.core.settlement import SignedVoucher
    from agents.core.vouchers import Voucher, sign_voucher

    chain_id, manager = domain
    signed = []
    for i in range(count):
        payer = payers[i % len(payers)]
        terms_id, asset = terms[i // len(payers)]
        v = Voucher(str(payer.address), service, asset, terms_id, PRICE_PER_USE * (1 + i % 7), deadline)
        signed.append(SignedVoucher(v, sign_voucher(v, payer.key, chain_id, manager)))
    return signed


async def _settle_run(parts: Parts, vouchers: Sequence[Any], *, batch: int | None, within_s: float) -> dict[str, float]:
    """Journals `vouchers`, runs the settlement daemon's stage until every one is final
    (`batch`: None as built, else that many vouchers a claim); what it did and how fast."""
    from agents.app.wiring import build_agents
    from agents.daemons.settle import SettleStage
    from agents.runtime import jobs

    journal, client = parts.journal, parts.chain()
    if await journal.call(journal.waiting, [jobs.RECEIVED]):
        raise ValueError("vouchers are waiting at `received` already: the stage would settle them too")
    keys = []
    for sv in vouchers:
        key, new = await journal.call(jobs.submit_voucher, journal, sv)
        if not new:
            raise ValueError(f"voucher {key} was journaled before")
        keys.append(key)
    agents = build_agents(parts, names=["settlement"], worker="bench-settlement", withdraw_every_s=None)
    stage = next(s for s in agents.stages if isinstance(s, SettleStage))
    if batch is not None:
        stage.batch = stage.min_batch = batch
    sent_before = int(await client.node(client.web3.eth.get_transaction_count, client.address))
    started = time.time()
    await agents.start()
    try:
        ended = await until_final(journal, agents, keys, (jobs.SETTLED, jobs.SKIPPED, jobs.FAILED), within_s=within_s)
    finally:
        await agents.stop()
    sent = int(await client.node(client.web3.eth.get_transaction_count, client.address)) - sent_before
    left_out = [key for key, (stage_name, _) in ended.items() if stage_name != jobs.SETTLED]
    if left_out:
        job = await journal.call(journal.get, left_out[0])
        reason = (job.payload.get("reason") or job.error) if job else left_out[0]
        raise RuntimeError(f"{len(left_out)} of {len(keys)} vouchers were not settled: {reason}")
    settle_txs = set()
    for key in keys:
        job = await journal.call(journal.get, key)
        if job is not None and "settle_tx" in job.payload:
            settle_txs.add(job.payload["settle_tx"])
    seconds = max(at for _, at in ended.values()) - started
    return {
        "per_min": 60.0 * len(keys) / seconds,
        "seconds": seconds,
        "vouchers": len(keys),
        "settle_txs": len(settle_txs),
        "txs": sent,
    }


async def measure_settlement(
    ape: Any,
    parts: Parts,
    funder: Any,
    *,
    vouchers: int,
    payers: int,
    assets: int = DEFAULT_SETTLE_ASSETS,
    baseline_vouchers: int = DEFAULT_BASELINE_VOUCHERS,
    within_s: float = 1_800.0,
    progress: Progress = _quiet,
) -> dict[str, float]:
    """Vouchers settled per minute by the settlement daemon's stage: `vouchers` vouchers from
    `payers` payers on `assets` assets (see the module docstring), and beside it the same stage
    one voucher a claim over `baseline_vouchers` more (0: no baseline).

    `ape`: connected to the chain the parts' client uses; `funder`: an ape account with ETH for
    the payers' gas and escrow. `parts`: its key is the service's (the assets are registered and
    their terms attached in its name), its journal holding no voucher at `received`."""
    from bench.api import fund_payers

    if vouchers < 1 or payers < 1 or assets < 1 or baseline_vouchers < 0:
        raise ValueError("vouchers, payers and assets must be positive, baseline_vouchers not negative")
    client = parts.chain()
    service = str(client.address)
    progress(f"settlement: registering {assets} assets, funding {payers} payers ...")
    keys = await delivered_assets(parts, assets, seed=23_002)
    digests = [bytes.fromhex(key.removeprefix("asset:")) for key in keys]
    channels = -(-vouchers // payers)
    spare = -(-baseline_vouchers // payers)
    terms = await _attach_terms(parts, digests, channels + spare)
    licenses = client.contract("LicenseManager")
    funded = await asyncio.to_thread(fund_payers, ape, licenses, funder, payers, service)
    block = await client.node(client.web3.eth.get_block, "latest")
    deadline = int(block["timestamp"]) + VOUCHER_TTL_S
    domain = (int(await client.node(lambda: client.web3.eth.chain_id)), str(licenses.address))
    signed = await asyncio.to_thread(_signed, funded, service, terms, vouchers, deadline, domain)
    progress(f"settlement: {vouchers} vouchers from {payers} payers on {channels} terms ...")
    batched = await _settle_run(parts, signed, batch=None, within_s=within_s)
    figures: dict[str, float] = {
        "vouchers_settled_per_min": round(batched["per_min"], 1),
        "settlement_vouchers": vouchers,
        "settlement_payers": payers,
        "settlement_assets": assets,
        "settlement_seconds": round(batched["seconds"], 2),
        "settlement_settle_txs": batched["settle_txs"],
        "settlement_txs": batched["txs"],
    }
    if baseline_vouchers:
        progress(f"settlement baseline: {baseline_vouchers} vouchers, one a claim ...")
        alone = await asyncio.to_thread(_signed, funded, service, terms[channels:], baseline_vouchers, deadline, domain)
        baseline = await _settle_run(parts, alone, batch=1, within_s=within_s)
        figures |= {
            "vouchers_settled_per_min_baseline": round(baseline["per_min"], 1),
            "baseline_vouchers": baseline_vouchers,
            "baseline_seconds": round(baseline["seconds"], 2),
            "baseline_settle_txs": baseline["settle_txs"],
            "baseline_txs": baseline["txs"],
        }
    return figures


# ------------------------------------------------------------------ both, on a deployment of their own


async def prove_settle_figures(
    ape: Any,
    state: Path,
    *,
    journal: str | Path | None = None,
    store: str | Path | None = None,
    batch: int = DEFAULT_BATCH,
    proofs: int = DEFAULT_PROOFS,
    vouchers: int = DEFAULT_VOUCHERS,
    payers: int = DEFAULT_PAYERS,
    settle_assets: int = DEFAULT_SETTLE_ASSETS,
    baseline_vouchers: int = DEFAULT_BASELINE_VOUCHERS,
    cpu: int | None = None,
    progress: Progress = _quiet,
) -> dict[str, float]:
    """Both measurements on the chain ape is connected to: a deployment of their own
    (`open_local`, head circuits of `batch` and 1), parts under `state` on `journal` and
    `store` (a path or a postgresql:// URL each; default: under `state`), the prover first."""
    from agents.app.wiring import open_local

    accounts = ape.accounts.test_accounts
    progress(f"deploying, and the head's circuits x{batch} and x1 (cached under .cache/zkml-agents) ...")
    _, parts = await open_local(
        ape,
        ROOT,
        state,
        originators=[(str(accounts[2].address), 1_000_000)],
        head_sizes=(batch, 1),
        names=["registrar", "prover", "settlement"],
        journal=journal,
        store=store,
        progress=progress,
    )
    try:
        figures = await measure_prover(parts, batch=batch, proofs=proofs, cpu=cpu, progress=progress)
        figures |= await measure_settlement(
            ape,
            parts,
            accounts[FUNDER_INDEX],
            vouchers=vouchers,
            payers=payers,
            assets=settle_assets,
            baseline_vouchers=baseline_vouchers,
            progress=progress,
        )
    finally:
        parts.close()
    return figures


def report(f: dict[str, float], wall_s: float) -> None:
    base = f.get("vouchers_settled_per_min_baseline")
    rows = [
        (
            f"prover inferences/min, one core (x{f['prover_batch']:.0f}, 2^{f['prover_logrows']:.0f} rows)",
            f"{f['prover_inferences_per_min_per_core']:,.1f}",
            "",
            "",
        ),
        ("  prover cores for 10,000 inferences/min", f"{f['prover_cores_for_10k_per_min']:,.0f}", "", ""),
        (
            f"  s per proof, proven and attested ({f['prover_proofs']:.0f} proofs)",
            f"{f['prover_seconds_per_proof']:.2f}",
            "",
            "",
        ),
        ("  share of the core the worker used", f"{f['prover_core_share']:.2f}", "", "1.00: never waited"),
        ("  inferences per CPU-minute of the worker", f"{f['prover_inferences_per_cpu_min']:,.1f}", "", ""),
        (
            f"vouchers settled/min ({f['settlement_vouchers']:.0f}, {f['settlement_payers']:.0f} payers)",
            f"{f['vouchers_settled_per_min']:,.1f}",
            f"{base:,.1f}" if base is not None else "none",
            "same stage, one voucher a claim" if base is not None else "",
        ),
        (
            f"  transactions: settle / all ({f['settlement_assets']:.0f} assets)",
            f"{f['settlement_settle_txs']:.0f} / {f['settlement_txs']:.0f}",
            f"{f['baseline_settle_txs']:.0f} / {f['baseline_txs']:.0f}" if base is not None else "",
            "",
        ),
    ]
    click.echo("")
    click.echo(f"{'figure':<54} {'proofmint':>12} {'baseline':>12}  baseline is")
    for name, ours, theirs, note in rows:
        click.echo(f"{name:<54} {ours:>12} {theirs:>12}  {note}".rstrip())
    click.echo(f"(ran in {wall_s:.0f} s)", err=True)
    click.echo(json.dumps(f, sort_keys=True))


@click.command()
@click.option(
    "--batch",
    type=click.IntRange(2, 256),
    default=DEFAULT_BATCH,
    show_default=True,
    help="Inferences per proof (2,667 rows each: 6 fill 2^14 rows, 24 fill 2^16; a new size builds its circuit once)",
)
@click.option("--proofs", type=click.IntRange(1, 64), default=DEFAULT_PROOFS, show_default=True)
@click.option("--vouchers", type=click.IntRange(1, 100_000), default=DEFAULT_VOUCHERS, show_default=True)
@click.option("--payers", type=click.IntRange(1, 256), default=DEFAULT_PAYERS, show_default=True)
@click.option("--settle-assets", type=click.IntRange(1, 1_024), default=DEFAULT_SETTLE_ASSETS, show_default=True)
@click.option(
    "--baseline-vouchers", type=click.IntRange(0, 10_000), default=DEFAULT_BASELINE_VOUCHERS, show_default=True
)
@click.option(
    "--cpu", type=click.IntRange(0), default=None, help="The CPU the prover's worker runs on (default: the last)"
)
def main(
    batch: int,
    proofs: int,
    vouchers: int,
    payers: int,
    settle_assets: int,
    baseline_vouchers: int,
    cpu: int | None,
) -> None:
    """Prover inferences per minute on one core and vouchers settled per minute, on anvil."""
    import ape
    from ape import networks
    from ape.logging import LogLevel, logger

    from agents.runtime.processes import quiet_libraries

    quiet_libraries()
    logger.set_level(LogLevel.ERROR)
    started = time.monotonic()
    state = Path(tempfile.mkdtemp(prefix="proofmint-bench-prove-settle-"))
    try:
        with networks.parse_network_choice("ethereum:local:foundry"):
            figures = asyncio.run(
                prove_settle_figures(
                    ape,
                    state,
                    batch=batch,
                    proofs=proofs,
                    vouchers=vouchers,
                    payers=payers,
                    settle_assets=settle_assets,
                    baseline_vouchers=baseline_vouchers,
                    cpu=cpu,
                    progress=lambda line: click.echo(line, err=True),
                )
            )
    finally:
        shutil.rmtree(state, ignore_errors=True)
    report(figures, time.monotonic() - started)


if __name__ == "__main__":
    main()
