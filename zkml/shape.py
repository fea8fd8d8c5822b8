"""The curation head's shape, apart from torch so the command line can read its defaults cheaply."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class HeadShape:
    """The head's size, chosen for the prover. The circuit hashes every input value (Poseidon,
    about 41 rows per value, in its own columns) and lays the MLP out beside it, so an inference
    costs max(41 x embed_dim, MLP rows). At 32 dimensions the hash takes 1,314 rows; a hidden
    layer of 8 fits under that with one inner column (32 would double the rows), so 192
    inferences fit one 2^18-row proof."""

    embed_dim: int = 32
    hidden: int = 8

    def __post_init__(self) -> None:
        if self.embed_dim < 1 or self.hidden < 1:
            raise ValueError(f"embed_dim and hidden must be positive, got {self.embed_dim} and {self.hidden}")
