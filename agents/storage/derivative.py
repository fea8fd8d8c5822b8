"""A derivative that a person registers: an image they made from parent assets they hold
licences for, the document its parameters digest hashes, and the ERC-721 metadata that points at
both. The ape script (`ape run register_asset`), the API (`POST /v1/derivatives`, for the dApp)
and the tests build the same record here, and each leaves the rules to the contract: a simulated
`ProvenanceRegistry.register` refuses what the chain would (a licence not held, another asset's,
one that allows no derivatives or has expired), naming its custom error, before anything is sent.

The parameters document is the pre-image of `paramsDigest` (sha256 of its canonical JSON), and
the metadata carries it by `ipfs://` URI, so anyone can check the digest from public data.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from typing import Any

from eth_utils.address import is_address, to_checksum_address

from agents.core.errors import PermanentError
from agents.core.requests import GeneratorError, check_text
from agents.storage.cid import Cid
from agents.storage.manifest import canonical_json
from agents.storage.store import BlockStore
from agents.storage.unixfs import Importer

#: The contract's limit on parents (`ProvenanceRegistry.MAX_PARENTS`).
MAX_PARENTS = 16
KIND = "proofmint.derivative/1"
ZERO32 = bytes(32)


class DerivativeError(PermanentError, ValueError):
    """A derivative that cannot be registered as given; the message says what to fix."""


@dataclass(frozen=True)
class StoredDerivative:
    image: str
    params: str
    metadata: str
    """CIDv1 of the image, the parameters document and the metadata in the content store."""


@dataclass(frozen=True)
class Derivative:
    """What the creator asserts: this image, made with model version `model_id` from `parents`,
    each under the licence of the same position in `license_ids`."""

    image: bytes
    creator: str
    model_id: int
    parents: tuple[bytes, ...]
    license_ids: tuple[int, ...]
    title: str = ""

    def __post_init__(self) -> None:
        if not self.image:
            raise DerivativeError("the image is empty")
        if not is_address(self.creator) or int(self.creator, 16) == 0:
            raise DerivativeError(f"creator {self.creator!r} is not a non-zero address")
        if not 1 <= self.model_id < 2**32:
            raise DerivativeError(f"model id must be a registered model version (1 or more), got {self.model_id}")
        if not 1 <= len(self.parents) <= MAX_PARENTS:
            raise DerivativeError(f"a derivative names 1 to {MAX_PARENTS} parents, got {len(self.parents)}")
        if len(self.license_ids) != len(self.parents):
            raise DerivativeError(
                f"one licence per parent, in the same order: {len(self.parents)} parents, "
                f"{len(self.license_ids)} licences"
            )
        if any(len(p) != 32 or p == ZERO32 for p in self.parents):
            raise DerivativeError("each parent is an asset's content digest (32 bytes, not zero)")
        if len(set(self.parents)) != len(self.parents):
            raise DerivativeError("a parent is named twice")
        if any(not 0 < i < 2**256 for i in self.license_ids):
            raise DerivativeError("each licence id is a positive 256-bit number (the ERC-1155 token id)")
        if self.digest in self.parents:
            raise DerivativeError("the image is one of its own parents")
        try:
            check_text(self.title, "the title")
        except GeneratorError as exc:
            raise DerivativeError(str(exc)) from None

    @property
    def digest(self) -> bytes:
        """The asset id: sha256 of the image bytes."""
        return hashlib.sha256(self.image).digest()

    def params_document(self) -> bytes:
        """The canonical JSON whose sha256 is the record's `paramsDigest`."""
        return canonical_json(
            {
                "kind": KIND,
                "sha256": "0x" + self.digest.hex(),
                "creator": to_checksum_address(self.creator),
                "modelId": self.model_id,
                "parents": ["0x" + p.hex() for p in self.parents],
                "licenseIds": [str(i) for i in self.license_ids],
            }
        )

    @property
    def params_digest(self) -> bytes:
        return hashlib.sha256(self.params_document()).digest()

    def metadata(self, image_cid: str, params_cid: str) -> dict[str, Any]:
        """ERC-721 metadata: the image and the parameters document by `ipfs://` URI."""
        count = len(self.parents)
        return {
            "name": self.title.strip() or f"Derivative of 0x{self.parents[0].hex()[:12]}…",
            "description": f"A derivative of {count} asset{'s' if count > 1 else ''}, registered by its creator "
            "under a licence of each parent.",
            "image": f"ipfs://{image_cid}",
            "attributes": [
                {"trait_type": "model version", "value": self.model_id},
                {"trait_type": "parents", "value": count, "display_type": "number"},
            ],
            "properties": {
                "sha256": self.digest.hex(),
                "paramsDigest": self.params_digest.hex(),
                "paramsDocument": f"ipfs://{params_cid}",
                "parents": ["0x" + p.hex() for p in self.parents],
                "licenseIds": [str(i) for i in self.license_ids],
            },
        }

    def files(self) -> tuple[bytes, bytes, bytes]:
        """The image, the parameters document and the metadata, as stored."""
        image, params = self.image, self.params_document()
        metadata = canonical_json(self.metadata(str(_cid(image)), str(_cid(params))))
        return image, params, metadata

    def cids(self) -> StoredDerivative:
        """Their CIDv1s, as `store` will add them (nothing is written)."""
        image, params, metadata = (str(_cid(f)) for f in self.files())
        return StoredDerivative(image, params, metadata)

    async def store(self, store: BlockStore) -> StoredDerivative:
        """Adds the image, the parameters document and the metadata to `store` (content
        addressed: adding again changes nothing)."""
        image, params, metadata = [str(await store.put(f)) for f in self.files()]
        return StoredDerivative(image, params, metadata)

    def asset_input(self, metadata_cid: str) -> dict[str, Any]:
        """`IProvenanceRegistry.AssetInput` as web3 encodes it."""
        return {
            "contentDigest": self.digest,
            "creator": to_checksum_address(self.creator),
            "modelId": self.model_id,
            "paramsDigest": self.params_digest,
            "inputCommitment": ZERO32,
            "parents": list(self.parents),
            "metadataURI": f"ipfs://{metadata_cid}",
        }


def _cid(data: bytes) -> Cid:
    """The CIDv1 (raw leaves) of a file, as `LocalStore.add_bytes` computes it."""
    return Importer(cid_version=1).add(io.BytesIO(data)).cid
