"""Scale-out benchmark: `python bench/scale.py [--assets N] [--profile]` (issue 23).

One run on this machine, anvil as the chain (started here without the per-step tracing
ape-foundry adds, which no production node does: `own_anvil(tracing=False)`), a PostgreSQL server and a
Redis server of its own (started here in temporary folders). A pre-made corpus of images (the procedural dataset's
renders of its captions through the shipped `Generator`'s lineage code, made once and cached in
.cache/bench-scale/; generation is not measured) is journaled at `generated` with its blocks in
the store, then the daemons turn it into registered assets: `proofmint agent curator`, `...
publisher` and `... registrar` as separate processes, exactly as an operator runs them (the real
tiny CLIP and curation head decide; C2PA sidecars, metadata and commitments are made and
stored; `registerMany` batches go to anvil), sharing the journal, the store and Redis. The
clock runs from the moment the corpus becomes visible at `generated` until every job reached
its end (registered on chain, or set aside in review or rejected by the curator, whose verdict
is part of the work). Each run has a Redis database of its own. Side by side:

- `assets_per_min_end_to_end`: one process per daemon, journal and store on PostgreSQL, the whole
  run; `assets_per_min_steady`: the same run from the moment a tenth of the corpus reached its
  end to the moment nine tenths did (the pipeline filling and draining left out). 2,000 assets by
  default: a run of 600 lasted about 6 s, of which the fill and the drain were a large part;
- `assets_per_min_sqlite`: the same on the embedded default (a SQLite journal file and a local
  store folder the three processes share on this host);
- `stage_capacity_per_min`: each daemon alone on the same corpus, one after the other (curator
  from `generated`, then publisher, then registrar), PostgreSQL;
- `scaling_1_to_2_workers`: the end-to-end rate with two processes of each CPU-bound daemon
  (curator, publisher) over the rate with one;
- `cpu_ms_per_asset`: per daemon, the CPU its process(es) used (user + system, from /proc) per
  asset, in the end-to-end PostgreSQL run: where the CPU goes; beside them the shared servers'
  (`postgres`, `anvil`, `redis-server`: every process of each) and the whole machine's
  (`machine`: /proc/stat, all cores, this bench's own polling included), and
  `machine_idle_share`, the share of the cores' time nobody used in that run. `--profile` samples that phase's
  daemons with py-spy (every thread, native frames included) and prints each one's top
  functions by own samples;
- `compute_floor_ms_per_asset` and `ceiling_assets_per_min`: what curating, publishing and
  committing one asset must compute (CLIP embeddings, C2PA signature, Poseidon commitment; see
  `bench/scale_floor.py`), measured last on one thread, and the rate that alone allows on this
  machine's cores;
- the prover and settlement figures come from `bench/scale_prove_settle.py` when it is there
  (`prover_inferences_per_min_per_core`, `prover_cores_for_10k_per_min`,
  `vouchers_settled_per_min`).

A run in which any job failed reports no rate: it stops naming the first failure in the daemons'
logs (the corpus is cached, so a lineage format change once made every job fail at the
publisher and the rates counted failures). The target is 10,000 assets a minute end to end.
The last line is one JSON object.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Final

import click

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.scale_floor import BATCH, compute_floor  # noqa: E402
from tests.agents.runtime.anvil import free_port  # noqa: E402

DAEMONS = ("curator", "publisher", "registrar")
#: Where a job's way through curate -> publish -> register ends (registered: on chain; the
#: registrar's deliver step after it fulfils market requests, none here)
DONE = ("registered", "delivered", "review", "rejected", "failed")
CORPUS = ROOT / ".cache" / "bench-scale"
TARGET_PER_MIN = 10_000


def corpus(count: int, seed: int) -> list[tuple[str, bytes, dict[str, Any]]]:
    """`count` (caption, PNG, lineage) of the procedural dataset, seeded: made once, then read
    from .cache/bench-scale/ (generation is not what this measures)."""
    folder = CORPUS / f"seed{seed}-n{count}"
    index = folder / "index.json"
    if index.is_file():
        items = json.loads(index.read_text())
        return [(c, (folder / f"{i}.png").read_bytes(), lineage) for i, (c, lineage) in enumerate(items)]
    from dataclasses import asdict

    from agents.core.requests import GenerationRequest
    from agents.models.generator import Generator
    from media.dataset import compositions
    from tests.agents.daemons.crash_worker import ProceduralRunner

    pool = sorted(c.caption for c in compositions("train"))
    requests = [GenerationRequest(prompt=pool[(seed * 7919 + i) % len(pool)], seed=seed + i) for i in range(count)]
    generator = Generator(ProceduralRunner(), "procedural", batch=16)
    with ThreadPoolExecutor(1) as pool:  # a loop of its own (the caller's may be running)
        images = pool.submit(asyncio.run, generator.generate_each(requests)).result()
    folder.mkdir(parents=True, exist_ok=True)
    items = []
    for i, (request, image) in enumerate(zip(requests, images, strict=True)):
        assert not isinstance(image, Exception), image
        (folder / f"{i}.png").write_bytes(image.png)
        items.append((request.prompt, asdict(image.lineage)))
    index.write_text(json.dumps(items))
    return corpus(count, seed)


def load(journal_url: str | Path, store_url: str | Path, items: list[Any], model_id: int, requester: str) -> int:
    """Journals the corpus at the holding stage `corpus` with its blocks in the store (not
    measured); returns how many."""
    from agents.core.requests import GenerationRequest
    from agents.models.generator import Lineage
    from agents.runtime import jobs
    from agents.runtime.journal import Journal
    from agents.storage.pgstore import open_store

    journal = Journal(journal_url, final=jobs.FINAL)
    store = open_store(store_url)
    store.create()
    try:
        for prompt, png, lineage_doc in items:
            lineage = Lineage(**{**lineage_doc, "model_id": model_id})
            request = GenerationRequest(
                prompt=prompt, seed=int(lineage_doc["seed"]), steps=lineage.steps, guidance=lineage.guidance
            )
            key, _ = jobs.submit_request(journal, request, requester=requester, source="bench")
            cid = store.add_bytes(png)
            params = store.add_bytes(lineage.canonical())
            updates = {
                "cid": str(cid),
                "sha256": hashlib.sha256(png).hexdigest(),
                "params_digest": lineage.params_digest().hex(),
                "params_cid": str(params),
                "lineage": lineage.as_dict(),  # what params_digest hashes (no unset adaptation fields)
                "generated_at": time.time(),
            }
            journal.advance([key], jobs.REQUESTED, "corpus", updates={key: updates})
        return len(items)
    finally:
        journal.close()
        store.close()


def release(journal_url: str | Path) -> float:
    """Makes the whole corpus visible at `generated` at once; the time it did."""
    from agents.runtime import jobs
    from agents.runtime.journal import Journal

    journal = Journal(journal_url, final=jobs.FINAL)
    try:
        with journal.db.transaction() as db:
            db.execute("UPDATE jobs SET stage = 'generated', updated_at = ? WHERE stage = 'corpus'", (time.time(),))
        return time.monotonic()
    finally:
        journal.close()


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its reaped children, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = sum(int(fields[i]) for i in (11, 12, 13, 14))
    return ticks / os.sysconf("SC_CLK_TCK")


SERVERS = ("postgres", "anvil", "redis-server")
"""The shared servers' process names (/proc/PID/comm): what the daemons' CPU per asset leaves out."""


def servers_cpu() -> dict[str, float]:
    """CPU seconds (with reaped children: PostgreSQL's ended backends) of every process of each
    shared server on this machine, by server."""
    used = dict.fromkeys(SERVERS, 0.0)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            name = (entry / "comm").read_text().strip()
            if name in used:
                used[name] += cpu_seconds(int(entry.name))
        except (OSError, ValueError):  # ended meanwhile
            continue
    return used


def machine_busy() -> tuple[float, float]:
    """(busy, idle) CPU seconds of the whole machine since boot, all cores, from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    busy = sum(fields[:8]) - idle  # user nice system idle iowait irq softirq steal
    tick = os.sysconf("SC_CLK_TCK")
    return busy / tick, idle / tick


class Drain:
    """Takes the wake-ups off a stream nobody reads here (the prover's, `delivered`: it is
    measured on its own; with one daemon alone, that daemon's outbox), as its reader would: a
    stream nobody reads holds its producer back once full, then every stage upstream."""

    def __init__(self, url: str, stage: str = "delivered") -> None:
        self.stream = f"proofmint:queue:{stage}"
        import threading

        from redis import Redis

        self.client = Redis.from_url(url)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        from redis.exceptions import RedisError

        while not self.stopping.wait(0.1):
            with contextlib.suppress(RedisError):  # a busy moment: the next round takes them
                self.client.xtrim(self.stream, maxlen=0)

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(5)
        self.client.close()


class Fleet:
    """Daemon processes (`proofmint agent NAME`) on the shared servers."""

    def __init__(self, env: dict[str, str], folder: Path, base: list[str]) -> None:
        self.env, self.folder, self.base = env, folder, base
        self.processes: list[tuple[str, subprocess.Popen[bytes], int]] = []

    def start(self, name: str, count: int, extra: list[str]) -> None:
        for n in range(count):
            port = free_port()
            state = self.folder / f"{name}-{n}"
            state.mkdir(parents=True, exist_ok=True)
            command = [
                str(Path(sys.executable).parent / "proofmint"),
                "agent",
                name,
                *self.base,
                "--state",
                str(state),
                "--worker",
                f"{name}-{n}",
                "--metrics-port",
                str(port),
                *extra,
            ]
            log = (self.folder / f"{name}-{n}.log").open("wb")
            process = subprocess.Popen(command, env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
            self.processes.append((name, process, port))

    def wait_ready(self, within_s: float = 180.0) -> None:
        import urllib.request

        deadline = time.monotonic() + within_s
        for name, process, port in self.processes:
            while True:
                if process.poll() is not None:
                    tails = [p.read_text(errors="replace")[-3_000:] for p in self.folder.glob(f"{name}-*.log")]
                    raise RuntimeError(f"{name} exited:\n" + "\n".join(tails))
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).read()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"{name} did not start: see {self.folder}") from None
                    time.sleep(0.2)

    def sample(self) -> list[subprocess.Popen[bytes]]:
        """py-spy sampling every thread (native frames too) of each daemon until `unsample`."""
        spy = str(Path(sys.executable).parent / "py-spy")
        samplers = []
        seen: dict[str, int] = {}
        for name, process, _ in self.processes:
            seen[name] = seen.get(name, -1) + 1
            out = self.folder / f"{name}-{seen[name]}.stacks"
            samplers.append(
                subprocess.Popen(
                    [spy, "record", "--pid", str(process.pid), "--rate", "250", "--format", "raw", "--nonblocking",
                     "--output", str(out)],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )  # fmt: skip
        time.sleep(1.0)  # attached
        return samplers

    @staticmethod
    def unsample(samplers: list[subprocess.Popen[bytes]]) -> None:
        for sampler in samplers:
            sampler.send_signal(signal.SIGINT)  # py-spy writes what it sampled
        for sampler in samplers:
            sampler.wait(timeout=60)

    def cpu(self) -> dict[str, float]:
        used: dict[str, float] = {}
        for name, process, _ in self.processes:
            used[name] = used.get(name, 0.0) + cpu_seconds(process.pid)
        return used

    def stop(self) -> None:
        for _, process, _ in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for _, process, _ in self.processes:
            try:
                process.wait(timeout=120)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes = []


POLL_S: Final = 0.1
"""How often the bench reads the journal's counts while it measures: each read is a scan of the
jobs table (about 1.5 ms of PostgreSQL's CPU in a 2,000-asset run), and at every 50 ms those
reads were the second largest statement time of the run (0.5 of 3.7 s, pg_stat_statements): the
bench's own load on what it measures. At 100 ms the end of a run is seen at most 0.1 s late."""

STEADY: Final = (0.1, 0.9)
"""The steady part of a run: from the moment a tenth of the jobs reached their end to the moment
nine tenths did (the pipeline filling up and draining lie outside it)."""


def until_done(
    journal_url: str | Path,
    count: int,
    *,
    within_s: float,
    waiting: tuple[str, ...] | None = None,
    reached: dict[float, float] | None = None,
) -> float:
    """Polls the journal until `count` jobs are at the end stages (or, with `waiting`, until
    none is at those stages); returns when (monotonic). `reached` gets, for each share of
    `STEADY`, when that share of `count` first was at the end stages."""
    from agents.runtime import jobs
    from agents.runtime.journal import Journal

    journal = Journal(journal_url, final=jobs.FINAL)
    deadline = time.monotonic() + within_s
    try:
        while True:
            counts = journal.counts()
            if waiting is not None:
                if not any(counts.get(stage) for stage in waiting):
                    return time.monotonic()
            else:
                done = sum(counts.get(stage, 0) for stage in DONE)
                if reached is not None:
                    for share in STEADY:
                        if done >= share * count:
                            reached.setdefault(share, time.monotonic())
                if done >= count:
                    return time.monotonic()
            if time.monotonic() > deadline:
                raise TimeoutError(f"not done in {within_s:.0f} s: {counts}")
            time.sleep(POLL_S)
    finally:
        journal.close()


def ended_at(journal_url: str | Path) -> dict[str, int]:
    """How many jobs the journal holds at each stage (after a run: where they ended)."""
    from agents.runtime import jobs
    from agents.runtime.journal import Journal

    journal = Journal(journal_url, final=jobs.FINAL)
    try:
        return {str(stage): int(n) for stage, n in journal.counts().items()}
    finally:
        journal.close()


def first_failure(folder: Path) -> str:
    """The first `job failed` line of the daemons' logs in `folder` (or where to look)."""
    for log in sorted(folder.glob("*.log")):
        for line in log.read_text(errors="replace").splitlines():
            if '"job failed"' in line:
                return f"{log.name}: {line}"
    return f"no failure logged in {folder}"


def print_profile(folder: Path, top: int = 14) -> None:
    """Per daemon, the functions that were on CPU most (own samples: the innermost frame of
    each sampled stack), from py-spy's collapsed stacks."""
    for path in sorted(folder.glob("*.stacks")):
        own: dict[str, int] = {}
        total = 0
        for line in path.read_text(errors="replace").splitlines():
            stack, _, count = line.rpartition(" ")
            if not count.isdigit():
                continue
            leaf = stack.split(";")[-1]
            own[leaf] = own.get(leaf, 0) + int(count)
            total += int(count)
        click.echo(f"\n-- {path.stem}: {total} samples; top {top} by own samples --", err=True)
        for leaf, count in sorted(own.items(), key=lambda kv: kv[1], reverse=True)[:top]:
            click.echo(f"  {100 * count / max(total, 1):5.1f}%  {leaf[:150]}", err=True)


@click.command()
@click.option("--assets", "count", type=click.IntRange(50, 100_000), default=2_000, show_default=True)
@click.option("--profile", is_flag=True, help="Sample the PostgreSQL phase's daemons with py-spy; print where CPU went")
@click.option("--skip-prove-settle", is_flag=True, help="Leave out the prover and settlement figures")
@click.option("--keep", is_flag=True, help="Keep the run's folder (daemon logs, profiles) and print where it is")
def main(count: int, profile: bool, skip_prove_settle: bool, keep: bool) -> None:
    from ape import networks
    from ape.logging import LogLevel, logger

    from agents.app.devnode import own_anvil
    from agents.runtime.processes import quiet_libraries
    from tests.pg_support import postgres_server
    from tests.redis_support import redis_server

    quiet_libraries()
    logger.set_level(LogLevel.ERROR)
    work = Path(tempfile.mkdtemp(prefix="proofmint-bench-scale-"))
    try:
        with (
            postgres_server() as postgres,
            redis_server(work) as redis_url,
            own_anvil(networks, tracing=False),
            networks.parse_network_choice("ethereum:local:foundry"),
        ):
            # the prover and settlement first, while anvil is small: it keeps every block's state
            # in memory, and thousands of registrations later it can run out of it
            figures = {} if skip_prove_settle else prove_settle(work, postgres)
            figures.update(asyncio.run(run(work, postgres, redis_url, count, profile)))
        # last, on a quiet machine: what each asset must compute whatever orchestration costs
        click.echo("the compute floor of an asset ...", err=True)
        figures.update(compute_floor([(caption, png) for caption, png, _ in corpus(count, 4)[:BATCH]]))
    finally:
        if keep:
            click.echo(f"the run's folder: {work}", err=True)
        else:
            shutil.rmtree(work, ignore_errors=True)
    report(figures, count)


def prove_settle(work: Path, postgres: Any) -> dict[str, Any]:
    """The prover (one core) and settlement figures (`bench/scale_prove_settle.py`), on a
    deployment of their own on the same anvil, journal and store on PostgreSQL."""
    import ape

    from bench.scale_prove_settle import prove_settle_figures

    figures = asyncio.run(
        prove_settle_figures(
            ape,
            work / "prove-settle",
            journal=postgres.database(),
            store=postgres.database(),
            progress=lambda message: click.echo(message, err=True),
        )
    )
    click.echo(f"prover and settlement: {json.dumps(figures)}", err=True)
    return dict(figures)


async def run(work: Path, postgres: Any, redis_url: str, count: int, profile: bool) -> dict[str, Any]:
    import ape

    from agents.app.wiring import open_local

    accounts = ape.accounts.test_accounts
    operator = accounts[0]
    rpc = str(ape.chain.provider.uri)
    click.echo("deploying and registering the models on anvil ...", err=True)
    setup_journal = postgres.database()
    setup, parts = await open_local(
        ape,
        ROOT,
        work / "setup",
        originators=[(str(accounts[2].address), 1_000_000)],
        head_sizes=(1,),
        names=[],
        journal=setup_journal,
    )
    parts.close()
    record = work / "deployment.json"
    record.write_text(json.dumps({"contracts": [{"name": n, "address": a} for n, a in setup.addresses.items()]}))
    base = ["--rpc", rpc, "--deployment", str(record)]
    databases = iter(range(16))  # a Redis database per run: no wake-ups left over from the last
    env = {**os.environ, "PROOFMINT_AGENT_KEY": operator.private_key, "PYTHONPATH": str(ROOT)}
    model = ["--model-id", str(setup.t2i_model_id)]
    extra = {"curator": [], "publisher": model, "registrar": model}
    requester = str(operator.address)

    def phase(
        label: str,
        seed: int,
        journal: str | Path,
        store: str | Path,
        workers: dict[str, int],
        *,
        profiled: bool = False,
    ) -> dict[str, Any]:
        items = corpus(count, seed)
        load(journal, store, items, setup.t2i_model_id, requester)
        folder = work / label
        database = f"{redis_url}/{next(databases)}"
        redis = ["--redis", database]
        fleet = Fleet(env, folder, [*base, *redis, "--journal", str(journal), "--store", str(store)])
        drain = Drain(database)
        try:
            for name, n in workers.items():
                fleet.start(name, n, extra[name])
            fleet.wait_ready()
            samplers = fleet.sample() if profiled else []
            cpu_before, servers_before, machine_before = fleet.cpu(), servers_cpu(), machine_busy()
            started = release(journal)
            reached: dict[float, float] = {}
            ended = until_done(journal, count, within_s=3_600, reached=reached)
            cpu = {k: v - cpu_before.get(k, 0.0) for k, v in fleet.cpu().items()}
            cpu.update({k: v - servers_before[k] for k, v in servers_cpu().items()})
            busy, idle = (after - before for after, before in zip(machine_busy(), machine_before, strict=True))
            fleet.unsample(samplers)
        finally:
            fleet.stop()
            drain.stop()
        rate = count / (ended - started) * 60
        low, high = STEADY
        steady = (high - low) * count / max(reached[high] - reached[low], 1e-9) * 60
        ends = ended_at(journal)
        if ends.get("failed"):
            raise SystemExit(f"{label}: {ends['failed']} jobs failed, so no rate is reported: {first_failure(folder)}")
        click.echo(
            f"{label}: {count} assets in {ended - started:.1f} s = {rate:,.0f} per minute "
            f"({steady:,.0f} from a tenth to nine tenths done) "
            f"({', '.join(f'{n} {stage}' for stage, n in sorted(ends.items()))})",
            err=True,
        )
        if profiled:
            print_profile(folder)
        cpu["machine"] = busy
        return {
            "rate": rate,
            "steady": steady,
            "cpu_ms": {k: round(1_000 * v / count, 2) for k, v in cpu.items()},
            "idle_share": round(idle / max(busy + idle, 1e-9), 3),
        }

    one = {name: 1 for name in DAEMONS}
    pg = phase("postgresql", 1, postgres.database(), postgres.database(), one, profiled=profile)
    sqlite_folder = work / "sqlite"
    sqlite = phase("sqlite", 2, sqlite_folder / "journal.db", sqlite_folder / "store", one)
    two = phase(
        "two-workers", 3, postgres.database(), postgres.database(), {"curator": 2, "publisher": 2, "registrar": 1}
    )
    alone = stages_alone(
        work,
        env,
        [*base, "--redis", f"{redis_url}/{next(databases)}"],
        extra,
        count,
        setup.t2i_model_id,
        requester,
        postgres.database(),
        postgres.database(),
    )
    return {
        "assets_per_min_end_to_end": round(pg["rate"], 1),
        "assets_per_min_steady": round(pg["steady"], 1),
        "assets_per_min_sqlite": round(sqlite["rate"], 1),
        "stage_capacity_per_min": alone,
        "scaling_1_to_2_workers": round(two["rate"] / pg["rate"], 3),
        "assets_per_min_two_workers": round(two["rate"], 1),
        "cpu_ms_per_asset": pg["cpu_ms"],
        "machine_idle_share": pg["idle_share"],
    }


def stages_alone(
    work: Path,
    env: dict[str, str],
    base: list[str],
    extra: dict[str, list[str]],
    count: int,
    model_id: int,
    requester: str,
    journal: str,
    store: str,
) -> dict[str, float]:
    """Each daemon alone on the corpus, one after the other: jobs per minute through it (of the
    jobs that reached it: the curator sets some aside)."""
    from agents.runtime import jobs
    from agents.runtime.journal import Journal

    load(journal, store, corpus(count, 4), model_id, requester)
    inbox = {
        "curator": ("generated",),
        "publisher": ("curated",),
        "registrar": ("published", "committed", "registered"),
    }
    capacity: dict[str, float] = {}
    redis = base[base.index("--redis") + 1]
    outbox = {"curator": "curated", "publisher": "published", "registrar": "delivered"}
    for name in DAEMONS:
        drain = Drain(redis, outbox[name])
        watcher = Journal(journal, final=jobs.FINAL)
        arrived = count if name == "curator" else watcher.counts().get(inbox[name][0], 0)
        watcher.close()
        fleet = Fleet(env, work / f"alone-{name}", [*base, "--journal", journal, "--store", store])
        try:
            fleet.start(name, 1, extra[name])
            fleet.wait_ready()
            started = release(journal) if name == "curator" else time.monotonic()
            ended = until_done(journal, count, within_s=3_600, waiting=inbox[name])
        finally:
            fleet.stop()
            drain.stop()
        failed = ended_at(journal).get("failed", 0)
        if failed:
            raise SystemExit(f"{name} alone: {failed} jobs failed: {first_failure(work / f'alone-{name}')}")
        capacity[name] = round(arrived / (ended - started) * 60, 1)
        click.echo(f"{name} alone: {capacity[name]:,.0f} per minute ({arrived} jobs reached it)", err=True)
    return capacity


def report(figures: dict[str, Any], count: int) -> None:
    click.echo("")
    click.echo(f"{'figure (' + str(count) + ' assets a run)':<44} {'proofmint':>12} {'target/baseline':>16}")
    e2e = figures.get("assets_per_min_end_to_end", 0.0)
    click.echo(f"{'assets/min end to end, PostgreSQL':<44} {e2e:>12,.0f} {TARGET_PER_MIN:>16,}  target")
    if "assets_per_min_steady" in figures:
        click.echo(
            f"{'  from a tenth to nine tenths done':<44} {figures['assets_per_min_steady']:>12,.0f}"
            f" {TARGET_PER_MIN:>16,}  target"
        )
    click.echo(
        f"{'assets/min end to end, SQLite (embedded)':<44} {figures.get('assets_per_min_sqlite', 0.0):>12,.0f}"
        f" {e2e:>16,.0f}  PostgreSQL"
    )
    click.echo(
        f"{'assets/min, 2 curators + 2 publishers':<44} {figures.get('assets_per_min_two_workers', 0.0):>12,.0f}"
        f" {e2e:>16,.0f}  one each ({figures.get('scaling_1_to_2_workers', 0.0):.2f}x)"
    )
    for name, rate in figures.get("stage_capacity_per_min", {}).items():
        click.echo(f"{'  ' + name + ' alone, per minute':<44} {rate:>12,.0f}")
    for name, ms in figures.get("cpu_ms_per_asset", {}).items():
        click.echo(f"{'  CPU ms per asset, ' + name:<44} {ms:>12.2f}")
    if "machine_idle_share" in figures:
        click.echo(f"{'  idle share of the cores, end to end':<44} {figures['machine_idle_share']:>12.3f}")
    if "compute_floor_ms_per_asset" in figures:
        floor = figures["compute_floor_ms_per_asset"]
        click.echo(f"{'compute floor, CPU ms an asset (one thread)':<44} {floor['total']:>12.2f}")
        for name in ("clip_image", "clip_text", "c2pa_sign", "poseidon"):
            click.echo(f"{'  ' + name:<44} {floor[name]:>12.2f}")
        click.echo(
            f"{'  ceiling on ' + str(figures['ceiling_cores']) + ' cores, assets/min':<44}"
            f" {figures['ceiling_assets_per_min']:>12,.0f} {TARGET_PER_MIN:>16,}  target"
        )
    if "prover_inferences_per_min_per_core" in figures:
        click.echo(
            f"{'prover inferences/min, one core (batch ' + str(figures.get('prover_batch')) + ')':<44}"
            f" {figures['prover_inferences_per_min_per_core']:>12,.1f}"
        )
        click.echo(f"{'  prover cores for 10,000 a minute':<44} {figures['prover_cores_for_10k_per_min']:>12,}")
    if "vouchers_settled_per_min" in figures:
        click.echo(
            f"{'vouchers settled per minute':<44} {figures['vouchers_settled_per_min']:>12,.0f}"
            f" {figures.get('vouchers_settled_per_min_baseline', 0):>16,.0f}  one voucher a settle"
        )
    click.echo(json.dumps(figures))


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
