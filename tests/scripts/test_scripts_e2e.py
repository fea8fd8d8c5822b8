"""The ape scripts end to end, as an operator runs them: `ape run deploy | register_model | license |
settle` as separate processes against one real anvil node, which keeps the state between them.

The module's own anvil (tests/scripts/conftest.py) is reached by its URL (a custom network to
ape); its chain id 31337 marks it as a development chain, so the scripts need no confirmation and
read the deployment record that `deploy` wrote under `.cache/deployments/`. The one asset the
licence commands need is registered with web3.py straight from the test (registering assets is
the generating agent's job, issue 6).
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from agents.core.merkle import AssetRecord
from tests.scripts.helpers import ETH, GWEI, ROOT, Anvil, ape_run, contract, key_of, send

pytestmark = [pytest.mark.slow, pytest.mark.anvil]  # a node of their own: with the anvil pass


def test_register_model_with_originators_then_refuse_duplicate(deployed: Anvil, project: Any, tmp_path: Path):
    weights = tmp_path / "weights"
    weights.mkdir()
    (weights / "unet.safetensors").write_bytes(b"\x01" * 1000)
    shares = tmp_path / "shares.csv"
    shares.write_text(f"address,weight\n{key_of(2).address},600000\n{key_of(7).address},400000\n")
    out = ape_run(
        deployed,
        "register_model",
        "--weights",
        str(weights),
        "--metadata-uri",
        "ipfs://model-card",
        "--developer-bps",
        "1000",
        "--data-bps",
        "500",
        "--data-shares",
        str(shares),
        "--account",
        "test:1",
    ).stdout
    assert "model id  1" in out
    tree = json.loads((tmp_path / "shares.csv.tree.json").read_text())
    assert tree["modelId"] == 1 and set(tree["originators"]) == {key_of(2).address, key_of(7).address}
    models = contract(deployed, project, "ModelRegistry")
    assert models.functions.royaltyOf(1).call()[3].hex() == tree["root"].removeprefix("0x")

    again = ape_run(
        deployed,
        "register_model",
        "--weights",
        str(weights),
        "--metadata-uri",
        "ipfs://x",
        "--account",
        "test:1",
        check=False,
    )
    assert again.returncode == 1
    assert "would revert: ModelRegistry__WeightsAlreadyRegistered" in again.stderr
    assert models.functions.modelCount().call() == 1


def test_register_model_bad_input_is_refused_before_any_transaction(deployed: Anvil, tmp_path: Path):
    shares = tmp_path / "bad.csv"
    shares.write_text(f"{key_of(2).address},600000\n{key_of(7).address},300000\n")
    cases = [
        (["--weights-digest", "0x1234", "--metadata-uri", "ipfs://x"], "expected 32 bytes"),
        (["--metadata-uri", "ipfs://x"], "exactly one of --weights and --weights-digest"),
        (["--weights-digest", "11" * 32, "--metadata-uri", "ipfs://x", "--data-bps", "500"], "go together"),
        (
            [
                "--weights-digest",
                "22" * 32,
                "--metadata-uri",
                "ipfs://x",
                "--data-bps",
                "5",
                "--data-shares",
                str(shares),
            ],
            "must sum to 1000000",
        ),
        (["--weights-digest", "33" * 32, "--metadata-uri", "ipfs://x", "--account", "test:99"], "test:N with N below"),
    ]
    for args, message in cases:
        result = ape_run(deployed, "register_model", *args, check=False)
        assert result.returncode != 0
        assert message in result.stderr, result.stderr


def test_licence_escrow_vouchers_and_settlement(deployed: Anvil, project: Any, tmp_path: Path):
    provenance = contract(deployed, project, "ProvenanceRegistry")
    licenses = contract(deployed, project, "LicenseManager")
    splitter = contract(deployed, project, "RoyaltySplitter")
    models = contract(deployed, project, "ModelRegistry")
    if models.functions.modelCount().call() == 0:
        send(
            deployed,
            1,
            models.functions.registerModel((b"\x44" * 32, b"\x00" * 32, b"\x00" * 32, 0, 1000, 0, "ipfs://m")),
        )
    creator = key_of(3)
    record = AssetRecord(b"\xaa" * 32, creator.address, 1, b"\x01" * 32, b"\x02" * 32, (), "ipfs://asset")
    send(deployed, 3, provenance.functions.register(record.as_tuple(), []))
    asset = "0x" + record.content_digest.hex()

    out = ape_run(
        deployed,
        "license",
        "attach",
        "--asset",
        asset,
        "--price",
        "0.001 ether",
        "--price-per-use",
        "1 gwei",
        "--derivatives",
        "--derivative-bps",
        "1000",
        "--account",
        "test:3",
    ).stdout
    assert "terms id  1" in out
    stranger = ape_run(deployed, "license", "attach", "--asset", asset, "--account", "test:4", check=False)
    assert "would revert: LicenseManager__NotCreator" in stranger.stderr

    out = ape_run(deployed, "license", "buy", "--terms", "1", "--account", "test:5").stdout
    assert "expires never" in out
    assert splitter.functions.pendingRevenueOf(record.content_digest, ETH).call() == 10**15

    # escrow is with a service (an API operator: test:8), and only vouchers naming it draw on it
    service = key_of(8).address
    elsewhere = key_of(9).address
    for payer in ("test:5", "test:6"):
        ape_run(deployed, "license", "deposit", "--amount", "100 gwei", "--service", service, "--account", payer)
    out = ape_run(deployed, "license", "deposit", "--amount", "7 gwei", "--service", elsewhere, "--account", "test:6")
    assert f"escrow    0.000000007 ETH ({7 * GWEI} wei) with {elsewhere}" in out.stdout
    assert licenses.functions.escrowOf(key_of(6).address, ETH, service).call()[0] == 100 * GWEI
    nobody = ape_run(deployed, "license", "deposit", "--amount", "1 gwei", "--service", ETH, check=False)
    assert nobody.returncode == 1 and "--service: expected a non-zero address" in nobody.stderr
    vouchers = tmp_path / "vouchers.jsonl"

    def sign(payer: str, uses: int, to: str = service) -> None:
        args = ["--terms", "1", "--uses", str(uses), "--service", to, "--out", str(vouchers), "--account", payer]
        ape_run(deployed, "license", "sign", *args)

    for payer, uses in (("test:5", 10), ("test:5", 25), ("test:6", 4)):
        sign(payer, uses)
    assert len(vouchers.read_text().splitlines()) == 3
    assert all(json.loads(line)["service"] == service for line in vouchers.read_text().splitlines())

    def settle(*args: str, account: str = "test:8", check: bool = True) -> subprocess.CompletedProcess[str]:
        """`ape run settle` by the service (test:8): only it may settle its vouchers."""
        return ape_run(deployed, "settle", "--vouchers", str(vouchers), "--account", account, *args, check=check)

    dry = settle("--dry-run").stdout
    assert "superseded" in dry and "2 vouchers in 1 transaction" in dry
    assert licenses.functions.settledOf(key_of(5).address, service, 1).call() == 0
    # another account is not the service: it settles none of them
    stranger = settle("--dry-run", account="test:9").stdout
    assert "nothing to settle" in stranger and f"for service {service}, not {key_of(9).address}" in stranger

    out = settle().stdout
    assert "settled   batch 1/1: 2 of 2 vouchers" in out
    assert licenses.functions.settledOf(key_of(5).address, service, 1).call() == 25 * GWEI
    assert licenses.functions.settledOf(key_of(6).address, service, 1).call() == 4 * GWEI
    assert licenses.functions.escrowOf(key_of(5).address, ETH, service).call()[0] == 75 * GWEI
    assert licenses.functions.escrowOf(key_of(6).address, ETH, elsewhere).call()[0] == 7 * GWEI  # untouched
    assert splitter.functions.pendingRevenueOf(record.content_digest, ETH).call() == 10**15 + 29 * GWEI

    again = settle().stdout
    assert "already settled" in again and "nothing to settle" in again

    # A voucher beyond the payer's escrow with its service (96 gwei left; the 7 with another service
    # do not count) is left out, saying why, and the rest of the file still settles.
    sign("test:6", 500)
    sign("test:5", 30)
    sign("test:6", 1, to=elsewhere)  # another service's: only it may settle it
    left_out = settle(check=False)
    assert left_out.returncode == 3  # settled the rest, but a voucher needs attention
    out = left_out.stdout
    short = f"payer {key_of(6).address} service {service} terms 1 cumulative {500 * GWEI}: the payer's escrow"
    assert short in out and f"cannot cover it (needs {496 * GWEI}, {96 * GWEI} left for it)" in out
    assert "settled   batch 1/1: 1 of 1 vouchers" in out
    assert licenses.functions.settledOf(key_of(5).address, service, 1).call() == 30 * GWEI
    assert licenses.functions.settledOf(key_of(6).address, service, 1).call() == 4 * GWEI
    assert f"for service {elsewhere}, not {service}: only its service may settle it" in out
    assert licenses.functions.settledOf(key_of(6).address, elsewhere, 1).call() == 0

    # Escrow withdrawal: locked during the delay, then paid out within the window.
    def escrow(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return ape_run(deployed, "license", *args, "--service", service, "--account", "test:5", check=check)

    def travel(seconds: int) -> None:
        deployed.web3.provider.make_request("evm_increaseTime", [seconds])
        deployed.web3.provider.make_request("evm_mine", [])

    delay = licenses.functions.WITHDRAWAL_DELAY().call()
    window = licenses.functions.WITHDRAWAL_WINDOW().call()
    requested = escrow("request-withdrawal", "--amount", "50 gwei").stdout
    unlock = licenses.functions.escrowOf(key_of(5).address, ETH, service).call()[2]
    assert f"(unix {unlock})" in requested and f"(unix {unlock + window}) unless withdrawn" in requested
    locked = escrow("withdraw-escrow", check=False)
    assert "would revert: LicenseManager__WithdrawalLocked" in locked.stderr
    travel(delay + 1)
    out = escrow("withdraw-escrow").stdout
    assert f"withdrawn 0.00000005 ETH ({50 * GWEI} wei)" in out
    shown = ape_run(deployed, "license", "show", "--terms", "1", "--service", service, "--account", "test:5").stdout
    assert f"settled   0.00000003 ETH ({30 * GWEI} wei)" in shown
    assert f"escrow    {key_of(5).address}: 0.00000002 ETH ({20 * GWEI} wei) with service {service}" in shown

    # A request left past its window expires: the withdrawal is refused, a new request works.
    escrow("request-withdrawal", "--amount", "5 gwei")
    travel(delay + window + 60)
    assert "expired" in ape_run(deployed, "license", "show", "--service", service, "--account", "test:5").stdout
    expired = escrow("withdraw-escrow", check=False)
    assert expired.returncode == 1 and "the withdrawal request expired at" in expired.stderr
    assert "request again" in expired.stderr
    assert licenses.functions.escrowOf(key_of(5).address, ETH, service).call()[0] == 20 * GWEI
    escrow("request-withdrawal", "--amount", "5 gwei")
    travel(delay + 1)
    assert f"withdrawn 0.000000005 ETH ({5 * GWEI} wei)" in escrow("withdraw-escrow").stdout
    # and one cancelled is gone: nothing to withdraw
    escrow("request-withdrawal", "--amount", "5 gwei")
    assert "cancelled the pending withdrawal" in escrow("cancel-withdrawal").stdout
    assert tuple(licenses.functions.escrowOf(key_of(5).address, ETH, service).call()) == (15 * GWEI, 0, 0)
    assert "no withdrawal is pending" in escrow("withdraw-escrow", check=False).stderr


def test_malformed_voucher_file_names_the_line(deployed: Anvil, tmp_path: Path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('\n{"payer": "0x01"}\n')
    result = ape_run(deployed, "settle", "--vouchers", str(bad), check=False)
    assert result.returncode == 1
    assert f"{bad}:2: missing" in result.stderr
    missing = ape_run(deployed, "settle", "--vouchers", str(tmp_path / "none.jsonl"), check=False)
    assert "No such file" in missing.stderr


def test_scripts_without_a_deployment_say_how_to_make_one(tmp_path: Path):
    node = Anvil()
    try:
        result = ape_run(node, "license", "show", check=False)
        assert result.returncode == 1
        assert "no proofmint deployment recorded" in result.stderr and "ape run deploy --network" in result.stderr
        ape_run(node, "deploy")
        node.process.terminate()
        node.process.wait(timeout=10)
        # The same URL answered by a fresh chain: the record is stale.
        restarted = subprocess.Popen(
            [str(ROOT / "node_modules" / ".bin" / "anvil"), "--port", str(node.port), "--silent"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        node.process = restarted
        deadline = time.monotonic() + 30
        while not node.web3.is_connected() and time.monotonic() < deadline:
            time.sleep(0.1)
        stale = ape_run(node, "license", "show", check=False)
        assert stale.returncode == 1 and "the chain was reset since" in stale.stderr
    finally:
        node.stop()
