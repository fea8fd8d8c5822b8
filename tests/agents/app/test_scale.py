"""Scaling signals (issue 23, item 4): the agents' metrics report each journal stage's backlog
and oldest job's age and each worker's throughput and busy time, and `proofmint scale` turns two
scrapes of real /metrics endpoints into the number of workers each stage needs."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from click.testing import CliRunner

from agents.app.main import cli
from agents.app.scale_cli import plan, scrape
from agents.daemons.runner import Agents
from agents.runtime.journal import Job, Journal
from agents.runtime.stage import Done, Outcome, Stage
from agents.runtime.telemetry import Metrics, serve_metrics
from tests.agents.runtime.anvil import free_port


class Curate(Stage):
    name, origin, target = "curator", "generated", "curated"

    async def process(self, jobs: Sequence[Job]) -> Sequence[Outcome]:
        await asyncio.sleep(0.01 * len(jobs))  # 100 jobs per busy second
        return [Done(job.key) for job in jobs]


class Endpoint:
    """A real metrics server on a loop of its own thread (as an agent process serves it)."""

    def __init__(self, metrics: Metrics) -> None:
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.runner = asyncio.run_coroutine_threadsafe(serve_metrics(metrics, port=self.port), self.loop).result(10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/metrics"

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    j = Journal(tmp_path / "j.db", final=("curated",))
    yield j
    j.close()


def test_agents_report_backlog_age_and_throughput_per_stage(journal: Journal):
    for i in range(30):
        journal.submit(f"k{i:02d}", "asset", {}, stage="generated")
    journal.submit("waiting", "asset", {}, stage="requested")
    metrics = Metrics()

    async def main() -> None:
        stage = Curate(journal, worker="w", batch=10, metrics=metrics, idle=0.01)
        agents = Agents(journal, [stage], metrics=metrics, metrics_every_s=0.05)
        await agents.start()
        await agents.until(lambda counts: counts.get("curated", 0) == 30, within_s=30, poll=0.02)
        await asyncio.sleep(0.15)  # a gauge round after the last batch
        await agents.stop()

    asyncio.run(main())
    text = metrics.render().decode()
    assert 'proofmint_processed_jobs_total{stage="generated",step="curator"} 30.0' in text
    assert 'proofmint_backlog{stage="generated"} 0.0' in text  # drained: zero, not a stale 30
    assert 'proofmint_backlog{stage="requested"} 1.0' in text
    busy = next(line for line in text.splitlines() if line.startswith("proofmint_busy_seconds_total"))
    assert 0.25 < float(busy.split()[-1]) < 2.0


def test_plan_sizes_each_stage_for_its_arrivals_and_backlog(journal: Journal):
    metrics = [Metrics(), Metrics()]  # two curator workers
    metrics[0].backlog.labels("generated").set(100)
    metrics[0].backlog.labels("curated").set(40)  # no publisher scraped
    before = [_samples(m) for m in metrics]
    for m in metrics:  # in 10 s each did 50 jobs in 5 busy seconds: 10 jobs per busy second
        m.processed.labels("generated", "curator").inc(50)
        m.busy.labels("generated", "curator").inc(5)
    metrics[0].backlog.labels("generated").set(300)  # and the backlog grew by 200
    metrics[0].oldest_age.labels("generated").set(90)
    after = [_samples(m) for m in metrics]
    [curated, generated] = plan(before, after, interval_s=10, target_latency_s=60)
    assert generated.stage == "generated" and generated.workers == 2 and generated.steps == ["curator"]
    assert generated.throughput_per_s == 10.0 and generated.arrivals_per_s == 30.0
    assert generated.capacity_per_worker_per_s == 10.0
    assert generated.workers_needed == 4  # ceil((30 + 300 / 60) / 10)
    assert generated.behind  # its oldest job waited 90 s > 60 s
    assert curated.workers == 0 and curated.workers_needed is None and curated.backlog == 40


def _samples(metrics: Metrics) -> dict:  # type: ignore[type-arg]
    endpoint = Endpoint(metrics)
    try:
        return scrape(endpoint.url)
    finally:
        endpoint.close()


def test_scale_scrapes_live_endpoints_and_says_what_each_stage_needs():
    metrics = Metrics()
    metrics.backlog.labels("generated").set(12)
    metrics.processed.labels("generated", "curator").inc(40)
    metrics.busy.labels("generated", "curator").inc(4)
    endpoint = Endpoint(metrics)

    def work() -> None:  # the worker keeps going while `scale` measures
        for _ in range(10):
            time.sleep(0.03)
            metrics.processed.labels("generated", "curator").inc(3)
            metrics.busy.labels("generated", "curator").inc(0.3)

    worker = threading.Thread(target=work)
    worker.start()
    try:
        result = CliRunner(mix_stderr=False).invoke(
            cli, ["scale", "--metrics", endpoint.url, "--interval", "0.5", "--target-latency", "2", "--json"]
        )
        table = CliRunner(mix_stderr=False).invoke(cli, ["scale", "--metrics", endpoint.url, "--interval", "0.1"])
    finally:
        worker.join()
        endpoint.close()
    assert result.exit_code == 0, result.output
    [line] = [json.loads(row) for row in result.stdout.splitlines()]
    assert line["stage"] == "generated" and line["workers"] == 1 and line["backlog"] == 12
    assert line["capacity_per_worker_per_s"] == 10.0 and line["workers_needed"] >= 1
    assert table.exit_code == 0 and table.stdout.splitlines()[0].split()[:3] == ["stage", "backlog", "oldest"]


def test_scale_names_an_endpoint_that_is_down_or_not_an_agent():
    down = CliRunner().invoke(cli, ["scale", "--metrics", f"http://127.0.0.1:{free_port()}/metrics"])
    assert down.exit_code == 1 and "Connection refused" in down.output and "Traceback" not in down.output
    from prometheus_client import CollectorRegistry, Gauge

    other = Metrics(CollectorRegistry())
    other.registry = CollectorRegistry()  # what it serves: some other program's metrics
    Gauge("node_load1", "load", registry=other.registry).set(0.5)
    endpoint = Endpoint(other)
    try:
        foreign = CliRunner().invoke(cli, ["scale", "--metrics", endpoint.url])
    finally:
        endpoint.close()
    assert foreign.exit_code == 1 and "no proofmint metrics there" in foreign.output
    missing = CliRunner().invoke(cli, ["scale"])
    assert missing.exit_code == 2 and "--metrics" in missing.output
