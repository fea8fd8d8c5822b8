"""The settlement daemon against vouchers handed in to make it work hard (SECURITY.md, "The
settlement daemon's work is bounded"), on the chain under test:

- 25 payers with code (ERC-1271 wallets, 1 wei of escrow each: what a stranger pays to try it)
  among honest vouchers: the plan keeps every batch within `MAX_WALLET_SIGNATURES`, so two
  `settle` transactions settle everything, and each asset is distributed once;
- one voucher that reverts (a signature that is not the payer's) among 16: bisected by
  simulation, set aside with the contract's error, and the other 15 settled in one transaction
  after O(log n) simulations, never a transaction per voucher;
- a line on a payer's channel with a higher amount and a defect never supersedes the payer's
  voucher (F8, the daemon's side of it).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from agents.core import settlement
from agents.core.reverts import WouldRevertError
from agents.core.settlement import SignedVoucher
from agents.core.vouchers import Voucher, sign_voucher
from agents.daemons import settle as settle_module
from agents.daemons.settle import SettleStage
from agents.deploy.deployment import CoreConfig, deploy_core
from agents.runtime import jobs
from agents.runtime.chain import CORE, ChainClient, load_abis
from agents.runtime.jobs import submit_voucher
from agents.runtime.journal import Journal
from agents.runtime.stage import Done, Outcome
from tests.contracts.helpers import asset_record, attach_terms, register_asset, register_model

pytestmark = pytest.mark.chain

ETH = "0x0000000000000000000000000000000000000000"
ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def core(project: Any, chain: Any, accounts: Any) -> dict[str, Any]:
    """The four core contracts, deployed by test:0 (the service: the daemon's key)."""
    deployed = {d.name: d.address for d in deploy_core(project, accounts[0], chain, CoreConfig())}
    contracts = {name: getattr(project, name).at(address) for name, address in deployed.items()}
    return {"addresses": deployed, **contracts}


class Counted:
    """`client.transact` and the daemon's simulations, counted."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        """Functions of transactions mined."""
        self.refused: list[str] = []
        """Functions of transactions refused by their simulation (nothing sent)."""
        self.simulated = 0
        """`settle` simulations of the bisection (`eth_call`)."""


@pytest.fixture
def daemon(
    core: dict[str, Any], chain: Any, accounts: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[SettleStage, Journal, Counted]]:
    journal = Journal(tmp_path / "journal.db", final=jobs.REGISTERED_OR_FINAL)
    client = ChainClient(
        chain.provider.web3,
        Account.from_key(accounts[0].private_key),
        journal,
        core["addresses"],
        load_abis(ROOT, CORE),
        poll=0.02,
    )
    counted = Counted()
    transact = client.transact

    async def counting(name: str, function: str, *args: Any, **options: Any) -> dict[str, Any]:
        try:
            receipt = await transact(name, function, *args, **options)
        except WouldRevertError:
            counted.refused.append(function)
            raise
        counted.sent.append(function)
        return receipt

    preflight = settle_module.preflight

    def simulating(*args: Any) -> bytes:
        counted.simulated += 1
        return preflight(*args)

    monkeypatch.setattr(client, "transact", counting)
    monkeypatch.setattr(settle_module, "preflight", simulating)
    yield SettleStage(journal, client, worker="test/settlement"), journal, counted
    journal.close()


def run(stage: SettleStage, journal: Journal, vouchers: list[SignedVoucher]) -> dict[str, Outcome]:
    """Hand the vouchers in as the API would and run one `process` over them; outcome by voucher key."""
    keys = [submit_voucher(journal, sv)[0] for sv in vouchers]

    async def main() -> list[Outcome]:
        await stage.client.start()
        found = [journal.get(key) for key in keys]
        return list(await stage.process([job for job in found if job is not None]))

    return {outcome.key: outcome for outcome in asyncio.run(main())}


def settled(outcome: Outcome) -> bool:
    return isinstance(outcome, Done) and outcome.stage is None and "settle_tx" in outcome.updates


def metered(core: dict[str, Any], creator: Any, label: str, *, per_use: int, count: int = 1) -> tuple[bytes, list[int]]:
    """An asset of `creator` with `count` metered terms at `per_use` wei."""
    models = core["ModelRegistry"]
    model = int(models.modelCount()) or register_model(models, creator, label="griefing", data_bps=0)
    record = asset_record(label, creator, model)
    register_asset(core["ProvenanceRegistry"], creator, record)
    terms = [
        attach_terms(core["LicenseManager"], creator, record.content_digest, price=0, price_per_use=per_use)
        for _ in range(count)
    ]
    return record.content_digest, terms


def test_the_constants_are_the_contracts(core: dict[str, Any]):
    licenses = core["LicenseManager"]
    assert int(licenses.MAX_WALLET_SIGNATURES()) == settlement.MAX_WALLET_SIGNATURES
    assert int(licenses.MAX_VOUCHERS()) == settlement.MAX_VOUCHERS
    assert int(licenses.MAX_CUMULATIVE()) == settlement.MAX_CUMULATIVE


def test_25_wallet_payers_cost_two_settle_transactions(
    daemon: tuple[SettleStage, Journal, Counted], core: dict[str, Any], project: Any, chain: Any, accounts: Any
):
    """A stranger's 25 wallets (1 wei of escrow and a 1-wei voucher each, on its own asset's
    terms) handed in with honest vouchers: before, the 25 listed signatures reverted the batch
    (`TooManyWalletSignatures`) and every voucher went out as its own transaction, with a
    `distribute` after each (about 50 transactions paid by the operator)."""
    stage, journal, counted = daemon
    licenses, service = core["LicenseManager"], stage.service
    creator, attacker = accounts[3], accounts[5]
    honest = [accounts[i] for i in (6, 7, 8)]
    good, (good_terms,) = metered(core, creator, "honest asset", per_use=10**12)
    mine, (attacker_terms,) = metered(core, attacker, "attacker asset", per_use=1)
    wallets = [attacker.deploy(project.TestWallet1271, attacker.address) for _ in range(25)]
    for wallet in wallets:
        wallet.exec(licenses, licenses.deposit.encode_input(ETH, service, 1), sender=attacker, value=1)
    for payer in honest:
        licenses.deposit(ETH, service, 10**15, sender=payer, value=10**15)
    chain_id, deadline = int(chain.chain_id), int(chain.pending_timestamp) + 86_400

    def signed(payer: str, key: Any, asset: bytes, terms_id: int, amount: int) -> SignedVoucher:
        v = Voucher(payer, service, asset, terms_id, amount, deadline)
        return SignedVoucher(v, sign_voucher(v, key, chain_id, str(licenses.address)))

    hostile = [signed(str(w.address), attacker.private_key, mine, attacker_terms, 1) for w in wallets]
    fair = [signed(str(p.address), p.private_key, good, good_terms, 5 * 10**12) for p in honest]
    outcomes = run(stage, journal, hostile + fair)

    assert len(outcomes) == 28 and all(settled(o) for o in outcomes.values()), outcomes
    assert counted.sent.count("settle") <= 2 and not counted.refused
    assert sorted(counted.sent) == ["distribute", "distribute", "settle", "settle"]  # once per asset
    for wallet in wallets:
        assert int(licenses.settledOf(wallet.address, service, attacker_terms)) == 1
    for payer in honest:
        assert int(licenses.settledOf(payer.address, service, good_terms)) == 5 * 10**12
    assert int(core["RoyaltySplitter"].distributedOf(good, ETH)) == 15 * 10**12


def test_one_reverting_voucher_is_bisected_out_and_the_rest_settle_in_one_transaction(
    daemon: tuple[SettleStage, Journal, Counted], core: dict[str, Any], chain: Any, accounts: Any
):
    """A voucher whose signature is not its payer's reverts the whole `settle`
    (`WrongSigner`): before, each of the 16 went out alone (15 transactions, 15 distributes)."""
    stage, journal, counted = daemon
    licenses, service = core["LicenseManager"], stage.service
    payer = accounts[6]
    asset, terms = metered(core, accounts[3], "bisected asset", per_use=10**12, count=16)
    licenses.deposit(ETH, service, 10**16, sender=payer, value=10**16)
    chain_id, deadline = int(chain.chain_id), int(chain.pending_timestamp) + 86_400

    def signed(terms_id: int, key: Any) -> SignedVoucher:
        v = Voucher(str(payer.address), service, asset, terms_id, 10**12, deadline)
        return SignedVoucher(v, sign_voucher(v, key, chain_id, str(licenses.address)))

    vouchers = [signed(t, payer.private_key) for t in terms]
    vouchers[11] = forged = signed(terms[11], Account.create().key)  # not the payer's signature
    outcomes = run(stage, journal, vouchers)

    by_key = {submit_voucher(journal, sv)[0]: sv for sv in vouchers}
    left_out = [by_key[key] for key, o in outcomes.items() if not settled(o)]
    assert left_out == [forged]
    (why,) = [o for key, o in outcomes.items() if by_key[key] is forged]
    assert isinstance(why, Done) and why.stage == jobs.SKIPPED
    assert "LicenseManager__WrongSigner" in why.updates["reason"]
    assert counted.sent == ["settle", "distribute"]  # the 15 in one transaction, distributed once
    assert counted.refused == ["settle"]  # the batch of 16, refused by its simulation
    assert counted.simulated <= 2 * math.ceil(math.log2(16)) + 2, counted.simulated
    for sv in vouchers:
        expected = 0 if sv is forged else 10**12
        assert int(licenses.settledOf(payer.address, service, sv.voucher.terms_id)) == expected


def test_a_line_with_a_defect_never_supersedes_a_payers_voucher(
    daemon: tuple[SettleStage, Journal, Counted], core: dict[str, Any], chain: Any, accounts: Any
):
    """The journal takes what the paywall accepted, but the planner does not rely on it: a line on
    the payer's channel with a higher amount and a defect (another asset, expired, above
    `MAX_CUMULATIVE`) is left out for it, and the payer's voucher settles."""
    stage, journal, _ = daemon
    licenses, service = core["LicenseManager"], stage.service
    payer = accounts[7]
    asset, (terms_id,) = metered(core, accounts[3], "defended asset", per_use=10**12)
    licenses.deposit(ETH, service, 10**15, sender=payer, value=10**15)
    chain_id, now = int(chain.chain_id), int(chain.pending_timestamp)

    def signed(amount: int, *, on: bytes = asset, deadline: int = now + 86_400) -> SignedVoucher:
        v = Voucher(str(payer.address), service, on, terms_id, amount, deadline)
        return SignedVoucher(v, sign_voucher(v, payer.private_key, chain_id, str(licenses.address)))

    good = signed(5 * 10**12)
    lines = [signed(10**30, on=b"\x22" * 32), signed(10**13, deadline=now - 1), signed(2**200)]
    outcomes = run(stage, journal, [*lines, good])
    kinds = {o.updates.get("skip") for o in outcomes.values() if isinstance(o, Done) and not settled(o)}
    assert kinds == {"wrong_asset", "expired", "amount_too_large"}
    assert sum(settled(o) for o in outcomes.values()) == 1
    assert int(licenses.settledOf(payer.address, service, terms_id)) == 5 * 10**12
