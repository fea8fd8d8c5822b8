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

import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
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


@dataclass(frozen=True)
class AdaptiveSteps:
    """Adaptive production under load, as the operator allows it: a batch of standard-lane
    requests whose oldest waited longer than `after_s` is served with `factor` of each request's
    steps (rounded up), never fewer than `min_steps` nor more than it asked for; the fast lane
    keeps its requested settings, and a batch a fast request rides in is served as asked (the
    generator batches requests of equal settings together and pads each micro-batch: fewer steps
    for a few standard requests beside fast ones would add a micro-batch, not save one). The
    lineage names what was served and why (`Lineage.requested_steps`, `Lineage.adaptation`), so
    provenance stays exact and the charge follows the steps served."""

    after_s: float
    min_steps: int = 8
    factor: float = 0.5

    def __post_init__(self) -> None:
        if not self.after_s > 0 or not 1 <= self.min_steps <= 1_000 or not 0 < self.factor < 1:
            raise ValueError("adaptive steps: after_s > 0, 1 <= min_steps <= 1000 and 0 < factor < 1")

    def steps_for(self, request: GenerationRequest, lane: str, waited_s: float) -> int | None:
        """The steps to serve `request` with after `waited_s` in the queue; None: as asked."""
        if lane == FAST_LANE or waited_s <= self.after_s or request.steps <= self.min_steps:
            return None
        return max(self.min_steps, math.ceil(request.steps * self.factor))

    def reason(self, waited_s: float) -> str:
        return (
            f"standard lane under load: its batch's oldest request waited {waited_s:.1f} s, over the "
            f"{self.after_s:g} s target; served with {self.factor:g} of the steps, at least {self.min_steps}"
        )


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
        adaptive: AdaptiveSteps | None = None,
        **options: Any,
    ) -> None:
        """`model_id`: the generator's registered model version, which its lineage names.
        `screen`: moderates the prompts before any image is made (None: no moderation).
        `adaptive`: serves waiting standard-lane requests with fewer steps (None: never)."""
        super().__init__(journal, **options)
        self.generator, self.store, self.model_id, self.screen = generator, store, model_id, screen
        self.adaptive = adaptive

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
        served, adapted = self._served(runnable)
        images = await self.generator.generate_each(served)
        for (job, request), image in zip(runnable, images, strict=True):
            if isinstance(image, Exception):
                outcomes.append(Failed(job.key, f"{type(image).__name__}: {image}", is_retryable(image)))
                continue
            cid = await self.store.put(image.png)
            lineage = replace(image.lineage, model_id=self.model_id)
            if job.key in adapted:
                lineage = replace(lineage, requested_steps=request.steps, adaptation=adapted[job.key])
            params = await self.store.put(lineage.canonical())  # the pre-image of paramsDigest, public
            updates = {
                "cid": str(cid),
                "sha256": image.digest.hex(),
                "params_digest": lineage.params_digest().hex(),
                "params_cid": str(params),
                "lineage": lineage.as_dict(),
                "generated_at": job.updated_at,
                costs.GENERATE: costs.compute(
                    image.wall_s, image.cpu_s, lineage.device, stored_bytes=len(image.png) + len(lineage.canonical())
                ),
            }
            outcomes.append(Done(job.key, updates))
        return outcomes

    def _served(
        self, runnable: Sequence[tuple[Job, GenerationRequest]]
    ) -> tuple[list[GenerationRequest], dict[str, str]]:
        """The requests as they will be served (`adaptive`: fewer steps for a batch of standard
        requests whose oldest waited too long), and why, by job key, for those adapted."""
        as_asked = [request for _, request in runnable]
        if self.adaptive is None or any(job.payload.get("lane") == FAST_LANE for job, _ in runnable):
            return as_asked, {}
        now = time.time()
        waited = max(now - float(job.payload.get("requested_at", job.created_at)) for job, _ in runnable)
        served: list[GenerationRequest] = []
        adapted: dict[str, str] = {}
        for job, request in runnable:
            steps = self.adaptive.steps_for(request, str(job.payload.get("lane", "")), waited)
            if steps is None:
                served.append(request)
                continue
            served.append(replace(request, steps=steps))
            adapted[job.key] = self.adaptive.reason(waited)
        return served, adapted
