"""High resolution in stages (`agents.daemons.upscale`): every registered base of the operator's
gets an upscale of its own, made by the shipped upscaler from the base's stored bytes, curated
again (its base is no duplicate of it), and registered on chain as a derivative of the base under
the upscaler's model version with a licence of the base that the operator took and the
registration burnt; a base of another creator is left alone, saying why; taking the licence
twice (a crash between its steps) buys nothing twice, and the terms it took it under are no
standing offer to anyone else. On the chain under test with the real daemons and models."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ape
import pytest

from agents.app.wiring import Models, Parts, build_agents
from agents.core import costs
from agents.core.digests import weights_digest
from agents.core.requests import GenerationRequest
from agents.core.toolchain import project_root
from agents.daemons.upscale import UpscaleStage, UpscaleTerms, child_key, licence_id
from agents.models.upscaler import DEFAULT_UPSCALER, Upscaler
from agents.runtime import jobs
from agents.storage.cid import Cid
from agents.storage.manifest import canonical_json
from tests.agents.daemons.conftest import open_test_parts
from tests.agents.daemons.helpers import ASSET_PROMPTS, FRONT, contract

pytestmark = pytest.mark.chain

UPSCALER = project_root() / DEFAULT_UPSCALER


@pytest.fixture(scope="module")
def upscaler() -> Iterator[Upscaler]:
    loaded = Upscaler.load(UPSCALER)
    yield loaded
    loaded.close()


@pytest.fixture
def upscale_parts(
    local_chain: Any, chain: Any, accounts: Any, models: Models, upscaler: Upscaler, tmp_path: Path
) -> Iterator[Parts]:
    opened = open_test_parts(
        local_chain,
        chain,
        accounts,
        dataclasses.replace(models, upscaler=upscaler),  # the session's, plus the upscaler
        tmp_path / "state",
        names=[*FRONT, "upscaler"],
        upscaler_model_id=local_chain.upscaler_model_id,
    )
    yield opened
    opened.close()


@pytest.mark.slow  # the daemons from generator to registrar, with their models: once, on the embedded chain
def test_each_registered_base_gets_an_upscale_registered_as_its_derivative(
    upscale_parts: Parts, upscaler: Upscaler, project: Any, local_chain: Any, accounts: Any
) -> None:
    parts, operator, other = upscale_parts, accounts[0], accounts[6]
    registry = contract(project, local_chain, "ProvenanceRegistry")
    licenses = contract(project, local_chain, "LicenseManager")
    registry.setRegistrar(operator.address, True, sender=other)  # a base the agents register for `other`
    journal = parts.journal
    bases = [
        jobs.submit_request(journal, GenerationRequest(prompt, 7_000 + i), requester=str(operator.address),
                            source="api", extra={"project": "covers"})[0]
        for i, prompt in enumerate(ASSET_PROMPTS)
    ]  # fmt: skip
    theirs = jobs.submit_request(journal, GenerationRequest(ASSET_PROMPTS[0], 7_100), requester=str(other.address),
                                 source="api", extra={"creator": str(other.address)})[0]  # fmt: skip
    everything = [*bases, theirs]
    children = [child_key(key) for key in everything]

    async def run() -> None:
        agents = build_agents(parts, names=[*FRONT, "upscaler"], register_batch=4, linger_s=0.2, idle=0.05,
                              withdraw_every_s=None)  # fmt: skip
        await agents.start()
        try:

            def done(_: dict[str, int]) -> bool:
                found = [journal.get(k) for k in children]
                ends = (jobs.DELIVERED, jobs.CANCELLED, jobs.REJECTED, jobs.REVIEW, jobs.FAILED)
                return all(job is not None and job.stage in ends for job in found)

            await agents.until(done, within_s=600)
        finally:
            await agents.stop()

    asyncio.run(run())
    upscaler_id = local_chain.upscaler_model_id
    assert upscaler_id not in (0, local_chain.t2i_model_id)
    for key in bases:
        base, child = journal.get(key), journal.get(child_key(key))
        assert base is not None and child is not None
        cur = child.payload.get("curation") or {}
        assert child.stage == jobs.DELIVERED, (child.stage, cur.get("reason"), cur.get("flags"), cur.get("score"))
        b, c = base.payload, child.payload
        # made by the upscaler from the base's stored bytes: an auditor re-running it gets these bytes
        png = parts.store.read(Cid.parse(c["cid"]))
        again = asyncio.run(upscaler.upscale(parts.store.read(Cid.parse(b["cid"])), b["request"]["prompt"]))
        assert again.png == png and hashlib.sha256(png).hexdigest() == c["sha256"]
        assert (again.width, again.height) == (2 * b["width"], 2 * b["height"])
        lineage = c["lineage"]
        assert (lineage["model_id"], lineage["parents"]) == (upscaler_id, [b["sha256"]])
        assert lineage["model_digest"] == weights_digest(UPSCALER).hex() and lineage["prompt"] == b["request"]["prompt"]
        document = parts.store.read(Cid.parse(c["params_cid"]))
        assert document == canonical_json(lineage) and hashlib.sha256(document).hexdigest() == c["params_digest"]
        # curated again, and its base (which it resembles) is not a duplicate of it
        assert c["curation"]["decision"] == "accept" and c["curation"]["duplicate_of"] is None
        assert c[costs.GENERATE]["cpu_s"] > 0 and c["project"] == "covers"  # its cost, the base's project
        assert c[costs.GENERATE]["gas"] > 0 and len(c[costs.GENERATE]["licence_txs"]) == 3  # the licence's too
        # on chain: a derivative of the base, under the upscaler's version, the licence burnt
        digest, parent = bytes.fromhex(c["sha256"]), bytes.fromhex(b["sha256"])
        record = registry.getAsset(digest)
        assert int(record.modelId) == upscaler_id and str(record.creator) == operator.address
        parents, shares = registry.parentsOf(digest)
        assert [bytes(p) for p in parents] == [parent] and [int(s) for s in shares] == [UpscaleTerms().royalty_bps]
        (licence,) = (int(x) for x in c["license_ids"])
        assert int(licenses.balanceOf(operator.address, licence)) == 0  # consumed by the registration
        terms_id = licence >> 64
        terms = licenses.getTerms(terms_id)
        assert bytes(terms.asset) == parent and not terms.active  # no standing offer
        # a stranger cannot buy the operator's upscale licence of the base
        with ape.reverts(licenses.LicenseManager__TermsInactive, termsId=terms_id):
            licenses.purchase(terms_id, accounts[7].address, sender=accounts[7], value=UpscaleTerms().price)
    mine = journal.get(child_key(theirs))
    assert mine is not None and mine.stage == jobs.CANCELLED
    assert str(other.address) in mine.payload["reason"] and "creator" in mine.payload["reason"]
    # an upscale is not upscaled again
    assert all(journal.get(child_key(key)) is None for key in children)


def test_taking_the_licence_twice_buys_it_once(
    upscale_parts: Parts, upscaler: Upscaler, project: Any, local_chain: Any, accounts: Any, chain: Any
) -> None:
    from tests.contracts.helpers import asset_record, register_asset

    parts, operator = upscale_parts, accounts[0]
    licenses = contract(project, local_chain, "LicenseManager")
    record = asset_record("upscale/licence", operator, local_chain.t2i_model_id)
    register_asset(contract(project, local_chain, "ProvenanceRegistry"), operator, record)
    base = record.content_digest
    stage = UpscaleStage(parts.journal, upscaler, parts.store, parts.chain(), model_id=local_chain.upscaler_model_id,
                         worker="test/upscaler")  # fmt: skip
    start = chain.blocks.height

    async def twice() -> tuple[int, int]:
        await parts.chain().start()
        first, sent = await stage.licence(base, "up-test")
        again, resent = await stage.licence(base, "up-test")  # a later life, after a crash before journaling
        assert len(sent) == 3 and resent == []  # attach, buy, switch off; then nothing
        return first, again

    first, again = asyncio.run(twice())
    assert first == again and first == licence_id(first >> 64)
    assert int(licenses.balanceOf(operator.address, first)) == 1
    bought = list(licenses.LicensePurchased.range(start, chain.blocks.height + 1))
    attached = list(licenses.TermsAttached.range(start, chain.blocks.height + 1))
    assert len(bought) == 1 and len(attached) == 1 and not licenses.getTerms(first >> 64).active
