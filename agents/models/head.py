"""The curation head as the curator runs it: the score the prover proves, to the last bit.

The curator does not run the head in float and hope the proof agrees: it computes the head's
fixed-point score with ezkl's own arithmetic (`media.head_training.fixed_point_scores`, checked
against real ezkl witnesses in the tests) on exactly the values the journal keeps and the prover
reads, and decides with the head's bands in the same fixed point, as
`ProvenanceRegistry.attestInference` does with the bands bound to the model version. So the
curator's decision and the proven verdict are one function of one input.

The head's input is one row: the image's CLIP embedding followed by the prompt's CLIP text
embedding (`head_row`), each L2-normalised, as float32 values (what the curator computes and the
journal stores exactly).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from agents.core.errors import PermanentError

HEAD_FOLDER: Final = Path("models") / "curation-head"
"""The shipped curation head, relative to the project root."""
VERDICTS: Final = ("none", "reject", "review", "accept")
"""`IProvenanceRegistry.Verdict` by value: what `attestInference` derived from the proven score and
the model version's bands (none: not attested)."""
BAND_MARGIN: Final = 0.01
"""The resolution of the bands (`media.head_training.Bands.choose` rounds them outwards to
hundredths): the proven score may differ from the float head's by less than this."""


class HeadError(PermanentError, ValueError):
    """A head folder that cannot be used, or a row of the wrong width."""


def head_row(image: Sequence[float], prompt: Sequence[float]) -> list[float]:
    """The head's input for one asset: its image embedding, then its prompt's text embedding."""
    return [float(v) for v in image] + [float(v) for v in prompt]


def payload_row(payload: dict[str, Any]) -> list[float]:
    """The head row of a curated job (`embedding` and `prompt_embedding`, as the curator stored
    them); HeadError for a job curated without a prompt embedding (before the head decided)."""
    image, prompt = payload.get("embedding"), payload.get("prompt_embedding")
    if not isinstance(image, list) or not isinstance(prompt, list):
        raise HeadError("the job has no image and prompt embeddings: it was not curated by the curation head")
    return head_row(image, prompt)


@dataclass(frozen=True)
class HeadModel:
    """A loaded head folder (`make train-head` writes one): its weights, and its bands as floats
    and as the fixed-point integers a model version binds on chain."""

    state: Any  # dict[str, torch.Tensor]
    accept_at: float
    review_at: float
    accept_fixed: int
    review_fixed: int
    scale: int
    weights_sha256: str
    folder: Path

    @property
    def embed_dim(self) -> int:
        """Values in a row (image and prompt embeddings together)."""
        return int(self.state["net.0.weight"].shape[1])

    @property
    def hidden(self) -> int:
        return int(self.state["net.0.weight"].shape[0])

    @classmethod
    def load(cls, folder: Path) -> HeadModel:
        """HeadError when `folder` is not a head folder or its weights are not the ones it names."""
        from media.head_training import EZKL_SCALE, HeadTrainingError, load_head

        try:
            shipped = load_head(folder)
        except HeadTrainingError as err:
            raise HeadError(str(err)) from None
        accept_fixed, review_fixed = shipped.bands.fixed(EZKL_SCALE)
        return cls(
            state=shipped.state,
            accept_at=shipped.bands.accept_at,
            review_at=shipped.bands.review_at,
            accept_fixed=accept_fixed,
            review_fixed=review_fixed,
            scale=EZKL_SCALE,
            weights_sha256=str(shipped.config["weights_sha256"]),
            folder=folder,
        )

    def scores(self, rows: Sequence[Sequence[float]]) -> list[int]:
        """The fixed-point scores (units of 2^-scale) the circuit proves for `rows`."""
        from media.head_training import fixed_point_scores

        matrix: NDArray[np.float64] = np.asarray(rows, dtype=np.float64).reshape(len(rows), -1)
        if matrix.shape[1] != self.embed_dim:
            raise HeadError(f"a head row has {self.embed_dim} values, not {matrix.shape[1]}")
        return [int(q) for q in fixed_point_scores(self.state, matrix, self.scale)]

    def verdict(self, score: int) -> str:
        """accept, review or reject: what the contract derives from a proven score and the bands."""
        if score >= self.accept_fixed:
            return "accept"
        return "reject" if score < self.review_fixed else "review"

    def real(self, score: int) -> float:
        """A fixed-point score as the real number it stands for."""
        return score / (1 << self.scale)
