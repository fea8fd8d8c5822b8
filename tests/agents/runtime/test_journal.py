"""The SQLite journal (agents/runtime/journal.py): idempotent submission, leases, compare-and-set
stages, intents, and atomicity under kill -9."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from agents.runtime.journal import Journal, JournalError, StaleJobError

FINAL = ("registered", "rejected", "failed")


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def journal(tmp_path: Path, clock: Clock) -> Journal:
    j = Journal(tmp_path / "journal.db", final=FINAL, clock=clock)
    yield j  # type: ignore[misc]
    j.close()


def test_submit_is_idempotent_and_first_wins(journal: Journal):
    assert journal.submit("a", "asset", {"prompt": "one"}, stage="requested")
    assert not journal.submit("a", "asset", {"prompt": "two"}, stage="generated")
    job = journal.get("a")
    assert job is not None and job.stage == "requested" and job.payload == {"prompt": "one"}
    with pytest.raises(JournalError, match="non-empty"):
        journal.submit("", "asset", {}, stage="requested")


def test_claim_leases_and_a_dead_workers_lease_runs_out(journal: Journal, clock: Clock):
    for key in ("a", "b", "c"):
        journal.submit(key, "asset", {}, stage="requested")
        clock.now += 1
    first = journal.claim("requested", "w1", limit=2, lease_s=30)
    assert [j.key for j in first] == ["a", "b"] and first[0].attempts == 1
    assert [j.key for j in journal.claim("requested", "w2", limit=5, lease_s=30)] == ["c"]
    assert journal.claim("requested", "w2", limit=5, lease_s=30) == []
    clock.now += 31  # w1 died: its leases run out
    again = journal.claim("requested", "w2", limit=5, lease_s=30)
    assert sorted(j.key for j in again) == ["a", "b", "c"] and again[0].attempts == 2


def test_advance_is_compare_and_set(journal: Journal):
    journal.submit("a", "asset", {"x": 1}, stage="requested")
    journal.claim("requested", "w1", limit=1, lease_s=30)
    journal.advance(["a"], "requested", "generated", owner="w1", updates={"a": {"png": "cid"}})
    job = journal.get("a")
    assert job is not None and job.stage == "generated" and job.payload == {"x": 1, "png": "cid"}
    with pytest.raises(StaleJobError, match="at generated, not requested"):
        journal.advance(["a"], "requested", "generated", owner="w1")
    assert journal.history("a") == [("", "requested"), ("requested", "generated")]


def test_advance_refuses_a_job_leased_to_another_worker(journal: Journal):
    journal.submit("a", "asset", {}, stage="requested")
    journal.claim("requested", "w1", limit=1, lease_s=30)
    with pytest.raises(StaleJobError, match="leased to w1"):
        journal.advance(["a"], "requested", "generated", owner="w2")


def test_batch_advance_is_all_or_nothing(journal: Journal):
    journal.submit("a", "asset", {}, stage="stored")
    journal.submit("b", "asset", {}, stage="requested")
    with pytest.raises(StaleJobError):
        journal.advance(["a", "b"], "stored", "registered")
    a = journal.get("a")
    assert a is not None and a.stage == "stored"


def test_release_retries_later_then_gives_up(journal: Journal, clock: Clock):
    journal.submit("a", "asset", {}, stage="proving")
    for attempt in range(1, 4):
        claimed = journal.claim("proving", "w", limit=1, lease_s=30)
        assert [j.attempts for j in claimed] == [attempt]
        gave_up = journal.release("a", "w", error="prover down", retry_in=5, max_attempts=3, give_up_stage="flagged")
        assert gave_up == (attempt == 3)
        if not gave_up:
            assert journal.claim("proving", "w", limit=1, lease_s=30) == []  # waiting out retry_in
            clock.now += 5
    job = journal.get("a")
    assert job is not None and job.stage == "flagged" and job.error == "prover down"
    assert not journal.release("a", "someone-else", error="x", retry_in=1)


def test_release_owner_frees_a_restarted_workers_leases(journal: Journal):
    journal.submit("a", "asset", {}, stage="requested")
    journal.claim("requested", "w1", limit=1, lease_s=3_600)
    assert journal.release_owner("w1") == 1
    assert [j.key for j in journal.claim("requested", "w1", limit=1, lease_s=30)] == ["a"]


def test_overdue_lists_orphans_past_their_deadline(journal: Journal, clock: Clock):
    journal.submit("slow", "asset", {}, stage="stored", deadline_s=60)
    journal.submit("done", "asset", {}, stage="stored", deadline_s=60)
    journal.advance(["done"], "stored", "registered")
    assert journal.overdue() == []
    clock.now += 61
    assert [j.key for j in journal.overdue()] == ["slow"]


def test_intents_are_open_until_completed_with_the_advance(journal: Journal):
    journal.submit("a", "asset", {}, stage="stored")
    intent = journal.record_intent("register", ["a"], {"nonce": 7})
    journal.update_intent(intent, {"tx": "0xabc"})
    [open_intent] = journal.open_intents("register")
    assert open_intent.keys == ["a"] and open_intent.data == {"nonce": 7, "tx": "0xabc"}
    journal.advance(["a"], "stored", "registered", complete_intent=(intent, {"block": 5}))
    assert journal.open_intents("register") == []
    with pytest.raises(JournalError, match="not open"):
        journal.complete_intent(intent, {})
    with pytest.raises(JournalError, match="not open"):
        journal.update_intent(intent, {})


def test_a_failed_advance_leaves_the_intent_open(journal: Journal):
    journal.submit("a", "asset", {}, stage="requested")
    intent = journal.record_intent("register", ["a"], {})
    with pytest.raises(StaleJobError):
        journal.advance(["a"], "stored", "registered", complete_intent=(intent, {}))
    assert [i.id for i in journal.open_intents("register")] == [intent]


def test_checkpoints_persist_across_reopen(tmp_path: Path):
    first = Journal(tmp_path / "j.db", final=FINAL)
    first.set_checkpoint("events", {"block": 12, "hash": "0x01"})
    first.close()
    second = Journal(tmp_path / "j.db", final=FINAL)
    assert second.checkpoint("events") == {"block": 12, "hash": "0x01"}
    assert second.checkpoint("other") is None
    second.close()


def test_a_newer_schema_is_refused(tmp_path: Path):
    journal = Journal(tmp_path / "j.db", final=FINAL)
    journal.db.execute("UPDATE meta SET value = '99' WHERE name = 'schema'")
    journal.close()
    with pytest.raises(JournalError, match="schema 99"):
        _ = Journal(tmp_path / "j.db", final=FINAL).db


def test_async_calls_run_on_the_journal_thread(journal: Journal):
    async def main() -> str:
        await journal.call(journal.submit, "a", "asset", {}, stage="requested")
        job = await journal.call(journal.get, "a")
        assert job is not None
        return job.stage

    assert asyncio.run(main()) == "requested"


_WORKER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from agents.runtime.journal import Journal, StaleJobError
    journal = Journal(Path(sys.argv[1]), final=("c",))
    print("ready", flush=True)
    while True:
        for job in journal.claim("a", "w", limit=20, lease_s=0):
            journal.advance([job.key], "a", "b", updates={job.key: {"seen": 1}})
        for job in journal.claim("b", "w", limit=20, lease_s=0):
            journal.advance([job.key], "b", "c")
    """
)


@pytest.mark.parametrize("after", [1, 150, 600])
def test_kill_9_mid_run_leaves_every_job_at_exactly_one_consistent_stage(tmp_path: Path, after: int):
    path = tmp_path / "j.db"
    journal = Journal(path, final=("c",))
    for i in range(2_000):
        journal.submit(f"job{i:05d}", "asset", {}, stage="a")
    journal.close()
    worker = subprocess.Popen([sys.executable, "-c", _WORKER, str(path)], stdout=subprocess.PIPE, text=True)
    assert worker.stdout is not None and worker.stdout.readline().strip() == "ready"
    watcher = sqlite3.connect(path)
    deadline = time.monotonic() + 60
    while watcher.execute("SELECT COUNT(*) FROM jobs WHERE stage = 'c'").fetchone()[0] < after:
        assert time.monotonic() < deadline, "the worker made no progress"
        time.sleep(0.002)
    watcher.close()
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait()
    reopened = Journal(path, final=("c",))
    counts = reopened.counts()
    assert sum(counts.values()) == 2_000
    assert counts["c"] >= after and counts.get("a", 0) > 0  # killed mid-run
    for stage, count in counts.items():
        for job in reopened.at_stage(stage, limit=count):
            history = reopened.history(job.key)
            assert history[-1][1] == job.stage  # the last transition is where the job is
            assert len(history) == {"a": 1, "b": 2, "c": 3}[job.stage]  # never a stage twice
            assert ("seen" in job.payload) == (job.stage != "a")
    reopened.close()
