"""JSON logs and Prometheus metrics (agents/runtime/telemetry.py)."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import socket
import time
from collections.abc import Iterator

import aiohttp
import pytest

from agents.runtime.telemetry import Metrics, json_logging, serve_metrics


@pytest.fixture
def restored_logging() -> Iterator[None]:
    """`json_logging` sets the process's `proofmint` logger: put it back for the tests after."""
    logger = logging.getLogger("proofmint")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    yield
    logger.handlers, logger.level, logger.propagate = saved[0], saved[1], saved[2]


def test_logs_are_one_json_object_per_line_with_fields(restored_logging: None):
    stream = io.StringIO()
    json_logging(stream=stream)
    log = logging.getLogger("proofmint.registrar")
    log.info("batch sent", extra={"fields": {"keys": 3, "tx": "0xab"}})
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        log.exception("failed")
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["msg"] == "batch sent" and first["keys"] == 3 and first["logger"] == "proofmint.registrar"
    assert second["level"] == "error" and "RuntimeError: boom" in second["error"]


def test_metrics_are_served_in_prometheus_format():
    metrics = Metrics()
    metrics.queue_depth.labels("curate").set(4)
    metrics.failures.labels("prove", "timeout").inc()
    metrics.observe("generate", time.monotonic() - 0.2)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    async def main() -> tuple[str, dict[str, bool]]:
        runner = await serve_metrics(metrics, port=port)
        try:
            async with aiohttp.ClientSession() as session:
                async with session.get(f"http://127.0.0.1:{port}/metrics") as response:
                    text = await response.text()
                async with session.get(f"http://127.0.0.1:{port}/healthz") as response:
                    health = await response.json()
        finally:
            await runner.cleanup()
        return text, health

    text, health = asyncio.run(main())
    assert 'proofmint_queue_depth{queue="curate"} 4.0' in text
    assert 'proofmint_stage_failures_total{kind="timeout",stage="prove"} 1.0' in text
    assert 'proofmint_stage_seconds_bucket{le="0.25",stage="generate"} 1.0' in text
    assert health == {"ok": True}


def test_two_metrics_objects_do_not_share_state():
    first, second = Metrics(), Metrics()
    first.transactions.labels("mined").inc()
    assert b'outcome="mined"' in first.render() and b'outcome="mined"' not in second.render()
