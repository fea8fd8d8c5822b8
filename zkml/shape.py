"""The curation head's shape, apart from torch so the command line can read its defaults cheaply."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class HeadShape:
    """The head's size, chosen for the prover. The circuit hashes every input value (Poseidon,
    about 41 rows per value, in its own columns): an inference's input is its embedding and ONE
    felt, its content digest's proven digest (`zkml.evm.proven_digest`), and the MLP is laid out
    beside the hash, so a batch costs max(hash rows, MLP rows). At 32 dimensions the hash takes
    1,355 rows per inference; a hidden layer of 8 (the MLP alone: 1,021 rows for one inference,
    about 510 more for each further one) stays under it with one inner column, where a hidden
    layer of 32 would not (3,613 rows for one). So 193 inferences fit one 2^18-row proof
    (261,515 rows; 194 need 2^19: 262,870)."""

    embed_dim: int = 32
    hidden: int = 8

    def __post_init__(self) -> None:
        if self.embed_dim < 1 or self.hidden < 1:
            raise ValueError(f"embed_dim and hidden must be positive, got {self.embed_dim} and {self.hidden}")
