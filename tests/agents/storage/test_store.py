"""The block stores and CAR export (agents/storage/store.py, pgstore.py, car.py): the behaviour
every backend shares runs on both the local folder and PostgreSQL (the `store` fixture); what only the
PostgreSQL store does is in test_pgstore.py."""

from __future__ import annotations

import asyncio
import io
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from agents.storage.car import read_car
from agents.storage.cid import Cid, CidError
from agents.storage.pgstore import PostgresStore
from agents.storage.store import BlockNotFoundError, BlockStore, CorruptBlockError, LocalStore
from agents.storage.unixfs import CHUNK_SIZE, decode_file_node
from tests.agents.storage.backends import block_count, overwrite_block
from tests.agents.storage.reference import reference_car, reference_cid

SIZES = [0, 5, CHUNK_SIZE, 2 * CHUNK_SIZE + 3]


@pytest.fixture(params=["local", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BlockStore]:
    """An empty store of each backend (a fresh folder; a fresh database on the tests' server)."""
    if request.param == "local":
        yield LocalStore(tmp_path / "store")
        return
    store = PostgresStore(request.getfixturevalue("postgres_url"))
    yield store
    store.close()


@pytest.mark.parametrize("version", [0, 1])
@pytest.mark.parametrize("size", SIZES)
def test_add_then_read_returns_the_bytes_and_the_ipfs_cid(tmp_path: Path, store: BlockStore, version: int, size: int):
    data = os.urandom(size)
    source = tmp_path / "file"
    source.write_bytes(data)
    with source.open("rb") as stream:
        cid = store.add(stream, version)
    assert str(cid) == reference_cid(source, version)
    assert store.read(cid) == data and store.has(cid)


def test_adding_twice_is_idempotent(store: BlockStore):
    data = os.urandom(CHUNK_SIZE + 1)
    first = store.add_bytes(data)
    count = block_count(store)
    assert count == 3  # two leaves, one root
    assert store.add_bytes(data) == first
    assert block_count(store) == count


def test_repeated_chunks_are_stored_once(store: BlockStore):
    cid = store.add_bytes(bytes(3 * CHUNK_SIZE))  # three identical leaves
    assert block_count(store) == 2  # one leaf, one root
    assert store.read(cid) == bytes(3 * CHUNK_SIZE)


def test_missing_block_is_a_clear_error(store: BlockStore):
    with pytest.raises(BlockNotFoundError, match="no block"):
        store.read(Cid.of(b"never added", 0x55))


def test_corrupted_block_is_detected_on_read(store: BlockStore):
    cid = store.add_bytes(os.urandom(2 * CHUNK_SIZE))
    leaf, _ = decode_file_node(store.get_block(cid)).links[0]
    overwrite_block(store, leaf, os.urandom(CHUNK_SIZE))
    with pytest.raises(CorruptBlockError, match="does not hash"):
        store.read(cid)


def test_blocks_read_ahead_for_a_batch_are_still_verified_and_a_missing_one_fails_its_file_alone(
    store: BlockStore,
):
    """A publisher reads a batch's images ahead in one query (`raw_blocks`) and then reads each
    file with them (`read(cid, fetched)`): the bytes are the same as a plain read, a file of many
    blocks fetches the rest as it goes, a block that is not there is left out (its file alone
    fails, as a plain read does), and a tampered block read ahead still fails its file."""
    small, large = os.urandom(100), os.urandom(2 * CHUNK_SIZE + 3)
    cids = [store.add_bytes(small), store.add_bytes(large)]
    absent = Cid.of(b"never added", 0x55)
    fetched = store.raw_blocks([*cids, absent, cids[0]])
    assert set(fetched) == {cids[0].digest, cids[1].digest}  # the roots; the absent one left out
    assert store.raw_blocks([]) == {}
    assert store.read(cids[0], fetched) == small and store.read(cids[1], fetched) == large
    with pytest.raises(BlockNotFoundError, match="no block"):
        store.read(absent, fetched)
    tampered = {**fetched, cids[0].digest: b"not the image"}
    with pytest.raises(CorruptBlockError, match="does not hash"):
        store.read(cids[0], tampered)
    overwrite_block(store, cids[0], b"tampered in the store")
    with pytest.raises(CorruptBlockError, match="does not hash"):
        store.read(cids[0], store.raw_blocks([cids[0]]))


def test_no_temporary_files_are_left(tmp_path: Path):
    LocalStore(tmp_path).add_bytes(os.urandom(3 * CHUNK_SIZE))
    assert not [p for p in tmp_path.rglob("*.tmp")]


@pytest.mark.parametrize("version", [0, 1])
def test_car_export_is_read_by_the_js_car_reader(tmp_path: Path, store: BlockStore, version: int):
    data = os.urandom(3 * CHUNK_SIZE + 7)
    cid = store.add_bytes(data, version)
    car = tmp_path / "file.car"
    with car.open("wb") as out:
        store.export_car(cid, out)
    report = reference_car(car)  # also checks every block's hash
    assert report["roots"] == [str(cid)]
    assert report["blocks"][0] == str(cid) and len(report["blocks"]) == 5  # root, then 4 leaves in order
    roots, blocks = read_car(car.read_bytes())
    assert roots == [cid] and [str(c) for c, _ in blocks] == report["blocks"]
    fresh = LocalStore(tmp_path / "fresh")
    for block_cid, block in blocks:
        fresh.put_block(block_cid, block)
    assert fresh.read(cid) == data


def test_car_reader_refuses_tampering(tmp_path: Path):
    store = LocalStore(tmp_path)
    cid = store.add_bytes(b"x" * 100)
    buffer = io.BytesIO()
    store.export_car(cid, buffer)
    car = bytearray(buffer.getvalue())
    car[-1] ^= 1
    with pytest.raises(CidError, match="does not hash"):
        read_car(bytes(car))
    with pytest.raises(CidError, match="runs past"):
        read_car(buffer.getvalue()[:-1])
    with pytest.raises(CidError, match="header"):
        read_car(b"\x05hello")


def test_async_put_and_get_run_off_the_loop(store: BlockStore):

    async def main() -> bytes:
        cid = await store.put(b"payload")
        return await store.get(cid)

    assert asyncio.run(main()) == b"payload"


def test_create_makes_the_folders_and_is_idempotent(tmp_path: Path):
    store = LocalStore(tmp_path / "a" / "store")
    store.create()
    store.create()
    assert (tmp_path / "a" / "store" / "blocks").is_dir()


def test_create_raises_os_error_when_the_folder_cannot_be_made(tmp_path: Path):
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(OSError):
        LocalStore(tmp_path / "file" / "store").create()
