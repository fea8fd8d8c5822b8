"""The curation head's trainer: the head whose score is the curator's decision, trained on the
procedural dataset. `python -m media.head_training --out models/curation-head` (or
`make train-head`; `--reviews FILE.jsonl` adds human review decisions).

What the head reads: one row, the image's CLIP embedding followed by the prompt's CLIP text
embedding, each L2-normalised as `media.clip.LoadedClip` makes them (2 x 32 values for the tiny
CLIP). What it gives: one score, a logit of "the image shows the prompt". Its decision: accept
at or above `accept_at`, reject below `review_at`, a person decides in between (`Bands`).

The head is `zkml.curation_head.CurationHead` (Linear -> ReLU -> Linear, `HeadShape(embed_dim=64,
hidden=8)`): this module builds a module of the same layout and state_dict keys rather than
importing it, because media and zkml import nothing of each other (docs/architecture.md, the
layering rule); the tests load the shipped weights into zkml's class and prove them with EZKL.

A run, step by step (`train`):
1. Embed. The dataset's training compositions are split again by a salted caption hash: one in
   `VALIDATION_ONE_IN` is the validation pool, the rest the training pool. Images are rendered
   from each pool (`head_examples`) and embedded with the CLIP, each caption once.
2. Pair. Each training image gives a matched pair (its own caption, label accept), one hard
   negative per image (its caption with one attribute changed, label reject) and one random
   mismatch (label reject); every prompt of a training pair is a training-pool caption. Review
   decisions (`read_reviews`) join the training pairs with weight `review_weight`.
3. Train. Binary cross-entropy on the logit, AdamW with a cosine schedule, mini-batches in an
   order drawn from the seed: the same seed and data give the same weights (on one CPU thread;
   the command line runs on one).
4. Choose the bands on the validation pairs: false accepts at most `error_budget` of the reject
   pairs, false rejects at most `error_budget` of the accept pairs (`Bands.choose`).
5. Measure on the held-out split (`held_out_pairs`, the figures `bench/models.py` reports too)
   against the pixel judge, beside the curator's cosine bands, with the score EZKL would prove
   (`fixed_point_scores`) beside the float one.
6. Write the folder: weights (safetensors), `head.json` (shape, input layout, bands in float and
   fixed point, the CLIP's weights digest, the recipe), `metrics.json` and the model card. No
   clock time is written, so a rerun with the same inputs writes the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import click
import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from media.cards import DATA
from media.dataset import (
    _ALLOWED,
    ATTRIBUTES,
    Composition,
    all_compositions,
    compositions,
    examples,
    render,
)
from media.judge import Judgement, judge

WEIGHTS_FILE = "curation_head.safetensors"
CONFIG_FILE = "head.json"
METRICS_FILE = "metrics.json"

#: One training composition in this many (by a salted caption hash) is the validation pool.
VALIDATION_ONE_IN = 10
#: The stream of held-out images every head figure is measured on (bench/models.py too).
HELD_OUT_SEED = 21_021
#: The attributes `media.judge` reads from pixels: the held-out truth is about these.
JUDGED: tuple[str, ...] = ("colour", "shape", "count")
#: The curator's cosine bands today: `agents.models.curator.CurationPolicy` defaults (accept_at,
#: review_at), the baseline beside the head. Media cannot import agents; a test holds them equal.
COSINE_BANDS = (0.85, 0.6)
#: The fixed-point scale ezkl proves the head at: the pinned input scale (`zkml.settings`), which
#: calibration also gives the parameters (`zkml.pipeline` calibrates with `scales=[13]`).
EZKL_SCALE = 13


class HeadTrainingError(ValueError):
    """Input the trainer cannot use (a review file line, a head folder); the message names it."""


@dataclass(frozen=True)
class HeadTraining:
    """The recipe. `hard_negatives` are the attributes a hard negative may change. Position is
    left out: the tiny CLIP barely tells a position swap from the true caption (median cosine
    0.936 vs 0.953 on held-out images: it ranks them, but no threshold on one pair separates
    them), so swaps labelled "reject" make the head doubt true pairs, and the false-accept budget
    then lifts `accept_at` over most of them (trained with swaps: held-out accuracy 0.694, review
    rate 0.304; without: 0.995 and 0.0003). The card reports how often it rejects a swap."""

    seed: int = 0
    images: int = 12_000
    validation_images: int = 2_000
    held_out_images: int = 1_024
    hidden: int = 8
    epochs: int = 40
    batch: int = 256
    lr: float = 3e-3
    weight_decay: float = 1e-4
    hard_negatives: tuple[str, ...] = ("count", "size", "colour", "shape", "background", "pattern")
    review_weight: float = 8.0
    """What one human review decision weighs in the loss, against 1 for a procedural pair: a
    person's label on a real asset says more than one more rendered example."""
    error_budget: float = 0.005
    """The largest share of false accepts (of reject pairs) and of false rejects (of accept
    pairs) the bands allow on the validation pairs."""

    def __post_init__(self) -> None:
        unknown = set(self.hard_negatives) - set(ATTRIBUTES)
        if unknown or not self.hard_negatives:
            raise HeadTrainingError(f"hard_negatives are some of {list(ATTRIBUTES)}, got {list(self.hard_negatives)}")
        if not 0 < self.error_budget < 0.5:
            raise HeadTrainingError(f"error_budget is in (0, 0.5), got {self.error_budget}")


# ------------------------------------------------------------------ the head


class Head(nn.Module):
    """`zkml.curation_head.CurationHead`'s layout: row -> Linear -> ReLU -> Linear -> score."""

    def __init__(self, embed_dim: int, hidden: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(embed_dim, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        score: torch.Tensor = self.net(rows)
        return score.reshape(-1)


State = dict[str, torch.Tensor]


def float_scores(state: State, rows: torch.Tensor) -> NDArray[np.float64]:
    """The head's float scores (float32 arithmetic, as torch and the curator compute them)."""
    weight = state["net.0.weight"]
    head = Head(weight.shape[1], weight.shape[0])
    head.load_state_dict(state)
    with torch.no_grad():
        scores: NDArray[np.float64] = head(rows.float()).double().numpy()
    return scores


def _round_away(values: NDArray[np.float64]) -> NDArray[np.int64]:
    """Round half away from zero, exactly (Rust's `f64::round`, which ezkl quantises with)."""
    whole = np.trunc(values)
    up = np.abs(values - whole) >= 0.5
    rounded: NDArray[np.int64] = (whole + np.sign(values) * up).astype(np.int64)
    return rounded


def _rescale(values: NDArray[np.int64], bits: int) -> NDArray[np.int64]:
    """Integer division by 2^bits rounded half away from zero (ezkl's rescale of a product)."""
    half, magnitude = 1 << (bits - 1), np.abs(values)
    quotient: NDArray[np.int64] = np.sign(values) * ((magnitude + half) >> bits)
    return quotient


def fixed_point_scores(
    state: State, rows: torch.Tensor | NDArray[np.float64], scale: int = EZKL_SCALE
) -> NDArray[np.int64]:
    """The scores EZKL proves, as integers at 2^-scale: ezkl 23's arithmetic for this head under
    the project's pinned settings, reproduced exactly (not approximated):
    - each input value is round(x * 2^scale), half away from zero (`ezkl.float_to_felt`, what
      `zkml.pipeline.input_felts` commits to);
    - each weight is round(w * 2^scale) and each bias round(b * 2^scale) * 2^scale (a constant
      quantised at the parameter scale, then brought to the product's scale);
    - a Linear sums the integer products at scale 2 * scale, then divides by 2^scale, rounding
      half away from zero, back to the input scale (scale rebase multiplier 1); ReLU keeps the
      positive part.
    tests/media/test_head_training.py checks these against real ezkl witnesses."""
    values = rows.double().numpy() if isinstance(rows, torch.Tensor) else np.asarray(rows, dtype=np.float64)
    unit = float(1 << scale)

    def linear(inputs: NDArray[np.int64], layer: str) -> NDArray[np.int64]:
        weight = _round_away(state[f"{layer}.weight"].double().numpy() * unit)
        bias = _round_away(state[f"{layer}.bias"].double().numpy() * unit) << scale
        return _rescale(inputs @ weight.T + bias, scale)

    hidden = np.maximum(linear(_round_away(values * unit), "net.0"), 0)
    return linear(hidden, "net.2").reshape(-1)


def rescale_slack(state: State, scale: int = EZKL_SCALE) -> int:
    """How far (in units of 2^-scale) a prover may move this head's proven score from
    `fixed_point_scores`: ezkl 23 constrains each rescale's quotient q of x / d only by
    |x - q * d| < d (`circuit::ops::layouts::div`), so q may be the quotient rounded either way.
    Each hidden unit may then be off by one unit (ReLU does not widen that), which moves the score
    by at most |w| (w the unit's quantised output weight) before the final rescale, which adds
    one more: sum |w| / 2^scale, rounded up, plus one. Only a score within this of a band edge can
    be proven in the neighbouring band (SECURITY.md)."""
    weights = np.abs(_round_away(state["net.2.weight"].double().numpy() * float(1 << scale)))
    return int(-(-int(weights.sum()) // (1 << scale))) + 1


# ------------------------------------------------------------------ bands and decisions

ACCEPT, REVIEW, REJECT = "accept", "review", "reject"


@dataclass(frozen=True)
class Bands:
    """Accept at or above `accept_at`, reject below `review_at`, a person decides in between."""

    accept_at: float
    review_at: float

    def __post_init__(self) -> None:
        if not self.review_at <= self.accept_at:
            raise HeadTrainingError(f"review_at {self.review_at} is above accept_at {self.accept_at}")

    def decide(self, scores: NDArray[np.float64]) -> NDArray[np.str_]:
        return np.where(scores >= self.accept_at, ACCEPT, np.where(scores < self.review_at, REJECT, REVIEW))

    def fixed(self, scale: int = EZKL_SCALE) -> tuple[int, int]:
        """(accept_at, review_at) as integers at 2^-scale: for an integer score q,
        q >= ceil(t * 2^scale) exactly when q / 2^scale >= t, so a contract comparing the proven
        score with these decides as `decide` does on the dequantised score."""
        return math.ceil(self.accept_at * (1 << scale)), math.ceil(self.review_at * (1 << scale))

    def decide_fixed(self, scores: NDArray[np.int64], scale: int = EZKL_SCALE) -> NDArray[np.str_]:
        accept_at, review_at = self.fixed(scale)
        return np.where(scores >= accept_at, ACCEPT, np.where(scores < review_at, REJECT, REVIEW))

    @classmethod
    def choose(cls, scores: NDArray[np.float64], labels: NDArray[np.bool_], budget: float) -> Bands:
        """Bands from labelled scores: false accepts at most `budget` of the reject pairs (accept_at
        above their (1 - budget) quantile) and false rejects at most `budget` of the accept pairs
        (review_at at or below their budget quantile), each rounded outwards to 0.01. Where the
        two quantiles cross (the classes overlap) the band lies between them the other way round,
        so the guarantees hold either way."""
        positives, negatives = scores[labels], scores[~labels]
        if len(positives) == 0 or len(negatives) == 0:
            raise HeadTrainingError("choosing bands needs both accept and reject pairs")
        low = float(np.quantile(positives, budget, method="lower"))
        high = float(np.quantile(negatives, 1 - budget, method="higher"))
        return cls(accept_at=_hundredths_above(max(low, high)), review_at=_hundredths_at_or_below(min(low, high)))


def _hundredths_above(value: float) -> float:
    """The least multiple of 0.01 strictly above `value`."""
    found = round(math.floor(value * 100) / 100 + 0.01, 2)
    return found if found > value else round(found + 0.01, 2)


def _hundredths_at_or_below(value: float) -> float:
    """The greatest multiple of 0.01 at or below `value`."""
    found = round(math.floor(value * 100) / 100, 2)
    return found if found <= value else round(found - 0.01, 2)


@dataclass(frozen=True)
class DecisionFigures:
    """Decisions against a binary truth. `accuracy` counts a review as not correct (a decision
    not made); `decided_accuracy` is the accuracy of the accepts and rejects alone."""

    accuracy: float
    review_rate: float
    decided_accuracy: float
    false_accept_rate: float
    false_reject_rate: float

    @classmethod
    def of(cls, decisions: NDArray[np.str_], truth: NDArray[np.bool_]) -> DecisionFigures:
        accept, reject = decisions == ACCEPT, decisions == REJECT
        right = (accept & truth) | (reject & ~truth)
        decided = accept | reject
        return cls(
            accuracy=float(right.mean()),
            review_rate=float((~decided).mean()),
            decided_accuracy=float(right[decided].mean()) if decided.any() else 0.0,
            false_accept_rate=float((accept & ~truth).sum() / max(1, (~truth).sum())),
            false_reject_rate=float((reject & truth).sum() / max(1, truth.sum())),
        )


def cosine_decisions(rows: torch.Tensor, bands: tuple[float, float] = COSINE_BANDS) -> NDArray[np.str_]:
    """The curator's decision today: cosine of the image and prompt embeddings in its bands."""
    width = rows.shape[1] // 2
    cosine = (rows[:, :width] * rows[:, width:]).sum(dim=1).double().numpy()
    return Bands(accept_at=bands[0], review_at=bands[1]).decide(cosine)


# ------------------------------------------------------------------ data


def head_pools() -> tuple[list[Composition], list[Composition]]:
    """(training pool, validation pool): the dataset's training compositions split by a salted
    caption hash, one in `VALIDATION_ONE_IN` to validation. The held-out split stays out of both."""
    train: list[Composition] = []
    validation: list[Composition] = []
    for c in compositions("train"):
        digest = hashlib.sha256(f"head-validation|{c.caption}".encode()).digest()
        (validation if int.from_bytes(digest[:8], "big") % VALIDATION_ONE_IN == 0 else train).append(c)
    return train, validation


@dataclass(frozen=True)
class Shown:
    """An image and the composition it was made from."""

    composition: Composition
    image: Any


def head_examples(pool: Sequence[Composition], tag: str, seed: int, count: int) -> Iterator[Shown]:
    """A deterministic stream of rendered images of a pool's compositions."""
    for index in range(count):
        rng = random.Random(f"head|{tag}|{seed}|{index}")
        composition = pool[rng.randrange(len(pool))]
        yield Shown(composition, render(composition, rng.getrandbits(63)))


def changed(c: Composition, attribute: str, rng: random.Random) -> Composition:
    """The composition with one attribute set to another value."""
    value = rng.choice([v for v in _ALLOWED[attribute] if v != getattr(c, attribute)])
    return Composition(**{**asdict(c), attribute: value})


@dataclass(frozen=True)
class Pair:
    """A row of the head's data: image number `image`, a prompt, its label and how it was made
    ("match", the attribute a hard negative changed, "random" or "review")."""

    image: int
    prompt: str
    label: bool
    kind: str
    weight: float = 1.0


def training_pairs(
    shown: Sequence[Shown], pool: Sequence[Composition], attributes: Sequence[str], rng: random.Random
) -> list[Pair]:
    """Per image: its caption (accept), one hard negative and one random mismatch (reject), every
    prompt a caption of `pool` (a hard negative that leaves the pool is drawn again)."""
    members = set(pool)
    pairs: list[Pair] = []
    for i, item in enumerate(shown):
        c = item.composition
        pairs.append(Pair(i, c.caption, True, "match"))
        while True:
            attribute = rng.choice(attributes)
            negative = changed(c, attribute, rng)
            if negative in members:
                break
        pairs.append(Pair(i, negative.caption, False, attribute))
        other = c
        while other == c:
            other = pool[rng.randrange(len(pool))]
        pairs.append(Pair(i, other.caption, False, "random"))
    return pairs


def judged(judgement: Judgement, c: Composition) -> bool:
    """The pixel judge's verdict that an image shows `c`: it reads the colour, the shape and the
    count of the objects (`JUDGED`), and all three are the prompt's."""
    return judgement.matches(c) and judgement.count == c.count


def judged_pairs(shown: Sequence[Shown], rng: random.Random) -> list[Pair]:
    """The held-out pairs the head's figures are measured on. Per image, made from composition c:
    c's caption; c's caption with one judged attribute (colour, shape or count) changed; and a
    random caption of the whole grammar that differs from c in a judged attribute. The label is
    the pixel judge's verdict on the image (`judged`), not how the pair was made: an image the
    generator got wrong can show the changed caption and not its own. Prompts that differ from c
    only in what the judge cannot see (size, position, background, pattern) are left out: the
    judge would call them shown."""
    grammar = all_compositions()
    pairs: list[Pair] = []
    for i, item in enumerate(shown):
        c, verdict = item.composition, judge(item.image)
        attribute = rng.choice(JUDGED)
        negative = changed(c, attribute, rng)
        other = c
        while all(getattr(other, a) == getattr(c, a) for a in JUDGED):
            other = grammar[rng.randrange(len(grammar))]
        for prompt, kind in ((c, "match"), (negative, attribute), (other, "random")):
            pairs.append(Pair(i, prompt.caption, judged(verdict, prompt), kind))
    return pairs


def held_out_shown(count: int, seed: int = HELD_OUT_SEED) -> list[Shown]:
    """`count` images of the dataset's held-out split (its own stream, as every media metric)."""
    return [Shown(e.composition, e.image) for e in examples("test", seed, count)]


class Embedder:
    """A CLIP's unit embeddings: images in batches, texts once each (cached)."""

    def __init__(self, clip: Any, batch: int = 256) -> None:
        self.clip = clip
        self.batch = batch
        self._texts: dict[str, torch.Tensor] = {}

    @property
    def width(self) -> int:
        return int(self.text(["a"]).shape[1])

    def images(self, images: Sequence[Any]) -> torch.Tensor:
        found = [self.clip.encode_images(list(images[i : i + self.batch])) for i in range(0, len(images), self.batch)]
        return torch.cat(found).float().cpu()

    def text(self, prompts: Sequence[str]) -> torch.Tensor:
        missing = sorted({p for p in prompts if p not in self._texts})
        for start in range(0, len(missing), self.batch):
            chunk = missing[start : start + self.batch]
            for prompt, vector in zip(chunk, self.clip.encode_texts(chunk).float().cpu(), strict=True):
                self._texts[prompt] = vector
        return torch.stack([self._texts[p] for p in prompts])

    def rows(self, image_embeddings: torch.Tensor, pairs: Sequence[Pair]) -> torch.Tensor:
        """The head's input rows: image embedding ‖ prompt text embedding, one per pair."""
        images = image_embeddings[torch.tensor([p.image for p in pairs], dtype=torch.long)]
        return torch.cat([images, self.text([p.prompt for p in pairs])], dim=1)


@dataclass(frozen=True)
class Labelled:
    """Rows with labels (True: accept), weights and kinds."""

    rows: torch.Tensor
    labels: NDArray[np.bool_]
    weights: NDArray[np.float64]
    kinds: tuple[str, ...]

    @classmethod
    def of(cls, rows: torch.Tensor, pairs: Sequence[Pair]) -> Labelled:
        return cls(
            rows,
            np.array([p.label for p in pairs], dtype=bool),
            np.array([p.weight for p in pairs], dtype=np.float64),
            tuple(p.kind for p in pairs),
        )

    def __add__(self, other: Labelled) -> Labelled:
        return Labelled(
            torch.cat([self.rows, other.rows]),
            np.concatenate([self.labels, other.labels]),
            np.concatenate([self.weights, other.weights]),
            self.kinds + other.kinds,
        )


def held_out_pairs(
    embedder: Embedder, shown: Sequence[Shown], images: torch.Tensor | None = None, seed: int = HELD_OUT_SEED
) -> Labelled:
    """`judged_pairs` of `shown` as rows (the pairs' random choices follow from `seed`); `images`
    are the images' embeddings when already made."""
    pairs = judged_pairs(shown, random.Random(f"head-held-out|{seed}"))
    found = embedder.images([s.image for s in shown]) if images is None else images
    return Labelled.of(embedder.rows(found, pairs), pairs)


# ------------------------------------------------------------------ human review data


@dataclass(frozen=True)
class Review:
    """One review decision: the prompt, the image embedding the curator made, the person's label."""

    prompt: str
    embedding: tuple[float, ...]
    accept: bool


def read_reviews(path: Path, width: int) -> list[Review]:
    """The decisions of a `proofmint review export` file (JSON lines with "prompt", "embedding":
    the image embedding, and "label": "accept" or "reject"; other keys are ignored). Blank lines
    are skipped; anything else unusable is a HeadTrainingError naming the line."""
    try:
        lines = path.read_text(encoding="utf8").splitlines()
    except OSError as exc:
        raise HeadTrainingError(f"cannot read the reviews file {path}: {exc.strerror}") from None
    reviews: list[Review] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise HeadTrainingError(f"{where}: not JSON ({exc.msg})") from None
        if not isinstance(row, dict):
            raise HeadTrainingError(f"{where}: a review is a JSON object")
        prompt, embedding, label = row.get("prompt"), row.get("embedding"), row.get("label")
        if not isinstance(prompt, str) or not prompt.strip():
            raise HeadTrainingError(f"{where}: no prompt")
        if label not in (ACCEPT, REJECT):
            raise HeadTrainingError(f"{where}: label is 'accept' or 'reject', got {label!r}")
        if (
            not isinstance(embedding, list)
            or len(embedding) != width
            or not all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in embedding)
        ):
            raise HeadTrainingError(f"{where}: embedding is a list of {width} finite numbers (the CLIP's width)")
        norm = math.sqrt(sum(float(v) ** 2 for v in embedding))
        if norm == 0:
            raise HeadTrainingError(f"{where}: the embedding is all zeros")
        reviews.append(Review(prompt, tuple(float(v) / norm for v in embedding), label == ACCEPT))
    return reviews


def review_rows(embedder: Embedder, reviews: Sequence[Review], weight: float) -> Labelled:
    """Reviews as training rows: the stored image embedding (normalised) ‖ the prompt's text
    embedding, recomputed with the CLIP."""
    pairs = [Pair(i, r.prompt, r.accept, "review", weight) for i, r in enumerate(reviews)]
    images = torch.tensor([r.embedding for r in reviews], dtype=torch.float32)
    return Labelled.of(embedder.rows(images, pairs), pairs)


# ------------------------------------------------------------------ training


def fit(data: Labelled, config: HeadTraining) -> State:
    """Trains a head on labelled rows; the same data and seed give the same weights (on a fixed
    number of torch threads)."""
    generator = torch.Generator().manual_seed(config.seed)
    head = Head(data.rows.shape[1], config.hidden)
    with torch.no_grad():
        for param in head.parameters():
            bound = 1.0 / max(1, param.shape[-1]) ** 0.5
            param.copy_(torch.empty(param.shape).uniform_(-bound, bound, generator=generator))
    optimiser = torch.optim.AdamW(head.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    per_epoch = math.ceil(len(data.labels) / config.batch)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, config.epochs * per_epoch)
    rows = data.rows.float()
    labels = torch.from_numpy(data.labels.astype(np.float32))
    weights = torch.from_numpy(data.weights.astype(np.float32))
    head.train()
    for _ in range(config.epochs):
        order = torch.randperm(len(labels), generator=generator)
        for start in range(0, len(order), config.batch):
            batch = order[start : start + config.batch]
            loss = nn.functional.binary_cross_entropy_with_logits(
                head(rows[batch]), labels[batch], weight=weights[batch]
            )
            optimiser.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]
            optimiser.step()
            schedule.step()
    head.eval()
    return {k: v.detach().clone().contiguous() for k, v in head.state_dict().items()}


@dataclass
class Trained:
    """What a run makes: the weights, the bands and the figures."""

    state: State
    bands: Bands
    config: HeadTraining
    clip_width: int
    metrics: dict[str, Any] = field(default_factory=dict)
    reviews: dict[str, Any] = field(default_factory=dict)


def _per_kind(decisions: NDArray[np.str_], data: Labelled, truth: NDArray[np.bool_]) -> dict[str, float]:
    """The share of each kind's pairs decided right (review counted not right)."""
    kinds = np.array(data.kinds)
    right = ((decisions == ACCEPT) & truth) | ((decisions == REJECT) & ~truth)
    return {kind: round(float(right[kinds == kind].mean()), 4) for kind in sorted(set(data.kinds))}


def measure(
    state: State, bands: Bands, data: Labelled, cosine_bands: tuple[float, float] = COSINE_BANDS
) -> dict[str, Any]:
    """The figures of a head on labelled rows, beside the cosine baseline (in `cosine_bands`:
    accept_at, review_at): decision accuracy (a review counts as not correct), review rate, false
    accept and reject rates, each kind's accuracy, and the fixed-point score's agreement with the
    float decision."""
    floats = float_scores(state, data.rows)
    fixed = fixed_point_scores(state, data.rows)
    head = bands.decide(floats)
    cosine = cosine_decisions(data.rows, cosine_bands)
    ours, base = DecisionFigures.of(head, data.labels), DecisionFigures.of(cosine, data.labels)
    return {
        "pairs": len(data.labels),
        "head_decision_accuracy": round(ours.accuracy, 4),
        "head_review_rate": round(ours.review_rate, 4),
        "head_decided_accuracy": round(ours.decided_accuracy, 4),
        "head_false_accept_rate": round(ours.false_accept_rate, 4),
        "head_false_reject_rate": round(ours.false_reject_rate, 4),
        "cosine_decision_accuracy": round(base.accuracy, 4),
        "cosine_review_rate": round(base.review_rate, 4),
        "cosine_decided_accuracy": round(base.decided_accuracy, 4),
        "head_quantised_agreement": round(float((bands.decide_fixed(fixed) == head).mean()), 4),
        "head_quantised_max_error": round(float(np.abs(fixed / (1 << EZKL_SCALE) - floats).max()), 6),
        "head_by_kind": _per_kind(head, data, data.labels),
        "cosine_by_kind": _per_kind(cosine, data, data.labels),
    }


def train(embedder: Embedder, config: HeadTraining, reviews: Sequence[Review] = (), *, echo: Any = None) -> Trained:
    """Steps 1-5 of the module docstring with the CLIP `embedder` wraps: the weights, bands and
    figures of one run."""
    say = echo or (lambda _: None)
    pool, validation_pool = head_pools()
    attributes = list(config.hard_negatives)
    say(f"embedding {config.images:,} training and {config.validation_images:,} validation images")
    shown = list(head_examples(pool, "train", config.seed, config.images))
    pairs = training_pairs(shown, pool, attributes, random.Random(f"head-pairs|train|{config.seed}"))
    data = Labelled.of(embedder.rows(embedder.images([s.image for s in shown]), pairs), pairs)
    if reviews:
        data = data + review_rows(embedder, reviews, config.review_weight)
    checking = list(head_examples(validation_pool, "validation", config.seed, config.validation_images))
    grammar = [c for c in all_compositions() if c.split == "train"]
    checks = training_pairs(checking, grammar, attributes, random.Random(f"head-pairs|validation|{config.seed}"))
    validation = Labelled.of(embedder.rows(embedder.images([s.image for s in checking]), checks), checks)

    say(f"training on {len(data.labels):,} pairs ({len(reviews)} from human review)")
    state = fit(data, config)
    bands = Bands.choose(float_scores(state, validation.rows), validation.labels, config.error_budget)
    say(f"bands: accept at {bands.accept_at}, review from {bands.review_at}")

    say(f"measuring on {config.held_out_images:,} held-out images")
    shown_held = held_out_shown(config.held_out_images)
    held_images = embedder.images([s.image for s in shown_held])
    held = held_out_pairs(embedder, shown_held, held_images)
    trained = Trained(state, bands, config, embedder.width)
    trained.metrics = {
        "held_out": measure(state, bands, held),
        "held_out_one_attribute_changed": changed_attribute_rates(state, bands, embedder, held_images, shown_held),
        "validation": measure(state, bands, validation),
        "training_pairs": len(data.labels),
    }
    return trained


def changed_attribute_rates(
    state: State, bands: Bands, embedder: Embedder, image_embeddings: torch.Tensor, shown: Sequence[Shown]
) -> dict[str, dict[str, float]]:
    """For each attribute: each image with its caption with that attribute changed (whether the
    judge can see it or not), and the share of those pairs the head accepts, reviews and rejects:
    the attributes it tells apart and those it cannot (position)."""
    rates: dict[str, dict[str, float]] = {}
    for attribute in ATTRIBUTES:
        rng = random.Random(f"head-changed|{attribute}")
        pairs = [Pair(i, changed(s.composition, attribute, rng).caption, False, attribute) for i, s in enumerate(shown)]
        decisions = bands.decide(float_scores(state, embedder.rows(image_embeddings, pairs)))
        rates[attribute] = {d: round(float((decisions == d).mean()), 4) for d in (ACCEPT, REVIEW, REJECT)}
    return rates


# ------------------------------------------------------------------ the folder


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_head(out: Path, trained: Trained, *, clip_weights: Path | None = None) -> None:
    """Writes the weights, `head.json`, `metrics.json` and the model card into `out`."""
    from safetensors.torch import save_file

    out.mkdir(parents=True, exist_ok=True)
    save_file(trained.state, str(out / WEIGHTS_FILE))
    accept_fixed, review_fixed = trained.bands.fixed()
    embed_dim = trained.state["net.0.weight"].shape[1]
    config = {
        "architecture": "zkml.curation_head.CurationHead",
        "shape": {"embed_dim": embed_dim, "hidden": trained.config.hidden},
        "input": (
            f"the image's CLIP embedding ({trained.clip_width} values) followed by the prompt's CLIP text embedding"
            f" ({trained.clip_width} values), each L2-normalised"
        ),
        "clip_weights_sha256": _sha256(clip_weights) if clip_weights is not None else None,
        "score": "a logit of 'the image shows the prompt'",
        "bands": {"accept_at": trained.bands.accept_at, "review_at": trained.bands.review_at},
        "fixed_point": {"scale": EZKL_SCALE, "accept_at": accept_fixed, "review_at": review_fixed},
        "weights_sha256": _sha256(out / WEIGHTS_FILE),
        "training": {**asdict(trained.config), "hard_negatives": list(trained.config.hard_negatives)},
        "reviews": trained.reviews,
    }
    (out / CONFIG_FILE).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf8")
    (out / METRICS_FILE).write_text(json.dumps(trained.metrics, indent=2, sort_keys=True) + "\n", encoding="utf8")
    (out / "README.md").write_text(_card(trained, config), encoding="utf8")


@dataclass(frozen=True)
class ShippedHead:
    """A head folder, loaded: the weights, the bands and `head.json`."""

    state: State
    bands: Bands
    config: dict[str, Any]

    @property
    def embed_dim(self) -> int:
        return int(self.config["shape"]["embed_dim"])

    @property
    def hidden(self) -> int:
        return int(self.config["shape"]["hidden"])


def load_head(folder: Path) -> ShippedHead:
    """A head folder written by `write_head`; HeadTrainingError when it is not one."""
    from safetensors.torch import load_file

    try:
        config = json.loads((folder / CONFIG_FILE).read_text(encoding="utf8"))
        state = load_file(str(folder / WEIGHTS_FILE))
        bands = Bands(float(config["bands"]["accept_at"]), float(config["bands"]["review_at"]))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise HeadTrainingError(f"{folder} is not a curation head folder ({exc}); make train-head writes one") from exc
    if config.get("weights_sha256") != _sha256(folder / WEIGHTS_FILE):
        raise HeadTrainingError(f"{folder / WEIGHTS_FILE} is not the weights {folder / CONFIG_FILE} names")
    return ShippedHead(state, bands, config)


def _card(trained: Trained, config: dict[str, Any]) -> str:
    held, check = trained.metrics["held_out"], trained.metrics["validation"]
    changes = trained.metrics["held_out_one_attribute_changed"]
    recipe = trained.config
    accept_fixed, review_fixed = config["fixed_point"]["accept_at"], config["fixed_point"]["review_at"]
    parameters = sum(v.numel() for v in trained.state.values())
    width = trained.clip_width
    kinds = ", ".join(f"{k} {v:.3f}" for k, v in check["head_by_kind"].items())
    lines = [
        "---",
        "license: mit",
        "library_name: pytorch",
        "---",
        "# proofmint curation head",
        "",
        "The head whose score is the curation decision and whose inference proofmint proves with EZKL: it reads"
        f" the image's CLIP embedding and the prompt's CLIP text embedding ({width} + {width} values from"
        " `models/tiny-clip`, each L2-normalised, concatenated into one row) and gives one score, a logit of"
        ' "the image shows the prompt".',
        "",
        "## Use",
        "",
        "```python",
        "from pathlib import Path",
        "",
        "import torch",
        "",
        "from media.head_training import fixed_point_scores, float_scores, load_head",
        "from zkml.curation_head import CurationHead, HeadShape",
        "",
        'shipped = load_head(Path("models/curation-head"))',
        "head = CurationHead(HeadShape(shipped.embed_dim, shipped.hidden))",
        "head.load_state_dict(shipped.state)  # the module zkml exports to ONNX and EZKL proves",
        "rows = torch.cat([image_embeddings, text_embeddings], dim=1)  # LoadedClip.encode_images / encode_texts",
        "decisions = shipped.bands.decide(float_scores(shipped.state, rows))  # accept / review / reject",
        "proven = shipped.bands.decide_fixed(fixed_point_scores(shipped.state, rows))  # what a proof decides",
        "```",
        "",
        "## Architecture",
        "",
        f"`zkml.curation_head.CurationHead`, `HeadShape(embed_dim={2 * width}, hidden={recipe.hidden})`: Linear"
        f" {2 * width} -> {recipe.hidden}, ReLU, Linear {recipe.hidden} -> 1; {parameters} parameters"
        f" (`{WEIGHTS_FILE}`, a torch state_dict in safetensors). A hidden layer of {recipe.hidden} keeps the MLP's"
        " rows under the Poseidon hash of its input in the circuit (`zkml.shape.HeadShape`).",
        "",
        "## Data",
        "",
        DATA,
        "",
        f"The head's own split: one training composition in {VALIDATION_ONE_IN} (by a salted caption hash) is a"
        " validation pool the head never trains on; the bands are chosen there. Per training image: its caption"
        " (accept), a hard negative (its caption with one of "
        + ", ".join(recipe.hard_negatives)
        + " changed; reject) and a random other caption (reject), all captions of training compositions."
        + (
            ""
            if "position" in recipe.hard_negatives
            else " Position swaps are not among the hard negatives: the tiny CLIP barely tells a swapped position"
            " from the true one (see Limits), and trained to reject them the head doubts true pairs (seed 0: held-out"
            " accuracy 0.694 with most true pairs sent to review, against 0.995 without; `--hard-negatives` sets"
            " the list)."
        )
        + " Human review decisions (`proofmint review export`, `make train-head REVIEWS=FILE.jsonl`) join the"
        f" training pairs with weight {recipe.review_weight}, their text embeddings recomputed from the prompt.",
        "",
        "## Training",
        "",
        "Rebuild with `make train-head` (`python -m media.head_training --out models/curation-head`; CPU, one"
        " thread, about 30 s; the same inputs write the same bytes).",
        "",
        *(f"- {k}: {v}" for k, v in config["training"].items()),
        f"- training pairs: {trained.metrics['training_pairs']:,}; human review decisions:"
        f" {trained.reviews.get('count', 0)}",
        "",
        "## Bands",
        "",
        f"- accept at or above **{trained.bands.accept_at}**, reject below **{trained.bands.review_at}**, human"
        " review between.",
        f"- fixed point (the proven score's units, 2^-{EZKL_SCALE}): accept at or above {accept_fixed}, reject below"
        f" {review_fixed}.",
        f"- chosen on {check['pairs']:,} validation pairs: false accepts at most {recipe.error_budget:.1%} of the"
        f" reject pairs, false rejects at most {recipe.error_budget:.1%} of the accept pairs, rounded outwards to"
        f" 0.01. There: accuracy {check['head_decision_accuracy']:.4f}, review rate {check['head_review_rate']:.4f};"
        f" by kind {kinds}.",
        "",
        "## Figures (held-out split)",
        "",
        f"{held['pairs']:,} pairs from {recipe.held_out_images:,} held-out images (`media.dataset.examples('test',"
        f" {HELD_OUT_SEED}, ...)`): per image its caption, its caption with the colour, shape or count changed, and"
        " a random caption that differs in one of those. The truth is the pixel judge's (`media.judge`: colour,"
        " shape and count read from pixels all the prompt's). A decision is right when it accepts a pair the judge"
        " says the image shows or rejects one it does not; a review counts as not right. The baseline is the"
        f" curator's cosine today (`CurationPolicy` bands {COSINE_BANDS[0]} / {COSINE_BANDS[1]}).",
        "",
        "| figure | head | cosine baseline |",
        "| --- | --- | --- |",
        f"| decision accuracy (target >= 0.95) | {held['head_decision_accuracy']:.4f} |"
        f" {held['cosine_decision_accuracy']:.4f} |",
        f"| review rate | {held['head_review_rate']:.4f} | {held['cosine_review_rate']:.4f} |",
        f"| accuracy of the decided | {held['head_decided_accuracy']:.4f} | {held['cosine_decided_accuracy']:.4f} |",
        *(
            f"| right on `{kind}` pairs | {held['head_by_kind'][kind]:.4f} | {held['cosine_by_kind'][kind]:.4f} |"
            for kind in held["head_by_kind"]
        ),
        "",
        "- proven vs float decision (`head_quantised_agreement`, target >= 0.995):"
        f" {held['head_quantised_agreement']:.4f};"
        f" largest |fixed-point score - float score|: {held['head_quantised_max_error']:.6f}. The fixed-point"
        " score is ezkl 23's arithmetic under the pinned settings (`fixed_point_scores`), checked against real"
        " ezkl witnesses in `tests/media/test_head_training.py`.",
        "- `make bench-models` reports the same figures (and the same on images the tiny text-to-image model made).",
        "",
        f"Each held-out image with its caption with one attribute changed ({recipe.held_out_images:,} pairs per"
        " attribute; a wrong caption, whether the judge can see it or not):",
        "",
        "| attribute changed | rejected | review | accepted |",
        "| --- | --- | --- | --- |",
        *(
            f"| {attribute} | {rate[REJECT]:.4f} | {rate[REVIEW]:.4f} | {rate[ACCEPT]:.4f} |"
            for attribute, rate in changes.items()
        ),
        "",
        "## Limits",
        "",
        "- It is as good as the CLIP it reads, on the procedural grammar only. The tiny CLIP barely separates a"
        f" position swap, so the head rejects only {changes['position'][REJECT]:.1%} of held-out images paired"
        " with their caption at another position: it mostly accepts shapes in the wrong place.",
        "- The held-out truth is the pixel judge, which reads colour, shape and count only; the table of changed"
        " attributes above measures the rest by construction.",
        "- Trained on rendered images; on the text-to-image model's images see `make bench-models`.",
        "- The bands are chosen for this head and this CLIP: a retrained head (or reviews added) needs its own"
        " registered model version, with its bands, on chain.",
        "- A score is a logit, not a calibrated probability.",
        "",
    ]
    return "\n".join(lines)


# ------------------------------------------------------------------ command line


@click.command()
@click.option(
    "--out", type=click.Path(file_okay=False, path_type=Path), default=Path("models/curation-head"), show_default=True
)
@click.option(
    "--clip",
    "clip_dir",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    default=Path("models/tiny-clip"),
    show_default=True,
)
@click.option(
    "--reviews",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    multiple=True,
    help="Human review decisions (`proofmint review export` JSON lines) to train on too; repeatable.",
)
@click.option("--seed", type=int, default=HeadTraining.seed, show_default=True)
@click.option("--images", type=click.IntRange(16), default=HeadTraining.images, show_default=True)
@click.option("--validation-images", type=click.IntRange(16), default=HeadTraining.validation_images, show_default=True)
@click.option("--held-out-images", type=click.IntRange(16), default=HeadTraining.held_out_images, show_default=True)
@click.option("--hidden", type=click.IntRange(1), default=HeadTraining.hidden, show_default=True)
@click.option("--epochs", type=click.IntRange(1), default=HeadTraining.epochs, show_default=True)
@click.option(
    "--hard-negatives",
    default=",".join(HeadTraining.hard_negatives),
    show_default=True,
    help=f"The attributes a hard negative changes, from {','.join(ATTRIBUTES)}.",
)
def main(
    out: Path,
    clip_dir: Path,
    reviews: tuple[Path, ...],
    seed: int,
    images: int,
    validation_images: int,
    held_out_images: int,
    hidden: int,
    epochs: int,
    hard_negatives: str,
) -> None:
    """Train the curation head on the procedural dataset (and review decisions) into OUT."""
    from media.clip import WEIGHTS_FILE as CLIP_WEIGHTS
    from media.clip import load

    try:
        config = replace(
            HeadTraining(), seed=seed, images=images, validation_images=validation_images,
            held_out_images=held_out_images, hidden=hidden, epochs=epochs,
            hard_negatives=tuple(a.strip() for a in hard_negatives.split(",") if a.strip()),
        )  # fmt: skip
    except HeadTrainingError as exc:
        raise click.BadParameter(str(exc), param_hint="--hard-negatives") from None
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the same bytes on any machine: torch splits its sums by thread count
    try:
        clip = load(f"local-dir:{clip_dir}")
        width = int(clip.encode_texts(["a"]).shape[1])
        try:
            decisions = [review for path in reviews for review in read_reviews(path, width)]
        except HeadTrainingError as exc:
            raise click.ClickException(str(exc)) from None
        trained = train(Embedder(clip), config, decisions, echo=lambda line: click.echo(line, err=True))
    finally:
        torch.set_num_threads(threads)
    digest = hashlib.sha256(b"".join(path.read_bytes() for path in reviews)).hexdigest() if reviews else None
    trained.reviews = {"count": len(decisions), "sha256": digest}
    write_head(out, trained, clip_weights=clip_dir / CLIP_WEIGHTS)
    click.echo(json.dumps(trained.metrics["held_out"], sort_keys=True))


if __name__ == "__main__":
    main()
