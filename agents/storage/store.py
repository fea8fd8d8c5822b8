"""Content-addressed block stores, and the local one: blocks on disk, keyed by their sha2-256 digest.

    <root>/blocks/<first 2 hex>/<64 hex>     one file per block, written atomically

`BlockStore` holds what every backend shares: a file is added as Kubo's `ipfs add` would add it
(same blocks, same CID), read back by walking its DAG with every block checked against its CID
(a corrupted block is an error, never data), and exported as a CAR. A backend supplies the block
primitives: `put_block`, `raw_block` (the bytes as they lie, unchecked), `has` and `create`;
`get_block` checks `raw_block`'s bytes against the CID once, here, for every backend.

Backends: `LocalStore` (a folder: one host) and `agents.storage.pgstore.PostgresStore` (a
PostgreSQL table: every host that reaches the server sees the same blocks). The async methods run
the blocking work in a thread, off the event loop.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import io
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import BinaryIO

from agents.core.errors import PermanentError
from agents.storage.car import dag_blocks, write_car
from agents.storage.cid import DAG_PB, RAW, Cid, CidError
from agents.storage.unixfs import Emit, Importer, decode_file_node


class BlockNotFoundError(PermanentError, KeyError):
    """The store has no block for a CID."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "block not found"


class CorruptBlockError(PermanentError, ValueError):
    """A stored block's bytes no longer hash to its CID."""


def import_bytes(data: bytes, put: Emit, cid_version: int = 1) -> Cid:
    """Chunks `data` into its UnixFS blocks, handed to `put`, and returns its root CID (the CID
    `BlockStore.add_bytes` gives the same bytes): for a caller storing many files' blocks at once
    (`BlockStore.put_blocks`)."""
    return Importer(cid_version=cid_version, emit=put).add(io.BytesIO(data)).cid


class BlockStore(abc.ABC):
    """The DAG logic over a backend's block primitives (see the module docstring).

    Blocks are keyed by their digest alone, as IPFS keys them: the same bytes under the raw and
    the dag-pb codec are one block.
    """

    @property
    @abc.abstractmethod
    def location(self) -> str:
        """Where the blocks live, for messages and logs (a folder, or a URL without its password)."""

    @abc.abstractmethod
    def create(self) -> None:
        """Makes what the store needs to hold blocks if it is missing (idempotent)."""

    @abc.abstractmethod
    def put_block(self, cid: Cid, block: bytes) -> None:
        """Stores one block (idempotent: an existing block is left alone)."""

    @abc.abstractmethod
    def raw_block(self, cid: Cid) -> bytes | None:
        """A block's bytes as they lie, unchecked (None when absent): for an auditor, who reports
        a damaged or tampered block rather than stopping at it. Everything else uses `get_block`."""

    @abc.abstractmethod
    def has(self, cid: Cid) -> bool:
        """Whether the store holds a block under the CID's digest (its bytes unchecked)."""

    def close(self) -> None:  # noqa: B027 - a backend without resources has nothing to release
        """Releases what the store holds open (a connection); a later call opens it again."""

    def block_writer(self) -> contextlib.AbstractContextManager[Emit]:
        """A context whose `put(cid, block)` stores blocks. Here each block is stored at once;
        a transactional backend stores all of them when the context ends, or none on an error."""
        return contextlib.nullcontext(self.put_block)

    def put_blocks(self, blocks: Iterable[tuple[Cid, bytes]]) -> None:
        """Stores many blocks through one `block_writer` (one transaction where there are any)."""
        with self.block_writer() as put:
            for cid, block in blocks:
                put(cid, block)

    def raw_blocks(self, cids: Sequence[Cid]) -> dict[bytes, bytes]:
        """The blocks of `cids` the store holds, as they lie (unchecked), by their CID's digest:
        what a caller reads ahead for a batch (one query on a server store) and hands to
        `read`, which checks each. One per CID here; a server store overrides it."""
        found: dict[bytes, bytes] = {}
        for cid in cids:
            block = self.raw_block(cid)
            if block is not None:
                found[cid.digest] = block
        return found

    def get_block(self, cid: Cid, fetched: Mapping[bytes, bytes] | None = None) -> bytes:
        """A block's bytes (from `fetched`, blocks read ahead by `raw_blocks`, when it is there),
        checked against its CID."""
        block = fetched.get(cid.digest) if fetched else None
        if block is None:
            block = self.raw_block(cid)
        if block is None:
            raise BlockNotFoundError(f"no block {cid} in {self.location}")
        if Cid.of(block, cid.codec, cid.version).digest != cid.digest:
            raise CorruptBlockError(
                f"block {cid} in {self.location} does not hash to its CID; delete it and add the file again"
            )
        return block

    def add(self, stream: BinaryIO, cid_version: int = 1) -> Cid:
        """Adds a file's blocks through one `block_writer`; returns its root CID (what `ipfs add`
        prints)."""
        with self.block_writer() as put:
            return Importer(cid_version=cid_version, emit=put).add(stream).cid

    def add_bytes(self, data: bytes, cid_version: int = 1) -> Cid:
        with self.block_writer() as put:
            return import_bytes(data, put, cid_version)

    def cat(self, cid: Cid, out: BinaryIO, fetched: Mapping[bytes, bytes] | None = None) -> int:
        """Writes the file a root CID names; returns its size. Every block is verified (those in
        `fetched`, read ahead by `raw_blocks`, too)."""
        written = 0
        stack = [cid]
        while stack:
            current = stack.pop()
            block = self.get_block(current, fetched)
            if current.codec == RAW:
                written += out.write(block)
            elif current.codec == DAG_PB:
                node = decode_file_node(block)
                written += out.write(node.data)
                stack.extend(link for link, _ in reversed(node.links))
            else:  # pragma: no cover - Cid refuses other codecs
                raise CidError(f"codec 0x{current.codec:x}")
        return written

    def read(self, cid: Cid, fetched: Mapping[bytes, bytes] | None = None) -> bytes:
        """The file a root CID names, every block verified (`fetched`: see `cat`)."""
        buffer = io.BytesIO()
        self.cat(cid, buffer, fetched)
        return buffer.getvalue()

    def export_car(self, cid: Cid, out: BinaryIO) -> int:
        """Writes a CAR v1 of the file's whole DAG; returns the bytes written."""
        return write_car(cid, dag_blocks(cid, self.get_block), out)

    async def put(self, data: bytes, cid_version: int = 1) -> Cid:
        return await asyncio.to_thread(self.add_bytes, data, cid_version)

    async def get(self, cid: Cid) -> bytes:
        return await asyncio.to_thread(self.read, cid)


class LocalStore(BlockStore):
    """A folder of blocks (see the module docstring)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._blocks = root / "blocks"

    def __repr__(self) -> str:
        return f"LocalStore({self.root})"

    @property
    def location(self) -> str:
        return str(self.root)

    def create(self) -> None:
        """Makes the store's folders if they are missing (idempotent); raises OSError if it cannot."""
        self._blocks.mkdir(parents=True, exist_ok=True)

    def _path(self, cid: Cid) -> Path:
        name = cid.digest.hex()
        return self._blocks / name[:2] / name

    def put_block(self, cid: Cid, block: bytes) -> None:
        """Stores one block (idempotent: an existing block is left alone)."""
        path = self._path(cid)
        if path.exists():
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(f".{os.getpid()}.tmp")
        with temporary.open("wb") as handle:
            handle.write(block)
            handle.flush()
            os.fsync(handle.fileno())
        temporary.replace(path)

    def raw_block(self, cid: Cid) -> bytes | None:
        """A block's bytes as they lie, unchecked (None when absent): for an auditor, who reports
        a damaged or tampered block rather than stopping at it. Everything else uses `get_block`."""
        try:
            return self._path(cid).read_bytes()
        except FileNotFoundError:
            return None

    def has(self, cid: Cid) -> bool:
        return self._path(cid).exists()
