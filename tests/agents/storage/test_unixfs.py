"""UnixFS import: the same CIDs as `ipfs add` (known Kubo outputs, and ipfs-unixfs-importer)."""

from __future__ import annotations

import io
import os
import random
from pathlib import Path

import pytest

from agents.storage.cid import DAG_PB, RAW, Cid
from agents.storage.unixfs import CHUNK_SIZE, MAX_LINKS, Importer, decode_file_node
from tests.agents.storage.reference import reference_cid

# What Kubo's `ipfs add -Q` prints for these files (published widely; the v1 ones are the raw
# blocks' CIDs, as `--cid-version 1` implies raw leaves).
KNOWN = [
    (b"", 0, "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH"),
    (b"hello world\n", 0, "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"),
    (b"hello world", 0, "Qmf412jQZiuVUtdgnB36FXFX7xg5V6KEbSJ4dpQuhkLyfD"),
    (b"", 1, "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"),
    (b"hello world", 1, "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e"),
]


@pytest.mark.parametrize(("data", "version", "expected"), KNOWN)
def test_known_ipfs_add_outputs(data: bytes, version: int, expected: str):
    assert str(Importer(cid_version=version).add(io.BytesIO(data)).cid) == expected


def _file(tmp_path: Path, size: int, seed: int = 0) -> Path:
    path = tmp_path / f"data-{size}-{seed}"
    path.write_bytes(random.Random(seed).randbytes(size))
    return path


@pytest.mark.parametrize("version", [0, 1])
@pytest.mark.parametrize(
    ("size", "chunk", "links"),
    [
        (0, 16, 3),
        (1, 16, 3),
        (16, 16, 3),  # exactly one chunk: the leaf is the root
        (17, 16, 3),  # two chunks: one level
        (48, 16, 3),  # a full level
        (49, 16, 3),  # one past it: the tree grows a level
        (5_000, 16, 3),  # depth 6
        (3_333, 7, 5),
    ],
)
def test_matches_the_js_importer_on_small_chunks(tmp_path: Path, version: int, size: int, chunk: int, links: int):
    path = _file(tmp_path, size)
    mine = Importer(cid_version=version, chunk_size=chunk, max_links=links).add(path.open("rb")).cid
    assert str(mine) == reference_cid(path, version, chunk, links)


@pytest.mark.parametrize("version", [0, 1])
@pytest.mark.parametrize("size", [CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 3 * CHUNK_SIZE + 12_345])
def test_matches_the_js_importer_with_kubo_defaults(tmp_path: Path, version: int, size: int):
    path = _file(tmp_path, size, seed=size)
    assert str(Importer(cid_version=version).add(path.open("rb")).cid) == reference_cid(path, version)


@pytest.mark.slow
def test_matches_the_js_importer_past_174_chunks(tmp_path: Path):
    """175 chunks: Kubo's DAG needs a second level (the 174-link limit)."""
    path = _file(tmp_path, MAX_LINKS * CHUNK_SIZE + 1, seed=7)
    assert str(Importer(cid_version=1).add(path.open("rb")).cid) == reference_cid(path, 1)


def test_short_reads_from_a_pipe_give_the_same_cid():
    data = os.urandom(3 * CHUNK_SIZE // 2)

    class Trickle(io.RawIOBase):
        def __init__(self) -> None:
            self.at = 0

        def readable(self) -> bool:
            return True

        def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def,override]
            n = min(len(buffer), 1000, len(data) - self.at)
            buffer[:n] = data[self.at : self.at + n]
            self.at += n
            return n

    assert Importer().add(Trickle()).cid == Importer().add(io.BytesIO(data)).cid  # type: ignore[arg-type]


def test_blocks_are_emitted_children_first_and_decode_back():
    blocks: list[tuple[Cid, bytes]] = []
    data = os.urandom(100)
    root = Importer(cid_version=1, chunk_size=10, max_links=4, emit=lambda c, b: blocks.append((c, b))).add(
        io.BytesIO(data)
    )
    assert blocks[-1][0] == root.cid and root.filesize == 100
    assert root.tsize == sum(len(b) for _, b in blocks)
    for cid, block in blocks:
        assert Cid.of(block, cid.codec, cid.version) == cid
        if cid.codec == DAG_PB:
            node = decode_file_node(block)
            assert sum(node.blocksizes) == node.filesize and len(node.links) <= 4
        else:
            assert cid.codec == RAW


def test_progress_reports_bytes_read():
    seen: list[int] = []
    Importer(chunk_size=10, progress=seen.append).add(io.BytesIO(bytes(35)))
    assert seen == [10, 20, 30, 35]


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="cid-version"):
        Importer(cid_version=2)
    with pytest.raises(ValueError, match="max_links"):
        Importer(max_links=1)
