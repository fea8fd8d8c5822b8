"""The PostgreSQL block store (agents/storage/pgstore.py) on a real server: two stores on one
database stand for two hosts. What every backend does alike is in test_store.py.

The tests' server trusts loopback connections, so a URL may carry a password the server ignores:
the tests use one to check that no message shows it.
"""

from __future__ import annotations

import io
import os
import random
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest

from agents.core.errors import PermanentError, RetryableError
from agents.storage.cid import Cid
from agents.storage.pgstore import PostgresStore, StoreLocationError, StoreUnavailableError, open_store
from agents.storage.store import BlockNotFoundError, CorruptBlockError, LocalStore
from agents.storage.unixfs import CHUNK_SIZE, decode_file_node
from tests.agents.runtime.anvil import free_port
from tests.agents.storage.backends import block_count, overwrite_block
from tests.agents.storage.reference import reference_cid
from tests.agents.storage.test_unixfs import KNOWN

PASSWORD = "hunter2"


@pytest.fixture
def url(postgres_url: str) -> str:
    """The test's database, with a password in the URL (which the trusting server ignores)."""
    assert postgres_url.startswith("postgresql://postgres@")
    return postgres_url.replace("postgres@", f"postgres:{PASSWORD}@", 1)


@pytest.fixture
def hosts(url: str) -> Iterator[tuple[PostgresStore, PostgresStore]]:
    """Two stores on one database: a publisher's host and the API's."""
    publisher, api = PostgresStore(url), PostgresStore(url)
    yield publisher, api
    publisher.close()
    api.close()


def _data(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


def _end_other_sessions(url: str) -> int:
    """Ends every session on the database but this one, as a server restart or a DBA would."""
    with psycopg.connect(url, autocommit=True) as admin:
        return len(
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            ).fetchall()
        )


def _assert_redacted(error: BaseException) -> None:
    assert PASSWORD not in str(error) and "postgres:***@127.0.0.1" in str(error)


@pytest.mark.parametrize("version", [0, 1])
@pytest.mark.parametrize("size", [0, 5, CHUNK_SIZE + 1, 3 * CHUNK_SIZE + 7])
def test_a_file_added_on_one_host_reads_byte_identically_on_another(
    tmp_path: Path, hosts: tuple[PostgresStore, PostgresStore], version: int, size: int
):
    publisher, api = hosts
    data = _data(size, seed=size)
    source = tmp_path / "file"
    source.write_bytes(data)
    with source.open("rb") as stream:
        cid = publisher.add(stream, version)
    local = LocalStore(tmp_path / "local")
    assert local.add_bytes(data, version) == cid
    assert str(cid) == reference_cid(source, version)  # what ipfs-unixfs-importer (and Kubo) make
    out = io.BytesIO()
    assert api.cat(cid, out) == size and out.getvalue() == data
    assert api.read(cid) == data and api.has(cid)
    theirs, ours = io.BytesIO(), io.BytesIO()
    local.export_car(cid, theirs)
    api.export_car(cid, ours)
    assert ours.getvalue() == theirs.getvalue()


@pytest.mark.parametrize(("data", "version", "expected"), KNOWN)
def test_known_ipfs_add_outputs_are_the_cids_stored(
    hosts: tuple[PostgresStore, PostgresStore], data: bytes, version: int, expected: str
):
    publisher, api = hosts
    assert str(publisher.add_bytes(data, version)) == expected
    assert api.read(Cid.parse(expected)) == data


def test_a_tampered_row_fails_the_read_and_raw_block_returns_the_tampered_bytes(
    hosts: tuple[PostgresStore, PostgresStore],
):
    publisher, api = hosts
    cid = publisher.add_bytes(_data(2 * CHUNK_SIZE))
    leaf, _ = decode_file_node(api.get_block(cid)).links[1]
    tampered = _data(CHUNK_SIZE, seed=1)
    overwrite_block(api, leaf, tampered)  # an UPDATE through another connection
    with pytest.raises(CorruptBlockError, match="does not hash") as raised:
        api.read(cid)
    _assert_redacted(raised.value)
    with pytest.raises(CorruptBlockError):
        api.export_car(cid, io.BytesIO())
    assert api.raw_block(leaf) == tampered and api.has(leaf)


def test_a_missing_block_is_block_not_found_naming_the_store_without_its_password(
    hosts: tuple[PostgresStore, PostgresStore],
):
    _, api = hosts
    absent = Cid.of(b"never added", 0x55)
    with pytest.raises(BlockNotFoundError, match="no block") as raised:
        api.read(absent)
    _assert_redacted(raised.value)
    assert api.raw_block(absent) is None and not api.has(absent)
    assert PASSWORD not in repr(api)


def test_putting_a_block_twice_keeps_the_first_row(hosts: tuple[PostgresStore, PostgresStore]):
    publisher, api = hosts
    block = b"one block"
    raw, dag = Cid.of(block, 0x55), Cid.of(block, 0x70)  # one digest under two codecs
    publisher.put_block(raw, block)
    api.put_block(raw, block)
    publisher.put_blocks([(dag, block), (raw, block), (dag, block)])
    assert block_count(api) == 1 and api.get_block(dag) == block
    with psycopg.connect(api.url) as db:
        assert db.execute("SELECT codec FROM blocks").fetchall() == [(0x55,)]
    cid = publisher.add_bytes(_data(CHUNK_SIZE + 1))
    count = block_count(api)
    assert api.add_bytes(_data(CHUNK_SIZE + 1)) == cid and block_count(api) == count


class _Source(io.RawIOBase):
    """A file of `chunks` chunks that runs `hook()` once, when the first `hook_after` are read."""

    def __init__(self, chunks: int, hook_after: int, hook: Callable[[], object]) -> None:
        self.chunks, self.hook_after, self.hook, self.given = chunks, hook_after, hook, 0

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        if self.given == self.hook_after:
            self.hook_after = -1
            self.hook()
        if self.given == self.chunks:
            return b""
        self.given += 1
        return _data(CHUNK_SIZE, seed=self.given)


def _went_away() -> None:
    raise OSError("the source went away")


def test_a_failed_add_leaves_none_of_its_blocks(url: str):
    store = PostgresStore(url, batch_bytes=CHUNK_SIZE)  # each block is sent before the failure
    with pytest.raises(OSError, match="went away"):
        store.add(_Source(5, hook_after=3, hook=_went_away))
    assert block_count(store) == 0
    data = _data(3 * CHUNK_SIZE + 5)
    assert store.read(store.add_bytes(data)) == data  # several batches, one transaction
    store.close()


def test_a_connection_dropped_mid_add_rolls_the_file_back_and_the_next_add_works(url: str):
    store = PostgresStore(url, batch_bytes=CHUNK_SIZE)
    with pytest.raises(StoreUnavailableError) as raised:
        store.add(_Source(5, hook_after=3, hook=lambda: _end_other_sessions(url)))
    _assert_redacted(raised.value)
    assert block_count(store) == 0
    data = _data(2 * CHUNK_SIZE)
    assert store.read(store.add_bytes(data)) == data
    store.close()


def test_a_dropped_connection_fails_one_call_and_the_next_connects_again(
    url: str, hosts: tuple[PostgresStore, PostgresStore]
):
    publisher, api = hosts
    data = _data(CHUNK_SIZE + 1)
    cid = publisher.add_bytes(data)
    assert api.read(cid) == data
    assert _end_other_sessions(url) == 2
    with pytest.raises(StoreUnavailableError) as raised:
        api.read(cid)
    assert isinstance(raised.value, RetryableError) and isinstance(raised.value, ConnectionError)
    _assert_redacted(raised.value)
    assert api.read(cid) == data
    with pytest.raises(StoreUnavailableError):
        publisher.put_block(Cid.of(b"x", 0x55), b"x")
    publisher.put_block(Cid.of(b"x", 0x55), b"x")
    assert api.get_block(Cid.of(b"x", 0x55)) == b"x"


def test_an_unreachable_server_is_retryable_and_the_message_hides_the_password():
    store = PostgresStore(f"postgresql://proofmint:{PASSWORD}@127.0.0.1:{free_port()}/blocks", connect_timeout_s=2)
    for call in (store.create, lambda: store.has(Cid.of(b"", 0x55)), lambda: store.add_bytes(b"payload")):
        with pytest.raises(StoreUnavailableError) as raised:
            call()
        assert isinstance(raised.value, RetryableError)
        assert PASSWORD not in str(raised.value) and "proofmint:***@127.0.0.1" in str(raised.value)
    store.close()


_ADDER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from agents.storage.pgstore import PostgresStore
    store = PostgresStore(sys.argv[1], batch_bytes=262_144)
    print("ready", flush=True)
    sys.stdin.readline()
    with Path(sys.argv[2]).open("rb") as stream:
        print(store.add(stream), flush=True)
    """
)


def test_concurrent_adds_of_one_file_from_threads_and_processes_store_it_once(tmp_path: Path, url: str):
    data = _data(3 * CHUNK_SIZE + 11, seed=3)
    source = tmp_path / "file"
    source.write_bytes(data)
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", _ADDER, url, str(source)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    for process in processes:
        assert process.stdout is not None and process.stdout.readline().strip() == "ready"
    shared = PostgresStore(url)  # two threads call one store: its lock takes them in turn
    own = [PostgresStore(url, batch_bytes=CHUNK_SIZE) for _ in range(2)]  # two with their own connections
    stores = [shared, shared, *own]
    start = threading.Barrier(len(stores) + 1)

    def add(store: PostgresStore) -> Cid:
        start.wait(timeout=30)
        return store.add_bytes(data)

    with ThreadPoolExecutor(len(stores)) as pool:
        added = [pool.submit(add, store) for store in stores]
        for process in processes:
            assert process.stdin is not None
            process.stdin.write("go\n")
            process.stdin.flush()
        start.wait(timeout=30)
        cids = {str(future.result(timeout=60)) for future in added}
    cids |= {process.communicate(timeout=60)[0].strip() for process in processes}
    assert all(process.returncode == 0 for process in processes)
    assert cids == {str(LocalStore(tmp_path / "local").add_bytes(data))}
    assert block_count(shared) == 5  # four leaves and a root, once each
    assert shared.read(Cid.parse(cids.pop())) == data
    for store in (shared, *own):
        store.close()


def test_stores_starting_together_make_the_table_once(url: str):
    stores = [PostgresStore(url) for _ in range(8)]
    start = threading.Barrier(len(stores))

    def create(store: PostgresStore) -> None:
        start.wait(timeout=30)
        store.create()

    with ThreadPoolExecutor(len(stores)) as pool:
        for future in [pool.submit(create, store) for store in stores]:
            future.result(timeout=60)  # no duplicate-type error from a racing CREATE TABLE
    stores[0].create()  # idempotent
    block = os.urandom(32)
    stores[1].put_block(Cid.of(block, 0x55), block)
    assert stores[7].get_block(Cid.of(block, 0x55)) == block
    for store in stores:
        store.close()


def test_a_store_makes_its_table_on_first_use_and_a_read_only_role_then_reads(url: str):
    store = PostgresStore(url)
    assert not store.has(Cid.of(b"", 0x55))  # no create() first: the table is made on connecting
    cid = store.add_bytes(b"shared")
    role = f"reader_{os.urandom(4).hex()}"
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f"CREATE ROLE {role} LOGIN")
        admin.execute(f"GRANT SELECT ON blocks TO {role}")
    reader = PostgresStore(url.replace(f"postgres:{PASSWORD}@", f"{role}@", 1))
    assert reader.read(cid) == b"shared"
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        reader.put_block(Cid.of(b"x", 0x55), b"x")
    store.close()
    reader.close()


def test_open_store_picks_the_backend_from_the_location(tmp_path: Path, url: str):
    for folder in (tmp_path / "store", str(tmp_path / "store")):
        local = open_store(folder)
        assert isinstance(local, LocalStore) and local.root == tmp_path / "store"
    for location in (url, url.replace("postgresql://", "postgres://", 1)):
        shared = open_store(location)
        assert isinstance(shared, PostgresStore) and shared.url == location
        shared.close()
    assert not (tmp_path / "store").exists()  # opening makes nothing


def test_open_store_refuses_another_scheme_without_showing_the_password():
    with pytest.raises(StoreLocationError, match="folder or a postgresql:// URL") as raised:
        open_store(f"s3://key:{PASSWORD}@bucket/blocks")
    assert isinstance(raised.value, PermanentError) and isinstance(raised.value, ValueError)
    assert PASSWORD not in str(raised.value) and "key:***@bucket" in str(raised.value)
