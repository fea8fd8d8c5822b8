"""CID encoding and strict parsing (agents/storage/cid.py)."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agents.storage.cid import DAG_PB, RAW, Cid, CidError, b58decode, b58encode, read_varint, varint

HELLO_V0 = "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"
EMPTY_RAW_V1 = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"


def test_raw_cid_of_empty_bytes_is_the_well_known_one():
    cid = Cid.of(b"", RAW)
    assert str(cid) == EMPTY_RAW_V1
    assert cid.digest == hashlib.sha256(b"").digest()


DEEP_V1 = "bafybeigzowkw2jav2vrygytufunuumm6x6f7ezhwqgjqz46ihnlc62fctq"


@pytest.mark.parametrize("text", [HELLO_V0, EMPTY_RAW_V1, DEEP_V1])
def test_parse_then_print_round_trips(text: str):
    assert str(Cid.parse(text)) == text
    assert Cid.from_bytes(bytes(Cid.parse(text))) == Cid.parse(text)


def test_v0_converts_to_the_same_block_as_v1():
    v0 = Cid.parse(HELLO_V0)
    assert v0.to_v1().codec == DAG_PB and v0.to_v1().digest == v0.digest
    assert str(v0.to_v1()).startswith("bafybei")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5", "46 base58"),
        ("QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff50", "base58btc character"),  # '0' is not base58
        ("zb2rhbQmUW7RdAT2Aza4cKxYjnUbZHnnaY9VEU3f98h1QdqHX", "multibase prefix"),
        ("BAFKREIHDWDCEFGH4DQKJV67UZCMW7OJEE6XEDZDETOJUZJEVTENXQUVYKU", "multibase prefix"),
        ("bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyk", "decode"),
        ("bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyk1", "base32"),
        ("b" + "a" * 200, "longer than"),
        # CIDv1 with the dag-cbor codec (0x71): foreign to proofmint
        ("bafyreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku", "codec"),
        # identity multihash (0x00) instead of sha2-256
        ("bafkqaaa", "sha2-256"),
    ],
)
def test_parse_refuses_malformed_and_foreign_cids(text: str, reason: str):
    with pytest.raises(CidError, match=reason):
        Cid.parse(text)


def test_binary_cid_with_trailing_bytes_is_refused():
    with pytest.raises(CidError, match="length"):
        Cid.from_bytes(bytes(Cid.of(b"x", RAW)) + b"\0")


def test_constructor_refuses_impossible_cids():
    with pytest.raises(CidError, match="dag-pb"):
        Cid(0, RAW, bytes(32))
    with pytest.raises(CidError, match="32 bytes"):
        Cid(1, RAW, bytes(31))
    with pytest.raises(CidError, match="version"):
        Cid(2, RAW, bytes(32))


@given(st.integers(min_value=0, max_value=2**63 - 1))
def test_varint_round_trips(value: int):
    encoded = varint(value)
    assert read_varint(encoded) == (value, len(encoded))


def test_non_minimal_and_truncated_varints_are_refused():
    with pytest.raises(CidError, match="minimal"):
        read_varint(b"\x81\x00")
    with pytest.raises(CidError, match="truncated"):
        read_varint(b"\x80")


@given(st.binary(max_size=40))
def test_base58_round_trips(data: bytes):
    assert b58decode(b58encode(data)) == data
