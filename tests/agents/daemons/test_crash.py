"""`kill -9` of the whole pipeline at random points, then restart: zero orphans, zero duplicates.

The worker renders procedural images instead of running diffusion (see crash_worker.py): the
property under test is reconciliation; test_pipeline.py keeps the real models.

Needs a node that outlives the worker process, so it runs in the anvil pass of `make test`
(marked `anvil`; the embedded chain lives inside the test process). The test deploys and
registers the models through ape, then starts the worker (every daemon in one process, over one
journal) again and again, killing its whole process group with SIGKILL at a random moment after
it reports ready, and adds a request after every kill so there is always work in flight. After
at least 20 kills, a last life runs to the end. Then:
- orphans: every job is at a final stage, and every accepted asset is registered and attested;
- duplicates: the chain has exactly one asset per registered job (its AssetRegistered events
  name exactly the journal's registered digests), one attestation transaction per proof the
  journal recorded; every job passed each stage exactly once; every transaction the operator
  sent succeeded (none was sent twice into a revert).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from agents.core.requests import GenerationRequest
from agents.runtime import jobs
from agents.runtime.journal import Journal
from tests.agents.daemons.helpers import assert_chain_agrees

pytestmark = [pytest.mark.anvil, pytest.mark.slow]

KILLS = 20
WORKER = Path(__file__).with_name("crash_worker.py")


def captions(count: int) -> list[str]:
    from media.dataset import compositions

    return random.Random(11).sample(sorted(c.caption for c in compositions("test")), count)


def test_kill_9_at_twenty_random_points_of_the_pipeline(
    chain: Any, accounts: Any, local_chain: Any, project: Any, tmp_path: Path
):
    if chain.provider.name != "foundry":
        pytest.skip("needs a node that outlives the worker process: runs in the anvil pass (make test-anvil)")
    state = tmp_path / "state"
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps(
            {
                "rpc": chain.provider.uri,
                "key": accounts[0].private_key,
                "state": str(state),
                "circuits": {
                    str(size): str(circuit.artifacts.root) for size, (circuit, _) in local_chain.head_models.items()
                },
                "addresses": local_chain.addresses,
                "t2i": local_chain.t2i_model_id,
                "heads": {str(size): model_id for size, (_, model_id) in local_chain.head_models.items()},
            }
        )
    )
    prompts = captions(KILLS + 8)
    journal = Journal(state / "journal.db", final=jobs.REGISTERED_OR_FINAL)
    requester = str(accounts[0].address)

    def request(index: int) -> None:
        jobs.submit_request(
            journal, GenerationRequest(prompt=prompts[index], seed=500 + index), requester=requester, source="cli"
        )

    for index in range(8):
        request(index)
    start_block = int(chain.blocks.height) + 1
    rng = random.Random(20261124)
    argv = [sys.executable, str(WORKER), str(config)]
    kills: list[dict[str, int]] = []

    def transitions() -> int:
        return int(journal.db.execute("SELECT COUNT(*) FROM transitions").fetchone()[0])

    def in_hand() -> dict[str, int]:
        """Jobs some stage holds under lease right now, and transactions in flight: where a kill lands."""
        rows = journal.db.execute(
            "SELECT stage, COUNT(*) FROM jobs WHERE owner IS NOT NULL AND lease_until > ? GROUP BY stage",
            (time.time(),),
        ).fetchall()
        held = {str(stage): int(n) for stage, n in rows}
        pending_tx = len(journal.open_intents(f"tx:{requester.lower()}"))
        if pending_tx:
            held["transaction in flight"] = pending_tx
        return held

    while len(kills) < KILLS:
        process = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, start_new_session=True)
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        assert line == "ready", f"worker did not start: {line!r}"
        # kill at a random point of progress: after 1 to 6 more stage moves, at a moment when some
        # stage holds work (or a transaction is in flight), a random instant into it
        target = transitions() + rng.randint(1, 6)
        deadline = time.monotonic() + 20
        while transitions() < target and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.01)
        while not in_hand() and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.2))
        kills.append(in_hand())
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
        request(8 + len(kills) - 1)
    final = subprocess.run(argv, capture_output=True, text=True, timeout=900)
    assert final.returncode == 0 and "done" in final.stdout, final.stderr[-4_000:]

    # where the kills landed: work in hand at several stages, transactions in flight
    landed: dict[str, int] = {}
    for held in kills:
        for stage in held:
            landed[stage] = landed.get(stage, 0) + 1
    print(
        f"kills: {len(kills)}; with work in hand: {sum(1 for h in kills if h)}; "
        f"by stage: {dict(sorted(landed.items()))}"
    )
    assert sum(1 for held in kills if held) >= KILLS * 3 // 4, kills
    assert len(landed) >= 3, landed

    counts = journal.counts()
    assert set(counts) <= jobs.FINAL, counts
    assert sum(counts.values()) == len(prompts)
    registry = project.ProvenanceRegistry.at(local_chain.addresses["ProvenanceRegistry"])
    done, sent, attest_txs = assert_chain_agrees(
        journal, registry, chain.provider.web3, sender=requester, events_from=0, txs_from=start_block
    )
    assert int(registry.assetCount()) == len(done)
    print(f"operator transactions: {sent}, all succeeded; assets {len(done)}; attestation transactions {attest_txs}")
    journal.close()
