"""The dApp end to end in headless Chromium, with a test wallet injected into the page and backed
by anvil (CHECKLIST 16-18 through a browser): a person connects, opens an asset (provenance, zk
badge, its on-chain lineage graph), buys a licence, deposits escrow with the API's service, signs
a pay-per-use voucher naming that service with eth_signTypedData_v4 and sees the paid image; a
rejected signature and a purchase that would revert send nothing; then the creator, the model
developer and a data originator each split, claim and withdraw what they are owed from the
dashboard, and the licensee asks escrow back, sees when the request unlocks and expires, sees it
expired, and asks again. Every effect is checked on chain. Screenshots are kept in
artifacts/dapp/."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from agents.api.serve import api_app, serve
from agents.app.wiring import Parts, build_agents
from agents.core.requests import GenerationRequest
from agents.core.toolchain import project_root
from agents.daemons.runner import all_final
from agents.runtime import jobs
from agents.storage.cid import Cid
from tests.agents.api.browser_wallet import InjectedWallet
from tests.agents.daemons.helpers import ETH, FINNEY, PROMPTS, contract
from tests.agents.daemons.test_review import in_review
from tests.contracts.helpers import asset_record, buy_license, register_asset, terms_input

pytestmark = [pytest.mark.chain, pytest.mark.anvil]

CHROMIUM = os.environ.get("PROOFMINT_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SHOTS = project_root() / "artifacts" / "dapp"
TIMEOUT_MS = 30_000


async def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    await page.evaluate("window.scrollTo(0, 0)")
    await page.screenshot(path=str(SHOTS / name), full_page=True)


async def attested_assets(parts: Parts, requester: str, count: int) -> list[Any]:
    """The first `count` attested assets of the pipeline run over every prompt (the curation head
    may reject an image that does not show its prompt: more requests than assets needed)."""
    for i, prompt in enumerate(PROMPTS):
        await parts.journal.call(
            jobs.submit_request, parts.journal, GenerationRequest(prompt, 8_000 + i), requester=requester, source="cli"
        )
    agents = build_agents(parts, register_batch=len(PROMPTS), linger_s=0.2, idle=0.05, withdraw_every_s=None)
    await agents.start()
    try:
        await agents.until(all_final(), within_s=900)
    finally:
        await agents.stop()
    attested = await parts.journal.call(parts.journal.at_stage, jobs.ATTESTED)
    assert len(attested) >= count, f"{len(attested)} of {len(PROMPTS)} requests attested"
    return sorted(attested, key=lambda j: j.payload["seq"])[:count]


def test_dapp_in_chromium_with_an_injected_wallet(
    parts: Parts, project: Any, local_chain: Any, accounts: Any, chain: Any, tmp_path: Path
):
    if chain.provider.name != "foundry":
        pytest.skip("the injected wallet talks to a node over JSON-RPC: runs in the anvil pass (make test-anvil)")
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium is not at {CHROMIUM}: run `make setup-tests` (Debian's chromium)")
    from playwright.async_api import async_playwright, expect

    operator, developer, originator, buyer, deriver = accounts[0], accounts[1], accounts[2], accounts[6], accounts[7]
    assets = asyncio.run(attested_assets(parts, str(operator.address), 2))
    waiting = asyncio.run(in_review(parts, str(operator.address), 2))  # for the review page
    assert len(assets) == 2
    licenses = contract(project, local_chain, "LicenseManager")
    splitter = contract(project, local_chain, "RoyaltySplitter")
    registry = contract(project, local_chain, "ProvenanceRegistry")
    a, b = (bytes.fromhex(j.payload["sha256"]) for j in assets)
    hex_a, hex_b = "0x" + a.hex(), "0x" + b.hex()
    terms = terms_input(price=10 * FINNEY, price_per_use=FINNEY)  # perpetual, derivatives at 10%
    licenses.attachTerms(a, terms, sender=operator)
    terms_a = int(licenses.termsCount())
    licenses.attachTerms(b, terms, sender=operator)
    terms_b = int(licenses.termsCount())
    # a derivative of A registered by someone else, straight on chain: the lineage graph shows it
    licence = buy_license(licenses, deriver, terms_a)
    child = asset_record("derivative of A", deriver, local_chain.t2i_model_id, parents=(a,))
    register_asset(registry, deriver, child, [licence])
    hex_child = "0x" + child.content_digest.hex()
    revenue_a = int(splitter.pendingRevenueOf(a, ETH))
    assert revenue_a == 10 * FINNEY
    chain_id = int(chain.chain_id)
    service = str(operator.address)  # the API's service: the operator, whose key the parts hold
    wallet = InjectedWallet(chain.provider.uri, buyer.private_key, chain_id)
    SHOTS.mkdir(parents=True, exist_ok=True)

    async def scenario() -> None:
        trees = {local_chain.t2i_model_id: local_chain.data_tree}
        app = api_app(
            parts, tmp_path / "api", data_trees=trees, rate_per_s=1_000, burst=1_000, reviewers=frozenset({service})
        )
        runner = await serve(app, port=0)
        port = runner.addresses[0][1]
        base = f"http://127.0.0.1:{port}"
        try:
            async with async_playwright() as pw:
                browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                page = await browser.new_page(viewport={"width": 1280, "height": 900})
                problems: list[str] = []
                page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
                page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
                page.set_default_timeout(TIMEOUT_MS)
                await wallet.install(page)
                await run_pages(page, base, expect)
                await browser.close()
                expected = ("402", "404", "409", "422")  # payment asked, an asset of no image here, refused drafts
                assert not [p for p in problems if not any(code in p for code in expected)], problems
        finally:
            await runner.cleanup()

    async def ready(page: Any, name: str) -> None:
        await page.wait_for_function(
            "(name) => document.getElementById('view').dataset.page === name", arg=name, timeout=TIMEOUT_MS
        )

    async def notice(page: Any, expect: Any, kind: str, text: str) -> None:
        box = page.locator(f"#notice[data-kind={kind}]")
        await expect(box).to_contain_text(text)

    async def run_pages(page: Any, base: str, expect: Any) -> None:
        # -- the gallery: both assets, their provenance and zk badges; not yet connected
        await page.goto(f"{base}/app/")
        await expect(page.locator("#gallery .card")).to_have_count(2)
        await expect(page.locator(f'.card[data-digest="{hex_a}"] [data-badge=zk]')).to_have_text("zk attested")
        await expect(page.locator(".card [data-badge=provenance]")).to_have_count(2)
        await expect(page.locator("#connect")).to_be_visible()
        images_loaded = await page.eval_on_selector_all(
            "#gallery .card img", "imgs => imgs.every(i => i.complete && i.naturalWidth > 0)"
        )
        assert images_loaded
        await shot(page, "01-gallery.png")

        # -- search narrows by prompt words
        word = "magenta"  # in the second prompt only
        await page.fill("input[name=q]", word)
        await page.click("form.search button")
        await expect(page.locator("#gallery .card")).to_have_count(1)

        # -- connect the wallet
        await page.click("#connect")
        await expect(page.locator("#account")).to_have_attribute("data-address", str(buyer.address))
        assert wallet.signed("eth_requestAccounts")

        # -- asset A: provenance, lineage from the chain (A -> its derivative), terms
        await page.goto(f"{base}/app/#/asset/{hex_a}")
        await ready(page, "asset")
        provenance = page.locator("#provenance")
        await expect(provenance).to_contain_text(assets[0].payload["cid"])
        # the request, lineage and registration as the API names them (camelCase, typed)
        made = assets[0].payload["lineage"]
        for shown in (str(made["seed"]), made["model_digest"], made["scheduler"], made["dtype"]):
            await expect(provenance).to_contain_text(shown)
        await expect(provenance.locator("tr", has_text="Model version (on chain)")).to_contain_text(
            str(local_chain.t2i_model_id)
        )
        await expect(provenance.locator("tr", has_text="Registered in transaction")).to_have_count(1)
        await expect(page.locator(".lineage .node")).to_have_count(2)
        await expect(page.locator(f'.lineage [data-edge="{hex_a}>{hex_child}"]')).to_have_count(1)
        await shot(page, "02-asset-lineage.png")

        # -- buy a licence: one transaction, a licence on chain, revenue for A
        sent = len(wallet.signed("eth_sendTransaction"))
        await page.click(f'[data-action=purchase][data-terms="{terms_a}"]')
        await notice(page, expect, "ok", f"Licence under terms {terms_a} bought")
        await expect(page.locator(f'.terms[data-terms="{terms_a}"] .held')).to_contain_text("You hold 1 licence")
        assert len(wallet.signed("eth_sendTransaction")) == sent + 1
        perpetual = (terms_a << 64) | (2**64 - 1)  # the licence id of terms with no duration (ERC-1155)
        assert int(licenses.balanceOf(buyer.address, perpetual)) == 1
        assert int(splitter.pendingRevenueOf(a, ETH)) == revenue_a + 10 * FINNEY
        await shot(page, "03-licence-purchased.png")

        # -- deposit escrow (bad input first: nothing sent)
        await page.fill("#deposit-amount", "lots")
        await page.click("[data-action=deposit]")
        await notice(page, expect, "error", "enter an amount in ETH")
        await page.fill("#deposit-amount", "0.003")
        await page.click("[data-action=deposit]")
        await notice(page, expect, "ok", "Deposited 0.003 ETH into escrow")
        assert int(licenses.escrowOf(buyer.address, ETH, service)[0]) == 3 * FINNEY  # with the API's service
        await expect(page.locator("#service")).to_have_attribute("title", service)
        await expect(page.locator("#escrow-balance")).to_have_attribute("data-wei", str(3 * FINNEY))

        # -- pay per use: a voucher signed in the wallet unlocks the full image, twice
        for uses in (1, 2):
            await page.click(f'[data-action=pay-per-use][data-terms="{terms_a}"]')
            await notice(page, expect, "ok", "One use paid")
            await expect(page.locator("#licensed-image")).to_be_visible()
            typed = wallet.signed("eth_signTypedData_v4")[-1]
            assert typed["primaryType"] == "Voucher"
            assert typed["domain"]["verifyingContract"].lower() == str(licenses.address).lower()
            assert int(typed["domain"]["chainId"]) == chain_id
            message = typed["message"]
            assert message["payer"].lower() == str(buyer.address).lower() and message["asset"] == hex_a
            assert message["service"].lower() == service.lower()
            assert int(message["termsId"]) == terms_a and int(message["cumulativeAmount"]) == uses * FINNEY
        width = await page.eval_on_selector("#licensed-image", "i => i.naturalWidth")
        assert width == assets[0].payload["width"]
        assert await accepted(base, str(buyer.address), terms_a) == 2 * FINNEY
        escrow = await api_get(base, f"/v1/holders/{buyer.address}/escrow")
        assert (escrow["balance"], escrow["promised"]) == (str(3 * FINNEY), str(2 * FINNEY))
        await shot(page, "04-paid-use.png")

        # -- the person rejects the next signature: an error says so, nothing is paid
        wallet.reject_next = True
        await page.click(f'[data-action=pay-per-use][data-terms="{terms_a}"]')
        await notice(page, expect, "error", "you rejected the request in your wallet")
        assert await accepted(base, str(buyer.address), terms_a) == 2 * FINNEY

        # -- a purchase that would revert is named before anything is signed
        await page.goto(f"{base}/app/#/asset/{hex_b}")
        await page.wait_for_selector(f'article.asset[data-digest="{hex_b}"]')
        licenses.setTermsActive(terms_b, False, sender=operator)
        sent = len(wallet.signed("eth_sendTransaction"))
        await page.click(f'[data-action=purchase][data-terms="{terms_b}"]')
        await notice(page, expect, "error", "LicenseManager__TermsInactive")
        assert len(wallet.signed("eth_sendTransaction")) == sent

        # -- the creator (the operator) splits A's revenue and withdraws
        await wallet.switch_account(page, operator.private_key)
        await page.goto(f"{base}/app/#/dashboard")
        await ready(page, "dashboard")
        await expect(page.locator("#account")).to_have_attribute("data-address", str(operator.address))
        row = page.locator(f'#created tr[data-digest="{hex_a}"]')
        await expect(row).to_contain_text("0.02 ETH")
        # what making it cost beside the margin it made, as the API priced them
        answer = await page.request.get(f"{base}/v1/accounts/{operator.address}/owed")
        priced = next(r for r in (await answer.json())["assets"] if r["digest"] == hex_a)
        assert answer.status == 200 and priced["costUsd"] > 0 and priced["marginUsd"] is not None
        shown_cost = await row.locator("[data-cost]").get_attribute("data-cost")
        shown_margin = await row.locator("[data-margin]").get_attribute("data-margin")
        assert float(shown_cost or "nan") == pytest.approx(priced["costUsd"])
        assert float(shown_margin or "nan") == pytest.approx(priced["marginUsd"])
        await expect(row.locator("[data-margin]")).to_contain_text("$")
        await shot(page, "05-dashboard-creator.png")
        await row.locator("[data-action=distribute]").click()
        await notice(page, expect, "ok", "among its payees")
        assert int(splitter.pendingRevenueOf(a, ETH)) == 0
        owed = int(splitter.balanceOf(operator.address, ETH))
        assert owed > 0
        await expect(page.locator("#royalty-balance")).to_have_attribute("data-wei", str(owed))
        before = int(operator.balance)
        await page.click("[data-action=withdraw]")
        await notice(page, expect, "ok", "Withdrew")
        assert int(splitter.balanceOf(operator.address, ETH)) == 0
        assert 0 < int(operator.balance) - before <= owed
        await shot(page, "06-dashboard-withdrawn.png")

        # -- the model developer withdraws its share
        await wallet.switch_account(page, developer.private_key)
        await expect(page.locator("#account")).to_have_attribute("data-address", str(developer.address))
        await expect(page.locator("#models")).to_contain_text(f"version {local_chain.t2i_model_id}")
        dev_owed = int(splitter.balanceOf(developer.address, ETH))
        assert dev_owed > 0
        await page.click("[data-action=withdraw]")
        await notice(page, expect, "ok", "Withdrew")
        assert int(splitter.balanceOf(developer.address, ETH)) == 0

        # -- a training-data originator claims its share with the proof the API serves, then withdraws
        await wallet.switch_account(page, originator.private_key)
        share = page.locator(f'#data-shares tr[data-model="{local_chain.t2i_model_id}"]')
        await expect(share).to_contain_text("60.00%")
        await share.locator("[data-action=claim]").click()
        await notice(page, expect, "ok", "Claimed")
        claimed = int(splitter.dataClaimedOf(local_chain.t2i_model_id, ETH, originator.address, 600_000))
        assert claimed > 0
        await page.click("[data-action=withdraw]")
        await notice(page, expect, "ok", "Withdrew")
        assert int(splitter.balanceOf(originator.address, ETH)) == 0
        await shot(page, "07-dashboard-originator.png")

        # -- the licensee asks escrow back: the dashboard says when the request unlocks and expires
        await wallet.switch_account(page, buyer.private_key)
        await expect(page.locator("#account")).to_have_attribute("data-address", str(buyer.address))
        # its perpetual licence is listed as such (2^64 - 1 reaches the page as a rounded JSON number)
        await expect(page.locator("#held-licences")).to_contain_text("perpetual")
        await page.fill("#escrow-withdraw-amount", "0.0005")
        await page.click("[data-action=request-withdrawal]")
        await notice(page, expect, "ok", "Withdrawal of 0.0005 ETH requested")
        _, pending, unlock = licenses.escrowOf(buyer.address, ETH, service)
        window = int(licenses.WITHDRAWAL_WINDOW())
        assert int(pending) == FINNEY // 2 and int(unlock) > 0
        state = page.locator("#escrow-state")
        await expect(state).to_have_attribute("data-withdrawal", "waiting")
        await expect(state).to_have_attribute("data-expires", str(int(unlock) + window))
        await expect(state).to_contain_text("expires")
        await expect(page.locator("[data-action=withdraw-escrow]")).to_have_count(0)
        # past the delay and the window, unwithdrawn: expired, and a new request starts again
        rpc = chain.provider.web3.provider
        rpc.make_request("evm_increaseTime", [int(licenses.WITHDRAWAL_DELAY()) + window + 60])
        rpc.make_request("evm_mine", [])
        await page.reload()
        await ready(page, "dashboard")
        await expect(state).to_have_attribute("data-withdrawal", "expired")
        await expect(state).to_contain_text("request it again")
        await expect(page.locator("[data-action=withdraw-escrow]")).to_have_count(0)
        await shot(page, "09-dashboard-withdrawal-expired.png")
        await page.fill("#escrow-withdraw-amount", "0.0005")
        await page.click("[data-action=request-withdrawal]")
        await notice(page, expect, "ok", "Withdrawal of 0.0005 ETH requested")
        await expect(state).to_have_attribute("data-withdrawal", "waiting")
        assert int(licenses.escrowOf(buyer.address, ETH, service)[2]) > int(unlock)
        await page.click("[data-action=cancel-withdrawal]")
        await notice(page, expect, "ok", "Withdrawal cancelled")
        assert licenses.escrowOf(buyer.address, ETH, service)[1:] == (0, 0)

        # -- the licensee registers an image made from A as its derivative, under its licence
        await page.goto(f"{base}/app/#/asset/{hex_a}")
        await ready(page, "asset")
        panel = page.locator("#derivative")
        await expect(panel).to_contain_text(f"terms {terms_a}")
        sent = len(wallet.signed("eth_sendTransaction"))
        await page.click("[data-action=register-derivative]")
        await notice(page, expect, "error", "choose the image file of your derivative first")
        # bytes someone already registered (asset B): the registry's rule, named before any signing
        taken = parts.store.read(Cid.parse(assets[1].payload["cid"]))
        await page.set_input_files("#derivative-file", files=[png_file("b.png", taken)])
        await page.click("[data-action=register-derivative]")
        await notice(page, expect, "error", "ProvenanceRegistry__AlreadyRegistered")
        assert len(wallet.signed("eth_sendTransaction")) == sent
        made = derivative_png()
        await page.set_input_files("#derivative-file", files=[png_file("mine.png", made)])
        await page.fill("#derivative-title", "A, pinker")
        await page.click("[data-action=register-derivative]")
        await notice(page, expect, "ok", "registered under licence")
        assert len(wallet.signed("eth_sendTransaction")) == sent + 1
        digest = hashlib.sha256(made).digest()
        record = registry.getAsset(digest)
        assert record.creator == buyer.address
        parents, _ = registry.parentsOf(digest)
        assert [bytes(p) for p in parents] == [a]
        assert int(licenses.balanceOf(buyer.address, perpetual)) == 0, "the licence unit was used"
        assert parts.store.has(Cid(1, 0x55, digest)), "registered as drafted: the API keeps its image"
        # the page opens the new asset: its lineage, from the chain, names A as its parent
        await page.wait_for_selector(f'article.asset[data-digest="0x{digest.hex()}"]')
        await expect(page.locator(f'.lineage [data-edge="{hex_a}>0x{digest.hex()}"]')).to_have_count(1)
        await shot(page, "10-derivative-registered.png")

        # -- human review: a stranger cannot decide; the operator (a reviewer) approves and rejects
        first, second = ("0x" + j.payload["sha256"] for j in waiting)
        await page.goto(f"{base}/app/#/review")
        await ready(page, "review")
        await expect(page.locator("#review .card")).to_have_count(2)
        await expect(page.locator("#reviewer-state")).to_have_attribute("data-reviewer", "false")
        await page.click(f'[data-action=approve][data-digest="{first}"]')
        await notice(page, expect, "error", "is not a reviewer of this deployment")
        await wallet.switch_account(page, operator.private_key)
        await expect(page.locator("#reviewer-state")).to_have_attribute("data-reviewer", "true")
        await page.click(f'[data-action=approve][data-digest="{first}"]')
        await notice(page, expect, "ok", "curated")
        typed = wallet.signed("eth_signTypedData_v4")[-1]
        assert typed["primaryType"] == "ReviewDecision" and typed["message"]["asset"] == first
        assert int(typed["domain"]["chainId"]) == chain_id
        await page.click(f'[data-action=reject][data-digest="{second}"]')
        await notice(page, expect, "error", "say why you reject it")
        await page.fill(f'[data-reason="{second}"]', "the circles are squares")
        await page.click(f'[data-action=reject][data-digest="{second}"]')
        await notice(page, expect, "ok", "rejected")
        await expect(page.locator("#review .card")).to_have_count(0)
        stages = {j.payload["sha256"]: parts.journal.get(j.key).stage for j in waiting}
        assert stages == {first[2:]: jobs.CURATED, second[2:]: jobs.REJECTED}
        assert parts.journal.get(waiting[1].key).payload["curation"]["reason"].endswith("the circles are squares")
        await shot(page, "11-review.png")

    asyncio.run(scenario())


def png_file(name: str, data: bytes) -> dict[str, Any]:
    return {"name": name, "mimeType": "image/png", "buffer": data}


def derivative_png() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), (230, 90, 160)).save(buffer, format="PNG")
    return buffer.getvalue()


async def api_get(base: str, path: str) -> Any:
    async with aiohttp.ClientSession() as session, session.get(f"{base}{path}") as response:
        assert response.status == 200, await response.text()
        return await response.json()


async def accepted(base: str, payer: str, terms_id: int) -> int:
    """The channel's cumulative amount the API has accepted (its /v1/channels route)."""
    return int((await api_get(base, f"/v1/channels/{payer}/{terms_id}"))["acceptedCumulative"])


def test_proofmint_agent_api_serves_the_api_and_dapp_beside_daemons_on_a_node(
    local_chain: Any, chain: Any, tmp_path: Path
):
    """`proofmint agent api` as an operator runs it against a node: a deployment record, the
    originators' tree file, no key; it tells wallets the public RPC, serves the dApp, refuses a
    tree file that does not hash to its root, and exits 0 on Ctrl-C."""
    import json
    import signal
    import subprocess
    import sys

    from eth_utils.address import to_checksum_address

    from tests.agents.daemons.helpers import call, wait_for
    from tests.agents.runtime.anvil import free_port

    if chain.provider.name != "foundry":
        pytest.skip("the API process reaches the chain over JSON-RPC: runs in the anvil pass (make test-anvil)")
    record = tmp_path / "deployment.json"
    contracts = [{"name": n, "address": a, "gas_used": 0} for n, a in local_chain.addresses.items()]
    record.write_text(json.dumps({"network": "ethereum:local:foundry", "chainId": 31337, "contracts": contracts}))
    tree = local_chain.data_tree
    payload = {
        "modelId": local_chain.t2i_model_id,
        "chainId": int(chain.chain_id),
        "root": "0x" + tree.root.hex(),
        "originators": {a: {"weight": w, "proof": ["0x" + p.hex() for p in tree.proof(a)]} for a, w in tree.shares},
    }
    good, bad = tmp_path / "data.tree.json", tmp_path / "tampered.tree.json"
    good.write_text(json.dumps(payload))
    bad.write_text(json.dumps({**payload, "root": "0x" + "11" * 32}))
    binary = str(Path(sys.executable).with_name("proofmint"))
    service = "0x" + "5e" * 20
    base = [binary, "agent", "api", "--rpc", chain.provider.uri, "--deployment", str(record)]
    env = {k: v for k, v in os.environ.items() if k not in ("PROOFMINT_AGENT_KEY", "PROOFMINT_SERVICE")}  # no key

    # no service: the API cannot know whose vouchers to take, and says so before touching anything
    unnamed = subprocess.run([*base, "--state", str(tmp_path / "s0")], env=env, capture_output=True, timeout=120)
    assert unnamed.returncode == 2 and b"the api needs --service ADDRESS" in unnamed.stderr, unnamed.stderr[-2000:]
    zero = subprocess.run(
        [*base, "--state", str(tmp_path / "s0"), "--service", "0x" + "00" * 20],
        env=env,
        capture_output=True,
        timeout=120,
    )
    assert zero.returncode == 2 and b"not a non-zero address" in zero.stderr, zero.stderr[-2000:]
    base += ["--service", service]
    refused = subprocess.run(
        [*base, "--state", str(tmp_path / "s1"), "--data-tree", str(bad)], env=env, capture_output=True, timeout=120
    )
    assert refused.returncode == 2 and b"do not hash to the root" in refused.stderr, refused.stderr[-2000:]

    port = free_port()
    public = "https://rpc.example.invalid"
    command = [*base, "--state", str(tmp_path / "s2"), "--api-port", str(port), "--public-rpc", public]
    with (tmp_path / "api.log").open("wb") as out:
        process = subprocess.Popen([*command, "--data-tree", str(good)], env=env, stdout=out, stderr=out)
    try:
        url = f"http://127.0.0.1:{port}"
        health = wait_for(lambda: call(f"{url}/health"), 120, process)
        assert health[0] == 200 and health[1]["chainId"] == int(chain.chain_id)
        status, deployment = call(f"{url}/v1/deployment")
        assert status == 200 and deployment["rpcUrl"] == public
        assert deployment["service"] == to_checksum_address(service)  # what payers deposit with and sign for
        assert deployment["contracts"]["LicenseManager"]["address"] == local_chain.addresses["LicenseManager"]
        originator = tree.shares[0][0]
        status, owed = call(f"{url}/v1/accounts/{originator}/owed")
        assert status == 200 and [s["modelId"] for s in owed["dataShares"]] == [local_chain.t2i_model_id]
        with urllib.request.urlopen(f"{url}/app/", timeout=10) as response:
            assert response.status == 200 and b"app.js" in response.read()
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
    log = (tmp_path / "api.log").read_text()
    assert "Traceback" not in log and f"dApp http://127.0.0.1:{port}/app/" in log, log[-3000:]


def test_the_dapp_without_a_wallet_and_with_a_wallet_on_another_chain(
    parts: Parts, local_chain: Any, accounts: Any, chain: Any, tmp_path: Path
):
    """No wallet in the browser: the page still browses, and connecting says what to install.
    A wallet on another chain: the page offers to switch, and the wallet's switch is followed."""
    if chain.provider.name != "foundry":
        pytest.skip("the injected wallet talks to a node over JSON-RPC: runs in the anvil pass (make test-anvil)")
    from playwright.async_api import async_playwright, expect

    wallet = InjectedWallet(chain.provider.uri, accounts[6].private_key, chain_id=1)  # says mainnet at first
    node_chain = int(chain.chain_id)

    async def scenario() -> None:
        runner = await serve(api_app(parts, tmp_path / "api"), port=0)
        base = f"http://127.0.0.1:{runner.addresses[0][1]}"
        try:
            async with async_playwright() as pw:
                browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                bare = await browser.new_page()
                bare.set_default_timeout(TIMEOUT_MS)
                await bare.goto(f"{base}/app/")
                await expect(bare.locator(".empty")).to_contain_text("No assets registered yet")
                await bare.click("#connect")
                await expect(bare.locator("#notice[data-kind=error]")).to_contain_text("no wallet found")
                await bare.goto(f"{base}/app/#/nowhere")
                await expect(bare.locator("#view h1")).to_have_text("Not found")
                await bare.goto(f"{base}/app/#/asset/0x{'00' * 32}")
                await expect(bare.locator("#view .error")).to_contain_text("no registered asset")

                page = await browser.new_page()
                page.set_default_timeout(TIMEOUT_MS)
                await wallet.install(page)
                await page.goto(f"{base}/app/#/dashboard")
                await page.click("[data-action=connect]")
                # connecting asks the wallet to switch to the deployment's chain; it does, and says so
                await expect(page.locator("#account")).to_have_attribute("data-address", wallet.address)
                await expect(page.locator(".chain.ok")).to_have_text(f"chain {node_chain}")
                assert wallet.chain_id == node_chain
                assert [m for m, _ in wallet.asked] == ["eth_requestAccounts", "wallet_switchEthereumChain"]
                # the person moves the wallet to another chain: the page offers to switch back
                await wallet.move_to_chain(page, 10)
                switch = page.locator(f"text=Switch to chain {node_chain}")
                await expect(switch).to_be_visible()
                await switch.click()
                await expect(page.locator(".chain.ok")).to_have_text(f"chain {node_chain}")
                await shot(page, "08-dashboard-empty.png")
                await browser.close()
        finally:
            await runner.cleanup()

    asyncio.run(scenario())
