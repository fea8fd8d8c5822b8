"""One life of the whole pipeline for the crash test: `python crash_worker.py CONFIG.json`.

Connects to the node in the config, runs every daemon over the journal in the config's state
folder, prints `ready` once the daemons are running and `done` when every job is final.

A life starts in about a second, without torch: the generator is the shipped `Generator` over
`ProceduralRunner` (it renders the procedural dataset's image of the caption,
`media.dataset.render`, seeded), the curator is `DigestCurator` (it accepts every image, with a
unit embedding derived from the image's digest), and the curation head's circuits are the ones
the test process built and cached a moment before. What the crash test checks is reconciliation
(journal against chain), and every chain effect of the pipeline is the same whatever makes the
pixels and the embedding: the publisher, the registrar, the prover (real EZKL proofs of the head
on those embeddings, checked by the deployed verifiers) and the settlement daemon are the
shipped ones, and `test_pipeline.py` runs the real models through the same stages."""

from __future__ import annotations

import asyncio
import hashlib
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

from web3 import HTTPProvider, Web3  # noqa: E402

from agents.app.wiring import DEFAULT_POLICY, Models, Parts, build_agents, open_parts  # noqa: E402
from agents.core.requests import GenerationRequest  # noqa: E402
from agents.daemons.runner import all_final  # noqa: E402
from agents.models.curator import CurationPolicy, Decision, EmbeddingIndex, Screening, Verdict, term_screen  # noqa: E402
from agents.models.generator import Generator, Ran, png_bytes  # noqa: E402


class ProceduralRunner:
    """A `agents.models.generator.Runner` that renders the procedural dataset's image of each
    caption (any other prompt: a plain image seeded by the prompt) instead of running a diffusion
    pipeline; the shipped `Generator` drives it (micro-batches, lineage) as it drives the real one."""

    model_digest = hashlib.sha256(b"proofmint procedural renderer v1").hexdigest()
    workers = 1

    def describe(self) -> dict[str, Any]:
        return {
            "pipeline": "ProceduralRenderer",
            "scheduler": "none",
            "adapters": [],
            "device": "cpu",
            "dtype": "uint8",
        }

    @staticmethod
    def _png(request: GenerationRequest) -> bytes:
        from PIL import Image

        from media.dataset import parse_caption, render

        composition = parse_caption(request.prompt)
        if composition is not None:
            return png_bytes(render(composition, request.seed))
        shade = hashlib.sha256(f"{request.prompt}|{request.seed}".encode()).digest()[:3]
        return png_bytes(Image.new("RGB", (32, 32), tuple(shade)))

    async def run(self, requests: list[GenerationRequest], batch: int) -> Ran:
        start = time.process_time()
        pngs = await asyncio.to_thread(lambda: [self._png(r) for r in requests])
        return Ran(pngs, time.process_time() - start)

    def close(self) -> None:
        return None


class DigestCurator:
    """Accepts every image; its image and prompt embeddings are unit vectors drawn from the
    image's digest (so the same image always gets the same ones, and the prover proves the head
    on them)."""

    device = "cpu"
    dim = 32

    def __init__(self) -> None:
        self.index = EmbeddingIndex(self.dim)
        self._screen = term_screen(CurationPolicy.from_json(ROOT / DEFAULT_POLICY))  # read once

    def _embedding(self, digest: str) -> tuple[float, ...]:
        raw = np.frombuffer(hashlib.sha256(bytes.fromhex(digest)).digest(), dtype=np.uint8)
        vector = raw.astype(np.float32)[: self.dim] - 127.5
        return tuple(float(v) for v in vector / np.linalg.norm(vector))

    async def curate(self, items: Sequence[Any]) -> list[Verdict]:
        return [
            Verdict(
                i.digest,
                Decision.ACCEPT,
                1.0,
                (),
                None,
                0.0,
                self._embedding(i.digest),
                prompt_embedding=self._embedding(hashlib.sha256(bytes.fromhex(i.digest)).hexdigest()),
            )
            for i in items
        ]

    async def screen(self, prompts: Sequence[str]) -> list[Screening]:
        """Prompts are screened by the shipped policy's blocked terms (no CLIP here)."""
        return await self._screen(prompts)

    def close(self) -> None:
        return None


def cached_circuits(roots: dict[str, str]) -> dict[int, Any]:
    """The head's circuits the test process built for its deployment, by their artifact folders
    (batch size -> folder): no torch, no export needed."""
    from zkml.pipeline import Artifacts, Circuit
    from zkml.shape import HeadShape

    embed_dim = HeadShape().embed_dim
    return {int(size): Circuit(Artifacts(Path(root)), int(size), embed_dim) for size, root in roots.items()}


async def open_procedural_parts(config: dict[str, object], **options: Any) -> tuple[Parts, Models]:
    """The parts a life runs on, from its config (node, key, deployment, cached circuits), with
    the torch-free generator and curator above; `options` go to `open_parts` (journal, store,
    names). The caller closes both."""
    web3 = Web3(HTTPProvider(str(config["rpc"]), exception_retry_configuration=None))
    heads = {int(size): int(model_id) for size, model_id in dict(config["heads"]).items()}  # type: ignore[call-overload]
    circuits = cached_circuits(dict(config["circuits"]))  # type: ignore[call-overload]
    models = Models(generator=Generator(ProceduralRunner(), "procedural", batch=4), curator=DigestCurator())
    parts = await open_parts(
        ROOT,
        Path(str(config["state"])),
        web3=web3,
        key=str(config["key"]),
        addresses=dict(config["addresses"]),  # type: ignore[call-overload]
        t2i_model_id=int(config["t2i"]),  # type: ignore[call-overload]
        head_models={size: (circuits[size], model_id) for size, model_id in heads.items()},
        sender_poll=0.02,
        models=models,
        **options,
    )
    return parts, models


async def main(config: dict[str, object]) -> None:
    parts, models = await open_procedural_parts(config)
    agents = build_agents(
        parts, worker="crashy", generate_batch=4, register_batch=4, linger_s=0.3, idle=0.05, withdraw_every_s=None
    )
    await agents.start()
    print("ready", flush=True)
    try:
        await agents.until(all_final(), within_s=900)
    finally:
        await agents.stop()
        parts.close()
        models.close()
    print("done", flush=True)


if __name__ == "__main__":
    asyncio.run(main(json.loads(Path(sys.argv[1]).read_text())))
