"""What differs between the journal's two engines: connecting, transactions, placeholders, the
schema and a few SQL fragments. agents.runtime.journal writes its SQL once, with `?` marks and
these fragments, and runs it on either.

A location is a filesystem path (SQLite, the embedded default) or a `postgresql://` URL
(PostgreSQL: many workers on many hosts). `PROOFMINT_JOURNAL` names one where a command line
does not (agents.app.wiring.journal_location).
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol

from agents.core.errors import PermanentError, RetryableError
from agents.core.locations import is_postgres, redact


class JournalUnavailableError(RetryableError, ConnectionError):
    """The journal's server could not be reached or dropped the connection; the next call
    connects again. Nothing half-done is left: the transaction in flight rolled back."""


class JournalLocationError(PermanentError, ValueError):
    """A journal location that is neither a path nor a postgresql:// URL."""


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


@dataclass(frozen=True)
class Dialect:
    """The SQL fragments that differ."""

    name: str
    schema: str
    #: appended to a SELECT whose rows the transaction then changes (compare-and-set)
    lock_rows: str
    #: appended to the claim's SELECT: rows another claimer holds are passed over, not waited on
    claim_rows: str
    #: the payload's requester (lowercased) and sha256 as SQL: what a journal of schema 1 kept
    #: in its indexes, read once to fill the columns that replaced them (`migrate_v1`)
    requester: str
    sha256: str
    #: the names of the jobs table's columns, one a row
    columns_of_jobs: str
    #: taken at the start of a transaction that changes the schema: schema changes take turns
    #: (SQLite's `BEGIN IMMEDIATE` already holds its only write lock)
    schema_lock: str

    def text_field(self, name: str) -> str:
        """The SQL of a top-level text field of a job's payload (`name` is code, never input)."""
        if not name.isidentifier():
            raise ValueError(f"not a payload field name: {name!r}")
        return f"json_extract(payload, '$.{name}')" if self.name == "sqlite" else f"(payload::jsonb ->> '{name}')"


# One schema, two engines: `{time}` (PostgreSQL's REAL is 4 bytes: DOUBLE PRECISION there),
# `{id}` (an auto-numbered key), `{int64}`, `{key}` (keys and stages compare bytewise in
# PostgreSQL, COLLATE "C", so that claims take jobs in SQLite's order), and `{extra}`: indexes
# only PostgreSQL's planner needs (claims in order, leases by owner, transitions by target).
#
# A job's requester (lowercased) and image digest are columns of their own, written by the
# journal with the payload they come from (`payload_columns`), not indexes on expressions of the
# payload: every claim and every stage move rewrites a job's row with its indexes (the stage
# and the lease are indexed), and PostgreSQL parsed the whole payload as jsonb once for each
# such index every time (a stage move took 0.127 ms with them and 0.039 ms without, for a
# 2 KB payload). Their indexes (`COLUMN_INDEXES`) come after a journal of schema 1 has the
# columns (`migrate_v1`).
_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS jobs (
    key         TEXT{key} PRIMARY KEY,
    kind        TEXT{key} NOT NULL,
    stage       TEXT{key} NOT NULL,
    payload     TEXT NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    owner       TEXT,
    lease_until {time} NOT NULL DEFAULT 0,
    not_before  {time} NOT NULL DEFAULT 0,
    created_at  {time} NOT NULL,
    updated_at  {time} NOT NULL,
    deadline    {time},
    error       TEXT,
    requester   TEXT,
    sha256      TEXT
);
CREATE INDEX IF NOT EXISTS jobs_by_stage ON jobs (stage, not_before, lease_until);
CREATE TABLE IF NOT EXISTS transitions (
    id     {id},
    key    TEXT{key} NOT NULL,
    origin TEXT NOT NULL,
    target TEXT NOT NULL,
    at     {time} NOT NULL
);
CREATE INDEX IF NOT EXISTS transitions_by_key ON transitions (key);
CREATE TABLE IF NOT EXISTS intents (
    id         {id},
    name       TEXT NOT NULL,
    keys       TEXT NOT NULL,
    data       TEXT NOT NULL,
    outcome    TEXT,
    created_at {time} NOT NULL,
    done_at    {time}
);
CREATE INDEX IF NOT EXISTS open_intents ON intents (name) WHERE done_at IS NULL;
CREATE TABLE IF NOT EXISTS events (
    watcher      TEXT NOT NULL,
    block_hash   TEXT NOT NULL,
    log_index    {int64} NOT NULL,
    block_number {int64} NOT NULL,
    tx_hash      TEXT NOT NULL,
    payload      TEXT NOT NULL,
    removed      INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (watcher, block_hash, log_index)
);
CREATE INDEX IF NOT EXISTS events_by_block ON events (watcher, block_number);
CREATE TABLE IF NOT EXISTS checkpoints (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS leases (
    name  TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    until {time} NOT NULL
);{extra}
"""


_SCHEMA_LOCK: Final = 7081292147
"""PostgreSQL's advisory lock key for changing the journal's schema."""

COLUMN_INDEXES: Final = (
    "CREATE INDEX IF NOT EXISTS jobs_of_requester ON jobs (kind, requester, created_at)",
    "CREATE INDEX IF NOT EXISTS jobs_of_digest ON jobs (kind, sha256)",
)
"""The indexes on the payload's columns (schema 2)."""


def payload_columns(payload: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(requester lowercased, sha256) of a job's payload, as the `requester` and `sha256`
    columns hold them: None where the payload has no such text."""
    requester, sha256 = payload.get("requester"), payload.get("sha256")
    return (
        requester.lower() if isinstance(requester, str) else None,
        sha256 if isinstance(sha256, str) else None,
    )


def migrate_v1(db: Database) -> None:
    """A journal of schema 1 (requester and digest in expression indexes) to schema 2, inside the
    caller's transaction: the two columns, filled from every payload, and their indexes in place
    of the old ones."""
    have = {str(row[0]) for row in db.execute(db.dialect.columns_of_jobs)}
    for column in ("requester", "sha256"):
        if column not in have:
            db.execute(f"ALTER TABLE jobs ADD COLUMN {column} TEXT")
    db.execute(f"UPDATE jobs SET requester = {db.dialect.requester}, sha256 = {db.dialect.sha256}")
    db.execute("DROP INDEX IF EXISTS jobs_by_requester")
    db.execute("DROP INDEX IF EXISTS jobs_by_digest")


def _dialect(name: str, *, lock_rows: str, claim_rows: str, requester: str, sha256: str, **types: str) -> Dialect:
    columns = (
        "SELECT name FROM pragma_table_info('jobs')"
        if name == "sqlite"
        else "SELECT column_name FROM information_schema.columns WHERE table_name = 'jobs'"
        " AND table_schema = current_schema()"
    )
    lock = "" if name == "sqlite" else f"SELECT pg_advisory_xact_lock({_SCHEMA_LOCK})"
    return Dialect(name, _SCHEMA.format(**types), lock_rows, claim_rows, requester, sha256, columns, lock)


SQLITE: Final = _dialect(
    "sqlite",
    lock_rows="",  # BEGIN IMMEDIATE already holds the only write lock
    claim_rows="",
    requester="lower(json_extract(payload, '$.requester'))",
    sha256="json_extract(payload, '$.sha256')",
    key="",
    time="REAL",
    id="INTEGER PRIMARY KEY",
    int64="INTEGER",
    extra="",
)
POSTGRES: Final = _dialect(
    "postgresql",
    lock_rows=" FOR UPDATE",
    claim_rows=" FOR UPDATE SKIP LOCKED",
    requester="lower(payload::jsonb ->> 'requester')",
    sha256="(payload::jsonb ->> 'sha256')",
    key=' COLLATE "C"',
    time="DOUBLE PRECISION",
    id="BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
    int64="BIGINT",
    extra="""
CREATE INDEX IF NOT EXISTS jobs_in_claim_order ON jobs (stage, created_at, key);
CREATE INDEX IF NOT EXISTS jobs_by_owner ON jobs (owner) WHERE owner IS NOT NULL;
CREATE INDEX IF NOT EXISTS transitions_by_target ON transitions (target);""",
)


class Database(Protocol):
    """One connection, used from one thread at a time."""

    dialect: Dialect

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor: ...

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...

    def transaction(self) -> contextlib.AbstractContextManager[Database]: ...

    def create_schema(self, schema: str | None = None) -> None:
        """Creates `schema` (default: the journal's) if missing; safe when many start at once."""
        ...

    def close(self) -> None: ...


class SqliteDatabase:
    dialect = SQLITE

    def __init__(self, path: Path, *, synchronous: str = "NORMAL") -> None:
        """`synchronous`: NORMAL survives any process crash; FULL also a power cut (an fsync per
        commit), for what holds money (the API's channel book)."""
        if synchronous not in ("NORMAL", "FULL"):
            raise ValueError(f"synchronous is NORMAL or FULL, not {synchronous!r}")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30.0)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute(f"PRAGMA synchronous={synchronous}")
        self.db.execute("PRAGMA foreign_keys=ON")

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        return self.db.execute(sql, tuple(params))

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self.db.executemany(sql, rows)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[SqliteDatabase]:
        """`BEGIN IMMEDIATE` … `COMMIT`, or `ROLLBACK` on any exception: all or nothing."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def create_schema(self, schema: str | None = None) -> None:
        self.db.executescript(schema or self.dialect.schema)

    def close(self) -> None:
        self.db.close()


_MARK: Final = re.compile(r"\?")


class PostgresDatabase:
    dialect = POSTGRES

    def __init__(self, url: str, *, connect_timeout_s: float = 10.0) -> None:
        import psycopg  # only where a PostgreSQL journal is used

        self._errors = (psycopg.OperationalError, psycopg.InterfaceError)
        self.url = url
        try:
            self.db = psycopg.connect(url, autocommit=True, connect_timeout=max(1, round(connect_timeout_s)))
        except self._errors as error:
            raise JournalUnavailableError(f"journal {redact(url)} unreachable: {error}") from error
        self._sql: dict[str, str] = {}

    def _translate(self, sql: str) -> str:
        translated = self._sql.get(sql)
        if translated is None:
            translated = self._sql[sql] = _MARK.sub("%s", sql.replace("%", "%%"))
        return translated

    @contextlib.contextmanager
    def _unavailable(self) -> Iterator[None]:
        """A connection error, as `JournalUnavailableError` (retryable)."""
        try:
            yield
        except self._errors as error:
            raise JournalUnavailableError(f"journal {redact(self.url)}: {error}") from error

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        with self._unavailable():
            return self.db.execute(self._translate(sql), tuple(params))

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        with self._unavailable(), self.db.cursor() as cursor:
            cursor.executemany(self._translate(sql), rows)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[PostgresDatabase]:
        """BEGIN … COMMIT at READ COMMITTED, or ROLLBACK on any exception."""
        with self._unavailable(), self.db.transaction():
            yield self

    def create_schema(self, schema: str | None = None) -> None:
        # Workers starting together would race on CREATE ... IF NOT EXISTS (it is not atomic in
        # PostgreSQL): one transaction-scoped advisory lock makes them take turns.
        with self.transaction():
            self.execute(self.dialect.schema_lock)
            for statement in (schema or self.dialect.schema).split(";"):
                if statement.strip():
                    self.execute(statement)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.db.close()


def connect(location: str | Path, *, synchronous: str = "NORMAL") -> Database:
    """`location`'s database (`synchronous`: SQLite's, see `SqliteDatabase`)."""
    if is_postgres(location):
        return PostgresDatabase(str(location))
    if isinstance(location, str) and "://" in location:
        raise JournalLocationError(f"a journal is a file path or a postgresql:// URL, not {redact(location)}")
    return SqliteDatabase(Path(location), synchronous=synchronous)
