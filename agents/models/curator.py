"""Curator stage: scores generated images with any open_clip model and decides their fate.

For each image and its prompt:
1. moderation, zero-shot: the prompt's text embedding and the image embedding are compared with
   each blocked concept of the policy; a concept at or above the policy's threshold flags the
   item, unless the policy lists `allowed` reference concepts and one of those is closer (the
   zero-shot classification form, far sharper than a bare threshold for a small model);
2. near-duplicates: the image embedding is looked up in an index of earlier assets; a neighbour
   at or above `duplicate_at` cosine whose perceptual hash (64-bit DCT hash of the grey image)
   is within `duplicate_hash_bits` is the asset this item copies. The embedding finds images of
   the same content; the hash tells a copy (re-encoded, rescaled, brightened) from another
   picture of the same content, which a small embedding alone cannot;
3. the decision: with a curation head (`agents.models.head.HeadModel`, the product's way), the
   head's fixed-point score of the image embedding followed by the prompt's text embedding, in
   the head's bands: exactly the score the prover proves and the verdict the contract derives
   from it. Without one, the policy's cosine bands on the prompt alignment (the baseline).
   Either way, at or above the accept band is accepted, below the review band rejected, the band
   between goes to a human.
A flagged or duplicate item is rejected whatever its score. The verdict carries the image and
prompt embeddings, which the zk curation head reads and the asset's input commitment hashes.
"""

from __future__ import annotations

import asyncio
import functools
import io
import json
import re
import unicodedata
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from agents.core.errors import PermanentError
from agents.models.head import HeadModel, head_row

DEFAULT_POLICY: Final = Path("models") / "curation-policy.json"
"""The shipped curation policy (thresholds, blocked terms), relative to the project root."""


class CuratorError(PermanentError, ValueError):
    """A curation policy or item that cannot be used as given."""


class Decision(StrEnum):
    ACCEPT = "accept"
    REVIEW = "review"
    REJECT = "reject"


@dataclass(frozen=True)
class CurationPolicy:
    """Thresholds are cosine similarities in the curating model's embedding space; the defaults
    are calibrated for the shipped tiny CLIP on held-out images (matched image and caption:
    >= 0.90 in 99%; a random other caption: < 0.63 in 99%). Calibrate them for another model."""

    accept_at: float = 0.85
    review_at: float = 0.6
    blocked: tuple[str, ...] = ()
    allowed: tuple[str, ...] = ()
    image_moderation_at: float = 0.45
    prompt_moderation_at: float = 0.45
    duplicate_at: float = 0.85
    duplicate_hash_bits: int = 6
    blocked_terms: tuple[str, ...] = ()
    """Words or phrases a prompt may not contain (whole words, any case, after Unicode NFKC
    folding): refused before any compute is spent, whatever the model knows."""
    description: str = ""

    def __post_init__(self) -> None:
        for name in ("accept_at", "review_at", "image_moderation_at", "prompt_moderation_at", "duplicate_at"):
            value = getattr(self, name)
            if not -1.0 <= value <= 1.0:
                raise CuratorError(f"{name} is a cosine similarity in [-1, 1], got {value}")
        if not 0 <= self.duplicate_hash_bits <= 64:
            raise CuratorError(f"duplicate_hash_bits is in [0, 64], got {self.duplicate_hash_bits}")
        if self.review_at > self.accept_at:
            raise CuratorError(f"review_at {self.review_at} is above accept_at {self.accept_at}")
        if any(not concept.strip() for concept in (*self.blocked, *self.allowed)):
            raise CuratorError("a blocked or allowed concept is empty")
        if set(self.blocked) & set(self.allowed):
            raise CuratorError(f"concepts both blocked and allowed: {sorted(set(self.blocked) & set(self.allowed))}")
        if any(not term.strip() for term in self.blocked_terms):
            raise CuratorError("a blocked term is empty")

    def term_flags(self, prompt: str) -> list[Flag]:
        """The blocked terms `prompt` contains, as prompt flags of similarity 1."""
        text = _fold(prompt)
        return [Flag(term, "prompt", 1.0) for term in self.blocked_terms if _term_pattern(term).search(text)]

    def describe(self, flags: Sequence[Flag]) -> str:
        """One sentence for a moderation refusal."""
        terms = set(self.blocked_terms)
        return "moderation: " + "; ".join(
            f"the prompt contains the blocked term {f.concept!r}"
            if f.where == "prompt" and f.concept in terms and f.similarity == 1.0
            else f"the {f.where} matches the blocked concept {f.concept!r} ({f.similarity:.3f})"
            for f in flags
        )

    @classmethod
    def from_json(cls, path: Path) -> CurationPolicy:
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise CuratorError(f"{path}: not a readable JSON policy ({err})") from err
        if not isinstance(data, dict):
            raise CuratorError(f"{path}: a policy is a JSON object")
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known
        if unknown:
            raise CuratorError(f"{path}: unknown policy keys {sorted(unknown)}; known: {sorted(known)}")
        for key in ("blocked", "allowed", "blocked_terms"):
            if key in data:
                if not isinstance(data[key], list) or not all(isinstance(c, str) for c in data[key]):
                    raise CuratorError(f"{path}: {key} is a list of strings")
                data[key] = tuple(data[key])
        try:
            return cls(**data)
        except TypeError as err:
            raise CuratorError(f"{path}: {err}") from None


@functools.lru_cache(maxsize=4096)
def _term_pattern(term: str) -> re.Pattern[str]:
    """A blocked term as whole words, any run of spaces between them (compiled once per term)."""
    return re.compile(r"(?<!\w)" + r"\s+".join(map(re.escape, _fold(term).split())) + r"(?!\w)")


def _fold(text: str) -> str:
    """Case- and compatibility-folded text (fullwidth and styled letters read as plain)."""
    return unicodedata.normalize("NFKC", text).casefold()


@dataclass(frozen=True)
class Screening:
    """A prompt screened before generation: why it is refused (empty: it may go on)."""

    flags: tuple[Flag, ...]
    reason: str


Screen = Callable[[Sequence[str]], Awaitable[list[Screening]]]
"""Moderates prompts before generation: `Curator.screen`, or `term_screen` without a model."""


def term_screen(policy: CurationPolicy) -> Screen:
    """The policy's blocked terms alone (where no CLIP is loaded, as in a generator-only agent)."""

    async def screen(prompts: Sequence[str]) -> list[Screening]:
        flagged = [policy.term_flags(prompt) for prompt in prompts]
        return [Screening(tuple(flags), policy.describe(flags) if flags else "") for flags in flagged]

    return screen


@dataclass(frozen=True)
class Flag:
    concept: str
    where: str  # "prompt" or "image"
    similarity: float


@dataclass(frozen=True)
class CurationItem:
    digest: str
    image: Any  # a PIL image or PNG/JPEG bytes
    prompt: str
    key: str = ""
    """The job it belongs to: an index entry the same job made earlier (a retry after a crash)
    is not a duplicate of it. Empty: every earlier entry counts."""
    parents: tuple[str, ...] = ()
    """The digests (hex) of the assets it derives from under licence (an upscale of its base):
    it may look like them, so they are no duplicates of it."""


@dataclass(frozen=True)
class Verdict:
    digest: str
    decision: Decision
    alignment: float
    flags: tuple[Flag, ...]
    duplicate_of: str | None
    duplicate_similarity: float
    embedding: tuple[float, ...]
    reason: str = ""
    """Why, in one sentence (what `GET /v1/requests` shows for a job in review or rejected)."""
    prompt_embedding: tuple[float, ...] = ()
    score: int | None = None
    """The curation head's fixed-point score (None without a head): what the proof will carry."""


def _dct_matrix(n: int) -> NDArray[np.float64]:
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    matrix = np.cos(np.pi * (2 * i + 1) * k / (2 * n))
    matrix[0] /= np.sqrt(2)
    scaled: NDArray[np.float64] = matrix * np.sqrt(2 / n)
    return scaled


_DCT32 = _dct_matrix(32)


def perceptual_hash(image: Any) -> int:
    """64-bit DCT hash: grey 32x32, the 8x8 lowest frequencies, each bit above their median."""
    from PIL import Image

    grey = np.asarray(_as_image(image).convert("L").resize((32, 32), Image.Resampling.BILINEAR), dtype=np.float64)
    low = (_DCT32 @ grey @ _DCT32.T)[:8, :8].ravel()
    bits = low > np.median(low[1:])
    return int("".join("1" if b else "0" for b in bits), 2)


def hash_distance(a: int, b: int) -> int:
    return (a ^ b).bit_count()


#: the fewest entries the log beside a saved index holds before the whole index is written again
_LOG_AT_LEAST: Final = 1_024


class EmbeddingIndex:
    """Earlier assets by digest: unit embedding, perceptual hash and the job that added it;
    exact cosine search (numpy). Rows live in a buffer that doubles when full (an add costs
    O(1) amortised, not a copy of the index), and a search does its per-entry work in numpy: only
    the entries at or above the threshold reach Python.

    Saved as a snapshot (`path`, an .npz) and a log beside it (`path` + ".log", a JSON line an
    entry): a save appends the entries added since the last one, and writes the whole index
    again only once the log holds as many entries as the snapshot (and at least
    `_LOG_AT_LEAST`), so each entry is written about twice in all. Writing the whole index after
    every batch had made a save cost O(index) (6 ms for 2,000 entries, 41 ms for 20,000, here:
    after every batch of 64, a cost per asset that grew without bound)."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self._digests: list[str] = []
        self._hashes: list[int] = []
        self._owners: list[str] = []
        self._known: set[str] = set()
        self._buffer = np.zeros((0, dim), dtype=np.float32)
        self._saved_to: Path | None = None  # where the entries up to `_saved` are
        self._saved = 0
        self._in_snapshot = 0
        self._in_log = 0

    @property
    def _rows(self) -> np.ndarray[Any, np.dtype[np.float32]]:
        return self._buffer[: len(self._digests)]

    @_rows.setter
    def _rows(self, rows: np.ndarray[Any, np.dtype[np.float32]]) -> None:
        self._buffer = np.ascontiguousarray(rows, dtype=np.float32)

    def __len__(self) -> int:
        return len(self._digests)

    def add(self, digest: str, embedding: Sequence[float], image_hash: int, owner: str = "") -> None:
        row = np.asarray(embedding, dtype=np.float32).reshape(1, -1)
        if row.shape[1] != self.dim:
            raise CuratorError(f"embedding has {row.shape[1]} values, the index holds {self.dim}")
        if digest in self._known:
            return
        self._append(digest, row[0] / max(1e-12, float(np.linalg.norm(row))), image_hash, owner)

    def _append(self, digest: str, unit: NDArray[np.float32], image_hash: int, owner: str) -> None:
        size = len(self._digests)
        if size == len(self._buffer):  # full: double it
            grown = np.zeros((max(16, 2 * size), self.dim), dtype=np.float32)
            grown[:size] = self._buffer[:size]
            self._buffer = grown
        self._buffer[size] = unit
        self._known.add(digest)
        self._digests.append(digest)
        self._hashes.append(image_hash)
        self._owners.append(owner)

    def neighbours(
        self, embedding: Sequence[float], at: float, limit: int = 16, *, exclude_owner: str = ""
    ) -> list[tuple[str, float, int]]:
        """Up to `limit` (digest, cosine, hash) at or above cosine `at`, most similar first,
        leaving out entries added by `exclude_owner` (when not empty)."""
        if not self._digests:
            return []
        scores = self._rows @ np.asarray(embedding, dtype=np.float32)
        near = np.flatnonzero(scores >= at)
        near = near[np.argsort(-scores[near], kind="stable")]
        found: list[tuple[str, float, int]] = []
        for i in near.tolist():  # a look-alike corpus puts many above the threshold: stop at `limit`
            if exclude_owner and self._owners[i] == exclude_owner:
                continue
            found.append((self._digests[i], float(scores[i]), self._hashes[i]))
            if len(found) == limit:
                break
        return found

    @staticmethod
    def log_of(path: Path) -> Path:
        """The log of entries beside the snapshot at `path`."""
        return path.with_name(path.name + ".log")

    def save(self, path: Path) -> None:
        """Saves the entries added since the last save to `path` (see the class): appended to
        its log, or the whole index written again (atomically) when the log is due, when the
        index was last saved elsewhere, or when its log ended in a line cut short."""
        new = range(self._saved, len(self))
        if self._saved_to == path and not new:
            return
        if self._saved_to != path or self._in_log + len(new) >= max(_LOG_AT_LEAST, self._in_snapshot):
            self._snapshot(path)
            return
        lines = [
            json.dumps(
                {
                    "digest": self._digests[i],
                    "hash": f"{self._hashes[i]:016x}",
                    "owner": self._owners[i],
                    "row": self._buffer[i].tolist(),  # float32 values: exact as JSON numbers
                }
            )
            + "\n"
            for i in new
        ]
        with self.log_of(path).open("a", encoding="utf-8") as log:
            log.write("".join(lines))
        self._saved, self._in_log = len(self), self._in_log + len(new)

    def _snapshot(self, path: Path) -> None:
        """The whole index to `path` atomically, then its log emptied (entries found in both after a
        crash between the two are read once)."""
        self._write_npz(path)
        self.log_of(path).write_bytes(b"")
        self._saved_to, self._saved, self._in_snapshot, self._in_log = path, len(self), len(self), 0

    def _write_npz(self, path: Path) -> None:
        """Atomically writes the index (an .npz of digests, hashes and rows)."""
        temporary = path.with_name(path.name + ".tmp.npz")
        np.savez(
            temporary,
            digests=np.array(self._digests, dtype=np.str_),
            hashes=np.array([f"{h:016x}" for h in self._hashes], dtype=np.str_),
            owners=np.array(self._owners, dtype=np.str_),
            rows=self._rows,
        )
        temporary.replace(path)

    @classmethod
    def load(cls, path: Path, dim: int) -> EmbeddingIndex:
        """The index saved at `path`, or an empty one when there is none yet."""
        index = cls(dim)
        if path.exists():
            try:
                data = np.load(path, allow_pickle=False)
                rows, digests, hashes = data["rows"].astype(np.float32), data["digests"], data["hashes"]
                owners = data["owners"] if "owners" in data else np.array([""] * len(digests), dtype=np.str_)
            except (OSError, ValueError, KeyError) as err:
                raise CuratorError(f"{path}: not an embedding index ({err})") from err
            if rows.ndim != 2 or rows.shape[1] != dim or not len(digests) == len(hashes) == len(owners) == len(rows):
                raise CuratorError(f"{path}: index rows are {rows.shape}, expected (n, {dim}) with n digests")
            index._digests = [str(d) for d in digests]
            index._known = set(index._digests)
            index._hashes = [int(str(h), 16) for h in hashes]
            index._owners = [str(o) for o in owners]
            index._rows = rows
        index._in_snapshot = len(index)
        whole = index._read_log(cls.log_of(path))
        index._saved_to = path if whole else None  # a line cut short: the next save writes it all
        index._saved = len(index)
        return index

    def _read_log(self, log: Path) -> bool:
        """Adds the log's entries (those not known already); False when it ends in a line cut
        short by a crash (that entry was never saved, and is left out)."""
        if not log.exists():
            return True
        for line in log.read_text(encoding="utf-8").splitlines(keepends=True):
            try:
                if not line.endswith("\n"):
                    raise ValueError("a line cut short")
                entry = json.loads(line)
                row = np.asarray(entry["row"], dtype=np.float32)
                digest, image_hash, owner = str(entry["digest"]), int(entry["hash"], 16), str(entry["owner"])
            except (ValueError, KeyError, TypeError):
                return False
            if row.shape != (self.dim,):
                raise CuratorError(f"{log}: an entry has {row.shape} values, the index holds {self.dim}")
            self._in_log += 1
            if digest not in self._known:
                self._append(digest, row, image_hash, owner)
        return True


def _as_image(image: Any) -> Any:
    from PIL import Image, UnidentifiedImageError

    if isinstance(image, bytes | bytearray):
        try:
            return Image.open(io.BytesIO(image)).convert("RGB")
        except UnidentifiedImageError as err:
            raise CuratorError("the item's bytes are not an image PIL can read") from err
    return image.convert("RGB")


def _input_side(clip: Any) -> int | None:
    """The square input side of an open_clip model's image tower (None where it does not say)."""
    size = getattr(getattr(getattr(clip, "model", None), "visual", None), "image_size", None)
    if isinstance(size, int):
        return size
    if isinstance(size, tuple | list) and len(size) == 2 and size[0] == size[1]:
        return int(size[0])
    return None


def _at_side(image: Any, side: int | None) -> Any:
    """`image` box-filtered down to `side` x `side` where it is a larger whole multiple of it."""
    from PIL import Image

    width, height = image.size
    if side is None or width != height or width <= side or width % side:
        return image
    return image.resize((side, side), Image.Resampling.BOX)


class Curator:
    """Curates items with one loaded open_clip model, off the event loop.

    Lifecycle:
    1. `Curator.load(model_name, policy)` loads the model in a worker thread and embeds the
       policy's blocked concepts once.
    2. `await curate(items)` embeds the batch in the executor and returns one verdict per item,
       in order. Accepted items join the duplicate index (`remember=True`), so a later copy of
       one, in this batch or another, is flagged.
    3. `close()` shuts down the executor it owns.
    """

    def __init__(
        self,
        clip: Any,
        policy: CurationPolicy,
        index: EmbeddingIndex | None = None,
        executor: Executor | None = None,
        remember: bool = True,
        head: HeadModel | None = None,
    ) -> None:
        self._clip = clip
        self.policy = policy
        dim = int(clip.encode_texts(["x"]).shape[-1])
        self.index = index if index is not None else EmbeddingIndex(dim)
        if self.index.dim != dim:
            raise CuratorError(f"the index holds {self.index.dim}-d embeddings, the model makes {dim}-d")
        if head is not None and head.embed_dim != 2 * dim:
            raise CuratorError(
                f"the curation head at {head.folder} reads {head.embed_dim} values, but this CLIP makes {dim}-d "
                f"image and text embeddings ({2 * dim} together): train a head for it (make train-head)"
            )
        self.head = head
        concepts = [*policy.blocked, *policy.allowed]
        self._concepts = clip.encode_texts(concepts).cpu().numpy() if policy.blocked else None
        self._owned = executor is None
        self._executor = executor or ThreadPoolExecutor(max_workers=1, thread_name_prefix="curator")
        self.remember = remember

    @classmethod
    async def load(
        cls,
        model_name: str,
        policy: CurationPolicy,
        device: str = "cpu",
        index: EmbeddingIndex | None = None,
        executor: Executor | None = None,
        head: HeadModel | None = None,
    ) -> Curator:
        from media.clip import load

        pool = executor or ThreadPoolExecutor(max_workers=1, thread_name_prefix="curator")
        loop = asyncio.get_running_loop()
        try:
            clip = await loop.run_in_executor(pool, load, model_name, device)
        except Exception as exc:  # a missing folder, an unknown name, a checkpoint that is no checkpoint
            if executor is None:
                pool.shutdown(wait=False)
            reason = (str(exc).splitlines() or [type(exc).__name__])[0]
            reason = reason if len(reason) <= 160 else reason[:157] + "..."
            raise CuratorError(
                f"cannot load the open_clip model {model_name!r}: {reason} "
                "(--clip takes local-dir:FOLDER, NAME@CHECKPOINT or a cached hf-hub: id)"
            ) from exc
        try:
            curator = await loop.run_in_executor(pool, lambda: cls(clip, policy, index, pool, head=head))
        except BaseException:
            if executor is None:
                pool.shutdown(wait=False)
            raise
        curator._owned = executor is None
        return curator

    @property
    def device(self) -> str:
        """Where the CLIP model runs (what the cost records name)."""
        return str(getattr(self._clip, "device", "cpu"))

    def close(self) -> None:
        if self._owned:
            self._executor.shutdown(wait=True)

    def screen_batch(self, prompts: Sequence[str]) -> list[Screening]:
        """Moderates prompts before any image is made (blocking): the policy's blocked terms,
        then its blocked concepts against the prompts' text embeddings."""
        vectors = self._clip.encode_texts(list(prompts)).cpu().numpy() if self._concepts is not None else None
        screened: list[Screening] = []
        for i, prompt in enumerate(prompts):
            flags = self.policy.term_flags(prompt)
            if vectors is not None:
                flags += self._flags(vectors[i], "prompt", self.policy.prompt_moderation_at)
            screened.append(Screening(tuple(flags), self.policy.describe(flags) if flags else ""))
        return screened

    async def screen(self, prompts: Sequence[str]) -> list[Screening]:
        """`screen_batch` in the curator's executor."""
        if not prompts:
            return []
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self.screen_batch, list(prompts))

    def embed_images(self, images: Sequence[Any]) -> NDArray[np.float32]:
        """Unit image embeddings (N, dim), blocking. An image a whole multiple of the model's input
        side (an x2 upscale of a 32 x 32 base, for the tiny CLIP) is reduced to it by averaging
        each block (a box filter) first: CLIP then sees what the image shows at its resolution, as
        it saw the base, rather than what its resize's own filter makes of the finer pixels."""
        side = _input_side(self._clip)
        pictures = [_at_side(_as_image(i), side) for i in images]
        return np.asarray(self._clip.encode_images(pictures).cpu().numpy(), dtype=np.float32)

    def embed_prompts(self, prompts: Sequence[str]) -> NDArray[np.float32]:
        """Unit text embeddings (N, dim) of prompts, blocking."""
        return np.asarray(self._clip.encode_texts(list(prompts)).cpu().numpy(), dtype=np.float32)

    def _reason(
        self,
        decision: Decision,
        alignment: float,
        flags: list[Flag],
        duplicate: str | None,
        similarity: float,
        score: int | None = None,
    ) -> str:
        policy = self.policy
        if flags:
            return policy.describe(flags)
        if duplicate is not None:
            return f"a near-duplicate of the accepted asset 0x{duplicate} (cosine {similarity:.3f})"
        if self.head is not None and score is not None:
            head, real = self.head, self.head.real(score)
            if decision is Decision.REJECT:
                return f"the curation head scores {real:.3f}, below {head.review_at} (the reject band)"
            if decision is Decision.REVIEW:
                return (
                    f"the curation head scores {real:.3f}, in the human-review band "
                    f"[{head.review_at}, {head.accept_at}): a person decides"
                )
            return f"the curation head scores {real:.3f}, at least {head.accept_at}"
        if decision is Decision.REJECT:
            return f"prompt alignment {alignment:.3f} is below {policy.review_at} (the reject threshold)"
        if decision is Decision.REVIEW:
            return (
                f"prompt alignment {alignment:.3f} is in the human-review band "
                f"[{policy.review_at}, {policy.accept_at}): a person decides"
            )
        return f"prompt alignment {alignment:.3f} is at least {policy.accept_at}"

    def _flags(self, vector: NDArray[np.float32], where: str, threshold: float) -> list[Flag]:
        if self._concepts is None:
            return []
        scores = self._concepts @ vector
        blocked = len(self.policy.blocked)
        best_allowed = float(scores[blocked:].max()) if len(scores) > blocked else -np.inf
        return [
            Flag(concept, where, float(score))
            for concept, score in zip(self.policy.blocked, scores[:blocked], strict=True)
            if score >= threshold and score > best_allowed
        ]

    def curate_batch(self, items: Sequence[CurationItem]) -> list[Verdict]:
        """Verdicts for a batch (blocking: run it in an executor)."""
        if not items:
            return []
        pictures = [_as_image(item.image) for item in items]  # decoded once: embedding and hash
        images = self.embed_images(pictures)
        prompts = self.embed_prompts([item.prompt for item in items])
        scores: list[int | None] = [None] * len(items)
        if self.head is not None:
            scores = list(self.head.scores([head_row(i, p) for i, p in zip(images, prompts, strict=True)]))
        verdicts: list[Verdict] = []
        for item, picture, image, prompt, score in zip(items, pictures, images, prompts, scores, strict=True):
            alignment = float(image @ prompt)
            flags = self.policy.term_flags(item.prompt)
            flags += self._flags(prompt, "prompt", self.policy.prompt_moderation_at)
            flags += self._flags(image, "image", self.policy.image_moderation_at)
            image_hash = perceptual_hash(picture)
            duplicate, similarity = None, 0.0
            for digest, cosine, other_hash in self.index.neighbours(
                image, self.policy.duplicate_at, exclude_owner=item.key
            ):
                if digest in item.parents:
                    continue
                if hash_distance(image_hash, other_hash) <= self.policy.duplicate_hash_bits:
                    duplicate, similarity = digest, cosine
                    break
            if self.head is not None and score is not None:
                decided = Decision(self.head.verdict(score))
            elif alignment < self.policy.review_at:
                decided = Decision.REJECT
            else:
                decided = Decision.ACCEPT if alignment >= self.policy.accept_at else Decision.REVIEW
            decision = Decision.REJECT if flags or duplicate is not None else decided
            if decision is Decision.ACCEPT and self.remember:
                self.index.add(item.digest, image, image_hash, owner=item.key)
            verdicts.append(
                Verdict(
                    item.digest,
                    decision,
                    alignment,
                    tuple(flags),
                    duplicate,
                    similarity,
                    tuple(float(v) for v in image),
                    self._reason(decision, alignment, flags, duplicate, similarity, score),
                    tuple(float(v) for v in prompt),
                    score,
                )
            )
        return verdicts

    async def curate(self, items: Sequence[CurationItem]) -> list[Verdict]:
        return await asyncio.get_running_loop().run_in_executor(self._executor, self.curate_batch, list(items))
