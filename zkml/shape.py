"""The curation head's shape, apart from torch so the command line can read its defaults cheaply."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class HeadShape:
    """The head's size, chosen for the prover: the shipped head's (`models/curation-head`). Its
    input row is the image's CLIP embedding and the prompt's text embedding (32 values each for
    the tiny CLIP), so `embed_dim` is 64. The circuit hashes every input value (Poseidon, about
    41 rows per value, in its own columns): an inference's input is its row and ONE felt, its
    content digest's proven digest (`zkml.evm.proven_digest`), and the MLP is laid out beside
    the hash, so a batch costs max(hash rows, MLP rows). A hidden layer of 8 keeps the MLP under
    the hash with one inner column."""

    embed_dim: int = 64
    hidden: int = 8

    def __post_init__(self) -> None:
        if self.embed_dim < 1 or self.hidden < 1:
            raise ValueError(f"embed_dim and hidden must be positive, got {self.embed_dim} and {self.hidden}")
