"""The publisher daemon on its own (no chain, no models): a batch is published in one worker
thread and its blocks are stored in one store transaction, before any job is journaled as
published; a job that cannot be published (not a PNG, a lineage that does not hash to its
digest, no head row) fails alone, and the rest of its batch is published."""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from agents.daemons.publish import ModelInfo, PublishStage
from agents.models.generator import png_bytes
from agents.runtime import jobs
from agents.runtime.journal import Journal
from agents.storage.cid import Cid
from agents.storage.credentials import DevIdentity
from agents.storage.manifest import canonical_json
from agents.storage.store import BlockStore, LocalStore
from zkml.pipeline import HeadInput, input_commitment

SCALE = 13


class CountingStore(LocalStore):
    """A real local store that counts the `put_blocks` calls (the transactions a transactional
    backend would open) and the blocks in each."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.puts: list[int] = []

    def put_blocks(self, blocks: Any) -> None:
        blocks = list(blocks)
        self.puts.append(len(blocks))
        super().put_blocks(blocks)


def curated(store: BlockStore, rng: random.Random, index: int, **changes: Any) -> dict[str, Any]:
    """A job's payload as the curator leaves it: its PNG in the store, lineage, embeddings."""
    image = Image.new("RGB", (16, 16), (rng.randrange(256), rng.randrange(256), index))
    png = png_bytes(image)
    lineage = {
        "model_digest": "ab" * 32,
        "pipeline": "procedural",
        "scheduler": "none",
        "steps": 20,
        "guidance": 7.5,
        "seed": index,
        "prompt": f"asset {index}",
        "parents": [],
    }
    payload = {
        "cid": str(store.add_bytes(png)),
        "sha256": hashlib.sha256(png).hexdigest(),
        "lineage": lineage,
        "params_digest": hashlib.sha256(canonical_json(lineage)).hexdigest(),
        "request": {"prompt": f"asset {index}", "negative_prompt": "", "seed": index},
        "embedding": [rng.uniform(-0.2, 0.2) for _ in range(32)],
        "prompt_embedding": [rng.uniform(-0.2, 0.2) for _ in range(32)],
        "curation": {"verdict": "accept"},
    }
    payload.update(changes)
    return payload


@pytest.fixture
def setup(tmp_path: Path) -> Any:
    store = CountingStore(tmp_path / "store")
    journal = Journal(tmp_path / "journal.db", final=jobs.FINAL)
    identity = DevIdentity.load_or_create(tmp_path / "identity")
    stage = PublishStage(
        journal, store, identity, ModelInfo("tiny", "model version 1"), input_scale=SCALE, worker="w", batch=32
    )
    yield journal, store, stage
    journal.close()


def test_a_batch_is_stored_in_one_transaction_and_bad_jobs_fail_alone(setup: Any) -> None:
    journal, store, stage = setup
    rng = random.Random(3)
    payloads = {f"job-{i}": curated(store, rng, i) for i in range(6)}
    payloads["job-1"]["cid"] = str(store.add_bytes(b"not a png at all, only text"))
    payloads["job-3"]["params_digest"] = "00" * 32  # the lineage does not hash to it
    del payloads["job-4"]["prompt_embedding"]  # curated before the head decided
    for key, payload in payloads.items():
        journal.submit(key, jobs.ASSET, payload, stage=jobs.CURATED)
    store.puts.clear()  # the PNGs above

    assert asyncio.run(stage.step()) == 6
    found = {key: journal.get(key) for key in payloads}
    assert {key: job.stage for key, job in found.items() if job is not None} == {
        "job-0": jobs.PUBLISHED,
        "job-1": jobs.FAILED,
        "job-2": jobs.PUBLISHED,
        "job-3": jobs.FAILED,
        "job-4": jobs.FAILED,
        "job-5": jobs.PUBLISHED,
    }
    errors = {key: job.error for key, job in found.items() if job is not None and job.stage == jobs.FAILED}
    assert "not a PNG" in str(errors["job-1"])
    assert "does not hash" in str(errors["job-3"])
    assert "prompt embeddings" in str(errors["job-4"])
    assert len(store.puts) == 1 and store.puts[0] >= 3 * 2  # one transaction: sidecar and metadata of each
    for key in ("job-0", "job-2", "job-5"):
        job = found[key]
        assert job is not None
        payload = job.payload
        metadata = json.loads(store.read(Cid.parse(payload["metadata_cid"])))
        assert metadata["image"] == f"ipfs://{payloads[key]['cid']}"
        assert store.read(Cid.parse(payload["manifest_cid"]))  # the signed sidecar, readable
        row = payloads[key]["embedding"] + payloads[key]["prompt_embedding"]
        expected = input_commitment(HeadInput(row, bytes.fromhex(payloads[key]["sha256"])), SCALE)
        assert payload["commitment"] == f"{expected:064x}"


def test_a_store_failure_fails_the_batch_retryably_and_journals_nothing_as_published(
    setup: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal, store, stage = setup
    rng = random.Random(4)
    for i in range(3):
        journal.submit(f"job-{i}", jobs.ASSET, curated(store, rng, i), stage=jobs.CURATED)

    def unavailable(blocks: Any) -> None:
        raise ConnectionError("the store went away")

    monkeypatch.setattr(store, "put_blocks", unavailable)
    asyncio.run(stage.step())
    for i in range(3):
        job = journal.get(f"job-{i}")
        assert job is not None and job.stage == jobs.CURATED and "went away" in str(job.error)
