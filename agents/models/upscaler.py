"""The upscaler: accepted base images in, images of twice the side out, off the event loop.

The shipped model is `models/tiny-upscaler` (`media.upscale.TinyUpscalePipeline`, trained by
`make train-upscaler`: deterministic on CPU, so an auditor re-running it gets the same bytes).
Any other diffusers upscale pipeline in a local folder loads too (`DiffusionPipeline.from_pretrained`
with local files only: a full-size latent or x4 upscaler), called with the base's prompt where it
takes one. Nothing is ever fetched from a hub.

Inference runs in one worker thread of its own (`asyncio` never waits on it), an image at a time:
the tiny model's output does not depend on what else is in a batch, and a full-size one is too
big to batch on a CPU anyway.
"""

from __future__ import annotations

import asyncio
import inspect
import io
import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agents.core.digests import weights_digest
from agents.core.errors import PermanentError
from agents.models.generator import png_bytes

DEFAULT_UPSCALER = Path("models") / "tiny-upscaler"
"""The shipped upscaler (under the project root)."""


class UpscalerError(PermanentError, ValueError):
    """An upscaler that cannot be loaded, or an image it cannot take (the message says why)."""


@dataclass(frozen=True)
class Upscaled:
    """One upscaled image: its PNG bytes and what making it took (wall and CPU seconds)."""

    png: bytes
    width: int
    height: int
    wall_s: float
    cpu_s: float


class Upscaler:
    """A local diffusers upscale pipeline, run in a worker thread of its own."""

    def __init__(self, pipe: Any, folder: Path, *, name: str) -> None:
        self.pipe, self.folder, self.name = pipe, folder, name
        self.model_digest = weights_digest(folder)
        self.device, self.dtype = "cpu", "float32"
        self._takes_prompt = "prompt" in inspect.signature(pipe.__call__).parameters
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="upscaler")

    @classmethod
    def load(cls, folder: Path) -> Upscaler:
        """The pipeline saved in `folder` (blocking). `UpscalerError` for anything else."""
        index = folder / "model_index.json"
        if not index.is_file():
            raise UpscalerError(f"no upscaler at {folder} (no model_index.json): `make train-upscaler` writes one")
        try:
            pipeline = str(json.loads(index.read_text(encoding="utf8")).get("_class_name", ""))
        except (OSError, ValueError) as exc:
            raise UpscalerError(f"{index}: not a diffusers model index ({exc})") from None
        if pipeline == "TinyUpscalePipeline":
            from media.upscale import load_upscaler

            return cls(load_upscaler(folder), folder, name=pipeline)
        from diffusers import DiffusionPipeline

        try:
            pipe = DiffusionPipeline.from_pretrained(str(folder), local_files_only=True)
        except Exception as exc:  # diffusers raises many kinds for a folder it cannot use
            raise UpscalerError(f"{folder}: diffusers cannot load it ({type(exc).__name__}: {exc})") from None
        pipe.set_progress_bar_config(disable=True)
        return cls(pipe, folder, name=pipeline or type(pipe).__name__)

    def describe(self) -> dict[str, str]:
        """What the lineage of an upscaled image names (besides the weights digest)."""
        return {"pipeline": self.name, "scheduler": "none", "device": self.device, "dtype": self.dtype}

    def _run(self, png: bytes, prompt: str) -> Upscaled:
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(io.BytesIO(png)) as opened:
                image = opened.convert("RGB")
        except (UnidentifiedImageError, OSError) as exc:
            raise UpscalerError(f"not an image: {exc}") from None
        started, cpu = time.perf_counter(), time.thread_time()
        try:
            result = self.pipe(prompt=prompt, image=image) if self._takes_prompt else self.pipe(image)
        except ValueError as exc:
            raise UpscalerError(str(exc)) from None
        big = result.images[0]
        out = png_bytes(big)
        return Upscaled(out, big.width, big.height, time.perf_counter() - started, time.thread_time() - cpu)

    async def upscale(self, png: bytes, prompt: str) -> Upscaled:
        """`png` upscaled (its prompt for pipelines that take one), in the worker thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._run, png, prompt)

    def close(self) -> None:
        self._executor.shutdown(wait=True)
