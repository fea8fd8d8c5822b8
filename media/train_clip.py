"""Trains the tiny CLIP on the procedural dataset: `python -m media.train_clip --out models/tiny-clip`.

Reproducible: the data stream, the initialisation and the batch order follow from `--seed`.
Nothing is lost on a crash: a checkpoint (model, optimiser, step) is written to `--work` at every
evaluation and a rerun with the same arguments resumes from it.

Contrastive loss as in CLIP, with two changes for a small caption grammar: a batch often holds
two images of the same composition, so each image's target is spread over every text with its
caption; and every image brings a hard negative, its caption with one attribute changed.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import cast

import click
import torch
import torch.nn.functional as F  # noqa: N812

from media.cards import write_card
from media.clip import MEAN, STD, LoadedClip, TinyClipShape, build, save, zero_shot_top1
from media.dataset import _ALLOWED, ATTRIBUTES, Composition, Split, example, examples
from media.tokenizer import build_tokenizer, save_tokenizer
from media.training import load_checkpoint, pixels, save_checkpoint, warmup_cosine


@dataclass(frozen=True)
class ClipTraining:
    steps: int = 1_500
    batch: int = 192
    lr: float = 1e-3
    weight_decay: float = 0.05
    warmup: int = 150
    seed: int = 7
    eval_every: int = 250
    eval_images: int = 512


def to_tensor(images: list[object]) -> torch.Tensor:
    """PIL images to the normalised (B, 3, H, W) float batch the preprocess also produces."""
    tensor = pixels(images)
    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1)
    return (tensor - mean) / std


def one_attribute_changed(c: Composition, rng: random.Random) -> Composition:
    """A hard negative: the same composition with one attribute set to another value."""
    name = rng.choice(ATTRIBUTES)
    value = rng.choice([v for v in _ALLOWED[name] if v != getattr(c, name)])
    attributes = asdict(c)
    attributes[name] = value
    return Composition(**attributes)


def clip_loss(model: torch.nn.Module, images: torch.Tensor, texts: torch.Tensor, captions: list[str]) -> torch.Tensor:
    """Symmetric contrastive loss; `texts` holds the batch's captions, then its hard negatives."""
    count = images.shape[0]
    image_features = F.normalize(model.encode_image(images), dim=-1)  # type: ignore[operator]
    text_features = F.normalize(model.encode_text(texts), dim=-1)  # type: ignore[operator]
    scale = cast(torch.Tensor, model.logit_scale).exp().clamp(max=100)
    logits = scale * image_features @ text_features.T  # (B, B + negatives)
    same = torch.tensor([[a == b for b in captions] for a in captions], dtype=torch.float32)
    targets = same / same.sum(dim=1, keepdim=True)
    padded = torch.cat([targets, torch.zeros(count, logits.shape[1] - count)], dim=1)
    image_loss = torch.sum(-padded * F.log_softmax(logits, dim=1), dim=1).mean()
    text_loss = torch.sum(-targets * F.log_softmax(logits[:, :count].T, dim=1), dim=1).mean()
    return (image_loss + text_loss) / 2


@dataclass
class Progress:
    step: int
    history: list[dict[str, float]]


def evaluate(model: torch.nn.Module, tokenizer: object, split: Split, count: int) -> float:
    model.eval()
    held = list(examples(split, 10_000, count))
    clip = LoadedClip(model, _preprocess, tokenizer, torch.device("cpu"))
    accuracy = zero_shot_top1(clip, [e.image for e in held], [e.caption for e in held])
    model.train()
    return accuracy


def _preprocess(image: object) -> torch.Tensor:
    return to_tensor([image])[0]


def train(out: Path, work: Path, shape: TinyClipShape, config: ClipTraining) -> dict[str, float]:
    """Trains, writes the model folder under `out` and returns its metrics."""
    from open_clip.tokenizer import HFTokenizer

    out.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    tokenizer_object = build_tokenizer()
    if tokenizer_object.get_vocab_size() > shape.vocab_size:
        raise click.ClickException(f"vocabulary of {tokenizer_object.get_vocab_size()} > {shape.vocab_size}")
    save_tokenizer(out, tokenizer_object, shape.context_length)
    tokenizer = HFTokenizer(str(out), context_length=shape.context_length)

    model = build(shape, config.seed)
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "embedding" not in n]
    other = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "embedding" not in n)]
    optimiser = torch.optim.AdamW(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": other, "weight_decay": 0.0}],
        lr=config.lr,
        betas=(0.9, 0.98),
    )
    identity = {"config": asdict(config), "shape": asdict(shape)}
    progress = Progress(0, [])
    state = load_checkpoint(work, identity)
    if state is not None:
        model.load_state_dict(state["model"])
        optimiser.load_state_dict(state["optimiser"])
        progress = Progress(state["step"], state["history"])
        click.echo(f"resuming at step {progress.step}", err=True)
    model.train()
    started = time.monotonic()
    while progress.step < config.steps:
        step = progress.step
        for group in optimiser.param_groups:
            group["lr"] = warmup_cosine(step, lr=config.lr, warmup=config.warmup, steps=config.steps)
        batch = [example("train", config.seed, step * config.batch + i, shape.image_size) for i in range(config.batch)]
        rng = random.Random(f"negatives|{config.seed}|{step}")
        captions = [e.caption for e in batch]
        negatives = [one_attribute_changed(e.composition, rng).caption for e in batch]
        images = to_tensor([e.image for e in batch])
        texts = tokenizer(captions + negatives)
        loss = clip_loss(model, images, texts, captions)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimiser.step()
        progress.step += 1
        if progress.step % 25 == 0:
            rate = progress.step / max(1e-9, time.monotonic() - started)
            click.echo(f"step {progress.step}/{config.steps} loss {loss.item():.4f} ({rate:.2f} steps/s)", err=True)
        if progress.step % config.eval_every == 0 or progress.step == config.steps:
            accuracy = evaluate(model, tokenizer, "test", config.eval_images)
            progress.history.append({"step": progress.step, "loss": float(loss.item()), "zero_shot_top1": accuracy})
            click.echo(f"step {progress.step}: held-out zero-shot top-1 {accuracy:.3f}", err=True)
            save_checkpoint(
                work,
                {
                    **identity,
                    "model": model.state_dict(),
                    "optimiser": optimiser.state_dict(),
                    "step": progress.step,
                    "history": progress.history,
                },
            )
    model.eval()
    save(model, shape, out)
    metrics = {"zero_shot_top1": progress.history[-1]["zero_shot_top1"], "final_loss": progress.history[-1]["loss"]}
    write_card(
        out,
        title="proofmint tiny CLIP",
        summary=(
            "An open_clip `CLIP` (ViT image tower, 32x32 input, patch 4; causal text transformer over a word-level"
            f" vocabulary) with {shape.embed_dim}-d embeddings: the input of proofmint's zk curation head."
        ),
        usage=(
            "import open_clip\n\n"
            'model, _, preprocess = open_clip.create_model_and_transforms("local-dir:models/tiny-clip")\n'
            'tokenizer = open_clip.get_tokenizer("local-dir:models/tiny-clip")'
        ),
        command=f"python -m media.train_clip --out {out} --steps {config.steps} --seed {config.seed}",
        parameters=sum(p.numel() for p in model.parameters()),
        training={"shape": asdict(shape), **asdict(config)},
        history=progress.history,
        metrics={**metrics, "held_out_images": config.eval_images},
    )
    return metrics


@click.command()
@click.option("--out", type=click.Path(path_type=Path), default=Path("models/tiny-clip"), show_default=True)
@click.option("--work", type=click.Path(path_type=Path), default=Path(".cache/train/tiny-clip"), show_default=True)
@click.option("--steps", type=click.IntRange(1), default=ClipTraining.steps, show_default=True)
@click.option("--batch", type=click.IntRange(2), default=ClipTraining.batch, show_default=True)
@click.option("--lr", type=click.FloatRange(0, min_open=True), default=ClipTraining.lr, show_default=True)
@click.option("--seed", type=int, default=ClipTraining.seed, show_default=True)
@click.option("--eval-every", type=click.IntRange(1), default=ClipTraining.eval_every, show_default=True)
@click.option("--threads", type=click.IntRange(1), default=None, help="torch CPU threads (default: torch's choice).")
def main(
    out: Path, work: Path, steps: int, batch: int, lr: float, seed: int, eval_every: int, threads: int | None
) -> None:
    """Train the tiny CLIP and write it as an open_clip local-dir model."""
    if threads:
        torch.set_num_threads(threads)
    config = replace(ClipTraining(), steps=steps, batch=batch, lr=lr, seed=seed, eval_every=eval_every)
    metrics = train(out, work, TinyClipShape(), config)
    click.echo(json.dumps(metrics))


if __name__ == "__main__":
    main()
