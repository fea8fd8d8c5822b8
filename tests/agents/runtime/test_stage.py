"""The stage runner (agents/runtime/stage.py): outcomes journaled, failures retried then given
up, SIGTERM-style stop, and a two-stage pipeline killed with kill -9 at random points."""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from agents.core.errors import PermanentError
from agents.runtime.journal import Job, Journal
from agents.runtime.queues import MemoryQueue
from agents.runtime.stage import Done, Outcome, Stage
from agents.runtime.telemetry import Metrics

FINAL = ("stored", "rejected", "failed")


class Hash(Stage):
    name, origin, target = "hash", "requested", "hashed"

    def __init__(self, *args: object, fail: dict[str, BaseException] | None = None, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.fail = fail or {}

    async def process(self, jobs: Sequence[Job]) -> Sequence[Outcome]:
        outcomes: list[Outcome] = []
        for job in jobs:
            if job.key in self.fail:
                raise self.fail[job.key]
            if job.payload.get("text") == "forbidden":
                outcomes.append(Done(job.key, {"why": "policy"}, stage="rejected"))
                continue
            outcomes.append(Done(job.key, {"digest": hashlib.sha256(job.payload["text"].encode()).hexdigest()}))
        return outcomes


@pytest.fixture
def journal(tmp_path: Path) -> Journal:
    j = Journal(tmp_path / "j.db", final=FINAL)
    yield j  # type: ignore[misc]
    j.close()


def test_done_advances_and_announces_on_the_outbox(journal: Journal):
    for i in range(5):
        journal.submit(f"k{i}", "t", {"text": f"t{i}"}, stage="requested")
    journal.submit("bad", "t", {"text": "forbidden"}, stage="requested")

    async def main() -> list[str]:
        outbox = MemoryQueue("hashed")
        stage = Hash(journal, worker="w", outbox=outbox, metrics=Metrics(), batch=4)
        while await stage.step():
            pass
        return [m.key for m in [await outbox.get("x", 0.1) for _ in range(5)] if m]

    announced = asyncio.run(main())
    assert sorted(announced) == [f"k{i}" for i in range(5)]
    assert journal.counts() == {"hashed": 5, "rejected": 1}
    job = journal.get("k0")
    assert job is not None and job.payload["digest"] == hashlib.sha256(b"t0").hexdigest()


def test_a_batch_is_journaled_in_one_transaction_a_target_and_announced_at_once(journal: Journal):
    """Every job of a batch that reaches the same stage moves in one compare-and-set
    transaction (not one each), and the batch's announcements go to the outbox together."""
    for i in range(6):
        journal.submit(f"k{i}", "t", {"text": f"t{i}"}, stage="requested")
    journal.submit("bad", "t", {"text": "forbidden"}, stage="requested")
    advances: list[list[str]] = []
    advance = journal.advance

    def counted(keys, *args, **kwargs):  # type: ignore[no-untyped-def]
        advances.append(sorted(keys))
        return advance(keys, *args, **kwargs)

    journal.advance = counted  # type: ignore[method-assign]

    class Outbox(MemoryQueue):
        def __init__(self) -> None:
            super().__init__("hashed")
            self.batches: list[list[str]] = []

        async def put_many(self, keys: Sequence[str]) -> None:
            self.batches.append(list(keys))
            await super().put_many(keys)

    outbox = Outbox()
    stage = Hash(journal, worker="w", outbox=outbox, batch=8)
    assert asyncio.run(stage.step()) == 7
    assert sorted(advances) == [["bad"], [f"k{i}" for i in range(6)]]
    assert [sorted(b) for b in outbox.batches] == [[f"k{i}" for i in range(6)]]
    assert journal.counts() == {"hashed": 6, "rejected": 1}


def test_a_job_another_worker_moved_meanwhile_drops_its_result_and_the_rest_of_the_batch_advances(
    journal: Journal,
):
    """A worker whose lease ran out mid-batch while another took one of its jobs over and
    advanced it: that job's result is dropped (one transition per job, ever, and the other
    worker's stays), and every other job of the batch still advances and is announced."""
    for i in range(4):
        journal.submit(f"k{i}", "t", {"text": f"t{i}"}, stage="requested")

    class Slow(Hash):
        async def process(self, jobs: Sequence[Job]) -> Sequence[Outcome]:
            # the lease runs out and another worker takes k2 over and finishes it first
            journal.release_owner(self.worker)
            [taken] = journal.claim("requested", "other", limit=1, lease_s=30)
            journal.advance([taken.key], "requested", "hashed", owner="other", updates={taken.key: {"by": "other"}})
            return await super().process(jobs)

    async def main() -> list[str]:
        outbox = MemoryQueue("hashed")
        stage = Slow(journal, worker="w", outbox=outbox, batch=4)
        assert await stage.step() == 4
        return [m.key for m in [await outbox.get("x", 0.1) for _ in range(4)] if m]

    announced = asyncio.run(main())
    assert journal.counts() == {"hashed": 4}
    jobs = [journal.get(f"k{i}") for i in range(4)]
    taken = [job.key for job in jobs if job is not None and job.payload.get("by") == "other"]
    assert taken == ["k0"]  # the other worker's result, not overwritten by the dropped one
    assert sorted(announced) == ["k1", "k2", "k3"]


def test_a_stage_without_cost_records_journals_the_outcome_but_not_what_it_cost(journal: Journal):
    from agents.core import costs

    class Costed(Hash):
        async def process(self, jobs: Sequence[Job]) -> Sequence[Outcome]:
            done = await super().process(jobs)
            return [Done(o.key, {**o.updates, costs.GENERATE: costs.compute(1.0, 1.0, "cpu")}) for o in done]

    for name in ("on", "off"):
        journal.submit(name, "t", {"text": name}, stage="requested")

    async def main() -> None:
        metrics = Metrics()
        on = Costed(journal, worker="w", metrics=metrics, batch=1)
        off = Costed(journal, worker="w", metrics=metrics, batch=1, cost_records=False)
        assert await on.step() and await off.step()

    asyncio.run(main())
    kept, dropped = journal.get("on"), journal.get("off")
    assert kept is not None and dropped is not None and kept.stage == dropped.stage == "hashed"
    assert costs.GENERATE in kept.payload and "digest" in kept.payload
    assert costs.GENERATE not in dropped.payload and "digest" in dropped.payload


def test_retryable_failures_back_off_then_give_up(journal: Journal):
    journal.submit("flaky", "t", {"text": "x"}, stage="requested")
    stage = Hash(
        journal, worker="w", max_attempts=3, retry_base=0.0, retry_cap=0.0, fail={"flaky": TimeoutError("slow")}
    )

    async def main() -> None:
        for _ in range(3):
            assert await stage.step() == 1
        assert await stage.step() == 0

    asyncio.run(main())
    job = journal.get("flaky")
    assert job is not None and job.stage == "failed" and "TimeoutError" in (job.error or "")


def test_a_permanent_failure_gives_up_at_once(journal: Journal):
    journal.submit("bad", "t", {"text": "x"}, stage="requested")
    stage = Hash(journal, worker="w", fail={"bad": PermanentError("unreadable")})
    asyncio.run(stage.step())
    job = journal.get("bad")
    assert job is not None and job.stage == "failed" and job.attempts == 1


def test_a_missing_outcome_is_a_retryable_failure(journal: Journal):
    class Forgetful(Hash):
        async def process(self, jobs: Sequence[Job]) -> Sequence[Outcome]:
            return []

    journal.submit("k", "t", {"text": "x"}, stage="requested")
    asyncio.run(Forgetful(journal, worker="w", retry_base=0.0, retry_cap=0.0).step())
    job = journal.get("k")
    assert job is not None and job.stage == "requested" and job.error == "no outcome from process()"


def test_stop_finishes_the_batch_in_hand_and_returns(journal: Journal):
    for i in range(3):
        journal.submit(f"k{i}", "t", {"text": "x"}, stage="requested")

    class Slow(Hash):
        async def process(self, jobs: Sequence[Job]) -> Sequence[Outcome]:
            self.stop()  # SIGTERM arrives mid-batch
            await asyncio.sleep(0.05)
            return [Done(job.key) for job in jobs]

    asyncio.run(asyncio.wait_for(Slow(journal, worker="w", batch=2, inbox=MemoryQueue("in")).run(), 5))
    assert journal.counts() == {"hashed": 2, "requested": 1}  # the batch in hand was journaled


def test_a_stage_whose_next_queue_is_full_and_undrained_still_stops(journal: Journal):
    """The next stage is stopped (or none runs) and its queue is full: announcing holds this
    stage back while it runs, but once it is told to stop, the batch in hand is journaled and
    the stage ends within about `idle` seconds, its wake-ups left unsent (the journal holds the
    jobs). Before, SIGTERM waited for room in that queue for ever."""
    for i in range(4):
        journal.submit(f"k{i}", "t", {"text": f"t{i}"}, stage="requested")

    async def main() -> float:
        outbox = MemoryQueue("hashed", capacity=2)
        await outbox.put_many(["x", "y"])  # full, and nobody reads it
        stage = Hash(journal, worker="w", outbox=outbox, batch=4, idle=0.2)
        runner = asyncio.create_task(stage.run())
        while journal.counts().get("hashed", 0) < 4:  # noqa: ASYNC110 - waiting on the stage under test
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)
        assert not runner.done()  # held back by the full queue
        started = time.monotonic()
        stage.stop()
        await asyncio.wait_for(runner, 5)
        return time.monotonic() - started

    assert asyncio.run(main()) < 2
    assert journal.counts() == {"hashed": 4}


def test_an_idle_stage_does_its_chores_and_its_last_ones_once_stopped(journal: Journal):
    """`idle_work` runs whenever there is nothing to claim (not while a batch is ready), and
    `finish` once, after the last batch is journaled."""
    journal.submit("k0", "t", {"text": "x"}, stage="requested")
    calls: list[str] = []

    class Chores(Hash):
        async def process(self, jobs: Sequence[Job]) -> Sequence[Outcome]:
            calls.append("batch")
            return await super().process(jobs)

        async def idle_work(self) -> None:
            calls.append("idle")
            if calls.count("idle") == 3:
                self.stop()

        async def finish(self) -> None:
            calls.append(f"finish {journal.counts()}")

    asyncio.run(asyncio.wait_for(Chores(journal, worker="w", batch=2, idle=0.01).run(), 5))
    assert calls == ["batch", "idle", "idle", "idle", "finish {'hashed': 1}"]


def test_a_draining_stage_claims_nothing(journal: Journal):
    journal.submit("k", "t", {"text": "x"}, stage="requested")
    stage = Hash(journal, worker="w", batch=2)
    stage.stop()  # SIGTERM landed while this loop was between batches

    assert asyncio.run(stage.step()) == 0
    job = journal.get("k")
    assert job is not None and job.stage == "requested" and job.attempts == 0  # never claimed


def test_a_concurrent_stage_keeps_that_many_batches_in_flight_each_job_once(journal: Journal):
    for i in range(12):
        journal.submit(f"k{i}", "t", {"text": f"t{i}"}, stage="requested")
    in_flight: list[int] = []
    seen: list[str] = []

    class Pooled(Hash):  # its work goes to a pool of two workers
        running = 0

        async def process(self, jobs: Sequence[Job]) -> Sequence[Outcome]:
            Pooled.running += 1
            in_flight.append(Pooled.running)
            await asyncio.sleep(0.05)
            Pooled.running -= 1
            seen.extend(job.key for job in jobs)
            if len(seen) == 12:
                self.stop()
            return await super().process(jobs)

    with pytest.raises(ValueError, match="concurrency"):
        Pooled(journal, worker="w", concurrency=0)
    stage = Pooled(journal, worker="w", batch=2, concurrency=2, idle=0.01)
    asyncio.run(asyncio.wait_for(stage.run(), 10))
    assert max(in_flight) == 2 and sorted(seen) == sorted(f"k{i}" for i in range(12))  # each once
    assert journal.counts() == {"hashed": 12} and stage.processed == 12


def test_an_inbox_message_wakes_an_idle_stage(journal: Journal):
    async def main() -> float:
        inbox = MemoryQueue("requested")
        stage = Hash(journal, worker="w", inbox=inbox, idle=30)
        runner = asyncio.create_task(stage.run())
        await asyncio.sleep(0.05)
        started = time.monotonic()
        await journal.call(journal.submit, "k", "t", {"text": "x"}, stage="requested")
        await inbox.put("k")
        while stage.processed == 0:  # noqa: ASYNC110 - waiting on the stage under test
            await asyncio.sleep(0.005)
        stage.stop()
        await asyncio.wait_for(runner, 5)
        return time.monotonic() - started

    assert asyncio.run(main()) < 5  # woken, not waiting out the 30 s idle


def test_a_cancelled_stage_ends_at_once_and_leaves_no_task_behind(journal: Journal):
    """Cancelled (its daemon's process shutting down) at 25 random moments: while loops wait for
    a wake-up, renew leases or process a batch, the stage's task ends cancelled within a second,
    and no wait, lease keeper or loop of it is left running (nothing swallows the cancel)."""
    rng = random.Random(3)
    for i in range(40):
        journal.submit(f"k{i}", "t", {"text": f"t{i}"}, stage="requested")

    class Slow(Hash):
        async def process(self, jobs: Sequence[Job]) -> Sequence[Outcome]:
            await asyncio.sleep(rng.uniform(0.0, 0.02))
            return []  # no outcome: retried later, so there is always work

    async def main() -> None:
        for _ in range(25):
            inbox = MemoryQueue("requested")
            stage = Slow(journal, worker="w", inbox=inbox, batch=2, concurrency=3, idle=0.003, lease_s=0.01)
            runner = asyncio.create_task(stage.run())
            await asyncio.sleep(rng.uniform(0.0, 0.05))
            runner.cancel()
            done, _ = await asyncio.wait({runner}, timeout=1.0)
            assert runner in done and runner.cancelled()
            await asyncio.sleep(0)  # anything cancelled on the way out has had its turn
            assert asyncio.all_tasks() == {asyncio.current_task()}

    asyncio.run(main())


_PIPELINE = textwrap.dedent(
    """
    import asyncio, hashlib, os, sys
    from pathlib import Path
    from agents.runtime.journal import Journal
    from agents.runtime.stage import Done, Stage

    EFFECTS = Path(sys.argv[2])
    JOBS = int(sys.argv[3])

    class Hash(Stage):
        name, origin, target = "hash", "requested", "hashed"
        async def process(self, jobs):
            await asyncio.sleep(0.01)
            return [Done(j.key, {"digest": hashlib.sha256(j.key.encode()).hexdigest()}) for j in jobs]

    class Store(Stage):
        name, origin, target = "store", "hashed", "stored"
        async def process(self, jobs):
            for job in jobs:  # the outside effect: one file per digest (idempotent by name)
                path = EFFECTS / job.payload["digest"]
                with open(EFFECTS / "log", "a") as log:
                    log.write(job.key + "\\n")
                path.write_text(job.key)
            await asyncio.sleep(0.01)
            return [Done(j.key) for j in jobs]

    async def main():
        journal = Journal(Path(sys.argv[1]), final=("stored",))
        options = {"batch": 2, "lease_s": 600}
        stages = [Hash(journal, worker="hash", **options), Store(journal, worker="store", **options)]
        print("ready", flush=True)
        async def watch():
            while (await journal.call(journal.counts)).get("stored", 0) < JOBS:
                await asyncio.sleep(0.01)
            for s in stages:
                s.stop()
        await asyncio.gather(watch(), *(s.run() for s in stages))
        print("finished", flush=True)

    asyncio.run(main())
    """
)


JOBS = 400


def test_kill_9_at_twenty_random_points_loses_and_doubles_nothing(tmp_path: Path):
    path, effects = tmp_path / "j.db", tmp_path / "effects"
    effects.mkdir()
    journal = Journal(path, final=("stored",))
    for i in range(JOBS):
        journal.submit(f"asset{i:03d}", "t", {}, stage="requested")
    journal.close()
    argv = [sys.executable, "-c", _PIPELINE, str(path), str(effects), str(JOBS)]
    rng = random.Random(20)
    kills = 0
    for _ in range(30):
        process = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
        assert process.stdout is not None and process.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.01, 0.2))  # a random point of the run
        if process.poll() is not None:
            break
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        kills += 1
    final = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert final.returncode == 0 and "finished" in final.stdout, final.stderr
    assert kills >= 20, f"only {kills} crash points"
    journal = Journal(path, final=("stored",))
    assert journal.counts() == {"stored": JOBS}  # zero orphans
    for i in range(JOBS):
        stages = [target for _, target in journal.history(f"asset{i:03d}")]
        assert stages == ["requested", "hashed", "stored"]  # each transition exactly once
    files = [p for p in effects.iterdir() if p.name != "log"]
    assert len(files) == JOBS  # one effect per content digest
    redone = len((effects / "log").read_text().split()) - JOBS
    assert redone <= kills * 2  # a crash redoes at most the batch in hand (idempotent work)
    journal.close()


def test_a_batching_stage_waits_for_size_or_time(tmp_path: Path):
    """min_batch 4, linger 0.3 s: three ready jobs are left alone until the oldest has waited
    0.3 s, then taken together; four are taken at once."""
    now = [1_000.0]
    journal = Journal(tmp_path / "j.db", final=FINAL, clock=lambda: now[0])
    for i in range(3):
        journal.submit(f"k{i}", "t", {"text": f"t{i}"}, stage="requested")
    stage = Hash(journal, worker="w", batch=8, min_batch=4, linger_s=0.3)

    async def main() -> list[int]:
        taken = [await stage.step()]
        now[0] += 0.2
        taken.append(await stage.step())
        now[0] += 0.2
        taken.append(await stage.step())
        for i in range(3, 7):
            journal.submit(f"k{i}", "t", {"text": f"t{i}"}, stage="requested")
        taken.append(await stage.step())
        return taken

    assert asyncio.run(main()) == [0, 0, 3, 4]
    assert journal.ready("requested") == (0, None)
    journal.close()
    with pytest.raises(ValueError, match="min_batch"):
        Hash(journal, worker="w", batch=2, min_batch=3)


def test_a_lingering_stage_waits_out_the_linger_not_its_idle_poll(journal: Journal):
    """min_batch 4, linger 0.3 s, idle 30 s, no inbox: a lone job is taken when its linger is
    out, not at the next idle poll 30 s on."""
    journal.submit("k0", "t", {"text": "t0"}, stage="requested")

    class Once(Hash):
        async def process(self, jobs: Sequence[Job]) -> Sequence[Outcome]:
            self.stop()
            return await super().process(jobs)

    stage = Once(journal, worker="w", batch=8, min_batch=4, linger_s=0.3, idle=30.0)
    started = time.monotonic()
    asyncio.run(asyncio.wait_for(stage.run(), 5))  # waiting out the idle poll would time out
    took = time.monotonic() - started
    assert 0.25 <= took < 2.0, took
    assert journal.counts() == {"hashed": 1}


def test_a_batching_stage_does_not_linger_when_nothing_is_upstream(tmp_path: Path):
    """min_batch 4, linger 60 s, upstream "drafted": two ready jobs wait while a third is still
    being drafted (it could join the batch); once it has gone elsewhere, they are taken at once."""
    now = [1_000.0]
    journal = Journal(tmp_path / "j.db", final=FINAL, clock=lambda: now[0])
    for i in range(2):
        journal.submit(f"k{i}", "t", {"text": f"t{i}"}, stage="requested")
    journal.submit("draft", "t", {"text": "d"}, stage="drafted")
    stage = Hash(journal, worker="w", batch=8, min_batch=4, linger_s=60.0, upstream=("drafted",))
    assert journal.waiting(("drafted", "nowhere")) == 1 and journal.waiting(()) == 0

    async def main() -> list[int]:
        taken = [await stage.step()]
        journal.advance(["draft"], "drafted", "rejected")
        taken.append(await stage.step())
        return taken

    assert asyncio.run(main()) == [0, 2]
    with pytest.raises(ValueError, match="upstream"):
        Hash(journal, worker="w", batch=8, min_batch=2, upstream=("requested",))
    journal.close()


def test_a_long_batch_keeps_its_jobs_leased_so_no_other_worker_takes_them(journal: Journal):
    journal.submit("k", "t", {"text": "x"}, stage="requested")
    taken: list[list[str]] = []

    class Long(Hash):
        async def process(self, jobs: Sequence[Job]) -> Sequence[Outcome]:
            await asyncio.sleep(0.5)  # five lease lengths
            other = await self.journal.call(self.journal.claim, "requested", "w2", limit=5, lease_s=0.1)
            taken.append([job.key for job in other])
            return [Done(job.key) for job in jobs]

    stage = Long(journal, worker="w1", batch=1, lease_s=0.1)
    assert asyncio.run(stage.step()) == 1
    assert taken == [[]]  # renewed all along: w2 found nothing to take
    assert journal.history("k") == [("", "requested"), ("requested", "hashed")]


def test_a_stage_whose_redis_goes_away_polls_the_journal_and_loses_nothing(journal: Journal, tmp_path: Path):
    """The wake-up queues are Redis streams and the Redis server stops mid-run (as a busy or
    restarted server's timeouts looked in the two-host test, which ended whole daemons): the
    stage neither ends nor stalls. It logs each fault, polls the journal every `idle` seconds,
    and every job submitted after the server went is processed."""
    import contextlib

    from redis import asyncio as aioredis

    from agents.runtime.queues import RedisStreamQueue
    from tests.redis_support import redis_server

    async def main(server: contextlib.ExitStack, url: str) -> None:
        client = aioredis.from_url(url)
        inbox = RedisStreamQueue(client, "requested", poll=0.01)
        stage = Hash(journal, worker="w", inbox=inbox, outbox=RedisStreamQueue(client, "hashed", poll=0.01), idle=0.05)
        runner = asyncio.create_task(stage.run())
        await journal.call(journal.submit, "before", "t", {"text": "a"}, stage="requested")
        await inbox.put("before")
        while journal.counts().get("hashed", 0) < 1:  # noqa: ASYNC110 - waiting on the stage under test
            await asyncio.sleep(0.01)
        server.close()  # the server stops: every get, ack and put fails from now on
        for i in range(3):
            await journal.call(journal.submit, f"after{i}", "t", {"text": f"x{i}"}, stage="requested")
        deadline = time.monotonic() + 30
        while journal.counts().get("hashed", 0) < 4:
            assert not runner.done(), runner
            assert time.monotonic() < deadline, journal.counts()
            await asyncio.sleep(0.02)
        stage.stop()
        await asyncio.wait_for(runner, 10)
        with contextlib.suppress(Exception):
            await client.aclose()

    import logging

    class Kept(logging.Handler):  # on the stage's own logger: `json_logging` (an earlier test's
        def __init__(self) -> None:  # daemons) stops `proofmint` propagating to pytest's capture
            super().__init__(logging.WARNING)
            self.records: list[logging.LogRecord] = []

        def emit(self, record: logging.LogRecord) -> None:
            self.records.append(record)

    kept, logger = Kept(), logging.getLogger("proofmint.stage")
    level, logger.level = logger.level, logging.WARNING
    logger.addHandler(kept)
    try:
        with contextlib.ExitStack() as server:
            url = server.enter_context(redis_server(tmp_path))
            asyncio.run(main(server, url))
    finally:
        logger.removeHandler(kept)
        logger.setLevel(level)
    assert journal.counts() == {"hashed": 4}
    faults = [r for r in kept.records if r.getMessage().startswith("wake-up queue fault")]
    doing = {r.__dict__["fields"]["doing"] for r in faults}
    assert doing == {"waiting for a wake-up", "announcing a job"}, doing
