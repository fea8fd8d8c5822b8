"""The assets the agents made, as the API shows them (`agents.api.views`): read from the journal
(every registered asset's request, lineage, curation, CIDs, zk status), searched by words of the
prompt or by image similarity (the curator's CLIP embeddings, which the journal keeps)."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import Any

from agents.api.views import Asset, SimilarAsset, asset_view, creator_of, similar_view
from agents.runtime import jobs
from agents.runtime.journal import Job, Journal

SHOWN = (jobs.REGISTERED, jobs.DELIVERED, jobs.ATTESTED, jobs.UNPROVEN)
_WORD = re.compile(r"[a-z0-9]+")


def _words(text: str) -> set[str]:
    return set(_WORD.findall(text.lower()))


@dataclass
class _Index:
    version: tuple[int, float]
    jobs: list[Job]  # by registration number
    by_digest: dict[str, Job]
    by_cid: dict[str, Job]
    words: list[set[str]]
    embedded: list[Job]
    unit: Any  # numpy matrix of the embedded jobs' unit embeddings, or None


def _build(jobs_: list[Job], version: tuple[int, float]) -> _Index:
    import numpy as np

    ordered = sorted(jobs_, key=lambda j: (j.payload.get("seq") or 0, j.key))
    embedded = [j for j in ordered if j.payload.get("embedding")]
    unit = None
    if embedded and len({len(j.payload["embedding"]) for j in embedded}) == 1:
        matrix = np.asarray([j.payload["embedding"] for j in embedded], dtype=np.float64)
        unit = matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)
    return _Index(
        version=version,
        jobs=ordered,
        by_digest={j.payload["sha256"]: j for j in ordered if "sha256" in j.payload},
        by_cid={j.payload["cid"]: j for j in ordered if "cid" in j.payload},
        words=[_words(j.payload.get("request", {}).get("prompt", "")) for j in ordered],
        embedded=embedded if unit is not None else [],
        unit=unit,
    )


class Catalog:
    """Reads through an index of the journal's registered assets, rebuilt (in a thread) only
    when the journal's rows at those stages changed: one small query per read otherwise."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self._index: _Index | None = None
        self._lock = asyncio.Lock()

    async def _current(self) -> _Index:
        version = await self.journal.call(self.journal.version, SHOWN)
        if self._index is not None and self._index.version == version:
            return self._index
        async with self._lock:
            if self._index is None or self._index.version != version:
                found = await self.journal.call(self.journal.in_stages, SHOWN, jobs.ASSET)
                self._index = await asyncio.to_thread(_build, found, version)
            return self._index

    async def search(self, text: str = "", limit: int = 50, offset: int = 0) -> tuple[int, list[Asset]]:
        index = await self._current()
        wanted = _words(text)
        hits = [job for job, words in zip(index.jobs, index.words, strict=True) if wanted <= words]
        return len(hits), [asset_view(j) for j in hits[offset : offset + limit]]

    async def get(self, digest: bytes) -> Job | None:
        return (await self._current()).by_digest.get(digest.hex())

    async def by_cid(self, cid: str) -> Job | None:
        return (await self._current()).by_cid.get(cid)

    async def created_by(self, creator: str, limit: int) -> list[Asset]:
        """The newest `limit` assets `creator` created (registered as its creator), oldest first."""
        wanted = creator.lower()
        mine = [j for j in (await self._current()).jobs if str(creator_of(j) or "").lower() == wanted]
        return [asset_view(j) for j in mine[-limit:]]

    async def similar(self, digest: bytes, limit: int = 10) -> list[SimilarAsset] | None:
        """Assets nearest to one by cosine similarity of their CLIP image embeddings; None if
        the asset is unknown or has no embedding."""
        index = await self._current()
        anchor = index.by_digest.get(digest.hex())
        if anchor is None or index.unit is None or anchor not in index.embedded:
            return None
        row = index.embedded.index(anchor)
        scores = index.unit @ index.unit[row]
        order = [i for i in scores.argsort()[::-1].tolist() if i != row][:limit]
        return [similar_view(index.embedded[i], round(float(scores[i]), 6)) for i in order]
