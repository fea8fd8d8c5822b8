"""What is stored next to each image: ERC-721 metadata and a C2PA provenance manifest.

The manifest is a C2PA *manifest definition* (the JSON `c2patool` and the c2pa SDKs sign), in
C2PA's own vocabulary where it has one:
- `c2pa.actions`: one `c2pa.created` action whose `digitalSourceType` is IPTC's
  `trainedAlgorithmicMedia`, the generating model as `softwareAgent`, the generation
  parameters as `parameters`;
- ingredients: each parent asset, `relationship: parentOf` (derivatives);
- the hard binding (`c2pa.hash.data`, the hash of the image's bytes) is added by the signer
  (`agents.storage.credentials`); the unsigned definition carries the sha256 that ProvenanceRegistry
  registers in `org.proofmint.provenance`, which also holds what C2PA has no term for
  (weights digest, seed, curation scores, zk proof reference).

The ERC-721 metadata (`name`, `description`, `image`, `attributes`) points at the image and the
manifest by `ipfs://` URI, so wallets and marketplaces show the asset and tools find its credentials.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from agents.storage.cid import RAW, Cid

CLAIM_GENERATOR: Final = "proofmint"
TRAINED_ALGORITHMIC_MEDIA: Final = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
PROVENANCE_LABEL: Final = "org.proofmint.provenance"
#: A prompt longer than this (characters) is refused rather than stored.
MAX_PROMPT_CHARS: Final = 2_000


@dataclass(frozen=True)
class Parent:
    """A parent asset of a derivative, as the manifest names it."""

    cid: Cid
    sha256: bytes
    title: str = "parent.png"


@dataclass(frozen=True)
class HeadInputRecord:
    """The curation head's committed input as the metadata publishes it (`headInput`): the
    integers the circuit reads (the image embedding then the prompt embedding, each value times
    2^input_scale, rounded), whose Poseidon hash with the proven digest is the registered
    commitment. An auditor hashes these exactly and compares them with an embedding recomputed
    from the bytes, which float rounding on another batch, CPU or build may move by a unit."""

    input_scale: int
    values: tuple[int, ...]

    def as_json(self) -> dict[str, Any]:
        return {"inputScale": self.input_scale, "values": list(self.values)}


@dataclass(frozen=True)
class Provenance:
    """Everything the manifest and metadata say about one generated image."""

    image: Cid
    sha256: bytes
    model: str
    model_version: str
    weights_digest: str
    prompt: str
    negative_prompt: str
    seed: int
    parameters: Mapping[str, Any]
    params_digest: bytes
    width: int
    height: int
    curation: Mapping[str, Any] = field(default_factory=dict)
    parents: Sequence[Parent] = ()
    proof: Mapping[str, Any] | None = None
    format: str = "image/png"
    lineage: Mapping[str, Any] | None = None
    """The generation lineage, whose canonical JSON (`canonical_json`) is the parameters document."""
    params_document: Cid | None = None
    """Where that document is stored: sha256 of its bytes is `params_digest`."""

    def __post_init__(self) -> None:
        if len(self.sha256) != 32 or len(self.params_digest) != 32:
            raise ValueError("sha256 and params_digest are 32-byte digests")
        if self.image.digest != self.sha256 and self.image.codec == RAW:
            raise ValueError("a raw-leaf image CID must carry the image's sha256")
        if len(self.prompt) > MAX_PROMPT_CHARS or len(self.negative_prompt) > MAX_PROMPT_CHARS:
            raise ValueError(f"prompts are limited to {MAX_PROMPT_CHARS} characters")


def c2pa_definition(p: Provenance) -> dict[str, Any]:
    """The C2PA manifest definition (unsigned) of a generated image."""
    provenance: dict[str, Any] = {
        "image": str(p.image),
        "sha256": p.sha256.hex(),
        "model": {"name": p.model, "version": p.model_version, "weightsDigest": p.weights_digest},
        "prompt": p.prompt,
        "negativePrompt": p.negative_prompt,
        "seed": p.seed,
        "paramsDigest": p.params_digest.hex(),
        "curation": dict(p.curation),
        "parents": [{"cid": str(parent.cid), "sha256": parent.sha256.hex()} for parent in p.parents],
    }
    if p.proof is not None:
        provenance["proof"] = dict(p.proof)
    provenance.update(_pre_image(p))
    return {
        "claim_generator_info": [{"name": CLAIM_GENERATOR, "version": _version()}],
        "title": f"{p.image}.png",
        "format": p.format,
        "assertions": [
            {
                "label": "c2pa.actions",
                "data": {
                    "actions": [
                        {
                            "action": "c2pa.created",
                            "digitalSourceType": TRAINED_ALGORITHMIC_MEDIA,
                            "softwareAgent": {"name": p.model, "version": p.model_version},
                            "parameters": {
                                "prompt": p.prompt,
                                "negativePrompt": p.negative_prompt,
                                "seed": p.seed,
                                **dict(p.parameters),
                            },
                        }
                    ]
                },
            },
            {"label": PROVENANCE_LABEL, "data": provenance},
        ],
        "ingredients": [
            {"title": parent.title, "format": p.format, "relationship": "parentOf", "instance_id": str(parent.cid)}
            for parent in p.parents
        ],
    }


def erc721_metadata(
    p: Provenance, *, name: str, manifest: Cid | None, head_input: HeadInputRecord | None = None
) -> dict[str, Any]:
    """ERC-721 metadata JSON: the image and its credentials by `ipfs://` URI, the attributes a
    marketplace lists, and the curation head's committed input (`headInput`) when it has one."""
    attributes: list[dict[str, Any]] = [
        {"trait_type": "model", "value": p.model},
        {"trait_type": "model version", "value": p.model_version},
        {"trait_type": "seed", "value": p.seed, "display_type": "number"},
        {"trait_type": "digital source type", "value": "trainedAlgorithmicMedia"},
        {"trait_type": "parents", "value": len(p.parents), "display_type": "number"},
    ]
    if "alignment" in p.curation:
        attributes.append({"trait_type": "prompt alignment", "value": p.curation["alignment"]})
    if p.proof is not None:
        attributes.append({"trait_type": "zk attested", "value": "yes"})
    metadata: dict[str, Any] = {
        "name": name,
        "description": f'"{p.prompt}", generated by {p.model} {p.model_version} (seed {p.seed}).',
        "image": f"ipfs://{p.image}",
        "attributes": attributes,
        "properties": {
            "sha256": p.sha256.hex(),
            "paramsDigest": p.params_digest.hex(),
            "width": p.width,
            "height": p.height,
        },
    }
    if manifest is not None:
        metadata["properties"]["c2paManifest"] = f"ipfs://{manifest}"
    if head_input is not None:
        metadata["properties"]["headInput"] = head_input.as_json()
    metadata["properties"].update(_pre_image(p))
    return metadata


def _pre_image(p: Provenance) -> dict[str, Any]:
    """The lineage and the stored parameters document: what anyone hashes to check paramsDigest."""
    shown: dict[str, Any] = {}
    if p.lineage is not None:
        shown["lineage"] = dict(p.lineage)
    if p.params_document is not None:
        shown["paramsDocument"] = f"ipfs://{p.params_document}"
    return shown


def metadata_name(prompt: str, seed: int, limit: int = 60) -> str:
    """The ERC-721 name: the prompt, cut at a word boundary with an ellipsis past `limit`
    characters, and the seed."""
    if len(prompt) > limit:
        head = prompt[: limit - 1]
        cut = head.rfind(" ")
        prompt = (head[:cut] if cut > 0 else head).rstrip(" ,;:-") + "…"
    return f"{prompt} (seed {seed})"


def canonical_json(document: Mapping[str, Any]) -> bytes:
    """Sorted keys, no spaces, UTF-8: equal documents store as equal bytes (and equal CIDs)."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _version() -> str:
    from agents import __version__

    return str(__version__)
