"""`proofmint verify` on real assets: two requests run through the agents to `attested` on the
chain under test (real models, real EZKL proofs, one x1 proof and one attestInference each), then
audited from public data (`agents.app.audit`, and the command through click).

- every fact of a pipeline asset holds, whether it is named by digest from the store, by CID
  through an HTTP gateway, or through the command with a deployment record (`--json`);
- a tampered byte in the image fails `digest` (and `cid`, the commitment and the C2PA binding);
- the same-looking content registered with another input commitment fails `commitment` alone;
- another asset's attesting transaction presented as the proof fails `proof`, and a proof
  spliced with another asset's instances verifies neither with ezkl nor on chain.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from click.testing import CliRunner
from PIL import Image

from agents.app import verify_cli
from agents.app.audit import (
    AuditOptions,
    ChainView,
    GatewaySource,
    Report,
    Sources,
    Status,
    StoreSource,
    audit,
    cid_of,
    ezkl_verify,
    local_circuit,
    verifier_accepts,
)
from agents.app.main import cli
from agents.app.wiring import Models, build_agents, open_parts
from agents.core.merkle import AssetRecord
from agents.core.requests import GenerationRequest
from agents.core.toolchain import project_root
from agents.daemons.publish import commitment_of
from agents.models.head import payload_row
from agents.runtime import jobs
from agents.runtime.chain import CORE, load_abis
from agents.runtime.journal import Job
from agents.storage.car import write_car
from agents.storage.cid import Cid
from agents.storage.manifest import canonical_json
from agents.storage.store import LocalStore
from tests.agents.daemons.helpers import ASSET_PROMPTS, FRONT, contract
from zkml.settings import PINNED

pytestmark = [pytest.mark.chain, pytest.mark.slow]  # the embedded pass runs it (make test budget)

ROOT = project_root()


@dataclass(frozen=True)
class Attested:
    """Two pipeline assets, attested one proof each, in the order they were registered."""

    jobs: list[Job]
    store: LocalStore
    trust_anchors: bytes

    def digest(self, i: int) -> bytes:
        return bytes.fromhex(self.jobs[i].payload["sha256"])


@pytest.fixture(scope="module")
def attested(
    local_chain: Any, chain: Any, accounts: Any, models: Models, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Attested]:
    """Run once for the module: the front of the pipeline and a prover with the x1 circuit only,
    so each asset has an attesting transaction of its own."""
    parts = asyncio.run(
        open_parts(
            ROOT,
            tmp_path_factory.mktemp("verify") / "state",
            web3=chain.provider.web3,
            key=accounts[0].private_key,
            addresses=local_chain.addresses,
            t2i_model_id=local_chain.t2i_model_id,
            head_models={1: local_chain.head_models[1]},
            sender_poll=0.02,
            models=models,
        )
    )

    async def run() -> list[Job]:
        for i, prompt in enumerate(ASSET_PROMPTS):
            request = GenerationRequest(prompt, 7_300 + i)
            await parts.journal.call(jobs.submit_request, parts.journal, request, requester="audit", source="cli")
        agents = build_agents(
            parts,
            names=[*FRONT, "prover"],
            register_batch=len(ASSET_PROMPTS),
            linger_s=0.2,
            idle=0.05,
            withdraw_every_s=None,
        )
        await agents.start()
        try:
            await agents.until(all_done, within_s=600)
        finally:
            await agents.stop()
        done = await parts.journal.call(parts.journal.at_stage, jobs.ATTESTED)
        return sorted(done, key=lambda job: int(job.payload["seq"]))

    def all_done(counts: dict[str, int]) -> bool:
        return sum(counts.values()) == len(ASSET_PROMPTS) and set(counts) <= {jobs.ATTESTED, jobs.UNPROVEN}

    try:
        done = asyncio.run(run())
        assert len(done) == len(ASSET_PROMPTS), "both assets attested"
        assert done[0].payload["attest_tx"] != done[1].payload["attest_tx"]
        yield Attested(done, parts.store, parts.signer().ca_pem)
    finally:
        parts.close()


def chain_view(chain: Any, local_chain: Any) -> ChainView:
    return ChainView(chain.provider.web3, local_chain.addresses, load_abis(ROOT, CORE))


def options(attested: Attested, *, regenerate: bool = True, **changes: Any) -> AuditOptions:
    """The CLI's defaults; without `regenerate`, a model folder of other weights (re-generation is
    then skipped, saving its seconds where a test is about another fact)."""
    made = AuditOptions(
        clip=f"local-dir:{ROOT / 'models' / 'tiny-clip'}",
        t2i=ROOT / "models" / ("tiny-t2i" if regenerate else "tiny-clip"),
        circuits=ROOT / ".cache" / "zkml-agents",
        input_scale=PINNED.input_scale,
        trust_anchors=attested.trust_anchors,
    )
    return replace(made, **changes)


def run_audit(view: ChainView, target: str, sources: list[Any], opts: AuditOptions) -> Report:
    return asyncio.run(audit(view, target, Sources(sources), opts))


def statuses(report: Report) -> dict[str, str]:
    return {fact.name: fact.status.value for fact in report.facts}


def record_file(tmp_path: Path, chain: Any, local_chain: Any) -> Path:
    """A deployment record of the chain under test, as `ape run deploy` writes one."""
    contracts = [
        {"name": name, "address": address, "txn_hash": "", "gas_used": 0, "block_number": 0}
        for name, address in local_chain.addresses.items()
    ]
    path = tmp_path / "deployment.json"
    path.write_text(json.dumps({"network": "test", "chainId": int(chain.chain_id), "contracts": contracts}))
    return path


def test_every_fact_of_an_attested_pipeline_asset_holds(attested: Attested, chain: Any, local_chain: Any):
    view = chain_view(chain, local_chain)
    report = run_audit(view, "0x" + attested.digest(0).hex(), [StoreSource(attested.store)], options(attested))
    assert statuses(report) == dict.fromkeys(statuses(report), "ok"), [f for f in report.facts if f.status != "ok"]
    assert list(statuses(report)) == [
        "digest",
        "cid",
        "metadata",
        "lineage",
        "commitment",
        "attestation",
        "proof",
        "c2pa",
        "regeneration",
    ]
    assert report.ok(strict=True) and report.asset["seq"] == attested.jobs[0].payload["seq"]
    # the publisher's metadata carries the committed row, which the recomputed embedding matches
    assert "the metadata's 64-value head row at 2^-13" in report.fact("commitment").detail
    tx = attested.jobs[0].payload["attest_tx"]
    assert tx.removeprefix("0x")[:8] in report.fact("proof").detail and "ezkl.verify" in report.fact("proof").detail
    assert "verifyProof (eth_call): true" in report.fact("proof").detail


def test_an_asset_named_by_cid_verifies_through_an_http_gateway(attested: Attested, chain: Any, local_chain: Any):
    store = attested.store

    async def ipfs(request: web.Request) -> web.Response:
        try:
            return web.Response(body=store.read(Cid.parse(request.match_info["cid"])))
        except Exception:
            return web.Response(status=404)

    async def main() -> Report:
        app = web.Application()
        app.router.add_get("/ipfs/{cid}", ipfs)
        server = TestServer(app)
        await server.start_server()
        try:
            async with aiohttp.ClientSession() as session:
                gateway = GatewaySource(str(server.make_url("/")), session)
                opts = options(attested, regenerate=False)
                return await audit(
                    chain_view(chain, local_chain), attested.jobs[1].payload["cid"], Sources([gateway]), opts
                )
        finally:
            await server.close()

    report = asyncio.run(main())
    assert report.digest == attested.digest(1)
    assert report.failed() == [] and report.fact("digest").detail.find("gateway") > 0
    assert report.fact("regeneration").status is Status.SKIPPED and "tiny-clip" in report.fact("regeneration").detail


def test_the_command_prints_json_and_strict_fails_a_skipped_fact(
    attested: Attested, chain: Any, local_chain: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(verify_cli, "connect", lambda rpc: chain.provider.web3)
    args = [
        "verify",
        "0x" + attested.digest(1).hex(),
        "--deployment",
        str(record_file(tmp_path, chain, local_chain)),
        "--store",
        str(attested.store.root),
        "--t2i",
        str(ROOT / "models" / "tiny-clip"),  # other weights: re-generation is skipped
        "--json",
    ]
    result = CliRunner(mix_stderr=False).invoke(cli, args)
    assert result.exit_code == 0, (result.output, result.stderr)
    answer = json.loads(result.stdout)
    assert answer["ok"] is True and answer["failed"] == [] and answer["digest"] == args[1]
    assert {f["name"]: f["status"] for f in answer["facts"]}["regeneration"] == "skipped"
    assert "recomputing the image and prompt embeddings" in result.stderr  # progress, on standard error
    strict = CliRunner(mix_stderr=False).invoke(cli, [*args[:-1], "--strict"])
    assert strict.exit_code == 1
    assert strict.stdout.splitlines()[-1].startswith("NOT VERIFIED: regeneration")
    unknown = CliRunner(mix_stderr=False).invoke(cli, ["verify", "0x" + "00" * 31 + "01", *args[2:]])
    assert unknown.exit_code == 2 and "Error: no asset 0x" in unknown.stderr and unknown.stdout == ""


def test_a_tampered_byte_in_the_image_fails_the_digest_fact(
    attested: Attested, chain: Any, local_chain: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    payload = attested.jobs[0].payload
    image = Cid.parse(payload["cid"])
    png = attested.store.read(image)
    tampered = bytearray(png)
    tampered[len(png) // 2] ^= 0x01
    # a copy of the store whose image block holds the tampered bytes under the image's CID
    copy = tmp_path / "store"
    shutil.copytree(attested.store.root, copy)
    block = copy / "blocks" / image.digest.hex()[:2] / image.digest.hex()
    block.write_bytes(bytes(tampered))
    report = run_audit(
        chain_view(chain, local_chain), "0x" + payload["sha256"], [StoreSource(LocalStore(copy))], options(attested)
    )
    failed = [f.name for f in report.failed()]
    assert failed[:2] == ["digest", "cid"] and "c2pa" in failed and "regeneration" in failed, report.facts
    assert "the bytes were altered" in report.fact("digest").detail
    assert report.fact("metadata").status is Status.OK and report.fact("lineage").status is Status.OK
    # the same bytes in a CAR file, through the command: exit status 1, the failed facts named
    files = [image, *(Cid.parse(payload[k]) for k in ("metadata_cid", "params_cid", "manifest_cid"))]
    blocks = [(image, bytes(tampered))] + [(cid, attested.store.read(cid)) for cid in files[1:]]
    car = tmp_path / "tampered.car"
    with car.open("wb") as out:
        write_car(image, iter(blocks), out)
    monkeypatch.setattr(verify_cli, "connect", lambda rpc: chain.provider.web3)
    (tmp_path / "empty").mkdir()  # a store without the asset: the CAR is all there is
    result = CliRunner(mix_stderr=False).invoke(
        cli,
        [
            "verify",
            payload["cid"],
            "--deployment",
            str(record_file(tmp_path, chain, local_chain)),
            "--car",
            str(car),
            "--store",
            str(tmp_path / "empty"),
            "--t2i",
            str(ROOT / "models" / "tiny-clip"),
        ],
    )
    assert result.exit_code == 1, (result.output, result.stderr)
    lines = result.stdout.splitlines()
    assert any(line.startswith("FAIL  digest") and "altered" in line for line in lines), lines
    assert lines[-1].startswith("NOT VERIFIED: digest, cid")


def _register_a_copy(
    attested: Attested, local_chain: Any, project: Any, accounts: Any, tmp_path: Path, head_input: bool
) -> tuple[Any, Cid, bytes]:
    """The first asset's pixels as other bytes, registered by a stranger (test:4) with the
    commitment of the SECOND asset's head row under this digest, its document naming the second's
    prompt (only the image embedding differs); with `head_input`, its metadata publishes that
    row's integers (consistent with the registered commitment). The store, the copy's CID, its bytes."""
    from zkml.pipeline import quantized, quantized_commitment

    first, second = attested.jobs
    png = attested.store.read(Cid.parse(first.payload["cid"]))
    buffer = io.BytesIO()
    Image.open(io.BytesIO(png)).save(buffer, "PNG", compress_level=9)  # the same pixels, other bytes
    copy = buffer.getvalue()
    digest = hashlib.sha256(copy).digest()
    assert copy != png and Image.open(io.BytesIO(copy)).tobytes() == Image.open(io.BytesIO(png)).tobytes()
    values = quantized(payload_row(second.payload), PINNED.input_scale)
    wrong = commitment_of(payload_row(second.payload), digest, PINNED.input_scale)
    assert wrong == quantized_commitment(values, digest)
    store = LocalStore(tmp_path / "store")
    prompt = second.payload["request"]["prompt"]
    document = canonical_json({"kind": "test/copy", "sha256": "0x" + digest.hex(), "prompt": prompt})
    image_cid, params_cid = store.add_bytes(copy), store.add_bytes(document)
    properties: dict[str, Any] = {
        "sha256": digest.hex(),
        "paramsDigest": hashlib.sha256(document).hexdigest(),
        "paramsDocument": f"ipfs://{params_cid}",
    }
    if head_input:
        properties["headInput"] = {"inputScale": PINNED.input_scale, "values": values}
    metadata = {"name": "a copy", "image": f"ipfs://{image_cid}", "properties": properties}
    metadata_cid = store.add_bytes(canonical_json(metadata))
    record = AssetRecord(
        content_digest=digest,
        creator=str(accounts[4].address),
        model_id=local_chain.t2i_model_id,
        params_digest=hashlib.sha256(document).digest(),
        input_commitment=wrong.to_bytes(32, "big"),
        metadata_uri=f"ipfs://{metadata_cid}",
    )
    contract(project, local_chain, "ProvenanceRegistry").register(record.as_tuple(), [], sender=accounts[4])
    return store, image_cid, copy


@pytest.mark.parametrize(
    ("head_input", "says"),
    [
        (False, "the registered commitment is of another input"),
        (True, "the published input is not these bytes' embedding"),
    ],
    ids=["recomputed", "published"],
)
def test_same_looking_content_registered_with_another_commitment_fails_the_commitment_fact(
    attested: Attested,
    chain: Any,
    local_chain: Any,
    project: Any,
    accounts: Any,
    tmp_path: Path,
    head_input: bool,
    says: str,
):
    """Without `headInput` the row recomputed from the bytes must commit to the record's binding;
    with one (the squatter's own, consistent with the commitment it registered) the published
    integers must be these bytes' embedding: either way the other image's row is caught."""
    store, image_cid, copy = _register_a_copy(attested, local_chain, project, accounts, tmp_path, head_input)
    report = run_audit(chain_view(chain, local_chain), str(image_cid), [StoreSource(store)], options(attested))
    assert [f.name for f in report.failed()] == ["commitment"], report.facts
    assert says in report.fact("commitment").detail
    assert statuses(report) == {
        "digest": "ok",
        "cid": "ok",
        "metadata": "ok",
        "lineage": "ok",
        "commitment": "fail",
        "attestation": "skipped",
        "proof": "skipped",
        "c2pa": "skipped",
        "regeneration": "skipped",
    }
    assert report.ok() is False and cid_of(copy) == image_cid


def test_another_assets_proof_fails_the_proof_fact(attested: Attested, chain: Any, local_chain: Any):
    view = chain_view(chain, local_chain)
    mine, other = attested.jobs
    opts = options(attested, regenerate=False, proof_tx=bytes.fromhex(other.payload["attest_tx"].removeprefix("0x")))
    report = run_audit(view, "0x" + mine.payload["sha256"], [StoreSource(attested.store)], opts)
    assert [f.name for f in report.failed()] == ["proof"], report.facts
    assert "a proof of another asset" in report.fact("proof").detail
    assert report.fact("attestation").status is Status.OK  # its own attestation stands; the proof shown is not it


def test_a_proof_spliced_with_another_assets_instances_verifies_neither_with_ezkl_nor_on_chain(
    attested: Attested, chain: Any, local_chain: Any
):
    web3 = chain.provider.web3
    registry = chain_view(chain, local_chain).registry
    calls = []
    for job in attested.jobs:
        tx = web3.eth.get_transaction(job.payload["attest_tx"])
        _, args = registry.decode_function_input(tx["input"])
        calls.append((bytes(args["proof"]), list(args["instances"]), int(args["modelId"])))
    (proof_a, instances_a, model_id), (proof_b, instances_b, _) = calls
    models = contract_at(chain, local_chain, "ModelRegistry")
    verifier, vk_digest, _ = models.functions.verifierOf(model_id).call()
    circuit = local_circuit(ROOT / ".cache" / "zkml-agents", bytes(vk_digest))
    assert circuit is not None
    assert ezkl_verify(circuit, proof_a, instances_a) and ezkl_verify(circuit, proof_b, instances_b)
    assert not ezkl_verify(circuit, proof_b, instances_a)
    assert verifier_accepts(web3, verifier, proof_a, instances_a)
    assert not verifier_accepts(web3, verifier, proof_b, instances_a)


def contract_at(chain: Any, local_chain: Any, name: str) -> Any:
    web3 = chain.provider.web3
    return web3.eth.contract(address=local_chain.addresses[name], abi=load_abis(ROOT, (name,))[name])


def test_a_squatters_version_that_replays_a_proof_with_other_bands_fails_the_attestation_fact(
    attested: Attested, chain: Any, local_chain: Any, project: Any, accounts: Any
):
    """A stranger registers the head's weights as a version of their own, binds the same verifier
    with bands that reject everything and replays the genuine proof under it: the chain then holds
    two verdicts for one proven score. The audit shows who stands behind each version and fails."""
    mine = attested.jobs[0]
    models = contract(project, local_chain, "ModelRegistry")
    registry = contract(project, local_chain, "ProvenanceRegistry")
    _, head_id = local_chain.head_models[1]
    genuine = models.getModel(head_id)
    squatter = accounts[9]
    models.registerModel(
        (genuine.weightsDigest, genuine.paramsCommitment, b"\0" * 32, 0, 0, 0, "ipfs://sham"), sender=squatter
    )
    sham = int(models.modelIdOf(squatter.address, genuine.weightsDigest))
    models.bindVerifier(sham, genuine.verifier, genuine.vkDigest, 2**29 - 1, 2**29 - 1, sender=squatter)
    tx = chain.provider.web3.eth.get_transaction(mine.payload["attest_tx"])
    _, args = chain.provider.web3.eth.contract(abi=registry.contract_type.model_dump()["abi"]).decode_function_input(
        tx["input"]
    )
    registry.attestInference(sham, args["seqs"], args["proof"], args["instances"], sender=squatter)
    assert tuple(registry.attestationOf(attested.digest(0), sham))[2] == 1  # reject, for the same score

    report = run_audit(
        chain_view(chain, local_chain),
        "0x" + mine.payload["sha256"],
        [StoreSource(attested.store)],
        options(attested, regenerate=False),
    )
    fact = report.fact("attestation")
    assert fact.status is Status.FAIL and "model versions disagree on this asset" in fact.detail
    assert f"developer {squatter.address}" in fact.detail and "verdict reject" in fact.detail
    assert "verdict accept" in fact.detail and report.ok() is False
