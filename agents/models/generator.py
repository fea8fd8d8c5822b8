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

One `Generator` holds what every generator shares (micro-batching, lineage, progress) and hands
each micro-batch to its `Runner`, the only part that differs: a `PipelineRunner` holds the
pipeline in this process and runs it in a thread; a `ProcessRunner` runs it in worker processes
(see the comment above it for why). Both run the same `run_pipeline_batch`, so they give the same
bytes for the same requests when torch runs on as many threads (a CPU worker runs on `CPU_THREADS`).
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, Protocol

from agents.core.digests import weights_digest
from agents.core.requests import GenerationRequest, GeneratorError
from agents.runtime.processes import MODEL_PRELOAD, ignore_interrupts, worker_context
from agents.storage.manifest import canonical_json

#: Pipeline classes proofmint defines, by the `_class_name` a model_index.json names them with,
#: and the module that defines each. diffusers resolves `_class_name` in its own namespace only;
#: importing the module registers the class there (see `media.t2i`), so that the generic
#: `DiffusionPipeline.from_pretrained` loads the folder.
CUSTOM_PIPELINES = {"TinyText2ImagePipeline": "media.t2i"}


class ModelNotFoundError(GeneratorError, FileNotFoundError):
    """The model is neither a local folder nor in the local Hugging Face cache."""


@dataclass(frozen=True)
class Lineage:
    """What produced an image: enough to reproduce it on the same device, and portable: the model
    is named by its registered version (`model_id`, 0 until the generating stage knows it) and
    its weights digest, never by where it lies on this machine, so the same request gives the
    same `params_digest` on any checkout. `canonical()` is the pre-image the publisher stores
    (the parameters document), whose sha256 is the `paramsDigest` the chain holds."""

    model_id: int
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
    requested_steps: int | None = None
    """The steps the request asked for where the generator served it with fewer (`steps`), as the
    operator allows under load (`agents.daemons.generate.AdaptiveSteps`); None: served as asked."""
    adaptation: str | None = None
    """Why it was served so (the policy and the queue age that triggered it); None: as asked."""

    def as_dict(self) -> dict[str, Any]:
        """Its fields; the adaptation fields only where the generator adapted, so a lineage served
        as asked reads (and hashes) as it did before they existed."""
        fields = asdict(self)
        for name in ("requested_steps", "adaptation"):
            if fields[name] is None:
                del fields[name]
        return fields

    def canonical(self) -> bytes:
        """Sorted-key compact UTF-8 JSON (`canonical_json`) of `as_dict()`: the bytes
        `params_digest` hashes."""
        return canonical_json(self.as_dict())

    def params_digest(self) -> bytes:
        """The generation-parameters digest an asset registers."""
        return hashlib.sha256(self.canonical()).digest()


@dataclass(frozen=True)
class GeneratedImage:
    """An image and its lineage; `wall_s` and `cpu_s`: its share of the micro-batch that made it
    (the batch's wall time as the caller waited for it, and the CPU time of the process that ran
    it, divided by the requests in it)."""

    png: bytes
    lineage: Lineage
    wall_s: float = 0.0
    cpu_s: float = 0.0
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

    The pipeline loads through the generic `DiffusionPipeline.from_pretrained`, which picks the
    class the folder's model_index.json names (a proofmint pipeline once `CUSTOM_PIPELINES`'
    module is imported). The digest is `agents.core.digests.weights_digest` of the folder the
    pipeline loaded from (for a hub id, its cached snapshot folder), i.e. what `ModelRegistry`
    records for the model version.
    """
    import importlib

    from diffusers import DiffusionPipeline

    target, dtype = _device_and_dtype(device)
    folder = pipeline_folder(source)
    index = folder / "model_index.json"
    if not index.is_file():
        raise ModelNotFoundError(f"{folder} has no model_index.json: not a diffusers pipeline folder")
    class_name = json.loads(index.read_text()).get("_class_name")
    if isinstance(class_name, str) and class_name in CUSTOM_PIPELINES:
        importlib.import_module(CUSTOM_PIPELINES[class_name])
    pipe = DiffusionPipeline.from_pretrained(str(folder), torch_dtype=dtype).to(target)
    pipe.set_progress_bar_config(disable=True)
    # A hub snapshot is the cache's own links to its blobs; a local folder must hold real files.
    return pipe, weights_digest(folder, follow_links=folder != Path(source)).hex()


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


def png_batch(pipe: Any, requests: Sequence[GenerationRequest], batch: int) -> list[bytes]:
    """`run_pipeline_batch` as PNG bytes (blocking)."""
    return [png_bytes(image) for image in run_pipeline_batch(pipe, requests, batch)]


class Ran(NamedTuple):
    """A micro-batch's PNGs (one per request, in order) and the CPU seconds it took."""

    pngs: list[bytes]
    cpu_s: float


def timed_png_batch(pipe: Any, requests: Sequence[GenerationRequest], batch: int) -> Ran:
    """`png_batch` and the CPU time of this process while it ran (every thread: torch's too). In
    a worker process that runs one micro-batch at a time that is the batch's; in a shared
    process it counts whatever else ran meanwhile."""
    start = time.process_time()
    pngs = png_batch(pipe, requests, batch)
    return Ran(pngs, time.process_time() - start)


class Runner(Protocol):
    """What runs a `Generator`'s micro-batches, and what the lineage needs of its pipeline."""

    @property
    def model_digest(self) -> str:
        """The weights digest of the pipeline it runs (see `load_pipeline`)."""
        ...

    @property
    def workers(self) -> int:
        """How many micro-batches it runs at once."""
        ...

    def describe(self) -> dict[str, Any]:
        """Its pipeline as `describe_pipeline` gives it."""
        ...

    async def run(self, requests: list[GenerationRequest], batch: int) -> Ran:
        """One micro-batch of 1 to `batch` requests of one signature, padded to `batch` rows
        (see `run_pipeline_batch`): PNG bytes, one per request, in order, and its CPU time."""
        ...

    def close(self) -> None:
        """Releases what it owns (threads, processes); no `run` after this."""
        ...


class PipelineRunner:
    """A pipeline loaded in this process, run one micro-batch at a time in a thread of
    `executor` (its own single thread when None), so the event loop keeps running."""

    workers = 1

    def __init__(self, pipe: Any, model_digest: str, executor: Executor | None = None) -> None:
        self.pipe = pipe
        self.model_digest = model_digest
        self._owned = executor is None
        self._executor = executor or ThreadPoolExecutor(max_workers=1, thread_name_prefix="generator")

    @classmethod
    async def load(cls, source: str, device: str | None = None, executor: Executor | None = None) -> PipelineRunner:
        """`load_pipeline(source, device)` in `executor` (None: the loop's default executor)."""
        pipe, digest = await asyncio.get_running_loop().run_in_executor(executor, load_pipeline, source, device)
        return cls(pipe, digest, executor)

    def describe(self) -> dict[str, Any]:
        return describe_pipeline(self.pipe)

    async def run(self, requests: list[GenerationRequest], batch: int) -> Ran:
        return await asyncio.get_running_loop().run_in_executor(
            self._executor, timed_png_batch, self.pipe, requests, batch
        )

    def close(self) -> None:
        """Shuts down the thread it made (an executor handed in stays its owner's)."""
        if self._owned:
            self._executor.shutdown(wait=True)


# -- the pipeline in worker processes -----------------------------------------------------------
#
# A small pipeline's forward pass is thousands of short operator calls, each taking the GIL: any
# Python work elsewhere in the process (the event loop, an in-process EVM, the journal) stalls it
# (a busy Python thread cuts the tiny model's throughput by an order of magnitude). `ProcessRunner` runs
# the pipeline in worker processes of its own, each holding the loaded pipeline for its life.
# On a CPU it runs one worker per core, each on ONE torch thread, micro-batches in parallel:
# - the same request gives the same image on any machine: torch's CPU kernels split their sums
#   by thread count, and the tiny model's images differ between one and two threads;
# - it is faster than one worker on all threads (`make bench-pipeline` measures the raw
#   generator's images/s);
# - a worker interrupted by the agents' own work no longer holds another back (the threads of
#   one operator wait for each other at its end).

_WORKER: dict[str, Any] = {}
"""The worker process's loaded pipeline (only ever set inside a `ProcessRunner` worker)."""

CPU_THREADS = 1
"""torch threads in each CPU worker: fixed, so images do not depend on the machine's cores."""
WORKER_BATCH = 4
"""A worker's micro-batch: on one thread the tiny model's throughput peaks near micro-batches of
4, and a lone request (padded to the micro-batch) waits for 4 images, not 8."""
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


def _worker_describe() -> tuple[str, dict[str, Any]]:
    """This worker's weights digest and what the lineage needs of its pipeline."""
    pipe = _worker_pipe()
    return str(_WORKER["digest"]), describe_pipeline(pipe)


def _worker_png_batch(requests: list[GenerationRequest], batch: int) -> Ran:
    return timed_png_batch(_worker_pipe(), requests, batch)


class ProcessRunner:
    """The pipeline in `workers` worker processes (`worker_context`; see above), each loading its own copy
    as it starts; up to `workers` micro-batches run at once. `close()` ends the workers."""

    def __init__(self, pool: ProcessPoolExecutor, model_digest: str, info: dict[str, Any], workers: int) -> None:
        self._pool = pool
        self.model_digest = model_digest
        self._info = info
        self.workers = workers

    @classmethod
    async def start(cls, source: str, device: str | None = None, workers: int | None = None) -> ProcessRunner:
        """`workers` processes (None: `default_workers`), all started and loaded before this
        returns, so the first micro-batches wait for none. A worker's load error is raised here."""
        workers = default_workers(device) if workers is None else workers
        if workers < 1:
            raise GeneratorError(f"workers must be at least 1, got {workers}")
        pool = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=worker_context(MODEL_PRELOAD),
            initializer=_worker_start,
            initargs=(source, device),
        )
        loop = asyncio.get_running_loop()
        try:  # one call per worker, all at once: the pool starts every worker (none is idle yet)
            described = await asyncio.gather(*(loop.run_in_executor(pool, _worker_describe) for _ in range(workers)))
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        digest, info = described[0]
        return cls(pool, digest, info, workers)

    def describe(self) -> dict[str, Any]:
        return dict(self._info)

    async def run(self, requests: list[GenerationRequest], batch: int) -> Ran:
        return await asyncio.get_running_loop().run_in_executor(self._pool, _worker_png_batch, requests, batch)

    def close(self) -> None:
        self._pool.shutdown(wait=True)


def _check_batch(batch: int) -> None:
    if batch < 1:
        raise GeneratorError(f"batch must be at least 1, got {batch}")


class Generator:
    """Runs requests through a pipeline off the event loop, in micro-batches of `batch` rows.

    Lifecycle:
    1. `Generator.load(source)` loads the pipeline in this process (`PipelineRunner`);
       `ProcessGenerator.load(source)` in worker processes (`ProcessRunner`); `Generator(runner,
       source, batch)` composes any `Runner`. Either way the runner records the weights digest.
    2. `await generate(requests)` groups requests by signature, cuts each group into micro-batches
       of up to `batch` requests, has the runner run them (up to `runner.workers` at once) and
       returns one `GeneratedImage` per request, in request order. `progress(done, total)` is
       called (from the loop) after every micro-batch.
    3. `close()` closes the runner (its thread or worker processes).
    """

    def __init__(self, runner: Runner, source: str, batch: int = 8) -> None:
        _check_batch(batch)
        self.runner = runner
        self._source = source
        self.batch = batch

    @classmethod
    async def load(
        cls, source: str, device: str | None = None, executor: Executor | None = None, batch: int = 8
    ) -> Generator:
        """The pipeline loaded in this process; micro-batches run in `executor` (None: a thread
        of the generator's own)."""
        _check_batch(batch)
        return cls(await PipelineRunner.load(source, device, executor), source, batch)

    @property
    def workers(self) -> int:
        """Micro-batches run at once (the runner's)."""
        return self.runner.workers

    def close(self) -> None:
        self.runner.close()

    def describe(self) -> dict[str, Any]:
        """What the lineage records of the pipeline (see `describe_pipeline`)."""
        return self.runner.describe()

    @property
    def adapters(self) -> tuple[str, ...]:
        return tuple(self.describe()["adapters"])

    def lineage(self, request: GenerationRequest, model_id: int = 0) -> Lineage:
        """The lineage of `request` made here; `model_id`: the registered version of the model."""
        info = self.describe()
        return Lineage(
            model_id=model_id,
            model_digest=self.runner.model_digest,
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

    def _micro_batches(self, requests: Sequence[GenerationRequest]) -> list[list[int]]:
        groups: dict[tuple[int, float, int | None, int | None], list[int]] = {}
        for index, request in enumerate(requests):
            groups.setdefault(request.signature(), []).append(index)
        return [indexes[i : i + self.batch] for indexes in groups.values() for i in range(0, len(indexes), self.batch)]

    async def generate(
        self, requests: Sequence[GenerationRequest], progress: Progress | None = None
    ) -> list[GeneratedImage]:
        """One image per request, in request order; the first failing micro-batch raises."""
        results = await self._run(requests, progress, isolate=False)
        return [r for r in results if isinstance(r, GeneratedImage)]

    async def generate_each(
        self, requests: Sequence[GenerationRequest], progress: Progress | None = None
    ) -> list[GeneratedImage | Exception]:
        """One image or one error per request, in request order: a micro-batch that fails is run
        again one request at a time, so a request that fails alone gets its own error and the
        requests batched with it still get their images."""
        return await self._run(requests, progress, isolate=True)

    async def _run(
        self, requests: Sequence[GenerationRequest], progress: Progress | None, isolate: bool
    ) -> list[GeneratedImage | Exception]:
        results: list[GeneratedImage | Exception | None] = [None] * len(requests)
        done = 0
        slots = asyncio.Semaphore(self.workers)

        async def one(indexes: list[int]) -> None:
            nonlocal done
            chunk = [requests[i] for i in indexes]
            try:
                async with slots:
                    start = time.perf_counter()
                    ran = await self.runner.run(chunk, self.batch)
                    wall = time.perf_counter() - start
            except Exception as error:
                if not isolate:
                    raise
                if len(indexes) > 1:
                    await asyncio.gather(*(one([index]) for index in indexes))
                    return
                results[indexes[0]] = error
            else:
                share = len(indexes)
                for index, request, png in zip(indexes, chunk, ran.pngs, strict=True):
                    results[index] = GeneratedImage(png, self.lineage(request), wall / share, ran.cpu_s / share)
            done += len(indexes)
            if progress is not None:
                progress(done, len(requests))

        await asyncio.gather(*(one(indexes) for indexes in self._micro_batches(requests)))
        return [r for r in results if r is not None]


class ProcessGenerator:
    """The generator the composition root loads: `ProcessGenerator.load` returns a `Generator`
    composed with a `ProcessRunner` (this class makes no instances; it names the choice)."""

    @staticmethod
    async def load(
        source: str, device: str | None = None, batch: int = WORKER_BATCH, workers: int | None = None
    ) -> Generator:
        """A `Generator` of micro-batches of `batch` over `workers` processes (None:
        `default_workers`), each loading the pipeline as it starts; all are started and loaded
        before this returns, so the first micro-batches wait for none."""
        _check_batch(batch)
        return Generator(await ProcessRunner.start(source, device, workers), source, batch)
