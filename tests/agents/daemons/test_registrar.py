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
import contextlib
import hashlib
import json
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


def register_once(journal: Journal, client: ChainClient, model_id: int) -> None:
    """One registerMany step of a fresh registrar (batches of up to 8)."""

    async def main() -> None:
        await client.start()
        stage = RegisterStage(journal, client, model_id=model_id, worker="w1", batch=8, linger_s=0)
        await stage.step()

    asyncio.run(main())


def test_register_many_fails_a_squatted_job_and_registers_the_rest(setup: Any, accounts: Any):
    journal, client, registry, model_id = setup
    operator, squatter = accounts[0], accounts[9]
    keys = publish(journal, ["rm-a", "rm-b", "rm-c"])
    squat(registry, squatter, "rm-b", model_id)

    register_once(journal, client, model_id)
    (a, _), (b, error), (c, _) = stages(journal, keys)
    assert (a, b, c) == (jobs.REGISTERED, jobs.FAILED, jobs.REGISTERED)
    assert error is not None and squatter.address in error
    for label in ("rm-a", "rm-c"):
        assert registry.creatorOf(hashlib.sha256(label.encode()).digest()) == operator.address


def test_a_batch_front_run_between_its_simulation_and_inclusion_is_isolated_not_failed(
    setup: Any, accounts: Any, chain: Any
):
    """A squatter's registration lands after the registrar simulated its registerMany and before
    the batch goes out: on a node the batch is mined and reverts (the squatter made it revert
    on chain); on the in-process chain the revert is undone. Either way the squatted job fails
    naming the squatter, the others register, and nothing fails as a whole batch."""
    journal, client, registry, model_id = setup
    operator, squatter = accounts[0], accounts[9]
    keys = publish(journal, ["fr-a", "fr-b", "fr-c"])
    send_locked = client.sender._send_locked
    fronts: list[str] = []

    async def front_run(*args: Any, **kwargs: Any) -> Any:
        if not fronts:  # the first send only: the registrar's whole batch
            fronts.append("fr-b")
            squat(registry, squatter, "fr-b", model_id)
        return await send_locked(*args, **kwargs)

    client.sender._send_locked = front_run

    register_once(journal, client, model_id)
    (a, _), (b, error), (c, _) = stages(journal, keys)
    assert (a, b, c) == (jobs.REGISTERED, jobs.FAILED, jobs.REGISTERED)
    assert error is not None and squatter.address in error
    for label in ("fr-a", "fr-c"):
        assert registry.creatorOf(hashlib.sha256(label.encode()).digest()) == operator.address
    rows = journal.db.execute("SELECT outcome FROM intents WHERE name = ?", (f"tx:{operator.address.lower()}",))
    outcomes = [json.loads(row[0]) for row in rows.fetchall()]
    if chain.provider.name == "foundry":  # the batch was mined and reverted: it cost gas
        assert sum(1 for o in outcomes if o.get("status") == 0) == 1, outcomes


def test_batches_in_flight_at_once_register_everything_once_even_the_same_content_twice(setup: Any):
    """Three registerMany batches in flight at once from one sender (a nonce each): twelve jobs,
    two of which hold the same content in different batches. Each job ends registered, the
    shared content once (its second job moves on with the first's registration number: on a
    node that batch was mined and reverted, and was then split), and nothing else twice."""
    journal, client, registry, model_id = setup
    labels = [f"fl-{i}" for i in range(11)]
    keys = publish(journal, labels)
    twin = hashlib.sha256(b"fl-0").hexdigest()  # fl-0's content again, under another job
    journal.submit(
        "asset:twin",
        jobs.ASSET,
        {"sha256": twin, "params_digest": twin, "commitment": "00" * 32, "metadata_uri": URI},
        stage=jobs.PUBLISHED,
    )
    keys.append("asset:twin")
    wait = client.sender.wait
    in_flight, most, waited = 0, 0, False
    another = asyncio.Event()  # a second batch is in flight

    async def counted(pending: Any) -> Any:
        """The sender's wait, counting batches in flight; the first batch waits (up to 10 s) for
        a second to be sent before it looks for its receipt, so that a node that mines at once
        still shows whether the registrar sends the next batch before the last one is done."""
        nonlocal in_flight, most, waited
        in_flight += 1
        most = max(most, in_flight)
        first, waited = not waited, True
        if in_flight >= 2:
            another.set()
        try:
            if first:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(another.wait(), 10)
            return await wait(pending)
        finally:
            in_flight -= 1

    client.sender.wait = counted
    before = int(registry.assetCount())

    async def main() -> None:
        await client.start()
        stage = RegisterStage(journal, client, model_id=model_id, worker="w1", batch=4, linger_s=0, concurrency=3)
        running = asyncio.ensure_future(stage.run())
        deadline = asyncio.get_running_loop().time() + 60
        while any(journal.get(key).stage != jobs.REGISTERED for key in keys):  # type: ignore[union-attr]
            assert asyncio.get_running_loop().time() < deadline, stages(journal, keys)
            await asyncio.sleep(0.05)
        stage.stop()
        await running

    asyncio.run(main())
    assert [stage for stage, _ in stages(journal, keys)] == [jobs.REGISTERED] * 12
    seqs = {key: journal.get(key).payload["seq"] for key in keys}  # type: ignore[union-attr]
    assert seqs["asset:twin"] == seqs[keys[0]]
    assert len(set(seqs.values())) == 11 and int(registry.assetCount()) == before + 11
    assert most >= 2, most  # batches were in flight together


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
