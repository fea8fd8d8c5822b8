"""CAR v1 archives (Content Addressable aRchives), the format pinning services import.

    varint(len(header)) header  (dag-cbor {"roots": [CID], "version": 1})
    varint(len(cid) + len(block)) cid block   (for each block)

Blocks are written depth-first from the root, each once, as `ipfs dag export` writes them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import BinaryIO

from agents.storage.cid import DAG_PB, Cid, CidError, read_varint, varint
from agents.storage.unixfs import decode_file_node

#: A CAR header or block section larger than this is refused when reading.
MAX_SECTION = 8 << 20


def _cbor_head(major: int, value: int) -> bytes:
    if value < 24:
        return bytes([major << 5 | value])
    if value < 256:
        return bytes([major << 5 | 24, value])
    return bytes([major << 5 | 25]) + value.to_bytes(2, "big")


def header(root: Cid) -> bytes:
    """The dag-cbor header: a map with keys in dag-cbor order ("roots" sorts before "version");
    the CID as tag 42 over its bytes behind the identity multibase prefix 0x00."""
    cid = b"\0" + bytes(root)
    return (
        _cbor_head(5, 2)
        + _cbor_head(3, 5)
        + b"roots"
        + _cbor_head(4, 1)
        + bytes([0xD8, 42])
        + _cbor_head(2, len(cid))
        + cid
        + _cbor_head(3, 7)
        + b"version"
        + _cbor_head(0, 1)
    )


def dag_blocks(root: Cid, load: Callable[[Cid], bytes]) -> Iterator[tuple[Cid, bytes]]:
    """The blocks of a UnixFS file DAG, depth-first from its root, each block once."""
    seen: set[bytes] = set()
    stack = [root]
    while stack:
        cid = stack.pop()
        if cid.digest in seen:
            continue
        seen.add(cid.digest)
        block = load(cid)
        yield cid, block
        if cid.codec == DAG_PB:
            stack.extend(link for link, _ in reversed(decode_file_node(block).links))


def write_car(root: Cid, blocks: Iterator[tuple[Cid, bytes]], out: BinaryIO) -> int:
    """Writes a CAR v1 of `blocks` under `root`; returns the bytes written."""
    head = header(root)
    written = out.write(varint(len(head)) + head)
    for cid, block in blocks:
        raw = bytes(cid)
        written += out.write(varint(len(raw) + len(block)) + raw + block)
    return written


def read_car(data: bytes, *, check: bool = True) -> tuple[list[Cid], list[tuple[Cid, bytes]]]:
    """Parses a CAR v1 written by `write_car` (one root); checks every block against its CID
    (`check=False`: the blocks as they lie, for an auditor who reports a tampered one)."""
    length, at = read_varint(data)
    if length > MAX_SECTION or at + length > len(data):
        raise CidError("CAR header runs past the file")
    head = data[at : at + length]
    at += length
    prefix = _cbor_head(5, 2) + _cbor_head(3, 5) + b"roots" + _cbor_head(4, 1) + bytes([0xD8, 42, 0x58])
    if not head.startswith(prefix) or len(head) <= len(prefix) + 1 or head[len(prefix) + 1] != 0:
        raise CidError("CAR header is not a v1 header with one root")
    size = head[len(prefix)]
    root = Cid.from_bytes(head[len(prefix) + 2 : len(prefix) + 1 + size])
    if head != header(root):
        raise CidError("CAR header is not a v1 header with one root")
    roots = [root]
    blocks: list[tuple[Cid, bytes]] = []
    while at < len(data):
        length, at = read_varint(data, at)
        if length > MAX_SECTION or at + length > len(data):
            raise CidError("CAR block runs past the file")
        section = data[at : at + length]
        at += length
        cid_length = 34 if section[:2] == b"\x12\x20" else 36
        cid = Cid.from_bytes(section[:cid_length])
        block = section[cid_length:]
        if check and Cid.of(block, cid.codec, cid.version) != cid:
            raise CidError(f"CAR block {cid} does not hash to its CID")
        blocks.append((cid, block))
    return roots, blocks
