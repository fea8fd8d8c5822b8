"""Models benchmark: `python bench/models.py` (or `make bench-models`).

One run, side by side with its baselines:
- tiny CLIP zero-shot top-1 on held-out images, each matched against every distinct caption of
  the held-out set; baselines: chance (1 / captions) and the same architecture untrained;
- generation attribute accuracy: the tiny text-to-image model on held-out prompts at the default
  step count, judged from pixels by `media.judge` (colour and shape); baselines: the dataset's own
  renderings (the judge's ceiling), the same pipeline with an untrained UNet, and chance (1/24);
- images per second on this CPU: generation (default steps, the generator's micro-batch vs one
  at a time) and curation (embedding + policy, a batch vs one at a time).
A grid of generated images with their prompts is saved under `--out`. The last line is one JSON
object.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

import click

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from agents.core.requests import GenerationRequest  # noqa: E402
from agents.models.curator import CurationItem, CurationPolicy, Curator  # noqa: E402
from agents.models.generator import Generator  # noqa: E402
from media.clip import LoadedClip, TinyClipShape, build, load, zero_shot_top1  # noqa: E402
from media.dataset import COLOURS, SHAPES, examples  # noqa: E402
from media.judge import judge  # noqa: E402

DEFAULT_STEPS = GenerationRequest("x", seed=0).steps


def save_grid(images: list[object], prompts: list[str], out: Path, columns: int = 8) -> None:
    """The images as a grid PNG, and beside it a text file naming each cell's prompt."""
    from PIL import Image

    cell = 96
    rows = (len(images) + columns - 1) // columns
    grid = Image.new("RGB", (columns * cell, rows * cell), "white")
    for i, image in enumerate(images):
        tile = image.resize((cell - 4, cell - 4), Image.NEAREST)  # type: ignore[attr-defined]
        grid.paste(tile, ((i % columns) * cell + 2, (i // columns) * cell + 2))
    out.mkdir(parents=True, exist_ok=True)
    grid.save(out / "generated-grid.png")
    lines = [f"{i // columns},{i % columns}: {p}" for i, p in enumerate(prompts)]
    (out / "generated-grid.txt").write_text("row,column: prompt\n" + "\n".join(lines) + "\n")


async def generation(t2i: Path, prompts: int, out: Path) -> dict[str, float]:
    held = list(examples("test", 31_337, prompts))
    requests = [GenerationRequest(e.caption, seed=i) for i, e in enumerate(held)]
    results: dict[str, float] = {}
    generator = await Generator.load(str(t2i), device="cpu", batch=8)
    try:
        started = time.monotonic()
        made = await generator.generate(
            requests, progress=lambda d, t: click.echo(f"  generated {d}/{t}", err=True) if d % 64 == 0 else None
        )
        results["images_per_s_cpu"] = len(made) / (time.monotonic() - started)
    finally:
        generator.close()
    from io import BytesIO

    from PIL import Image

    images = [Image.open(BytesIO(m.png)).convert("RGB") for m in made]
    results["generation_attribute_accuracy"] = sum(
        judge(image).matches(e.composition) for image, e in zip(images, held, strict=True)
    ) / len(held)
    results["generation_colour_accuracy"] = sum(
        judge(image).colour == e.composition.colour for image, e in zip(images, held, strict=True)
    ) / len(held)
    results["generation_shape_accuracy"] = sum(
        judge(image).shape == e.composition.shape for image, e in zip(images, held, strict=True)
    ) / len(held)
    save_grid(images[:32], [e.caption for e in held[:32]], out)

    single = await Generator.load(str(t2i), device="cpu", batch=1)
    try:
        started = time.monotonic()
        await single.generate(requests[:16])
        results["images_per_s_cpu_batch1"] = 16 / (time.monotonic() - started)
    finally:
        single.close()
    return results


def untrained_unet_accuracy(t2i: Path, prompts: int) -> float:
    from media.t2i import TinyText2ImagePipeline, build_unet

    pipe = TinyText2ImagePipeline.from_pretrained(str(t2i))
    pipe.unet = build_unet(pipe.text_encoder.width, pipe.unet.config.projection_class_embeddings_input_dim, seed=1)
    pipe.set_progress_bar_config(disable=True)
    held = list(examples("test", 31_337, prompts))
    import torch

    images = pipe(
        [e.caption for e in held], num_inference_steps=DEFAULT_STEPS, generator=torch.Generator().manual_seed(0)
    ).images
    return sum(judge(i).matches(e.composition) for i, e in zip(images, held, strict=True)) / len(held)


async def curation(clip_name: str, count: int) -> dict[str, float]:
    held = list(examples("test", 4_242, count))
    items = [CurationItem(f"{i:064x}", e.image, e.caption) for i, e in enumerate(held)]
    curator = await Curator.load(clip_name, CurationPolicy())
    curator.remember = False
    try:
        await curator.curate(items[:8])  # warm-up
        started = time.monotonic()
        for start in range(0, count, 64):
            await curator.curate(items[start : start + 64])
        batched = count / (time.monotonic() - started)
        started = time.monotonic()
        for item in items[:32]:
            await curator.curate([item])
        single = 32 / (time.monotonic() - started)
    finally:
        curator.close()
    return {"curation_images_per_s_cpu": batched, "curation_images_per_s_cpu_batch1": single}


@click.command()
@click.option("--clip", "clip_dir", type=click.Path(path_type=Path), default=ROOT / "models" / "tiny-clip")
@click.option("--t2i", type=click.Path(path_type=Path), default=ROOT / "models" / "tiny-t2i")
@click.option("--images", type=click.IntRange(16), default=1_024, show_default=True, help="Held-out images for CLIP.")
@click.option("--prompts", type=click.IntRange(8), default=256, show_default=True, help="Held-out prompts.")
@click.option("--out", type=click.Path(path_type=Path), default=ROOT / "artifacts" / "bench-models", show_default=True)
def main(clip_dir: Path, t2i: Path, images: int, prompts: int, out: Path) -> None:
    """Zero-shot accuracy, generation accuracy and CPU throughput of the shipped tiny models."""
    import torch

    for folder in (clip_dir, t2i):
        if not folder.is_dir():
            raise click.ClickException(f"{folder} is missing: train it (see its model card) or pass its path")
    held = list(examples("test", 10_101, images))
    captions = [e.caption for e in held]
    click.echo(f"zero-shot: {images} held-out images, {len(set(captions))} distinct captions", err=True)
    clip = load(f"local-dir:{clip_dir}")
    zero_shot = zero_shot_top1(clip, [e.image for e in held], captions)
    untrained = LoadedClip(build(TinyClipShape(), seed=0).eval(), clip.preprocess, clip.tokenizer, clip.device)
    zero_shot_untrained = zero_shot_top1(untrained, [e.image for e in held], captions)
    judge_ceiling = sum(judge(e.image).matches(e.composition) for e in held[:prompts]) / min(prompts, len(held))
    click.echo(f"generation: {prompts} held-out prompts at {DEFAULT_STEPS} steps", err=True)
    torch.manual_seed(0)
    gen = asyncio.run(generation(t2i, prompts, out))
    gen_untrained = untrained_unet_accuracy(t2i, min(prompts, 64))
    click.echo("curation throughput", err=True)
    cur = asyncio.run(curation(f"local-dir:{clip_dir}", 512))

    chance_caption = 1 / len(set(captions))
    chance_attributes = 1 / (len(COLOURS) * len(SHAPES))
    rows = [
        (
            "CLIP zero-shot top-1 (held-out)",
            f"{zero_shot:.3f}",
            f"chance {chance_caption:.4f}; untrained {zero_shot_untrained:.3f}",
        ),
        (
            "generation attribute accuracy",
            f"{gen['generation_attribute_accuracy']:.3f}",
            f"chance {chance_attributes:.3f}; untrained UNet {gen_untrained:.3f}; real images {judge_ceiling:.3f}",
        ),
        ("  colour right", f"{gen['generation_colour_accuracy']:.3f}", f"chance {1 / len(COLOURS):.3f}"),
        ("  shape right", f"{gen['generation_shape_accuracy']:.3f}", f"chance {1 / len(SHAPES):.3f}"),
        (
            f"images/s CPU, {DEFAULT_STEPS} steps, batch 8",
            f"{gen['images_per_s_cpu']:.2f}",
            f"batch 1: {gen['images_per_s_cpu_batch1']:.2f}",
        ),
        (
            "curation images/s CPU, batch 64",
            f"{cur['curation_images_per_s_cpu']:.1f}",
            f"batch 1: {cur['curation_images_per_s_cpu_batch1']:.1f}",
        ),
    ]
    click.echo(f"{'figure':<42}{'proofmint':>12}   baseline")
    click.echo("-" * 100)
    for name, value, baseline in rows:
        click.echo(f"{name:<42}{value:>12}   {baseline}")
    click.echo(f"targets: zero-shot >= 0.90, attribute accuracy >= 0.80; grid: {out / 'generated-grid.png'}")
    figures = {
        "clip_zero_shot_top1": round(zero_shot, 4),
        "clip_zero_shot_top1_untrained": round(zero_shot_untrained, 4),
        "clip_zero_shot_chance": round(chance_caption, 5),
        "generation_attribute_accuracy": round(gen["generation_attribute_accuracy"], 4),
        "generation_colour_accuracy": round(gen["generation_colour_accuracy"], 4),
        "generation_shape_accuracy": round(gen["generation_shape_accuracy"], 4),
        "generation_attribute_accuracy_untrained": round(gen_untrained, 4),
        "judge_on_real_images": round(judge_ceiling, 4),
        "images_per_s_cpu": round(gen["images_per_s_cpu"], 3),
        "images_per_s_cpu_batch1": round(gen["images_per_s_cpu_batch1"], 3),
        "curation_images_per_s_cpu": round(cur["curation_images_per_s_cpu"], 2),
        "curation_images_per_s_cpu_batch1": round(cur["curation_images_per_s_cpu_batch1"], 2),
        "default_steps": DEFAULT_STEPS,
        "held_out_images": images,
        "held_out_prompts": prompts,
    }
    click.echo(json.dumps(figures, sort_keys=True))


if __name__ == "__main__":
    main()
