"""The registrar daemon against squatters: it checks whose asset the chain has.

No models here: jobs are journaled at `published` with the payload the publisher writes, so the
registrar's stages run alone on the chain under test (a fresh deployment per test).

- registerMany: a digest someone else registered first fails its job, naming the squatter; the
  rest of the batch registers in the job's creator's name.
- commit, then claim: a digest registered by someone else *after* the batch was committed is
  taken back by the claim (the registry gives the earlier commitment priority); one registered
  *before* the commitment fails its job at the commit.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from agents.core.merkle import AssetRecord
from agents.core.toolchain import project_root
from agents.daemons.register import ClaimStage, CommitStage, RegisterStage
from agents.deploy.deployment import CoreConfig, deploy_core
from agents.runtime import jobs
from agents.runtime.chain import CORE, ChainClient, load_abis
from agents.runtime.journal import Journal
from tests.contracts.helpers import register_model

pytestmark = pytest.mark.chain

URI = "ipfs://bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"


@pytest.fixture
def setup(project: Any, chain: Any, accounts: Any, tmp_path: Path) -> Iterator[tuple[Journal, ChainClient, Any, int]]:
    operator = accounts[0]
    deployed = {d.name: d.address for d in deploy_core(project, operator, chain, CoreConfig())}
    models = project.ModelRegistry.at(deployed["ModelRegistry"])
    model_id = register_model(models, accounts[1], label="registrar-test", data_bps=0)
    journal = Journal(tmp_path / "journal.db", final=jobs.REGISTERED_OR_FINAL)
    client = ChainClient(
        chain.provider.web3,
        Account.from_key(operator.private_key),
        journal,
        deployed,
        load_abis(project_root(), CORE),
        poll=0.02,
    )
    yield journal, client, project.ProvenanceRegistry.at(deployed["ProvenanceRegistry"]), model_id
    journal.close()


def publish(journal: Journal, labels: list[str]) -> list[str]:
    """Jobs at `published`, as the publisher leaves them."""
    keys = []
    for label in labels:
        digest = hashlib.sha256(label.encode()).hexdigest()
        payload = {"sha256": digest, "params_digest": digest, "commitment": "00" * 32, "metadata_uri": URI}
        journal.submit(f"asset:{digest}", jobs.ASSET, payload, stage=jobs.PUBLISHED)
        keys.append(f"asset:{digest}")
    return keys


def squat(registry: Any, squatter: Any, label: str, model_id: int) -> None:
    digest = hashlib.sha256(label.encode()).digest()
    record = AssetRecord(digest, squatter.address, model_id, digest, b"\x00" * 32, (), URI)
    registry.register(record.as_tuple(), [], sender=squatter)


def stages(journal: Journal, keys: list[str]) -> list[tuple[str, str | None]]:
    found = [journal.get(key) for key in keys]
    return [(job.stage, job.error) for job in found if job is not None]


def test_register_many_fails_a_squatted_job_and_registers_the_rest(setup: Any, accounts: Any):
    journal, client, registry, model_id = setup
    operator, squatter = accounts[0], accounts[9]
    keys = publish(journal, ["rm-a", "rm-b", "rm-c"])
    squat(registry, squatter, "rm-b", model_id)

    async def main() -> None:
        await client.start()
        stage = RegisterStage(journal, client, model_id=model_id, worker="w1", batch=8, linger_s=0)
        await stage.step()

    asyncio.run(main())
    (a, _), (b, error), (c, _) = stages(journal, keys)
    assert (a, b, c) == (jobs.REGISTERED, jobs.FAILED, jobs.REGISTERED)
    assert error is not None and squatter.address in error
    for label in ("rm-a", "rm-c"):
        assert registry.creatorOf(hashlib.sha256(label.encode()).digest()) == operator.address


def test_commit_then_claim_takes_back_what_was_squatted_after_the_commitment(setup: Any, accounts: Any):
    journal, client, registry, model_id = setup
    operator, squatter = accounts[0], accounts[9]
    early = publish(journal, ["squatted-early"])
    squat(registry, squatter, "squatted-early", model_id)  # before any commitment: nothing to claim back
    keys = publish(journal, ["cc-a", "cc-b"])

    async def main() -> None:
        await client.start()
        commit = CommitStage(journal, client, model_id=model_id, worker="w1", batch=8, linger_s=0)
        await commit.step()
        # The batch is committed; a squatter reads a member's digest and registers it first.
        squat(registry, squatter, "cc-b", model_id)
        claim = ClaimStage(journal, client, model_id=model_id, worker="w1", batch=8)
        await claim.step()

    asyncio.run(main())
    ((stage, error),) = stages(journal, early)
    assert stage == jobs.FAILED and error is not None and squatter.address in error
    assert [stage for stage, _ in stages(journal, keys)] == [jobs.REGISTERED, jobs.REGISTERED]
    taken_back = hashlib.sha256(b"cc-b").digest()
    assert registry.creatorOf(taken_back) == operator.address
    assert registry.ownerOf(int.from_bytes(taken_back, "big")) == operator.address
    assert registry.claimedFrom(taken_back) == 1
    job = journal.get(keys[1])
    assert job is not None and job.payload["seq"] == int(registry.getAsset(taken_back).seq)


def test_the_api_lineage_index_follows_a_takeover(setup: Any, accounts: Any):
    # The review's F9: the index kept the first AssetRegistered of a digest, so after a claim
    # took a squatted record back the API went on showing the squatter as creator.
    from agents.api.lineage import LineageIndex

    journal, client, registry, model_id = setup
    operator, squatter = accounts[0], accounts[9]
    keys = publish(journal, ["indexed"])
    digest = hashlib.sha256(b"indexed").digest()

    async def main() -> tuple[str, str, int, int]:
        await client.start()
        index = LineageIndex(client, refresh_s=0)
        await CommitStage(journal, client, model_id=model_id, worker="w1", batch=8, linger_s=0).step()
        squat(registry, squatter, "indexed", model_id)
        first = await index.get(digest)
        await ClaimStage(journal, client, model_id=model_id, worker="w1", batch=8).step()
        second = await index.get(digest)
        assert first is not None and second is not None
        return first.creator, second.creator, first.seq, second.seq

    before, after, seq_before, seq_after = asyncio.run(main())
    assert (before, after) == (squatter.address, operator.address)
    assert seq_after > seq_before == 0
    assert [stage for stage, _ in stages(journal, keys)] == [jobs.REGISTERED]
