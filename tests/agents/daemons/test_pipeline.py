"""The daemons end to end on the chain under test (embedded, and anvil in the anvil run): real
models, a real content store, real EZKL proofs checked by the deployed verifiers.

- requests become registered, attested assets exactly once, with everything the chain, the
  store and the sidecar say agreeing; the proven chunks are gathered into ERC-8004 validation
  requests (proofmint's zkML validator), each asset covered once, and a later life that lost
  its validation intents has its attested jobs validated again;
- a registrar that dies after its batch transaction is mined and before it journals the batch
  is reconciled from the chain on restart (no second batch), an intent that was never sent is
  forgotten, and a claim someone else made is not repeated; both ways of registering
  (`registerMany`, and commit then claim);
- a batch with a bad member is split so the good ones are registered, and an asset someone
  else registered is moved on without a transaction;
- settlement settles good vouchers in one batch, sets aside bad ones with the reason (escrow with
  another service covers nothing), counts a voucher settled elsewhere as settled, and withdraws
  the creator's royalties on schedule; a batch front-run between planning and mining still
  settles the rest, and each voucher is journaled as the receipt's events say.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import torch
from eth_abi import encode
from eth_account import Account

from agents.api.registration import validation_record
from agents.app.wiring import Parts, build_agents, check_head_bands
from agents.core import costs
from agents.core.merkle import AssetRecord
from agents.core.metering import FAST_LANE, STANDARD_LANE
from agents.core.requests import GenerationRequest
from agents.core.settlement import Batch, SignedVoucher
from agents.core.toolchain import project_root
from agents.core.vouchers import Voucher, sign_voucher
from agents.daemons.market import DeliverStage, MarketWatcher, market_key
from agents.daemons.register import INTENT, MANY_INTENT, ClaimStage, CommitStage, RegisterStage
from agents.daemons.runner import Agents, all_final
from agents.daemons.settle import SettleStage
from agents.daemons.validate import INTENT as VALIDATION_INTENT
from agents.daemons.validate import Validations
from agents.models.head import BAND_MARGIN, VERDICTS, HeadError, HeadModel, payload_row
from agents.runtime import jobs
from agents.runtime.jobs import submit_voucher
from agents.runtime.journal import Journal
from agents.runtime.stage import Done
from agents.storage.cid import Cid
from agents.storage.credentials import read_sidecar
from media.head_training import float_scores
from tests.agents.daemons.helpers import ETH, FINNEY, PROMPTS, contract
from tests.contracts.helpers import asset_record, register_asset
from zkml.evm import input_binding

pytestmark = pytest.mark.chain

STANDARD, FAST = 0, 1  # IGenerationMarket.Lane


def requests() -> list[GenerationRequest]:
    return [GenerationRequest(prompt=p, seed=7_000 + i) for i, p in enumerate(PROMPTS)]


async def submit(parts: Parts, requester: str, items: list[GenerationRequest]) -> list[str]:
    keys = []
    for request in items:
        key, _ = await parts.journal.call(
            jobs.submit_request, parts.journal, request, requester=requester, source="cli"
        )
        keys.append(key)
    return keys


def parts_validations(parts: Parts, journal: Journal | None = None) -> Validations:
    """The validations `parts`' prover sends (in `journal`, default the parts')."""
    assert parts.validation is not None
    return Validations(journal or parts.journal, parts.chain(), parts.validation)


def test_requests_become_registered_attested_assets_exactly_once(
    parts: Parts,
    project: Any,
    local_chain: Any,
    accounts: Any,
    chain: Any,
    curation_head: HeadModel,
    tmp_path: Path,
):
    operator = str(accounts[0].address)
    market = contract(project, local_chain, "GenerationMarket")
    registry = contract(project, local_chain, "ProvenanceRegistry")
    price, fast_price = int(market.price(STANDARD)), int(market.price(FAST))
    # two paid requests on chain: one from a payer who approved the agent as registrar (it
    # becomes the creator) in the fast lane, one from a payer who did not (the operator is the
    # creator) in the standard lane
    approving, plain = accounts[6], accounts[8]
    registry.setRegistrar(operator, True, sender=approving)
    market.requestGeneration(PROMPTS[0], 7_100, 25, 1_500, FAST, sender=approving, value=fast_price)
    market.requestGeneration(PROMPTS[1], 7_101, 25, 1_500, STANDARD, sender=plain, value=price)
    total = len(PROMPTS) + 2

    async def main() -> dict[str, int]:
        keys = await submit(parts, operator, requests())
        again = await submit(parts, operator, requests()[:1])  # the same request from another source
        assert again == keys[:1]
        agents = build_agents(
            parts, register_batch=total, linger_s=0.5, idle=0.05, withdraw_every_s=None, market_confirmations=0
        )
        await agents.start()
        try:
            return await agents.until(all_final(), within_s=900)
        finally:
            await agents.stop()

    counts = asyncio.run(main())
    assert counts == {jobs.ATTESTED: total}, counts
    assert int(registry.assetCount()) == total
    # registered in batches (registerMany), no batch root: each transaction's jobs agree on its size
    by_tx: dict[str, list[int]] = {}
    for job in parts.journal.at_stage(jobs.ATTESTED):
        by_tx.setdefault(job.payload["register_tx"], []).append(job.payload["register_batch"])
    assert len(by_tx) < total and all(len(sizes) == sizes[0] for sizes in by_tx.values()), by_tx
    assert int(registry.batchCount()) == 0
    journal, store = parts.journal, parts.store
    head_ids = {model_id for _, model_id in local_chain.head_models.values()}
    paid = {}
    errors: list[float] = []
    for job in journal.at_stage(jobs.ATTESTED):
        p = job.payload
        creator = operator
        if "market_request" in p:
            paid[int(p["market_request"])] = p
            assert p["delivery"] == "fulfilled" and p["source"] == "chain"
            # the fulfil transaction that settled the request is a settlement cost of the asset
            fulfil = chain.provider.web3.eth.get_transaction_receipt(p[costs.SETTLE]["tx"])
            assert fulfil["to"] == market.address and p[costs.SETTLE]["gas"] == fulfil["gasUsed"]
            creator = str(approving.address) if p["requester"].lower() == str(approving.address).lower() else operator
        assert [t for _, t in journal.history(job.key)] == [
            jobs.REQUESTED,
            jobs.GENERATED,
            jobs.CURATED,
            jobs.PUBLISHED,
            jobs.REGISTERED,
            jobs.DELIVERED,
            jobs.ATTESTED,
        ]
        png = store.read(Cid.parse(p["cid"]))
        digest = hashlib.sha256(png).digest()
        assert digest.hex() == p["sha256"] and Cid.parse(p["cid"]).digest == digest
        asset = registry.getAsset(digest)
        assert (str(asset.creator), int(asset.modelId), int(asset.seq)) == (
            creator,
            local_chain.t2i_model_id,
            p["seq"],
        )
        assert bytes(asset.paramsDigest).hex() == p["params_digest"]
        # anyone can recompute paramsDigest: the metadata names the parameters document, whose
        # sha256 is what the chain holds, and which names the model by version, never a path
        metadata = json.loads(store.read(Cid.parse(p["metadata_uri"].removeprefix("ipfs://"))))
        document = store.read(Cid.parse(metadata["properties"]["paramsDocument"].removeprefix("ipfs://")))
        assert hashlib.sha256(document).digest() == bytes(asset.paramsDigest)
        assert json.loads(document) == metadata["properties"]["lineage"]
        assert json.loads(document)["model_id"] == local_chain.t2i_model_id and "model" not in json.loads(document)
        assert bytes(asset.inputBinding) == input_binding(digest, int(p["commitment"], 16))
        assert registry.tokenURI(int.from_bytes(digest, "big")) == p["metadata_uri"]
        assert p["attested_by"] in head_ids
        attested, score, verdict = registry.attestationOf(digest, p["attested_by"])
        assert attested and int(score) == p["score"]
        # the curator's decision is the proven one: the same fixed-point score, the same verdict
        # (the contract's, from the proven score and the bands bound to the model version)
        assert p["curation"]["score"] == int(score) and p["curation"]["decision"] == "accept"
        assert VERDICTS[int(verdict)] == p["verdict"] == curation_head.verdict(int(score)) == "accept"
        float_score = float(float_scores(curation_head.state, torch.tensor([payload_row(p)]))[0])
        errors.append(abs(float_score - curation_head.real(int(score))))
        # the float head decides the same, unless its score lies within the margin of a band edge
        assert float_score >= curation_head.accept_at or curation_head.accept_at - float_score < BAND_MARGIN
        report = read_sidecar(png, store.read(Cid.parse(p["manifest_cid"])), trust_anchors=parts.signer().ca_pem)
        assert report["proofmint_trusted"] is True
    # the proven (quantised) score and the float head differ by less than the band margin (the
    # bands lie on a grid of hundredths)
    assert errors and max(errors) < BAND_MARGIN, errors
    # ERC-7007 on real assets: the proof the prover posted verifies each asset it attested, with
    # its parameters document as the prompt, and no other asset (nor a changed document)
    attested = journal.at_stage(jobs.ATTESTED)
    for job in attested[:2]:
        p = job.payload
        tx = parts.chain().web3.eth.get_transaction(p["attest_tx"])
        fn, args = parts.chain().contract("ProvenanceRegistry").decode_function_input(tx["input"])
        assert fn.fn_name == "attestInference"
        proof = encode(["uint256", "bytes", "uint256[]"], [args["modelId"], args["proof"], args["instances"]])
        metadata = json.loads(store.read(Cid.parse(p["metadata_uri"].removeprefix("ipfs://"))))
        document = store.read(Cid.parse(metadata["properties"]["paramsDocument"].removeprefix("ipfs://")))
        digest = bytes.fromhex(p["sha256"])
        assert registry.verify(document, digest, proof) is True
        others = [bytes.fromhex(j.payload["sha256"]) for j in attested if j.payload["attest_tx"] != p["attest_tx"]]
        assert others and registry.verify(document, others[0], proof) is False
        assert registry.verify(document + b" ", digest, proof) is False
        receipt = registry.addAigcData(int.from_bytes(digest, "big"), document, digest, proof, sender=accounts[0])
        assert len(receipt.events.filter(registry.AigcData)) == 1
    # the two-circuit prover batched: proofs of two, and of one for a remainder
    sizes = [job.payload["proof_size"] for job in journal.at_stage(jobs.ATTESTED)]
    assert set(sizes) <= {1, 2} and sizes.count(2) >= 2
    # a prover's later life that finds these assets attested (its earlier life died between the
    # mined attestation and the journal) names the attesting transactions all the same, proving
    # nothing again
    from agents.daemons.prove import ProveStage
    from agents.runtime.stage import Done

    stripped = [
        dataclasses.replace(job, payload={k: v for k, v in job.payload.items() if k != "attest_tx"}) for job in attested
    ]
    later = ProveStage(
        journal, parts.chain(), local_chain.head_models, worker="test/prover", validations=parts_validations(parts)
    )
    sent = parts.chain().web3.eth.get_transaction_count(operator)
    outcomes = asyncio.run(later.process(stripped))
    assert [o.updates["attest_tx"] for o in outcomes if isinstance(o, Done)] == [
        j.payload["attest_tx"] for j in attested
    ]
    assert parts.chain().web3.eth.get_transaction_count(operator) == sent
    # ERC-8004: the proven chunks were gathered into validation requests (the last ones sent as the
    # prover stopped), each answered 100 (a proven accept) from the attestations; every asset is
    # covered once, and checkable on its own
    validator = contract(project, local_chain, "ZkmlValidator")
    validations = contract(project, local_chain, "ValidationRegistry")
    prover_agent = local_chain.agents.ids["prover"]
    chain_id = int(parts.chain().web3.eth.chain_id)

    def covered_by_requests() -> tuple[list[bytes], list[str]]:
        made = [bytes(h) for h in validations.getAgentValidations(prover_agent)]
        records = [asyncio.run(validation_record(parts.chain(), chain_id, h)) for h in made]
        for request_hash, record in zip(made, records, strict=True):
            assert record is not None and record["state"] == "answered" and record["response"] == 100
            assert record["agentId"] == prover_agent and record["tag"] == "zkml"
            for item in record["items"]:
                proof = [bytes.fromhex(x[2:]) for x in item["proof"]]
                asset = bytes.fromhex(item["asset"][2:])
                assert validator.itemResponse(request_hash, asset, item["index"], proof) == 100
        return made, [item["asset"] for r in records if r is not None for item in r["items"]]

    requests_made, covered = covered_by_requests()
    assert sorted(covered) == sorted("0x" + j.payload["sha256"] for j in attested)
    assert len(requests_made) <= len({j.payload["attest_tx"] for j in attested})  # chunks gathered, never split
    assert journal.open_intents(VALIDATION_INTENT) == []
    # a later life whose journal lost the validation intents (it died between attesting and
    # noting) notes the attested jobs again, by attesting transaction, and has them validated
    fresh = Journal(tmp_path / "fresh.db", final=jobs.REGISTERED_OR_FINAL)
    try:
        again = ProveStage(
            fresh,
            parts.chain(),
            local_chain.head_models,
            worker="test/prover",
            validations=parts_validations(parts, fresh),
        )
        asyncio.run(again.process(stripped))
        assert fresh.open_intents(VALIDATION_INTENT) == []
        noted = fresh.db.execute("SELECT keys, outcome FROM intents WHERE name = ?", (VALIDATION_INTENT,)).fetchall()
        assert sorted(k for keys, _ in noted for k in json.loads(keys)) == sorted(j.key for j in attested)
        assert all(json.loads(o)["response"] == 100 for _, o in noted)
    finally:
        fresh.close()
    # the paid requests were fulfilled with their assets, and their fees earned
    assert sorted(paid) == [1, 2]
    assert (paid[1]["lane"], paid[2]["lane"]) == (FAST_LANE, STANDARD_LANE)
    for request_id, p in paid.items():
        stored = market.getRequest(request_id)
        assert int(stored.status) == 2 and bytes(stored.asset).hex() == p["sha256"]
        assert int(stored.lane) == (FAST if p["lane"] == FAST_LANE else STANDARD)
    assert int(market.balanceOf(operator)) == price + fast_price


def test_market_requests_are_journaled_in_their_lane_and_redelivery_reads_the_stored_asset(
    parts: Parts, project: Any, local_chain: Any, chain: Any, accounts: Any
):
    """A fast-lane request on chain is journaled with lane `fast` and a standard one with
    `standard`, so the generator's fast-lane claim (`claim_first`) takes the paid fast request
    first. Delivery reads the stored request by its layout: a request already fulfilled with the
    job's asset (a crash after the transaction) is `fulfilled`, not sent again."""
    market = contract(project, local_chain, "GenerationMarket")
    operator = accounts[0]
    market.requestGeneration(PROMPTS[0], 7_200, 25, 1_500, STANDARD, sender=accounts[8], value=market.price(STANDARD))
    market.requestGeneration(PROMPTS[1], 7_201, 25, 1_500, FAST, sender=accounts[6], value=market.price(FAST))
    assert market.price(FAST) > market.price(STANDARD)
    watcher = MarketWatcher(parts.journal, parts.chain(), confirmations=0)
    asyncio.run(watcher.poll())
    keys = {n: market_key(int(chain.chain_id), str(market.address), n) for n in (1, 2)}
    journaled = {n: parts.journal.get(key) for n, key in keys.items()}
    assert {n: (job.stage, job.payload["lane"], job.payload["fee"]) for n, job in journaled.items() if job} == {
        1: (jobs.REQUESTED, STANDARD_LANE, str(market.price(STANDARD))),
        2: (jobs.REQUESTED, FAST_LANE, str(market.price(FAST))),
    }
    (first,) = parts.journal.claim_first(
        jobs.REQUESTED, "test", limit=1, lease_s=30, field="lane", value=FAST_LANE, share=0.75
    )
    assert first.key == keys[2]  # the later request, but the fast one
    # fulfilled on chain (as if by a life that crashed before journaling it); delivery reads it
    record = asset_record("market/lanes", operator, local_chain.t2i_model_id)
    register_asset(contract(project, local_chain, "ProvenanceRegistry"), operator, record)
    market.fulfill(2, record.content_digest, sender=operator)
    deliver = DeliverStage(parts.journal, parts.chain(), worker="test/deliver")
    done = [dataclasses.replace(first, payload={**first.payload, "sha256": record.content_digest.hex()}),
            dataclasses.replace(first, payload={**first.payload, "sha256": "ab" * 32})]  # fmt: skip
    outcomes = asyncio.run(deliver.process(done))
    assert [o.updates["delivery"] for o in outcomes if isinstance(o, Done)] == [
        "fulfilled",
        "fulfilled with another asset",
    ]
    assert not any(costs.SETTLE in o.updates for o in outcomes if isinstance(o, Done))  # nothing sent: no cost
    stored = market.getRequest(2)
    assert (int(stored.status), int(stored.lane), bytes(stored.asset)) == (2, FAST, record.content_digest)


class DiesAfterTheBatchIsMined(CommitStage):
    async def _journal_batch(self, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("killed between the mined batch and the journal write")


def test_the_registrar_reconciles_its_batches_with_the_chain_after_a_crash(
    parts: Parts, project: Any, local_chain: Any, accounts: Any
):
    operator = str(accounts[0].address)
    registry = contract(project, local_chain, "ProvenanceRegistry")
    client = parts.chain()

    async def main() -> dict[str, int]:
        keys = await submit(parts, operator, requests())
        front = build_agents(parts, names=["generator", "curator", "publisher"], idle=0.05)
        await front.start()
        try:
            await front.until(lambda c: c.get(jobs.PUBLISHED) == len(keys), within_s=300)
        finally:
            await front.stop()
        await client.start()
        # a previous life journaled an intent and died before sending anything
        await parts.journal.call(
            parts.journal.record_intent, INTENT, keys, {"root": "11" * 32, "leaves": ["11" * 32], "from_block": 0}
        )
        # this life sends the batch and dies before journaling it
        dying = DiesAfterTheBatchIsMined(parts.journal, client, model_id=local_chain.t2i_model_id, worker="w1", batch=8)
        claimed = await parts.journal.call(parts.journal.claim, jobs.PUBLISHED, "w1", limit=8, lease_s=60)
        with pytest.raises(RuntimeError, match="killed"):
            await dying.process(claimed)
        assert int(registry.batchCount()) == 1
        # the restarted registrar reconciles before it does anything new
        fresh = CommitStage(parts.journal, client, model_id=local_chain.t2i_model_id, worker="w1", batch=8)
        assert await fresh.reconcile() == {"committed": 1, "forgotten": 1}
        assert await parts.journal.call(parts.journal.open_intents, INTENT) == []
        committed = await parts.journal.call(parts.journal.at_stage, jobs.COMMITTED)
        assert sorted(j.key for j in committed) == sorted(keys)
        assert {j.payload["batch_id"] for j in committed} == {1}
        # someone else claims the first member (anyone may); the claimer must not try again
        first = committed[0]
        record = AssetRecord(
            bytes.fromhex(first.payload["sha256"]),
            operator,
            local_chain.t2i_model_id,
            bytes.fromhex(first.payload["params_digest"]),
            bytes.fromhex(first.payload["commitment"]),
            (),
            first.payload["metadata_uri"],
        )
        proof = [bytes.fromhex(s) for s in first.payload["proof"]]
        registry.claimFromBatch(1, first.payload["index"], record.as_tuple(), proof, [], sender=accounts[9])
        claimer = ClaimStage(parts.journal, client, model_id=local_chain.t2i_model_id, worker="w1", batch=8)
        assert await claimer.step() == len(keys)
        rest = build_agents(
            parts,
            names=["registrar", "prover"],
            registration="commit-claim",
            linger_s=0.2,
            idle=0.05,
            withdraw_every_s=None,
        )
        await rest.start()
        try:
            return await rest.until(all_final(), within_s=600)
        finally:
            await rest.stop()

    counts = asyncio.run(main())
    assert counts == {jobs.ATTESTED: len(PROMPTS)}
    assert int(registry.batchCount()) == 1 and int(registry.assetCount()) == len(PROMPTS)


def metered_assets(
    project: Any, local_chain: Any, operator: Any, labels: tuple[str, ...]
) -> tuple[list[bytes], list[int]]:
    """An asset registered straight on chain for each label, each with metered terms (a
    finney per use): one channel each (the planner keeps a channel's newest voucher)."""
    registry = contract(project, local_chain, "ProvenanceRegistry")
    licenses = contract(project, local_chain, "LicenseManager")
    assets, terms = [], []
    for label in labels:
        digest = hashlib.sha256(label.encode()).digest()
        record = AssetRecord(
            digest, str(operator.address), local_chain.t2i_model_id, digest, b"\x00" * 32, (), "ipfs://x"
        )
        registry.register(record.as_tuple(), [], sender=operator)
        licenses.attachTerms(
            digest,
            {
                "currency": ETH,
                "price": 0,
                "pricePerUse": FINNEY,
                "duration": 0,
                "derivativeRoyaltyBps": 0,
                "commercialUse": True,
                "derivativesAllowed": False,
            },
            sender=operator,
        )
        assets.append(digest)
        terms.append(int(licenses.termsCount()))
    return assets, terms


PRICES = costs.CostPrices.from_json(project_root() / costs.DEFAULT_PRICES)


def journaled(parts: Parts) -> dict[str, tuple[str, dict[str, Any]]]:
    """Every voucher job's (stage, payload), by the voucher's signature."""
    return {
        job.payload["signature"]: (job.stage, job.payload)
        for stage in (jobs.SETTLED, jobs.SKIPPED, jobs.RECEIVED, jobs.FAILED)
        for job in parts.journal.at_stage(stage)
        if job.kind == jobs.VOUCHER
    }


def voucher_payloads(parts: Parts) -> dict[str, dict[str, Any]]:
    """Every voucher job's payload, by its key."""
    return {
        job.key: job.payload
        for stage in (jobs.SETTLED, jobs.SKIPPED)
        for job in parts.journal.at_stage(stage)
        if job.kind == jobs.VOUCHER
    }


def sig(voucher: SignedVoucher) -> str:
    return "0x" + voucher.signature.hex()


def test_settlement_settles_good_vouchers_and_sets_bad_ones_aside(
    parts: Parts, project: Any, local_chain: Any, accounts: Any, chain: Any
):
    operator, payer, stranger = accounts[0], accounts[5], accounts[9]
    licenses = contract(project, local_chain, "LicenseManager")
    splitter = contract(project, local_chain, "RoyaltySplitter")
    assets, terms = metered_assets(project, local_chain, operator, ("a", "b", "c", "d", "e", "f"))
    service = str(operator.address)  # the settling operator's service: the payer's escrow is with it
    licenses.deposit(ETH, service, 10 * FINNEY, sender=payer, value=10 * FINNEY)
    licenses.deposit(ETH, str(stranger.address), 50 * FINNEY, sender=payer, value=50 * FINNEY)  # another service's
    chain_id, verifying = int(chain.chain_id), str(licenses.address)
    deadline = int(chain.pending_timestamp) + 86_400

    def voucher(asset: int, amount: int, *, key: str | None = None, until: int = deadline) -> SignedVoucher:
        v = Voucher(str(payer.address), service, assets[asset], terms[asset], amount, until)
        return SignedVoucher(v, sign_voucher(v, key or payer.private_key, chain_id, verifying))

    good_a_old, good_a, good_b = voucher(0, 2 * FINNEY), voucher(0, 3 * FINNEY), voucher(1, 1 * FINNEY)
    forged = voucher(2, 4 * FINNEY, key=Account.create().key)  # not the payer's signature
    too_much = voucher(3, 20 * FINNEY)  # more than the escrow with this service holds (50 with another do not count)
    expired = voucher(4, 2 * FINNEY, until=int(chain.pending_timestamp) - 10)
    # terms never attached (getTerms reverts for them): left out, never failing its neighbours
    ghost = Voucher(str(payer.address), service, assets[0], int(licenses.termsCount()) + 100, FINNEY, deadline)
    unknown = SignedVoucher(ghost, sign_voucher(ghost, payer.private_key, chain_id, verifying))
    everything = [good_a_old, good_a, good_b, forged, too_much, expired, unknown]

    async def main() -> dict[str, int]:
        for sv in [*everything, good_b]:  # good_b handed in twice: one job
            await parts.journal.call(submit_voucher, parts.journal, sv)
        agents = build_agents(parts, names=["settlement"], linger_s=0.2, idle=0.05, withdraw_every_s=0.2)
        await agents.start()
        try:
            counts = await agents.until(all_final(), within_s=300)
            client = parts.chain()  # the chain as the daemons reach it (their node thread), while they run

            async def withdrawn() -> bool:  # distributed, then withdrawn by the agent's schedule
                distributed = int(await client.call("RoyaltySplitter", "distributedOf", assets[0], ETH))
                owed = int(await client.call("RoyaltySplitter", "balanceOf", operator.address, ETH))
                return distributed == 3 * FINNEY and owed == 0

            for _ in range(600):
                if await withdrawn():
                    break
                await asyncio.sleep(0.05)
            return counts
        finally:
            await agents.stop()

    counts = asyncio.run(main())
    assert sum(counts.values()) == len(everything)
    assert int(licenses.settledOf(payer.address, service, terms[0])) == 3 * FINNEY
    assert int(licenses.settledOf(payer.address, service, terms[3])) == 0
    stages = {signature: (stage, payload.get("reason", "")) for signature, (stage, payload) in journaled(parts).items()}
    assert stages[sig(good_b)][0] == jobs.SETTLED and stages[sig(good_a)][0] == jobs.SETTLED
    assert stages[sig(forged)][0] == jobs.SKIPPED and "LicenseManager__WrongSigner" in stages[sig(forged)][1]
    assert stages[sig(expired)][0] == jobs.SKIPPED and "expired" in stages[sig(expired)][1]
    assert stages[sig(too_much)][0] == jobs.SKIPPED
    assert stages[sig(too_much)][1].startswith(f"the payer's escrow with service {service} cannot cover it (needs ")
    assert stages[sig(good_a_old)][0] == jobs.SKIPPED and "superseded" in stages[sig(good_a_old)][1]
    assert stages[sig(unknown)][0] == jobs.SKIPPED and "terms" in stages[sig(unknown)][1]
    assert int(licenses.settledOf(payer.address, service, terms[1])) == FINNEY
    assert int(licenses.escrowOf(payer.address, ETH, service)[0]) == 6 * FINNEY
    assert int(licenses.escrowOf(payer.address, ETH, str(stranger.address))[0]) == 50 * FINNEY  # untouched
    # the creator's share was withdrawn by the agent's schedule; nothing is left for it
    assert int(splitter.balanceOf(operator.address, ETH)) == 0
    assert int(splitter.distributedOf(assets[0], ETH)) == 3 * FINNEY
    # each voucher a settle transaction carried has its share of it, settled or skipped, and that
    # share is a cost of the asset it paid for
    web3 = chain.provider.web3
    settled = {key: payload for key, payload in voucher_payloads(parts).items() if costs.SETTLE in payload}
    assert settled and all(payload.get("settle_tx") or payload.get("skipped_tx") for payload in settled.values())
    for payload in settled.values():
        share = payload[costs.SETTLE]
        receipt = web3.eth.get_transaction_receipt(share["tx"])
        assert share["gas"] == -(-receipt["gasUsed"] // share["jobs"])
    book = costs.Settlements(settled)
    asset_a = {"sha256": assets[0].hex(), "seq": 1}
    expected = sum(p[costs.SETTLE]["gas"] for p in settled.values() if p["asset"].lower().endswith(assets[0].hex()))
    assert expected > 0 and costs.summarise([asset_a], PRICES, book)["byStage"]["settle"]["gas"] == expected

    # settled by another settler of the service (the service's key elsewhere) before the agent saw
    # it: counted as settled, nothing sent
    late = voucher(1, 2 * FINNEY)  # channel b, past good_b
    licenses.settle(*Batch(ETH, service, [late]).call_args(), sender=operator)
    # a voucher for another service: only that service may settle it, so it is left (nothing sent)
    other = Voucher(str(payer.address), str(stranger.address), assets[5], terms[5], FINNEY, deadline)
    elsewhere = SignedVoucher(other, sign_voucher(other, payer.private_key, chain_id, verifying))

    async def again() -> dict[str, int]:
        for sv in (late, elsewhere):
            await parts.journal.call(submit_voucher, parts.journal, sv)
        agents = build_agents(parts, names=["settlement"], linger_s=0.1, idle=0.05, withdraw_every_s=None)
        await agents.start()
        try:
            return await agents.until(all_final(), within_s=120)
        finally:
            await agents.stop()

    asyncio.run(again())
    job = parts.journal.get("voucher-" + late.signature.hex()[:64])
    assert job is not None and job.stage == jobs.SETTLED and job.payload["reason"] == "already settled"
    stage, payload = journaled(parts)[sig(elsewhere)]
    assert (stage, payload["reason"]) == (
        jobs.SKIPPED,
        f"for service {stranger.address}, not {service}: only its service may settle it",
    )
    assert int(licenses.settledOf(payer.address, str(stranger.address), terms[5])) == 0


def test_settlement_records_what_the_receipt_says_when_vouchers_are_front_run(
    parts: Parts, project: Any, local_chain: Any, accounts: Any, chain: Any
):
    """Between planning and mining another settler of the service (its key used elsewhere, as a
    second daemon or `ape run settle` would) settles one voucher of the batch (the same one) and
    a newer voucher of another channel: the batch is not reverted; the rest settles in it, and
    each voucher is journaled as its event in the receipt says: the front-run one as settled
    (already, not by this transaction), the superseded one as skipped with the reason; no amount
    is paid twice."""
    operator, payer = accounts[0], accounts[5]
    licenses = contract(project, local_chain, "LicenseManager")
    splitter = contract(project, local_chain, "RoyaltySplitter")
    assets, terms = metered_assets(project, local_chain, operator, ("x", "y", "z"))
    service = str(operator.address)
    licenses.deposit(ETH, service, 10 * FINNEY, sender=payer, value=10 * FINNEY)
    chain_id, verifying = int(chain.chain_id), str(licenses.address)
    deadline = int(chain.pending_timestamp) + 86_400

    def voucher(asset: int, amount: int) -> SignedVoucher:
        v = Voucher(str(payer.address), service, assets[asset], terms[asset], amount, deadline)
        return SignedVoucher(v, sign_voucher(v, payer.private_key, chain_id, verifying))

    front_run, superseded, plain = voucher(0, 2 * FINNEY), voucher(1, 1 * FINNEY), voucher(2, 3 * FINNEY)
    newer = voucher(1, 4 * FINNEY)  # channel y, never handed to the agent

    class FrontRun(SettleStage):
        async def _settle(self, batch: Batch, key_of: dict[int, str]) -> list[Any]:
            assert len(batch.vouchers) == 3  # the plan holds all three: the stranger comes after it
            first = Batch(ETH, service, [front_run, newer]).call_args()
            await self.client.node(lambda: licenses.settle(*first, sender=operator))
            return await super()._settle(batch, key_of)

    async def main() -> dict[str, int]:
        for sv in (front_run, superseded, plain):
            await parts.journal.call(submit_voucher, parts.journal, sv)
        stage = FrontRun(parts.journal, parts.chain(), worker="test/settlement", min_batch=3, linger_s=5, idle=0.05)
        agents = Agents(parts.journal, [stage], clients=[parts.chain()])
        await agents.start()
        try:
            return await agents.until(all_final(), within_s=120)
        finally:
            await agents.stop()

    counts = asyncio.run(main())
    assert counts == {jobs.SETTLED: 2, jobs.SKIPPED: 1}
    found = journaled(parts)
    (tx,) = {payload["settle_tx"] for _, payload in found.values() if "settle_tx" in payload}
    stage, payload = found[sig(plain)]
    share = payload.pop(costs.SETTLE)  # its share of the transaction: 3 vouchers in it, 1 settled
    assert (stage, payload) == (jobs.SETTLED, {**plain.as_json(), "settle_tx": tx, "batch_size": 1})
    assert (share["tx"], share["jobs"]) == (tx, 3)
    stage, payload = found[sig(front_run)]
    assert (stage, payload["reason"], payload["skip"], payload["skipped_tx"]) == (
        jobs.SETTLED,
        "already settled",
        "already_settled",
        tx,
    )
    assert "settle_tx" not in payload
    stage, payload = found[sig(superseded)]
    assert (stage, payload["skip"], payload["skipped_tx"]) == (jobs.SKIPPED, "below_settled", tx)
    assert "a newer voucher was settled first" in payload["reason"]
    # each amount paid once: 2 (front-run, by the other settler) + 4 (newer, likewise) + 3 (ours)
    assert [int(licenses.settledOf(payer.address, service, t)) for t in terms] == [2 * FINNEY, 4 * FINNEY, 3 * FINNEY]
    assert int(licenses.escrowOf(payer.address, ETH, service)[0]) == FINNEY
    assert int(splitter.pendingRevenueOf(assets[0], ETH)) + int(splitter.distributedOf(assets[0], ETH)) == 2 * FINNEY
    assert int(splitter.distributedOf(assets[2], ETH)) == 3 * FINNEY  # the agent distributed what it settled


class DiesAfterRegisterMany(RegisterStage):
    async def _journal_registered(self, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("killed between the mined registerMany and the journal write")


URI = "ipfs://bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"


def published_job(parts: Parts, label: str, *, uri: str = URI) -> str:
    """A job at `published` as the publisher leaves it (what the registrar reads), made directly."""
    digest = hashlib.sha256(label.encode()).hexdigest()
    payload = {"sha256": digest, "params_digest": digest, "commitment": digest, "metadata_uri": uri}
    parts.journal.submit(f"job-{label}", jobs.ASSET, payload, stage=jobs.PUBLISHED)
    return f"job-{label}"


def test_register_many_reconciles_after_a_crash_and_isolates_a_bad_asset(
    parts: Parts, project: Any, local_chain: Any, accounts: Any
):
    registry = contract(project, local_chain, "ProvenanceRegistry")
    client = parts.chain()
    first = [published_job(parts, f"first-{i}") for i in range(3)]

    async def crash_then_reconcile() -> None:
        await client.start()
        await parts.journal.call(
            parts.journal.record_intent, MANY_INTENT, ["never-sent"], {"digests": ["22" * 32], "from_block": 0}
        )
        dying = DiesAfterRegisterMany(parts.journal, client, model_id=local_chain.t2i_model_id, worker="w1", batch=8)
        claimed = await parts.journal.call(parts.journal.claim, jobs.PUBLISHED, "w1", limit=8, lease_s=60)
        with pytest.raises(RuntimeError, match="killed"):
            await dying.process(claimed)
        fresh = RegisterStage(parts.journal, client, model_id=local_chain.t2i_model_id, worker="w1", batch=8)
        assert await fresh.reconcile() == {"registered": 1, "forgotten": 1}
        assert await parts.journal.call(parts.journal.open_intents, MANY_INTENT) == []

    asyncio.run(crash_then_reconcile())
    assert int(registry.assetCount()) == 3
    for key in first:
        job = parts.journal.get(key)
        assert job is not None and job.stage == jobs.REGISTERED
        assert int(registry.getAsset(bytes.fromhex(job.payload["sha256"])).seq) == job.payload["seq"]

    # a batch with an asset someone else registered and one the contract refuses (no metadata URI)
    good = [published_job(parts, f"good-{i}") for i in range(2)]
    bad = published_job(parts, "bad", uri="")
    taken = published_job(parts, "taken")
    taken_digest = hashlib.sha256(b"taken").digest()
    outside = AssetRecord(
        taken_digest, str(accounts[0].address), local_chain.t2i_model_id, taken_digest, taken_digest, (), URI
    )
    registry.register(outside.as_tuple(), [], sender=accounts[0])

    async def split() -> dict[str, int]:
        agents = build_agents(
            parts, names=["registrar"], register_batch=8, linger_s=0.1, idle=0.05, withdraw_every_s=None
        )
        await agents.start()
        try:
            # registered jobs move on to delivered in a stage of their own: wait for both
            return await agents.until(lambda c: not c.get(jobs.PUBLISHED) and not c.get(jobs.REGISTERED), within_s=120)
        finally:
            await agents.stop()

    counts = asyncio.run(split())
    assert counts == {jobs.DELIVERED: 6, jobs.FAILED: 1}, counts
    failed = parts.journal.get(bad)
    assert failed is not None and "BadMetadataURI" in (failed.error or "")
    assert int(registry.assetCount()) == 3 + 1 + 2  # nothing registered twice
    for key in [*good, taken]:
        job = parts.journal.get(key)
        assert job is not None and job.stage == jobs.DELIVERED


def test_a_prover_refuses_a_head_whose_bands_are_not_the_model_versions(
    parts: Parts, local_chain: Any, curation_head: HeadModel
):
    """The prover's head and the bands bound on chain must agree, or the curator would accept what
    the chain records as review or reject (`proofmint agent prover` checks before it starts)."""
    asyncio.run(check_head_bands(parts.chain(), local_chain.head_models, curation_head))
    other = dataclasses.replace(curation_head, accept_fixed=curation_head.accept_fixed + 1)
    with pytest.raises(HeadError, match="has the bands accept >= 6472, reject < 4588 on chain, but the curation head"):
        asyncio.run(check_head_bands(parts.chain(), local_chain.head_models, other))
