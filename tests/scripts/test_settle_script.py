"""`ape run settle` (scripts/settle.py) against a real anvil: one bad voucher never holds up the
others. The vouchers are signed in the test with the payers' keys (as `ape run license sign`
would sign them) and the escrow is deposited with web3.py, so the one `ape run` is the settle."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agents.core.reverts import error_table, preflight
from agents.core.settlement import Batch, SignedVoucher, append_vouchers
from agents.core.vouchers import Voucher, sign_voucher
from agents.deploy.deployment import CORE_CONTRACTS
from scripts.settle import settleable
from tests.scripts.helpers import (
    ETH,
    GWEI,
    Anvil,
    abi_of,
    ape_run,
    attach_terms,
    contract,
    deploy,
    key_of,
    register_asset,
    send,
)

pytestmark = [pytest.mark.slow, pytest.mark.anvil]  # a node of their own: with the anvil pass

SERVICE = 8
REJECT_ALL = 1
"""`TestWallet1271.Mode.RejectAll`."""


@pytest.fixture(scope="module")
def metered(deployed: Anvil, project: Any) -> tuple[bytes, int]:
    """An asset of test:3 with terms at 1 gwei per use, and escrow with the service (test:8)
    from test:2 (5 gwei), test:4, test:5 and test:6 (100 gwei each)."""
    asset = register_asset(deployed, project, 3, b"\xbb" * 32)
    terms_id = attach_terms(deployed, project, 3, asset, per_use=GWEI)
    licenses = contract(deployed, project, "LicenseManager")
    service = key_of(SERVICE).address
    for payer, amount in ((2, 5), (4, 100), (5, 100), (6, 100)):
        send(deployed, payer, licenses.functions.deposit(ETH, service, amount * GWEI), value=amount * GWEI)
    return asset, terms_id


def voucher(
    node: Anvil, licenses: Any, payer: str, signer: int, terms: tuple[bytes, int], amount: int
) -> SignedVoucher:
    """A voucher of `payer` on the service's channel, signed with test account `signer`'s key."""
    asset, terms_id = terms
    deadline = int(node.web3.eth.get_block("latest")["timestamp"]) + 86400
    v = Voucher(payer, key_of(SERVICE).address, asset, terms_id, amount, deadline)
    return SignedVoucher(v, sign_voucher(v, key_of(signer).key, 31337, licenses.address))


def test_settle_leaves_out_bad_vouchers_and_settles_the_rest(
    deployed: Anvil, project: Any, metered: tuple[bytes, int], tmp_path: Path
):
    licenses = contract(deployed, project, "LicenseManager")
    service = key_of(SERVICE).address
    # two ERC-1271 wallets of test:7 with escrow: one accepts its owner's signatures, one refuses all
    wallets = [deploy(deployed, project, 7, "TestWallet1271", key_of(7).address) for _ in range(2)]
    send(deployed, 7, wallets[1].functions.setMode(REJECT_ALL))
    for wallet in wallets:
        call = licenses.encode_abi("deposit", args=[ETH, service, 100 * GWEI])
        send(deployed, 7, wallet.functions.exec(licenses.address, call), value=100 * GWEI)
    accepting, refusing = (w.address for w in wallets)
    payer = {i: key_of(i).address for i in (2, 4, 5, 6, 9)}

    good = [
        voucher(deployed, licenses, payer[5], 5, metered, 10 * GWEI),
        voucher(deployed, licenses, payer[6], 6, metered, 20 * GWEI),
        voucher(deployed, licenses, accepting, 7, metered, 30 * GWEI),  # signed by the wallet's owner
    ]
    forged = voucher(deployed, licenses, payer[4], 9, metered, 10 * GWEI)  # test:9 signs for test:4
    short = voucher(deployed, licenses, payer[2], 2, metered, 50 * GWEI)  # 5 gwei of escrow
    refused = voucher(deployed, licenses, refusing, 7, metered, 10 * GWEI)
    vouchers = tmp_path / "vouchers.jsonl"
    append_vouchers(vouchers, [good[0], forged, good[1], short, refused, good[2]])

    result = ape_run(deployed, "settle", "--vouchers", str(vouchers), "--account", f"test:{SERVICE}", check=False)
    out = result.stdout
    assert result.returncode == 3, out + result.stderr  # the rest settled; some vouchers need attention

    def left_out(sv: SignedVoucher) -> str:
        v = sv.voucher
        return f"skip      payer {v.payer} service {service} terms {v.terms_id} cumulative {v.cumulative_amount}: "

    assert left_out(forged) + f"bad signature: signed by {payer[9]}, not by the payer" in out
    assert left_out(short) + f"the payer's escrow with service {service} cannot cover it" in out
    assert left_out(refused) + f"the payer's wallet {refusing} (ERC-1271) refuses the signature" in out
    assert "settled   batch 1/1: 3 of 3 vouchers" in out
    assert "summary   settled 3 voucher(s); 3 left out that need attention" in out
    terms_id = metered[1]
    for sv in good:
        assert licenses.functions.settledOf(sv.voucher.payer, service, terms_id).call() == sv.voucher.cumulative_amount
    for sv in (forged, short, refused):
        assert licenses.functions.settledOf(sv.voucher.payer, service, terms_id).call() == 0


def test_a_batch_that_would_revert_is_bisected_down_to_the_voucher(
    deployed: Anvil, project: Any, metered: tuple[bytes, int]
):
    """`settleable` sets aside what reverts on its own (a forged EOA signature reverts the whole
    `settle`) and puts the rest back into one batch, simulated on the node as the service."""
    licenses = contract(deployed, project, "LicenseManager")
    table = error_table(abi_of(project, name) for name in CORE_CONTRACTS)
    simulated: list[int] = []

    def simulate(batch: Batch) -> bytes:
        simulated.append(len(batch.vouchers))
        data = licenses.encode_abi("settle", args=list(batch.call_args()))
        tx = {"from": key_of(SERVICE).address, "to": licenses.address, "data": data, "value": 0}
        return preflight(deployed.web3, tx, table)

    good = [voucher(deployed, licenses, key_of(i).address, i, metered, 40 * GWEI) for i in (5, 6)]
    forged = [voucher(deployed, licenses, key_of(4).address, signer, metered, 40 * GWEI) for signer in (9, 3)]
    batch = Batch(ETH, key_of(SERVICE).address, [good[0], forged[0], forged[1], good[1]])
    parts, set_aside = settleable(batch, simulate)
    assert [part.vouchers for part in parts] == [good]  # merged back: one transaction
    assert [sv for sv, _ in set_aside] == forged
    assert all("would revert: LicenseManager__WrongSigner(index=0" in why for _, why in set_aside)
    assert simulated == [4, 2, 1, 1, 2, 1, 1, 2]  # bisected, then the survivors simulated together
