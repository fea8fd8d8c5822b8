"""Generator stage: prompts in, PNG bytes with their digest and lineage record out.

Any diffusers text-to-image pipeline works: a local folder (the shipped `models/tiny-t2i`, a
saved Stable Diffusion, ...) or a Hugging Face hub id already in the local cache. Nothing is
downloaded when `HF_HUB_OFFLINE=1`; a missing model is a `ModelNotFoundError` that says so.

Determinism: a request's image depends only on the request, the device and the generator's
batch size. Each request has its own seeded `torch.Generator`, and every pipeline call has
exactly `batch` rows: a short micro-batch is padded with copies of its last request, whose
outputs are dropped. Kernels pick their algorithm by tensor shape, so a fixed shape makes the
same request give the same PNG bytes (and digest) alone or beside any others (a test checks it);
the batch size is part of the lineage record.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from agents.core.digests import weights_digest
from agents.core.requests import GenerationRequest, GeneratorError
from agents.runtime.processes import ignore_interrupts

#: Pipelines proofmint defines (diffusers resolves only its own class names by itself).
CUSTOM_PIPELINES = {"TinyText2ImagePipeline": ("media.t2i", "TinyText2ImagePipeline")}


class ModelNotFoundError(GeneratorError, FileNotFoundError):
    """The model is neither a local folder nor in the local Hugging Face cache."""


@dataclass(frozen=True)
class Lineage:
    """What produced an image: enough to reproduce it on the same device."""

    model: str
    model_digest: str
    pipeline: str
    scheduler: str
    adapters: tuple[str, ...]
    prompt: str
    negative_prompt: str
    seed: int
    steps: int
    guidance: float
    height: int | None
    width: int | None
    parents: tuple[str, ...]
    device: str
    dtype: str
    batch: int

    def canonical(self) -> bytes:
        """Sorted-key compact JSON: the bytes `params_digest` hashes."""
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":")).encode()

    def params_digest(self) -> bytes:
        """The generation-parameters digest an asset registers."""
        return hashlib.sha256(self.canonical()).digest()


@dataclass(frozen=True)
class GeneratedImage:
    png: bytes
    lineage: Lineage
    digest: bytes = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "digest", hashlib.sha256(self.png).digest())


def png_bytes(image: Any) -> bytes:
    """PNG of a PIL image with no metadata, so equal pixels give equal bytes."""
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="PNG", optimize=False, compress_level=6)
    return buffer.getvalue()


def _device_and_dtype(device: str | None) -> tuple[Any, Any]:
    import torch

    name = device or ("cuda" if torch.cuda.is_available() else "cpu")
    target = torch.device(name)
    if target.type == "cuda":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    else:
        dtype = torch.float32
    return target, dtype


def pipeline_folder(source: str) -> Path:
    """The folder a pipeline loads from: `source` itself, or a hub id's snapshot folder in the
    local Hugging Face cache (downloaded first only when `HF_HUB_OFFLINE` is not set)."""
    path = Path(source)
    if path.exists():
        return path
    from huggingface_hub import snapshot_download

    offline = os.environ.get("HF_HUB_OFFLINE", "") not in {"", "0", "false", "False"}
    try:
        return Path(snapshot_download(repo_id=source, local_files_only=offline))
    except (OSError, ValueError) as err:
        where = "the local Hugging Face cache (HF_HUB_OFFLINE=1)" if offline else "the hub"
        raise ModelNotFoundError(
            f"{source!r} is not a local folder and could not be loaded from {where}: {err}. "
            "Pass the path of a saved diffusers pipeline folder."
        ) from err


def load_pipeline(source: str, device: str | None = None) -> tuple[Any, str]:
    """A diffusers pipeline from a local folder or a cached hub id, and its weights digest.

    The digest is `agents.core.digests.weights_digest` of the folder the pipeline loaded from (for a
    hub id, its cached snapshot folder), i.e. what `ModelRegistry` records for the model version.
    """
    import importlib

    from diffusers import DiffusionPipeline

    target, dtype = _device_and_dtype(device)
    folder = pipeline_folder(source)
    index = folder / "model_index.json"
    if not index.is_file():
        raise ModelNotFoundError(f"{folder} has no model_index.json: not a diffusers pipeline folder")
    class_name = json.loads(index.read_text()).get("_class_name", "")
    cls: Any = DiffusionPipeline
    if class_name in CUSTOM_PIPELINES:
        module, name = CUSTOM_PIPELINES[class_name]
        cls = getattr(importlib.import_module(module), name)
    pipe = cls.from_pretrained(str(folder), torch_dtype=dtype).to(target)
    pipe.set_progress_bar_config(disable=True)
    # A hub snapshot is the cache's own links to its blobs; a local folder must hold real files.
    return pipe, weights_digest(folder, follow_links=folder != Path(source)).hex()


Progress = Callable[[int, int], None]


def run_pipeline_batch(pipe: Any, requests: Sequence[GenerationRequest], batch: int) -> list[Any]:
    """One call of `pipe` with exactly `batch` rows (blocking): PIL images, one per request."""
    import torch

    if not 1 <= len(requests) <= batch:
        raise GeneratorError(f"a micro-batch holds 1 to {batch} requests, not {len(requests)}")
    if len({r.signature() for r in requests}) != 1:
        raise GeneratorError("a micro-batch mixes steps, guidance or sizes")
    real = len(requests)
    requests = [*requests, *[requests[-1]] * (batch - real)]
    first = requests[0]
    generators = [torch.Generator(device=pipe.device).manual_seed(r.seed) for r in requests]
    kwargs: dict[str, Any] = {
        "prompt": [r.prompt for r in requests],
        "negative_prompt": [r.negative_prompt for r in requests],
        "num_inference_steps": first.steps,
        "guidance_scale": first.guidance,
        "generator": generators,
    }
    if first.height is not None:
        kwargs["height"] = first.height
    if first.width is not None:
        kwargs["width"] = first.width
    with torch.inference_mode():
        return list(pipe(**kwargs).images)[:real]


class Generator:
    """Runs requests through one loaded pipeline, off the event loop.

    Lifecycle:
    1. `Generator.load(source)` loads the pipeline in a worker thread (the caller's loop keeps
       running) and records its weights digest.
    2. `await generate(requests)` groups requests by signature, runs fixed-size micro-batches
       in the executor (up to `workers` at once) and returns one `GeneratedImage` per request,
       in request order. `progress(done, total)` is called (from the loop) after every micro-batch.
    3. `close()` shuts down the executor it owns.
    """

    def __init__(self, pipe: Any, source: str, model_digest: str, executor: Executor | None = None, batch: int = 8):
        if batch < 1:
            raise GeneratorError(f"batch must be at least 1, got {batch}")
        self._pipe = pipe
        self._source = source
        self._model_digest = model_digest
        self._owned = executor is None
        self._executor = executor or ThreadPoolExecutor(max_workers=1, thread_name_prefix="generator")
        self.batch = batch
        self.workers = 1  # micro-batches the executor runs at once

    @classmethod
    async def load(
        cls, source: str, device: str | None = None, executor: Executor | None = None, batch: int = 8
    ) -> Generator:
        pool = executor or ThreadPoolExecutor(max_workers=1, thread_name_prefix="generator")
        pipe, digest = await asyncio.get_running_loop().run_in_executor(pool, load_pipeline, source, device)
        generator = cls(pipe, source, digest, pool, batch)
        generator._owned = executor is None
        return generator

    def close(self) -> None:
        if self._owned:
            self._executor.shutdown(wait=True)

    def describe(self) -> dict[str, Any]:
        """What the lineage records of the pipeline (see `describe_pipeline`)."""
        return describe_pipeline(self._pipe)

    @property
    def adapters(self) -> tuple[str, ...]:
        return tuple(self.describe()["adapters"])

    def lineage(self, request: GenerationRequest) -> Lineage:
        info = self.describe()
        return Lineage(
            model=self._source,
            model_digest=self._model_digest,
            pipeline=str(info["pipeline"]),
            scheduler=str(info["scheduler"]),
            adapters=tuple(info["adapters"]),
            prompt=request.prompt,
            negative_prompt=request.negative_prompt,
            seed=request.seed,
            steps=request.steps,
            guidance=request.guidance,
            height=request.height,
            width=request.width,
            parents=tuple(request.parents),
            device=str(info["device"]),
            dtype=str(info["dtype"]),
            batch=self.batch,
        )

    def run_batch(self, requests: Sequence[GenerationRequest]) -> list[Any]:
        """One pipeline call of exactly `batch` rows (blocking): PIL images, one per request."""
        return run_pipeline_batch(self._pipe, requests, self.batch)

    def _png_batch(self, requests: Sequence[GenerationRequest]) -> list[bytes]:
        return [png_bytes(image) for image in self.run_batch(requests)]

    async def _run(self, requests: Sequence[GenerationRequest]) -> list[bytes]:
        """One micro-batch in the executor: PNG bytes, one per request."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._png_batch, list(requests))

    def _micro_batches(self, requests: Sequence[GenerationRequest]) -> list[list[int]]:
        groups: dict[tuple[int, float, int | None, int | None], list[int]] = {}
        for index, request in enumerate(requests):
            groups.setdefault(request.signature(), []).append(index)
        return [indexes[i : i + self.batch] for indexes in groups.values() for i in range(0, len(indexes), self.batch)]

    async def generate(
        self, requests: Sequence[GenerationRequest], progress: Progress | None = None
    ) -> list[GeneratedImage]:
        results: list[GeneratedImage | None] = [None] * len(requests)
        done = 0
        slots = asyncio.Semaphore(self.workers)

        async def one(indexes: list[int]) -> None:
            nonlocal done
            chunk = [requests[i] for i in indexes]
            async with slots:
                pngs = await self._run(chunk)
            for index, request, png in zip(indexes, chunk, pngs, strict=True):
                results[index] = GeneratedImage(png, self.lineage(request))
            done += len(indexes)
            if progress is not None:
                progress(done, len(requests))

        await asyncio.gather(*(one(indexes) for indexes in self._micro_batches(requests)))
        return [r for r in results if r is not None]


# -- the pipeline in worker processes -----------------------------------------------------------
#
# A small pipeline's forward pass is thousands of short operator calls, each taking the GIL: any
# Python work elsewhere in the process (the event loop, an in-process EVM, the journal) stalls it
# (a busy Python thread cut the tiny model from 3.1 to 0.2 images/s here). `ProcessGenerator`
# runs the pipeline in worker processes of its own, each holding the loaded pipeline for its life.
# On a CPU it runs one worker per core, each on ONE torch thread, micro-batches in parallel:
# - the same request gives the same image on any machine: torch's CPU kernels split their sums
#   by thread count, and the tiny model's images differ between one and two threads;
# - it is faster: on 2 cores the tiny model made 3.35 images/s as one worker on two threads,
#   and 3.7 to 4.1 as two workers on one thread each (bench/pipeline.py's raw figure);
# - a worker interrupted by the agents' own work no longer holds another back (the threads of
#   one operator wait for each other at its end).

_WORKER: dict[str, Any] = {}
"""The worker process's loaded pipeline (only ever set inside a `ProcessGenerator` worker)."""


def describe_pipeline(pipe: Any) -> dict[str, Any]:
    """Pipeline and scheduler class, LoRA adapters, device and dtype: what the lineage records."""
    getter = getattr(pipe, "get_list_adapters", None)
    adapters: tuple[str, ...] = ()
    if getter is not None:
        try:
            adapters = tuple(sorted({name for names in getter().values() for name in names}))
        except (AttributeError, ValueError):
            adapters = ()
    return {
        "pipeline": type(pipe).__name__,
        "scheduler": type(pipe.scheduler).__name__,
        "adapters": adapters,
        "device": str(pipe.device),
        "dtype": str(pipe.dtype).removeprefix("torch."),
    }


CPU_THREADS = 1
"""torch threads in each CPU worker: fixed, so images do not depend on the machine's cores."""
WORKER_BATCH = 4
"""A worker's micro-batch: on one thread the tiny model makes 2.05 images/s in micro-batches of
4 and 1.85 in 8 (1.75 in 2), and a lone request (padded to the micro-batch) waits 1.95 s, not 4.3."""
MAX_WORKERS = 8
"""The most CPU workers started by default (each holds a copy of the weights)."""


def default_workers(device: str | None) -> int:
    """Worker processes for `device`: one on an accelerator (one device context), else one per
    core up to `MAX_WORKERS`."""
    if _device_and_dtype(device)[0].type != "cpu":
        return 1
    return min(os.cpu_count() or 1, MAX_WORKERS)


def _worker_start(source: str, device: str | None) -> None:
    """A worker's start: SIGINT ignored (see `ignore_interrupts`), `CPU_THREADS` torch threads,
    the pipeline loaded (a failure is kept and raised by every call, so the pool survives it)."""
    import torch

    ignore_interrupts()
    torch.set_num_threads(CPU_THREADS)
    try:
        pipe, digest = load_pipeline(source, device)
    except Exception as error:  # kept: every call into this worker raises it
        _WORKER["error"] = error
        return
    _WORKER.update(pipe=pipe, digest=digest)


def _worker_pipe() -> Any:
    if "error" in _WORKER:
        raise _WORKER["error"]
    return _WORKER["pipe"]


def _worker_describe() -> dict[str, Any]:
    """What the lineage needs of this worker's pipeline."""
    pipe = _worker_pipe()
    return {"digest": _WORKER["digest"], **describe_pipeline(pipe)}


def _worker_png_batch(requests: list[GenerationRequest], batch: int) -> list[bytes]:
    return [png_bytes(image) for image in run_pipeline_batch(_worker_pipe(), requests, batch)]


class ProcessGenerator(Generator):
    """A `Generator` whose pipeline lives in a worker process (see above); same results, same
    lineage. `close()` ends the worker."""

    def __init__(self, source: str, info: dict[str, Any], executor: Executor, batch: int = WORKER_BATCH) -> None:
        super().__init__(None, source, str(info["digest"]), executor, batch)
        self._info = info

    @classmethod
    async def load(
        cls,
        source: str,
        device: str | None = None,
        executor: Executor | None = None,
        batch: int = WORKER_BATCH,
        workers: int | None = None,
    ) -> ProcessGenerator:
        """`workers` processes (None: `default_workers`), each loading the pipeline as it starts;
        all are started and loaded before this returns, so the first micro-batches wait for none."""
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        del executor  # the worker processes are the executor
        workers = default_workers(device) if workers is None else workers
        if workers < 1:
            raise GeneratorError(f"workers must be at least 1, got {workers}")
        pool = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_worker_start,
            initargs=(source, device),
        )
        loop = asyncio.get_running_loop()
        try:  # one call per worker, all at once: the pool starts every worker (none is idle yet)
            infos = await asyncio.gather(*(loop.run_in_executor(pool, _worker_describe) for _ in range(workers)))
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        generator = cls(source, infos[0], pool, batch)
        generator.workers = workers
        generator._owned = True
        return generator

    def describe(self) -> dict[str, Any]:
        return self._info

    def run_batch(self, requests: Sequence[GenerationRequest]) -> list[Any]:
        raise GeneratorError("a ProcessGenerator's pipeline is in its worker process: use generate()")

    async def _run(self, requests: Sequence[GenerationRequest]) -> list[bytes]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, _worker_png_batch, list(requests), self.batch)
