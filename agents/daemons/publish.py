"""The publisher daemon: `curated` jobs in, `published` out: what a wallet, a marketplace and
a content-credential tool read about the asset, stored by content address beside the image.

For each job: the C2PA manifest definition (`c2pa.created`, `trainedAlgorithmicMedia`, the
parameters, the curation verdict) is signed as a detached sidecar for the image's exact bytes;
the ERC-721 metadata points at the image and the sidecar by `ipfs://` URI; both are stored. The
job also gets the input commitment its registration carries: the Poseidon hash of its head row
(image embedding, then prompt embedding) at the prover circuit's input scale followed by its
proven digest (the top 253 bits of the content digest's keccak256, one field element), which a
later proof must reproduce. Publishing again after a crash makes new signatures (fresh nonce
and time) under new CIDs; nothing is on chain before the registrar, so that costs nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from agents.core import costs
from agents.core.errors import PermanentError
from agents.models.head import payload_row
from agents.runtime import jobs
from agents.runtime.journal import Job
from agents.runtime.stage import Done, Failed, Outcome, Stage
from agents.storage.cid import Cid
from agents.storage.credentials import DevIdentity, SidecarSigner
from agents.storage.manifest import (
    HeadInputRecord,
    Provenance,
    c2pa_definition,
    canonical_json,
    erc721_metadata,
    metadata_name,
)
from agents.storage.store import BlockStore, import_bytes
from agents.storage.unixfs import Emit

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class PublishError(PermanentError, ValueError):
    """The job cannot be published as it is (not a PNG, a derivative without its parents)."""


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk."""
    if len(data) < 24 or not data.startswith(_PNG_SIGNATURE) or data[12:16] != b"IHDR":
        raise PublishError("the stored image is not a PNG")
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


@dataclass(frozen=True)
class ModelInfo:
    """The generating model as the metadata names it."""

    name: str
    version: str


def commitment_of(row: Sequence[float], digest: bytes, input_scale: int) -> int:
    """The input commitment a proof will carry: Poseidon over the head row (image embedding, then
    prompt embedding: `agents.models.head.payload_row`) quantized at `input_scale`, then the proven
    digest of `digest` (`zkml.pipeline.input_commitment`)."""
    from zkml.pipeline import HeadInput, input_commitment

    return input_commitment(HeadInput(row, digest), input_scale)


def head_input(row: Sequence[float], digest: bytes, input_scale: int) -> tuple[HeadInputRecord, int]:
    """The committed head row as the metadata publishes it (the integers the circuit reads) and
    its commitment (`commitment_of` the same row): hashed from the very integers published."""
    from zkml.pipeline import quantized, quantized_commitment

    values = quantized(row, input_scale)
    return HeadInputRecord(input_scale, tuple(values)), quantized_commitment(values, digest)


class PublishStage(Stage):
    name = "publisher"
    origin = jobs.CURATED
    target = jobs.PUBLISHED
    give_up = jobs.FAILED

    def __init__(
        self,
        journal: Any,
        store: BlockStore,
        identity: DevIdentity,
        model: ModelInfo,
        *,
        input_scale: int,
        **options: Any,
    ) -> None:
        super().__init__(journal, **options)
        self.store, self.identity, self.model, self.input_scale = store, identity, model, input_scale
        self.signer = SidecarSigner(identity)

    async def process(self, batch: Sequence[Job]) -> Sequence[Outcome]:
        # one hop to a worker thread for the whole batch: its work is all blocking (store,
        # signing, Poseidon), and a hop per asset cost more in event-loop wake-ups than the hash
        return await asyncio.to_thread(self._publish_batch, list(batch))

    def _publish_batch(self, batch: list[Job]) -> list[Outcome]:
        """Each job's outcome (a job that cannot be published fails alone); the blocks of all of
        them are stored in one store transaction, before any is journaled as published."""
        blocks: list[tuple[Cid, bytes]] = []

        def put(cid: Cid, block: bytes) -> None:
            blocks.append((cid, block))

        images = []
        for job in batch:  # read ahead together (one query on a server store); each still verified
            with contextlib.suppress(PermanentError, KeyError, TypeError):  # the job fails alone below
                images.append(Cid.parse(job.payload["cid"]))
        fetched = self.store.raw_blocks(images)
        outcomes: list[Outcome] = []
        for job in batch:
            try:
                outcomes.append(Done(job.key, self._publish(job, put, fetched)))
            except PermanentError as error:  # this job's own fault (PublishError, HeadError, a bad CID)
                outcomes.append(Failed(job.key, str(error), retryable=False))
        self.store.put_blocks(blocks)
        return outcomes

    def _params_document(self, payload: dict[str, Any], put: Emit) -> Cid:
        """The stored pre-image of the job's paramsDigest (stored again from its lineage for a job
        generated before the generator stored it); PublishError if it does not hash to it."""
        document = canonical_json(payload["lineage"])
        if hashlib.sha256(document).hexdigest() != payload["params_digest"]:
            raise PublishError("the lineage does not hash to the job's paramsDigest (made by an older version)")
        return Cid.parse(payload["params_cid"]) if "params_cid" in payload else import_bytes(document, put)

    def _publish(self, job: Job, put: Emit, fetched: Mapping[bytes, bytes] | None = None) -> dict[str, Any]:
        """The job's sidecar, metadata and input commitment, their blocks handed to `put`
        (blocking: runs in a worker thread); its image's blocks from `fetched` where read ahead."""
        payload = job.payload
        lineage, request = payload["lineage"], payload["request"]
        parents = list(lineage.get("parents") or ())
        if parents and (
            parents != list(payload.get("parents", ())) or len(payload.get("license_ids", ())) != len(parents)
        ):
            raise PublishError("a derivative is registered with a licence of each parent: this job holds none")
        model = payload.get("model") or {}  # an upscale names the upscaler; else the generator's model
        image_cid = Cid.parse(payload["cid"])
        png = self.store.read(image_cid, fetched)
        width, height = png_size(png)
        provenance = Provenance(
            image=image_cid,
            sha256=bytes.fromhex(payload["sha256"]),
            model=str(model.get("name") or self.model.name),
            model_version=f"model version {model['version']}" if model.get("version") else self.model.version,
            weights_digest=lineage["model_digest"],
            prompt=request["prompt"],
            negative_prompt=request["negative_prompt"],
            seed=int(request["seed"]),
            parameters={
                "steps": lineage["steps"],
                "guidance": lineage["guidance"],
                "scheduler": lineage["scheduler"],
                "pipeline": lineage["pipeline"],
            },
            params_digest=bytes.fromhex(payload["params_digest"]),
            width=width,
            height=height,
            curation=payload.get("curation", {}),
            lineage=lineage,
            params_document=self._params_document(payload, put),
        )
        sidecar = self.signer.sign(c2pa_definition(provenance), png)
        manifest_cid = import_bytes(sidecar, put)
        name = metadata_name(request["prompt"], request["seed"])
        published, commitment = head_input(payload_row(payload), bytes.fromhex(payload["sha256"]), self.input_scale)
        metadata = erc721_metadata(provenance, name=name, manifest=manifest_cid, head_input=published)
        metadata_json = canonical_json(metadata)
        metadata_cid = import_bytes(metadata_json, put)
        return {
            "manifest_cid": str(manifest_cid),
            "metadata_cid": str(metadata_cid),
            "metadata_uri": f"ipfs://{metadata_cid}",
            "commitment": f"{commitment:064x}",
            "width": width,
            "height": height,
            costs.PUBLISH: costs.stored(len(sidecar) + len(metadata_json)),
        }
