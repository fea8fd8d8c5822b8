"""What the daemon tests share: constants, contract handles, HTTP polling, and assets made by
the front of the pipeline (generator to registrar) on the module's deployment."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.request
from typing import Any

from agents.app.wiring import Parts, build_agents
from agents.core.requests import GenerationRequest
from agents.runtime import jobs

ETH = "0x0000000000000000000000000000000000000000"
FINNEY = 10**15
# held-out captions (media.dataset's test split) that the shipped models draw well at these seeds
PROMPTS = (
    "three small blue circles at the top over a dotted black background",
    "a small magenta circle in the centre over a plain black background",
    "three small red squares in the centre over a striped black background",
)

#: The daemons that take a request to a registered, delivered asset.
FRONT = ["generator", "curator", "publisher", "registrar"]
#: The prompts `make_assets` draws.
ASSET_PROMPTS = PROMPTS[:2]


def contract(project: Any, local_chain: Any, name: str) -> Any:
    return getattr(project, name).at(local_chain.addresses[name])


def call(url: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"} if data else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def wait_for(check: Any, within_s: float, process: subprocess.Popen[bytes]) -> Any:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        assert process.poll() is None, "proofmint up exited early"
        try:
            result = check()
        except (OSError, urllib.error.URLError):
            result = None
        if result:
            return result
        time.sleep(0.5)
    raise AssertionError(f"not within {within_s} s")


def rpc_chain_id(url: str) -> int:
    body = {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return int(json.loads(response.read())["result"], 16)


async def make_assets(parts: Parts, requester: str) -> list[Any]:
    for i, prompt in enumerate(ASSET_PROMPTS):
        await parts.journal.call(
            jobs.submit_request, parts.journal, GenerationRequest(prompt, 7_000 + i), requester=requester, source="cli"
        )
    agents = build_agents(
        parts, names=FRONT, register_batch=len(ASSET_PROMPTS), linger_s=0.2, idle=0.05, withdraw_every_s=None
    )
    await agents.start()
    try:
        await agents.until(lambda c: c.get(jobs.DELIVERED, 0) == len(ASSET_PROMPTS), within_s=600)
    finally:
        await agents.stop()
    return list(await parts.journal.call(parts.journal.at_stage, jobs.DELIVERED))


def attach_terms(
    licenses: Any, digest: bytes, operator: Any, *, per_use: int, price: int = 10 * FINNEY, currency: str = ETH
) -> int:
    terms = {
        "currency": currency,
        "price": price,
        "pricePerUse": per_use,
        "duration": 0,
        "derivativeRoyaltyBps": 1_000,
        "commercialUse": True,
        "derivativesAllowed": True,
    }
    licenses.attachTerms(digest, terms, sender=operator)
    return int(licenses.termsCount())


def assert_chain_agrees(
    journal: Any, registry: Any, web3: Any, *, sender: str, events_from: int, txs_from: int
) -> tuple[list[Any], int, int]:
    """After a kill test's last life: every asset the journal finished is on chain once, attested
    once per proof the journal recorded, each job passed each stage once, no transaction intent
    of `sender` is open, and every transaction `sender` sent from block `txs_from` succeeded.
    Returns (the finished jobs, transactions sent, attestation transactions)."""
    import pytest

    counts = journal.counts()
    done = journal.at_stage(jobs.ATTESTED) + journal.at_stage(jobs.UNPROVEN)
    assert counts.get(jobs.ATTESTED, 0) >= 1 and jobs.UNPROVEN not in counts and jobs.FAILED not in counts
    height = web3.eth.block_number
    registered_events = list(registry.AssetRegistered.range(events_from, height + 1))
    assert sorted(bytes(e.contentDigest).hex() for e in registered_events) == sorted(j.payload["sha256"] for j in done)
    for job in done:
        targets = [target for _, target in journal.history(job.key)]
        assert len(targets) == len(set(targets)), (job.key, targets)
        assert int(registry.getAsset(bytes.fromhex(job.payload["sha256"])).seq) == job.payload["seq"]
    attested_events = list(registry.InferenceAttested.range(events_from, height + 1))
    # each attested job names the transaction whose event holds its seq, even when the prover
    # that sent it died before recording it (a later life looks it up)
    by_tx = {str(e.transaction_hash).removeprefix("0x"): [int(s) for s in e.seqs] for e in attested_events}
    for job in journal.at_stage(jobs.ATTESTED):
        assert int(job.payload["seq"]) in by_tx.get(str(job.payload.get("attest_tx")), []), (job.payload, by_tx)
    attest_txs = {job.payload["attest_tx"] for job in done if "attest_tx" in job.payload}
    assert len(attested_events) == len(attest_txs)
    assert sum(len(e.seqs) for e in attested_events) == len(done)
    for intent in journal.open_intents(f"tx:{sender.lower()}"):
        pytest.fail(f"transaction intent {intent.id} still open after the last life: {intent.data}")
    sent = 0
    for number in range(txs_from, web3.eth.block_number + 1):
        for tx in web3.eth.get_block(number, full_transactions=True)["transactions"]:
            if tx["from"].lower() == sender.lower():
                sent += 1
                assert web3.eth.get_transaction_receipt(tx["hash"])["status"] == 1, (
                    f"a transaction reverted: {tx['hash'].hex()}"
                )
    return done, sent, len(attest_txs)
