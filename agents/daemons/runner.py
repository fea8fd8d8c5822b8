"""Runs daemons: each stage as an asyncio task over one journal, wired by wake-up queues.

`Agents` holds the stages of whichever daemons this process runs (all of them for `proofmint up`
and the demo, one for `proofmint agent NAME`). Stages hand work on through the journal; the
queues between them only wake the next stage early (in process: `MemoryQueue`; across processes:
Redis Streams), so a lost wake-up costs at most a stage's `idle` interval, never a job.

Start-up order per chain key: the sender reconciles its previous life's transactions, then the
registrar reconciles its open batch intents against the chain, then the stages run. `stop()` is
graceful: every stage finishes and journals the batch in hand, and nothing is claimed after.

One sender per key, across hosts. Processes that share a journal (PostgreSQL) may run the same
chain-writing daemon with the same key; a lease in the journal (`sender:<address>`, and
`role:registrar` / `role:settlement` for the daemons whose intents and vouchers belong to one
writer) makes one of them the leader. The others run their stages that do not write to the chain
(none, for the registrar, prover and settlement) and stand by; when the leader stops (it drops
its leases) or dies (its leases run out after `lease_ttl_s`), one of them takes over, reconciles
the key's transactions and intents, and goes on. Two processes therefore never hold one nonce.
A leader that cannot renew its leases in time stops with `LeadershipLostError` (its supervisor
restarts it as a standby). Leases compare the hosts' clocks: keep them in sync (NTP), to well
within `lease_ttl_s`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from agents.core.errors import RetryableError
from agents.daemons.market import MarketWatcher
from agents.daemons.register import CommitStage, RegisterStage
from agents.daemons.settle import SettleStage
from agents.runtime import jobs
from agents.runtime.chain import ChainClient
from agents.runtime.journal import Journal
from agents.runtime.stage import Stage
from agents.runtime.telemetry import Metrics

log = logging.getLogger("proofmint.agents")

#: How long a sender lease lasts without renewal: how soon a standby takes over a dead leader.
LEASE_TTL_S = 15.0


class LeadershipLostError(RetryableError):
    """Another process took this one's sender lease (it could not renew in time): it stops
    sending at once. Restarted, it stands by until the lease is free again."""


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
    #: the stages that send with the clients' keys: they run only while this process leads
    chain_stages: frozenset[str] = frozenset()
    #: daemons of which one process leads whatever its key (see the module docstring)
    roles: Sequence[str] = ()
    #: who this process is, in the journal's leases
    worker: str = "local"
    lease_ttl_s: float = LEASE_TTL_S
    _tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)
    _leading: bool = False

    @property
    def leases(self) -> list[str]:
        """The journal leases this process must hold to send (none without a chain key)."""
        if not self.clients:
            return []
        return [*(f"sender:{c.address.lower()}" for c in self.clients), *(f"role:{r}" for r in self.roles)]

    @property
    def leading(self) -> bool:
        return self._leading

    async def _pause(self, seconds: float) -> bool:
        """Waits `seconds`, or less if `stop` comes first; True when stopping."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)
        return self._stopping.is_set()

    async def start(self) -> None:
        """Starts the stages; with a chain key, leads at once (reconciles, then the chain stages
        run) when its leases are free, else stands by in the background (see the module
        docstring). Returns once the stages that can run are running."""
        chain = [s for s in self.stages if s.name in self.chain_stages] if self.clients else []
        local = [s for s in self.stages if s not in chain]
        self._tasks = [asyncio.create_task(stage.run(), name=stage.name) for stage in local]
        if self.metrics is not None:
            self._tasks.append(asyncio.create_task(self._gauge_loop(self.metrics), name="metrics"))
        if not self.clients:
            return
        holder = await self._take_leases()
        if holder is None:
            await self._lead(chain)
            return
        log.info("standing by", extra={"fields": {"leases": self.leases, "leader": holder}})
        self._tasks.append(asyncio.create_task(self._stand_by(chain), name="stand by"))

    async def _take_leases(self) -> str | None:
        """Takes (or renews) every lease: None if this process holds them all now, else who
        holds one. A partial take is given back, so two standbys never split the leases."""
        taken: list[str] = []
        for name in self.leases:
            holder = await self.journal.call(self.journal.take_lease, name, self.worker, ttl_s=self.lease_ttl_s)
            if holder is not None:
                for mine in taken:
                    await self.journal.call(self.journal.drop_lease, mine, self.worker)
                return holder or "(another process)"
            taken.append(name)
        return None

    async def _stand_by(self, chain: Sequence[Stage]) -> None:
        while not await self._pause(self.lease_ttl_s / 5):
            try:
                holder = await self._take_leases()
            except RetryableError:
                log.warning("standing by: the journal is unreachable; trying again")
                continue
            if holder is None:
                log.info("taking over", extra={"fields": {"leases": self.leases}})
                await self._lead(chain)
                return

    async def _lead(self, chain: Sequence[Stage]) -> None:
        """Holding the leases: reconciles the previous leader's transactions and intents, then
        runs the chain stages, the watchers and the lease renewal."""
        self._leading = True
        for client in self.clients:
            receipts = await client.start()
            if receipts:
                log.info("reconciled transactions", extra={"fields": {"key": client.address, "count": len(receipts)}})
        for stage in chain:
            if isinstance(stage, CommitStage | RegisterStage):
                outcome = await stage.reconcile()
                log.info("reconciled batch intents", extra={"fields": outcome})
        if self._stopping.is_set():  # stopped while taking over: `stop` drops the leases
            return
        self._tasks += [asyncio.create_task(stage.run(), name=stage.name) for stage in chain]
        for watcher in self.watchers:
            self._tasks.append(asyncio.create_task(self._watch(watcher), name=f"watch {watcher.market}"))
        settle = next((s for s in chain if isinstance(s, SettleStage)), None)
        if settle is not None and self.withdraw_every_s:
            self._tasks.append(asyncio.create_task(self._withdraw_loop(settle, self.withdraw_every_s)))
        self._tasks.append(asyncio.create_task(self._renew_loop(chain), name="renew leases"))

    async def _renew_loop(self, chain: Sequence[Stage]) -> None:
        """Renews the leases every third of their time; an unreachable journal is tried again
        until two thirds have gone, then (as when another process holds one) the chain stages
        stop at once and the loop fails with `LeadershipLostError`."""
        loop = asyncio.get_running_loop()
        renewed = loop.time()
        while not await self._pause(self.lease_ttl_s / 3):
            try:
                holder = await self._take_leases()
            except RetryableError:
                if loop.time() - renewed < self.lease_ttl_s * 2 / 3:
                    continue
                holder = "(unknown: journal unreachable)"
            if holder is None:
                renewed = loop.time()
                continue
            for stage in chain:  # stop sending at once: the nonce is someone else's now
                stage.stop()
            self._leading = False
            raise LeadershipLostError(f"lost the sender leases {self.leases} to {holder}")

    async def _watch(self, watcher: MarketWatcher) -> None:
        """Polls a market for paid requests; a failed poll is retried at the next interval."""
        while not self._stopping.is_set():
            try:
                await watcher.poll()
            except Exception:
                log.exception("market poll failed; next try on schedule")
            await self._pause(self.watch_every_s)

    async def _gauge_loop(self, metrics: Metrics) -> None:
        """Keeps the journal's gauges current (the journal is the truth): jobs per stage, and
        per stage a job can wait at, the backlog and its oldest job's age (zero when empty)."""
        reported: set[str] = set()
        while True:
            for stage, count in (await self.journal.call(self.journal.counts)).items():
                metrics.jobs.labels(stage).set(count)
            backlog = {
                stage: ready
                for stage, ready in (await self.journal.call(self.journal.backlog)).items()
                if stage not in jobs.FINAL
            }
            for stage in reported - set(backlog):  # emptied since: zero, not stale
                backlog[stage] = (0, 0.0)
            for stage, (count, age) in backlog.items():
                metrics.backlog.labels(stage).set(count)
                metrics.oldest_age.labels(stage).set(age)
            reported |= set(backlog)
            if await self._pause(self.metrics_every_s):
                return

    async def _withdraw_loop(self, settle: SettleStage, every: float) -> None:
        while not self._stopping.is_set():
            await self._pause(every)  # and once more as the daemons stop
            try:
                withdrawn = await settle.withdraw_due(self.withdraw_currencies)
                if withdrawn:
                    log.info("withdrew royalties", extra={"fields": {"amounts": withdrawn}})
            except Exception:
                log.exception("scheduled withdrawal failed; next try on schedule")

    async def stop(self) -> None:
        """Every stage finishes the batch in hand and claims nothing after; then the leases go,
        so a standby takes over at once."""
        self._stopping.set()
        for stage in self.stages:
            stage.stop()
        awaited = 0
        while awaited < len(self._tasks):  # a standby taking over meanwhile adds tasks
            batch = self._tasks[awaited:]
            awaited = len(self._tasks)
            results = await asyncio.gather(*batch, return_exceptions=True)
            for task, result in zip(batch, results, strict=True):
                if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
                    log.error("daemon task %s ended with %r", task.get_name(), result)
        if self._leading:
            self._leading = False
            for name in self.leases:
                with contextlib.suppress(Exception):
                    await self.journal.call(self.journal.drop_lease, name, self.worker)

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
