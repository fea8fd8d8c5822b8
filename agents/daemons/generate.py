"""The generator daemon: `requested` jobs in, images in the content store out (`generated`).

Each claimed batch is first moderated (`screen`: the policy's blocked terms and, where CLIP is
loaded, its blocked concepts against the prompts): a refused request ends `rejected` with the
reason before any compute is spent on it. The rest are generated in the generator's executor
(micro-batches of equal parameters; a micro-batch that fails is run again request by request,
so one bad request fails alone and its neighbours complete), every PNG is added to the store
(CIDv1, raw leaves: its multihash digest is the sha256 the chain registers), and the job records
the CID, the digest, the lineage and its parameters digest. The lineage names the model by its
registered version and weights digest (never a local path), and its canonical bytes (the
parameters document, whose sha256 is the parameters digest) are stored too, so anyone can
recompute the digest from public data. Generation is deterministic per request and the store is
content-addressed, so doing a batch again after a crash stores the same bytes under the same
CID: nothing doubles.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, replace
from typing import Any, Final

from agents.core import costs
from agents.core.metering import FAST_LANE
from agents.core.requests import GenerationRequest, GeneratorError
from agents.models.curator import Screen
from agents.models.generator import Generator
from agents.runtime import jobs
from agents.runtime.journal import Job
from agents.runtime.retry import is_retryable
from agents.runtime.stage import Done, Failed, Outcome, Stage
from agents.storage.store import BlockStore

FAST_SHARE: Final = 0.75
"""The most of a generator's batch the fast lane takes while standard requests wait."""


class GenerateStage(Stage):
    name = "generator"
    origin = jobs.REQUESTED
    target = jobs.GENERATED
    give_up = jobs.FAILED

    def __init__(
        self,
        journal: Any,
        generator: Generator,
        store: BlockStore,
        *,
        model_id: int = 0,
        screen: Screen | None = None,
        **options: Any,
    ) -> None:
        """`model_id`: the generator's registered model version, which its lineage names.
        `screen`: moderates the prompts before any image is made (None: no moderation)."""
        super().__init__(journal, **options)
        self.generator, self.store, self.model_id, self.screen = generator, store, model_id, screen

    async def claim(self) -> list[Job]:
        """The fast lane first, but at most `FAST_SHARE` of a batch while standard requests wait:
        a flood of fast requests slows the standard lane and never stops it."""
        claimed = await self.journal.call(
            self.journal.claim_first,
            self.origin,
            self.worker,
            limit=self.batch,
            lease_s=self.lease_s,
            field="lane",
            value=FAST_LANE,
            share=FAST_SHARE,
        )
        return list(claimed)

    async def process(self, batch: Sequence[Job]) -> Sequence[Outcome]:
        outcomes: list[Outcome] = []
        runnable: list[tuple[Job, GenerationRequest]] = []
        for job in batch:
            try:
                runnable.append((job, jobs.request_of(job.payload)))
            except GeneratorError as error:
                outcomes.append(Failed(job.key, str(error), retryable=False))
        if self.screen is not None and runnable:
            screened = await self.screen([request.prompt for _, request in runnable])
            for (job, _), verdict in zip(runnable, screened, strict=True):
                if verdict.reason:  # refused before any compute is spent on it, saying why
                    curation = {
                        "decision": "reject",
                        "reason": verdict.reason,
                        "flags": [asdict(flag) for flag in verdict.flags],
                        "screened": "prompt",
                    }
                    outcomes.append(Done(job.key, {"curation": curation}, stage=jobs.REJECTED))
            runnable = [r for r, verdict in zip(runnable, screened, strict=True) if not verdict.reason]
        if not runnable:
            return outcomes
        images = await self.generator.generate_each([request for _, request in runnable])
        for (job, _), image in zip(runnable, images, strict=True):
            if isinstance(image, Exception):
                outcomes.append(Failed(job.key, f"{type(image).__name__}: {image}", is_retryable(image)))
                continue
            cid = await self.store.put(image.png)
            lineage = replace(image.lineage, model_id=self.model_id)
            params = await self.store.put(lineage.canonical())  # the pre-image of paramsDigest, public
            updates = {
                "cid": str(cid),
                "sha256": image.digest.hex(),
                "params_digest": lineage.params_digest().hex(),
                "params_cid": str(params),
                "lineage": asdict(lineage),
                "generated_at": job.updated_at,
                costs.GENERATE: costs.compute(
                    image.wall_s, image.cpu_s, lineage.device, stored_bytes=len(image.png) + len(lineage.canonical())
                ),
            }
            outcomes.append(Done(job.key, updates))
        return outcomes
