"""Models benchmark: `python bench/models.py` (or `make bench-models`).

One run, side by side with its baselines:
- tiny CLIP zero-shot top-1 on held-out images, each matched against every distinct caption of
  the held-out set; baselines: chance (1 / captions) and the same architecture untrained;
- generation attribute accuracy: the tiny text-to-image model on held-out prompts at the default
  step count, judged from pixels by `media.judge` (colour and shape); baselines: the dataset's own
  renderings (the judge's ceiling), the same pipeline with an untrained UNet, and chance (1/24);
- images per second on this CPU: generation (default steps, the generator's micro-batch vs one
  at a time) and curation (embedding + policy, a batch vs one at a time);
- the curation head's decisions (`models/curation-head`, `media.head_training`): on held-out
  pairs (each held-out image with its caption, its caption with the colour, shape or count
  changed, and a random caption differing in one of those), accept / review / reject against
  the pixel judge's verdict that the image shows the prompt (colour, shape and count read from
  pixels all the prompt's); a decision is right when it accepts a pair the judge says is shown or
  rejects one it says is not, and a review counts as not right. Baseline: the curator's cosine
  in its `CurationPolicy` bands. The same on the generated images above. And the decision from
  the fixed-point score a proof carries (`media.head_training.fixed_point_scores`, ezkl's
  arithmetic under the pinned settings) against the float decision, with the fixed-point scores
  of the pairs nearest a band edge checked against real ezkl witnesses of the shipped head's
  circuit (cached under `.cache/bench-models/`);
- the x2 upscaler (`models/tiny-upscaler`, `media.upscale`): PSNR on held-out pairs (a test-split
  composition rendered at 64x64, its 2x2 box average the input) against bicubic x2 on the same
  pairs, and images per second on this CPU (32 -> 64, one call with every pair) beside bicubic's.
A grid of generated images with their prompts, and a grid of upscaled held-out images (per row:
the input shown nearest-neighbour at 64, bicubic x2, the model x2, the 64x64 truth) are saved
under `--out`. The last line is one JSON object.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import click

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from agents.core.requests import GenerationRequest  # noqa: E402
from agents.models.curator import CurationItem, CurationPolicy, Curator  # noqa: E402
from agents.models.generator import Generator  # noqa: E402
from media.clip import LoadedClip, TinyClipShape, build, load, zero_shot_top1  # noqa: E402
from media.dataset import COLOURS, SHAPES, examples  # noqa: E402
from media.head_training import (  # noqa: E402
    Embedder,
    Labelled,
    ShippedHead,
    Shown,
    fixed_point_scores,
    float_scores,
    held_out_pairs,
    held_out_shown,
    judged_pairs,
    load_head,
    measure,
)
from media.judge import judge  # noqa: E402
from media.train_upscaler import Pair, evaluate, images_per_second, pairs  # noqa: E402
from media.upscale import TinyUpscalePipeline, bicubic, load_upscaler, to_pixels, to_uint8  # noqa: E402

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


def save_upscale_grid(pipe: TinyUpscalePipeline, held: list[Pair], out: Path) -> Path:
    """Per row, one held-out pair: the input (nearest-neighbour at 64), bicubic x2, the model x2, the truth."""
    from PIL import Image

    side, gap = 64, 4
    made = pipe([p.low for p in held]).images
    smooth = to_uint8(bicubic(to_pixels([p.low for p in held])))
    grid = Image.new("RGB", (4 * (side + gap) + gap, len(held) * (side + gap) + gap), "white")
    for row, (pair, model, cubic) in enumerate(zip(held, made, smooth, strict=True)):
        nearest = pair.low.resize((side, side), Image.NEAREST)  # type: ignore[attr-defined]
        for column, cell in enumerate((nearest, Image.fromarray(cubic), model, pair.high)):
            grid.paste(cell, (gap + column * (side + gap), gap + row * (side + gap)))
    out.mkdir(parents=True, exist_ok=True)
    grid.save(out / "upscale-grid.png")
    (out / "upscale-grid.txt").write_text(
        "columns: input 32x32 (nearest-neighbour at 64), bicubic x2, tiny-upscaler x2, truth 64x64\n"
        + "".join(f"row {i}: {p.caption}\n" for i, p in enumerate(held))
    )
    return out / "upscale-grid.png"


def upscale_figures(upscaler: Path, images: int, out: Path) -> dict[str, float]:
    """The upscaler's held-out PSNR beside bicubic's, its CPU throughput beside bicubic's, and the grid."""
    import torch

    pipe = load_upscaler(upscaler)
    held = pairs("test", 60_606, images)
    figures = evaluate(pipe, held)
    lows = [p.low for p in held]
    started = time.perf_counter()
    with torch.no_grad():
        to_uint8(bicubic(to_pixels(lows)))
    bicubic_speed = len(lows) / (time.perf_counter() - started)
    save_upscale_grid(pipe, held[:8], out)
    return {
        "upscale_psnr_db": figures.psnr_db,
        "upscale_psnr_db_bicubic": figures.psnr_db_bicubic,
        "upscale_images_per_s_cpu": images_per_second(pipe, lows),
        "upscale_images_per_s_cpu_bicubic": bicubic_speed,
    }


async def generation(t2i: Path, prompts: int, out: Path) -> tuple[dict[str, float], list[Shown]]:
    """The generation figures, and each generated image with the composition of its prompt."""
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
    return results, [Shown(e.composition, image) for image, e in zip(images, held, strict=True)]


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


def ezkl_scores(shipped: ShippedHead, rows: list[list[float]], cache: Path) -> list[int]:
    """The scores real ezkl witnesses of the shipped head's circuit (batch 1, pinned settings and
    tuning, cached) carry, as integers at the circuit's output scale."""
    import tempfile

    import ezkl as untyped_ezkl

    from zkml.curation_head import CurationHead, HeadShape, export_onnx
    from zkml.evm import decode_signed, felt_to_int
    from zkml.pipeline import Circuit, HeadInput, input_felts

    ezkl: Any = untyped_ezkl  # its stubs mark every keyword with a default as required
    head = CurationHead(HeadShape(shipped.embed_dim, shipped.hidden))
    head.load_state_dict(shipped.state)
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        circuit = Circuit.build(
            export_onnx(head.eval(), work / "head.onnx", batch=1), cache, batch=1, embed_dim=shipped.embed_dim
        )
        run_args = circuit.settings()["run_args"]
        scales = (run_args["input_scale"], run_args["param_scale"], *circuit.settings()["model_output_scales"])
        if set(scales) != {13}:
            raise click.ClickException(f"the circuit's scales are {scales}, not the 13 fixed_point_scores reproduces")
        scores = []
        for row in rows:
            data, witness = work / "input.json", work / "witness.json"
            felts = input_felts(HeadInput(row, bytes(32)), run_args["input_scale"])
            data.write_text(json.dumps({"input_data": [felts]}), encoding="utf8")
            ezkl.gen_witness(data=str(data), model=str(circuit.artifacts.compiled), output=str(witness))
            outputs = json.loads(witness.read_text(encoding="utf8"))["outputs"]
            scores.append(decode_signed(felt_to_int(outputs[0][0])))
    return scores


def head_figures(
    clip: LoadedClip, head_dir: Path, images: int, generated: list[Shown], ezkl_check: int, cache: Path
) -> dict[str, float]:
    """The curation head's decision figures beside the cosine baseline (see the module docstring)."""
    import random

    import numpy as np

    shipped = load_head(head_dir)
    policy = CurationPolicy()  # the curator's bands today
    cosine_bands = (policy.accept_at, policy.review_at)
    embedder = Embedder(clip)
    held = held_out_pairs(embedder, held_out_shown(images))
    figures = measure(shipped.state, shipped.bands, held, cosine_bands)
    pairs = judged_pairs(generated, random.Random("bench-generated"))
    made = Labelled.of(embedder.rows(embedder.images([s.image for s in generated]), pairs), pairs)
    on_generated = measure(shipped.state, shipped.bands, made, cosine_bands)

    scores = float_scores(shipped.state, held.rows)
    edge = np.minimum(np.abs(scores - shipped.bands.accept_at), np.abs(scores - shipped.bands.review_at))
    nearest = [int(i) for i in np.argsort(edge, kind="stable")[:ezkl_check]]
    simulated = fixed_point_scores(shipped.state, held.rows[nearest])
    proven = ezkl_scores(shipped, held.rows[nearest].tolist(), cache) if nearest else []
    exact = sum(int(a) == b for a, b in zip(simulated, proven, strict=True))
    return {
        "head_decision_accuracy": figures["head_decision_accuracy"],
        "cosine_decision_accuracy": figures["cosine_decision_accuracy"],
        "head_review_rate": figures["head_review_rate"],
        "cosine_review_rate": figures["cosine_review_rate"],
        "head_quantised_agreement": figures["head_quantised_agreement"],
        "head_quantised_max_error": figures["head_quantised_max_error"],
        "head_decision_accuracy_generated": on_generated["head_decision_accuracy"],
        "cosine_decision_accuracy_generated": on_generated["cosine_decision_accuracy"],
        "head_pairs": figures["pairs"],
        "head_pairs_generated": on_generated["pairs"],
        "head_ezkl_checked": len(proven),
        "head_ezkl_exact": exact / len(proven) if proven else 0.0,
        "head_accept_at": shipped.bands.accept_at,
        "head_review_at": shipped.bands.review_at,
    }


@click.command()
@click.option("--clip", "clip_dir", type=click.Path(path_type=Path), default=ROOT / "models" / "tiny-clip")
@click.option("--t2i", type=click.Path(path_type=Path), default=ROOT / "models" / "tiny-t2i")
@click.option("--images", type=click.IntRange(16), default=1_024, show_default=True, help="Held-out images for CLIP.")
@click.option("--prompts", type=click.IntRange(8), default=256, show_default=True, help="Held-out prompts.")
@click.option("--head", "head_dir", type=click.Path(path_type=Path), default=ROOT / "models" / "curation-head")
@click.option(
    "--head-images", type=click.IntRange(16), default=1_024, show_default=True, help="Held-out images for the head."
)
@click.option(
    "--ezkl-check", type=click.IntRange(0), default=64, show_default=True,
    help="Held-out pairs (those nearest a band edge) whose fixed-point score is checked against a real ezkl witness.",
)  # fmt: skip
@click.option("--upscaler", type=click.Path(path_type=Path), default=ROOT / "models" / "tiny-upscaler")
@click.option(
    "--upscale-images", type=click.IntRange(8), default=256, show_default=True, help="Held-out pairs for the upscaler."
)
@click.option("--out", type=click.Path(path_type=Path), default=ROOT / "artifacts" / "bench-models", show_default=True)
def main(
    clip_dir: Path,
    t2i: Path,
    images: int,
    prompts: int,
    head_dir: Path,
    head_images: int,
    ezkl_check: int,
    upscaler: Path,
    upscale_images: int,
    out: Path,
) -> None:
    """Zero-shot accuracy, generation accuracy and CPU throughput of the shipped tiny models, the
    curation head's decisions and the upscaler's PSNR."""
    import torch

    for folder in (clip_dir, t2i, head_dir, upscaler):
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
    gen, generated = asyncio.run(generation(t2i, prompts, out))
    gen_untrained = untrained_unet_accuracy(t2i, min(prompts, 64))
    click.echo("curation throughput", err=True)
    cur = asyncio.run(curation(f"local-dir:{clip_dir}", 512))
    click.echo(f"curation head: {head_images} held-out images, {ezkl_check} ezkl witnesses", err=True)
    head = head_figures(clip, head_dir, head_images, generated, ezkl_check, ROOT / ".cache" / "bench-models" / "zk")
    click.echo(f"upscaler: {upscale_images} held-out pairs", err=True)
    upscale = upscale_figures(upscaler, upscale_images, out)
    policy = CurationPolicy()
    cosine_bands = f"cosine in bands {policy.accept_at} / {policy.review_at}"

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
        (
            "head decision accuracy (held-out)",
            f"{head['head_decision_accuracy']:.4f}",
            f"{cosine_bands}: {head['cosine_decision_accuracy']:.4f}",
        ),
        (
            "  review rate",
            f"{head['head_review_rate']:.4f}",
            f"cosine: {head['cosine_review_rate']:.4f}",
        ),
        (
            "head decision accuracy (generated)",
            f"{head['head_decision_accuracy_generated']:.4f}",
            f"{cosine_bands}: {head['cosine_decision_accuracy_generated']:.4f}",
        ),
        (
            "head proven vs float decision",
            f"{head['head_quantised_agreement']:.4f}",
            f"max |fixed - float| {head['head_quantised_max_error']:.5f}; ezkl witnesses equal"
            f" {head['head_ezkl_exact']:.3f} of {head['head_ezkl_checked']}",
        ),
        (
            "upscale x2 PSNR dB (held-out)",
            f"{upscale['upscale_psnr_db']:.2f}",
            f"bicubic x2 {upscale['upscale_psnr_db_bicubic']:.2f}",
        ),
        (
            "upscale images/s CPU, 32 -> 64",
            f"{upscale['upscale_images_per_s_cpu']:.0f}",
            f"bicubic x2: {upscale['upscale_images_per_s_cpu_bicubic']:.0f}",
        ),
    ]
    click.echo(f"{'figure':<42}{'proofmint':>12}   baseline")
    click.echo("-" * 100)
    for name, value, baseline in rows:
        click.echo(f"{name:<42}{value:>12}   {baseline}")
    click.echo(
        "targets: zero-shot >= 0.90, attribute accuracy >= 0.80, head decision accuracy >= 0.95 and above the"
        " cosine, proven vs float >= 0.995, upscale PSNR above bicubic;"
        f" grids: {out / 'generated-grid.png'}, {out / 'upscale-grid.png'}"
    )
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
        **head,
        "upscale_psnr_db": round(upscale["upscale_psnr_db"], 3),
        "upscale_psnr_db_bicubic": round(upscale["upscale_psnr_db_bicubic"], 3),
        "upscale_images_per_s_cpu": round(upscale["upscale_images_per_s_cpu"], 1),
        "upscale_images_per_s_cpu_bicubic": round(upscale["upscale_images_per_s_cpu_bicubic"], 1),
        "upscale_held_out_images": upscale_images,
    }
    click.echo(json.dumps(figures, sort_keys=True))


if __name__ == "__main__":
    main()
