"""Gas benchmark of the core contracts: `python bench/gas.py [--network ecosystem:network:provider]`.

Deploys a fresh set of contracts on the chosen network (default: the embedded in-process chain),
runs each measured operation, and prints a table of proofmint's figures beside their baselines and
targets. The last line is one JSON object with every figure.

Figures are `gasUsed` from receipts. For calldata-heavy transactions the EIP-7623 floor
(21,000 + 10 gas per calldata token, tokens = zero bytes + 4 x non-zero bytes) is also computed,
and the per-asset batch figures report max(gasUsed, floor): what a Prague-or-later chain charges.
"""

from __future__ import annotations

import json
import random
import sys
import time
from pathlib import Path
from typing import Any

import click

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from agents.deployment import CoreConfig, deploy_core  # noqa: E402
from agents.merkle import AssetRecord, BatchTree  # noqa: E402
from agents.vouchers import Voucher, as_call_tuple, sign_voucher  # noqa: E402

ETH = "0x0000000000000000000000000000000000000000"
URI = "ipfs://bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
PER_USE = 10**12


def digest(rng: random.Random) -> bytes:
    return rng.randbytes(32)


def floor_gas(calldata: bytes) -> int:
    zeros = calldata.count(0)
    tokens = zeros + 4 * (len(calldata) - zeros)
    return 21_000 + 10 * tokens


class Bench:
    def __init__(self, project: Any, chain: Any, accounts: list[Any]) -> None:
        self.project = project
        self.chain = chain
        self.accounts = accounts
        self.rng = random.Random(7007)
        deployer, developer, self.creator = accounts[0], accounts[1], accounts[3]
        deployed = {d.name: d.address for d in deploy_core(project, deployer, chain, CoreConfig())}
        self.models = project.ModelRegistry.at(deployed["ModelRegistry"])
        self.provenance = project.ProvenanceRegistry.at(deployed["ProvenanceRegistry"])
        self.licenses = project.LicenseManager.at(deployed["LicenseManager"])
        self.splitter = project.RoyaltySplitter.at(deployed["RoyaltySplitter"])
        self.models.registerModel(
            (digest(self.rng), digest(self.rng), digest(self.rng), 0, 1_000, 500, URI), sender=developer
        )
        self.model_id = int(self.models.modelCount())

    def record(self, parents: tuple[bytes, ...] = ()) -> AssetRecord:
        return AssetRecord(
            content_digest=digest(self.rng),
            creator=str(self.creator.address),
            model_id=self.model_id,
            params_digest=digest(self.rng),
            input_commitment=digest(self.rng),
            parents=tuple(sorted(parents)),
            metadata_uri=URI,
        )

    def register(self, parents: tuple[bytes, ...] = (), licences: list[int] | None = None) -> tuple[AssetRecord, int]:
        rec = self.record(parents)
        receipt = self.provenance.register(rec.as_tuple(), licences or [], sender=self.creator)
        return rec, int(receipt.gas_used)

    def terms(self, asset: bytes, price: int = 10**15, derivative_bps: int = 0) -> int:
        self.licenses.attachTerms(asset, (ETH, price, PER_USE, 0, derivative_bps, True, True), sender=self.creator)
        return int(self.licenses.termsCount())

    # ------------------------------------------------------------------ measurements

    def single_and_baseline(self) -> dict[str, int]:
        singles = [self.register()[1] for _ in range(8)]
        baseline = self.creator.deploy(self.project.BaselineERC721)
        mints = []
        for _ in range(8):
            receipt = baseline.mint(
                self.creator,
                digest(self.rng),
                self.model_id,
                digest(self.rng),
                digest(self.rng),
                URI,
                sender=self.creator,
            )
            mints.append(int(receipt.gas_used))
        return {"register_single_gas": max(singles), "erc721_mint_baseline_gas": max(mints)}

    def batches(self, n: int = 1_024) -> dict[str, float]:
        records = [self.record() for _ in range(n)]
        tree = BatchTree([r.leaf() for r in records])
        receipt = self.provenance.registerBatchLeaves(list(tree.leaves), sender=self.creator)
        data = bytes(receipt.transaction.data)
        charged = max(int(receipt.gas_used), floor_gas(data))
        root_receipt = self.provenance.registerBatchRoot(tree.root, n, "ipfs://" + "b" * 59, sender=self.creator)
        root_data = bytes(root_receipt.transaction.data)
        root_charged = max(int(root_receipt.gas_used), floor_gas(root_data))
        claim = self.provenance.claimFromBatch(2, 17, records[17].as_tuple(), tree.proof(17), [], sender=self.creator)
        return {
            "batch_calldata_gas_per_asset_1024": round(charged / n, 1),
            "batch_calldata_gas_used_per_asset_1024": round(int(receipt.gas_used) / n, 1),
            "batch_calldata_floor_per_asset_1024": round(floor_gas(data) / n, 1),
            "batch_root_gas_per_asset_1024": round(root_charged / n, 1),
            "claim_from_batch_gas": int(claim.gas_used),
        }

    def licensing(self) -> dict[str, int]:
        rec, _ = self.register()
        t = self.terms(rec.content_digest)
        buyer = self.accounts[5]
        purchase = self.licenses.purchase(t, buyer, sender=buyer, value=10**15)
        distribute = self.splitter.distribute(rec.content_digest, ETH, sender=buyer)
        withdraw = self.splitter.withdraw(ETH, self.creator, sender=self.creator)
        return {
            "purchase_gas": int(purchase.gas_used),
            "distribute_gas": int(distribute.gas_used),
            "withdraw_gas": int(withdraw.gas_used),
        }

    def derivative(self, parents: int = 16) -> dict[str, int]:
        pairs = []
        for _ in range(parents):
            rec, _ = self.register()
            t = self.terms(rec.content_digest, price=0, derivative_bps=300)
            receipt = self.licenses.purchase(t, self.creator, sender=self.creator)
            pairs.append((rec.content_digest, int(receipt.events.filter(self.licenses.LicensePurchased)[0].licenseId)))
        pairs.sort()
        _, gas = self.register(tuple(p for p, _ in pairs), [lic for _, lic in pairs])
        return {"derivative_max_parents_gas": gas}

    def settlement(self, payers: int = 16, assets: int = 12) -> dict[str, float]:
        chain_id = int(self.chain.chain_id)
        channels = []
        for _ in range(assets):
            rec, _ = self.register()
            channels.append((rec.content_digest, self.terms(rec.content_digest)))
        signers = self.accounts[:payers]
        for p in signers:
            self.licenses.deposit(ETH, 10**17, sender=p, value=10**17)
        deadline = int(self.chain.pending_timestamp) + 86_400
        totals: dict[tuple[str, int], int] = {}

        def batch() -> list[Any]:
            out = []
            # Sorted by asset, then payer: each asset's revenue is credited once per batch.
            for asset, terms_id in channels:
                for p in signers:
                    key = (str(p.address), terms_id)
                    totals[key] = totals.get(key, 0) + PER_USE * self.rng.randint(1, 1_000)
                    v = Voucher(str(p.address), asset, terms_id, totals[key], deadline)
                    out.append(as_call_tuple(v, sign_voucher(v, p.private_key, chain_id, str(self.licenses.address))))
            return out

        n = payers * assets
        first = self.licenses.settle(ETH, batch(), sender=self.creator)
        again = self.licenses.settle(ETH, batch(), sender=self.creator)
        return {
            f"settle_gas_per_new_channel_{n}": round(int(first.gas_used) / n, 1),
            f"settle_gas_per_voucher_{n}": round(int(again.gas_used) / n, 1),
        }


def settlement_worst(bench: Bench, accounts: Any, n: int = 192) -> dict[str, float]:
    """The worst case for one settle call: n vouchers from n distinct payers on n distinct assets,
    so no run aggregates anything and every voucher pays cold terms, escrow and revenue slots."""
    chain_id = int(bench.chain.chain_id)
    funder = bench.accounts[0]
    payers = [accounts.test_accounts.generate_test_account() for _ in range(n)]
    channels = []
    for p in payers:
        funder.transfer(p, 10**17)
        bench.licenses.deposit(ETH, 10**16, sender=p, value=10**16)
        rec, _ = bench.register()
        channels.append((p, rec.content_digest, bench.terms(rec.content_digest)))
    deadline = int(bench.chain.pending_timestamp) + 86_400

    def batch(uses: int) -> list[Any]:
        out = []
        for p, asset, terms_id in channels:
            v = Voucher(str(p.address), asset, terms_id, PER_USE * uses, deadline)
            out.append(as_call_tuple(v, sign_voucher(v, p.private_key, chain_id, str(bench.licenses.address))))
        return out

    first = bench.licenses.settle(ETH, batch(10), sender=bench.creator)
    again = bench.licenses.settle(ETH, batch(20), sender=bench.creator)
    return {
        f"settle_gas_per_new_channel_worst_{n}": round(int(first.gas_used) / n, 1),
        f"settle_gas_per_voucher_worst_{n}": round(int(again.gas_used) / n, 1),
        f"settle_gas_worst_{n}": int(first.gas_used),
    }


@click.command()
@click.option("--network", "choice", default="ethereum:local:test", show_default=True, help="ape network choice")
def main(choice: str) -> None:
    """Measure the gas of every core operation and compare with baselines and targets."""
    from ape import accounts, chain, networks, project
    from ape.logging import logger

    logger.set_level("ERROR")

    started = time.monotonic()
    with networks.parse_network_choice(choice):
        test_accounts = list(accounts.test_accounts)
        if len(test_accounts) < 16:
            test_accounts += [accounts.test_accounts.generate_test_account() for _ in range(16 - len(test_accounts))]
            for acct in test_accounts[10:]:
                test_accounts[0].transfer(acct, 10**19)
        bench = Bench(project, chain, test_accounts)
        click.echo(f"network {choice}, chain id {chain.chain_id}; measuring ...", err=True)
        figures: dict[str, float] = {}
        for step in (bench.single_and_baseline, bench.batches, bench.licensing, bench.derivative, bench.settlement):
            figures.update(step())
            click.echo(f"  {step.__name__} done ({time.monotonic() - started:.0f} s)", err=True)
        figures.update(settlement_worst(bench, accounts))
        click.echo(f"  settlement_worst done ({time.monotonic() - started:.0f} s)", err=True)

    base = figures["erc721_mint_baseline_gas"]
    rows = [
        ("register one asset (full record)", figures["register_single_gas"], f"{base:,} ERC-721 mint", "-"),
        (
            "batch, leaves in calldata, per asset @1024",
            figures["batch_calldata_gas_per_asset_1024"],
            f"{base:,}",
            "<= 1,500",
        ),
        (
            "  of which EIP-7623 floor per asset",
            figures["batch_calldata_floor_per_asset_1024"],
            "1,280 (32-byte leaf)",
            "-",
        ),
        ("batch, root only, per asset @1024", figures["batch_root_gas_per_asset_1024"], f"{base:,}", "<= 100"),
        ("claim one batch member as a full record", figures["claim_from_batch_gas"], "-", "-"),
        ("purchase a licence (ETH)", figures["purchase_gas"], "-", "-"),
        (
            "settle, per voucher, 192 (16 payers x 12 assets), settled channels",
            figures["settle_gas_per_voucher_192"],
            "-",
            "<= 20,000",
        ),
        ("settle, per voucher, 192 (16 x 12), new channels", figures["settle_gas_per_new_channel_192"], "-", "-"),
        (
            "settle, per voucher, 192 payers x 192 assets, settled channels",
            figures["settle_gas_per_voucher_worst_192"],
            "-",
            "-",
        ),
        (
            "settle, per voucher, 192 x 192, new channels (worst case)",
            figures["settle_gas_per_new_channel_worst_192"],
            "-",
            "-",
        ),
        ("  whole worst-case settle call (192 vouchers)", figures["settle_gas_worst_192"], "-", "< 15,000,000"),
        ("distribute an asset's revenue", figures["distribute_gas"], "-", "-"),
        ("withdraw (ETH)", figures["withdraw_gas"], "-", "-"),
        ("derivative with MAX_PARENTS=16 parents", figures["derivative_max_parents_gas"], "-", "< 15,000,000"),
    ]
    width = max(len(r[0]) for r in rows)
    click.echo(f"{'operation':<{width}}  {'proofmint gas':>14}  {'baseline':>22}  {'target':>14}")
    click.echo("-" * (width + 58))
    for name, value, baseline, target in rows:
        click.echo(f"{name:<{width}}  {value:>14,}  {baseline:>22}  {target:>14}")
    calldata_x = base / figures["batch_calldata_gas_per_asset_1024"]
    root_x = base / figures["batch_root_gas_per_asset_1024"]
    click.echo(f"batch vs one ERC-721 mint per asset: {calldata_x:.0f}x less (calldata), {root_x:.0f}x less (root)")
    click.echo(json.dumps(figures, sort_keys=True))


if __name__ == "__main__":
    main()
