"""Files as UnixFS DAGs, block for block what Kubo's `ipfs add` builds with its defaults.

Fixed-size chunks of 256 KiB; a balanced DAG of at most 174 links per node (go-unixfs
`importer/balanced`); CIDv0 with dag-pb leaves by default, or CIDv1, which implies raw leaves.
A file of one chunk is its own root (its leaf); an empty file is one empty leaf.

The file is streamed: memory holds one chunk plus, per tree level, the links gathered so far
(at most 174 each), so a file of any size is added in constant memory. Every block is handed to
`emit(cid, block)` as it is made, children before their parents, root last.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO, Final

from agents.storage.cid import DAG_PB, RAW, Cid, CidError, read_varint, varint

CHUNK_SIZE: Final = 256 * 1024
MAX_LINKS: Final = 174
#: UnixFS `Data.DataType.File`.
_FILE: Final = 2

Emit = Callable[[Cid, bytes], None]


@dataclass(frozen=True)
class Node:
    """A finished DAG node as its parent links to it."""

    cid: Cid
    tsize: int  # bytes of the whole sub-DAG's blocks (dag-pb `Tsize`)
    filesize: int  # bytes of file data under it (UnixFS `blocksizes` entry)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field."""
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def _uint(number: int, value: int) -> bytes:
    """A varint protobuf field."""
    return varint(number << 3) + varint(value)


def unixfs_file(data: bytes | None, filesize: int, blocksizes: list[int]) -> bytes:
    """A UnixFS `Data` message of type File (fields in number order, as go's proto2 marshals)."""
    out = _uint(1, _FILE)
    if data is not None:
        out += _field(2, data)
    out += _uint(3, filesize)
    for size in blocksizes:
        out += _uint(4, size)
    return out


def dag_pb(links: list[Node], data: bytes) -> bytes:
    """A dag-pb `PBNode`: links first, then data (the canonical order), each link's name empty."""
    out = b"".join(_field(2, _field(1, bytes(link.cid)) + _field(2, b"") + _uint(3, link.tsize)) for link in links)
    return out + _field(1, data)


class _Chunks:
    """Fixed-size chunks of a stream, with the one-chunk look-ahead the layout needs."""

    def __init__(self, stream: BinaryIO, size: int) -> None:
        self._stream, self._size = stream, size
        self._next = self._read()
        self.bytes_read = 0

    def _read(self) -> bytes:
        parts: list[bytes] = []
        want = self._size
        while want:  # a pipe may return short reads: fill the chunk like io.ReadFull
            part = self._stream.read(want)
            if not part:
                break
            parts.append(part)
            want -= len(part)
        return b"".join(parts)

    def done(self) -> bool:
        return not self._next

    def take(self) -> bytes:
        chunk, self._next = self._next, self._read()
        self.bytes_read += len(chunk)
        return chunk


class Importer:
    """Builds one file's DAG (see the module docstring). `progress(bytes_done)` after each chunk."""

    def __init__(
        self,
        *,
        cid_version: int = 0,
        emit: Emit | None = None,
        chunk_size: int = CHUNK_SIZE,
        max_links: int = MAX_LINKS,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        if cid_version not in (0, 1):
            raise CidError(f"--cid-version must be 0 or 1, not {cid_version}")
        if chunk_size < 1 or max_links < 2:
            raise ValueError("chunk_size must be >= 1 and max_links >= 2")
        self.version, self.raw_leaves = cid_version, cid_version == 1
        self._emit, self._chunk_size, self._max_links = emit, chunk_size, max_links
        self._progress = progress

    def _block(self, block: bytes, codec: int) -> Cid:
        cid = Cid.of(block, codec, self.version)
        if self._emit is not None:
            self._emit(cid, block)
        return cid

    def _leaf(self, chunks: _Chunks) -> Node:
        data = chunks.take()
        if self._progress is not None:
            self._progress(chunks.bytes_read)
        if self.raw_leaves:
            return Node(self._block(data, RAW), len(data), len(data))
        block = dag_pb([], unixfs_file(data, len(data), []))
        return Node(self._block(block, DAG_PB), len(block), len(data))

    def _commit(self, links: list[Node]) -> Node:
        sizes = [link.filesize for link in links]
        block = dag_pb(links, unixfs_file(None, sum(sizes), sizes))
        return Node(self._block(block, DAG_PB), len(block) + sum(link.tsize for link in links), sum(sizes))

    def _fill(self, chunks: _Chunks, links: list[Node], depth: int) -> Node:
        while len(links) < self._max_links and not chunks.done():
            links.append(self._leaf(chunks) if depth == 1 else self._fill(chunks, [], depth - 1))
        return self._commit(links)

    def add(self, stream: BinaryIO) -> Node:
        """The root of the stream's DAG (read to its end)."""
        chunks = _Chunks(stream, self._chunk_size)
        if chunks.done():  # an empty file: one empty leaf (go: NewLeafNode(nil))
            if self.raw_leaves:
                return Node(self._block(b"", RAW), 0, 0)
            block = dag_pb([], unixfs_file(None, 0, []))
            return Node(self._block(block, DAG_PB), len(block), 0)
        root = self._leaf(chunks)
        depth = 1
        while not chunks.done():
            root = self._fill(chunks, [root], depth)
            depth += 1
        return root


@dataclass(frozen=True)
class PbNode:
    """A decoded dag-pb node: its links (cid, tsize) and its UnixFS data bytes and blocksizes."""

    links: list[tuple[Cid, int]]
    data: bytes
    filesize: int
    blocksizes: list[int]


def _fields(buffer: bytes) -> list[tuple[int, int, bytes | int]]:
    """(number, wire type, value) of each protobuf field; varint and length-delimited only."""
    out: list[tuple[int, int, bytes | int]] = []
    at = 0
    while at < len(buffer):
        key, at = read_varint(buffer, at)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, at = read_varint(buffer, at)
            out.append((number, wire, value))
        elif wire == 2:
            length, at = read_varint(buffer, at)
            if at + length > len(buffer):
                raise CidError("dag-pb field runs past the block")
            out.append((number, wire, buffer[at : at + length]))
            at += length
        else:
            raise CidError(f"unsupported protobuf wire type {wire}")
    return out


def decode_file_node(block: bytes) -> PbNode:
    """Parses a dag-pb block holding a UnixFS File node (what `Importer` writes)."""
    links: list[tuple[Cid, int]] = []
    unixfs = b""
    for number, wire, value in _fields(block):
        if number == 2 and wire == 2 and isinstance(value, bytes):
            link = {n: v for n, _, v in _fields(value)}
            cid_bytes, tsize = link.get(1), link.get(3, 0)
            if not isinstance(cid_bytes, bytes) or not isinstance(tsize, int):
                raise CidError("dag-pb link without a hash")
            links.append((Cid.from_bytes(cid_bytes), tsize))
        elif number == 1 and wire == 2 and isinstance(value, bytes):
            unixfs = value
        else:
            raise CidError(f"unexpected dag-pb field {number}")
    data, filesize, blocksizes, kind = b"", 0, [], None
    for number, _, value in _fields(unixfs):
        if number == 1 and isinstance(value, int):
            kind = value
        elif number == 2 and isinstance(value, bytes):
            data = value
        elif number == 3 and isinstance(value, int):
            filesize = value
        elif number == 4 and isinstance(value, int):
            blocksizes.append(value)
    if kind != _FILE:
        raise CidError(f"UnixFS node of type {kind} is not a file")
    if len(blocksizes) != len(links):
        raise CidError("UnixFS blocksizes do not match the node's links")
    return PbNode(links, data, filesize, blocksizes)
