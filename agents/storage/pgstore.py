"""The shared block store: blocks in a PostgreSQL table, so that every host that reaches the server
(a publisher here, the API there) sees the same blocks.

    blocks (cid_digest BYTEA PRIMARY KEY, codec INTEGER NOT NULL, data BYTEA NOT NULL)

The DAG logic is `agents.storage.store.BlockStore`'s, the same as the local store's: the same
CIDs, every block read checked against its CID. What this backend adds:
- Durability and atomicity are the server's: a file is added in one transaction, all its blocks
  or none (`block_writer`). Putting a block that is there already does nothing
  (`ON CONFLICT DO NOTHING`), so any number of hosts may add the same file at once.
- A row's `codec` is the one its block was first put under; it is for people reading the
  table. The key is the digest alone, as the local store's file names are.
- The table is made when a store first connects and does not find it, under a
  transaction-scoped advisory lock so that hosts starting together take turns; a role that may
  only read works once the table exists.
- One connection per store, held under a lock: the store is safe to call from threads (as
  `asyncio.to_thread` does), one call at a time. A connection error (the server is unreachable,
  restarted, or ended the session) fails that call with `StoreUnavailableError`, retryable, and
  the next call connects again; the transaction in flight rolled back.

`open_store` turns a location (a folder or a `postgresql://` URL) into the store it names.

Limits: reads go one block per query (a 256 KiB chunk is worth a round trip). A file of more
than `BATCH_BYTES` holds the store's connection while it streams in, so other calls on the same
store wait for it; give each concurrent writer its own store. Two adds that share blocks in a
different order can deadlock across batches; the server ends one of them, which fails with
`StoreUnavailableError` and succeeds when tried again.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from agents.core.errors import PermanentError, RetryableError
from agents.core.locations import is_postgres, redact
from agents.storage.cid import Cid
from agents.storage.store import BlockStore, LocalStore
from agents.storage.unixfs import Emit

if TYPE_CHECKING:
    import psycopg

#: Bytes of blocks an add gathers in memory before it sends them to the server (in one
#: `executemany`, inside the add's transaction). A file below this is one short transaction.
BATCH_BYTES: Final = 8 * 1024 * 1024

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS blocks (
    cid_digest BYTEA PRIMARY KEY CHECK (octet_length(cid_digest) = 32),
    codec      INTEGER NOT NULL,
    data       BYTEA NOT NULL
)
"""
#: The advisory lock the table's creators take turns under (the journal's schema uses 7081292147).
_SCHEMA_LOCK: Final = 7081292148
_INSERT: Final = "INSERT INTO blocks (cid_digest, codec, data) VALUES (%b, %s, %b) ON CONFLICT DO NOTHING"


class StoreUnavailableError(RetryableError, ConnectionError):
    """The block store's server could not be reached or dropped the connection; the next call
    connects again. Nothing half-done is left: the transaction in flight rolled back."""


class StoreLocationError(PermanentError, ValueError):
    """A store location that is neither a folder nor a postgresql:// URL."""


class PostgresStore(BlockStore):
    """Blocks in a PostgreSQL table (see the module docstring).

    Lifecycle:
    1. `PostgresStore(url)` connects to nothing yet.
    2. The first call connects and makes the table if it is missing (`create` does only that).
    3. Each call holds the store's lock and its one connection; a connection error drops the
       connection and raises `StoreUnavailableError`, and the next call goes back to step 2.
    4. `close` ends the connection; the owner calls it on shutdown (a later call reconnects).
    """

    def __init__(self, url: str, *, connect_timeout_s: float = 10.0, batch_bytes: int = BATCH_BYTES) -> None:
        import psycopg  # only where a PostgreSQL store is used

        self._psycopg = psycopg
        self._errors: tuple[type[Exception], ...] = (psycopg.OperationalError, psycopg.InterfaceError)
        self.url = url
        self._connect_timeout = max(1, round(connect_timeout_s))
        self._batch_bytes = batch_bytes
        self._db: psycopg.Connection[Any] | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"PostgresStore({self.location})"

    @property
    def location(self) -> str:
        return redact(self.url)

    # -- connection ---------------------------------------------------------------------------

    def _connect(self) -> psycopg.Connection[Any]:
        db = self._psycopg.connect(self.url, autocommit=True, connect_timeout=self._connect_timeout)
        try:
            with db.transaction():
                if db.execute("SELECT to_regclass('blocks')").fetchone() == (None,):
                    # CREATE TABLE IF NOT EXISTS is not atomic in PostgreSQL: creators take turns.
                    db.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
                    db.execute(_SCHEMA)
        except BaseException:
            db.close()
            raise
        return db

    @contextlib.contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        """The store's connection, held under its lock. A connection error drops the connection
        (the next call connects again) and is raised as `StoreUnavailableError`."""
        with self._lock:
            try:
                if self._db is None:
                    self._db = self._connect()
                yield self._db
            except self._errors as error:
                self._disconnect()
                raise StoreUnavailableError(f"block store {self.location} unavailable: {error}") from error

    def _disconnect(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            with contextlib.suppress(Exception):
                db.close()

    def create(self) -> None:
        """Connects and makes the table if it is missing (idempotent); raises
        `StoreUnavailableError` if the server cannot be reached."""
        with self._connection():
            pass

    def close(self) -> None:
        with self._lock:
            self._disconnect()

    # -- blocks -------------------------------------------------------------------------------

    def put_block(self, cid: Cid, block: bytes) -> None:
        """Stores one block (idempotent: an existing block is left alone)."""
        with self._connection() as db:
            db.execute(_INSERT, (cid.digest, cid.codec, block))

    def raw_block(self, cid: Cid) -> bytes | None:
        """A block's bytes as they lie, unchecked (None when absent): for an auditor, who reports
        a damaged or tampered block rather than stopping at it. Everything else uses `get_block`."""
        with self._connection() as db:
            row = db.execute("SELECT data FROM blocks WHERE cid_digest = %b", (cid.digest,), binary=True).fetchone()
        return None if row is None else bytes(row[0])

    def raw_blocks(self, cids: Sequence[Cid]) -> dict[bytes, bytes]:
        """The blocks of `cids` the store holds, unchecked, by digest: one query (see
        `BlockStore.raw_blocks`)."""
        digests = sorted({cid.digest for cid in cids})
        if not digests:
            return {}
        with self._connection() as db:
            rows = db.execute(
                "SELECT cid_digest, data FROM blocks WHERE cid_digest = ANY(%b)", (digests,), binary=True
            ).fetchall()
        return {bytes(digest): bytes(data) for digest, data in rows}

    def has(self, cid: Cid) -> bool:
        with self._connection() as db:
            row = db.execute("SELECT EXISTS (SELECT 1 FROM blocks WHERE cid_digest = %b)", (cid.digest,)).fetchone()
        return row is not None and bool(row[0])

    @contextlib.contextmanager
    def block_writer(self) -> Iterator[Emit]:
        """A context whose `put(cid, block)` gathers blocks; they commit together when the context
        ends, or not at all if it ends with an error. Up to `batch_bytes` wait in memory; the
        first batch past that takes the connection and opens the transaction, which then stays
        open (holding the connection) until the context ends."""
        pending: list[tuple[bytes, int, bytes]] = []
        size = 0
        with contextlib.ExitStack() as held:
            cursor: psycopg.Cursor[Any] | None = None

            def flush() -> None:
                nonlocal cursor, size
                if cursor is None:
                    db = held.enter_context(self._connection())
                    held.enter_context(db.transaction())
                    cursor = held.enter_context(db.cursor())
                pending.sort()  # key order: two batches of the same blocks wait for each other, never deadlock
                cursor.executemany(_INSERT, pending)
                pending.clear()
                size = 0

            def put(cid: Cid, block: bytes) -> None:
                nonlocal size
                pending.append((cid.digest, cid.codec, block))
                size += len(block)
                if size >= self._batch_bytes:
                    flush()

            yield put
            if pending:
                flush()


def open_store(spec: str | Path) -> BlockStore:
    """The store a location names: a `postgresql://` URL is a `PostgresStore`, a path (or any
    string without `://`) a `LocalStore` folder. Neither connects nor creates anything."""
    if is_postgres(spec):
        return PostgresStore(str(spec))
    if isinstance(spec, str) and "://" in spec:
        raise StoreLocationError(f"a block store is a folder or a postgresql:// URL, not {redact(spec)}")
    return LocalStore(Path(spec))
