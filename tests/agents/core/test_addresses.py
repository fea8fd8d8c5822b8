"""agents.core.addresses: the remembered checksum is EIP-55's, for strings and bytes alike, and
bad input is refused as eth-utils refuses it (and not remembered)."""

from __future__ import annotations

import pytest
from eth_utils.address import to_checksum_address

from agents.core.addresses import address_of, checksummed

ADDRESS = "0x9fe46736679d2d9a65f0992f2272de9f3c7fa6e0"


def test_checksummed_is_eip55_and_remembered():
    checksummed.cache_clear()
    assert checksummed(ADDRESS) == to_checksum_address(ADDRESS) == "0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0"
    assert checksummed(ADDRESS.upper().replace("0X", "0x")) == checksummed(ADDRESS)
    checksummed(ADDRESS)
    assert checksummed.cache_info().hits >= 1


def test_address_of_takes_twenty_bytes_or_hex():
    assert address_of(bytes.fromhex(ADDRESS[2:])) == address_of(ADDRESS) == to_checksum_address(ADDRESS)


@pytest.mark.parametrize("bad", ["0x1234", "not an address", ADDRESS + "00"])
def test_bad_input_is_refused(bad: str):
    with pytest.raises(ValueError):
        checksummed(bad)


def test_bytes_other_than_twenty_are_refused():
    with pytest.raises(ValueError):
        address_of(bytes(19))
