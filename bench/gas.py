"""Gas benchmark of the core contracts: `python bench/gas.py [--network ecosystem:network:provider]`.

Deploys a fresh set of contracts on the chosen network (default: the embedded in-process chain),
runs each measured operation, and prints a table of proofmint's figures beside their baselines and
targets. The last line is one JSON object with every figure.

Figures are `gasUsed` from receipts (L2 execution gas). For calldata-heavy transactions the
EIP-7623 floor (21,000 + 10 gas per calldata token, tokens = zero bytes + 4 x non-zero bytes) is
also computed, and the per-asset batch figures report max(gasUsed, floor): what a Prague-or-later
chain charges.

Each registration path (`register`, `registerMany` of 64, `registerBatchLeaves` and
`registerBatchRoot` of 1,024, one `claimFromBatch`) also gets its L1 data gas on an OP-stack chain
under Fjord (`l1_data_gas_per_asset_op_stack_*`): FastLZ size of the mined transaction's signed
bytes through the Fjord regression, at 16 gas a byte (`bench/l1_data.py` says how and where the
constants come from), per asset the transaction registers. It is a separate charge, paid at the L1
base fee times the chain's scalar; it is printed beside the L2 gas, never added to it. The baseline
ERC-721 mint gets the same figure (`l1_data_gas_op_stack_erc721_mint_baseline`).

Vouchers all name one service (an account apart from every payer), draw on escrow deposited with
it, and are settled by it with the arguments the agents send (`agents.core.vouchers.settle_arguments`).
"""

from __future__ import annotations

import json
import random
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click
from eth_abi.abi import encode
from eth_utils.crypto import keccak

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from agents.core.merkle import AssetRecord, BatchTree  # noqa: E402
from agents.core.vouchers import Voucher, settle_arguments, sign_voucher  # noqa: E402
from agents.deploy.deployment import CoreConfig, deploy_core  # noqa: E402
from bench.l1_data import l1_data_op_stack, signed_transaction_bytes  # noqa: E402

ETH = "0x0000000000000000000000000000000000000000"
URI = "ipfs://bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
PER_USE = 10**12
BATCH = 1_024
MANY = 64
"""Assets in one `registerMany` call: the contract's MAX_REGISTER_MANY, the agents' batch size."""


def digest(rng: random.Random) -> bytes:
    return rng.randbytes(32)


def floor_gas(calldata: bytes) -> int:
    zeros = calldata.count(0)
    tokens = zeros + 4 * (len(calldata) - zeros)
    return 21_000 + 10 * tokens


class Bench:
    def __init__(self, project: Any, chain: Any, accounts: list[Any], service: Any) -> None:
        self.project = project
        self.chain = chain
        self.accounts = accounts
        self.service = service
        """The service account: every voucher names it, every escrow is deposited with it, and it
        sends every settle call (only the service may)."""
        self.rng = random.Random(7007)
        self.signed_sources: set[str] = set()
        """Where the signed bytes of measured transactions came from (printed with the table)."""
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

    def record(self, parents: tuple[bytes, ...] = (), licences: tuple[int, ...] = ()) -> AssetRecord:
        return AssetRecord(
            content_digest=digest(self.rng),
            creator=str(self.creator.address),
            model_id=self.model_id,
            params_digest=digest(self.rng),
            input_commitment=digest(self.rng),
            parents=tuple(sorted(parents)),
            metadata_uri=URI,
            license_ids=licences,
        )

    def register(self, parents: tuple[bytes, ...] = (), licences: tuple[int, ...] = ()) -> tuple[AssetRecord, Any]:
        """Registers one asset with `register`; returns its record and the receipt."""
        rec = self.record(parents, licences)
        receipt = self.provenance.register(rec.as_tuple(), list(rec.license_ids), sender=self.creator)
        return rec, receipt

    def l1_data_gas(self, receipt: Any) -> int:
        """OP-stack Fjord L1 data gas of the mined transaction behind `receipt` (its signed bytes,
        checked against its hash)."""
        signed, source = signed_transaction_bytes(self.chain.provider, receipt)
        self.signed_sources.add(source)
        return l1_data_op_stack(signed).l1_data_gas

    def terms(self, asset: bytes, price: int = 10**15, derivative_bps: int = 0) -> int:
        self.licenses.attachTerms(asset, (ETH, price, PER_USE, 0, derivative_bps, True, True), sender=self.creator)
        return int(self.licenses.termsCount())

    def settle(self, vouchers: Sequence[tuple[Voucher, bytes]]) -> Any:
        """One `settle` call in ETH for vouchers of the service, sent by the service, with the
        arguments the agents send (`agents.core.vouchers.settle_arguments`: compact EOA signatures)."""
        calls, wallet_signatures = settle_arguments(vouchers)
        return self.licenses.settle(ETH, self.service.address, calls, wallet_signatures, sender=self.service)

    # ------------------------------------------------------------------ measurements

    def single_and_baseline(self) -> dict[str, float]:
        """Eight single registrations and eight baseline ERC-721 mints: the largest L2 gas and the
        largest L1 data gas of each kind."""
        singles = [self.register()[1] for _ in range(8)]
        baseline = self.creator.deploy(self.project.BaselineERC721)
        mints = []
        for _ in range(8):
            mints.append(
                baseline.mint(
                    self.creator,
                    digest(self.rng),
                    self.model_id,
                    digest(self.rng),
                    digest(self.rng),
                    URI,
                    sender=self.creator,
                )
            )
        return {
            "register_single_gas": max(int(r.gas_used) for r in singles),
            "erc721_mint_baseline_gas": max(int(r.gas_used) for r in mints),
            "l1_data_gas_per_asset_op_stack_register_single": max(self.l1_data_gas(r) for r in singles),
            "l1_data_gas_op_stack_erc721_mint_baseline": max(self.l1_data_gas(r) for r in mints),
        }

    def register_many(self, n: int = MANY) -> dict[str, float]:
        """One `registerMany` of `n` originals: the path the agents register with."""
        records = [self.record() for _ in range(n)]
        receipt = self.provenance.registerMany(
            [r.as_tuple() for r in records], [list(r.license_ids) for r in records], sender=self.creator
        )
        return {
            f"register_many_gas_per_asset_{n}": round(int(receipt.gas_used) / n, 1),
            f"l1_data_gas_per_asset_op_stack_register_many_{n}": round(self.l1_data_gas(receipt) / n, 1),
        }

    def batches(self, n: int = BATCH) -> dict[str, float]:
        """A batch of `n` by leaves in calldata and the same tree by root; then one member claimed."""
        records = [self.record() for _ in range(n)]
        tree = BatchTree([r.leaf() for r in records])
        receipt = self.provenance.registerBatchLeaves(list(tree.leaves), sender=self.creator)
        data = bytes(receipt.transaction.data)
        charged = max(int(receipt.gas_used), floor_gas(data))
        root_receipt = self.provenance.registerBatchRoot(tree.root, n, "ipfs://" + "b" * 59, sender=self.creator)
        root_data = bytes(root_receipt.transaction.data)
        root_charged = max(int(root_receipt.gas_used), floor_gas(root_data))
        # Claim member 17 of the root-only batch (the same tree): the proof comes from the manifest.
        root_batch = int(root_receipt.events.filter(self.provenance.BatchCommitted)[0].batchId)
        member = records[17]
        claim = self.provenance.claimFromBatch(
            root_batch, 17, member.as_tuple(), tree.proof(17), list(member.license_ids), sender=self.creator
        )
        return {
            f"batch_calldata_gas_per_asset_{n}": round(charged / n, 1),
            f"batch_calldata_gas_used_per_asset_{n}": round(int(receipt.gas_used) / n, 1),
            f"batch_calldata_floor_per_asset_{n}": round(floor_gas(data) / n, 1),
            f"batch_root_gas_per_asset_{n}": round(root_charged / n, 1),
            "claim_from_batch_gas": int(claim.gas_used),
            f"l1_data_gas_per_asset_op_stack_batch_calldata_{n}": round(self.l1_data_gas(receipt) / n, 1),
            f"l1_data_gas_per_asset_op_stack_batch_root_{n}": round(self.l1_data_gas(root_receipt) / n, 1),
            "l1_data_gas_per_asset_op_stack_claim_from_batch": self.l1_data_gas(claim),
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
        _, receipt = self.register(tuple(p for p, _ in pairs), tuple(lic for _, lic in pairs))
        return {"derivative_max_parents_gas": int(receipt.gas_used)}

    def settlement(self, payers: int = 16, assets: int = 12) -> dict[str, float]:
        chain_id = int(self.chain.chain_id)
        channels = []
        for _ in range(assets):
            rec, _ = self.register()
            channels.append((rec.content_digest, self.terms(rec.content_digest)))
        signers = self.accounts[:payers]
        for p in signers:
            self.licenses.deposit(ETH, self.service.address, 10**17, sender=p, value=10**17)
        deadline = int(self.chain.pending_timestamp) + 86_400
        totals: dict[tuple[str, int], int] = {}

        def batch() -> list[tuple[Voucher, bytes]]:
            out = []
            # Sorted by asset, then payer: each asset's revenue is credited once per batch.
            for asset, terms_id in channels:
                for p in signers:
                    key = (str(p.address), terms_id)
                    totals[key] = totals.get(key, 0) + PER_USE * self.rng.randint(1, 1_000)
                    v = Voucher(str(p.address), str(self.service.address), asset, terms_id, totals[key], deadline)
                    out.append((v, sign_voucher(v, p.private_key, chain_id, str(self.licenses.address))))
            return out

        n = payers * assets
        first = self.settle(batch())
        again = self.settle(batch())
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
        bench.licenses.deposit(ETH, bench.service.address, 10**16, sender=p, value=10**16)
        rec, _ = bench.register()
        channels.append((p, rec.content_digest, bench.terms(rec.content_digest)))
    deadline = int(bench.chain.pending_timestamp) + 86_400

    def batch(uses: int) -> list[tuple[Voucher, bytes]]:
        out = []
        for p, asset, terms_id in channels:
            v = Voucher(str(p.address), str(bench.service.address), asset, terms_id, PER_USE * uses, deadline)
            out.append((v, sign_voucher(v, p.private_key, chain_id, str(bench.licenses.address))))
        return out

    first = bench.settle(batch(10))
    again = bench.settle(batch(20))
    return {
        f"settle_gas_per_new_channel_worst_{n}": round(int(first.gas_used) / n, 1),
        f"settle_gas_per_voucher_worst_{n}": round(int(again.gas_used) / n, 1),
        f"settle_gas_worst_{n}": int(first.gas_used),
    }


VALIDATION_SIZES = (1, 16, 64, 256)
"""Assets per ERC-8004 validation request (1: a request per asset, the baseline; 256: MAX_ASSETS)."""


def validation(bench: Bench) -> dict[str, float]:
    """ERC-8004 zkML validation per covered asset: `validationRequest` plus `ZkmlValidator.respond`
    for a chunk of n assets attested in one `attestInference` (through a TestVerifier: the
    validator reads only what the attestation recorded), n in VALIDATION_SIZES."""
    from agents.core.validation import ValidationDomain
    from agents.deploy.erc8004 import deploy_agent_registries
    from zkml.evm import proven_digest

    field = 21888242871839275222246405745257275088548364400416034343698204186575808495617
    developer, creator = bench.accounts[1], bench.creator
    bench.models.registerModel((digest(bench.rng), digest(bench.rng), b"\x00" * 32, 0, 0, 0, URI), sender=developer)
    head = int(bench.models.modelCount())
    verifier = developer.deploy(bench.project.TestVerifier)
    bench.models.bindVerifier(head, verifier, digest(bench.rng), 100, 50, sender=developer)
    registries = deploy_agent_registries(
        bench.project, bench.accounts[0], int(bench.chain.chain_id), str(bench.provenance.address), "http://x/v/"
    )
    identity = bench.project.IdentityRegistry.at(registries.identity)
    validations = bench.project.ValidationRegistry.at(registries.validation)
    validator = bench.project.ZkmlValidator.at(registries.validator)
    agent = int(identity.register("https://x/agent.json", sender=creator).decode_logs(identity.Registered)[0].agentId)
    domain = ValidationDomain(int(bench.chain.chain_id), str(validator.address), str(bench.provenance.address))
    figures: dict[str, float] = {}
    for n in VALIDATION_SIZES:
        records = []
        for start in range(0, n, MANY):
            chunk = [bench.record() for _ in range(min(MANY, n - start))]
            chunk = [
                AssetRecord(
                    r.content_digest,
                    r.creator,
                    r.model_id,
                    r.params_digest,
                    (int.from_bytes(r.input_commitment, "big") % field).to_bytes(32, "big"),
                    r.parents,
                    r.metadata_uri,
                )
                for r in chunk
            ]
            bench.provenance.registerMany([r.as_tuple() for r in chunk], [[] for _ in chunk], sender=creator)
            records += chunk
        seqs = [int(bench.provenance.getAsset(r.content_digest).seq) for r in records]
        instances = [int.from_bytes(r.input_commitment, "big") for r in records]
        instances += [200] * n + [proven_digest(r.content_digest) for r in records]
        proof = keccak(encode(["uint256[]"], [instances]))
        bench.provenance.attestInference(head, seqs, proof, instances, sender=creator)
        batch = domain.batch(head, [r.content_digest for r in records])
        salt = digest(bench.rng)
        request_hash = batch.request_hash(agent, salt)
        asked = validations.validationRequest(validator, agent, "https://x/r", request_hash, sender=creator)
        answered = validator.respond(request_hash, salt, head, batch.assets, sender=creator)
        assert answered.decode_logs(validator.Answered)[0].response == 100
        figures[f"validation_gas_per_asset_{n}"] = round((int(asked.gas_used) + int(answered.gas_used)) / n, 1)
        if n == 1:
            figures["validation_request_gas_1"] = int(asked.gas_used)
            figures["validation_response_gas_1"] = int(answered.gas_used)
    return figures


def table(figures: dict[str, float]) -> list[tuple[str, float, str, str, str]]:
    """Rows of (operation, L2 gas, L1 data gas per asset or '-', baseline, target)."""
    base = figures["erc721_mint_baseline_gas"]
    base_l1 = figures["l1_data_gas_op_stack_erc721_mint_baseline"]

    def l1(path: str) -> str:
        return f"{figures['l1_data_gas_per_asset_op_stack_' + path]:,}"

    return [
        (
            "register one asset (full record)",
            figures["register_single_gas"],
            l1("register_single"),
            f"{base:,} ERC-721 mint (L1 {base_l1:,})",
            "-",
        ),
        (
            f"registerMany, per asset @{MANY}",
            figures[f"register_many_gas_per_asset_{MANY}"],
            l1(f"register_many_{MANY}"),
            f"{base:,} (L1 {base_l1:,})",
            "-",
        ),
        (
            f"batch, leaves in calldata, per asset @{BATCH}",
            figures[f"batch_calldata_gas_per_asset_{BATCH}"],
            l1(f"batch_calldata_{BATCH}"),
            f"{base:,} (L1 {base_l1:,})",
            "<= 1,500",
        ),
        (
            "  of which EIP-7623 floor per asset",
            figures[f"batch_calldata_floor_per_asset_{BATCH}"],
            "-",
            "1,280 (32-byte leaf)",
            "-",
        ),
        (
            f"batch, root only, per asset @{BATCH}",
            figures[f"batch_root_gas_per_asset_{BATCH}"],
            l1(f"batch_root_{BATCH}"),
            f"{base:,} (L1 {base_l1:,})",
            "<= 100",
        ),
        ("claim one batch member as a full record", figures["claim_from_batch_gas"], l1("claim_from_batch"), "-", "-"),
        ("purchase a licence (ETH)", figures["purchase_gas"], "-", "-", "-"),
        (
            "settle, per voucher, 192 (16 payers x 12 assets), settled channels",
            figures["settle_gas_per_voucher_192"],
            "-",
            "-",
            "<= 15,000",
        ),
        (
            "settle, per voucher, 192 (16 x 12), new channels",
            figures["settle_gas_per_new_channel_192"],
            "-",
            "-",
            "<= 30,000",
        ),
        (
            "settle, per voucher, 192 payers x 192 assets, settled channels",
            figures["settle_gas_per_voucher_worst_192"],
            "-",
            "-",
            "-",
        ),
        (
            "settle, per voucher, 192 x 192, new channels (worst case)",
            figures["settle_gas_per_new_channel_worst_192"],
            "-",
            "-",
            "-",
        ),
        ("  whole worst-case settle call (192 vouchers)", figures["settle_gas_worst_192"], "-", "-", "< 15,000,000"),
        ("distribute an asset's revenue", figures["distribute_gas"], "-", "-", "-"),
        ("withdraw (ETH)", figures["withdraw_gas"], "-", "-", "-"),
        ("derivative with MAX_PARENTS=16 parents", figures["derivative_max_parents_gas"], "-", "-", "< 15,000,000"),
        *(
            (
                f"ERC-8004 zkML validation, request + response, per asset @{n}",
                figures[f"validation_gas_per_asset_{n}"],
                "-",
                f"{figures['validation_gas_per_asset_1']:,} (a request per asset)",
                "-",
            )
            for n in VALIDATION_SIZES[1:]
        ),
    ]


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
        # The service the vouchers name: an account of its own, apart from every payer (it pays
        # for its settle calls).
        service = accounts.test_accounts.generate_test_account()
        test_accounts[0].transfer(service, 10**19)
        bench = Bench(project, chain, test_accounts, service)
        click.echo(f"network {choice}, chain id {chain.chain_id}; measuring ...", err=True)
        figures: dict[str, float] = {}
        steps: list[Callable[[], dict[str, Any]]] = [
            bench.single_and_baseline,
            bench.register_many,
            bench.batches,
            bench.licensing,
            bench.derivative,
            bench.settlement,
        ]
        for step in steps:
            figures.update(step())
            click.echo(f"  {step.__name__} done ({time.monotonic() - started:.0f} s)", err=True)
        figures.update(settlement_worst(bench, accounts))
        click.echo(f"  settlement_worst done ({time.monotonic() - started:.0f} s)", err=True)
        figures.update(validation(bench))
        click.echo(f"  validation done ({time.monotonic() - started:.0f} s)", err=True)

    rows = table(figures)
    width = max(len(r[0]) for r in rows)
    click.echo(f"{'operation':<{width}}  {'proofmint gas':>14}  {'L1 data gas':>11}  {'baseline':>30}  {'target':>12}")
    click.echo(f"{'':<{width}}  {'(L2 gasUsed)':>14}  {'(OP, Fjord)':>11}")
    click.echo("-" * (width + 77))
    for name, value, l1, baseline, target in rows:
        click.echo(f"{name:<{width}}  {value:>14,}  {l1:>11}  {baseline:>30}  {target:>12}")
    click.echo(
        "L1 data gas: per asset, of the mined transaction's signed bytes on an OP-stack chain under Fjord "
        "(FastLZ size through the Fjord regression, 16 gas a byte; paid at the L1 base fee, apart from L2 gas); "
        f"signed bytes {', '.join(sorted(bench.signed_sources))}, each checked against its transaction hash"
    )
    base = figures["erc721_mint_baseline_gas"]
    calldata_x = base / figures[f"batch_calldata_gas_per_asset_{BATCH}"]
    root_x = base / figures[f"batch_root_gas_per_asset_{BATCH}"]
    click.echo(f"batch vs one ERC-721 mint per asset: {calldata_x:.0f}x less (calldata), {root_x:.0f}x less (root)")
    click.echo(json.dumps(figures, sort_keys=True))


if __name__ == "__main__":
    main()
