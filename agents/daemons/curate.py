"""The curator daemon: `generated` jobs in; `curated` (accepted), `review` (the human-review
band) or `rejected` out.

The image is read back from the content store (so a curator on another machine sees exactly the
registered bytes), judged with the job's prompt, and the verdict is written to the job: the
decision, the curation head's fixed-point score (what the proof will carry), prompt alignment,
moderation flags, the duplicate it copies, and the image and prompt embeddings that the zk
curation head reads and the asset's input commitment hashes (`agents.models.head.payload_row`). Index entries carry the
job's key, so a batch curated again after a crash is not flagged as a copy of itself; the index
is saved after every batch that adds to it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agents.core import costs
from agents.models.curator import CurationItem, Curator, Decision
from agents.runtime import jobs
from agents.runtime.journal import Job
from agents.runtime.stage import Done, Outcome, Stage
from agents.storage.cid import Cid
from agents.storage.store import BlockStore

_NEXT = {Decision.ACCEPT: jobs.CURATED, Decision.REVIEW: jobs.REVIEW, Decision.REJECT: jobs.REJECTED}


class CurateStage(Stage):
    name = "curator"
    origin = jobs.GENERATED
    target = jobs.CURATED
    give_up = jobs.FAILED

    def __init__(
        self, journal: Any, curator: Curator, store: BlockStore, *, index_path: Path | None = None, **options: Any
    ) -> None:
        super().__init__(journal, **options)
        self.curator, self.store, self.index_path = curator, store, index_path

    async def process(self, batch: Sequence[Job]) -> Sequence[Outcome]:
        items = []
        for job in batch:
            png = await self.store.get(Cid.parse(job.payload["cid"]))
            parents = tuple(str(p) for p in job.payload.get("parents", ()))
            items.append(
                CurationItem(job.payload["sha256"], png, job.payload["request"]["prompt"], key=job.key, parents=parents)
            )
        start, cpu = time.perf_counter(), time.process_time()
        verdicts = await self.curator.curate(items)
        share = costs.compute(
            (time.perf_counter() - start) / len(items), (time.process_time() - cpu) / len(items), self.curator.device
        )
        if self.index_path is not None and any(v.decision is Decision.ACCEPT for v in verdicts):
            await asyncio.to_thread(self.curator.index.save, self.index_path)
        outcomes: list[Outcome] = []
        for job, verdict in zip(batch, verdicts, strict=True):
            curation = {
                "decision": verdict.decision.value,
                "alignment": round(verdict.alignment, 6),
                "flags": [{"concept": f.concept, "where": f.where, "similarity": f.similarity} for f in verdict.flags],
                "duplicate_of": verdict.duplicate_of,
                "duplicate_similarity": round(verdict.duplicate_similarity, 6),
                "reason": verdict.reason,
            }
            if verdict.score is not None:
                curation["score"] = verdict.score
            updates = {
                costs.CURATE: share,
                "curation": curation,
                "embedding": list(verdict.embedding),
                "prompt_embedding": list(verdict.prompt_embedding),
            }
            outcomes.append(Done(job.key, updates, stage=_NEXT[verdict.decision]))
        return outcomes
