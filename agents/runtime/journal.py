"""The journal: an outbox (SQLite, or PostgreSQL across hosts) that makes every stage of the
pipeline crash-safe.

A job (one asset's way through the pipeline) is a row keyed by an idempotency key that derives
from content (a request id, a content digest): submitting the same key twice is one job. A stage
claims jobs under a lease, does its work, and advances them with a compare-and-set on the stage,
so a crash anywhere leaves each job either still at its stage (the lease runs out and the work
is done again; stages are idempotent) or past it, never half-way and never twice.

Effects outside the process that cannot simply be redone (a transaction) are written as an
*intent* before they happen and completed after; on restart, `open_intents` is what the owning
stage reconciles against the chain before doing anything new.

Two backends, one SQL text (agents.runtime.journal_db holds what differs):
- SQLite (a path; the embedded default): WAL with `synchronous=NORMAL` survives any process
  crash (kill -9) with every committed transaction intact; a power cut may lose the last few
  commits, which the leases and intents recover like a crash. Processes on one host share the
  file; `BEGIN IMMEDIATE` serialises writers.
- PostgreSQL (a `postgresql://` URL): any number of workers on any hosts. Claims take rows with
  `FOR UPDATE SKIP LOCKED`, so concurrent claimers never wait on each other nor take the same
  job; advances lock their rows (in key order, so two batches never deadlock) before the
  compare-and-set, so a stale worker's advance fails exactly as on SQLite.

One connection per `Journal`, used from one thread; async code calls it through `Journal.call`,
which runs on the journal's own thread, off the event loop. Every public method holds the
journal's lock, so a direct call from another thread (a test, the CLI) can never interleave
with a transaction in progress.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import json
import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypeVar

from agents.core.errors import PermanentError
from agents.core.locations import redact
from agents.runtime.journal_db import (
    COLUMN_INDEXES,
    Database,
    JournalUnavailableError,
    connect,
    migrate_v1,
    payload_columns,
)

T = TypeVar("T")
#: Jobs read by one statement of a batch (SQLite takes at most 32,766 parameters in one).
_KEYS_A_STATEMENT: Final = 500
F = TypeVar("F", bound=Callable[..., Any])


def _locked(method: F) -> F:
    @functools.wraps(method)
    def wrapper(self: Journal, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            try:
                return method(self, *args, **kwargs)
            except JournalUnavailableError:
                self._disconnect()  # the next call connects again
                raise

    return wrapper  # type: ignore[return-value]


SCHEMA_VERSION: Final = 2
"""1: a job's requester and digest indexed as expressions of its payload; 2: as columns of their
own (agents.runtime.journal_db)."""


def _insert_job(
    db: Database, key: str, kind: str, payload: Mapping[str, Any], stage: str, now: float, deadline: float | None
) -> bool:
    """Inserts a job at `stage` unless its key is journaled (inside the caller's transaction); new or not."""
    cursor = db.execute(
        "INSERT INTO jobs (key, kind, stage, payload, created_at, updated_at, deadline, requester, sha256)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        (key, kind, stage, _dumps(payload), now, now, deadline, *payload_columns(payload)),
    )
    if cursor.rowcount:
        db.execute("INSERT INTO transitions (key, origin, target, at) VALUES (?, '', ?, ?)", (key, stage, now))
    return bool(cursor.rowcount)


def _lease(db: Database, keys: Sequence[str], owner: str, until: float, now: float) -> None:
    """Leases `keys` to `owner` until `until` and counts an attempt, a statement for up to
    `_KEYS_A_STATEMENT` of them (inside the caller's transaction): a claim's rows take the same
    values, and one statement for a batch of 64 cost PostgreSQL's server and client about half
    the CPU of a statement per row (0.025 against 0.056 ms a row, measured here)."""
    for start in range(0, len(keys), _KEYS_A_STATEMENT):
        chunk = keys[start : start + _KEYS_A_STATEMENT]
        db.execute(
            "UPDATE jobs SET owner = ?, lease_until = ?, attempts = attempts + 1, updated_at = ?"
            f" WHERE key IN ({', '.join('?' * len(chunk))})",
            (owner, until, now, *chunk),
        )


def _record_moves(db: Database, moves: Sequence[tuple[str, str, str, float]]) -> None:
    """Journals (key, origin, target, at) transitions, a statement for up to `_KEYS_A_STATEMENT`
    of them (inside the caller's transaction)."""
    for start in range(0, len(moves), _KEYS_A_STATEMENT):
        chunk = moves[start : start + _KEYS_A_STATEMENT]
        db.execute(
            f"INSERT INTO transitions (key, origin, target, at) VALUES {', '.join(['(?, ?, ?, ?)'] * len(chunk))}",
            [value for move in chunk for value in move],
        )


class JournalError(PermanentError, RuntimeError):
    """The journal refused an operation (a stale stage, a foreign lease, a newer schema)."""


class StaleJobError(JournalError):
    """A job is no longer where the caller thought it was: another worker (or a lease expiry
    and a retry) moved it. The caller drops its result; the job's current owner finishes it."""


@dataclass(frozen=True)
class Job:
    key: str
    kind: str
    stage: str
    payload: dict[str, Any]
    attempts: int
    created_at: float
    updated_at: float
    deadline: float | None
    error: str | None


@dataclass(frozen=True)
class Intent:
    id: int
    name: str
    keys: list[str]
    data: dict[str, Any]


def _dumps(value: Mapping[str, Any]) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


class Journal:
    """See the module docstring. `final` names the stages a job never leaves."""

    def __init__(self, location: str | Path, *, final: Iterable[str], clock: Callable[[], float] = time.time) -> None:
        """`location`: a SQLite file's path, or a `postgresql://` URL (agents.runtime.journal_db)."""
        self.location, self.final, self._clock = location, frozenset(final), clock
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="journal")
        self._db: Database | None = None
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        return f"Journal({redact(self.location)})"

    # -- connection ---------------------------------------------------------------------------

    @property
    def db(self) -> Database:
        if self._db is None:
            db = connect(self.location)
            try:
                db.create_schema()
                with db.transaction():
                    if db.dialect.schema_lock:
                        db.execute(db.dialect.schema_lock)
                    row = db.execute("SELECT value FROM meta WHERE name = 'schema'" + db.dialect.lock_rows).fetchone()
                    if row is None:
                        db.execute(
                            "INSERT INTO meta (name, value) VALUES ('schema', ?) ON CONFLICT DO NOTHING",
                            (str(SCHEMA_VERSION),),
                        )
                    elif int(row[0]) > SCHEMA_VERSION:
                        raise JournalError(
                            f"{redact(self.location)} has schema {row[0]}; this proofmint reads {SCHEMA_VERSION}:"
                            " upgrade"
                        )
                    elif int(row[0]) == 1:
                        migrate_v1(db)
                        db.execute("UPDATE meta SET value = ? WHERE name = 'schema'", (str(SCHEMA_VERSION),))
                    for statement in COLUMN_INDEXES:
                        db.execute(statement)
            except BaseException:
                db.close()
                raise
            self._db = db
        return self._db

    def _disconnect(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def close(self) -> None:
        """Waits for queued `call`s, then closes the connection."""
        self._executor.shutdown(wait=True)
        with self._lock:
            self._disconnect()

    async def call(self, method: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Runs `method(*args, **kwargs)` (a method of this journal) on the journal's thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: method(*args, **kwargs))

    def _transaction(self) -> contextlib.AbstractContextManager[Database]:
        return self.db.transaction()

    # -- jobs ---------------------------------------------------------------------------------

    @_locked
    def submit(
        self, key: str, kind: str, payload: Mapping[str, Any], *, stage: str, deadline_s: float | None = None
    ) -> bool:
        """Adds a job at `stage`; True if new, False if the key was already journaled (in
        which case nothing changes: the first submission wins)."""
        if not key:
            raise JournalError("a job needs a non-empty idempotency key")
        now = self._clock()
        deadline = None if deadline_s is None else now + deadline_s
        with self._transaction() as db:
            return _insert_job(db, key, kind, payload, stage, now, deadline)

    @_locked
    def submit_many(self, jobs: Sequence[tuple[str, str, Mapping[str, Any]]], *, stage: str) -> list[bool]:
        """`submit` for each (key, kind, payload), all at `stage`, in one transaction; for each,
        True if new (a key already journaled, or met earlier in `jobs`, changes nothing)."""
        if any(not key for key, _, _ in jobs):
            raise JournalError("a job needs a non-empty idempotency key")
        now = self._clock()
        with self._transaction() as db:
            return [_insert_job(db, key, kind, payload, stage, now, None) for key, kind, payload in jobs]

    @_locked
    def get(self, key: str) -> Job | None:
        row = self.db.execute(f"SELECT {_COLUMNS} FROM jobs WHERE key = ?", (key,)).fetchone()
        return _job(row) if row else None

    @_locked
    def claim(self, stage: str, owner: str, *, limit: int, lease_s: float) -> list[Job]:
        """Leases up to `limit` jobs waiting at `stage` (oldest first) to `owner`: ready ones,
        and ones whose lease ran out (their worker died). Attempts count up on each claim."""
        now = self._clock()
        with self._transaction() as db:
            rows = db.execute(
                f"SELECT {_COLUMNS} FROM jobs WHERE stage = ? AND not_before <= ? AND lease_until <= ?"
                " ORDER BY created_at, key LIMIT ?" + db.dialect.claim_rows,
                (stage, now, now, limit),
            ).fetchall()
            _lease(db, [row[0] for row in rows], owner, now + lease_s, now)
        return [_job(row, attempts_delta=1) for row in rows]

    @_locked
    def claim_first(
        self, stage: str, owner: str, *, limit: int, lease_s: float, field: str, value: str, share: float
    ) -> list[Job]:
        """`claim`, with the jobs whose payload `field` is `value` first (oldest first among them)
        but for at most `share` of `limit` while other jobs wait (those take the rest, oldest first),
        so a flood of the first kind never starves the others; any slot one kind leaves empty the
        other fills."""
        now = self._clock()
        expression = self.db.dialect.text_field(field)
        ready = f"SELECT {_COLUMNS} FROM jobs WHERE stage = ? AND not_before <= ? AND lease_until <= ? AND "
        with self._transaction() as db:
            first = db.execute(
                ready + f"{expression} = ? ORDER BY created_at, key LIMIT ?" + db.dialect.claim_rows,
                (stage, now, now, value, limit),
            ).fetchall()
            others = db.execute(
                ready
                + f"({expression} IS NULL OR {expression} != ?) ORDER BY created_at, key LIMIT ?"
                + db.dialect.claim_rows,
                (stage, now, now, value, limit),
            ).fetchall()
            most_first = max(1, math.ceil(limit * share)) if others else limit
            taken = first[:most_first]
            rest = others[: limit - len(taken)]
            taken += first[len(taken) : len(taken) + limit - len(taken) - len(rest)]
            rows = taken + rest
            _lease(db, [row[0] for row in rows], owner, now + lease_s, now)
        return [_job(row, attempts_delta=1) for row in rows]

    @_locked
    def extend_leases(self, keys: Sequence[str], stage: str, owner: str, lease_s: float) -> int:
        """Renews `owner`'s lease on those of `keys` still at `stage` and leased to it (a worker
        busy with a long batch); how many it renewed."""
        if not keys:
            return 0
        marks = ",".join("?" * len(keys))
        with self._transaction() as db:
            return db.execute(
                f"UPDATE jobs SET lease_until = ? WHERE key IN ({marks}) AND stage = ? AND owner = ?",
                (self._clock() + lease_s, *keys, stage, owner),
            ).rowcount

    @_locked
    def advance(
        self,
        keys: Iterable[str],
        origin: str,
        target: str,
        *,
        owner: str | None = None,
        updates: Mapping[str, Mapping[str, Any]] | None = None,
        complete_intent: tuple[int, Mapping[str, Any]] | None = None,
    ) -> None:
        """Moves jobs from `origin` to `target` in one transaction, merging `updates[key]` into
        each payload and clearing the lease; with `complete_intent`, that intent is completed in
        the same transaction. Raises `StaleJobError` (and changes nothing) if any job is not at
        `origin`, or is leased to someone other than `owner`."""
        keys = sorted(keys)  # one order for every batch: two never wait on each other
        for first, second in itertools.pairwise(keys):
            if first == second:  # a caller's bug: the second move would find the job moved
                raise StaleJobError(f"job {first} is twice in one batch")
        now = self._clock()
        with self._transaction() as db:
            rows: dict[str, Any] = {}
            for start in range(0, len(keys), _KEYS_A_STATEMENT):  # one read per chunk, not one per job
                chunk = keys[start : start + _KEYS_A_STATEMENT]
                marks = ", ".join("?" * len(chunk))
                for row in db.execute(
                    f"SELECT key, stage, owner, lease_until, payload FROM jobs WHERE key IN ({marks}) ORDER BY key"
                    + db.dialect.lock_rows,
                    chunk,
                ):
                    rows[row[0]] = row
            changed, moves = [], []
            for key in keys:
                row = rows.get(key)
                if row is None or row[1] != origin:
                    raise StaleJobError(f"job {key} is at {row[1] if row else 'nowhere'}, not {origin}")
                if owner is not None and row[2] not in (None, owner) and row[3] > now:
                    raise StaleJobError(f"job {key} is leased to {row[2]}")
                payload = {**json.loads(row[4]), **dict((updates or {}).get(key, {}))}
                changed.append((target, _dumps(payload), *payload_columns(payload), now, key))
                moves.append((key, origin, target, now))
            db.executemany(
                "UPDATE jobs SET stage = ?, payload = ?, requester = ?, sha256 = ?, owner = NULL, lease_until = 0,"
                " not_before = 0, attempts = 0, error = NULL, updated_at = ? WHERE key = ?",
                changed,
            )
            _record_moves(db, moves)
            if complete_intent is not None:
                self._complete(db, *complete_intent, now=now)

    @_locked
    def ready(self, stage: str) -> tuple[int, float | None]:
        """How many jobs at `stage` a claim would take now, and how long (s) the oldest of them
        has been waiting there (None when there are none): what a stage that batches by size or
        time reads."""
        now = self._clock()
        count, oldest = self.db.execute(
            "SELECT COUNT(*), MIN(updated_at) FROM jobs WHERE stage = ? AND not_before <= ? AND lease_until <= ?",
            (stage, now, now),
        ).fetchone()
        return int(count), (now - float(oldest) if oldest is not None else None)

    @_locked
    def backlog(self) -> dict[str, tuple[int, float]]:
        """Per stage, how many jobs a claim would take now and how long (s) the oldest of them
        has waited there: the scaling signal, in one query."""
        now = self._clock()
        rows = self.db.execute(
            "SELECT stage, COUNT(*), MIN(updated_at) FROM jobs WHERE not_before <= ? AND lease_until <= ?"
            " GROUP BY stage",
            (now, now),
        ).fetchall()
        return {stage: (int(count), max(0.0, now - float(oldest))) for stage, count, oldest in rows}

    @_locked
    def waiting(self, stages: Sequence[str]) -> int:
        """How many jobs are at any of `stages`, leased, backing off or ready: the work still on
        its way to a later stage."""
        if not stages:
            return 0
        marks = ",".join("?" * len(stages))
        row = self.db.execute(f"SELECT COUNT(*) FROM jobs WHERE stage IN ({marks})", tuple(stages)).fetchone()
        return int(row[0])

    @_locked
    def release(
        self,
        key: str,
        owner: str,
        *,
        error: str,
        retry_in: float,
        max_attempts: int | None = None,
        give_up_stage: str | None = None,
    ) -> bool:
        """A claimed job failed: it waits `retry_in` seconds at its stage, or, once it has had
        `max_attempts`, moves to `give_up_stage`. True if it gave up. A job that is no longer
        leased to `owner` is left alone."""
        now = self._clock()
        with self._transaction() as db:
            row = db.execute(
                "SELECT stage, owner, attempts FROM jobs WHERE key = ?" + db.dialect.lock_rows, (key,)
            ).fetchone()
            if row is None or row[1] != owner:
                return False
            if max_attempts is not None and give_up_stage is not None and row[2] >= max_attempts:
                db.execute(
                    "UPDATE jobs SET stage = ?, owner = NULL, lease_until = 0, error = ?, updated_at = ? WHERE key = ?",
                    (give_up_stage, error, now, key),
                )
                db.execute(
                    "INSERT INTO transitions (key, origin, target, at) VALUES (?, ?, ?, ?)",
                    (key, row[0], give_up_stage, now),
                )
                return True
            db.execute(
                "UPDATE jobs SET owner = NULL, lease_until = 0, not_before = ?, error = ?, updated_at = ?"
                " WHERE key = ?",
                (now + retry_in, error, now, key),
            )
            return False

    @_locked
    def release_owner(self, owner: str) -> int:
        """Frees every lease `owner` holds (a restarted worker frees its previous life's leases
        at once instead of waiting for them to run out). Returns how many."""
        with self._transaction() as db:
            return db.execute("UPDATE jobs SET owner = NULL, lease_until = 0 WHERE owner = ?", (owner,)).rowcount

    @_locked
    def at_stage(self, stage: str, *, limit: int = 1_000, offset: int = 0) -> list[Job]:
        rows = self.db.execute(
            f"SELECT {_COLUMNS} FROM jobs WHERE stage = ? ORDER BY created_at, key LIMIT ? OFFSET ?",
            (stage, limit, offset),
        ).fetchall()
        return [_job(row) for row in rows]

    @_locked
    def version(self, stages: Sequence[str]) -> tuple[int, float]:
        """(how many jobs, latest change) at `stages`: equal twice only if nothing there changed
        in between, so a reader can cache what it built from them."""
        marks = ",".join("?" * len(stages)) or "''"
        count, latest = self.db.execute(
            f"SELECT COUNT(*), MAX(updated_at) FROM jobs WHERE stage IN ({marks})", tuple(stages)
        ).fetchone()
        return int(count), float(latest or 0.0)

    @_locked
    def in_stages(self, stages: Sequence[str], kind: str) -> list[Job]:
        """Every job of `kind` at any of `stages`, oldest first."""
        marks = ",".join("?" * len(stages)) or "''"
        rows = self.db.execute(
            f"SELECT {_COLUMNS} FROM jobs WHERE kind = ? AND stage IN ({marks}) ORDER BY created_at, key",
            (kind, *stages),
        ).fetchall()
        return [_job(row) for row in rows]

    @_locked
    def of_requester(self, kind: str, requester: str, *, limit: int, offset: int = 0) -> tuple[int, list[Job]]:
        """(how many, a page of) the jobs of `kind` whose payload names `requester` (any case),
        newest first."""
        where = "WHERE kind = ? AND requester = ?"
        values = (kind, requester.lower())
        (total,) = self.db.execute(f"SELECT COUNT(*) FROM jobs {where}", values).fetchone()
        rows = self.db.execute(
            f"SELECT {_COLUMNS} FROM jobs {where} ORDER BY created_at DESC, key LIMIT ? OFFSET ?",
            (*values, limit, offset),
        ).fetchall()
        return int(total), [_job(row) for row in rows]

    @_locked
    def of_requester_since(self, kind: str, requester: str, since: float, *, limit: int) -> list[Job]:
        """Up to `limit` jobs of `kind` whose payload names `requester` (any case), created at
        `since` or later, oldest first."""
        rows = self.db.execute(
            f"SELECT {_COLUMNS} FROM jobs WHERE kind = ? AND requester = ? AND created_at >= ?"
            " ORDER BY created_at, key LIMIT ?",
            (kind, requester.lower(), since, limit),
        ).fetchall()
        return [_job(row) for row in rows]

    @_locked
    def created_since(self, kind: str, since: float, *, limit: int, offset: int = 0) -> list[Job]:
        """A page of the jobs of `kind` created at `since` or later, oldest first."""
        rows = self.db.execute(
            f"SELECT {_COLUMNS} FROM jobs WHERE kind = ? AND created_at >= ? ORDER BY created_at, key LIMIT ? OFFSET ?",
            (kind, since, limit, offset),
        ).fetchall()
        return [_job(row) for row in rows]

    @_locked
    def with_digest(self, kind: str, sha256_hex: str) -> list[Job]:
        """The jobs of `kind` whose payload's `sha256` is `sha256_hex` (lowercase hex, no 0x)."""
        rows = self.db.execute(
            f"SELECT {_COLUMNS} FROM jobs WHERE kind = ? AND sha256 = ? ORDER BY key",
            (kind, sha256_hex),
        ).fetchall()
        return [_job(row) for row in rows]

    @_locked
    def counts(self) -> dict[str, int]:
        """Jobs per stage (for metrics and progress)."""
        return dict(self.db.execute("SELECT stage, COUNT(*) FROM jobs GROUP BY stage").fetchall())

    @_locked
    def overdue(self) -> list[Job]:
        """Jobs past their deadline that have not reached a final stage (orphans)."""
        marks = ",".join("?" * len(self.final)) or "''"
        rows = self.db.execute(
            f"SELECT {_COLUMNS} FROM jobs WHERE deadline IS NOT NULL AND deadline < ? AND stage NOT IN ({marks})",
            (self._clock(), *sorted(self.final)),
        ).fetchall()
        return [_job(row) for row in rows]

    @_locked
    def reached(self, stage: str) -> dict[str, tuple[float, float]]:
        """For every job that ever reached `stage`: (when it was submitted, when it got there)."""
        rows = self.db.execute(
            "SELECT t.key, j.created_at, MIN(t.at) FROM transitions t JOIN jobs j ON j.key = t.key"
            " WHERE t.target = ? GROUP BY t.key, j.created_at",
            (stage,),
        ).fetchall()
        return {key: (float(created), float(at)) for key, created, at in rows}

    @_locked
    def reached_since(self, stage: str, kind: str, since: float, *, limit: int) -> list[tuple[str, float]]:
        """(key, when) of the jobs of `kind` that reached `stage` at or after `since`, oldest
        arrival first, at most `limit` of them."""
        rows = self.db.execute(
            "SELECT t.key, t.at FROM transitions t JOIN jobs j ON j.key = t.key"
            " WHERE t.target = ? AND t.at >= ? AND j.kind = ? ORDER BY t.at, t.key LIMIT ?",
            (stage, since, kind, limit),
        ).fetchall()
        return [(str(key), float(at)) for key, at in rows]

    @_locked
    def history(self, key: str) -> list[tuple[str, str]]:
        """The (origin, target) transitions of one job, in order."""
        rows = self.db.execute("SELECT origin, target FROM transitions WHERE key = ? ORDER BY id", (key,))
        return [(origin, target) for origin, target in rows]

    # -- intents ------------------------------------------------------------------------------

    @_locked
    def record_intent(self, name: str, keys: Iterable[str], data: Mapping[str, Any]) -> int:
        """Writes down an effect about to happen (before it happens); returns its id."""
        with self._transaction() as db:
            (intent_id,) = db.execute(
                "INSERT INTO intents (name, keys, data, created_at) VALUES (?, ?, ?, ?) RETURNING id",
                (name, json.dumps(list(keys)), _dumps(data), self._clock()),
            ).fetchone()
        return int(intent_id)

    @_locked
    def update_intent(self, intent_id: int, data: Mapping[str, Any]) -> None:
        """Merges `data` into an open intent (e.g. the transaction hash once signed)."""
        with self._transaction() as db:
            row = db.execute(
                "SELECT data FROM intents WHERE id = ? AND done_at IS NULL" + db.dialect.lock_rows, (intent_id,)
            ).fetchone()
            if row is None:
                raise JournalError(f"intent {intent_id} is not open")
            db.execute(
                "UPDATE intents SET data = ? WHERE id = ?", (_dumps({**json.loads(row[0]), **dict(data)}), intent_id)
            )

    @_locked
    def complete_intent(self, intent_id: int, outcome: Mapping[str, Any]) -> None:
        with self._transaction() as db:
            self._complete(db, intent_id, outcome, now=self._clock())

    def _complete(self, db: Database, intent_id: int, outcome: Mapping[str, Any], *, now: float) -> None:
        cursor = db.execute(
            "UPDATE intents SET outcome = ?, done_at = ? WHERE id = ? AND done_at IS NULL",
            (_dumps(outcome), now, intent_id),
        )
        if cursor.rowcount != 1:
            raise JournalError(f"intent {intent_id} is not open")

    @_locked
    def open_intents(self, name: str) -> list[Intent]:
        rows = self.db.execute(
            "SELECT id, name, keys, data FROM intents WHERE name = ? AND done_at IS NULL ORDER BY id", (name,)
        ).fetchall()
        return [Intent(row[0], row[1], json.loads(row[2]), json.loads(row[3])) for row in rows]

    @_locked
    def intent_keys(self, name: str) -> set[str]:
        """Every job key named by an intent called `name` that is open or completed without
        `refused` in its outcome: the work already handed to the outside world."""
        rows = self.db.execute("SELECT keys, outcome FROM intents WHERE name = ?", (name,)).fetchall()
        keys: set[str] = set()
        for raw_keys, outcome in rows:
            if outcome is None or "refused" not in json.loads(outcome):
                keys.update(json.loads(raw_keys))
        return keys

    # -- delivered chain events (agents.runtime.events) ----------------------------------------

    @_locked
    def event_seen(self, watcher: str, block_hash: str, log_index: int) -> bool:
        row = self.db.execute(
            "SELECT 1 FROM events WHERE watcher = ? AND block_hash = ? AND log_index = ? AND removed = 0",
            (watcher, block_hash, log_index),
        ).fetchone()
        return row is not None

    @_locked
    def record_event(
        self, watcher: str, block_hash: str, log_index: int, block_number: int, tx_hash: str, payload: Mapping[str, Any]
    ) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT INTO events (watcher, block_hash, log_index, block_number, tx_hash, payload, removed)"
                " VALUES (?, ?, ?, ?, ?, ?, 0) ON CONFLICT (watcher, block_hash, log_index) DO UPDATE SET"
                " block_number = excluded.block_number, tx_hash = excluded.tx_hash, payload = excluded.payload,"
                " removed = 0",
                (watcher, block_hash, log_index, block_number, tx_hash, _dumps(payload)),
            )

    @_locked
    def events_after(self, watcher: str, block_number: int) -> list[tuple[str, int, int, str, dict[str, Any]]]:
        """Delivered, not removed events above `block_number`, newest first:
        (block hash, log index, block number, tx hash, payload)."""
        rows = self.db.execute(
            "SELECT block_hash, log_index, block_number, tx_hash, payload FROM events"
            " WHERE watcher = ? AND block_number > ? AND removed = 0 ORDER BY block_number DESC, log_index DESC",
            (watcher, block_number),
        ).fetchall()
        return [(r[0], r[1], r[2], r[3], json.loads(r[4])) for r in rows]

    @_locked
    def event_blocks(self, watcher: str, *, limit: int) -> list[tuple[int, str]]:
        """(block number, block hash) of the newest blocks that delivered events, newest first."""
        rows = self.db.execute(
            "SELECT DISTINCT block_number, block_hash FROM events WHERE watcher = ? AND removed = 0"
            " ORDER BY block_number DESC LIMIT ?",
            (watcher, limit),
        ).fetchall()
        return [(r[0], r[1]) for r in rows]

    @_locked
    def mark_event_removed(self, watcher: str, block_hash: str, log_index: int) -> None:
        with self._transaction() as db:
            db.execute(
                "UPDATE events SET removed = 1 WHERE watcher = ? AND block_hash = ? AND log_index = ?",
                (watcher, block_hash, log_index),
            )

    # -- leadership ---------------------------------------------------------------------------

    @_locked
    def take_lease(self, name: str, owner: str, *, ttl_s: float) -> str | None:
        """Takes or renews the lease `name` for `ttl_s` seconds: None when `owner` holds it now,
        else the owner who does (and whose lease has not run out). What makes one process, of
        any on any host sharing this journal, the one that sends with a key."""
        now = self._clock()
        with self._transaction() as db:
            # one statement: two claimants of a free lease cannot both win (the upsert is atomic)
            taken = db.execute(
                "INSERT INTO leases (name, owner, until) VALUES (?, ?, ?)"
                " ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, until = excluded.until"
                " WHERE leases.owner = excluded.owner OR leases.until <= ? RETURNING owner",
                (name, owner, now + ttl_s, now),
            ).fetchone()
            if taken is not None:
                return None
            holder = db.execute("SELECT owner FROM leases WHERE name = ?", (name,)).fetchone()
        return str(holder[0]) if holder is not None else ""

    @_locked
    def drop_lease(self, name: str, owner: str) -> bool:
        """Gives the lease up at once (a graceful stop), if `owner` holds it."""
        with self._transaction() as db:
            return bool(db.execute("DELETE FROM leases WHERE name = ? AND owner = ?", (name, owner)).rowcount)

    # -- checkpoints --------------------------------------------------------------------------

    @_locked
    def checkpoint(self, name: str) -> dict[str, Any] | None:
        row = self.db.execute("SELECT value FROM checkpoints WHERE name = ?", (name,)).fetchone()
        return json.loads(row[0]) if row else None

    @_locked
    def set_checkpoint(self, name: str, value: Mapping[str, Any]) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT INTO checkpoints (name, value) VALUES (?, ?)"
                " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                (name, _dumps(value)),
            )


_COLUMNS: Final = "key, kind, stage, payload, attempts, created_at, updated_at, deadline, error"


def _job(row: tuple[Any, ...], attempts_delta: int = 0) -> Job:
    return Job(row[0], row[1], row[2], json.loads(row[3]), row[4] + attempts_delta, row[5], row[6], row[7], row[8])
