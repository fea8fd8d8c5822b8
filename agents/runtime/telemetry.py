"""Structured logs and Prometheus metrics for the daemons.

- Logs: one JSON object per line (`ts`, `level`, `logger`, `msg`, and whatever the call passes
  in `extra={"fields": {...}}`: job key, stage, tx hash), so a log pipeline can index them.
- Metrics: one `Metrics` object per process, on its own registry (no module-level state), served
  at `/metrics` by `serve_metrics`: queue depth and jobs per stage (gauges), stage latency
  (histogram), stage failures and transactions (counters).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Mapping
from typing import Any, TextIO

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from agents.core.costs import STAGES as COST_KEYS

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": round(record.created, 6),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, separators=(",", ":"))


def json_logging(level: int = logging.INFO, stream: TextIO | None = None) -> logging.Handler:
    """Sends the `proofmint` loggers to `stream` (stderr) as JSON lines; returns the handler."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("proofmint")
    logger.handlers = [handler]
    logger.setLevel(level)
    logger.propagate = False
    return handler


class Metrics:
    """The daemons' metrics on one registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.queue_depth = Gauge(
            "proofmint_queue_depth", "Messages waiting in a stage's queue", ["queue"], registry=self.registry
        )
        self.jobs = Gauge("proofmint_jobs", "Jobs per pipeline stage (journal)", ["stage"], registry=self.registry)
        self.latency = Histogram(
            "proofmint_stage_seconds",
            "Time a stage spends on one unit of work",
            ["stage"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.failures = Counter(
            "proofmint_stage_failures", "Failed attempts per stage and kind", ["stage", "kind"], registry=self.registry
        )
        self.transactions = Counter(
            "proofmint_transactions", "Transactions by outcome", ["outcome"], registry=self.registry
        )
        # Scaling signals (`proofmint scale`, KEDA): journal-wide backlog per journal stage, and
        # per worker the jobs it processed and the seconds it was busy (its capacity).
        self.backlog = Gauge(
            "proofmint_backlog", "Jobs ready to be claimed at a journal stage", ["stage"], registry=self.registry
        )
        self.oldest_age = Gauge(
            "proofmint_oldest_job_age_seconds",
            "How long the oldest job ready at a journal stage has waited there",
            ["stage"],
            registry=self.registry,
        )
        self.processed = Counter(
            "proofmint_processed_jobs",
            "Jobs this worker processed, by the journal stage it takes them from and its stage's name",
            ["stage", "step"],
            registry=self.registry,
        )
        self.busy = Counter(
            "proofmint_busy_seconds",
            "Seconds this worker spent processing batches, by journal stage and step",
            ["stage", "step"],
            registry=self.registry,
        )

        # What the jobs consumed (`agents.core.costs` records), as the stages journal it.
        self.cost_seconds = Counter(
            "proofmint_cost_seconds",
            "Compute spent on jobs, by stage, kind (wall, cpu, proof) and device",
            ["stage", "kind", "device"],
            registry=self.registry,
        )
        self.cost_gas = Counter("proofmint_cost_gas", "Gas spent on jobs' transactions, by stage", ["stage"],
                                registry=self.registry)  # fmt: skip
        self.cost_fee_wei = Counter("proofmint_cost_fee_wei", "Fees paid for jobs' transactions (wei), by stage",
                                    ["stage"], registry=self.registry)  # fmt: skip
        self.cost_stored_bytes = Counter("proofmint_cost_stored_bytes", "Bytes stored for jobs, by stage", ["stage"],
                                         registry=self.registry)  # fmt: skip

    def count_costs(self, updates: Mapping[str, Any]) -> None:
        """Adds the cost records among one job's payload `updates` to the totals."""
        for key in COST_KEYS:
            record = updates.get(key)
            if not isinstance(record, Mapping):
                continue
            stage, device = key.removeprefix("cost_"), str(record.get("device", ""))
            for kind in ("wall_s", "cpu_s", "proof_s"):
                if record.get(kind):
                    self.cost_seconds.labels(stage, kind.removesuffix("_s"), device).inc(float(record[kind]))
            if record.get("gas"):
                self.cost_gas.labels(stage).inc(int(record["gas"]))
            if record.get("fee_wei"):
                self.cost_fee_wei.labels(stage).inc(int(record["fee_wei"]))
            if record.get("stored_bytes"):
                self.cost_stored_bytes.labels(stage).inc(int(record["stored_bytes"]))

    def observe(self, stage: str, started: float, *, jobs: int = 0, origin: str | None = None) -> None:
        """One unit of work of `stage` (a batch of `jobs` taken from journal stage `origin`)."""
        elapsed = time.monotonic() - started
        self.latency.labels(stage).observe(elapsed)
        if origin is not None and jobs:
            self.processed.labels(origin, stage).inc(jobs)
            self.busy.labels(origin, stage).inc(elapsed)

    def render(self) -> bytes:
        return bytes(generate_latest(self.registry))


async def serve_metrics(metrics: Metrics, host: str = "127.0.0.1", port: int = 9464) -> Any:
    """Serves `/metrics` (Prometheus text format) and `/healthz`; returns the aiohttp runner
    (the caller owns it: `await runner.cleanup()` on shutdown)."""
    from aiohttp import web

    async def render(_: web.Request) -> web.Response:
        return web.Response(body=metrics.render(), content_type="text/plain", charset="utf-8")

    async def health(_: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_get("/metrics", render)
    app.router.add_get("/healthz", health)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
