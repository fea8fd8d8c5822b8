"""`ape run settle` against voucher files made to cost the service its vouchers or its gas
(SECURITY.md), on a real anvil:

- lines anyone can append to a voucher file (the payer's channel, a higher amount, no key: a
  forged signature, another asset, a past deadline, an amount above `MAX_CUMULATIVE` or above
  the payer's escrow) never supersede the payer's voucher: each is left out for its own defect
  and the payer's voucher settles;
- 25 vouchers of a payer with code (an EIP-7702 account: its signatures are listed, and a
  `settle` takes at most `MAX_WALLET_SIGNATURES` of them) among honest vouchers are planned as
  two batches that each simulate cleanly, and all settle.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agents.core.settlement import MAX_CUMULATIVE, MAX_WALLET_SIGNATURES, SignedVoucher, append_vouchers
from agents.core.vouchers import Voucher, sign_voucher
from tests.scripts.helpers import ETH, GWEI, Anvil, ape_run, attach_terms, contract, key_of, register_asset, send

pytestmark = [pytest.mark.slow, pytest.mark.anvil]  # a node of their own: with the anvil pass

SERVICE = 8
FORGED = b"\x01" * 65
"""A signature a stranger appends (no key needed)."""


def deadline(node: Anvil) -> int:
    return int(node.web3.eth.get_block("latest")["timestamp"]) + 86_400


def signed(node: Anvil, licenses: Any, payer: int, asset: bytes, terms_id: int, amount: int) -> SignedVoucher:
    """A voucher of test account `payer` for the service (test:8), signed with its key."""
    v = Voucher(key_of(payer).address, key_of(SERVICE).address, asset, terms_id, amount, deadline(node))
    return SignedVoucher(v, sign_voucher(v, key_of(payer).key, 31337, licenses.address))


def skip_line(sv: SignedVoucher) -> str:
    v = sv.voucher
    return f"skip      payer {v.payer} service {v.service} terms {v.terms_id} cumulative {v.cumulative_amount}: "


def test_garbage_lines_never_supersede_the_payers_voucher(deployed: Anvil, project: Any, tmp_path: Path):
    licenses = contract(deployed, project, "LicenseManager")
    asset = register_asset(deployed, project, 3, b"\xcc" * 32)
    terms_id = attach_terms(deployed, project, 3, asset, per_use=GWEI)
    service = key_of(SERVICE).address
    send(deployed, 4, licenses.functions.deposit(ETH, service, 100 * GWEI), value=100 * GWEI)
    good = signed(deployed, licenses, 4, asset, terms_id, 10 * GWEI)
    v = good.voucher

    def line(amount: int, *, on: bytes = asset, until: int | None = None) -> SignedVoucher:
        until = v.deadline if until is None else until
        return SignedVoucher(Voucher(v.payer, v.service, on, terms_id, amount, until), FORGED)

    garbage = {
        "wrong asset": line(10**30, on=b"\x22" * 32),
        "expired": line(20 * GWEI, until=deadline(deployed) - 86_400 - 3_600),
        "above MAX_CUMULATIVE": line(MAX_CUMULATIVE + 1),
        "forged, above the escrow": line(10**20),
        "forged": line(50 * GWEI),
    }
    vouchers = tmp_path / "vouchers.jsonl"
    append_vouchers(vouchers, [*garbage.values(), good])

    result = ape_run(deployed, "settle", "--vouchers", str(vouchers), "--account", f"test:{SERVICE}", check=False)
    out = result.stdout
    assert result.returncode == 3, out + result.stderr  # the lines need attention; the voucher settled
    reasons = {
        "wrong asset": f"terms {terms_id} are for asset 0x{asset.hex()}, not 0x{'22' * 32}",
        "expired": "expired (deadline",
        "above MAX_CUMULATIVE": f"the cumulative amount is above {MAX_CUMULATIVE}",
        "forged, above the escrow": "bad signature: ",
        "forged": "bad signature: ",
    }
    for label, sv in garbage.items():
        assert skip_line(sv) + reasons[label] in out, label
    assert skip_line(good) not in out
    assert "settled   batch 1/1: 1 of 1 vouchers" in out
    assert int(licenses.functions.settledOf(v.payer, service, terms_id).call()) == 10 * GWEI


def test_25_vouchers_of_a_payer_with_code_settle_in_two_transactions(deployed: Anvil, project: Any, tmp_path: Path):
    licenses = contract(deployed, project, "LicenseManager")
    service = key_of(SERVICE).address
    honest_asset = register_asset(deployed, project, 3, b"\xdd" * 32)
    honest_terms = attach_terms(deployed, project, 3, honest_asset, per_use=GWEI)
    # the stranger's own asset with 25 terms at 1 wei per use: 25 channels of one payer
    own = register_asset(deployed, project, 5, b"\xee" * 32)
    terms = [attach_terms(deployed, project, 5, own, per_use=1) for _ in range(MAX_WALLET_SIGNATURES + 1)]
    send(deployed, 5, licenses.functions.deposit(ETH, service, 25), value=25)
    for payer in (6, 9):
        send(deployed, payer, licenses.functions.deposit(ETH, service, 100 * GWEI), value=100 * GWEI)
    stranger = key_of(5).address
    deployed.web3.provider.make_request("anvil_setCode", [stranger, "0xef0100" + "11" * 20])  # any delegation
    try:
        hostile = [signed(deployed, licenses, 5, own, t, 1) for t in terms]
        honest = [signed(deployed, licenses, payer, honest_asset, honest_terms, 7 * GWEI) for payer in (6, 9)]
        vouchers = tmp_path / "vouchers.jsonl"
        append_vouchers(vouchers, [*hostile, *honest])

        result = ape_run(deployed, "settle", "--vouchers", str(vouchers), "--account", f"test:{SERVICE}", check=False)
        out = result.stdout
        assert result.returncode == 0, out + result.stderr
        assert "skip " not in out
        assert "plan      27 vouchers in 2 transaction(s)" in out
        assert "settled   batch 2/2" in out and "settled   batch 3/" not in out
        assert "summary   settled 27 voucher(s); nothing left out that needs attention" in out
    finally:
        deployed.web3.provider.make_request("anvil_setCode", [stranger, "0x"])
    for sv in [*hostile, *honest]:
        settled = licenses.functions.settledOf(sv.voucher.payer, service, sv.voucher.terms_id).call()
        assert int(settled) == sv.voucher.cumulative_amount
