"""Generator stage: any diffusers pipeline from a folder, deterministic bytes, lineage, errors."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest

from agents.core.requests import GenerationRequest, GeneratorError
from agents.models.generator import (
    GeneratedImage,
    Generator,
    ModelNotFoundError,
    PipelineRunner,
    Ran,
    load_pipeline,
    run_pipeline_batch,
)
from agents.storage.cid import Cid
from media.dataset import examples
from media.t2i import TinyClipTextEncoder, TinyText2ImagePipeline, build_scheduler, build_unet
from tests.agents.loop_probe import loop_ticks

ROOT = Path(__file__).resolve().parents[3]
TINY_CLIP = ROOT / "models" / "tiny-clip"


@pytest.fixture(scope="module")
def t2i_folder(tmp_path_factory) -> Path:
    """The tiny pipeline's architecture with a seeded random UNet (training is not under test)."""
    from transformers import AutoTokenizer

    encoder = TinyClipTextEncoder.from_open_clip(TINY_CLIP).eval()
    pipe = TinyText2ImagePipeline(
        unet=build_unet(encoder.width, 32, seed=3),
        scheduler=build_scheduler(),
        text_encoder=encoder,
        tokenizer=AutoTokenizer.from_pretrained(str(TINY_CLIP)),
    )
    folder = tmp_path_factory.mktemp("t2i") / "pipe"
    pipe.save_pretrained(str(folder))
    return folder


def requests(count: int, steps: int = 4) -> list[GenerationRequest]:
    return [GenerationRequest(e.caption, seed=100 + i, steps=steps) for i, e in enumerate(examples("test", 9, count))]


@pytest.mark.asyncio
async def test_the_same_request_gives_the_same_digest_alone_or_in_any_batch(t2i_folder):
    generator = await Generator.load(str(t2i_folder), device="cpu", batch=4)
    try:
        batch = requests(6)
        together = await generator.generate(batch)
        again = await generator.generate(batch)
        alone = [(await generator.generate([r]))[0] for r in batch[:3]]
        shuffled = await generator.generate([batch[5], batch[2], batch[0]])
    finally:
        generator.close()
    assert [g.digest for g in together] == [g.digest for g in again]
    assert [g.digest for g in alone] == [g.digest for g in together[:3]]
    assert [g.digest for g in shuffled] == [together[5].digest, together[2].digest, together[0].digest]
    assert len({g.digest for g in together}) == 6
    assert together[0].png.startswith(b"\x89PNG\r\n\x1a\n")


@pytest.mark.asyncio
async def test_lineage_records_everything_that_made_the_image(t2i_folder):
    generator = await Generator.load(str(t2i_folder), device="cpu", batch=2)
    try:
        request = GenerationRequest(
            "a large red circle on the left over a plain black background",
            seed=7,
            negative_prompt="blue",
            steps=3,
            guidance=2.5,
            parents=("ab" * 32,),
        )
        (image,) = await generator.generate([request])
        (other,) = await generator.generate([GenerationRequest(request.prompt, seed=8, steps=3, guidance=2.5)])
    finally:
        generator.close()
    lineage = image.lineage
    assert lineage.model_id == 0 and str(t2i_folder) not in lineage.canonical().decode()  # no path of this machine
    assert len(bytes.fromhex(lineage.model_digest)) == 32
    assert (lineage.pipeline, lineage.scheduler) == ("TinyText2ImagePipeline", "DDIMScheduler")
    assert (lineage.prompt, lineage.negative_prompt, lineage.seed, lineage.steps, lineage.guidance) == (
        request.prompt,
        "blue",
        7,
        3,
        2.5,
    )
    assert lineage.parents == ("ab" * 32,) and lineage.adapters == ()
    assert (lineage.device, lineage.dtype, lineage.batch) == ("cpu", "float32", 2)
    assert json.loads(lineage.canonical())["seed"] == 7
    assert lineage.params_digest() != other.lineage.params_digest()
    assert image.digest != other.digest


@pytest.mark.asyncio
async def test_generation_runs_off_the_event_loop_and_reports_progress(t2i_folder):
    generator = await Generator.load(str(t2i_folder), device="cpu", batch=2)
    seen: list[tuple[int, int]] = []
    try:
        async with loop_ticks(0.005) as ticks:
            mixed = [*requests(3, steps=6), GenerationRequest("two small blue squares", seed=1, steps=2)]
            images = await generator.generate(mixed, progress=lambda done, total: seen.append((done, total)))
    finally:
        generator.close()
    assert len(images) == 4 and [i.lineage.steps for i in images] == [6, 6, 6, 2]
    assert seen[-1] == (4, 4) and [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert ticks.count > 5, "the loop kept running while the pipeline worked"


def test_bad_requests_are_refused():
    with pytest.raises(GeneratorError, match="prompt is empty"):
        GenerationRequest("  ", seed=1)
    with pytest.raises(GeneratorError, match="seed"):
        GenerationRequest("x", seed=-1)
    with pytest.raises(GeneratorError, match="steps"):
        GenerationRequest("x", seed=1, steps=0)
    with pytest.raises(GeneratorError, match="guidance"):
        GenerationRequest("x", seed=1, guidance=-1)
    with pytest.raises(GeneratorError, match="multiples of 8"):
        GenerationRequest("x", seed=1, height=30)
    refusals = [
        ("bad \ud800", "lone surrogate"),  # JSON's "\\ud800"
        ("bad \udcff", "not valid UTF-8: byte 0xff"),  # the shell's $'bad \\xff' as Python's argv has it
        ("a\x00b", "control character"),
        ("red \x1b[31m", "control character"),
        ("x" * 1_001, "at most 1000"),
    ]
    for text, why in refusals:
        with pytest.raises(GeneratorError, match=re.escape(why)):
            GenerationRequest(text, seed=1)
        with pytest.raises(GeneratorError, match="negative prompt"):
            GenerationRequest("fine", seed=1, negative_prompt=text)
    assert GenerationRequest("two lines\n\tand a tab, ünïcödé 🎨", seed=1).prompt.startswith("two")


def smuggled(prompt: str, seed: int) -> GenerationRequest:
    """A request whose text was never checked, as one journaled by an older version reads."""
    request = GenerationRequest("placeholder", seed=seed, steps=2)
    object.__setattr__(request, "prompt", prompt)
    return request


@pytest.mark.asyncio
async def test_a_request_that_fails_in_the_pipeline_fails_alone_and_its_micro_batch_completes(t2i_folder):
    generator = await Generator.load(str(t2i_folder), device="cpu", batch=4)
    good = requests(3, steps=2)
    mixed = [good[0], smuggled("bad \ud800", seed=7), good[1], good[2]]
    seen: list[int] = []
    try:
        results = await generator.generate_each(mixed, progress=lambda done, total: seen.append(done))
        alone = [(await generator.generate([r]))[0] for r in good]
        with pytest.raises(Exception):  # noqa: B017 - the tokenizer's own error, whatever its type
            await generator.generate(mixed)
    finally:
        generator.close()
    assert isinstance(results[1], Exception) and not isinstance(results[1], GeneratedImage)
    images = [results[0], results[2], results[3]]
    assert all(isinstance(i, GeneratedImage) for i in images)
    assert [i.digest for i in images if isinstance(i, GeneratedImage)] == [i.digest for i in alone]
    assert seen[-1] == 4, "every request counted once, isolated or not"


class FailsOnSeed(PipelineRunner):
    """The real runner, with a fault (out of memory, a driver error) that only one request meets."""

    seed = 13

    async def run(self, requests: list[GenerationRequest], batch: int) -> Ran:
        if any(r.seed == self.seed for r in requests):
            raise RuntimeError("CUDA error: an illegal memory access was encountered")
        return await super().run(requests, batch)


@pytest.mark.asyncio
async def test_the_generator_stage_fails_only_the_job_that_fails(t2i_folder, tmp_path):
    from agents.daemons.generate import GenerateStage
    from agents.runtime import jobs
    from agents.runtime.journal import Journal
    from agents.runtime.stage import Done, Failed
    from agents.storage.store import LocalStore

    pipe, _ = load_pipeline(str(t2i_folder), "cpu")
    generator = Generator(FailsOnSeed(pipe, "ab" * 32), str(t2i_folder), batch=4)
    journal = Journal(tmp_path / "journal.db", final=jobs.FINAL)
    store = LocalStore(tmp_path / "store")
    keys = [
        jobs.submit_request(
            journal, GenerationRequest(f"a red circle {seed}", seed=seed, steps=2), requester="r", source="api"
        )[0]
        for seed in (11, 12, 13, 14)
    ]
    # journaled by a version that took any text: refused as it is read, before the pipeline
    bad_payload = "req-from-an-older-version"
    old = {"request": {"prompt": "bad \ud800", "seed": 1, "steps": 2}, "requester": "r", "source": "api"}
    journal.submit(bad_payload, jobs.ASSET, old, stage=jobs.REQUESTED)
    stage = GenerateStage(journal, generator, store, worker="test", model_id=5)
    try:
        outcomes = {o.key: o for o in await stage.process([journal.get(k) for k in [*keys, bad_payload]])}
    finally:
        generator.close()
        journal.close()
    assert isinstance(outcomes[keys[2]], Failed) and "illegal memory access" in outcomes[keys[2]].error
    assert outcomes[keys[2]].retryable is False
    refused = outcomes[bad_payload]
    assert isinstance(refused, Failed) and "lone surrogate" in refused.error and refused.retryable is False
    for key in (keys[0], keys[1], keys[3]):
        done = outcomes[key]
        assert isinstance(done, Done)
        assert hashlib.sha256(await store.get(Cid.parse(done.updates["cid"]))).hexdigest() == done.updates["sha256"]
        # the lineage names the registered model, and its stored pre-image hashes to the digest
        assert done.updates["lineage"]["model_id"] == 5
        document = await store.get(Cid.parse(done.updates["params_cid"]))
        assert hashlib.sha256(document).hexdigest() == done.updates["params_digest"]
        assert json.loads(document) == json.loads(json.dumps(done.updates["lineage"]))


def test_missing_models_are_clear_errors(tmp_path, monkeypatch):
    with pytest.raises(ModelNotFoundError, match=r"no model_index\.json"):
        load_pipeline(str(tmp_path), "cpu")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotFoundError, match=r"HF_HUB_OFFLINE=1"):
        load_pipeline("proofmint/no-such-model", "cpu")


@pytest.mark.asyncio
async def test_a_hub_id_loads_from_the_local_cache_snapshot_and_digests_like_the_folder(
    t2i_folder, tmp_path, monkeypatch
):
    import huggingface_hub.constants

    from agents.core.digests import weights_digest

    # The cache's real layout: files in blobs/, the snapshot holds links to them, refs/main names it.
    repo = tmp_path / "hub" / "models--proofmint--tiny-t2i"
    commit = "0123456789abcdef0123456789abcdef01234567"
    snapshot = repo / "snapshots" / commit
    for file in sorted(p for p in t2i_folder.rglob("*") if p.is_file()):
        blob = repo / "blobs" / hashlib.sha256(file.read_bytes()).hexdigest()
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(file.read_bytes())
        link = snapshot / file.relative_to(t2i_folder)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(blob)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    generator = await Generator.load("proofmint/tiny-t2i", device="cpu", batch=2)
    from_folder = await Generator.load(str(t2i_folder), device="cpu", batch=2)
    try:
        (cached,) = await generator.generate(requests(1, steps=2))
        (local,) = await from_folder.generate(requests(1, steps=2))
    finally:
        generator.close()
        from_folder.close()
    # the same request made from a hub id and from a folder: one lineage, one parameters digest
    assert cached.lineage == local.lineage and cached.lineage.params_digest() == local.lineage.params_digest()
    assert cached.lineage.model_digest == weights_digest(t2i_folder).hex() == local.lineage.model_digest
    assert cached.digest == local.digest
    with pytest.raises(ValueError, match="symbolic links"):
        weights_digest(snapshot)


def test_micro_batches_are_checked(t2i_folder):
    pipe, digest = load_pipeline(str(t2i_folder), "cpu")
    with pytest.raises(GeneratorError, match="1 to 2 requests"):
        run_pipeline_batch(pipe, requests(3), 2)
    with pytest.raises(GeneratorError, match="mixes"):
        run_pipeline_batch(pipe, [*requests(1, steps=2), *requests(1, steps=3)], 2)
    runner = PipelineRunner(pipe, digest)
    try:
        with pytest.raises(GeneratorError, match="at least 1"):
            Generator(runner, "x", batch=0)
    finally:
        runner.close()


class RecordingRunner:
    """A `Runner` with no model: a request's "PNG" names its prompt and seed. It records every
    micro-batch it is handed and how many ran at once."""

    model_digest = "cd" * 32

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.calls: list[tuple[list[int], int]] = []
        self.running = 0
        self.most_at_once = 0
        self.closed = False

    def describe(self) -> dict[str, Any]:
        return {"pipeline": "Recording", "scheduler": "None", "adapters": (), "device": "cpu", "dtype": "float32"}

    async def run(self, requests: list[GenerationRequest], batch: int) -> Ran:
        self.calls.append(([r.seed for r in requests], batch))
        self.running += 1
        self.most_at_once = max(self.most_at_once, self.running)
        await asyncio.sleep(0.01)
        self.running -= 1
        return Ran([f"{r.prompt}/{r.seed}".encode() for r in requests], 0.002 * len(requests))

    def close(self) -> None:
        self.closed = True


@pytest.mark.asyncio
@pytest.mark.parametrize("workers", [1, 2])
async def test_a_generator_hands_its_runner_fixed_size_micro_batches_of_one_signature(workers):
    runner = RecordingRunner(workers)
    generator = Generator(runner, "recorded", batch=2)
    mixed = [GenerationRequest(f"p{i}", seed=i, steps=4 if i % 3 else 2) for i in range(7)]
    seen: list[int] = []
    images = await generator.generate(mixed, progress=lambda done, total: seen.append(done))
    generator.close()
    # steps 2: seeds 0, 3, 6; steps 4: seeds 1, 2, 4, 5 -- in request order within each group
    assert sorted(runner.calls) == [([0, 3], 2), ([1, 2], 2), ([4, 5], 2), ([6], 2)]
    assert [i.png for i in images] == [f"p{i}/{i}".encode() for i in range(7)]
    assert [i.lineage.model_digest for i in images] == [RecordingRunner.model_digest] * 7
    # each image carries its share of its micro-batch's CPU seconds (as the runner reported them) and wall time
    assert [i.cpu_s for i in images] == pytest.approx([0.002] * 7)
    assert all(i.wall_s >= 0.01 / 2 for i in images)
    assert {(i.lineage.model_id, i.lineage.pipeline, i.lineage.batch) for i in images} == {(0, "Recording", 2)}
    assert generator.workers == workers and runner.most_at_once == workers
    assert seen[-1] == 7 and len(seen) == 4 and runner.closed


@pytest.mark.asyncio
async def test_the_process_generator_makes_the_same_images_and_lineage(t2i_folder, tmp_path):
    import torch

    from agents.models.generator import CPU_THREADS, ProcessGenerator, ProcessRunner

    batch = requests(6)
    threads = torch.get_num_threads()
    torch.set_num_threads(CPU_THREADS)  # the workers' setting: images depend on torch's threads
    local = await Generator.load(str(t2i_folder), device="cpu", batch=4)
    try:
        here = await local.generate(batch)
    finally:
        local.close()
        torch.set_num_threads(threads)
    one, two = await asyncio.gather(  # three worker processes, started side by side
        ProcessGenerator.load(str(t2i_folder), device="cpu", batch=4, workers=1),
        ProcessGenerator.load(str(t2i_folder), device="cpu", batch=4, workers=2),
    )
    seen: list[tuple[int, int]] = []
    try:
        alone = await one.generate(batch[3:4])
        there = await one.generate(batch)
        # two micro-batches (of 4 and 2) over two workers, at once
        shared = await two.generate(batch, progress=lambda done, total: seen.append((done, total)))
    finally:
        one.close()
        two.close()
    assert (one.workers, two.workers) == (1, 2)
    # one Generator class, composed with either runner: nothing of it is refused
    assert type(local) is type(one) is Generator and not hasattr(one, "run_batch")
    assert isinstance(local.runner, PipelineRunner) and isinstance(one.runner, ProcessRunner)
    assert [g.digest for g in there] == [g.digest for g in here] == [g.digest for g in shared]
    assert [g.lineage for g in there] == [g.lineage for g in here] == [g.lineage for g in shared]
    assert alone[0].digest == here[3].digest
    done = [d for d, _ in seen]  # after each micro-batch, in the order they ended
    assert len(seen) == 2 and done == sorted(done) and done[-1] == 6 and {t for _, t in seen} == {6}
    with pytest.raises(ModelNotFoundError, match=r"no model_index\.json"):
        await ProcessGenerator.load(str(tmp_path), device="cpu", workers=2)
    with pytest.raises(GeneratorError, match="at least 1"):
        await ProcessGenerator.load(str(t2i_folder), device="cpu", workers=0)


class SeesPrompts(PipelineRunner):
    """The real runner, noting every prompt it is handed."""

    seen: list[str]

    async def run(self, requests: list[GenerationRequest], batch: int) -> list[bytes]:
        self.seen = [*getattr(self, "seen", []), *(r.prompt for r in requests)]
        return await super().run(requests, batch)


@pytest.mark.asyncio
async def test_a_prompt_the_policy_refuses_is_rejected_before_any_image_is_made(t2i_folder, tmp_path):
    from agents.daemons.generate import GenerateStage
    from agents.models.curator import CurationPolicy, term_screen
    from agents.runtime import jobs
    from agents.runtime.journal import Journal
    from agents.runtime.stage import Done
    from agents.storage.store import LocalStore

    pipe, _ = load_pipeline(str(t2i_folder), "cpu")
    runner = SeesPrompts(pipe, "ab" * 32)
    generator = Generator(runner, str(t2i_folder), batch=4)
    journal = Journal(tmp_path / "journal.db", final=jobs.FINAL)
    prompts = ["a red circle", "a NUDE red circle", "a blue square"]
    keys = [
        jobs.submit_request(journal, GenerationRequest(p, seed=1, steps=2), requester="r", source="api")[0]
        for p in prompts
    ]
    screen = term_screen(CurationPolicy(blocked_terms=("nude",)))
    stage = GenerateStage(journal, generator, LocalStore(tmp_path / "store"), worker="test", screen=screen)
    try:
        outcomes = {o.key: o for o in await stage.process([journal.get(k) for k in keys])}
    finally:
        generator.close()
        journal.close()
    refused = outcomes[keys[1]]
    assert isinstance(refused, Done) and refused.stage == jobs.REJECTED
    assert refused.updates["curation"]["reason"] == "moderation: the prompt contains the blocked term 'nude'"
    assert refused.updates["curation"]["flags"] == [{"concept": "nude", "where": "prompt", "similarity": 1.0}]
    assert "cid" not in refused.updates and runner.seen == ["a red circle", "a blue square"], "no compute spent"
    assert all(isinstance(outcomes[k], Done) and outcomes[k].stage is None for k in (keys[0], keys[2]))
