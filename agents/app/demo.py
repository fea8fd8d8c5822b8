"""The main job's run: `make demo` (`ape run demo [--count N] [--out DIR]`, the command in
`scripts/demo.py`, which imports this module only when it runs), on the embedded chain.

One run, start to finish, with progress on the console:
1. deploy the core contracts; register the shipped text-to-image model (with a training-data
   originators' tree) and the curation head's circuits (EZKL verifiers deployed and bound);
2. the agents (generator, curator, publisher, registrar, prover, settlement) turn N prompts into
   registered, zk-attested assets with signed C2PA sidecars in the content store;
3. the creator sets licence terms; one licensee buys licences, another deposits escrow with the
   operator's service and pays per use with signed cumulative vouchers naming that service,
   which the settlement agent settles in a batch;
4. royalties are distributed and withdrawn: the creator by the agent's schedule, the model
   developer and a data originator by their own transactions;
5. a report: `<out>/report.html` (images, provenance, zk status, where the money went) and a
   console summary.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import random
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import ape
import click

from agents.app.report import (
    AssetRow,
    CostRow,
    Distribution,
    EscrowAccount,
    Flow,
    Report,
    VoucherOutcome,
    distribution_flows,
    escrow_accounts,
    eth,
    outcome_counts,
    render,
    usd,
    voucher_outcome,
    voucher_summary,
)
from agents.app.wiring import Parts, build_agents, open_local
from agents.core import costs
from agents.core.errors import PermanentError
from agents.core.requests import GenerationRequest
from agents.core.settlement import SignedVoucher
from agents.core.toolchain import project_root
from agents.core.vouchers import Voucher, sign_voucher
from agents.daemons.pipeline import DEFAULT_DAEMONS
from agents.daemons.runner import all_final
from agents.daemons.upscale import child_key
from agents.deploy.operator import cli_errors, target_of
from agents.models.head import VERDICTS
from agents.runtime import jobs
from agents.runtime.chain import load_abis
from agents.runtime.jobs import submit_voucher
from agents.runtime.processes import quiet_libraries
from agents.storage.cid import Cid
from agents.storage.credentials import CredentialError, read_sidecar

ETH = "0x0000000000000000000000000000000000000000"
FINNEY = 10**15


class Console:
    def __init__(self) -> None:
        self.started = time.monotonic()
        self._last = ""

    def step(self, text: str) -> None:
        click.echo(f"[{time.monotonic() - self.started:7.1f}s] {text}")

    def counts(self, counts: dict[str, int], what: str = "jobs") -> None:
        line = ", ".join(f"{stage} {n}" for stage, n in sorted(counts.items()))
        if line != self._last:
            self._last = line
            self.step(f"  {what}: {line}")


def prompts(count: int, seed: int) -> list[str]:
    from media.dataset import compositions

    captions = sorted(c.caption for c in compositions("test"))
    return random.Random(seed).sample(captions, count)


async def run_pipeline(
    parts: Parts, requests: list[GenerationRequest], requester: str, console: Console, names: list[str]
) -> Any:
    """The requests through the daemons in `names`, until every job is final (and, with the
    upscaler, every registered base has its upscale job)."""
    agents = build_agents(parts, names=names, register_batch=max(2, len(requests)), linger_s=3.0, withdraw_every_s=2.0)
    for request in requests:
        await parts.journal.call(jobs.submit_request, parts.journal, request, requester=requester, source="cli")
    final = all_final()

    def done(counts: dict[str, int]) -> bool:
        if not final(counts):
            return False
        if "upscaler" not in names:
            return True
        bases = [j for stage in (jobs.ATTESTED, jobs.UNPROVEN) for j in parts.journal.at_stage(stage)]
        return all(parts.journal.get(child_key(j.key)) is not None for j in bases if "upscale_of" not in j.payload)

    await agents.start()
    try:
        await agents.until(done, within_s=1_800, progress=console.counts)
    finally:
        await agents.stop()
    return agents


async def settle_vouchers(parts: Parts, vouchers: list[SignedVoucher], console: Console) -> None:
    for voucher in vouchers:
        await parts.journal.call(submit_voucher, parts.journal, voucher)
    agents = build_agents(parts, names=["settlement"], linger_s=1.0, withdraw_every_s=1.0)

    def progress(counts: dict[str, int]) -> None:  # the journal's stages, of vouchers only
        handled = counts.get(jobs.SETTLED, 0) + counts.get(jobs.SKIPPED, 0) + counts.get(jobs.FAILED, 0)
        console.counts({"waiting": counts.get(jobs.RECEIVED, 0), "handled": handled}, what="vouchers")

    await agents.start()
    try:
        await agents.until(all_final(), within_s=600, progress=progress)
        # one scheduled withdrawal after the settlement has landed
        settle = agents.stages[0]
        await asyncio.sleep(1.5)
        withdrawn = await settle.withdraw_due([ETH])  # type: ignore[attr-defined]
        if withdrawn:
            console.step(
                f"settlement agent withdrew the operator's {eth(withdrawn[ETH])} ETH "
                "(its creator share and the protocol fee, so far)"
            )
    finally:
        await agents.stop()


def run(network: Any, provider: Any, count: int, seed: int, out: Path, upscale: bool) -> None:
    """`ape run demo`: the whole product once on a development chain (see the module docstring);
    `network` and `provider` are what ape's `ConnectedProviderCommand` passes."""
    with cli_errors():
        target = target_of(network, provider, ape.chain.chain_id)
        if target.live:
            raise PermanentError("the demo uses test accounts; run it on the embedded chain or a local node")
        quiet_libraries()
        root = project_root()
        console = Console()
        state = root / ".cache" / "demo"
        with only_run(root / ".cache"):
            if state.exists():
                shutil.rmtree(state)  # the embedded chain is new in every run; so is the agents' state
            state.mkdir(parents=True)
            out.mkdir(parents=True, exist_ok=True)
            asyncio.run(main(root, state, out, count, seed, target.choice, console, upscale))


@contextlib.contextmanager
def only_run(cache: Path) -> Iterator[None]:
    """Hold the demo's lock (`cache/demo.lock`, released by the kernel if the holder dies) for a
    run: its agents' state (`cache/demo`) is its own and removed by the next run, so a second
    demo started beside it would delete the first one's. PermanentError saying so, at once."""
    cache.mkdir(parents=True, exist_ok=True)
    with (cache / "demo.lock").open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise PermanentError(
                "another demo is running in this checkout (it holds .cache/demo.lock); wait for it to end"
            ) from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


async def main(
    root: Path, state: Path, out: Path, count: int, seed: int, network: str, console: Console, upscale: bool = True
) -> None:
    accounts = ape.accounts.test_accounts
    names = [*DEFAULT_DAEMONS, "upscaler"] if upscale else list(DEFAULT_DAEMONS)
    operator, developer, origin_a, origin_b, buyer, payer, patron = (accounts[i] for i in range(7))
    console.step(f"network {network}; building the curation head's circuits (cached after the first run)")
    setup, parts = await open_local(
        ape,
        root,
        state,
        originators=[(str(origin_a.address), 600_000), (str(origin_b.address), 400_000)],
        progress=console.step,
        sender_poll=0.02,
        names=names,
    )
    journal = parts.journal
    requests = [GenerationRequest(prompt=p, seed=seed * 1_000 + i) for i, p in enumerate(prompts(count, seed))]
    market = ape.project.GenerationMarket.at(setup.addresses["GenerationMarket"])
    registry = ape.project.ProvenanceRegistry.at(setup.addresses["ProvenanceRegistry"])
    registry.setRegistrar(operator.address, True, sender=patron)  # the patron's assets are made in its name
    price = int(market.price(0))  # the standard lane (IGenerationMarket.Lane.Standard)
    for index, prompt in enumerate(prompts(2, seed + 1)):
        market.requestGeneration(prompt, seed * 1_000 + 500 + index, 25, 1_500, 0, sender=patron, value=price)
    console.step(f"patron {patron.address[:10]} paid {2 * price / 1e18:.3f} ETH on chain for 2 generations")
    count += 2
    upscaling = ", upscale (a derivative of each base)" if upscale else ""
    console.step(
        f"agents: {count} requests (CLI and on-chain) -> generate, curate, publish, register, prove{upscaling}"
    )
    pipeline_started = time.monotonic()
    await run_pipeline(parts, requests, str(operator.address), console, names)
    pipeline_s = time.monotonic() - pipeline_started
    assets = await journal.call(journal.at_stage, jobs.ATTESTED)
    registered = [*assets, *await journal.call(journal.at_stage, jobs.UNPROVEN)]
    upscales = sum(1 for job in assets if "upscale_of" in job.payload)
    console.step(
        f"pipeline done in {pipeline_s:.1f} s: {len(assets)} attested ({upscales} of them upscales), {count} requested"
    )
    if len(registered) < 2:
        raise PermanentError("fewer than two assets were registered; nothing to license (see the report)")

    licenses = ape.project.LicenseManager.at(setup.addresses["LicenseManager"])
    splitter = ape.project.RoyaltySplitter.at(setup.addresses["RoyaltySplitter"])
    delivered = sum(1 for job in registered if job.payload.get("delivery") == "fulfilled")
    console.step(f"market: {delivered} paid requests fulfilled with their assets")
    terms: dict[str, int] = {}
    for job in registered:
        digest = bytes.fromhex(job.payload["sha256"])
        terms_input = {
            "currency": ETH,
            "price": 10 * FINNEY,
            "pricePerUse": FINNEY,
            "duration": 0,
            "derivativeRoyaltyBps": 1_000,
            "commercialUse": True,
            "derivativesAllowed": True,
        }
        # each asset's creator attaches its terms: the patron for the generations it paid for
        creator = patron if str(job.payload.get("creator", "")).lower() == patron.address.lower() else operator
        licenses.attachTerms(digest, terms_input, sender=creator)
        terms[job.key] = int(licenses.termsCount())
    console.step(f"creators attached licence terms to {len(terms)} assets (0.01 ETH per licence, 0.001 ETH per use)")
    bought = registered[: max(1, len(registered) // 2)]
    for job in bought:
        licenses.purchase(terms[job.key], buyer.address, sender=buyer, value=10 * FINNEY)
    console.step(f"licensee {buyer.address[:10]} bought {len(bought)} licences")
    metered = registered[len(bought) :] or registered[:1]
    service = str(operator.address)  # the operator serves the uses and settles: the escrow is with it
    licenses.deposit(ETH, service, 50 * FINNEY, sender=payer, value=50 * FINNEY)
    chain_id, verifying = int(ape.chain.chain_id), str(licenses.address)
    deadline = int(ape.chain.pending_timestamp) + 86_400
    vouchers: list[SignedVoucher] = []
    uses = 0
    for job in metered:
        for cumulative in (2, 5):  # two vouchers per channel: the later one supersedes the first
            v = Voucher(
                str(payer.address),
                service,
                bytes.fromhex(job.payload["sha256"]),
                terms[job.key],
                cumulative * FINNEY,
                deadline,
            )
            vouchers.append(SignedVoucher(v, sign_voucher(v, payer.private_key, chain_id, verifying)))
        uses += 5
    console.step(
        f"agent {payer.address[:10]} deposited 0.05 ETH with the operator's service and signed {len(vouchers)} "
        f"cumulative vouchers ({uses} uses)"
    )
    await settle_vouchers(parts, vouchers, console)
    console.step(f"vouchers: {voucher_summary(await voucher_outcomes(journal))}")

    for job in bought:  # licence revenue waits in the splitter until distributed (anyone may call)
        digest = bytes.fromhex(job.payload["sha256"])
        if int(splitter.pendingRevenueOf(digest, ETH)) > 0:
            splitter.distribute(digest, ETH, sender=operator)
    developer_due = int(splitter.balanceOf(developer.address, ETH))
    splitter.withdraw(ETH, developer.address, sender=developer)
    proof = setup.data_tree.proof(str(origin_a.address))
    splitter.claimDataShare(setup.t2i_model_id, ETH, origin_a.address, 600_000, proof, sender=origin_a)
    origin_due = int(splitter.balanceOf(origin_a.address, ETH))
    splitter.withdraw(ETH, origin_a.address, sender=origin_a)
    console.step(
        f"model developer withdrew {developer_due / 1e18:.6f} ETH; "
        f"data originator A claimed and withdrew {origin_due / 1e18:.6f} ETH"
    )
    for creator in (operator, patron):
        if int(splitter.balanceOf(creator.address, ETH)):
            splitter.withdraw(ETH, creator.address, sender=creator)
    market_fees = int(market.balanceOf(operator.address))
    if market_fees:
        market.withdraw(operator.address, sender=operator)
        console.step(f"operator withdrew {market_fees / 1e18:.6f} ETH of generation fees from the market")

    cast = Cast(operator, developer, origin_a, origin_b, buyer, payer, patron)
    contracts = Contracts(registry, licenses, splitter, market)
    report = await build_report(parts, setup, cast, contracts, count, pipeline_s, network)
    path = out / "report.html"
    path.write_text(render(report), encoding="utf8")
    parts.close()
    click.echo("")
    width = max(len(key) for key, _ in report.summary) + 2
    for key, value in report.summary:
        click.echo(f"  {key:<{width}} {value}")
    click.echo("")
    width = max(len(flow.label) for flow in report.money) + 2
    for flow in report.money:
        click.echo(f"  {flow.label:<{width}} {eth(flow.wei)} ETH")
    total, paid_in = sum(flow.wei for flow in report.money), sum(wei for _, wei in report.paid_in)
    check = "adds up to what was paid in" if total == paid_in else f"paid in {eth(paid_in)} ETH: it does not add up"
    click.echo(f"  {'total':<{width}} {eth(total)} ETH ({check})")
    if report.costs:
        click.echo("")
        click.echo(f"  cost and margin per asset, US dollars ({report.cost_prices})")
        heads = ("asset", "end", *report.cost_stages, "cost", "revenue", "margin")
        click.echo("  " + " ".join(f"{h:>11}" if i > 1 else f"{h:<12}" for i, h in enumerate(heads)))
        for row in report.costs:
            values = [row.by_stage.get(stage, 0.0) for stage in report.cost_stages] + [
                row.cost,
                row.revenue,
                row.margin,
            ]
            click.echo(f"  {row.label[:12]:<12} {row.stage[:12]:<12} " + " ".join(f"{usd(v):>11}" for v in values))
    console.step(f"report: {path}")


class Cast(NamedTuple):
    """The demo's accounts, by the part each plays (named tuples, not dataclasses: ape loads a
    script without registering it in sys.modules, which dataclasses need)."""

    operator: Any
    developer: Any
    origin_a: Any
    origin_b: Any
    buyer: Any
    payer: Any
    patron: Any

    def names(self) -> dict[str, str]:
        """Lower-case address -> role, as the report labels addresses."""
        roles = {
            "operator": self.operator,
            "model developer": self.developer,
            "data originator A": self.origin_a,
            "data originator B": self.origin_b,
            "licensee": self.buyer,
            "payer agent": self.payer,
            "patron": self.patron,
        }
        return {str(account.address).lower(): role for role, account in roles.items()}


class Contracts(NamedTuple):
    registry: Any
    licenses: Any
    splitter: Any
    market: Any


async def voucher_outcomes(journal: Any) -> list[VoucherOutcome]:
    """Every journaled voucher's outcome, by terms id then cumulative amount."""
    outcomes = []
    for stage in (jobs.SETTLED, jobs.SKIPPED, jobs.FAILED, jobs.RECEIVED):
        for job in await journal.call(journal.at_stage, stage):
            if job.kind == jobs.VOUCHER:
                outcomes.append(voucher_outcome(stage, job.payload, job.error))
    return sorted(outcomes, key=lambda o: (o.terms_id, o.payer, o.cumulative))


def _logs(contract: Any, name: str, event: str, **filters: Any) -> list[Any]:
    """Every `event` of `contract` (ABI `name`) since the first block, as web3 decodes it."""
    abi = load_abis(project_root(), [name])[name]
    web3_contract = ape.chain.provider.web3.eth.contract(address=str(contract.address), abi=abi)
    logs = getattr(web3_contract.events, event)().get_logs(from_block=0, argument_filters=filters or None)
    return [log["args"] for log in logs]


def _escrow(licenses: Any) -> list[EscrowAccount]:
    """Each payer's escrow with each service, in ETH, from the deposit and withdrawal events, the
    channels' settled amounts and the balance now."""
    eth_terms = [t for t in range(1, int(licenses.termsCount()) + 1) if str(licenses.getTerms(t)[1]) == ETH]
    deposits = [
        (str(a["payer"]), str(a["service"]), int(a["amount"]))
        for a in _logs(licenses, "LicenseManager", "EscrowDeposited", currency=ETH)
    ]
    withdrawals = [
        (str(a["payer"]), str(a["service"]), int(a["amount"]))
        for a in _logs(licenses, "LicenseManager", "EscrowWithdrawn", currency=ETH)
    ]
    return escrow_accounts(
        deposits,
        withdrawals,
        settled_of=lambda payer, service: sum(int(licenses.settledOf(payer, service, t)) for t in eth_terms),
        held_of=lambda payer, service: int(licenses.escrowOf(payer, ETH, service)[0]),
    )


def _money(
    contracts: Contracts, setup: Any, cast: Cast, escrow: list[EscrowAccount], assets: list[AssetRow]
) -> tuple[list[tuple[str, int]], list[Flow]]:
    """What was paid into the run, and where it ended, from the contracts' events and state."""
    licenses, splitter, market, registry = contracts.licenses, contracts.splitter, contracts.market, contracts.registry
    licence_sales = sum(int(a["price"]) for a in _logs(licenses, "LicenseManager", "LicensePurchased"))
    requested = sum(int(a["fee"]) for a in _logs(market, "GenerationMarket", "GenerationRequested"))
    paid_in = [
        ("licences", licence_sales),
        ("escrow deposits", sum(a.deposited for a in escrow)),
        ("generation fees", requested),
    ]
    creators: dict[bytes, str] = {}

    def creator_of(asset: bytes) -> str:
        if asset not in creators:
            creators[asset] = str(registry.getAsset(asset).creator)
        return creators[asset]

    distributions = [
        Distribution(
            creator=creator_of(bytes(a["asset"])),
            amount=int(a["amount"]),
            creator_share=int(a["creatorShare"]),
            developer_share=int(a["developerShare"]),
            data_share=int(a["dataShare"]),
            parents_share=int(a["parentsShare"]),
            fee=int(a["feeShare"]),
        )
        for a in _logs(splitter, "RoyaltySplitter", "Distributed", currency=ETH)
    ]
    claimed = int(splitter.dataClaimedOf(setup.t2i_model_id, ETH, cast.origin_a.address, 600_000))
    money = distribution_flows(
        distributions,
        names=cast.names(),
        treasury=str(cast.operator.address),  # the deployment names the operator as treasury
        data_claims=[("data originator A", claimed)],
    )
    pending = sum(
        int(splitter.pendingRevenueOf(bytes.fromhex(row.payload["sha256"]), ETH))
        for row in assets
        if "seq" in row.payload
    )
    if pending:
        money.append(Flow("revenue not yet distributed", pending, "other", "in the splitter"))
    fulfilled = sum(int(a["fee"]) for a in _logs(market, "GenerationMarket", "GenerationFulfilled"))
    refunded = sum(int(a["fee"]) for a in _logs(market, "GenerationMarket", "GenerationRefunded"))
    money.append(Flow("generation fees: operator", fulfilled, "market", "for fulfilled requests"))
    if refunded:
        money.append(Flow("generation fees refunded", refunded, "market", "lapsed requests"))
    if requested - fulfilled - refunded:
        money.append(Flow("generation fees held", requested - fulfilled - refunded, "market", "open requests"))
    money.append(Flow("still in escrow", sum(a.held for a in escrow), "escrow", "the payer's, with the service"))
    if withdrawn := sum(a.withdrawn for a in escrow):
        money.append(Flow("escrow taken back by payers", withdrawn, "escrow"))
    return paid_in, money


async def _asset_rows(journal: Any, store: Any, identity: Any, registry: Any) -> list[AssetRow]:
    """Each asset job with its image, its sidecar checked, its metadata name and, when it names an
    attesting model, the attestation as the chain holds it."""
    rows: list[AssetRow] = []
    for stage in (jobs.ATTESTED, jobs.UNPROVEN, jobs.REVIEW, jobs.REJECTED, jobs.FAILED, jobs.CANCELLED):
        for job in await journal.call(journal.at_stage, stage):
            if job.kind != jobs.ASSET:
                continue
            png = await store.get(Cid.parse(job.payload["cid"])) if "cid" in job.payload else None
            ok = None
            if png is not None and "manifest_cid" in job.payload:
                sidecar = await store.get(Cid.parse(job.payload["manifest_cid"]))
                try:
                    await asyncio.to_thread(read_sidecar, png, sidecar, trust_anchors=identity.ca_pem)
                    ok = True
                except CredentialError:
                    ok = False
            name = None
            if "metadata_cid" in job.payload:
                name = str(json.loads(await store.get(Cid.parse(job.payload["metadata_cid"]))).get("name", ""))
            payload = {**job.payload, "error": job.error}
            if "attested_by" in payload:
                attested, score, verdict = registry.attestationOf(
                    bytes.fromhex(payload["sha256"]), payload["attested_by"]
                )
                payload.update(score=int(score), verdict=VERDICTS[int(verdict)], attested_on_chain=bool(attested))
            rows.append(AssetRow(job.key, stage, payload, png, ok, name))
    return rows


async def _cost_rows(
    journal: Any, contracts: Contracts, rows: list[AssetRow], prices: costs.CostPrices
) -> list[CostRow]:
    """Each asset job's cost at `prices` (its settlements' too) beside what it earned: licence
    revenue in the splitter (split and waiting) and, for a fulfilled market request, its fee."""
    settled = await journal.call(jobs.settlements_since, journal, 0.0, most=1_000_000)
    book = costs.Settlements(settled)
    found = []
    for row in rows:
        cost = costs.asset_usd(row.payload, prices, book)
        if not cost["byStage"]:
            continue
        wei = 0
        if "seq" in row.payload:
            digest = bytes.fromhex(row.payload["sha256"])
            wei += int(contracts.splitter.distributedOf(digest, ETH)) + int(
                contracts.splitter.pendingRevenueOf(digest, ETH)
            )
        if row.payload.get("market_request") is not None and row.payload.get("delivery") == "fulfilled":
            wei += int(row.payload.get("fee", 0))
        label = row.payload["sha256"][:10] if "sha256" in row.payload else row.key[:12]
        if "upscale_of" in row.payload:  # an x2 upscale of a base: its own asset
            label = f"{label[:8]} x2"
        found.append(CostRow(label, row.stage, cost["byStage"], cost["usd"], wei / 1e18 * prices.usd_per_eth))
    return found


async def build_report(
    parts: Parts, setup: Any, cast: Cast, contracts: Contracts, count: int, pipeline_s: float, network: str
) -> Report:
    journal, splitter = parts.journal, contracts.splitter
    rows = await _asset_rows(journal, parts.store, parts.signer(), contracts.registry)
    stages: dict[str, int] = {}
    for row in rows:
        stages[row.stage] = stages.get(row.stage, 0) + 1
    vouchers = await voucher_outcomes(journal)
    escrow = _escrow(contracts.licenses)
    paid_in, money = _money(contracts, setup, cast, escrow, rows)
    deposited, withdrawn = (int(x) for x in splitter.totalsOf(ETH))
    pool_total, pool_paid = (int(x) for x in splitter.dataPoolOf(setup.t2i_model_id, ETH))
    held = {
        "escrow": int(splitter.reserveOf(ETH)),
        "unclaimed data shares": pool_total - pool_paid,
        "dust": int(splitter.dustOf(ETH)),
    }
    held["balances and revenue not paid out"] = deposited - withdrawn - sum(held.values())
    report = Report(title="proofmint demo")
    report.summary = [
        ("network", network),
        ("requests (CLI and paid on chain)", str(count)),
        ("assets (journal)", ", ".join(f"{k} {v}" for k, v in sorted(stages.items()))),
        ("vouchers (journal)", ", ".join(f"{n} {outcome}" for outcome, n in outcome_counts(vouchers).items())),
        ("assets registered on chain", str(int(contracts.registry.assetCount()))),
        ("assets zk-attested on chain", str(sum(1 for r in rows if r.payload.get("attested_on_chain")))),
        ("pipeline wall time", f"{pipeline_s:.1f} s"),
        (
            "royalty splitter: paid in / out / held",
            f"{eth(deposited)} / {eth(withdrawn)} / {eth(deposited - withdrawn)} ETH",
        ),
        ("royalty splitter holds", ", ".join(f"{what} {eth(wei)}" for what, wei in held.items()) + " ETH"),
    ]
    prices_file = project_root() / costs.DEFAULT_PRICES
    prices = costs.CostPrices.from_json(prices_file)
    report.costs = await _cost_rows(journal, contracts, rows, prices)
    report.cost_stages = tuple(stage.removeprefix("cost_") for stage in costs.STAGES)
    report.cost_prices = (
        f"prices from {prices_file.relative_to(project_root())}: ${prices.usd_per_cpu_second}/CPU s, "
        f"${prices.usd_per_eth}/ETH, ${prices.usd_per_gb_stored}/GB stored"
    )
    report.assets = rows
    report.paid_in = paid_in
    report.money = money
    report.escrow = escrow
    report.vouchers = vouchers
    report.names = cast.names()
    report.score_scales = {
        int(model_id): int(circuit.settings()["model_output_scales"][0])
        for circuit, model_id in setup.head_models.values()
    }
    report.notes = [
        "The chain is the embedded py-evm chain; it ends with the process, and so does this run's state (.cache/demo).",
        "The curation head that the zk proofs cover has seeded weights: the proof shows that this registered model "
        "scored exactly the registered input, not that the score means anything yet.",
        "The operator is both a creator and the protocol's treasury: its creator share and the protocol fee are "
        "separate bars, and it withdrew both together.",
        f"Data originator B ({cast.origin_b.address}) has not claimed: its share stays in the pool until it does.",
    ]
    return report
