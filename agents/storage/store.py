"""The local content-addressed store: blocks on disk, keyed by their sha2-256 digest.

    <root>/blocks/<first 2 hex>/<64 hex>     one file per block, written atomically

A file is added as Kubo's `ipfs add` would add it (same blocks, same CID), read back by walking
its DAG with every block checked against its CID (a corrupted block is an error, never data),
and exported as a CAR. The async methods run the disk work in a thread, off the event loop.
"""

from __future__ import annotations

import asyncio
import io
import os
from pathlib import Path
from typing import BinaryIO

from agents.core.errors import PermanentError
from agents.storage.car import dag_blocks, write_car
from agents.storage.cid import DAG_PB, RAW, Cid, CidError
from agents.storage.unixfs import Importer, decode_file_node


class BlockNotFoundError(PermanentError, KeyError):
    """The store has no block for a CID."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "block not found"


class CorruptBlockError(PermanentError, ValueError):
    """A stored block's bytes no longer hash to its CID."""


class LocalStore:
    """A folder of blocks (see the module docstring)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._blocks = root / "blocks"

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

    def get_block(self, cid: Cid) -> bytes:
        """A block's bytes, checked against its CID."""
        try:
            block = self._path(cid).read_bytes()
        except FileNotFoundError:
            raise BlockNotFoundError(f"no block {cid} in {self.root}") from None
        if Cid.of(block, cid.codec, cid.version).digest != cid.digest:
            raise CorruptBlockError(
                f"block {cid} in {self.root} does not hash to its CID; delete it and add the file again"
            )
        return block

    def raw_block(self, cid: Cid) -> bytes | None:
        """A block's bytes as they lie, unchecked (None when absent): for an auditor, who reports
        a damaged or tampered block rather than stopping at it. Everything else uses `get_block`."""
        try:
            return self._path(cid).read_bytes()
        except FileNotFoundError:
            return None

    def has(self, cid: Cid) -> bool:
        return self._path(cid).exists()

    def add(self, stream: BinaryIO, cid_version: int = 1) -> Cid:
        """Adds a file's blocks; returns its root CID (what `ipfs add` prints)."""
        return Importer(cid_version=cid_version, emit=self.put_block).add(stream).cid

    def add_bytes(self, data: bytes, cid_version: int = 1) -> Cid:
        return self.add(io.BytesIO(data), cid_version)

    def cat(self, cid: Cid, out: BinaryIO) -> int:
        """Writes the file a root CID names; returns its size. Every block is verified."""
        written = 0
        stack = [cid]
        while stack:
            current = stack.pop()
            block = self.get_block(current)
            if current.codec == RAW:
                written += out.write(block)
            elif current.codec == DAG_PB:
                node = decode_file_node(block)
                written += out.write(node.data)
                stack.extend(link for link, _ in reversed(node.links))
            else:  # pragma: no cover - Cid refuses other codecs
                raise CidError(f"codec 0x{current.codec:x}")
        return written

    def read(self, cid: Cid) -> bytes:
        buffer = io.BytesIO()
        self.cat(cid, buffer)
        return buffer.getvalue()

    def export_car(self, cid: Cid, out: BinaryIO) -> int:
        """Writes a CAR v1 of the file's whole DAG; returns the bytes written."""
        return write_car(cid, dag_blocks(cid, self.get_block), out)

    async def put(self, data: bytes, cid_version: int = 1) -> Cid:
        return await asyncio.to_thread(self.add_bytes, data, cid_version)

    async def get(self, cid: Cid) -> bytes:
        return await asyncio.to_thread(self.read, cid)
