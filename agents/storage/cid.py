"""Content identifiers (CIDs) as IPFS computes them: CIDv0 (base58btc) and CIDv1 (base32).

Only what proofmint stores is accepted: sha2-256 multihashes over the `raw` (0x55) and
`dag-pb` (0x70) codecs. Parsing is strict; a malformed or foreign CID raises `CidError` with
the reason, never a half-decoded value.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Final

from agents.core.errors import PermanentError

RAW: Final = 0x55
DAG_PB: Final = 0x70
SHA2_256: Final = 0x12
CODECS: Final = {RAW: "raw", DAG_PB: "dag-pb"}
#: A CID longer than this (characters) is refused before any decoding work.
MAX_CID_CHARS: Final = 128

_B58_ALPHABET: Final = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_INDEX: Final = {c: i for i, c in enumerate(_B58_ALPHABET)}


class CidError(PermanentError, ValueError):
    """A string or byte sequence that is not a CID proofmint accepts."""


def varint(value: int) -> bytes:
    """Unsigned LEB128, as multiformats and protobuf encode integers."""
    if value < 0:
        raise ValueError("varint of a negative number")
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def read_varint(data: bytes, offset: int = 0) -> tuple[int, int]:
    """(value, next offset) of the unsigned varint at `offset`; minimal encodings only, <= 9 bytes."""
    value = shift = 0
    for index in range(offset, min(len(data), offset + 9)):
        byte = data[index]
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            if byte == 0 and index > offset:
                raise CidError("varint is not minimally encoded")
            return value, index + 1
        shift += 7
    raise CidError("truncated or over-long varint")


def b58encode(data: bytes) -> str:
    number = int.from_bytes(data, "big")
    out = ""
    while number:
        number, rem = divmod(number, 58)
        out = _B58_ALPHABET[rem] + out
    return "1" * (len(data) - len(data.lstrip(b"\0"))) + out


def b58decode(text: str) -> bytes:
    number = 0
    for char in text:
        if char not in _B58_INDEX:
            raise CidError(f"{char!r} is not a base58btc character")
        number = number * 58 + _B58_INDEX[char]
    body = number.to_bytes((number.bit_length() + 7) // 8, "big")
    return b"\0" * (len(text) - len(text.lstrip("1"))) + body


@dataclass(frozen=True)
class Cid:
    """A CID: version, codec, and the sha2-256 digest of the block it names."""

    version: int
    codec: int
    digest: bytes

    def __post_init__(self) -> None:
        if self.version not in (0, 1):
            raise CidError(f"CID version {self.version} is not supported (0 or 1)")
        if self.codec not in CODECS:
            raise CidError(f"codec 0x{self.codec:x} is not supported (raw 0x55 or dag-pb 0x70)")
        if self.version == 0 and self.codec != DAG_PB:
            raise CidError("a CIDv0 always names a dag-pb block")
        if len(self.digest) != 32:
            raise CidError(f"a sha2-256 digest is 32 bytes, not {len(self.digest)}")

    @classmethod
    def of(cls, block: bytes, codec: int, version: int = 1) -> Cid:
        """The CID of a block's bytes."""
        return cls(version, codec, hashlib.sha256(block).digest())

    @property
    def multihash(self) -> bytes:
        return bytes([SHA2_256, 32]) + self.digest

    def __bytes__(self) -> bytes:
        """The binary CID (as stored in dag-pb links and CAR files)."""
        if self.version == 0:
            return self.multihash
        return varint(1) + varint(self.codec) + self.multihash

    def __str__(self) -> str:
        if self.version == 0:
            return b58encode(self.multihash)
        return "b" + base64.b32encode(bytes(self)).decode().lower().rstrip("=")

    @classmethod
    def from_bytes(cls, data: bytes) -> Cid:
        """Parses a binary CID; every byte must belong to it."""
        if len(data) == 34 and data[0] == SHA2_256 and data[1] == 32:
            return cls(0, DAG_PB, data[2:])
        version, at = read_varint(data)
        if version != 1:
            raise CidError(f"binary CID version {version} is not supported")
        codec, at = read_varint(data, at)
        hash_code, at = read_varint(data, at)
        length, at = read_varint(data, at)
        if hash_code != SHA2_256:
            raise CidError(f"multihash 0x{hash_code:x} is not supported (sha2-256 only)")
        if length != 32 or len(data) - at != 32:
            raise CidError("multihash length does not match its digest")
        return cls(1, codec, data[at:])

    @classmethod
    def parse(cls, text: str) -> Cid:
        """Parses a CID string: CIDv0 `Qm…` (base58btc) or CIDv1 `b…` (base32, lower case)."""
        if not isinstance(text, str) or not text:
            raise CidError("empty CID")
        if len(text) > MAX_CID_CHARS:
            raise CidError(f"CID longer than {MAX_CID_CHARS} characters")
        if text.startswith("Qm") and len(text) != 46:
            raise CidError(f"a CIDv0 is 46 base58 characters, not {len(text)}")
        if len(text) == 46 and text.startswith("Qm"):
            multihash = b58decode(text)
            if len(multihash) != 34 or multihash[:2] != bytes([SHA2_256, 32]):
                raise CidError("CIDv0 is not a sha2-256 multihash")
            return cls(0, DAG_PB, multihash[2:])
        if text[0] != "b":
            raise CidError(f"multibase prefix {text[0]!r} is not supported (CIDv1 in base32 'b', or CIDv0 'Qm')")
        body = text[1:]
        if not body or any(c not in "abcdefghijklmnopqrstuvwxyz234567" for c in body):
            raise CidError("CIDv1 body is not lower-case base32")
        try:
            raw = base64.b32decode(body.upper() + "=" * (-len(body) % 8))
        except ValueError as err:
            raise CidError(f"CIDv1 body does not decode: {err}") from None
        cid = cls.from_bytes(raw)
        if str(cid) != text:
            raise CidError("CID is not in canonical form")
        return cid

    def to_v1(self) -> Cid:
        return Cid(1, self.codec, self.digest)
