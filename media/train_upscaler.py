"""Trains the tiny x2 upscaler: `python -m media.train_upscaler --out models/tiny-upscaler`.

Pairs come from the procedural dataset (`media.dataset`): the ground truth is a composition
rendered at 64x64, the input its 2x2 box average (PIL's `Image.reduce(2)`) at 32x32. A render
at 32 is not the input: `render` draws a seed's layout afresh at each side (the side is part of
its random seed), so `render(c, seed, 32)` and `render(c, seed, 64)` are two different scenes.
Training pairs come from the train split's stream, every figure from the test split's
(compositions training never sees).

The loss is L1 on the unclamped output (AdamW, linear warm-up then cosine). Reproducible from
`--seed` (initialisation, and batch `k` is examples `k * batch ...` of the train stream); a
checkpoint in `--work` at every evaluation lets a rerun resume after a crash, to the same weights
an uninterrupted run writes. Evaluation: PSNR of the model and of bicubic on held-out pairs.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import click
import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from numpy.typing import NDArray
from PIL import Image

from media.cards import DATA
from media.dataset import Split, example
from media.training import load_checkpoint, save_checkpoint, warmup_cosine
from media.upscale import SCALE, TinyUpscalePipeline, bicubic, build_upscaler, to_pixels, to_uint8


@dataclass(frozen=True)
class UpscaleTraining:
    steps: int = 4_500
    batch: int = 32
    lr: float = 2e-3
    warmup: int = 100
    channels: int = 32
    blocks: int = 4
    seed: int = 7
    eval_every: int = 500
    eval_images: int = 128
    final_images: int = 512


#: Settings that only change how the model is evaluated, never its weights: a run may change
#: them and still resume from a checkpoint.
EVAL_ONLY = frozenset({"eval_every", "eval_images", "final_images"})
#: Seeds of the held-out (test split) streams: the running evaluation, the final figures.
EVAL_SEED = 50_000
FINAL_SEED = 50_001
#: Side of the ground truth; the input's is half of it.
HIGH_SIDE = 64


@dataclass(frozen=True)
class Pair:
    """A low-resolution input, the ground truth twice its side, and the caption of its composition."""

    low: Image.Image
    high: Image.Image
    caption: str


def pairs(split: Split, seed: int, count: int, start: int = 0) -> list[Pair]:
    """Pairs `start ... start + count - 1` of the stream (split, seed): example `i` rendered at
    64x64 and its 2x2 box average."""
    result = []
    for index in range(start, start + count):
        drawn = example(split, seed, index, side=HIGH_SIDE)
        result.append(Pair(drawn.image.reduce(SCALE), drawn.image, drawn.caption))
    return result


def psnr(outputs: Sequence[NDArray[np.uint8]], truths: Sequence[NDArray[np.uint8]]) -> float:
    """PSNR in dB (peak 255) of the mean squared error over every pixel of every image."""
    errors = [np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2) for a, b in zip(outputs, truths, strict=True)]
    mse = float(np.mean(errors))
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


@dataclass(frozen=True)
class Figures:
    """Held-out PSNR of the model's output and of bicubic (both rounded to uint8) on `images` pairs."""

    psnr_db: float
    psnr_db_bicubic: float
    images: int

    @property
    def gain_db(self) -> float:
        return self.psnr_db - self.psnr_db_bicubic


def evaluate(pipe: TinyUpscalePipeline, held: Sequence[Pair]) -> Figures:
    """The pipeline's PSNR and bicubic's on the pairs."""
    truths = [np.asarray(p.high, dtype=np.uint8) for p in held]
    made = [np.asarray(image, dtype=np.uint8) for image in pipe([p.low for p in held]).images]
    with torch.no_grad():
        baseline = list(to_uint8(bicubic(to_pixels([p.low for p in held]))))
    return Figures(psnr(made, truths), psnr(baseline, truths), len(held))


def images_per_second(pipe: TinyUpscalePipeline, images: Sequence[Image.Image], rounds: int = 2) -> float:
    """The pipeline's throughput on this CPU: one call per round with all the images, after a
    warm-up call; the best round."""
    pipe(list(images[:8]))
    best = math.inf
    for _ in range(rounds):
        started = time.perf_counter()
        pipe(list(images))
        best = min(best, time.perf_counter() - started)
    return len(images) / best


def train(out: Path, work: Path, config: UpscaleTraining) -> dict[str, Any]:
    """Trains (or resumes) the upscaler in `work`, then writes the diffusers folder `out` with its
    model card and metrics; the final figures."""
    work.mkdir(parents=True, exist_ok=True)
    model = build_upscaler(config.channels, config.blocks, seed=config.seed)
    optimiser = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=0.0)
    identity = {"config": asdict(config), "shape": dict(model.config), "data": f"pairs(train, side {HIGH_SIDE})"}
    history: list[dict[str, float]] = []
    step = 0
    state = load_checkpoint(work, identity, ignore=EVAL_ONLY)
    if state is not None:
        model.load_state_dict(state["model"])
        optimiser.load_state_dict(state["optimiser"])
        step, history = int(state["step"]), list(state["history"])
        click.echo(f"resuming at step {step}", err=True)
    pipe = TinyUpscalePipeline(upscaler=model)
    held = pairs("test", EVAL_SEED, config.eval_images)
    started, first = time.monotonic(), step
    while step < config.steps:
        model.train()
        for group in optimiser.param_groups:
            group["lr"] = warmup_cosine(step, lr=config.lr, warmup=config.warmup, steps=config.steps, floor=0.01)
        batch = pairs("train", config.seed, config.batch, start=step * config.batch)
        low, high = to_pixels([p.low for p in batch]), to_pixels([p.high for p in batch])
        loss = F.l1_loss(model.unclamped(low), high)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        optimiser.step()
        step += 1
        if step % 50 == 0:
            rate = (step - first) / max(1e-9, time.monotonic() - started)
            click.echo(f"step {step}/{config.steps} loss {loss.item():.5f} ({rate:.2f} steps/s)", err=True)
        if step % config.eval_every == 0 or step == config.steps:
            figures = evaluate(pipe, held)
            history.append(
                {
                    "step": step,
                    "loss": float(loss.item()),
                    "psnr_db": figures.psnr_db,
                    "psnr_db_bicubic": figures.psnr_db_bicubic,
                }
            )
            click.echo(
                f"step {step}: held-out PSNR {figures.psnr_db:.2f} dB (bicubic {figures.psnr_db_bicubic:.2f})",
                err=True,
            )
            save_checkpoint(
                work,
                {
                    **identity,
                    "model": model.state_dict(),
                    "optimiser": optimiser.state_dict(),
                    "step": step,
                    "history": history,
                },
            )
    return finish(pipe, out, config, history)


def finish(
    pipe: TinyUpscalePipeline, out: Path, config: UpscaleTraining, history: list[dict[str, float]]
) -> dict[str, Any]:
    """The final held-out figures and throughput, then the diffusers folder, its card and metrics."""
    click.echo(f"final evaluation: {config.final_images} held-out pairs", err=True)
    pipe.upscaler.eval()
    held = pairs("test", FINAL_SEED, config.final_images)
    figures = evaluate(pipe, held)
    speed = images_per_second(pipe, [p.low for p in held])
    pipe.save_pretrained(str(out))
    parameters = sum(p.numel() for p in pipe.upscaler.parameters())
    metrics: dict[str, Any] = {
        "psnr_db": round(figures.psnr_db, 4),
        "psnr_db_bicubic": round(figures.psnr_db_bicubic, 4),
        "psnr_gain_db": round(figures.gain_db, 4),
        "held_out_images": figures.images,
        "images_per_s_cpu": round(speed, 1),
        "threads": torch.get_num_threads(),
        "parameters": parameters,
        "final_loss": round(history[-1]["loss"], 6) if history else None,
    }
    write_card(out, config, metrics, history)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    return metrics


def write_card(out: Path, config: UpscaleTraining, metrics: dict[str, Any], history: list[dict[str, float]]) -> None:
    """The folder's README.md: use, architecture, data, training, held-out figures, limits."""
    weights = sum(p.stat().st_size for p in out.rglob("*.safetensors"))
    command = f"python -m media.train_upscaler --out {out} --steps {config.steps} --seed {config.seed}"
    lines = [
        "---",
        "license: mit",
        "library_name: diffusers",
        "---",
        "# proofmint tiny upscaler (x2)",
        "",
        "The second, decoupled stage after the tiny text-to-image model: it doubles the side of an accepted base"
        " image (32x32 -> 64x64 RGB). A small residual conv net predicts what bicubic upsampling misses. On CPU in"
        " float32 the same input gives the same output bytes across calls, processes and thread counts, so an"
        " auditor can re-run it to verify an asset (`media/upscale.py` states the guarantee and its limits).",
        "",
        "## Use",
        "",
        "```python",
        "from media.upscale import load_upscaler",
        "",
        'pipe = load_upscaler("models/tiny-upscaler")  # or TinyUpscalePipeline.from_pretrained(...)',
        "big = pipe(image).images[0]  # an RGB PIL image in, twice its side out",
        "```",
        "",
        "`DiffusionPipeline.from_pretrained` loads the folder too once `media.upscale` is imported.",
        "",
        "## Architecture",
        "",
        f"`media.upscale.TinyUpscaler(channels={config.channels}, blocks={config.blocks})`: conv 3x3 3 ->"
        f" {config.channels}, {config.blocks} residual blocks (conv 3x3, ReLU, conv 3x3, plus the input) and a"
        f" long skip at the input's resolution, conv 3x3 {config.channels} -> 12, PixelShuffle x2, added to"
        " bicubic x2 (torch's, a = -0.75) and clamped to [0, 1]. Fully convolutional: any side from 4 to 512 pixels"
        f" (trained at 32). {metrics['parameters']:,} parameters, {weights / 1e3:.0f} kB of float32 weights"
        " (`upscaler/diffusion_pytorch_model.safetensors`). The last conv starts at zero, so training starts from"
        " bicubic.",
        "",
        "## Data",
        "",
        DATA,
        "",
        f"Pairs: the ground truth is an example rendered at {HIGH_SIDE}x{HIGH_SIDE} (`media.dataset.example(...,"
        f" side={HIGH_SIDE})`), the input its 2x2 box average (`Image.reduce(2)`). The dataset draws a seed's layout"
        " afresh at each side, so a render at 32 is another scene, not the 64 one at half size. Training reads the"
        f" train split's stream for seed {config.seed}, a fresh batch every step ({config.steps * config.batch:,}"
        " images drawn once each).",
        "",
        "## Training",
        "",
        f"Rebuild with `make train-upscaler` (`{command}`; CPU, one torch thread, about 15 minutes on a busy"
        " two-core machine; resumes from `.cache/train/tiny-upscaler`). L1 loss on the unclamped output, AdamW,"
        " linear warm-up then cosine to 1% of the learning rate; the initialisation and batch order follow from the"
        " seed.",
        "",
        *(f"- {k}: {v}" for k, v in asdict(config).items()),
        "",
        "## Figures (held-out split)",
        "",
        f"{metrics['held_out_images']} held-out pairs (`media.train_upscaler.pairs('test', {FINAL_SEED}, ...)`),"
        " outputs rounded to uint8 as the pipeline returns them; PSNR of the mean squared error over all pixels"
        " (peak 255). The baseline is bicubic x2 (the model's own base, rounded the same way).",
        "",
        "| figure | model | bicubic |",
        "| --- | --- | --- |",
        f"| PSNR (dB) | {metrics['psnr_db']:.2f} | {metrics['psnr_db_bicubic']:.2f} |",
        f"| images/s on CPU (torch threads: {metrics['threads']}; one call of {metrics['held_out_images']}) |"
        f" {metrics['images_per_s_cpu']:.0f} | |",
        "",
        "`make bench-models` measures the same on other held-out pairs and saves a picture grid.",
        "",
        "| step | loss | held-out PSNR (dB) | bicubic (dB) |",
        "| --- | --- | --- | --- |",
        *(f"| {int(h['step'])} | {h['loss']:.5f} | {h['psnr_db']:.2f} | {h['psnr_db_bicubic']:.2f} |" for h in history),
        "",
        "## Limits",
        "",
        "- Trained on the procedural grammar only (flat shapes over plain, striped or dotted backgrounds); on other"
        " images (photographs, gradients, text) it is not measured and may sharpen what should stay soft.",
        "- Its input is assumed to be a box-downscaled image. The tiny text-to-image model's outputs are not box"
        " averages of a 64x64 image, so its gain over bicubic there is not measured (there is no ground truth).",
        "- x2 only; it adds no detail the input does not imply (it cannot draw a shape the 32x32 image lost).",
        "- Reproducible bytes on one torch version and CPU instruction set, in float32 on CPU only (see"
        " `media/upscale.py`).",
        "",
    ]
    (out / "README.md").write_text("\n".join(lines))


@click.command()
@click.option("--out", type=click.Path(path_type=Path), default=Path("models/tiny-upscaler"), show_default=True)
@click.option("--work", type=click.Path(path_type=Path), default=Path(".cache/train/tiny-upscaler"), show_default=True)
@click.option("--steps", type=click.IntRange(1), default=UpscaleTraining.steps, show_default=True)
@click.option("--batch", type=click.IntRange(1), default=UpscaleTraining.batch, show_default=True)
@click.option("--lr", type=click.FloatRange(0.0, 1.0, min_open=True), default=UpscaleTraining.lr, show_default=True)
@click.option("--channels", type=click.IntRange(1), default=UpscaleTraining.channels, show_default=True)
@click.option("--blocks", type=click.IntRange(0), default=UpscaleTraining.blocks, show_default=True)
@click.option("--seed", type=int, default=UpscaleTraining.seed, show_default=True)
@click.option("--eval-every", type=click.IntRange(1), default=UpscaleTraining.eval_every, show_default=True)
@click.option("--final-images", type=click.IntRange(1), default=UpscaleTraining.final_images, show_default=True)
@click.option(
    "--threads",
    type=click.IntRange(1),
    default=1,
    show_default=True,
    help="torch CPU threads: one is the shipped run's (the same bytes need the same count), and the fastest on a"
    " busy two-core machine.",
)
def main(
    out: Path,
    work: Path,
    steps: int,
    batch: int,
    lr: float,
    channels: int,
    blocks: int,
    seed: int,
    eval_every: int,
    final_images: int,
    threads: int,
) -> None:
    """Train the tiny x2 upscaler on procedural pairs; write a diffusers folder with its model card.
    A finished run in `--work` is not trained again: its weights are evaluated and written."""
    torch.set_num_threads(threads)
    config = replace(
        UpscaleTraining(),
        steps=steps,
        batch=batch,
        lr=lr,
        channels=channels,
        blocks=blocks,
        seed=seed,
        eval_every=eval_every,
        final_images=final_images,
    )
    click.echo(json.dumps(train(out, work, config)))


if __name__ == "__main__":
    main()
