"""What an auditor checks about one registered asset, from public data only: the chain (any
RPC), the content (a local store, CAR files, an HTTP gateway) and the shipped public models.
`proofmint verify` (`agents.app.verify_cli`) prints it; the tests run it in process.

An audit, step by step:
1. The target is resolved to a content digest: a digest as given; a raw-leaf CIDv1 by its
   multihash, which is the sha256 of the bytes; any other CID by the sha256 of the bytes a source
   serves for it. The registry must hold the digest (`exists`), else `AuditError`.
2. The record (`getAsset`) and the token URI (`tokenURI`) are read, the metadata the URI names
   is fetched, then the image: the target CID, else the metadata's `image`. What a source serves
   is taken as it is, unchecked, so a tampered copy is judged by the facts below (which say what
   differs) rather than refused.
3. Each fact of `FACTS` is checked, in that order, and recorded as ok, fail or skipped with why:
   - `digest`: sha256 of the bytes is the registered content digest;
   - `cid`: the bytes are what the image CID names, their CIDv1 (raw leaves) names that digest,
     and it is the metadata's image;
   - `metadata`: the token URI is ipfs://CID of JSON whose sha256 and paramsDigest are the
     record's;
   - `lineage`: the parameters document (metadata `properties.paramsDocument`) hashes to the
     record's paramsDigest and names the record's model version and its registered weights;
   - `commitment`: the head row recomputed with the public CLIP (the image's embedding, then the
     text embedding of the prompt the verified parameters document names), quantised at the
     circuit's input scale, is the row the metadata publishes (`headInput`: the integers the
     circuit read), a value lying within float rounding of a rounding step either way
     (`ROUNDING_SLACK`), and those
     integers hashed with the proven digest (Poseidon) give the record's input binding
     (`zkml.evm.input_binding`); metadata without `headInput` (published before it) must give the
     binding from the recomputed row itself;
   - `attestation`: a model version attested the asset (`attestationOf`, every version asked),
     with the score and the verdict the contract derived from it and the version's bands;
   - `proof`: the proof in the attesting transaction's calldata (found from `InferenceAttested`
     events whose seqs hold the asset's, or given as `proof_tx`) names this asset (its proven
     digest and commitment at the asset's position) and verifies again: with ezkl against the
     verifying key whose digest `ModelRegistry.verifierOf` pins, when that circuit is at hand
     locally (`circuits`), and always by the bound verifier's `verifyProof` through eth_call,
     once its code is checked to be the pinned code (so any RPC suffices);
   - `c2pa`: the C2PA sidecar (metadata `properties.c2paManifest`) validates and its hard binding
     covers these exact bytes;
   - `regeneration`: where the lineage is a CPU generation by the model at `t2i` (its weights
     digest is the lineage's), re-generating from the lineage gives the same bytes.
   A fact that cannot apply (no attestation yet, no sidecar, another model) is skipped with why.
4. The report is ok when no fact failed and, with `strict`, none was skipped.

Sources are asked in order (CAR files, the gateway, the store): the first that has a CID serves
it, and a copy that does not hash to its CID is reported, never replaced by another source's.
Slow steps (loading CLIP, ezkl, re-generating) report progress through `progress`.

Limits: the audit trusts the RPC it is given (a lying node can make any record look right). The
embedding is not exact across computations: the curator embeds a batch, the audit one image, and
float rounding (another batch size, CPU or torch build: about 1e-7 here) carries a value that lies
within it of a quantisation step to the next integer, in 2 rows of 512 between batches of 32 and
single images on one machine. Hence the published row, hashed exactly, and a comparison that lets
only such values round either way; only metadata without `headInput` relies on an exact
recomputation.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import io
import json
import string
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Final, Protocol, TypeVar

from agents.core.errors import PermanentError
from agents.models.head import VERDICTS
from agents.storage.car import read_car
from agents.storage.cid import RAW, Cid, CidError
from agents.storage.store import BlockStore
from agents.storage.unixfs import Importer, decode_file_node

T = TypeVar("T")
Progress = Callable[[str], None]

REGISTRY: Final = "ProvenanceRegistry"
MODELS: Final = "ModelRegistry"
#: The facts of an audit, in the order they are checked and printed, with what each says.
FACTS: Final = {
    "digest": "sha256 of the image bytes is the registered content digest",
    "cid": "the image CID names these bytes; their CIDv1 (raw leaves) names the digest",
    "metadata": "the token URI is ipfs://CID of metadata naming this digest and paramsDigest",
    "lineage": "the parameters document hashes to paramsDigest and names the registered model",
    "commitment": "the image's and prompt's CLIP embeddings give the registered input commitment",
    "attestation": "a model version attested this asset",
    "proof": "the attesting proof names this asset and verifies again",
    "c2pa": "the C2PA sidecar validates and binds these bytes",
    "regeneration": "re-generating from the lineage gives the same bytes",
}
#: A file larger than this is not fetched from a gateway (the agents' images are kilobytes).
MAX_FILE: Final = 64 << 20
GATEWAY_TIMEOUT_S: Final = 60.0
#: Keys of a generator's lineage (`agents.models.generator.Lineage`): a parameters document
#: with all of them can be re-generated.
LINEAGE_KEYS: Final = frozenset(
    {"model_id", "model_digest", "prompt", "negative_prompt", "seed", "steps", "guidance", "height", "width"}
    | {"parents", "device", "dtype", "batch", "adapters", "pipeline", "scheduler"}
)
_VERIFY_PROOF: Final = "verifyProof(bytes,uint256[])"


class AuditError(PermanentError, ValueError):
    """The audit cannot run as asked (a target that is no digest or CID, an asset the registry
    does not hold, content none of the sources has); the message says what to pass instead."""


class Status(StrEnum):
    OK = "ok"
    FAIL = "fail"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class Fact:
    """One checked fact: its name (a key of `FACTS`), status and why, in one line."""

    name: str
    status: Status
    detail: str

    def as_json(self) -> dict[str, str]:
        return {"name": self.name, "status": self.status.value, "detail": self.detail}


@dataclass
class Report:
    """An audit's outcome: which asset, where, and its facts in `FACTS` order."""

    target: str
    digest: bytes
    chain_id: int
    registry: str
    asset: dict[str, Any]
    facts: list[Fact] = field(default_factory=list)

    def fact(self, name: str) -> Fact:
        return next(f for f in self.facts if f.name == name)

    def failed(self, *, strict: bool = False) -> list[Fact]:
        """The facts that fail the audit: failed ones, and skipped ones too when `strict`."""
        bad = {Status.FAIL, Status.SKIPPED} if strict else {Status.FAIL}
        return [f for f in self.facts if f.status in bad]

    def ok(self, *, strict: bool = False) -> bool:
        return not self.failed(strict=strict)

    def as_json(self, *, strict: bool = False) -> dict[str, Any]:
        return {
            "target": self.target,
            "digest": "0x" + self.digest.hex(),
            "chainId": self.chain_id,
            "registry": self.registry,
            "asset": self.asset,
            "strict": strict,
            "ok": self.ok(strict=strict),
            "failed": [f.name for f in self.failed(strict=strict)],
            "facts": [f.as_json() for f in self.facts],
        }


def parse_target(text: str) -> bytes | Cid:
    """A content digest (0x and 64 hex digits, or the 64 digits alone) or a CID; AuditError
    for anything else."""
    bare = text.strip()
    digits = bare[2:] if bare[:2] in ("0x", "0X") else bare
    if len(digits) == 64 and all(c in string.hexdigits for c in digits):
        return bytes.fromhex(digits)
    try:
        return Cid.parse(bare)
    except CidError as err:
        shown = bare if len(bare) <= 80 else bare[:79] + "…"
        raise AuditError(
            f"{shown!r} is neither a content digest (0x and 64 hex digits) nor a CID ({err}); give the asset's "
            "digest or the CID of its image"
        ) from None


# ---------------------------------------------------------------------------------- content


def cid_of(data: bytes, version: int = 1) -> Cid:
    """The CID `proofmint store add` (and `ipfs add`, CIDv1 with raw leaves or CIDv0) gives."""
    return Importer(cid_version=version).add(io.BytesIO(data)).cid


def names(cid: Cid, data: bytes) -> bool:
    """Whether `data` is the file `cid` names: a raw block by its sha256, a UnixFS DAG by adding
    the bytes again with the layout of the CID's version (256 KiB chunks, as Kubo's defaults)."""
    if cid.codec == RAW:
        return hashlib.sha256(data).digest() == cid.digest
    return cid_of(data, cid.version) == cid


class Source(Protocol):
    """Where files come from, by CID, as served (not checked: see `names`)."""

    label: str

    async def file(self, cid: Cid) -> bytes | None:
        """The file `cid` names as this source has it; None when it has no block for `cid`."""
        ...


def assemble(root: Cid, block: Callable[[Cid], bytes | None]) -> bytes | None:
    """A UnixFS file from its blocks as they are (`block(cid)`, None when missing): None when the
    root is missing; AuditError when a block under it is missing or is no UnixFS node."""
    out = bytearray()
    stack = [root]
    while stack:
        cid = stack.pop()
        data = block(cid)
        if data is None:
            if cid == root:
                return None
            raise AuditError(f"block {cid} of {root} is missing: the source holds part of the file only")
        if cid.codec == RAW:
            out += data
            continue
        try:
            node = decode_file_node(data)
        except CidError as err:
            raise AuditError(f"block {cid} of {root} is not a UnixFS file node ({err}): damaged") from None
        out += node.data
        stack.extend(link for link, _ in reversed(node.links))
    return bytes(out)


class StoreSource:
    """A block store (`agents.storage.store`: a folder, or PostgreSQL), its blocks read as they lie
    (`BlockStore.raw_block`), so a damaged or tampered block reaches the facts instead of
    stopping the audit."""

    def __init__(self, store: BlockStore) -> None:
        self.store = store
        self.label = f"store {store.location}"

    async def file(self, cid: Cid) -> bytes | None:
        return await asyncio.to_thread(assemble, cid, self.store.raw_block)


def car_blocks(data: bytes) -> dict[bytes, bytes]:
    """The blocks of a CAR v1 by their CID's digest, as they are (`read_car` unchecked);
    AuditError when the file is not a CAR v1."""
    try:
        _, blocks = read_car(data, check=False)
    except (CidError, IndexError) as err:
        raise AuditError(f"not a CAR v1 file: {err}") from None
    return {cid.digest: block for cid, block in blocks}


class CarSource:
    """A CAR file's blocks (read once)."""

    def __init__(self, path: Path) -> None:
        self.label = f"CAR {path}"
        try:
            self._blocks = car_blocks(path.read_bytes())
        except OSError as err:
            raise AuditError(f"cannot read the CAR file {path}: {err.strerror or err}") from None
        except AuditError as err:
            raise AuditError(f"{path}: {err}") from None

    async def file(self, cid: Cid) -> bytes | None:
        return assemble(cid, lambda c: self._blocks.get(c.digest))


class GatewaySource:
    """An HTTP gateway: GET <url>/ipfs/<CID> returns the file (any IPFS gateway; not trusted:
    what it answers is checked against the CID like every source's)."""

    def __init__(self, url: str, session: Any) -> None:
        self.url = url.rstrip("/")
        self.label = f"gateway {self.url}"
        self._session = session

    async def file(self, cid: Cid) -> bytes | None:
        import aiohttp

        address = f"{self.url}/ipfs/{cid}"
        try:
            timeout = aiohttp.ClientTimeout(total=GATEWAY_TIMEOUT_S)
            async with self._session.get(address, timeout=timeout) as answer:
                if answer.status in (404, 410):
                    return None
                if answer.status != 200:
                    raise AuditError(f"the gateway answered HTTP {answer.status} for {address}")
                data = bytearray()
                async for chunk in answer.content.iter_chunked(1 << 16):
                    data += chunk
                    if len(data) > MAX_FILE:
                        raise AuditError(f"{address} is larger than {MAX_FILE >> 20} MiB: not an asset of this kind")
                return bytes(data)
        except (aiohttp.ClientError, TimeoutError) as err:
            raise AuditError(f"cannot fetch {address}: {err or type(err).__name__}; check --gateway") from None


@dataclass(frozen=True)
class Fetched:
    data: bytes
    source: str
    intact: bool
    """Whether the bytes are the file the CID names (`names`)."""


class Sources:
    """Sources asked in order: the first that has a CID serves it."""

    def __init__(self, sources: Sequence[Source]) -> None:
        self.sources = list(sources)

    def describe(self) -> str:
        return ", ".join(s.label for s in self.sources) or "no source"

    async def fetch(self, cid: Cid) -> Fetched | None:
        for source in self.sources:
            data = await source.file(cid)
            if data is not None:
                return Fetched(data, source.label, await asyncio.to_thread(names, cid, data))
        return None


def ipfs_cid(uri: object) -> Cid | None:
    """The CID of an ipfs://CID URI; None for anything else."""
    if not isinstance(uri, str) or not uri.startswith("ipfs://"):
        return None
    try:
        return Cid.parse(uri.removeprefix("ipfs://").split("/", 1)[0])
    except CidError:
        return None


# ---------------------------------------------------------------------------------- chain


class ChainView:
    """The contracts an audit reads, through any web3: a node behind a URL, or the embedded
    chain (whose calls all go through its one node thread, `agents.runtime.inprocess`)."""

    def __init__(
        self, web3: Any, addresses: Mapping[str, str], abis: Mapping[str, list[dict[str, Any]]], from_block: int = 0
    ) -> None:
        from agents.runtime.inprocess import node_executor

        self.web3 = web3
        self.registry = web3.eth.contract(address=web3.to_checksum_address(addresses[REGISTRY]), abi=abis[REGISTRY])
        self.models = web3.eth.contract(address=web3.to_checksum_address(addresses[MODELS]), abi=abis[MODELS])
        self.from_block = from_block
        self._executor = node_executor(web3)

    async def run(self, function: Callable[..., T], *args: Any) -> T:
        """A blocking node call, off the event loop (on the node thread of an embedded chain)."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, functools.partial(function, *args))

    async def call(self, contract: Any, name: str, *args: Any) -> Any:
        return await self.run(contract.get_function_by_name(name)(*args).call)


# ---------------------------------------------------------------------------------- options


@dataclass(frozen=True)
class AuditOptions:
    """What an audit uses besides the chain and the content."""

    clip: str
    """The public CLIP the commitment is recomputed with (an open_clip name: local-dir:FOLDER)."""
    t2i: Path
    """The model folder re-generation uses when its weights digest is the lineage's."""
    circuits: Path
    """Where local circuits are looked for (a folder of `zkml.pipeline` circuit folders)."""
    input_scale: int
    """The circuit's input scale (the commitment quantises the embedding at 2^-input_scale)."""
    trust_anchors: bytes | None = None
    """PEM CA certificates the C2PA signer must chain to (None: any signer, reported untrusted)."""
    proof_tx: bytes | None = None
    """Check this transaction's proof instead of the ones the events name."""


def _hex(value: bytes) -> str:
    return "0x" + bytes(value).hex()


def _short(value: bytes | str, keep: int = 10) -> str:
    text = value if isinstance(value, str) else _hex(value)
    return text if len(text) <= keep + 6 else f"{text[:keep]}…{text[-4:]}"


def _size(data: bytes) -> str:
    return f"{len(data):,} bytes"


async def audit(
    chain: ChainView,
    target: str,
    sources: Sources,
    options: AuditOptions,
    progress: Progress | None = None,
) -> Report:
    """Audits the asset `target` names (see the module docstring). AuditError when it cannot
    run: no such asset, or no image to check (not in the sources, or a digest whose metadata is
    missing or names none)."""
    tell = progress or (lambda _: None)
    parsed = parse_target(target)
    image_cid: Cid | None = None
    fetched: Fetched | None = None
    if isinstance(parsed, bytes):
        digest = parsed
    else:
        image_cid = parsed
        if parsed.codec == RAW:
            digest = parsed.digest
        else:
            fetched = await sources.fetch(parsed)
            if fetched is None:
                raise AuditError(f"{parsed} is in none of the sources ({sources.describe()}); {_WHERE}")
            digest = hashlib.sha256(fetched.data).digest()
    if not await chain.call(chain.registry, "exists", digest):
        raise AuditError(
            f"no asset {_hex(digest)} is registered in {REGISTRY} {chain.registry.address}"
            + ("" if isinstance(parsed, bytes) else f" (the sha256 of what {parsed} names)")
            + ": check the digest or CID, and that --rpc and --deployment are the asset's chain"
        )
    record = await chain.call(chain.registry, "getAsset", digest)
    creator, model_id, depth, parent_count, seq, params_digest, binding = record
    asset = {
        "seq": int(seq),
        "creator": str(creator),
        "modelId": int(model_id),
        "depth": int(depth),
        "parents": int(parent_count),
        "paramsDigest": _hex(params_digest),
        "inputBinding": _hex(binding),
    }
    chain_id = int(await chain.run(lambda: chain.web3.eth.chain_id))
    report = Report(target, digest, chain_id, str(chain.registry.address), asset)
    run = _Audit(chain, sources, options, tell, digest, asset)
    uri = str(await chain.call(chain.registry, "tokenURI", int.from_bytes(digest, "big")))
    asset["tokenURI"] = uri
    metadata_fact = await run.metadata(uri)
    if image_cid is None:
        image_cid = ipfs_cid(run.metadata_json.get("image"))
        if image_cid is None:
            why = metadata_fact.detail if metadata_fact.status is Status.FAIL else f"{uri} names no ipfs:// image"
            raise AuditError(f"no image to check: {why}; give the image's CID as the target, or {_WHERE}")
    if fetched is None:
        fetched = await sources.fetch(image_cid)
        if fetched is None:
            raise AuditError(f"the image {image_cid} is in none of the sources ({sources.describe()}); {_WHERE}")
    asset["image"] = str(image_cid)
    run.image, run.image_cid = fetched, image_cid
    report.facts += [run.digest_fact(), run.cid_fact(), metadata_fact]
    report.facts.append(await run.lineage())
    report.facts.append(await run.commitment())
    report.facts.append(await run.attestation())
    report.facts.append(await run.proof())
    report.facts.append(await run.c2pa())
    report.facts.append(await run.regeneration())
    return report


_WHERE = "pass --store, --car or --gateway with the asset's files"


class _Audit:
    """One audit's state: what the facts fetched and found, for the facts after them."""

    def __init__(
        self,
        chain: ChainView,
        sources: Sources,
        options: AuditOptions,
        progress: Progress,
        digest: bytes,
        asset: dict[str, Any],
    ) -> None:
        self.chain, self.sources, self.options, self.progress = chain, sources, options, progress
        self.digest, self.asset = digest, asset
        self.metadata_json: dict[str, Any] = {}
        self.image: Fetched | None = None
        self.image_cid: Cid | None = None
        self.document: dict[str, Any] | None = None
        self.commitment_value: int | None = None
        self.attested: dict[int, int] = {}
        self.verdicts: dict[int, str] = {}

    def metadata_property(self, key: str) -> Any:
        """The metadata's `properties.<key>` (None when it has none)."""
        properties = self.metadata_json.get("properties")
        return properties.get(key) if isinstance(properties, dict) else None

    @property
    def png(self) -> bytes:
        assert self.image is not None
        return self.image.data

    # -- digest, cid, metadata ----------------------------------------------------------------

    def digest_fact(self) -> Fact:
        assert self.image is not None
        actual = hashlib.sha256(self.png).digest()
        if actual == self.digest:
            return Fact(
                "digest", Status.OK, f"sha256 of the {_size(self.png)} from {self.image.source} is {_hex(actual)}"
            )
        return Fact(
            "digest",
            Status.FAIL,
            f"sha256 of the {_size(self.png)} {self.image.source} serves for {self.image_cid} is {_hex(actual)}, "
            f"not the registered {_hex(self.digest)}: the bytes were altered",
        )

    def cid_fact(self) -> Fact:
        assert self.image is not None and self.image_cid is not None
        v1 = cid_of(self.png, 1)
        if not self.image.intact:
            return Fact(
                "cid",
                Status.FAIL,
                f"the {_size(self.png)} {self.image.source} serves for {self.image_cid} do not hash to it "
                f"(their CIDv1 is {v1})",
            )
        problems = []
        if v1.codec == RAW and v1.digest != self.digest:
            problems.append(f"their CIDv1 {v1} names the digest {_hex(v1.digest)}, not the registered one")
        named = ipfs_cid(self.metadata_json.get("image"))
        if named is not None and named != v1:
            problems.append(f"the metadata's image is {named}, not their CIDv1 {v1}")
        if problems:
            return Fact("cid", Status.FAIL, "; ".join(problems))
        said = f"{v1} is the bytes' CIDv1" + (" and the metadata's image" if named is not None else "")
        if self.image_cid != v1:
            said = f"{self.image_cid} names these bytes; {said}"
        how = "its multihash is the registered digest" if v1.codec == RAW else "a UnixFS DAG of the bytes"
        return Fact("cid", Status.OK, f"{said} ({how})")

    async def metadata(self, uri: str) -> Fact:
        """Fetches the metadata the token URI names and checks that it names this asset."""
        cid = ipfs_cid(uri)
        if cid is None:
            return Fact(
                "metadata", Status.FAIL, f"the token URI {uri!r} is not ipfs://CID: its content cannot be checked"
            )
        fetched = await self.sources.fetch(cid)
        if fetched is None:
            return Fact(
                "metadata", Status.FAIL, f"the metadata {cid} is in none of the sources ({self.sources.describe()})"
            )
        if not fetched.intact:
            return Fact("metadata", Status.FAIL, f"the bytes {fetched.source} serves for {cid} do not hash to it")
        try:
            loaded = json.loads(fetched.data)
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            return Fact("metadata", Status.FAIL, f"{cid} is not JSON ({err})")
        if not isinstance(loaded, dict):
            return Fact("metadata", Status.FAIL, f"{cid} is not a JSON object")
        self.metadata_json = loaded
        problems = []
        sha = str(self.metadata_property("sha256") or "").lower().removeprefix("0x")
        if sha != self.digest.hex():
            problems.append(f"its properties.sha256 is {sha or 'missing'}, not the token's digest")
        params = str(self.metadata_property("paramsDigest") or "").lower().removeprefix("0x")
        if params and params != self.asset["paramsDigest"][2:]:
            problems.append(f"its properties.paramsDigest {params} is not the record's {self.asset['paramsDigest']}")
        if problems:
            return Fact("metadata", Status.FAIL, f"{uri}: " + "; ".join(problems))
        return Fact("metadata", Status.OK, f"{uri} ({_size(fetched.data)} from {fetched.source}) names this digest")

    # -- lineage --------------------------------------------------------------------------------

    async def lineage(self) -> Fact:
        uri = self.metadata_property("paramsDocument")
        cid = ipfs_cid(uri)
        if cid is None:
            return Fact(
                "lineage",
                Status.SKIPPED,
                "the metadata names no parameters document (properties.paramsDocument): paramsDigest cannot be "
                "recomputed from public data",
            )
        fetched = await self.sources.fetch(cid)
        if fetched is None:
            return Fact("lineage", Status.FAIL, f"the parameters document {cid} is in none of the sources")
        if not fetched.intact:
            return Fact("lineage", Status.FAIL, f"the bytes {fetched.source} serves for {cid} do not hash to it")
        actual = hashlib.sha256(fetched.data).digest()
        if _hex(actual) != self.asset["paramsDigest"]:
            return Fact(
                "lineage",
                Status.FAIL,
                f"sha256 of the parameters document {cid} is {_hex(actual)}, not the registered paramsDigest "
                f"{self.asset['paramsDigest']}",
            )
        try:
            document = json.loads(fetched.data)
        except (UnicodeDecodeError, json.JSONDecodeError):
            document = None
        said = f"sha256 of the parameters document {cid} ({_size(fetched.data)}) is paramsDigest"
        if not isinstance(document, dict):
            return Fact("lineage", Status.OK, f"{said} (not JSON: nothing more to compare)")
        self.document = document
        problems = []
        named_image = str(document.get("sha256", "")).lower().removeprefix("0x")
        if named_image and named_image != self.digest.hex():
            problems.append(f"it names the image 0x{named_image}, not this digest")
        named_model = document.get("model_id", document.get("modelId"))
        if named_model is not None and named_model != self.asset["modelId"]:
            problems.append(f"it names model version {named_model}, the record {self.asset['modelId']}")
        weights = document.get("model_digest")
        if isinstance(weights, str) and named_model == self.asset["modelId"]:
            model = await self.chain.call(self.chain.models, "getModel", self.asset["modelId"])
            registered = bytes(model[1]).hex()
            if weights.lower().removeprefix("0x") != registered:
                problems.append(f"its weights digest {weights} is not model version {named_model}'s 0x{registered}")
        shown = self.metadata_property("lineage")
        if shown is not None and shown != document:
            problems.append("the metadata's properties.lineage is not the document")
        if problems:
            return Fact("lineage", Status.FAIL, f"{said}, but " + "; ".join(problems))
        names_model = f"; it names model version {named_model}" if named_model is not None else ""
        if isinstance(weights, str):
            names_model += (
                f" and its registered weights {_short(weights if weights.startswith('0x') else '0x' + weights)}"
            )
        return Fact("lineage", Status.OK, said + names_model)

    # -- commitment -----------------------------------------------------------------------------

    async def commitment(self) -> Fact:
        from zkml.evm import input_binding

        if self.asset["inputBinding"] == _hex(bytes(32)):
            return Fact("commitment", Status.SKIPPED, "the asset was registered without an input commitment")
        prompt = self.document.get("prompt") if self.document is not None else None
        if not isinstance(prompt, str):
            return Fact(
                "commitment",
                Status.FAIL,
                "the input commits to the prompt's embedding too, and no parameters document hashing to paramsDigest "
                "names the prompt",
            )
        self.progress(f"recomputing the image and prompt embeddings with CLIP {self.options.clip}")
        try:
            embedding = await asyncio.to_thread(_embed, self.options.clip, self.png, prompt)
        except PermanentError as err:
            return Fact("commitment", Status.FAIL, f"no embedding of these bytes: {err}")
        published = self.metadata_property("headInput")
        if published is not None:
            return await self._published_commitment(published, embedding)
        value = await asyncio.to_thread(_commitment, embedding, self.digest, self.options.input_scale)
        self.commitment_value = value
        if _hex(input_binding(self.digest, value)) == self.asset["inputBinding"]:
            return Fact(
                "commitment",
                Status.OK,
                f"Poseidon of the {len(embedding)}-value head row (image, then prompt embedding) at "
                f"2^-{self.options.input_scale} and the proven digest is 0x{value:064x}, whose binding with the "
                "digest is the record's",
            )
        return Fact(
            "commitment",
            Status.FAIL,
            f"the embedding of these bytes commits to 0x{value:064x}, whose binding is not the record's input binding "
            f"{self.asset['inputBinding']}: the registered commitment is of another input",
        )

    async def _published_commitment(self, published: object, embedding: Sequence[float]) -> Fact:
        """The commitment fact from the metadata's `headInput`: those integers hash exactly to the
        record's binding, and each is a rounding of the embedding recomputed from these bytes (to
        within `ROUNDING_SLACK`: float rounding in another batch or build)."""
        from zkml.evm import input_binding

        scale = self.options.input_scale
        try:
            checked = await asyncio.to_thread(published_head_input, published, embedding, scale, self.digest)
        except AuditError as err:
            return Fact("commitment", Status.FAIL, str(err))
        self.commitment_value = checked.commitment
        if _hex(input_binding(self.digest, checked.commitment)) != self.asset["inputBinding"]:
            return Fact(
                "commitment",
                Status.FAIL,
                f"the metadata's head input commits to 0x{checked.commitment:064x}, whose binding is not the record's "
                f"input binding {self.asset['inputBinding']}: the registered commitment is of another input",
            )
        moved = f" ({checked.moved} rounded the other way: within float rounding of a step)" if checked.moved else ""
        return Fact(
            "commitment",
            Status.OK,
            f"the metadata's {len(embedding)}-value head row at 2^-{scale} is the image's and prompt's embedding "
            f"recomputed from these bytes{moved}, and with the proven digest hashes (Poseidon) to "
            f"0x{checked.commitment:064x}, whose binding with the digest is the record's",
        )

    # -- attestation and proof ------------------------------------------------------------------

    async def attestation(self) -> Fact:
        count = int(await self.chain.call(self.chain.models, "modelCount"))
        for model_id in range(1, count + 1):
            attested, score, verdict = await self.chain.call(
                self.chain.registry, "attestationOf", self.digest, model_id
            )
            if attested:
                self.attested[model_id] = int(score)
                self.verdicts[model_id] = VERDICTS[int(verdict)] if int(verdict) < len(VERDICTS) else str(verdict)
        if not self.attested:
            return Fact(
                "attestation", Status.SKIPPED, f"none of the {count} model versions has attested this asset yet"
            )
        who: dict[int, str] = {}
        for model_id in sorted(self.attested):
            model = await self.chain.call(self.chain.models, "getModel", model_id)
            accept_at, review_at = await self.chain.call(self.chain.models, "bandsOf", model_id)
            who[model_id] = f"developer {model[0]}, bands accept >= {int(accept_at):,}, reject < {int(review_at):,}"
        self.asset["attestations"] = {
            str(m): {"score": s, "verdict": self.verdicts[m]} for m, s in sorted(self.attested.items())
        }
        shown = "; ".join(
            f"{m} (score {s:,} = {s / 2**self.options.input_scale:+.4f}, verdict {self.verdicts[m]}; {who[m]})"
            for m, s in sorted(self.attested.items())
        )
        if len(set(self.verdicts.values())) > 1:
            # Anyone may register a version of the same weights and bind a copy of its verifier
            # with bands of their own, then replay a genuine proof under it: the score is the
            # proven one, the verdict is theirs. Versions that disagree are not an answer.
            return Fact(
                "attestation",
                Status.FAIL,
                f"model versions disagree on this asset: {shown}. Anyone can bind a verifier with bands of their own "
                "and replay a proof under it: trust the version whose developer you know",
            )
        return Fact("attestation", Status.OK, f"attested by model version {shown}")

    async def proof(self) -> Fact:
        if self.options.proof_tx is not None:
            txs = [self.options.proof_tx]
        elif not self.attested:
            return Fact("proof", Status.SKIPPED, "no attestation, so no proof to verify")
        else:
            txs = []
            for model_id in sorted(self.attested):
                found = await self._attesting_txs(model_id)
                if not found:
                    return Fact(
                        "proof",
                        Status.FAIL,
                        f"model version {model_id} attested the asset, but no InferenceAttested event from block "
                        f"{self.chain.from_block} names #{self.asset['seq']}: pass --from-block or --proof-tx",
                    )
                txs += found
        details = []
        self.asset["proofTxs"] = [_hex(tx) for tx in txs]
        for tx in txs:
            ok, detail = await self._check_tx(tx)
            if not ok:
                return Fact("proof", Status.FAIL, detail)
            details.append(detail)
        return Fact("proof", Status.OK, "; ".join(details))

    async def _attesting_txs(self, model_id: int) -> list[bytes]:
        event = self.chain.registry.events.InferenceAttested()

        def fetch() -> list[Any]:
            return list(event.get_logs(from_block=self.chain.from_block, argument_filters={"modelId": model_id}))

        try:
            logs = await self.chain.run(fetch)
        except Exception as err:  # a node that refuses the range (public RPCs cap it)
            raise AuditError(
                f"the node would not list InferenceAttested events from block {self.chain.from_block} ({err}); "
                "pass --from-block (the asset's registration block) or --proof-tx"
            ) from None
        return [bytes(log["transactionHash"]) for log in logs if self.asset["seq"] in list(log["args"]["seqs"])]

    async def _check_tx(self, tx_hash: bytes) -> tuple[bool, str]:
        from web3.exceptions import TransactionNotFound

        from zkml.evm import decode_signed, input_binding, proven_digest

        shown = _short(tx_hash)
        try:
            tx = await self.chain.run(self.chain.web3.eth.get_transaction, tx_hash)
            receipt = await self.chain.run(self.chain.web3.eth.get_transaction_receipt, tx_hash)
        except TransactionNotFound:
            return False, f"no transaction {_hex(tx_hash)} on this chain"
        if str(tx.get("to") or "").lower() != str(self.chain.registry.address).lower():
            return False, f"tx {shown} calls {tx.get('to')}, not {REGISTRY}: its proof is not in its calldata"
        try:
            function, args = self.chain.registry.decode_function_input(tx["input"])
        except ValueError:
            return False, f"tx {shown} is not a call of a {REGISTRY} function"
        if function.fn_name != "attestInference":
            return False, f"tx {shown} calls {function.fn_name}, not attestInference"
        if int(receipt["status"]) != 1:
            return False, f"tx {shown} reverted: it attested nothing"
        model_id, seqs, proof, instances = (
            int(args["modelId"]),
            list(args["seqs"]),
            bytes(args["proof"]),
            list(args["instances"]),
        )
        n = len(seqs)
        mine = proven_digest(self.digest)
        at = [i for i, s in enumerate(seqs) if s == self.asset["seq"]]
        if not at or len(instances) != 3 * n or instances[2 * n + at[0]] != mine:
            proven = ", ".join(_short(f"0x{v:064x}") for v in instances[2 * n :]) or "none"
            return False, (
                f"tx {shown} (model version {model_id}) proves seqs {seqs} with proven digests [{proven}]; this asset "
                f"is #{self.asset['seq']} with proven digest {_short(f'0x{mine:064x}')}: a proof of another asset"
            )
        i = at[0]
        if _hex(input_binding(self.digest, instances[i])) != self.asset["inputBinding"]:
            return False, f"tx {shown}: the proven commitment 0x{instances[i]:064x} is not the record's input"
        if self.commitment_value is not None and instances[i] != self.commitment_value:
            return False, f"tx {shown}: the proven commitment is not the one recomputed from these bytes"
        score = decode_signed(instances[n + i])
        if model_id not in self.attested:
            return False, f"tx {shown}: model version {model_id} has no attestation of this asset on chain"
        if self.attested[model_id] != score:
            return False, f"tx {shown}: the proven score {score} is not the attested {self.attested[model_id]}"
        verdicts = await self._verify(model_id, proof, instances)
        failed = [v for ok, v in verdicts if ok is False]
        said = "; ".join(v for _, v in verdicts)
        if failed:
            return False, f"tx {shown} (model version {model_id}): the proof does not verify: {said}"
        if not any(ok for ok, _ in verdicts):
            return False, f"tx {shown}: the proof could not be verified: {said}"
        where = f"position {i + 1} of {n}" if n > 1 else "its one asset"
        return True, f"tx {shown} attestInference(model {model_id}): {where} is this asset, score {score:,}; {said}"

    async def _verify(self, model_id: int, proof: bytes, instances: list[int]) -> list[tuple[bool | None, str]]:
        """(verified, what was done) by ezkl and on chain; None where a way could not be used."""
        from eth_utils.crypto import keccak

        verifier, vk_digest, code_hash = await self.chain.call(self.chain.models, "verifierOf", model_id)
        results: list[tuple[bool | None, str]] = []
        circuit = await asyncio.to_thread(local_circuit, self.options.circuits, bytes(vk_digest))
        if circuit is None:
            results.append((None, f"ezkl: no circuit with vk {_short(bytes(vk_digest))} under {self.options.circuits}"))
        else:
            self.progress(f"verifying the proof with ezkl ({circuit})")
            ok = await asyncio.to_thread(ezkl_verify, circuit, proof, instances)
            results.append((ok, f"ezkl.verify with vk {_short(bytes(vk_digest))}: {'ok' if ok else 'REJECTED'}"))
        if int(verifier, 16) == 0:
            results.append((False, f"model version {model_id} has no verifier bound"))
            return results
        code = bytes(await self.chain.run(self.chain.web3.eth.get_code, verifier))
        if keccak(code) != bytes(code_hash):
            results.append((False, f"the code at verifier {verifier} is not the code pinned when it was bound"))
            return results
        ok = await self.chain.run(verifier_accepts, self.chain.web3, verifier, proof, instances)
        results.append((ok, f"verifier {_short(verifier)}.verifyProof (eth_call): {'true' if ok else 'REJECTED'}"))
        return results

    # -- c2pa -----------------------------------------------------------------------------------

    async def c2pa(self) -> Fact:
        from agents.storage.credentials import CredentialError, active_manifest, read_sidecar
        from agents.storage.manifest import PROVENANCE_LABEL

        cid = ipfs_cid(self.metadata_property("c2paManifest"))
        if cid is None:
            return Fact("c2pa", Status.SKIPPED, "the metadata names no C2PA sidecar (properties.c2paManifest)")
        fetched = await self.sources.fetch(cid)
        if fetched is None:
            return Fact("c2pa", Status.FAIL, f"the sidecar {cid} is in none of the sources")
        if not fetched.intact:
            return Fact("c2pa", Status.FAIL, f"the bytes {fetched.source} serves for {cid} do not hash to it")
        try:
            report = await asyncio.to_thread(
                read_sidecar, self.png, fetched.data, trust_anchors=self.options.trust_anchors
            )
        except CredentialError as err:
            return Fact("c2pa", Status.FAIL, f"the sidecar {cid} does not validate for these bytes: {err}")
        manifest = active_manifest(report)
        said = [a.get("data", {}) for a in manifest.get("assertions", []) if a.get("label") == PROVENANCE_LABEL]
        if said and str(said[0].get("sha256", "")).lower() != self.digest.hex():
            return Fact("c2pa", Status.FAIL, f"the sidecar's {PROVENANCE_LABEL} names another digest")
        signer = manifest.get("signature_info", {}).get("common_name") or manifest.get("signature_info", {}).get(
            "issuer", "unknown"
        )
        trust = (
            "chains to --trust-anchors"
            if self.options.trust_anchors is not None
            else "not checked against a trust list (pass --trust-anchors CA.pem)"
        )
        return Fact(
            "c2pa",
            Status.OK,
            f"sidecar {cid}: signature valid, hard binding matches these bytes; signer {signer!r}, {trust}",
        )

    # -- regeneration ---------------------------------------------------------------------------

    async def regeneration(self) -> Fact:
        from agents.core.digests import weights_digest

        document = self.document
        if document is None or not set(document) >= LINEAGE_KEYS:
            return Fact(
                "regeneration",
                Status.SKIPPED,
                "the parameters document is not a generator's lineage (e.g. an asset a person made): "
                "nothing to re-generate",
            )
        if document["device"] != "cpu" or document["dtype"] != "float32":
            return Fact(
                "regeneration",
                Status.SKIPPED,
                f"generated on {document['device']} in {document['dtype']}: only CPU float32 generation is "
                "deterministic across machines",
            )
        if document["adapters"]:
            return Fact("regeneration", Status.SKIPPED, f"generated with adapters {document['adapters']}")
        local = (await asyncio.to_thread(weights_digest, self.options.t2i)).hex()
        if str(document["model_digest"]).lower().removeprefix("0x") != local:
            return Fact(
                "regeneration",
                Status.SKIPPED,
                f"made by the weights {_short(str(document['model_digest']))}, not those at {self.options.t2i} "
                f"({_short('0x' + local)}): only that model is re-generated",
            )
        self.progress(f"re-generating with {self.options.t2i} (seed {document['seed']}, {document['steps']} steps)")
        try:
            png, lineage = await _regenerate(self.options.t2i, document)
        except PermanentError as err:
            return Fact("regeneration", Status.FAIL, f"the lineage cannot be re-generated: {err}")
        if lineage != document:
            changed = sorted(k for k in document if lineage.get(k) != document[k])
            return Fact("regeneration", Status.FAIL, f"this pipeline's lineage differs from the document in {changed}")
        if png != self.png:
            made = hashlib.sha256(png).digest()
            which = "the registered digest" if made == self.digest else _hex(made)
            return Fact(
                "regeneration", Status.FAIL, f"the re-generated image ({_size(png)}, sha256 {which}) is not these bytes"
            )
        return Fact(
            "regeneration",
            Status.OK,
            f"{self.options.t2i.name} on CPU, seed {document['seed']}, {document['steps']} steps, guidance "
            f"{document['guidance']}: the same {_size(png)}",
        )


# ---------------------------------------------------------------------------------- the heavy parts


def verifier_accepts(web3: Any, verifier: str, proof: bytes, instances: Sequence[int]) -> bool:
    """Whether the verifier contract at `verifier` accepts the proof (`verifyProof` through
    eth_call, blocking). EZKL's verifiers revert on a bad proof: a revert is a rejection, as
    `attestInference` takes it; any other failure (the node went away) is raised."""
    from eth_abi.abi import decode, encode
    from eth_utils.crypto import keccak
    from web3.exceptions import ContractLogicError

    data = keccak(text=_VERIFY_PROOF)[:4] + encode(["bytes", "uint256[]"], [proof, list(instances)])
    try:
        answer = web3.eth.call({"to": verifier, "data": data})
    except Exception as err:
        if isinstance(err, ContractLogicError) or type(err).__name__ == "TransactionFailed":
            return False
        raise
    return bool(decode(["bool"], bytes(answer))[0])


def _embed(clip: str, png: bytes, prompt: str) -> list[float]:
    """The head row of `png` and `prompt` (unit image embedding, then unit text embedding) by the
    curator's own code, on one torch thread as the agents' curator runs
    (`agents.app.wiring.load_models`), blocking."""
    import torch

    from agents.models.curator import CurationPolicy, Curator
    from agents.models.head import head_row
    from media.clip import load

    try:
        loaded = load(clip, "cpu")
    except Exception as err:  # a missing folder, an unknown name
        raise AuditError(f"cannot load the open_clip model {clip!r}: {err}") from None
    curator = Curator(loaded, CurationPolicy(), remember=False)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return head_row(curator.embed_images([png])[0], curator.embed_prompts([prompt])[0])
    except (OSError, ValueError) as err:  # PIL: truncated or corrupt data (CuratorError: no image at all)
        raise AuditError(f"the bytes do not decode as an image ({err})") from None
    finally:
        torch.set_num_threads(threads)
        curator.close()


#: How far past half a unit of 2^-input_scale a value of the head row recomputed from the bytes
#: may be from the published integer (`headInput`): float rounding in another batch, CPU or torch
#: build moves a value by about 1e-7 (1e-3 of a unit at 2^-13), which carries one lying that near
#: a rounding step to the neighbouring integer. Only such a value may differ, so whoever publishes
#: the row can move no other value of it (a unit on every value would move the shipped head's score
#: by up to about 1,600 units: most of the review band).
ROUNDING_SLACK: Final = 0.01


@dataclass(frozen=True)
class CheckedHeadInput:
    commitment: int
    moved: int
    """How many published values are the neighbouring integer of the recomputed value's rounding
    (it lay within `ROUNDING_SLACK` of a rounding step)."""


def published_head_input(
    published: object, recomputed: Sequence[float], input_scale: int, digest: bytes
) -> CheckedHeadInput:
    """Checks the metadata's `headInput` (`{"inputScale": S, "values": [integers]}`) against a
    head row recomputed from the bytes: each published integer must be a rounding of the
    recomputed value times 2^S, to within `ROUNDING_SLACK` of a unit. Returns the commitment of
    the published integers (then the proven digest of `digest`: what the circuit hashed);
    AuditError names what is wrong."""
    from zkml.pipeline import quantized, quantized_commitment

    if not isinstance(published, dict) or set(published) != {"inputScale", "values"}:
        raise AuditError("the metadata's headInput is not {inputScale, values}")
    scale, values = published["inputScale"], published["values"]
    if type(scale) is not int or scale != input_scale:
        raise AuditError(f"the metadata's headInput is at scale {scale!r}, the circuit's input scale is {input_scale}")
    if not isinstance(values, list) or not all(type(v) is int for v in values):
        raise AuditError("the metadata's headInput values are not a list of integers")
    if len(values) != len(recomputed):
        raise AuditError(f"the metadata's headInput has {len(values)} values, the head row {len(recomputed)}")
    unit = float(1 << input_scale)
    for index, (value, real) in enumerate(zip(values, recomputed, strict=True)):
        if abs(float(real) * unit - value) > 0.5 + ROUNDING_SLACK:
            raise AuditError(
                f"value {index} of the metadata's head input is {value}, the embedding of these bytes gives "
                f"{float(real) * unit:.3f} units of 2^-{input_scale} (more than a rounding apart): the published "
                "input is not these bytes' embedding"
            )
    moved = sum(1 for a, b in zip(values, quantized(recomputed, input_scale), strict=True) if a != b)
    return CheckedHeadInput(quantized_commitment(values, digest), moved)


def _commitment(embedding: Sequence[float], digest: bytes, input_scale: int) -> int:
    from zkml.pipeline import HeadInput, input_commitment

    return input_commitment(HeadInput(embedding, digest), input_scale)


def local_circuit(folder: Path, vk_digest: bytes) -> Path | None:
    """The circuit folder under `folder` whose compiled verifier embeds `vk_digest` (the digest
    `ModelRegistry.verifierOf` pins), or None."""
    if not folder.is_dir():
        return None
    for record in sorted(folder.glob("*/verifier.json")):
        try:
            saved = json.loads(record.read_text(encoding="utf8"))
        except (OSError, ValueError):
            continue
        complete = all((record.parent / name).is_file() for name in ("settings.json", "vk.key", "kzg.srs"))
        if isinstance(saved, dict) and saved.get("vk_digest") == vk_digest.hex() and complete:
            return record.parent
    return None


def proof_file(proof: bytes, instances: Sequence[int]) -> dict[str, Any]:
    """An ezkl proof file of calldata (`zkml.evm.proof_calldata` backwards): the proof bytes and
    the instances as little-endian field elements, what `ezkl.verify` reads."""
    return {
        "instances": [[value.to_bytes(32, "little").hex() for value in instances]],
        "proof": list(proof),
        "hex_proof": "0x" + proof.hex(),
        "protocol": None,
        "split": None,
    }


def ezkl_verify(circuit: Path, proof: bytes, instances: Sequence[int]) -> bool:
    from zkml.pipeline import Artifacts, Circuit

    count = len(instances) // 3
    with tempfile.TemporaryDirectory(prefix="proofmint-verify-") as work:
        path = Path(work) / "proof.json"
        path.write_text(json.dumps(proof_file(proof, instances)), encoding="utf8")
        return Circuit(Artifacts(circuit), count, 0).verify(path)


async def _regenerate(t2i: Path, document: Mapping[str, Any]) -> tuple[bytes, dict[str, Any]]:
    """The image the lineage describes, made again in this process on one torch thread (as the
    generator's workers run), and the lineage this pipeline records for it."""
    from dataclasses import replace

    import torch

    from agents.core.requests import GenerationRequest
    from agents.models.generator import CPU_THREADS, Generator

    request = GenerationRequest(
        prompt=document["prompt"],
        seed=int(document["seed"]),
        negative_prompt=document["negative_prompt"],
        steps=int(document["steps"]),
        guidance=float(document["guidance"]),
        height=document["height"],
        width=document["width"],
        parents=tuple(document["parents"]),
    )
    generator = await Generator.load(str(t2i), device="cpu", batch=int(document["batch"]))
    threads = torch.get_num_threads()
    torch.set_num_threads(CPU_THREADS)
    try:
        (image,) = await generator.generate([request])
        made = generator.lineage(request, int(document["model_id"]))
        if document.get("requested_steps") is not None:  # served with fewer steps under load: says so
            made = replace(made, requested_steps=int(document["requested_steps"]), adaptation=document["adaptation"])
        lineage = made.as_dict()
    finally:
        torch.set_num_threads(threads)
        generator.close()
    return image.png, json.loads(json.dumps(lineage))  # tuples as the stored JSON has them: lists
