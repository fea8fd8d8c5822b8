"""Merkle trees that the contracts verify, built the same way in Python.

Two schemes:

* **Batch tree** (`ProvenanceRegistry` batches). Leaf = keccak256(0x00 ‖ abi.encode(AssetInput,
  uint256[] licenseIds)), so the licences a derivative's claim consumes are committed with it;
  node = keccak256(0x01 ‖ left ‖ right); levels are built left to right and an odd last node is
  carried up unchanged. A proof is the list of siblings from the leaf up; its length follows from
  the leaf index and the leaf count, which the verifier knows.
* **Data tree** (training-data originators of a model, claimed in `RoyaltySplitter`). The
  OpenZeppelin standard tree: leaf = keccak256(keccak256(abi.encode(address, uint256))), sorted
  pairs, the array layout of `@openzeppelin/merkle-tree`, so its roots match that library's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from eth_abi.abi import encode
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from agents.core.errors import PermanentError

ASSET_INPUT_TYPE = "(bytes32,address,uint256,bytes32,bytes32,bytes32[],string)"
LICENSE_IDS_TYPE = "uint256[]"
LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
WEIGHT_SCALE = 1_000_000
"""Weights of data originators are parts per million of the model's data share."""


class MerkleError(PermanentError, ValueError):
    """A tree or proof cannot be built from the given input."""


def _bytes32(value: bytes, what: str) -> bytes:
    if len(value) != 32:
        raise MerkleError(f"{what} must be 32 bytes, got {len(value)}")
    return value


@dataclass(frozen=True)
class AssetRecord:
    """One asset as `ProvenanceRegistry.AssetInput` has it."""

    content_digest: bytes
    creator: str
    model_id: int
    params_digest: bytes
    input_commitment: bytes
    parents: tuple[bytes, ...] = ()
    metadata_uri: str = ""
    license_ids: tuple[int, ...] = ()
    """The licences its registration consumes, one per parent (in `parents`' order)."""

    def __post_init__(self) -> None:
        _bytes32(self.content_digest, "content_digest")
        _bytes32(self.params_digest, "params_digest")
        _bytes32(self.input_commitment, "input_commitment")
        for parent in self.parents:
            _bytes32(parent, "parent")

    def as_tuple(self) -> tuple[bytes, str, int, bytes, bytes, list[bytes], str]:
        """The record as the ABI tuple the contract takes."""
        return (
            self.content_digest,
            to_checksum_address(self.creator),
            self.model_id,
            self.params_digest,
            self.input_commitment,
            list(self.parents),
            self.metadata_uri,
        )

    def leaf(self) -> bytes:
        """keccak256(0x00 ‖ abi.encode(record, licenseIds)), as `ProvenanceRegistry.leafOf`
        computes it."""
        return keccak(
            LEAF_PREFIX + encode([ASSET_INPUT_TYPE, LICENSE_IDS_TYPE], [self.as_tuple(), list(self.license_ids)])
        )


def node_hash(left: bytes, right: bytes) -> bytes:
    """keccak256(0x01 ‖ left ‖ right)."""
    return keccak(NODE_PREFIX + left + right)


@dataclass
class BatchTree:
    """The batch tree over `leaves` (at least one), with every level kept for proofs."""

    leaves: Sequence[bytes]
    levels: list[list[bytes]] = field(init=False)

    def __post_init__(self) -> None:
        if not self.leaves:
            raise MerkleError("a batch needs at least one leaf")
        level = [_bytes32(leaf, "leaf") for leaf in self.leaves]
        self.levels = [level]
        while len(level) > 1:
            nxt = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
            if len(level) % 2 == 1:
                nxt.append(level[-1])
            self.levels.append(nxt)
            level = nxt

    @property
    def root(self) -> bytes:
        return self.levels[-1][0]

    def proof(self, index: int) -> list[bytes]:
        """Siblings of leaf `index` from the bottom up (carried levels contribute nothing)."""
        if not 0 <= index < len(self.leaves):
            raise MerkleError(f"leaf index {index} out of range for {len(self.leaves)} leaves")
        siblings: list[bytes] = []
        for level in self.levels[:-1]:
            width = len(level)
            if not (index == width - 1 and width % 2 == 1):
                siblings.append(level[index ^ 1])
            index //= 2
        return siblings


def verify_batch_proof(leaf: bytes, index: int, count: int, proof: Sequence[bytes], root: bytes) -> bool:
    """Python twin of `ProvenanceRegistry._processProof`: True when `proof` leads to `root`."""
    if not 0 <= index < count:
        return False
    node = leaf
    used = 0
    width = count
    while width > 1:
        if not (index == width - 1 and width % 2 == 1):
            if used >= len(proof):
                return False
            sibling = proof[used]
            used += 1
            node = node_hash(sibling, node) if index % 2 == 1 else node_hash(node, sibling)
        index //= 2
        width = (width + 1) // 2
    return used == len(proof) and node == root


# --------------------------------------------------------------------------- data tree


def data_leaf(originator: str, weight: int) -> bytes:
    """keccak256(bytes.concat(keccak256(abi.encode(originator, weight))))."""
    return keccak(keccak(encode(["address", "uint256"], [to_checksum_address(originator), weight])))


def _hash_pair(a: bytes, b: bytes) -> bytes:
    return keccak(a + b) if a < b else keccak(b + a)


@dataclass
class DataTree:
    """OpenZeppelin standard tree over (originator, weight) pairs; weights sum to WEIGHT_SCALE."""

    shares: Sequence[tuple[str, int]]
    tree: list[bytes] = field(init=False)
    _position: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        if not self.shares:
            raise MerkleError("a data tree needs at least one originator")
        total = sum(weight for _, weight in self.shares)
        if total != WEIGHT_SCALE:
            raise MerkleError(f"originator weights must sum to {WEIGHT_SCALE}, got {total}")
        seen: set[str] = set()
        for originator, weight in self.shares:
            key = to_checksum_address(originator)
            if key in seen:
                raise MerkleError(f"originator {key} appears twice")
            if weight <= 0:
                raise MerkleError(f"originator {key} has weight {weight}; weights must be positive")
            seen.add(key)
        hashed = sorted((data_leaf(o, w), to_checksum_address(o)) for o, w in self.shares)
        size = 2 * len(hashed) - 1
        self.tree = [b""] * size
        self._position = {}
        for i, (leaf, originator) in enumerate(hashed):
            self.tree[size - 1 - i] = leaf
            self._position[originator] = size - 1 - i
        for i in range(size - 1 - len(hashed), -1, -1):
            self.tree[i] = _hash_pair(self.tree[2 * i + 1], self.tree[2 * i + 2])

    @property
    def root(self) -> bytes:
        return self.tree[0]

    def weight_of(self, originator: str) -> int:
        key = to_checksum_address(originator)
        for o, w in self.shares:
            if to_checksum_address(o) == key:
                return w
        raise MerkleError(f"{key} is not an originator of this tree")

    def proof(self, originator: str) -> list[bytes]:
        """Siblings from the originator's leaf to the root."""
        key = to_checksum_address(originator)
        if key not in self._position:
            raise MerkleError(f"{key} is not an originator of this tree")
        i = self._position[key]
        siblings: list[bytes] = []
        while i > 0:
            siblings.append(self.tree[i + 1 if i % 2 == 1 else i - 1])
            i = (i - 1) // 2
        return siblings
