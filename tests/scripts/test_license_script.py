"""`ape run license` (scripts/license.py) against a real anvil: what `show` prints, and how a
read that reverts is reported. The terms and escrow are set up with web3.py; `ape run` is only
the command under test."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.scripts.helpers import (
    ETH,
    GWEI,
    Anvil,
    ape_run,
    attach_terms,
    contract,
    deploy,
    key_of,
    one_line_error,
    register_asset,
    send,
)

pytestmark = [pytest.mark.slow, pytest.mark.anvil]  # a node of their own: with the anvil pass

SERVICE = 8
MONTH = 30 * 86400


def iso(unix: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(unix)) + f" (unix {unix})"


def test_show_prints_amounts_in_units_and_times_as_dates(deployed: Anvil, project: Any):
    licenses = contract(deployed, project, "LicenseManager")
    service = key_of(SERVICE).address
    payer = key_of(5).address
    asset = register_asset(deployed, project, 3, b"\xcc" * 32)
    in_eth = attach_terms(deployed, project, 3, asset, price=10**15, per_use=GWEI, duration=MONTH)
    token = deploy(deployed, project, 0, "TestToken", "Test Dollar", "TUSD", 6)
    send(deployed, 0, licenses.functions.setCurrencyAllowed(token.address, True))  # test:0 deployed: the owner
    in_token = attach_terms(deployed, project, 3, asset, currency=token.address, price=1_500_000, per_use=250_000)
    send(deployed, 5, licenses.functions.deposit(ETH, service, 20 * GWEI), value=20 * GWEI)
    send(deployed, 5, licenses.functions.requestWithdrawal(ETH, service, 5 * GWEI))
    unlock = licenses.functions.escrowOf(payer, ETH, service).call()[2]
    window = licenses.functions.WITHDRAWAL_WINDOW().call()

    out = ape_run(deployed, "license", "show", "--terms", str(in_eth), "--service", service, "--account", "test:5")
    shown = out.stdout
    assert f"escrow    {payer}: 0.00000002 ETH ({20 * GWEI} wei) with service {service}" in shown
    assert (
        f"withdrawal 0.000000005 ETH ({5 * GWEI} wei) requested, unlocks {iso(unlock)}, "
        f"expires {iso(unlock + window)}" in shown
    )
    assert f"currency ETH ({ETH}), price 0.001 ETH ({10**15} wei), per use 0.000000001 ETH ({GWEI} wei)" in shown
    assert f"duration 30d ({MONTH} s)" in shown
    assert f"settled   0 ETH (0 wei) on the channel (payer {payer}, service {service}, terms {in_eth})" in shown

    # an ERC-20 deposit: amounts in the token's units (the script approves the licence manager first)
    send(deployed, 5, token.functions.mint(payer, 2_000_000))
    escrow = ["--amount", "1.5 token", "--currency", token.address, "--service", service, "--account", "test:5"]
    deposited = ape_run(deployed, "license", "deposit", *escrow).stdout
    assert f"escrow    1.5 TUSD (1500000 base units) with {service}" in deposited
    args = ["--terms", str(in_token), "--currency", token.address, "--service", service, "--payer", payer]
    shown = ape_run(deployed, "license", "show", *args).stdout
    assert f"escrow    {payer}: 1.5 TUSD (1500000 base units) with service {service}" in shown
    assert "withdrawal none requested" in shown
    assert f"currency TUSD ({token.address}), price 1.5 TUSD (1500000 base units), per use 0.25 TUSD" in shown
    assert "duration perpetual" in shown


def test_a_read_that_reverts_names_the_custom_error(deployed: Anvil):
    bought = one_line_error(ape_run(deployed, "license", "buy", "--terms", "99", check=False))
    assert bought == "Error: LicenseManager.getTerms(99) reverted: LicenseManager__UnknownTerms(termsId=99)"
    shown = one_line_error(ape_run(deployed, "license", "show", "--terms", "77", check=False))
    assert shown == "Error: LicenseManager.getTerms(77) reverted: LicenseManager__UnknownTerms(termsId=77)"
