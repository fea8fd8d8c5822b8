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
from collections.abc import Iterator, Sequence
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
    requester: str
    sha256: str


_SQLITE_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS jobs (
    key         TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    stage       TEXT NOT NULL,
    payload     TEXT NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    owner       TEXT,
    lease_until REAL NOT NULL DEFAULT 0,
    not_before  REAL NOT NULL DEFAULT 0,
    created_at  REAL NOT NULL,
    updated_at  REAL NOT NULL,
    deadline    REAL,
    error       TEXT
);
CREATE INDEX IF NOT EXISTS jobs_by_stage ON jobs (stage, not_before, lease_until);
CREATE INDEX IF NOT EXISTS jobs_by_requester ON jobs (kind, lower(json_extract(payload, '$.requester')), created_at);
CREATE INDEX IF NOT EXISTS jobs_by_digest ON jobs (kind, json_extract(payload, '$.sha256'));
CREATE TABLE IF NOT EXISTS transitions (
    id     INTEGER PRIMARY KEY,
    key    TEXT NOT NULL,
    origin TEXT NOT NULL,
    target TEXT NOT NULL,
    at     REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS transitions_by_key ON transitions (key);
CREATE TABLE IF NOT EXISTS intents (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    keys       TEXT NOT NULL,
    data       TEXT NOT NULL,
    outcome    TEXT,
    created_at REAL NOT NULL,
    done_at    REAL
);
CREATE INDEX IF NOT EXISTS open_intents ON intents (name) WHERE done_at IS NULL;
CREATE TABLE IF NOT EXISTS events (
    watcher      TEXT NOT NULL,
    block_hash   TEXT NOT NULL,
    log_index    INTEGER NOT NULL,
    block_number INTEGER NOT NULL,
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
    until REAL NOT NULL
);
"""

# The same tables. Times are DOUBLE PRECISION (PostgreSQL's REAL is 4 bytes); keys and stages
# compare bytewise (COLLATE "C") so that claims take jobs in SQLite's order.
_POSTGRES_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS jobs (
    key         TEXT COLLATE "C" PRIMARY KEY,
    kind        TEXT COLLATE "C" NOT NULL,
    stage       TEXT COLLATE "C" NOT NULL,
    payload     TEXT NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    owner       TEXT,
    lease_until DOUBLE PRECISION NOT NULL DEFAULT 0,
    not_before  DOUBLE PRECISION NOT NULL DEFAULT 0,
    created_at  DOUBLE PRECISION NOT NULL,
    updated_at  DOUBLE PRECISION NOT NULL,
    deadline    DOUBLE PRECISION,
    error       TEXT
);
CREATE INDEX IF NOT EXISTS jobs_by_stage ON jobs (stage, not_before, lease_until);
CREATE INDEX IF NOT EXISTS jobs_in_claim_order ON jobs (stage, created_at, key);
CREATE INDEX IF NOT EXISTS jobs_by_owner ON jobs (owner) WHERE owner IS NOT NULL;
CREATE INDEX IF NOT EXISTS jobs_by_requester ON jobs (kind, lower(payload::jsonb ->> 'requester'), created_at);
CREATE INDEX IF NOT EXISTS jobs_by_digest ON jobs (kind, (payload::jsonb ->> 'sha256'));
CREATE TABLE IF NOT EXISTS transitions (
    id     BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    key    TEXT COLLATE "C" NOT NULL,
    origin TEXT NOT NULL,
    target TEXT NOT NULL,
    at     DOUBLE PRECISION NOT NULL
);
CREATE INDEX IF NOT EXISTS transitions_by_key ON transitions (key);
CREATE INDEX IF NOT EXISTS transitions_by_target ON transitions (target);
CREATE TABLE IF NOT EXISTS intents (
    id         BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    name       TEXT NOT NULL,
    keys       TEXT NOT NULL,
    data       TEXT NOT NULL,
    outcome    TEXT,
    created_at DOUBLE PRECISION NOT NULL,
    done_at    DOUBLE PRECISION
);
CREATE INDEX IF NOT EXISTS open_intents ON intents (name) WHERE done_at IS NULL;
CREATE TABLE IF NOT EXISTS events (
    watcher      TEXT NOT NULL,
    block_hash   TEXT NOT NULL,
    log_index    BIGINT NOT NULL,
    block_number BIGINT NOT NULL,
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
    until DOUBLE PRECISION NOT NULL
);
"""

SQLITE: Final = Dialect(
    "sqlite",
    _SQLITE_SCHEMA,
    lock_rows="",  # BEGIN IMMEDIATE already holds the only write lock
    claim_rows="",
    requester="lower(json_extract(payload, '$.requester'))",
    sha256="json_extract(payload, '$.sha256')",
)
POSTGRES: Final = Dialect(
    "postgresql",
    _POSTGRES_SCHEMA,
    lock_rows=" FOR UPDATE",
    claim_rows=" FOR UPDATE SKIP LOCKED",
    requester="lower(payload::jsonb ->> 'requester')",
    sha256="(payload::jsonb ->> 'sha256')",
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

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        try:
            return self.db.execute(self._translate(sql), tuple(params))
        except self._errors as error:
            raise JournalUnavailableError(f"journal {redact(self.url)}: {error}") from error

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        try:
            with self.db.cursor() as cursor:
                cursor.executemany(self._translate(sql), rows)
        except self._errors as error:
            raise JournalUnavailableError(f"journal {redact(self.url)}: {error}") from error

    @contextlib.contextmanager
    def transaction(self) -> Iterator[PostgresDatabase]:
        """BEGIN … COMMIT at READ COMMITTED, or ROLLBACK on any exception."""
        try:
            with self.db.transaction():
                yield self
        except self._errors as error:
            raise JournalUnavailableError(f"journal {redact(self.url)}: {error}") from error

    def create_schema(self, schema: str | None = None) -> None:
        # Workers starting together would race on CREATE ... IF NOT EXISTS (it is not atomic in
        # PostgreSQL): one transaction-scoped advisory lock makes them take turns.
        with self.transaction():
            self.execute("SELECT pg_advisory_xact_lock(7081292147)")
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
