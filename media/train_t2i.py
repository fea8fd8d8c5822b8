"""Trains the tiny text-to-image pipeline: `python -m media.train_t2i --clip models/tiny-clip --out models/tiny-t2i`.

The text encoder is the tiny CLIP's text tower, frozen; only the UNet learns (v prediction,
cosine noise schedule rescaled to zero terminal SNR, 10% of captions dropped for classifier-free guidance, an
exponential moving average of the weights is what ships). Reproducible from `--seed`; a
checkpoint in `--work` at every evaluation lets a rerun resume after a crash. Evaluation
generates held-out prompts and scores them with the pixel judge (`media.judge`).
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Literal

import click
import torch
import torch.nn.functional as F  # noqa: N812

from media.cards import write_card
from media.dataset import example, examples
from media.judge import judge
from media.t2i import TinyClipTextEncoder, TinyText2ImagePipeline, build_scheduler, build_unet
from media.training import load_checkpoint, pixels, save_checkpoint, warmup_cosine


@dataclass(frozen=True)
class T2ITraining:
    steps: int = 4_000
    batch: int = 32
    lr: float = 1e-3
    warmup: int = 200
    ema_decay: float = 0.999
    drop_caption: float = 0.1
    seed: int = 11
    eval_every: int = 500
    eval_prompts: int = 64
    eval_steps: int = 25
    guidance: float = 1.5
    final_prompts: int = 256


#: Settings that only change how the model is evaluated, never its weights: a run may change
#: them and still resume from a checkpoint.
EVAL_ONLY = frozenset({"eval_every", "eval_prompts", "eval_steps", "guidance", "final_prompts"})


def attribute_accuracy(
    pipe: TinyText2ImagePipeline,
    config: T2ITraining,
    seed: int = 0,
    *,
    prompts: int | None = None,
    split: Literal["train", "test"] = "test",
    guidance: float | None = None,
    chunk: int = 64,
) -> float:
    """Share of prompts (held-out by default) whose image the judge reads as the prompt's colour
    and shape, at the configured guidance and step count."""
    held = list(examples(split, 20_000 + seed, prompts or config.eval_prompts))
    generator = torch.Generator().manual_seed(seed)
    hits = 0
    for start in range(0, len(held), chunk):
        part = held[start : start + chunk]
        images = pipe(
            [e.caption for e in part],
            num_inference_steps=config.eval_steps,
            guidance_scale=config.guidance if guidance is None else guidance,
            generator=generator,
        ).images
        hits += sum(judge(image).matches(e.composition) for image, e in zip(images, part, strict=True))
    return hits / len(held)


def train(clip: Path, out: Path, work: Path, config: T2ITraining) -> dict[str, float]:
    from transformers import AutoTokenizer

    work.mkdir(parents=True, exist_ok=True)
    tokenizer = AutoTokenizer.from_pretrained(str(clip))
    text_encoder = TinyClipTextEncoder.from_open_clip(clip).eval().requires_grad_(False)
    embed_dim = int(json.loads((clip / "open_clip_config.json").read_text())["model_cfg"]["embed_dim"])
    unet = build_unet(text_encoder.width, embed_dim, seed=config.seed)
    ema = copy.deepcopy(unet).requires_grad_(False)
    scheduler = build_scheduler()
    assert scheduler.config.prediction_type == "v_prediction", "the loss below trains v"
    optimiser = torch.optim.AdamW(unet.parameters(), lr=config.lr, weight_decay=0.01)
    progress: dict[str, object] = {"step": 0, "history": []}
    identity = {"config": asdict(config), "clip": str(clip), "scheduler": dict(scheduler.config)}
    state = load_checkpoint(work, identity, ignore=EVAL_ONLY)
    if state is not None:
        unet.load_state_dict(state["unet"])
        ema.load_state_dict(state["ema"])
        optimiser.load_state_dict(state["optimiser"])
        progress = {"step": state["step"], "history": state["history"]}
        click.echo(f"resuming at step {progress['step']}", err=True)
    history: list[dict[str, float]] = progress["history"]  # type: ignore[assignment]
    step: int = progress["step"]  # type: ignore[assignment]
    cache: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    def encode(captions: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        missing = sorted({c for c in captions if c not in cache})
        if missing:
            ids = tokenizer(missing, padding="max_length", max_length=tokenizer.model_max_length, truncation=True)
            with torch.no_grad():
                pooled, tokens = text_encoder(torch.tensor(ids["input_ids"]))
            for i, caption in enumerate(missing):
                cache[caption] = (pooled[i], tokens[i])
        return torch.stack([cache[c][0] for c in captions]), torch.stack([cache[c][1] for c in captions])

    unet.train()
    started, first = time.monotonic(), step
    while step < config.steps:
        for group in optimiser.param_groups:
            group["lr"] = warmup_cosine(step, lr=config.lr, warmup=config.warmup, steps=config.steps, floor=0.1)
        generator = torch.Generator().manual_seed(config.seed * 1_000_003 + step)
        batch = [example("train", config.seed, step * config.batch + i) for i in range(config.batch)]
        drop = torch.rand(config.batch, generator=generator) < config.drop_caption
        captions = ["" if d else e.caption for d, e in zip(drop.tolist(), batch, strict=True)]
        pooled, tokens = encode(captions)
        clean = pixels([e.image for e in batch]) * 2.0 - 1.0  # [-1, 1]
        noise = torch.randn(clean.shape, generator=generator)
        timesteps = torch.randint(0, scheduler.config.num_train_timesteps, (config.batch,), generator=generator)
        noisy = scheduler.add_noise(clean, noise, timesteps)
        predicted = unet(noisy, timesteps, encoder_hidden_states=tokens, class_labels=pooled).sample
        target = scheduler.get_velocity(clean, noise, timesteps)
        loss = F.mse_loss(predicted, target)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
        optimiser.step()
        with torch.no_grad():
            decay = min(config.ema_decay, (1 + step) / (10 + step))
            for target, source in zip(ema.parameters(), unet.parameters(), strict=True):
                target.lerp_(source, 1 - decay)
        step += 1
        if step % 50 == 0:
            rate = (step - first) / max(1e-9, time.monotonic() - started)
            click.echo(f"step {step}/{config.steps} loss {loss.item():.4f} ({rate:.2f} steps/s)", err=True)
        if step % config.eval_every == 0 or step == config.steps:
            pipe = TinyText2ImagePipeline(unet=ema, scheduler=scheduler, text_encoder=text_encoder, tokenizer=tokenizer)
            pipe.set_progress_bar_config(disable=True)
            accuracy = attribute_accuracy(pipe, config)
            history.append(
                {"step": step, "loss": float(loss.item()), "attribute_accuracy": accuracy, "guidance": config.guidance}
            )
            click.echo(f"step {step}: held-out attribute accuracy {accuracy:.3f}", err=True)
            save_checkpoint(
                work,
                {
                    **identity,
                    "unet": unet.state_dict(),
                    "ema": ema.state_dict(),
                    "optimiser": optimiser.state_dict(),
                    "step": step,
                    "history": history,
                },
            )
    pipe = TinyText2ImagePipeline(unet=ema, scheduler=scheduler, text_encoder=text_encoder, tokenizer=tokenizer)
    return finish(pipe, clip, out, config, history)


def finish(
    pipe: TinyText2ImagePipeline, clip: Path, out: Path, config: T2ITraining, history: list[dict[str, float]]
) -> dict[str, float]:
    """The final evaluation (`final_prompts` held-out prompts at the configured guidance), then
    the diffusers folder and its model card."""
    pipe.set_progress_bar_config(disable=True)
    click.echo(f"final evaluation: {config.final_prompts} held-out prompts at guidance {config.guidance}", err=True)
    final = attribute_accuracy(pipe, config, seed=1, prompts=config.final_prompts)
    pipe.save_pretrained(str(out))
    metrics = {"attribute_accuracy": final, "final_loss": history[-1]["loss"] if history else float("nan")}
    write_card(
        out,
        title="proofmint tiny text-to-image",
        summary=(
            "A diffusers pipeline in pixel space (32x32 RGB): a `UNet2DConditionModel` conditioned on the text tower"
            " of proofmint's tiny CLIP (per-token features by cross-attention, the pooled embedding added to the"
            " timestep embedding), v-prediction on a zero-terminal-SNR cosine schedule, DDIM sampling with"
            " classifier-free guidance. The guidance in the metrics below is the pipeline's default; it was chosen on"
            " training-split prompts (stronger guidance over-saturates this small model: speckle and wrong colours)."
        ),
        usage=(
            "import torch\n\nfrom media.t2i import TinyText2ImagePipeline\n\n"
            'pipe = TinyText2ImagePipeline.from_pretrained("models/tiny-t2i")\n'
            'image = pipe("a large red circle on the left over a plain black background",\n'
            "             generator=torch.Generator().manual_seed(1)).images[0]"
        ),
        command=f"python -m media.train_t2i --clip {clip} --out {out} --steps {config.steps} --seed {config.seed}",
        parameters=sum(p.numel() for p in pipe.unet.parameters()),
        training=asdict(config),
        history=history,
        metrics={
            **metrics,
            "judged": "colour and shape, by media.judge",
            "held_out_prompts": config.final_prompts,
            "guidance": config.guidance,
            "steps": config.eval_steps,
        },
    )
    return metrics


@click.command()
@click.option("--clip", type=click.Path(path_type=Path, exists=True, file_okay=False), default=Path("models/tiny-clip"))
@click.option("--out", type=click.Path(path_type=Path), default=Path("models/tiny-t2i"), show_default=True)
@click.option("--work", type=click.Path(path_type=Path), default=Path(".cache/train/tiny-t2i"), show_default=True)
@click.option("--steps", type=click.IntRange(1), default=T2ITraining.steps, show_default=True)
@click.option("--batch", type=click.IntRange(1), default=T2ITraining.batch, show_default=True)
@click.option("--seed", type=int, default=T2ITraining.seed, show_default=True)
@click.option("--eval-every", type=click.IntRange(1), default=T2ITraining.eval_every, show_default=True)
@click.option(
    "--guidance",
    type=click.FloatRange(0.0, 50.0),
    default=T2ITraining.guidance,
    show_default=True,
    help="Classifier-free guidance for evaluation (chosen on training-split prompts).",
)
@click.option("--threads", type=click.IntRange(1), default=None, help="torch CPU threads (default: torch's choice).")
def main(
    clip: Path,
    out: Path,
    work: Path,
    steps: int,
    batch: int,
    seed: int,
    eval_every: int,
    guidance: float,
    threads: int | None,
) -> None:
    """Train the tiny text-to-image UNet on the tiny CLIP's text tower; write a diffusers folder.
    A finished run in `--work` is not trained again: its weights are evaluated and written."""
    if threads:
        torch.set_num_threads(threads)
    config = replace(T2ITraining(), steps=steps, batch=batch, seed=seed, eval_every=eval_every, guidance=guidance)
    click.echo(json.dumps(train(clip, out, work, config)))


if __name__ == "__main__":
    main()
