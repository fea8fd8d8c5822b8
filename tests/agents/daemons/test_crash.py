"""`kill -9` of the whole pipeline at random points, then restart: zero orphans, zero duplicates.

Needs a node that outlives the worker process, so it runs in the anvil pass of `make test`
(marked `anvil`; the embedded chain lives inside the test process). The test deploys and
registers the models through ape, then starts the worker (every daemon in one process, over one
journal) again and again, killing its whole process group with SIGKILL at a random moment after
it reports ready, and adds a request after every kill so there is always work in flight. After
at least 20 kills, a last life runs to the end. Then:
- orphans: every job is at a final stage, and every accepted asset is registered and attested;
- duplicates: the chain has exactly one asset per registered job, one batch per batch id the
  journal knows (no batch committed twice or lost), one attestation transaction per proof the
  journal recorded; every job passed each stage exactly once; no transaction reverted.
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

from agents.daemons import jobs
from agents.generator import GenerationRequest
from agents.runtime.journal import Journal
from agents.toolchain import project_root

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
                "cache": str(project_root() / ".cache" / "zkml-agents"),
                "addresses": local_chain.addresses,
                "t2i": local_chain.t2i_model_id,
                "heads": {str(size): model_id for size, (_, model_id) in local_chain.head_models.items()},
            }
        )
    )
    prompts = captions(KILLS + 8)
    journal = Journal(state / "journal.db", final=jobs.FINAL | {jobs.REGISTERED})
    requester = str(accounts[0].address)

    def request(index: int) -> None:
        jobs.submit_request(
            journal, GenerationRequest(prompt=prompts[index], seed=500 + index), requester=requester, source="cli"
        )

    for index in range(8):
        request(index)
    rng = random.Random(20261124)
    argv = [sys.executable, str(WORKER), str(config)]
    kills: list[dict[str, int]] = []
    while len(kills) < KILLS:
        process = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, start_new_session=True)
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        assert line == "ready", f"worker did not start: {line!r}"
        time.sleep(rng.uniform(0.0, 2.5))
        kills.append(journal.counts())
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
        request(8 + len(kills) - 1)
    final = subprocess.run(argv, capture_output=True, text=True, timeout=900)
    assert final.returncode == 0 and "done" in final.stdout, final.stderr[-4_000:]

    # where the kills landed: each was taken with work in flight at some stage
    in_flight = [sum(n for stage, n in counts.items() if stage not in jobs.FINAL) for counts in kills]
    assert sum(1 for n in in_flight if n > 0) >= KILLS
    landed: dict[str, int] = {}
    for counts in kills:
        for stage, n in counts.items():
            if stage not in jobs.FINAL and n:
                landed[stage] = landed.get(stage, 0) + 1
    print(f"kills: {len(kills)}; kills with jobs waiting at each stage: {dict(sorted(landed.items()))}")

    counts = journal.counts()
    assert set(counts) <= jobs.FINAL, counts
    assert sum(counts.values()) == len(prompts)
    done = journal.at_stage(jobs.ATTESTED) + journal.at_stage(jobs.UNPROVEN)
    assert counts.get(jobs.ATTESTED, 0) >= 1 and jobs.UNPROVEN not in counts and jobs.FAILED not in counts
    registry = project.ProvenanceRegistry.at(local_chain.addresses["ProvenanceRegistry"])
    assert int(registry.assetCount()) == len(done)
    assert int(registry.batchCount()) == len({job.payload["batch_id"] for job in done})
    for job in done:
        targets = [target for _, target in journal.history(job.key)]
        assert len(targets) == len(set(targets)), (job.key, targets)
        assert int(registry.getAsset(bytes.fromhex(job.payload["sha256"])).seq) == job.payload["seq"]
    attest_txs = {job.payload["attest_tx"] for job in done if "attest_tx" in job.payload}
    attested_events = list(registry.InferenceAttested.range(0, chain.blocks.height + 1))
    assert len(attested_events) == len(attest_txs)
    assert sum(len(e.seqs) for e in attested_events) == len(done)
    for intent in journal.open_intents(f"tx:{requester.lower()}"):
        pytest.fail(f"transaction intent {intent.id} still open after the last life: {intent.data}")
    journal.close()
