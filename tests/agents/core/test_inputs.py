"""agents.core.inputs and agents.core.digests: values typed by people, and weight digests."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from agents.core.digests import weights_digest
from agents.core.inputs import InputError, parse_amount, parse_bytes32


@pytest.mark.parametrize(
    ("text", "decimals", "expected"),
    [
        ("1000", 18, 1000),
        ("1_000", 18, 1000),
        ("0.01 ether", 18, 10**16),
        ("5 gwei", 18, 5 * 10**9),
        ("7 wei", 18, 7),
        ("1.5 token", 6, 1_500_000),
        ("2 ETH", 18, 2 * 10**18),
    ],
)
def test_amounts(text: str, decimals: int, expected: int):
    assert parse_amount(text, decimals=decimals) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "expected an amount"),
        ("-1", "expected an amount"),
        ("1.5", "must be whole"),
        ("1 doge", "unknown unit"),
        ("0.5 wei", "not a whole number of base units"),
        ("1.0000001 token", "not a whole number"),
        (f"{2**256}", "does not fit"),
    ],
)
def test_bad_amounts(text: str, message: str):
    with pytest.raises(InputError, match=message):
        parse_amount(text, decimals=6)


def test_bytes32():
    assert parse_bytes32("0x" + "ab" * 32, "x") == b"\xab" * 32
    assert parse_bytes32("AB" * 32, "x") == b"\xab" * 32
    for bad in ("0x12", "zz" * 32, "0x" + "ab" * 33):
        with pytest.raises(InputError, match="--asset: expected 32 bytes"):
            parse_bytes32(bad, "--asset")


def test_weights_digest_of_file_and_folder(tmp_path: Path):
    file = tmp_path / "w.bin"
    file.write_bytes(b"weights")
    assert weights_digest(file) == hashlib.sha256(b"weights").digest()
    folder = tmp_path / "ckpt"
    (folder / "unet").mkdir(parents=True)
    (folder / "unet" / "model.safetensors").write_bytes(b"u")
    (folder / "model_index.json").write_bytes(b"{}")
    first = weights_digest(folder)
    lines = sorted(
        [
            f"model_index.json\0{hashlib.sha256(b'{}').hexdigest()}\n",
            f"unet/model.safetensors\0{hashlib.sha256(b'u').hexdigest()}\n",
        ]
    )
    assert first == hashlib.sha256("".join(lines).encode()).digest()
    (folder / "unet" / "model.safetensors").write_bytes(b"v")
    assert weights_digest(folder) != first
    (folder / "unet" / "model.safetensors").write_bytes(b"u")
    (folder / "unet" / "model.safetensors").rename(folder / "unet" / "other.safetensors")
    assert weights_digest(folder) != first, "a renamed file changes the digest"


def test_weights_digest_refuses_links_empty_and_missing(tmp_path: Path):
    with pytest.raises(FileNotFoundError):
        weights_digest(tmp_path / "absent")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="holds no files"):
        weights_digest(empty)
    (empty / "link").symlink_to(tmp_path)
    with pytest.raises(ValueError, match="symbolic links"):
        weights_digest(empty)
