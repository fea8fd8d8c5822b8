"""The assets the agents made, as the API shows them: read from the journal (every registered
asset's request, lineage, curation, CIDs, zk status), searched by words of the prompt or by
image similarity (the curator's CLIP embeddings, which the journal keeps)."""

from __future__ import annotations

import math
import re
from typing import Any

from agents.daemons import jobs
from agents.runtime.journal import Job, Journal

SHOWN = (jobs.REGISTERED, jobs.DELIVERED, jobs.ATTESTED, jobs.UNPROVEN)
_WORD = re.compile(r"[a-z0-9]+")


def _tx(value: Any) -> str | None:
    return None if not value else "0x" + str(value).removeprefix("0x")


def zk_status(job: Job) -> dict[str, Any]:
    if job.stage == jobs.ATTESTED:
        return {
            "status": "attested",
            "modelId": job.payload.get("attested_by"),
            "score": job.payload.get("score"),
            "transaction": _tx(job.payload.get("attest_tx")),
        }
    if job.stage == jobs.UNPROVEN:
        return {"status": "unproven", "reason": job.error}
    return {"status": "pending"}


def asset_view(job: Job, *, full: bool = False) -> dict[str, Any]:
    p = job.payload
    request = p.get("request", {})
    lineage = p.get("lineage", {})
    view: dict[str, Any] = {
        "digest": "0x" + p["sha256"],
        "cid": p.get("cid"),
        "prompt": request.get("prompt"),
        "creator": p.get("creator") or p.get("registered_creator"),
        "requester": p.get("requester"),
        "seq": p.get("seq"),
        "width": p.get("width"),
        "height": p.get("height"),
        "zk": zk_status(job),
        "curation": {k: v for k, v in (p.get("curation") or {}).items() if k != "embedding"},
    }
    if full:
        view.update(
            {
                "metadataCid": p.get("metadata_cid"),
                "manifestCid": p.get("manifest_cid"),
                "metadataURI": p.get("metadata_uri"),
                "request": request,
                "lineage": {k: v for k, v in lineage.items() if k != "parents"},
                "parents": ["0x" + d.removeprefix("0x") for d in lineage.get("parents", request.get("parents", []))],
                "paramsDigest": "0x" + p["params_digest"] if "params_digest" in p else None,
                "commitment": "0x" + p["commitment"] if "commitment" in p else None,
                "marketRequest": p.get("market_request"),
            }
        )
    return view


def _words(text: str) -> set[str]:
    return set(_WORD.findall(text.lower()))


class Catalog:
    def __init__(self, journal: Journal) -> None:
        self.journal = journal

    async def _all(self) -> list[Job]:
        found: list[Job] = []
        for stage in SHOWN:
            found += [j for j in await self.journal.call(self.journal.at_stage, stage) if j.kind == jobs.ASSET]
        found.sort(key=lambda j: (j.payload.get("seq") or 0, j.key))
        return found

    async def search(self, text: str = "", limit: int = 50, offset: int = 0) -> tuple[int, list[dict[str, Any]]]:
        wanted = _words(text)
        hits = [j for j in await self._all() if wanted <= _words(j.payload.get("request", {}).get("prompt", ""))]
        return len(hits), [asset_view(j) for j in hits[offset : offset + limit]]

    async def get(self, digest: bytes) -> Job | None:
        target = digest.hex()
        for job in await self._all():
            if job.payload.get("sha256") == target:
                return job
        return None

    async def by_cid(self, cid: str) -> Job | None:
        for job in await self._all():
            if job.payload.get("cid") == cid:
                return job
        return None

    async def children(self, digest: bytes) -> list[dict[str, Any]]:
        target = digest.hex()
        found = []
        for job in await self._all():
            parents = job.payload.get("lineage", {}).get("parents", [])
            if target in (p.removeprefix("0x") for p in parents):
                found.append(asset_view(job))
        return found

    async def similar(self, digest: bytes, limit: int = 10) -> list[dict[str, Any]] | None:
        """Assets nearest to one by cosine similarity of their CLIP image embeddings; None if
        the asset is unknown or has no embedding."""
        everything = await self._all()
        anchor = next((j for j in everything if j.payload.get("sha256") == digest.hex()), None)
        if anchor is None or not anchor.payload.get("embedding"):
            return None
        a = [float(x) for x in anchor.payload["embedding"]]
        norm_a = math.sqrt(sum(x * x for x in a)) or 1.0
        scored = []
        for job in everything:
            b = job.payload.get("embedding")
            if job is anchor or not b or len(b) != len(a):
                continue
            norm_b = math.sqrt(sum(float(x) * float(x) for x in b)) or 1.0
            score = sum(x * float(y) for x, y in zip(a, b, strict=True)) / (norm_a * norm_b)
            scored.append((score, job))
        scored.sort(key=lambda item: -item[0])
        return [{**asset_view(job), "similarity": round(score, 6)} for score, job in scored[:limit]]
