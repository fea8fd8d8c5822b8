"""Runs daemons: each stage as an asyncio task over one journal, wired by wake-up queues.

`Agents` holds the stages of whichever daemons this process runs (all of them for `proofmint up`
and the demo, one for `proofmint agent NAME`). Stages hand work on through the journal; the
queues between them only wake the next stage early (in process: `MemoryQueue`; across processes:
Redis Streams), so a lost wake-up costs at most a stage's `idle` interval, never a job.

Start-up order per chain key: the sender reconciles its previous life's transactions, then the
registrar reconciles its open batch intents against the chain, then the stages run. `stop()` is
graceful: every stage finishes and journals the batch in hand.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from agents.daemons.market import MarketWatcher
from agents.daemons.register import CommitStage, RegisterStage
from agents.daemons.settle import SettleStage
from agents.runtime import jobs
from agents.runtime.chain import ChainClient
from agents.runtime.journal import Journal
from agents.runtime.stage import Stage
from agents.runtime.telemetry import Metrics

log = logging.getLogger("proofmint.agents")


@dataclass
class Agents:
    journal: Journal
    stages: list[Stage]
    clients: Sequence[ChainClient] = ()
    withdraw_every_s: float | None = None
    withdraw_currencies: tuple[str, ...] = ("0x0000000000000000000000000000000000000000",)
    metrics: Metrics | None = None
    metrics_every_s: float = 2.0
    watchers: Sequence[MarketWatcher] = ()
    watch_every_s: float = 0.5
    _tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)

    async def start(self) -> None:
        for client in self.clients:
            receipts = await client.start()
            if receipts:
                log.info("reconciled transactions", extra={"fields": {"key": client.address, "count": len(receipts)}})
        for stage in self.stages:
            if isinstance(stage, CommitStage | RegisterStage):
                outcome = await stage.reconcile()
                log.info("reconciled batch intents", extra={"fields": outcome})
        self._tasks = [asyncio.create_task(stage.run(), name=stage.name) for stage in self.stages]
        for watcher in self.watchers:
            self._tasks.append(asyncio.create_task(self._watch(watcher), name=f"watch {watcher.market}"))
        if self.metrics is not None:
            self._tasks.append(asyncio.create_task(self._gauge_loop(self.metrics), name="metrics"))
        settle = next((s for s in self.stages if isinstance(s, SettleStage)), None)
        if settle is not None and self.withdraw_every_s:
            self._tasks.append(asyncio.create_task(self._withdraw_loop(settle, self.withdraw_every_s)))

    async def _watch(self, watcher: MarketWatcher) -> None:
        """Polls a market for paid requests; a failed poll is retried at the next interval."""
        while not self._stopping.is_set():
            try:
                await watcher.poll()
            except Exception:
                log.exception("market poll failed; next try on schedule")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.watch_every_s)

    async def _gauge_loop(self, metrics: Metrics) -> None:
        """Keeps the jobs-per-stage gauge current (the journal is the truth)."""
        while not self._stopping.is_set():
            for stage, count in (await self.journal.call(self.journal.counts)).items():
                metrics.jobs.labels(stage).set(count)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.metrics_every_s)

    async def _withdraw_loop(self, settle: SettleStage, every: float) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), every)
            try:
                withdrawn = await settle.withdraw_due(self.withdraw_currencies)
                if withdrawn:
                    log.info("withdrew royalties", extra={"fields": {"amounts": withdrawn}})
            except Exception:
                log.exception("scheduled withdrawal failed; next try on schedule")

    async def stop(self) -> None:
        self._stopping.set()
        for stage in self.stages:
            stage.stop()
        results = await asyncio.gather(*self._tasks, return_exceptions=True)
        for task, result in zip(self._tasks, results, strict=True):
            if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
                log.error("daemon task %s ended with %r", task.get_name(), result)

    def failed(self) -> list[BaseException]:
        """Exceptions that ended a stage task (a stage only ends on stop, or on a bug)."""
        return [t.exception() for t in self._tasks if t.done() and not t.cancelled() and t.exception() is not None]  # type: ignore[misc]

    async def until(
        self,
        done: Callable[[dict[str, int]], bool],
        *,
        within_s: float,
        poll: float = 0.2,
        progress: Callable[[dict[str, int]], None] | None = None,
    ) -> dict[str, int]:
        """Waits until `done(stage counts)`; raises TimeoutError after `within_s` seconds, and the
        first exception of a stage task that died."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within_s
        while True:
            counts = await self.journal.call(self.journal.counts)
            if progress is not None:
                progress(counts)
            if done(counts):
                return counts
            failures = self.failed()
            if failures:
                raise failures[0]
            if loop.time() > deadline:
                raise TimeoutError(f"the pipeline did not finish in {within_s:.0f} s: {counts}")
            await asyncio.sleep(poll)


def all_final() -> Callable[[dict[str, int]], bool]:
    """`done` for `Agents.until`: every job at a final stage."""

    def done(counts: dict[str, int]) -> bool:
        return sum(counts.values()) > 0 and all(stage in jobs.FINAL for stage in counts)

    return done
