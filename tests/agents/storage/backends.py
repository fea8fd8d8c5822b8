"""What the store tests do behind a store's back, per backend: count its blocks, overwrite one."""

from __future__ import annotations

import psycopg

from agents.storage.cid import Cid
from agents.storage.pgstore import PostgresStore
from agents.storage.store import BlockStore, LocalStore


def block_count(store: BlockStore) -> int:
    """How many distinct blocks the store holds."""
    if isinstance(store, LocalStore):
        return sum(1 for path in (store.root / "blocks").rglob("*") if path.is_file())
    assert isinstance(store, PostgresStore)
    with psycopg.connect(store.url) as db:
        row = db.execute("SELECT count(*) FROM blocks").fetchone()
    assert row is not None
    return int(row[0])


def overwrite_block(store: BlockStore, cid: Cid, data: bytes) -> None:
    """Replaces a stored block's bytes in place, as a disk fault or an intruder would."""
    if isinstance(store, LocalStore):
        name = cid.digest.hex()
        (store.root / "blocks" / name[:2] / name).write_bytes(data)
        return
    assert isinstance(store, PostgresStore)
    with psycopg.connect(store.url) as db:
        changed = db.execute("UPDATE blocks SET data = %s WHERE cid_digest = %s", (data, cid.digest)).rowcount
    assert changed == 1
