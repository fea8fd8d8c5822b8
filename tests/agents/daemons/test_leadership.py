"""One sender per key across processes that share a PostgreSQL journal (agents/daemons/runner.py).

Two registrar "processes" (each its own journal connection, chain client and stages; the same
key) run against one PostgreSQL journal and the chain under test: one leads and registers, the
other stands by and sends nothing. The leader dies without a word (its tasks end mid-run, its
leases are never dropped); once they run out the standby takes over, reconciles and registers the
rest. Every job is registered exactly once, and every transaction the key sent holds a nonce of
its own. A graceful stop hands over at once (the leases are dropped).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from agents.core.toolchain import project_root
from agents.daemons.register import RegisterStage
from agents.daemons.runner import Agents
from agents.deploy.deployment import CoreConfig, deploy_core
from agents.runtime import jobs
from agents.runtime.chain import CORE, ChainClient, load_abis
from agents.runtime.journal import Journal
from tests.agents.daemons.test_registrar import publish
from tests.contracts.helpers import register_model

pytestmark = pytest.mark.chain

TTL = 1.0


def host(url: str, name: str, web3: Any, key: str, deployed: dict[str, str], model_id: int) -> Agents:
    """What `proofmint agent registrar --journal URL` builds on one host."""
    journal = Journal(url, final=jobs.REGISTERED_OR_FINAL)
    client = ChainClient(web3, Account.from_key(key), journal, deployed, load_abis(project_root(), CORE), poll=0.02)
    stage = RegisterStage(journal, client, model_id=model_id, worker=f"{name}/registrar", batch=4, idle=0.05)
    return Agents(
        journal,
        [stage],
        clients=[client],
        chain_stages=frozenset({stage.name}),
        roles=("registrar",),
        worker=name,
        lease_ttl_s=TTL,
    )


def registered(journal: Journal, keys: list[str]) -> int:
    return sum(1 for key in keys if (job := journal.get(key)) is not None and job.stage == jobs.REGISTERED)


async def until(check: Any, within_s: float = 60.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while not await asyncio.to_thread(check):
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.05)


def test_a_standby_sends_nothing_until_the_dead_leaders_leases_run_out_then_finishes_once(
    project: Any, chain: Any, accounts: Any, postgres_url: str, tmp_path: Path
):
    operator = accounts[0]
    deployed = {d.name: d.address for d in deploy_core(project, operator, chain, CoreConfig())}
    model_id = register_model(
        project.ModelRegistry.at(deployed["ModelRegistry"]), accounts[1], label="lead", data_bps=0
    )
    registry = project.ProvenanceRegistry.at(deployed["ProvenanceRegistry"])
    watcher = Journal(postgres_url, final=jobs.REGISTERED_OR_FINAL)
    first = publish(watcher, [f"lead-{i}" for i in range(8)])
    web3 = chain.provider.web3

    async def main() -> None:
        a = host(postgres_url, "host-a", web3, operator.private_key, deployed, model_id)
        b = host(postgres_url, "host-b", web3, operator.private_key, deployed, model_id)
        await a.start()
        await b.start()
        assert a.leading and not b.leading
        await until(lambda: registered(watcher, first) == 8)
        assert b.stages[0].processed == 0  # stood by: claimed nothing, sent nothing
        for task in a._tasks:  # host A dies: no stop, no lease dropped
            task.cancel()
        await asyncio.gather(*a._tasks, return_exceptions=True)
        second = publish(watcher, [f"lead-{i}" for i in range(8, 16)])
        await asyncio.sleep(TTL / 2)
        assert not b.leading  # A's leases have not run out yet
        await until(lambda: registered(watcher, second) == 8)
        assert b.leading and b.stages[0].processed == 8
        await b.stop()
        assert watcher.take_lease(f"sender:{operator.address.lower()}", "host-c", ttl_s=TTL) is None  # dropped
        a.journal.close()
        b.journal.close()

    asyncio.run(main())
    keys = [f"lead-{i}" for i in range(16)]
    for key in publish(watcher, keys):  # submitting again changes nothing: each job is there once
        assert watcher.history(key) == [("", jobs.PUBLISHED), (jobs.PUBLISHED, jobs.REGISTERED)]
    for label in keys:
        assert registry.creatorOf(hashlib.sha256(label.encode()).digest()) == operator.address
    sent = watcher.db.execute(
        "SELECT data, outcome FROM intents WHERE name = ?", (f"tx:{operator.address.lower()}",)
    ).fetchall()
    nonces = [json.loads(data)["nonce"] for data, _ in sent]
    assert len(nonces) == len(set(nonces)) >= 2  # both hosts sent, never with one nonce
    assert all(outcome is not None and "refused" not in json.loads(outcome) for _, outcome in sent)
    watcher.close()
