"""EIP-55 checksummed addresses, remembered: checksumming hashes the address (keccak), and the
paywall and settlement checksum the same few payers and services on every voucher."""

from __future__ import annotations

import functools

from eth_utils.address import to_checksum_address


@functools.lru_cache(maxsize=65_536)
def checksummed(address: str) -> str:
    """`eth_utils.to_checksum_address` of a hex address string (ValueError as it raises)."""
    return str(to_checksum_address(address))


def address_of(value: str | bytes) -> str:
    """The checksummed address of a hex string or of 20 bytes."""
    return checksummed("0x" + value.hex() if isinstance(value, bytes | bytearray) else value)
