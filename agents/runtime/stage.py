"""A pipeline stage: jobs at one journal stage in, jobs at the next stage out, crash-safe.

Lifecycle of `Stage.run()`:
1. Free the leases this worker's previous life held (same `worker` id), so a restarted worker
   resumes at once instead of waiting for them to run out.
2. Claim up to `batch` jobs at `origin` under a lease of `lease_s` seconds (jobs whose lease ran
   out, because their worker died, are claimed again). While the batch is in hand the lease is
   renewed every `lease_s / 3` seconds, so a batch may take any time while a dead worker's jobs
   are taken over within `lease_s` (by any worker on any host sharing the journal).
3. Hand them to `process`, which returns one outcome per job: `Done` (advance, to `target` or the
   outcome's own stage, with payload updates), `Failed`, or `Journaled` (process advanced the
   job itself, in one journal transaction with others). An exception out of `process` fails
   the whole batch, retryable or not by its type. Work runs off the event loop where it is heavy
   (subclasses use executors); `process` must be idempotent, because a crash after the work and
   before the journal write means the work is done again.
4. Apply the outcomes: the batch's `Done` jobs advance with one compare-and-set transaction per
   target stage (if another worker got to one of them first, each is then moved on its own and
   that one's result is dropped: one transition per job, ever); a retryable `Failed` waits
   a jittered backoff at its stage, and after `max_attempts` moves to `give_up`; a permanent one
   moves to `give_up` at once. The advanced keys are announced on the output queue together
   (backpressure: a full queue holds this stage back, until it is told to stop).
   A stage that batches (`min_batch` > 1) claims only when `min_batch` jobs are ready or the
   oldest ready one has waited `linger_s` seconds: batches by size or time. A stage that names
   its `upstream` (the journal stages that feed its origin) does not linger when nothing is
   there: no job could join the batch, so waiting would only add latency.
5. With nothing to claim, `idle_work` (a stage's own background chores; none by default), then
   wait for a wake-up on the input queue (taking every wake-up waiting there) or `idle` seconds
   (a batching stage holding back a short batch waits no longer than its oldest job's linger
   has left).
   A wake-up is a hint (the journal holds the jobs): a fault of a queue (its server timed out or
   went away) is logged, and the stage polls the journal every `idle` seconds until it answers.
6. `stop()` (SIGTERM): no new claims; the batch in hand is finished and journaled; `finish` (a
   stage's last chores; none by default); `run` returns.

With `concurrency` > 1, that many of these loops run at once, each with batches of its own (for
a stage whose work runs in a pool of that many workers: the next batch is in the pool before the
last one's results are journaled, so no worker waits on the journal).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from agents.core.costs import without_costs
from agents.runtime.journal import Job, Journal, StaleJobError
from agents.runtime.queues import WorkQueue
from agents.runtime.retry import is_retryable
from agents.runtime.telemetry import Metrics

log = logging.getLogger("proofmint.stage")


@dataclass(frozen=True)
class Done:
    key: str
    updates: dict[str, Any] = field(default_factory=dict)
    stage: str | None = None  # None: the stage's `target`


@dataclass(frozen=True)
class Failed:
    key: str
    error: str
    retryable: bool = True


@dataclass(frozen=True)
class Journaled:
    """`process` already advanced the job itself (several jobs and an intent in one journal
    transaction), with `updates`; the runner only announces it (and counts its costs)."""

    key: str
    stage: str
    updates: dict[str, Any] = field(default_factory=dict)


Outcome = Done | Failed | Journaled


async def cancel_and_wait(*tasks: asyncio.Future[Any]) -> None:
    """Cancels `tasks` and waits until every one has ended (none outlives its caller). A cancel
    of the caller meanwhile is not swallowed: it is raised once they have ended."""
    for task in tasks:
        task.cancel()
    interrupted = False
    while not all(task.done() for task in tasks):
        try:
            await asyncio.wait([task for task in tasks if not task.done()])
        except asyncio.CancelledError:
            interrupted = True
    if interrupted:
        raise asyncio.CancelledError


class Stage(ABC):
    """See the module docstring. Subclasses set the class attributes and write `process`."""

    name: str = "stage"
    origin: str = ""
    target: str = ""
    give_up: str = "failed"

    def __init__(
        self,
        journal: Journal,
        *,
        worker: str,
        inbox: WorkQueue | None = None,
        outbox: WorkQueue | None = None,
        metrics: Metrics | None = None,
        batch: int = 8,
        lease_s: float = 30.0,
        max_attempts: int = 5,
        retry_base: float = 1.0,
        retry_cap: float = 60.0,
        idle: float = 0.5,
        min_batch: int = 1,
        linger_s: float = 0.0,
        upstream: Sequence[str] = (),
        concurrency: int = 1,
        rng: random.Random | None = None,
        cost_records: bool = True,
    ) -> None:
        if not (self.origin and self.target):
            raise TypeError(f"{type(self).__name__} must set origin and target")
        self.journal, self.worker = journal, worker
        self.inbox, self.outbox, self.metrics = inbox, outbox, metrics
        self.batch, self.lease_s, self.max_attempts = batch, lease_s, max_attempts
        self.retry_base, self.retry_cap, self.idle = retry_base, retry_cap, idle
        if not 1 <= min_batch <= batch:
            raise ValueError(f"min_batch must be in 1..batch ({batch}), got {min_batch}")
        self.min_batch, self.linger_s = min_batch, linger_s
        if self.origin in upstream:
            raise ValueError(f"a stage's upstream cannot include its origin {self.origin!r}")
        self.upstream = tuple(upstream)
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        self.concurrency = concurrency
        self._rng = rng or random.Random()
        self.cost_records = cost_records  # off: what jobs consumed is not journaled (a benchmark's baseline)
        self._stopping = asyncio.Event()
        self._due_in: float | None = None  # seconds until a short batch held back is due
        self.processed = 0

    @abstractmethod
    async def process(self, jobs: Sequence[Job]) -> Sequence[Outcome]:
        """One outcome per job (any order)."""

    def stop(self) -> None:
        self._stopping.set()

    async def claim(self) -> list[Job]:
        """Leases the next batch at `origin` (step 2): the oldest ready jobs; a stage may order
        its claims otherwise (the generator serves the fast lane first)."""
        return list(
            await self.journal.call(
                self.journal.claim, self.origin, self.worker, limit=self.batch, lease_s=self.lease_s
            )
        )

    async def idle_work(self) -> None:  # noqa: B027 - a hook: most stages have no chores
        """Background chores for when nothing is ready to claim (step 5); none by default."""

    async def finish(self) -> None:  # noqa: B027 - a hook: most stages have no last chores
        """Last chores once stopped, after the batch in hand is journaled (step 6); none by default."""

    async def run(self) -> None:
        freed = await self.journal.call(self.journal.release_owner, self.worker)
        if freed:
            log.info("freed leases of a previous life", extra={"fields": {"stage": self.name, "jobs": freed}})
        if self.concurrency == 1:
            await self._loop()
            await self.finish()
            return
        loops = [asyncio.ensure_future(self._loop()) for _ in range(self.concurrency)]
        try:
            await asyncio.gather(*loops)
        finally:  # one loop failed: the others go with it, as a lone loop's failure ends the stage
            await cancel_and_wait(*loops)
        await self.finish()

    async def _loop(self) -> None:
        while not self._stopping.is_set():
            if not await self.step():
                await self.idle_work()
                await self._wait()

    async def _wait(self) -> None:
        timeout = self.idle if self._due_in is None else max(0.0, min(self.idle, self._due_in))
        if self.inbox is None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._stopping.wait()
            return
        stop = asyncio.ensure_future(self._stopping.wait())
        # wake-ups are hints (the journal holds the jobs): every one waiting is taken at once
        get = asyncio.ensure_future(self.inbox.drain(self.worker, timeout))
        try:
            await asyncio.wait({stop, get}, return_when=asyncio.FIRST_COMPLETED)
        finally:  # also when this loop is cancelled: neither wait outlives it
            await cancel_and_wait(stop, get)
        if get.cancelled():
            return
        try:
            get.result()
        except Exception as error:  # the queue's server timed out or went away: poll the journal
            self._queue_fault("waiting for a wake-up", error)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._stopping.wait()

    async def _announce(self, keys: Sequence[str]) -> None:
        """Wakes the next stage for `keys` (a full queue holds this stage back). A wake-up is a
        hint, the journal holds the job: one lost to a queue fault costs the next stage at most
        its `idle` interval, so the fault is logged and this stage goes on; and once stopping, a
        queue still full after `idle` seconds (its stage stopped too, or none runs) is left, so
        that the drain ends."""
        if self.outbox is None or not keys:
            return
        put = asyncio.ensure_future(self.outbox.put_many(keys))
        stop = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait({put, stop}, return_when=asyncio.FIRST_COMPLETED)
            if not put.done():  # stopping: a full queue no one drains must not hold the drain up
                await asyncio.wait({put}, timeout=self.idle)
        finally:  # also when this loop is cancelled: neither wait outlives it
            await cancel_and_wait(put, stop)
        if put.cancelled():
            fields = {"stage": self.name, "jobs": len(keys)}
            log.info("stopping with the next stage's queue full: wake-ups not sent", extra={"fields": fields})
            return
        try:
            put.result()
        except Exception as error:
            self._queue_fault("announcing a job", error)

    def _queue_fault(self, doing: str, error: Exception) -> None:
        fields = {"stage": self.name, "doing": doing, "error": f"{type(error).__name__}: {error}"}
        log.warning("wake-up queue fault: polling the journal meanwhile", extra={"fields": fields})

    async def step(self) -> int:
        """Claims, processes and journals one batch; returns how many jobs it claimed."""
        if self.min_batch > 1 and not await self._batch_due():
            return 0
        if self._stopping.is_set():  # draining (SIGTERM): the batch in hand finished, nothing new is claimed
            return 0
        jobs = await self.claim()
        if not jobs:
            return 0
        started = time.monotonic()
        keeper = asyncio.ensure_future(self._keep_leases([job.key for job in jobs]))
        try:
            outcomes = list(await self.process(jobs))
        except asyncio.CancelledError:
            raise
        except Exception as error:
            log.exception("batch failed", extra={"fields": {"stage": self.name, "jobs": len(jobs)}})
            outcomes = [Failed(job.key, f"{type(error).__name__}: {error}", is_retryable(error)) for job in jobs]
        finally:
            await cancel_and_wait(keeper)
        if self.metrics is not None:
            self.metrics.observe(self.name, started, jobs=len(jobs), origin=self.origin)
        by_key = {job.key: job for job in jobs}
        missing = set(by_key) - {o.key for o in outcomes}
        outcomes += [Failed(key, "no outcome from process()", retryable=True) for key in sorted(missing)]
        await self._apply([outcome for outcome in outcomes if outcome.key in by_key])
        self.processed += len(jobs)
        return len(jobs)

    async def _keep_leases(self, keys: list[str]) -> None:
        """Renews the lease of the jobs in hand until cancelled; a failed renewal is tried again
        at the next beat (the jobs stay leased until `lease_s` runs out)."""
        while True:
            await asyncio.sleep(self.lease_s / 3)
            try:
                await self.journal.call(self.journal.extend_leases, keys, self.origin, self.worker, self.lease_s)
            except Exception:
                log.warning("could not renew leases", extra={"fields": {"stage": self.name, "jobs": len(keys)}})

    async def _batch_due(self) -> bool:
        count, waited = await self.journal.call(self.journal.ready, self.origin)
        self._due_in = None
        if count >= self.min_batch or (waited is not None and waited >= self.linger_s):
            return True
        if bool(count and self.upstream) and not await self.journal.call(self.journal.waiting, self.upstream):
            return True
        if waited is not None:
            self._due_in = self.linger_s - waited
        return False

    async def _apply(self, outcomes: Sequence[Outcome]) -> None:
        """Journals a batch's outcomes (step 4): the `Done` ones to each target in one
        compare-and-set transaction, then announces every job that reached `target` at once."""
        announce: list[str] = []
        moves: dict[str, list[Done]] = {}
        for outcome in outcomes:
            if isinstance(outcome, Journaled):
                if self.metrics is not None:
                    self.metrics.count_costs(outcome.updates)
                if outcome.stage == self.target:
                    announce.append(outcome.key)
            elif isinstance(outcome, Done):
                if not self.cost_records:
                    outcome = Done(outcome.key, without_costs(outcome.updates), stage=outcome.stage)
                moves.setdefault(outcome.stage or self.target, []).append(outcome)
        for target, done in moves.items():
            for outcome in await self._advance(done, target):
                if self.metrics is not None:
                    self.metrics.count_costs(outcome.updates)
                if target == self.target:
                    announce.append(outcome.key)
        for outcome in outcomes:
            if isinstance(outcome, Failed):
                await self._fail(outcome)
        await self._announce(announce)

    async def _advance(self, done: list[Done], target: str) -> list[Done]:
        """Moves `done` to `target`, all in one transaction; when one of them is stale (another
        worker moved it first), each on its own, and the stale ones' results are dropped (one
        transition per job, ever). The ones moved."""
        try:
            await self._advance_all(done, target)
            return done
        except StaleJobError as stale:
            if len(done) == 1:
                self._dropped(done[0].key, str(stale))
                return []
        moved = []
        for outcome in done:
            try:
                await self._advance_all([outcome], target)
            except StaleJobError as stale:
                self._dropped(outcome.key, str(stale))
                continue
            moved.append(outcome)
        return moved

    async def _advance_all(self, done: list[Done], target: str) -> None:
        await self.journal.call(
            self.journal.advance,
            [o.key for o in done],
            self.origin,
            target,
            owner=self.worker,
            updates={o.key: o.updates for o in done},
        )

    def _dropped(self, key: str, why: str) -> None:
        log.warning("result dropped", extra={"fields": {"stage": self.name, "key": key, "why": why}})

    async def _fail(self, outcome: Failed) -> None:
        if self.metrics is not None:
            self.metrics.failures.labels(self.name, "retryable" if outcome.retryable else "permanent").inc()
        job = await self.journal.call(self.journal.get, outcome.key)
        attempts = job.attempts if job else self.max_attempts
        wait = self._rng.uniform(0, min(self.retry_cap, self.retry_base * 2.0 ** max(0, attempts - 1)))
        gave_up = await self.journal.call(
            self.journal.release,
            outcome.key,
            self.worker,
            error=outcome.error,
            retry_in=wait,
            max_attempts=self.max_attempts if outcome.retryable else 0,
            give_up_stage=self.give_up,
        )
        log.warning(
            "job failed",
            extra={"fields": {"stage": self.name, "key": outcome.key, "error": outcome.error, "gave_up": gave_up}},
        )
