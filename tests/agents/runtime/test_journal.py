"""The journal (agents/runtime/journal.py) on both its backends, SQLite and a real PostgreSQL
server: idempotent submission, leases, compare-and-set stages, intents, and atomicity under
kill -9; then what only PostgreSQL promises: claimers on separate connections that never wait on
each other nor share a job, and a journal that survives its server dropping the connection."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from agents.runtime.journal import Journal, JournalError, StaleJobError
from agents.runtime.journal_db import JournalLocationError, JournalUnavailableError

FINAL = ("registered", "rejected", "failed")


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=["sqlite", "postgresql"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> str | Path:
    """Where a journal lives: a SQLite file, or a fresh database on the session's PostgreSQL."""
    if request.param == "sqlite":
        return tmp_path / "journal.db"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def journal(location: str | Path, clock: Clock) -> Journal:
    j = Journal(location, final=FINAL, clock=clock)
    yield j  # type: ignore[misc]
    j.close()


def test_submit_is_idempotent_and_first_wins(journal: Journal):
    assert journal.submit("a", "asset", {"prompt": "one"}, stage="requested")
    assert not journal.submit("a", "asset", {"prompt": "two"}, stage="generated")
    job = journal.get("a")
    assert job is not None and job.stage == "requested" and job.payload == {"prompt": "one"}
    with pytest.raises(JournalError, match="non-empty"):
        journal.submit("", "asset", {}, stage="requested")


def test_submit_many_is_one_transaction_idempotent_per_key(journal: Journal):
    assert journal.submit("a", "asset", {"n": 0}, stage="requested")
    jobs = [("a", "asset", {"n": 1}), ("b", "asset", {"n": 2}), ("b", "asset", {"n": 3}), ("c", "x", {"n": 4})]
    assert journal.submit_many(jobs, stage="requested") == [False, True, False, True]
    assert [(j.key, j.kind, j.payload) for j in map(journal.get, "abc") if j is not None] == [
        ("a", "asset", {"n": 0}),
        ("b", "asset", {"n": 2}),  # the first of a key in the batch wins, as across batches
        ("c", "x", {"n": 4}),
    ]
    assert journal.history("b") == [("", "requested")]
    with pytest.raises(JournalError, match="non-empty"):
        journal.submit_many([("d", "asset", {}), ("", "asset", {})], stage="requested")
    assert journal.get("d") is None  # a batch with a bad key journals nothing
    assert journal.submit_many([], stage="requested") == []


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


def test_a_batch_larger_than_one_read_advances_whole_or_not_at_all(journal: Journal):
    """The advance reads a batch's jobs 500 to a statement: 1,101 jobs move together, each with
    its own update and transition; one stale job among them (the last read's) moves none."""
    keys = [f"k{i:04d}" for i in range(1_101)]
    journal.submit_many([(key, "asset", {"i": i}) for i, key in enumerate(keys)], stage="requested")
    journal.submit("late", "asset", {}, stage="generated")
    with pytest.raises(StaleJobError, match="job late is at generated, not requested"):
        journal.advance([*keys, "late"], "requested", "generated")
    assert journal.counts() == {"requested": 1_101, "generated": 1}
    journal.advance(reversed(keys), "requested", "generated", updates={key: {"png": key} for key in keys})
    assert journal.counts() == {"generated": 1_102}
    job = journal.get("k1100")
    assert job is not None and job.payload == {"i": 1_100, "png": "k1100"}
    assert journal.history("k0500") == [("", "requested"), ("requested", "generated")]
    with pytest.raises(StaleJobError, match="k0007 is twice in one batch"):  # a caller's bug, not moved twice
        journal.advance(["k0007", "k0008", "k0007"], "generated", "stored")
    assert journal.counts() == {"generated": 1_102}
    # a claim leases 500 to a statement too: every job of the last chunk is leased as well
    claimed = journal.claim("generated", "w1", limit=1_200, lease_s=30)
    assert len(claimed) == 1_102 and {job.attempts for job in claimed} == {1}
    assert journal.claim("generated", "w2", limit=10, lease_s=30) == []
    with pytest.raises(StaleJobError, match="job k1100 is leased to w1"):
        journal.advance(["k1100"], "generated", "stored", owner="w2")


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


def test_checkpoints_persist_across_reopen(location: str | Path):
    first = Journal(location, final=FINAL)
    first.set_checkpoint("events", {"block": 12, "hash": "0x01"})
    first.set_checkpoint("events", {"block": 13, "hash": "0x02"})
    first.close()
    second = Journal(location, final=FINAL)
    assert second.checkpoint("events") == {"block": 13, "hash": "0x02"}
    assert second.checkpoint("other") is None
    second.close()


def test_a_newer_schema_is_refused(location: str | Path):
    journal = Journal(location, final=FINAL)
    journal.db.execute("UPDATE meta SET value = '99' WHERE name = 'schema'")
    journal.close()
    with pytest.raises(JournalError, match="schema 99"):
        _ = Journal(location, final=FINAL).db


def test_a_schema_1_journal_gets_its_requester_and_digest_columns(location: str | Path):
    """A journal written by schema 1 (requester and digest indexed as expressions of the
    payload) opens as schema 2: both columns filled from every payload, found by the same
    queries, the old expression indexes gone; a second opening changes nothing."""
    from agents.runtime.journal_db import connect

    db = connect(location)
    time_type = "REAL" if db.dialect.name == "sqlite" else "DOUBLE PRECISION"
    with db.transaction():
        db.execute(
            f"CREATE TABLE jobs (key TEXT PRIMARY KEY, kind TEXT NOT NULL, stage TEXT NOT NULL, payload TEXT NOT NULL,"
            f" attempts INTEGER NOT NULL DEFAULT 0, owner TEXT, lease_until {time_type} NOT NULL DEFAULT 0,"
            f" not_before {time_type} NOT NULL DEFAULT 0, created_at {time_type} NOT NULL,"
            f" updated_at {time_type} NOT NULL, deadline {time_type}, error TEXT)"
        )
        db.execute(f"CREATE INDEX jobs_by_requester ON jobs (kind, {db.dialect.requester}, created_at)")
        db.execute(f"CREATE INDEX jobs_by_digest ON jobs (kind, {db.dialect.sha256})")
        db.execute("CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)")
        db.execute("INSERT INTO meta (name, value) VALUES ('schema', '1')")
        for key, payload, at in (
            ("old1", '{"requester": "0xAbC", "sha256": "aa"}', 1.0),
            ("old2", '{"requester": "0xabc"}', 2.0),
            ("old3", '{"prompt": "no requester"}', 3.0),
        ):
            db.execute(
                "INSERT INTO jobs (key, kind, stage, payload, created_at, updated_at)"
                " VALUES (?, 'asset', 'stored', ?, ?, ?)",
                (key, payload, at, at),
            )
    db.close()

    for opening in range(2):
        journal = Journal(location, final=FINAL)
        total, page = journal.of_requester("asset", "0xABC", limit=5)
        assert total == 2 + opening and [j.key for j in page][-2:] == ["old2", "old1"]
        assert [j.key for j in journal.with_digest("asset", "aa")] == ["old1"]
        assert journal.db.execute("SELECT value FROM meta WHERE name = 'schema'").fetchone()[0] == "2"
        journal.submit(f"new{opening}", "asset", {"requester": "0xABC", "sha256": "bb"}, stage="stored")
        assert journal.of_requester("asset", "0xabc", limit=5)[0] == 3 + opening
        journal.close()
    db = connect(location)
    names = (
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'jobs'"
        if db.dialect.name == "sqlite"
        else "SELECT indexname FROM pg_indexes WHERE tablename = 'jobs'"
    )
    indexes = {row[0] for row in db.execute(names)}
    db.close()
    assert {"jobs_of_requester", "jobs_of_digest"} <= indexes
    assert not {"jobs_by_requester", "jobs_by_digest"} & indexes


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
    location = sys.argv[1] if "://" in sys.argv[1] else Path(sys.argv[1])
    journal = Journal(location, final=("c",))
    print("ready", flush=True)
    while True:
        for job in journal.claim("a", "w", limit=20, lease_s=0):
            journal.advance([job.key], "a", "b", updates={job.key: {"seen": 1}})
        for job in journal.claim("b", "w", limit=20, lease_s=0):
            journal.advance([job.key], "b", "c")
    """
)


@pytest.mark.parametrize("after", [1, 150, 600])
def test_kill_9_mid_run_leaves_every_job_at_exactly_one_consistent_stage(location: str | Path, after: int):
    journal = Journal(location, final=("c",))
    for i in range(2_000):
        journal.submit(f"job{i:05d}", "asset", {}, stage="a")
    worker = subprocess.Popen([sys.executable, "-c", _WORKER, str(location)], stdout=subprocess.PIPE, text=True)
    assert worker.stdout is not None and worker.stdout.readline().strip() == "ready"
    deadline = time.monotonic() + 60
    while journal.counts().get("c", 0) < after:
        assert time.monotonic() < deadline, "the worker made no progress"
        time.sleep(0.002)
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait()
    journal.close()
    reopened = Journal(location, final=("c",))
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


def test_queries_by_requester_digest_stage_and_time(journal: Journal, clock: Clock):
    journal.submit("r1", "asset", {"requester": "0xAbC", "sha256": "aa"}, stage="requested")
    clock.now += 1
    journal.submit("r2", "asset", {"requester": "0xabc", "sha256": "bb"}, stage="stored")
    clock.now += 1
    journal.submit("l1", "licence", {"requester": "0xabc", "sha256": "aa"}, stage="stored")
    total, page = journal.of_requester("asset", "0xABC", limit=1)
    assert total == 2 and [j.key for j in page] == ["r2"]  # newest first, any case
    assert [j.key for j in journal.of_requester("asset", "0xabc", limit=5, offset=1)[1]] == ["r1"]
    assert [j.key for j in journal.with_digest("asset", "aa")] == ["r1"]
    assert [j.key for j in journal.in_stages(["requested", "stored"], "asset")] == ["r1", "r2"]
    assert journal.waiting(["requested", "stored"]) == 3 and journal.waiting([]) == 0
    assert journal.ready("stored") == (2, 1.0)
    before = journal.version(["stored"])
    clock.now += 1
    journal.advance(["r2"], "stored", "registered", updates={"r2": {"sha256": "cc"}})
    assert [j.key for j in journal.with_digest("asset", "cc")] == ["r2"]  # a digest a stage sets
    assert journal.with_digest("asset", "bb") == []
    assert journal.version(["stored"]) != before
    assert journal.reached("registered") == {"r2": (1_001.0, 1_003.0)}
    assert journal.counts() == {"requested": 1, "stored": 1, "registered": 1}
    journal.claim("requested", "w", limit=1, lease_s=30)  # leased: not in the backlog
    assert journal.backlog() == {"stored": (1, 1.0), "registered": (1, 0.0)}


def test_delivered_events_are_kept_once_and_can_be_removed(journal: Journal):
    journal.record_event("w", "0xb1", 0, 10, "0xt1", {"n": 1})
    journal.record_event("w", "0xb1", 0, 10, "0xt1", {"n": 1})  # delivered twice: kept once
    journal.record_event("w", "0xb2", 3, 11, "0xt2", {"n": 2})
    assert journal.event_seen("w", "0xb1", 0) and not journal.event_seen("w", "0xb1", 1)
    assert [e[:3] for e in journal.events_after("w", 9)] == [("0xb2", 3, 11), ("0xb1", 0, 10)]
    assert journal.event_blocks("w", limit=1) == [(11, "0xb2")]
    journal.mark_event_removed("w", "0xb2", 3)  # a reorg took block 11
    assert not journal.event_seen("w", "0xb2", 3) and journal.event_blocks("w", limit=5) == [(10, "0xb1")]
    journal.record_event("w", "0xb2", 3, 11, "0xt2", {"n": 2})  # and it came back
    assert journal.event_seen("w", "0xb2", 3)


def test_intent_keys_skip_refused_outcomes(journal: Journal):
    sent = journal.record_intent("register", ["a", "b"], {})
    refused = journal.record_intent("register", ["c"], {})
    journal.complete_intent(refused, {"refused": "reverted"})
    assert journal.intent_keys("register") == {"a", "b"}
    journal.complete_intent(sent, {"block": 1})
    assert journal.intent_keys("register") == {"a", "b"}


def test_a_location_that_is_neither_a_path_nor_postgresql_is_refused():
    with pytest.raises(JournalLocationError, match="file path or a postgresql:// URL, not mysql://u:\\*\\*\\*@h/d"):
        _ = Journal("mysql://u:secret@h/d", final=FINAL).db


# -- PostgreSQL only ---------------------------------------------------------------------------


def test_an_unreachable_server_is_retryable_and_the_password_stays_out_of_the_message():
    from tests.agents.runtime.anvil import free_port

    journal = Journal(f"postgresql://proofmint:hunter2@127.0.0.1:{free_port()}/journal", final=FINAL)
    with pytest.raises(JournalUnavailableError) as raised:
        journal.counts()
    assert "hunter2" not in str(raised.value) and "proofmint:***@127.0.0.1" in str(raised.value)
    journal.close()


def test_claimers_pass_over_rows_another_claimer_holds_instead_of_waiting(postgres_url: str):
    import psycopg

    journal = Journal(postgres_url, final=FINAL)
    for key in ("a", "b", "c"):
        journal.submit(key, "asset", {}, stage="requested")
    with psycopg.connect(postgres_url) as other:  # another worker, mid-claim, holds "a"
        other.execute("SELECT key FROM jobs WHERE key = 'a' FOR UPDATE")
        started = time.monotonic()
        taken = journal.claim("requested", "w2", limit=2, lease_s=30)
        assert [j.key for j in taken] == ["b", "c"] and time.monotonic() - started < 2
    journal.close()


def test_a_dropped_connection_fails_one_call_and_the_next_connects_again(postgres_url: str):
    import psycopg

    journal = Journal(postgres_url, final=FINAL)
    journal.submit("a", "asset", {}, stage="requested")
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid()"
        )
    with pytest.raises(JournalUnavailableError):
        journal.submit("b", "asset", {}, stage="requested")
    assert journal.submit("b", "asset", {}, stage="requested")  # nothing half-done: b is new
    assert journal.counts() == {"requested": 2}
    journal.close()


_CONTENDER = textwrap.dedent(
    """
    import sys
    from agents.runtime.journal import Journal, StaleJobError
    journal = Journal(sys.argv[1], final=("c",))
    worker = sys.argv[2]
    print("ready", flush=True)
    idle = 0
    while idle < 20:
        moved = 0
        for origin, target in (("a", "b"), ("b", "c")):
            jobs = journal.claim(origin, worker, limit=7, lease_s=60)
            if jobs:
                journal.advance([j.key for j in jobs], origin, target, owner=worker,
                                updates={j.key: {origin: worker} for j in jobs})
                moved += len(jobs)
        idle = 0 if moved else idle + 1
    """
)


def test_many_processes_claim_concurrently_and_each_job_moves_exactly_once(postgres_url: str):
    journal = Journal(postgres_url, final=("c",))
    for i in range(600):
        journal.submit(f"job{i:04d}", "asset", {}, stage="a")
    workers = [
        subprocess.Popen([sys.executable, "-c", _CONTENDER, postgres_url, f"w{n}"], stdout=subprocess.PIPE, text=True)
        for n in range(4)
    ]
    for worker in workers:
        assert worker.stdout is not None and worker.stdout.readline().strip() == "ready"
    for worker in workers:
        assert worker.wait(timeout=120) == 0
    assert journal.counts() == {"c": 600}
    jobs = journal.at_stage("c", limit=600)
    for job in jobs:
        assert journal.history(job.key) == [("", "a"), ("a", "b"), ("b", "c")]
    assert len({job.payload["a"] for job in jobs}) > 1  # the work really was shared
    journal.close()


def test_a_lease_has_one_holder_until_it_runs_out_or_is_dropped(journal: Journal, clock: Clock):
    assert journal.take_lease("sender:0xabc", "host-a/1", ttl_s=15) is None
    assert journal.take_lease("sender:0xabc", "host-b/7", ttl_s=15) == "host-a/1"
    clock.now += 10
    assert journal.take_lease("sender:0xabc", "host-a/1", ttl_s=15) is None  # renewed to 1_025
    clock.now += 10
    assert journal.take_lease("sender:0xabc", "host-b/7", ttl_s=15) == "host-a/1"
    clock.now += 6  # host-a died: its lease ran out
    assert journal.take_lease("sender:0xabc", "host-b/7", ttl_s=15) is None
    assert not journal.drop_lease("sender:0xabc", "host-a/1")  # not its lease any more
    assert journal.drop_lease("sender:0xabc", "host-b/7")
    assert journal.take_lease("sender:0xabc", "host-a/1", ttl_s=15) is None
    assert journal.take_lease("other", "host-b/7", ttl_s=15) is None  # leases are independent


_CLAIMANT = textwrap.dedent(
    """
    import sys, time
    from agents.runtime.journal import Journal
    journal = Journal(sys.argv[1], final=())
    print("ready", flush=True)
    sys.stdin.readline()
    won = sum(journal.take_lease(f"lease{i}", sys.argv[2], ttl_s=60) is None for i in range(200))
    print(won, flush=True)
    """
)


def test_claimants_racing_for_free_leases_never_both_win(postgres_url: str):
    Journal(postgres_url, final=()).close()  # the schema, once
    claimants = [
        subprocess.Popen(
            [sys.executable, "-c", _CLAIMANT, postgres_url, f"w{n}"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for n in range(3)
    ]
    for claimant in claimants:
        assert claimant.stdout is not None and claimant.stdout.readline().strip() == "ready"
    for claimant in claimants:
        assert claimant.stdin is not None
        claimant.stdin.write("go\n")
        claimant.stdin.flush()
    won = [int(c.communicate(timeout=60)[0].strip()) for c in claimants]
    assert sum(won) == 200


def test_a_busy_worker_keeps_its_leases_and_a_dead_ones_run_out(journal: Journal, clock: Clock):
    for key in ("a", "b"):
        journal.submit(key, "asset", {}, stage="proving")
    journal.claim("proving", "w1", limit=2, lease_s=30)
    clock.now += 20
    assert journal.extend_leases(["a", "b"], "proving", "w1", 30) == 2  # still busy: until 1_050
    assert journal.extend_leases(["a"], "proving", "w2", 30) == 0  # not its jobs
    clock.now += 20
    assert journal.claim("proving", "w2", limit=2, lease_s=30) == []
    journal.advance(["a"], "proving", "proved", owner="w1")
    assert journal.extend_leases(["a", "b"], "proving", "w1", 30) == 1  # a moved on
    clock.now += 31  # w1 died with b in hand
    assert [j.key for j in journal.claim("proving", "w2", limit=2, lease_s=30)] == ["b"]


def test_a_flood_of_the_first_kind_never_starves_the_others(journal: Journal, clock: Clock):
    """`claim_first` (the generator's fast lane): the first kind first, but at most `share` of a
    batch while others wait; a slot one kind leaves empty the other fills; leases as `claim`."""
    for i in range(12):
        journal.submit(f"fast-{i:02}", "asset", {"lane": "fast"}, stage="requested")
        clock.now += 1
    for i in range(3):  # older than none of the fast ones: a flood arrived first
        journal.submit(f"std-{i}", "asset", {"lane": "standard"} if i else {}, stage="requested")
        clock.now += 1

    def claim() -> list[str]:
        found = journal.claim_first("requested", "w", limit=4, lease_s=30, field="lane", value="fast", share=0.75)
        assert all(job.attempts == 1 for job in found)
        return [job.key for job in found]

    assert claim() == ["fast-00", "fast-01", "fast-02", "std-0"]
    assert claim() == ["fast-03", "fast-04", "fast-05", "std-1"]
    assert claim() == ["fast-06", "fast-07", "fast-08", "std-2"]  # every standard request served by now
    assert claim() == ["fast-09", "fast-10", "fast-11"]  # none waits: the fast lane takes the batch
    assert claim() == []
    for i in range(3):
        journal.submit(f"late-{i}", "asset", {}, stage="requested")
    assert claim() == ["late-0", "late-1", "late-2"]  # no fast request: standard fills the batch
    clock.now += 31
    assert (
        len(journal.claim_first("requested", "w2", limit=50, lease_s=30, field="lane", value="fast", share=0.75)) == 18
    )
    with pytest.raises(ValueError, match="not a payload field"):
        journal.claim_first("requested", "w", limit=1, lease_s=1, field="lane'; --", value="fast", share=0.5)


def test_a_requesters_jobs_since_a_time_and_every_jobs_since_a_time(journal: Journal, clock: Clock):
    for i, requester in enumerate(("Ann", "bob", "ann", "ann")):
        journal.submit(f"r{i}", "asset", {"requester": requester}, stage="requested")
        clock.now += 10
    journal.submit("v", "voucher", {"requester": "ann"}, stage="received")
    start = clock.now - 25  # after r0, r1
    assert [j.key for j in journal.of_requester_since("asset", "ANN", start, limit=10)] == ["r2", "r3"]
    assert [j.key for j in journal.of_requester_since("asset", "ann", 0, limit=2)] == ["r0", "r2"]
    assert [j.key for j in journal.created_since("asset", start, limit=10)] == ["r2", "r3"]
    assert [j.key for j in journal.created_since("asset", 0, limit=2, offset=1)] == ["r1", "r2"]
