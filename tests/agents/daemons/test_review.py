"""Human review closes the loop: assets the curator sends to a person wait in a queue
(`GET /v1/review`); a reviewer of the deployment approves one with an EIP-712 signed decision
(it then continues through the pipeline to an attested, registered asset), rejects another with a
reason (it ends, saying so), and `proofmint review approve` does the same from the command line.
A stranger, a forged reviewer, a replay, an expired decision and one signed for another
deployment are refused; every decision is kept and `proofmint review export` writes it as
labelled data."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from click.testing import CliRunner

from agents.api.openapi import document
from agents.app.main import cli
from agents.app.wiring import Parts, build_agents
from agents.core.requests import GenerationRequest
from agents.core.reviews import ReviewDecision, sign_review
from agents.runtime import jobs
from tests.agents.api.schema_check import check_answer
from tests.agents.daemons.helpers import PROMPTS, contract
from tests.agents.daemons.test_api import run_api

pytestmark = [pytest.mark.chain, pytest.mark.slow]  # the embedded pass runs it (make test budget)

DOC = document()


async def in_review(parts: Parts, requester: str, count: int) -> list[Any]:
    """`count` real assets that the curator sent to review (a curation head whose accept band is out
    of reach: every image lands between the bands)."""
    curator = parts.curator
    head = curator.head
    curator.head = dataclasses.replace(
        head, accept_at=65_535.0, review_at=-65_535.0, accept_fixed=2**29 - 1, review_fixed=-(2**29 - 1)
    )
    settled = {jobs.REVIEW, jobs.REJECTED}
    before = 0
    for stage in settled:
        before += len(await parts.journal.call(parts.journal.at_stage, stage))
    try:
        for i, prompt in enumerate(PROMPTS[:count]):
            request = GenerationRequest(prompt, 9_000 + i)
            await parts.journal.call(jobs.submit_request, parts.journal, request, requester=requester, source="cli")
        agents = build_agents(parts, names=["generator", "curator"], linger_s=0.1, idle=0.05, withdraw_every_s=None)
        await agents.start()
        try:
            # a copy of an earlier image is still rejected (near-duplicate), whatever the bands
            await agents.until(lambda c: sum(c.get(stage, 0) for stage in settled) == before + count, within_s=300)
        finally:
            await agents.stop()
    finally:
        curator.head = head
    return sorted(await parts.journal.call(parts.journal.at_stage, jobs.REVIEW), key=lambda j: j.key)


def test_reviewers_approve_and_reject_assets_in_review_and_others_cannot(
    parts: Parts, project: Any, local_chain: Any, accounts: Any, chain: Any, tmp_path: Path
):
    operator, stranger = accounts[0], accounts[7]
    waiting = asyncio.run(in_review(parts, str(operator.address), 3))
    assert len(waiting) == 3, "three images in review"
    approve, refuse, by_cli = (bytes.fromhex(j.payload["sha256"]) for j in waiting)
    chain_id, registry = int(chain.chain_id), local_chain.addresses["ProvenanceRegistry"]
    soon = int(time.time()) + 600

    def body(
        signer: Any,
        asset: bytes,
        ok: bool,
        reason: str = "",
        *,
        reviewer: Any = None,
        at: str = registry,
        deadline: int = soon,
    ) -> dict[str, Any]:
        decision = ReviewDecision(str((reviewer or signer).address), asset, ok, reason, deadline)
        payload = {
            **decision.as_json(),
            "signature": "0x" + sign_review(decision, signer.private_key, chain_id, at).hex(),
        }
        payload.pop("asset")  # the URL names it
        return payload

    async def scenario(session: aiohttp.ClientSession, server: TestServer, deps: Any) -> None:
        async def post(asset: bytes, payload: Any) -> tuple[int, Any]:
            async with session.post(server.make_url(f"/v1/review/0x{asset.hex()}"), json=payload) as r:
                answer = await r.json()
                check_answer(DOC, "POST", f"/v1/review/0x{asset.hex()}", r.status, answer)
                return r.status, answer

        async with session.get(server.make_url("/v1/review")) as r:
            queue = await r.json()
            check_answer(DOC, "GET", "/v1/review", r.status, queue)
        assert {i["digest"] for i in queue["items"]} >= {"0x" + d.hex() for d in (approve, refuse, by_cli)}
        assert all(i["reason"].startswith("the curation head scores") for i in queue["items"])
        async with session.get(server.make_url("/v1/review/eip712")) as r:
            typed = await r.json()
        assert typed["reviewers"] == [str(operator.address)] and typed["domain"]["chainId"] == chain_id

        # refused: a stranger, a stranger naming the reviewer, another deployment's domain, expired, no reason
        status, answer = await post(approve, body(stranger, approve, True))
        assert (status, answer["error"]["code"]) == (403, "not_a_reviewer")
        status, answer = await post(approve, body(stranger, approve, True, reviewer=operator))
        assert (status, answer["error"]["code"]) == (422, "bad_signature")
        other = "0x" + "11" * 20
        status, answer = await post(approve, body(operator, approve, True, at=other))
        assert (status, answer["error"]["code"]) == (422, "bad_signature")
        status, answer = await post(approve, body(operator, approve, True, deadline=int(time.time()) - 1))
        assert (status, answer["error"]["code"]) == (422, "expired")
        status, answer = await post(refuse, {**body(operator, refuse, True), "approve": False})
        assert status == 422  # the signature covers `approve`: flipping it breaks it
        assert (await post(b"\x42" * 32, body(operator, b"\x42" * 32, True)))[0] == 404

        # the reviewer decides
        status, answer = await post(approve, body(operator, approve, True, "clearly the prompt"))
        assert status == 200 and answer["stage"] == jobs.CURATED
        status, answer = await post(refuse, body(operator, refuse, False, "too dark to read"))
        assert status == 200 and answer["stage"] == jobs.REJECTED
        assert answer["reason"] == f"rejected by reviewer {operator.address}: too dark to read"
        status, answer = await post(approve, body(operator, approve, True))  # replayed, or decided twice
        assert (status, answer["error"]["code"]) == (409, "not_in_review")
        key = waiting[1].key
        async with session.get(server.make_url(f"/v1/requests/{key}")) as r:
            shown = await r.json()
        assert shown["stage"] == jobs.REJECTED and shown["reason"].endswith("too dark to read")

        # the command line: signs with the reviewer's key from the environment and posts it
        env = {**os.environ, "PROOFMINT_REVIEWER_KEY": operator.private_key}
        proofmint = str(Path(sys.executable).with_name("proofmint"))
        base = str(server.make_url("/")).rstrip("/")
        listed = await asyncio.create_subprocess_exec(
            proofmint, "review", "list", "--api", base, env=env, stdout=asyncio.subprocess.PIPE
        )
        out, _ = await listed.communicate()
        assert listed.returncode == 0 and f"0x{by_cli.hex()}" in out.decode() and "1 in review" in out.decode()
        decided = await asyncio.create_subprocess_exec(
            proofmint, "review", "approve", f"0x{by_cli.hex()}", "--api", base, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await decided.communicate()
        assert decided.returncode == 0, err.decode()
        assert "-> curated" in out.decode() and f"approved by reviewer {operator.address}" in out.decode()
        stranger_env = {**os.environ, "PROOFMINT_REVIEWER_KEY": stranger.private_key}
        refused = await asyncio.create_subprocess_exec(
            proofmint, "review", "reject", f"0x{refuse.hex()}", "--reason", "x", "--api", base, env=stranger_env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        _, err = await refused.communicate()
        assert refused.returncode == 2 and "is not a reviewer of this deployment" in err.decode()

    run_api(parts, tmp_path, scenario, reviewers=frozenset({str(operator.address)}))

    # the approved assets continue: published, registered and proven like any accepted one
    async def finish() -> None:
        agents = build_agents(parts, register_batch=2, linger_s=0.1, idle=0.05, withdraw_every_s=None)
        await agents.start()
        try:
            await agents.until(lambda c: c.get(jobs.ATTESTED, 0) + c.get(jobs.UNPROVEN, 0) == 2, within_s=600)
        finally:
            await agents.stop()

    asyncio.run(finish())
    registry_contract = contract(project, local_chain, "ProvenanceRegistry")
    for digest in (approve, by_cli):
        assert str(registry_contract.getAsset(digest).creator) == str(operator.address)
    assert parts.journal.get(waiting[1].key).stage == jobs.REJECTED

    # every decision is kept as labelled data
    result = CliRunner().invoke(cli, ["review", "export", "--state", str(tmp_path / "state")])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]
    labels = {row["digest"]: row["label"] for row in rows}
    assert labels == {"0x" + approve.hex(): "accept", "0x" + refuse.hex(): "reject", "0x" + by_cli.hex(): "accept"}
    assert all(len(row["embedding"]) > 0 and row["reviewer"] == str(operator.address) for row in rows)
