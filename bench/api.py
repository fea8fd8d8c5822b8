"""API benchmark: `python bench/api.py [--assets N] [--seconds S] [--concurrency C] [--payers P]
[--chain embedded|anvil]` (or `make bench-api`).

On the embedded chain (or anvil), with assets the pipeline made and registered, metered terms on
each and a payer's escrow, one run, side by side with its baseline:
- mixed read load on loopback (asset lists and searches, asset pages, terms, metadata by CID,
  models, health) from a client in another process, C connections for S seconds: requests/s
  and p99 latency; baseline: a bare aiohttp server answering one static JSON body (the
  framework's ceiling on this machine, same client);
- voucher signature verifications per second on one core (`agents.api.paywall.signer_of`, the
  check the paywall runs); baseline: eth-account's `Account.recover_message` of the same typed
  data; and the whole paywall check (signature, terms, channel, escrow, durable book, journal)
  per second, P payers at once (16), each paying 10 uses on a channel per asset, as the API runs
  it (checks that come together go in one batch; chain figures from the licence index that
  events keep current, `agents.api.license_index`) beside the same checks reading the chain each
  time (the paywall before the index); and one payer's checks one at a time;
- a paid fetch (`PayingClient.fetch`: sign the next voucher, one round trip, served after every
  check) p50 and p99; baseline: a free fetch of the asset's metadata by CID.
The last line is one JSON object.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import click

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FRONT = ["generator", "curator", "publisher", "registrar"]
ETH = "0x" + "00" * 20
FINNEY = 10**15
SERVICE = "0x" + "5e" * 20  # any service: verification alone never reads it
USES = 10  # vouchers per channel in the paywall checks
CHAINS = {"anvil": "ethereum:local:foundry", "embedded": "ethereum:local:test"}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def load(urls: list[str], seconds: float, concurrency: int) -> tuple[int, int, list[float]]:
    """Runs in a separate process: GETs `urls` round robin on `concurrency` connections for
    `seconds`; (requests, failures, latencies in ms)."""
    import aiohttp

    async def main() -> tuple[int, int, list[float]]:
        latencies: list[float] = []
        failures = 0
        deadline = time.perf_counter() + seconds
        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(connector=connector) as session:

            async def worker(offset: int) -> None:
                nonlocal failures
                i = offset
                while time.perf_counter() < deadline:
                    url = urls[i % len(urls)]
                    i += 1
                    started = time.perf_counter()
                    async with session.get(url) as response:
                        await response.read()
                        if response.status != 200:
                            failures += 1
                    latencies.append((time.perf_counter() - started) * 1_000)

            await asyncio.gather(*(worker(k * 7) for k in range(concurrency)))
        return len(latencies), failures, latencies

    return asyncio.run(main())


def load_in_process(urls: list[str], seconds: float, concurrency: int) -> tuple[float, float, int]:
    context = multiprocessing.get_context("spawn")
    with context.Pool(1) as pool:
        count, failures, latencies = pool.apply(load, (urls, seconds, concurrency))
    return count / seconds, percentile(latencies, 0.99), failures


async def make_assets(parts: Any, count: int, requester: str) -> list[Any]:
    from agents.app.wiring import build_agents
    from agents.core.requests import GenerationRequest
    from agents.runtime import jobs
    from media.dataset import compositions

    pool = sorted(c.caption for c in compositions("test"))
    rng = random.Random(5)
    for i in range(count):
        request = GenerationRequest(prompt=rng.choice(pool), seed=50_000 + i)
        await parts.journal.call(jobs.submit_request, parts.journal, request, requester=requester, source="bench")
    agents = build_agents(parts, names=FRONT, register_batch=count, linger_s=0.5, idle=0.05, withdraw_every_s=None)
    await agents.start()
    try:
        await agents.until(
            lambda c: not any(c.get(s) for s in ("requested", "generated", "curated", "published")), within_s=900
        )
    finally:
        await agents.stop()
    return [*await parts.journal.call(parts.journal.at_stage, jobs.DELIVERED)]


def verification_rates(count: int) -> tuple[float, float]:
    """signer_of per second vs eth-account's recover_message per second, one thread."""
    from eth_account import Account

    from agents.api.paywall import signer_of
    from agents.core.settlement import SignedVoucher
    from agents.core.vouchers import Voucher, sign_voucher, signable_voucher

    manager = "0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0"
    key = "0x" + "42" * 32
    payer = Account.from_key(key).address
    vouchers = []
    for i in range(count):
        v = Voucher(payer, SERVICE, i.to_bytes(32, "big"), 1 + i % 5, (i + 1) * 1_000, 2**40)
        vouchers.append(SignedVoucher(v, sign_voucher(v, key, 1337, manager)))
    started = time.perf_counter()
    for sv in vouchers:
        assert signer_of(sv, 1337, manager) == payer
    ours = count / (time.perf_counter() - started)
    started = time.perf_counter()
    for sv in vouchers:
        assert Account.recover_message(signable_voucher(sv.voucher, 1337, manager), signature=sv.signature) == payer
    baseline = count / (time.perf_counter() - started)
    return ours, baseline


def fund_payers(ape: Any, licenses: Any, operator: Any, count: int, service: str) -> list[Any]:
    """`count` new payers (eth-account keys), each given ETH for gas and depositing a finney of
    escrow with `service` (signed with its own key, sent raw)."""
    from eth_account import Account

    web3 = ape.chain.provider.web3
    chain_id = int(web3.eth.chain_id)
    payers = [Account.create() for _ in range(count)]
    for payer in payers:
        operator.transfer(payer.address, 10**17)
        built = licenses.functions.deposit(ETH, service, FINNEY).build_transaction(
            {"from": payer.address, "value": FINNEY, "nonce": 0, "chainId": chain_id}
        )
        raw = payer.sign_transaction(built).raw_transaction
        receipt = web3.eth.wait_for_transaction_receipt(web3.eth.send_raw_transaction(raw))
        assert receipt["status"] == 1, "a payer's deposit failed"
    return payers


def signed_uses(
    payer: Any,
    service: str,
    assets: list[Any],
    terms: dict[str, int],
    chain_id: int,
    manager: str,
    deadline: int,
    uses: int,
) -> list[tuple[Any, bytes]]:
    """`uses` vouchers (one use more each) on one channel per asset, for `payer`."""
    from agents.core.settlement import SignedVoucher
    from agents.core.vouchers import Voucher, sign_voucher

    signed = []
    for job in assets:
        digest = bytes.fromhex(job.payload["sha256"])
        for use in range(1, uses + 1):
            v = Voucher(str(payer.address), service, digest, terms[job.key], use, deadline)
            signed.append((SignedVoucher(v, sign_voucher(v, payer.key, chain_id, manager)), digest))
    return signed


async def check_rate(paywall: Any, per_payer: list[list[tuple[Any, bytes]]]) -> float:
    """Paywall checks per second: each payer's vouchers one after another, the payers at once."""

    async def pay(vouchers: list[tuple[Any, bytes]]) -> None:
        for sv, digest in vouchers:
            await paywall.accept(sv, asset=digest, terms_id=sv.voucher.terms_id)

    started = time.perf_counter()
    await asyncio.gather(*(pay(v) for v in per_payer))
    return sum(len(v) for v in per_payer) / (time.perf_counter() - started)


async def measure(asset_count: int, seconds: float, concurrency: int, fetches: int, payers: int) -> dict[str, Any]:
    import aiohttp
    import ape
    from aiohttp import web

    from agents.api.chainview import ChainView
    from agents.api.client import PayingClient
    from agents.api.paywall import MIN_DEADLINE_S, ChannelBook, Paywall
    from agents.api.serve import DEPS, api_app, serve
    from agents.app.wiring import open_local
    from tests.agents.runtime.anvil import free_port

    accounts = ape.accounts.test_accounts
    operator, payer = accounts[0], accounts[5]
    state = Path(tempfile.mkdtemp(prefix="proofmint-bench-api-"))
    try:
        setup, parts = await open_local(
            ape, ROOT, state, originators=[(str(accounts[2].address), 1_000_000)], head_sizes=(1,), names=FRONT
        )
        try:
            click.echo(f"making {asset_count} assets with the pipeline ...", err=True)
            assets = await make_assets(parts, asset_count, str(operator.address))
            licenses = ape.project.LicenseManager.at(setup.addresses["LicenseManager"])
            terms = {}
            for job in assets:
                digest = bytes.fromhex(job.payload["sha256"])
                licenses.attachTerms(
                    digest,
                    {
                        "currency": ETH,
                        "price": 10 * FINNEY,
                        "pricePerUse": 1,
                        "duration": 0,
                        "derivativeRoyaltyBps": 0,
                        "commercialUse": True,
                        "derivativesAllowed": True,
                    },
                    sender=operator,
                )
                terms[job.key] = int(licenses.termsCount())
            service = str(operator.address)  # the API's service: the operator, whose key the parts hold
            licenses.deposit(ETH, service, FINNEY, sender=payer, value=FINNEY)

            api_port, bare_port = free_port(), free_port()
            app = api_app(parts, state / "api", rate_per_s=1e9, burst=10**9)
            runner = await serve(app, port=api_port)
            deps = app[DEPS]
            assert deps.paywall.service == service
            bare = web.Application()
            static = json.dumps({"status": "ok", "items": [{"digest": "0x" + "ab" * 32}] * 4}).encode()
            bare.router.add_get("/", lambda _: web.Response(body=static, content_type="application/json"))
            bare_runner = await serve(bare, port=bare_port)
            try:
                api = f"http://127.0.0.1:{api_port}"
                digests = ["0x" + j.payload["sha256"] for j in assets]
                mixed = [
                    f"{api}/v1/assets?limit=20",
                    f"{api}/v1/assets?q=circle",
                    *[f"{api}/v1/assets/{d}" for d in digests[:4]],
                    *[f"{api}/v1/assets/{d}/terms" for d in digests[:2]],
                    *[f"{api}/v1/content/{j.payload['metadata_cid']}" for j in assets[:4]],
                    f"{api}/v1/terms/1",
                    f"{api}/v1/models",
                    f"{api}/health",
                ]
                click.echo(f"mixed reads: {concurrency} connections for {seconds} s ...", err=True)
                loop = asyncio.get_running_loop()
                # the load runs in a process of its own; this loop keeps serving meanwhile
                rps, p99, failures = await loop.run_in_executor(None, load_in_process, mixed, seconds, concurrency)
                bare_rps, bare_p99, _ = await loop.run_in_executor(
                    None, load_in_process, [f"http://127.0.0.1:{bare_port}/"], seconds, concurrency
                )
                click.echo("voucher verification ...", err=True)
                ours, baseline = await asyncio.to_thread(verification_rates, 2_000)
                # the whole paywall check, straight (no HTTP): `payers` payers at once, each paying
                # one use after another on a channel per asset. The API's paywall (chain figures
                # from the licence index, kept current by events) against the same checks reading
                # the chain each time (ChainView), each with a channel book of its own.
                chain_id = int(ape.chain.chain_id)
                click.echo(f"paywall checks: {payers} payers at once ...", err=True)
                manager = deps.chain.client.contract("LicenseManager")
                funded = await asyncio.to_thread(fund_payers, ape, manager, operator, 2 * payers + 1, service)
                deadline = int(ape.chain.pending_timestamp) + 2 * MIN_DEADLINE_S  # the paywall takes a day at least
                vouchers = [
                    signed_uses(account, service, assets, terms, chain_id, deps.chain.settlement, deadline, USES)
                    for account in funded
                ]
                full_checks = await check_rate(deps.paywall, vouchers[:payers])
                serial_checks = await check_rate(deps.paywall, [vouchers[-1]])  # one payer: one at a time
                direct = Paywall(
                    ChannelBook(state / "baseline-channels.db"),
                    ChainView(deps.chain.client, chain_id),
                    deps.paywall._submit,
                    service=service,
                )
                baseline_checks = await check_rate(direct, vouchers[payers : 2 * payers])
                direct.book.close()
                click.echo(f"paid fetches: {fetches} ...", err=True)
                async with aiohttp.ClientSession() as session:
                    client = PayingClient(session, payer.private_key)
                    paid: list[float] = []
                    for i in range(fetches):
                        url = f"{api}/v1/assets/{digests[i % len(digests)]}/content"
                        started = time.perf_counter()
                        await client.fetch(url)
                        paid.append((time.perf_counter() - started) * 1_000)
                    # the first fetch of each asset also asks for the offer and catches up from the
                    # payer's own voucher the paywall shows (the uses paid above)
                    paid = paid[len(digests) :]
                    free: list[float] = []
                    for i in range(fetches):
                        url = f"{api}/v1/content/{assets[i % len(assets)].payload['metadata_cid']}"
                        started = time.perf_counter()
                        async with session.get(url) as response:
                            await response.read()
                        free.append((time.perf_counter() - started) * 1_000)
            finally:
                await runner.cleanup()
                await bare_runner.cleanup()
        finally:
            parts.close()
    finally:
        shutil.rmtree(state, ignore_errors=True)
    return {
        "rps": rps,
        "p99": p99,
        "failures": failures,
        "bare_rps": bare_rps,
        "bare_p99": bare_p99,
        "verify": ours,
        "verify_baseline": baseline,
        "full_checks": full_checks,
        "serial_checks": serial_checks,
        "baseline_checks": baseline_checks,
        "paid": paid,
        "free": free,
    }


@click.command()
@click.option("--assets", "asset_count", type=click.IntRange(2, 64), default=8, show_default=True)
@click.option("--seconds", type=click.FloatRange(1, 600), default=10.0, show_default=True)
@click.option("--concurrency", type=click.IntRange(1, 512), default=32, show_default=True)
@click.option("--fetches", type=click.IntRange(20, 10_000), default=200, show_default=True)
@click.option("--payers", type=click.IntRange(1, 256), default=16, show_default=True, help="Payers checked at once")
@click.option(
    "--chain",
    type=click.Choice(sorted(CHAINS)),
    default="embedded",
    show_default=True,
    help="The chain: embedded (py-evm in this process: each chain read costs milliseconds of this "
    "process's CPU) or anvil (a node of its own through ape-foundry, over JSON-RPC, as the API meets a "
    "node in production)",
)
def main(asset_count: int, seconds: float, concurrency: int, fetches: int, payers: int, chain: str) -> None:
    from ape import networks
    from ape.logging import LogLevel, logger

    from agents.runtime.processes import quiet_libraries

    quiet_libraries()
    logger.set_level(LogLevel.ERROR)
    with networks.parse_network_choice(CHAINS[chain]):
        r = asyncio.run(measure(asset_count, seconds, concurrency, fetches, payers))
    paid_p50, paid_p99 = statistics.median(r["paid"]), percentile(r["paid"], 0.99)
    free_p50 = statistics.median(r["free"])
    click.echo("")
    click.echo(f"{'figure':<48} {'proofmint':>12} {'baseline':>12}  baseline is")
    click.echo(f"{'requests/s, mixed reads (loopback)':<48} {r['rps']:>12.0f} {r['bare_rps']:>12.0f}  bare aiohttp")
    click.echo(f"{'p99 ms, mixed reads':<48} {r['p99']:>12.2f} {r['bare_p99']:>12.2f}  bare aiohttp, static JSON")
    click.echo(f"{'  non-200 answers under load':<48} {r['failures']:>12}")
    click.echo(
        f"{'voucher signature checks/s, one core':<48} {r['verify']:>12.0f} {r['verify_baseline']:>12.0f}  eth-account"
    )
    click.echo(
        f"{f'whole paywall checks/s, {payers} payers at once':<48} {r['full_checks']:>12.0f}"
        f" {r['baseline_checks']:>12.0f}  chain read each check"
    )
    click.echo(f"{'  one payer, one check at a time':<48} {r['serial_checks']:>12.0f}")
    click.echo(f"{'paid fetch p50 ms (sign, check, serve)':<48} {paid_p50:>12.2f} {free_p50:>12.2f}  free fetch by CID")
    click.echo(f"{'paid fetch p99 ms':<48} {paid_p99:>12.2f}")
    figures = {
        "requests_per_s": round(r["rps"], 1),
        "p99_ms": round(r["p99"], 2),
        "voucher_verifications_per_s": round(r["verify"], 1),
        "paid_fetch_p50_ms": round(paid_p50, 2),
        "paid_fetch_p99_ms": round(paid_p99, 2),
        "paywall_checks_per_s": round(r["full_checks"], 1),
        "baseline_paywall_checks_per_s": round(r["baseline_checks"], 1),
        "paywall_checks_per_s_one_payer": round(r["serial_checks"], 1),
        "paywall_payers": payers,
        "baseline_requests_per_s": round(r["bare_rps"], 1),
        "baseline_verifications_per_s": round(r["verify_baseline"], 1),
        "free_fetch_p50_ms": round(free_p50, 2),
        "concurrency": concurrency,
    }
    click.echo(json.dumps(figures))


if __name__ == "__main__":
    main()
