"""ERC-8004 zkML validation requests as `ZkmlValidator` reads them: one request per proven batch,
its hash the batch's Merkle root (the provenance registry's batch tree over one leaf per asset)
sealed with the requesting agent and a salt.

    leaf        = keccak256(0x00 ‖ abi.encode(ITEM_TAG, chainid, validator, provenance, asset, modelId))
    requestHash = keccak256(0x02 ‖ abi.encode(agentId, salt, root))

The leaf names the validator, the chain and the provenance registry, so a root means one thing on
one deployment; the agent in the hash means an answer lands only on that agent; the salt, which
the prover derives from its key (`salt_for`), means nobody can request the hash before it does.
`ValidationBatch.proof(i)` is what `ZkmlValidator.itemResponse` takes to show that asset i is
covered by the batch's answer."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass, field

from eth_abi.abi import encode
from eth_utils.crypto import keccak

from agents.core.addresses import address_of
from agents.core.merkle import BatchTree, MerkleError

ITEM_TAG = keccak(text="proofmint.ZkmlValidator.item.v1")
"""`ZkmlValidator.ITEM_TAG`."""
MAX_ASSETS = 256
"""`ZkmlValidator.MAX_ASSETS`: most assets one request covers."""
TAG = "zkml"
"""The tag of every response (`ZkmlValidator.TAG`)."""
RESPONSES = {3: 100, 2: 50, 1: 0}
"""The response for a proven verdict (`IProvenanceRegistry.Verdict`: Accept 3, Review 2, Reject 1)."""


def request_hash_of(agent_id: int, salt: bytes, root: bytes) -> bytes:
    """keccak256(0x02 ‖ abi.encode(agentId, salt, root))."""
    return keccak(b"\x02" + encode(["uint256", "bytes32", "bytes32"], [agent_id, salt, root]))


def salt_for(key: bytes, domain: ValidationDomain, root: bytes, attempt: int) -> bytes:
    """The salt a prover seals `root` with on its `attempt`-th try: an HMAC of the root under its
    key, so nobody else can compute the request hash before seeing it, and a later life of the
    prover computes the same one."""
    message = b"proofmint.ZkmlValidator.salt.v1" + encode(
        ["uint256", "address", "bytes32", "uint256"], [domain.chain_id, address_of(domain.validator), root, attempt]
    )
    return hmac.new(key, message, hashlib.sha256).digest()


@dataclass(frozen=True)
class ValidationDomain:
    """Where a request hash means something: the chain, the validator, the provenance registry."""

    chain_id: int
    validator: str
    provenance: str

    def leaf(self, asset: bytes, model_id: int) -> bytes:
        """`ZkmlValidator.itemLeaf(asset, modelId)`."""
        if len(asset) != 32:
            raise MerkleError(f"an asset digest is 32 bytes, not {len(asset)}")
        body = encode(
            ["bytes32", "uint256", "address", "address", "bytes32", "uint256"],
            [ITEM_TAG, self.chain_id, address_of(self.validator), address_of(self.provenance), asset, model_id],
        )
        return keccak(b"\x00" + body)

    def batch(self, model_id: int, assets: Sequence[bytes]) -> ValidationBatch:
        """The request over `assets` (in leaf order) attested by `model_id`."""
        return ValidationBatch(self, model_id, tuple(assets))


@dataclass(frozen=True)
class ValidationBatch:
    """One request: its assets in leaf order, its hash, and each asset's proof of membership."""

    domain: ValidationDomain
    model_id: int
    assets: tuple[bytes, ...]
    tree: BatchTree = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not 1 <= len(self.assets) <= MAX_ASSETS:
            raise MerkleError(f"a validation request covers 1 to {MAX_ASSETS} assets, not {len(self.assets)}")
        tree = BatchTree([self.domain.leaf(asset, self.model_id) for asset in self.assets])
        object.__setattr__(self, "tree", tree)

    @property
    def root(self) -> bytes:
        """`ZkmlValidator.rootOf(modelId, assets)`."""
        return self.tree.root

    def request_hash(self, agent_id: int, salt: bytes) -> bytes:
        """`ZkmlValidator.requestHashOf(agentId, salt, root)`."""
        return request_hash_of(agent_id, salt, self.tree.root)

    def proof(self, index: int) -> list[bytes]:
        """Asset `index`'s siblings, for `ZkmlValidator.itemResponse`."""
        return self.tree.proof(index)

    def response_hash(self) -> bytes:
        """keccak256(abi.encode(modelId, assets)): the `responseHash` the validator posts."""
        return keccak(encode(["uint256", "bytes32[]"], [self.model_id, list(self.assets)]))
