"""The compute floor of an asset, for `bench/scale.py`: what curating, publishing and committing
one asset must compute whatever the orchestration around it costs, measured here on one thread.

- `clip_image` and `clip_text`: the shipped tiny CLIP's image and prompt embeddings, in batches
  of 32 as the curator embeds them (`Curator.embed_images`, `embed_prompts`). The proof's input
  is these float32 embeddings, recomputed by anyone who audits an asset, so they are not
  approximated to save time;
- `c2pa_sign`: signing the asset's detached C2PA manifest (ES256, one signer kept, as the
  publisher signs);
- `poseidon`: the input commitment of its 64-value head row (`zkml.pipeline.quantized_commitment`,
  the native hash).

Their sum bounds the rate of a machine: `ceiling_assets_per_min` = cores x 60,000 / the sum,
before a single journal write, queue message, block store read or transaction. CPU time is the
process's (user + system) around each step, so what another process does meanwhile does not count.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BATCH = 32
"""Images (and prompts) a curator embeds at once."""

_DIGITAL_SOURCE = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"


def _cpu_ms_each(step: Callable[[], object], count: int, repeats: int) -> float:
    """CPU milliseconds of `step` per item, where one call handles `count` items (the best of
    `repeats` calls after one warm-up: the floor, not the noise)."""
    step()
    best = float("inf")
    for _ in range(repeats):
        started = time.process_time()
        step()
        best = min(best, time.process_time() - started)
    return 1000.0 * best / count


def compute_floor(
    items: Sequence[tuple[str, bytes]], *, clip: str | None = None, repeats: int = 3, cores: int | None = None
) -> dict[str, Any]:
    """The floor of `items` ((prompt, PNG) pairs; at least one): CPU ms per asset of each
    computation and their sum, and the ceiling it sets on `cores` (default: this machine's)."""
    if not items:
        raise ValueError("the compute floor needs at least one (prompt, PNG) item")
    import torch

    from agents.models.curator import CurationPolicy, Curator
    from agents.storage.credentials import DevIdentity, SidecarSigner
    from media.clip import load
    from zkml.pipeline import quantized_commitment

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the daemons run it (agent_threads): one core's work
    try:
        curator = Curator(load(clip or f"local-dir:{ROOT / 'models' / 'tiny-clip'}"), CurationPolicy())
        try:
            batch = [items[i % len(items)] for i in range(BATCH)]
            with torch.no_grad():
                image_ms = _cpu_ms_each(lambda: curator.embed_images([png for _, png in batch]), BATCH, repeats)
                text_ms = _cpu_ms_each(lambda: curator.embed_prompts([p for p, _ in batch]), BATCH, repeats)
        finally:
            curator.close()
    finally:
        torch.set_num_threads(threads)
    signer = SidecarSigner(DevIdentity.create("proofmint compute floor"))
    prompt, png = items[0]
    definition = {
        "claim_generator_info": [{"name": "proofmint", "version": "floor"}],
        "title": prompt,
        "format": "image/png",
        "assertions": [
            {
                "label": "c2pa.actions",
                "data": {"actions": [{"action": "c2pa.created", "digitalSourceType": _DIGITAL_SOURCE}]},
            }
        ],
    }
    sign_ms = _cpu_ms_each(lambda: [signer.sign(definition, png) for _ in range(8)], 8, repeats)
    rng = random.Random(0)
    rows = [[rng.randrange(-(1 << 13), 1 << 13) for _ in range(64)] for _ in range(8)]
    digest = bytes(32)
    hash_ms = _cpu_ms_each(lambda: [quantized_commitment(row, digest) for row in rows], len(rows), repeats)
    parts = {"clip_image": image_ms, "clip_text": text_ms, "c2pa_sign": sign_ms, "poseidon": hash_ms}
    total = sum(parts.values())
    cores = cores or os.cpu_count() or 1
    return {
        "compute_floor_ms_per_asset": {**{k: round(v, 3) for k, v in parts.items()}, "total": round(total, 3)},
        "ceiling_assets_per_min": round(cores * 60_000.0 / total, 1),
        "ceiling_cores": cores,
    }
