"""Operator mistakes end every `ape run` script with one line on stderr that says what is wrong
and what to do, a non-zero exit status, and never a Python (or ape) stack dump: malformed
addresses, a currency that is not one, too little money, a CSV or voucher file that is not
text, a network without its RPC variable, a node that does not answer."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.scripts.helpers import Anvil, ape, ape_run, key_of, one_line_error

pytestmark = [pytest.mark.slow, pytest.mark.anvil]  # a node of their own: with the anvil pass


def test_mistakes_end_in_one_line_saying_what_to_do(deployed: Anvil, tmp_path: Path):
    service = key_of(8).address
    bad_address = tmp_path / "bad-address.csv"
    bad_address.write_text(f"address,weight\n{key_of(2).address},600000\n0x12345,400000\n")
    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes(f"# données\n{key_of(2).address},1000000\n".encode("latin-1"))
    binary = tmp_path / "vouchers.bin"
    binary.write_bytes(bytes(range(256)))
    model = ["--weights-digest", "55" * 32, "--metadata-uri", "ipfs://m", "--data-bps", "500", "--data-shares"]

    cases = [
        (
            ["license", "attach", "--asset", "ab" * 32, "--currency", "0xdead"],
            "--currency: expected ETH (or its zero address",
        ),
        (
            ["license", "buy", "--terms", "1", "--to", "0xnotanaddress"],
            "--to: expected a non-zero address (0x and 40 hex digits), got '0xnotanaddress'",
        ),
        (
            ["license", "show", "--payer", "0xbad", "--service", service],
            "--payer: expected an address (0x and 40 hex digits), got '0xbad'",
        ),
        (
            ["license", "deposit", "--amount", "1000000 ether", "--service", service, "--account", "test:5"],
            f"insufficient funds: the deposit needs 1000000 ETH (10{'0' * 23} wei), but {key_of(5).address} holds",
        ),
        ([*model, str(bad_address)], f"{bad_address}:3: '0x12345' is not an originator's address"),
        ([*model, str(latin1)], f"{latin1}: not UTF-8 text (byte 0xe9 at offset 6)"),
        (["settle", "--vouchers", str(binary)], f"{binary}: not a voucher file: not UTF-8 text (byte 0x80"),
    ]
    for args, expected in cases:
        if args[0] == "--weights-digest":
            args = ["register_model", *args]
        line = one_line_error(ape_run(deployed, *args, check=False))
        assert expected in line, (args, line)

    env = {k: v for k, v in os.environ.items() if k != "PROOFMINT_BASE_SEPOLIA_RPC"}
    line = one_line_error(ape("deploy", "--network", "base:sepolia", env=env))
    assert "base:sepolia has no node URL" in line and "export PROOFMINT_BASE_SEPOLIA_RPC=" in line
    line = one_line_error(ape("deploy", "--network", "http://127.0.0.1:1"))
    assert "no node answers at http://127.0.0.1:1: start it" in line
