"""The API's public representation of assets: typed shapes, camelCase, built field by field.

An asset is read from two records that are not public: the agents' journal (a job's payload:
the request, the generator's lineage, curation, CIDs, registration and attestation facts, under
the pipeline's own snake_case names) and the chain's `AssetRegistered` event (`OnChain`). Each
shape below names exactly what leaves the server; nothing is passed through (`**payload`), so a
field the daemons add to the journal stays internal until it is added here, to the OpenAPI
document's schema of the same name (`agents.api.openapi`) and to the dApp's types
(`dapp/src/api.ts`).

What is not shown: the curator's embedding (served as similarity instead), the journal's
bookkeeping (source, timestamps, attempts), and where the generator loaded its model from when
that is a folder of the serving machine (`Lineage.model` is then null: `modelDigest` and the
registered model version identify the model publicly).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, Literal, TypedDict

from agents.api.lineage import OnChain
from agents.runtime import jobs
from agents.runtime.journal import Job

HEAD_UNIT: Final = 1 << 13
"""The curation head's fixed point: a score s stands for s / 2^13 (`zkml.settings.PINNED.input_scale`)."""

Source = Literal["agents", "chain"]


class ZkAttested(TypedDict):
    status: Literal["attested"]
    modelId: int | None
    """The registered curation model version whose EZKL proof was verified on chain."""
    score: float | None
    """The proven fixed-point score (the curation head's, over 2^13)."""
    verdict: str | None
    """accept, review or reject: what the contract derived from the proven score and the bands."""
    transaction: str | None


class ZkUnproven(TypedDict):
    status: Literal["unproven"]
    reason: str | None


class ZkOther(TypedDict):
    status: Literal["pending", "unknown"]
    """`pending`: the proof is being made; `unknown`: registered outside these agents."""


ZkStatus = ZkAttested | ZkUnproven | ZkOther


class CurationFlag(TypedDict):
    concept: str
    where: str
    similarity: float


class Curation(TypedDict):
    decision: str
    alignment: float
    score: float | None
    """The curation head's score (the real number; None where cosine bands decided)."""
    flags: list[CurationFlag]
    duplicateOf: str | None
    duplicateSimilarity: float


class Asset(TypedDict):
    """An asset in a list (gallery, search, similar, lineage nodes, children)."""

    digest: str
    cid: str | None
    prompt: str | None
    creator: str | None
    requester: str | None
    seq: int | None
    width: int | None
    height: int | None
    zk: ZkStatus
    curation: Curation | None
    source: Source


class SimilarAsset(Asset):
    similarity: float


class GenerationRequest(TypedDict):
    """What was asked for."""

    prompt: str
    negativePrompt: str
    seed: int
    steps: int
    guidance: float
    height: int | None
    width: int | None
    parents: list[str]


class Lineage(TypedDict):
    """What produced the image, beyond the request (whose parameters the generator used as given,
    but for fewer steps where it adapted under load: `requestedSteps`, `adaptation`)."""

    modelId: int | None
    modelDigest: str
    paramsCid: str | None
    pipeline: str
    scheduler: str
    adapters: list[str]
    device: str
    dtype: str
    batch: int
    steps: int | None
    """The denoising steps it was made with (the request's, unless adapted under load)."""
    requestedSteps: int | None
    """What the request asked for, where the generator served fewer under load; else null."""
    adaptation: str | None
    """Why it was served so; null: as asked."""


class Registration(TypedDict):
    """The asset's record on chain: under which model version, in which transaction."""

    modelId: int | None
    transaction: str | None


class MarketRequest(TypedDict):
    """The `GenerationMarket` request the asset fulfils."""

    market: str | None
    requestId: str


class AssetDetail(Asset):
    metadataCid: str | None
    manifestCid: str | None
    metadataURI: str | None
    request: GenerationRequest | None
    lineage: Lineage | None
    parents: list[str]
    paramsDigest: str | None
    commitment: str | None
    registration: Registration | None
    marketRequest: MarketRequest | None
    children: list[Asset]
    terms: list[dict[str, Any]]


class LineageGraph(TypedDict):
    root: str
    nodes: list[Asset]
    edges: list[list[str]]
    truncated: bool


def hex0x(value: str | bytes) -> str:
    """`0x` and lowercase hex, from bytes or from hex with or without `0x`."""
    text = value.hex() if isinstance(value, bytes) else str(value).removeprefix("0x")
    return "0x" + text.lower()


def _hex_or_none(value: Any) -> str | None:
    return hex0x(str(value)) if value else None


def _int_or_none(value: Any) -> int | None:
    return None if value is None or isinstance(value, bool) else int(value)


def _float_or_none(value: Any) -> float | None:
    return None if value is None or isinstance(value, bool) else float(value)


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def zk_status(job: Job) -> ZkStatus:
    p = job.payload
    if job.stage == jobs.ATTESTED:
        return {
            "status": "attested",
            "modelId": _int_or_none(p.get("attested_by")),
            "score": _float_or_none(p.get("score")),
            "verdict": _str_or_none(p.get("verdict")),
            "transaction": _hex_or_none(p.get("attest_tx")),
        }
    if job.stage == jobs.UNPROVEN:
        return {"status": "unproven", "reason": job.error}
    return {"status": "pending"}


def creator_of(job: Job) -> str | None:
    return _str_or_none(job.payload.get("creator") or job.payload.get("registered_creator"))


def curation_of(raw: Any) -> Curation | None:
    if not isinstance(raw, Mapping) or "decision" not in raw:
        return None
    return {
        "decision": str(raw["decision"]),
        "alignment": float(raw.get("alignment", 0.0)),
        "score": int(raw["score"]) / HEAD_UNIT if isinstance(raw.get("score"), int) else None,
        "flags": [
            {"concept": str(f["concept"]), "where": str(f["where"]), "similarity": float(f["similarity"])}
            for f in raw.get("flags", [])
        ],
        "duplicateOf": _hex_or_none(raw.get("duplicate_of")),
        "duplicateSimilarity": float(raw.get("duplicate_similarity", 0.0)),
    }


def request_of(raw: Any) -> GenerationRequest | None:
    if not isinstance(raw, Mapping) or "prompt" not in raw:
        return None
    return {
        "prompt": str(raw["prompt"]),
        "negativePrompt": str(raw.get("negative_prompt", "")),
        "seed": int(raw.get("seed", 0)),
        "steps": int(raw.get("steps", 0)),
        "guidance": float(raw.get("guidance", 0.0)),
        "height": _int_or_none(raw.get("height")),
        "width": _int_or_none(raw.get("width")),
        "parents": [hex0x(str(d)) for d in raw.get("parents", ())],
    }


def lineage_of(raw: Any, params_cid: Any = None) -> Lineage | None:
    """The lineage as clients read it: the model by its registered version and weights digest
    (a journal of an older version may name a folder of this machine: never shown), and where the
    parameters document (the pre-image of paramsDigest) is stored."""
    if not isinstance(raw, Mapping) or "model_digest" not in raw:
        return None
    model_id = _int_or_none(raw.get("model_id"))
    return {
        "modelId": model_id or None,
        "modelDigest": str(raw["model_digest"]),
        "paramsCid": _str_or_none(params_cid),
        "pipeline": str(raw.get("pipeline", "")),
        "scheduler": str(raw.get("scheduler", "")),
        "adapters": [str(a) for a in raw.get("adapters", ())],
        "device": str(raw.get("device", "")),
        "dtype": str(raw.get("dtype", "")),
        "batch": int(raw.get("batch", 1)),
        "steps": _int_or_none(raw.get("steps")),
        "requestedSteps": _int_or_none(raw.get("requested_steps")),
        "adaptation": _str_or_none(raw.get("adaptation")),
    }


def asset_view(job: Job) -> Asset:
    """An asset the agents made, from its journal record."""
    p = job.payload
    request = p.get("request")
    return {
        "digest": hex0x(p["sha256"]),
        "cid": _str_or_none(p.get("cid")),
        "prompt": _str_or_none(request.get("prompt")) if isinstance(request, Mapping) else None,
        "creator": creator_of(job),
        "requester": _str_or_none(p.get("requester")),
        "seq": _int_or_none(p.get("seq")),
        "width": _int_or_none(p.get("width")),
        "height": _int_or_none(p.get("height")),
        "zk": zk_status(job),
        "curation": curation_of(p.get("curation")),
        "source": "agents",
    }


def similar_view(job: Job, similarity: float) -> SimilarAsset:
    view = asset_view(job)
    return {**view, "similarity": similarity}


def chain_view(on: OnChain) -> Asset:
    """An asset registered on chain but not by these agents: what its `AssetRegistered` says
    (no image, prompt or curation here; its zk status is not known to this server)."""
    return {
        "digest": hex0x(on.digest),
        "cid": None,
        "prompt": None,
        "creator": on.creator,
        "requester": None,
        "seq": on.seq,
        "width": None,
        "height": None,
        "zk": {"status": "unknown"},
        "curation": None,
        "source": "chain",
    }


def _ipfs_cid(uri: str) -> str | None:
    """The CID of an `ipfs://CID` URI (the metadata a registrant named), else None."""
    from agents.storage.cid import Cid, CidError

    if not uri.startswith("ipfs://"):
        return None
    try:
        return str(Cid.parse(uri.removeprefix("ipfs://").split("/", 1)[0]))
    except CidError:
        return None


def _registered_model(lineage: Any) -> int | None:
    """The model version the lineage names (the one the registrar registered the asset with)."""
    model_id = _int_or_none(lineage.get("model_id")) if isinstance(lineage, Mapping) else None
    return model_id or None


def _market_request(p: Mapping[str, Any]) -> MarketRequest | None:
    request_id = p.get("market_request")
    if request_id is None:
        return None
    return {"market": _str_or_none(p.get("market")), "requestId": str(int(request_id))}


def asset_detail(
    job: Job | None, on: OnChain | None, children: list[Asset], terms: list[dict[str, Any]]
) -> AssetDetail:
    """One asset in full, from its journal record, its chain record, or both (the chain is then
    the authority on its parents and registration). `job` or `on` must be given."""
    if job is not None:
        p = job.payload
        summary = asset_view(job)
        lineage = p.get("lineage")
        request = p.get("request")
        parents = lineage.get("parents") if isinstance(lineage, Mapping) else None
        if parents is None and isinstance(request, Mapping):
            parents = request.get("parents")
        detail: AssetDetail = {
            **summary,
            "metadataCid": _str_or_none(p.get("metadata_cid")),
            "manifestCid": _str_or_none(p.get("manifest_cid")),
            "metadataURI": _str_or_none(p.get("metadata_uri")),
            "request": request_of(request),
            "lineage": lineage_of(lineage, p.get("params_cid")),
            "parents": [hex0x(str(d)) for d in parents or ()],
            "paramsDigest": _hex_or_none(p.get("params_digest")),
            "commitment": _hex_or_none(p.get("commitment")),
            "registration": (
                {"modelId": _registered_model(lineage), "transaction": _hex_or_none(p["register_tx"])}
                if p.get("register_tx")
                else None
            ),
            "marketRequest": _market_request(p),
            "children": children,
            "terms": terms,
        }
    elif on is not None:
        detail = {
            **chain_view(on),
            "metadataCid": _ipfs_cid(on.metadata_uri),
            "manifestCid": None,
            "metadataURI": on.metadata_uri,
            "request": None,
            "lineage": None,
            "parents": [],
            "paramsDigest": hex0x(on.params_digest),
            "commitment": hex0x(on.input_commitment),
            "registration": None,
            "marketRequest": None,
            "children": children,
            "terms": terms,
        }
    else:
        raise ValueError("an asset detail needs its journal record or its chain record")
    if on is not None:
        detail["parents"] = [hex0x(p) for p in on.parents]
        detail["registration"] = {"modelId": on.model_id, "transaction": on.transaction}
    return detail


class RequestStatus(TypedDict, total=False):
    key: str
    stage: str
    error: str | None
    reason: str | None
    prompt: str
    seed: int
    requester: str
    source: str
    createdAt: float
    digest: str
    lane: str
    project: str


def request_status(job: Job) -> RequestStatus:
    """Where a generation request (a job of kind asset) is, and why
    when it stopped short: the curator's reason in review or rejected, the error when failed."""
    payload = job.payload
    request = payload.get("request", {})
    curation = payload.get("curation") or {}
    reason = curation.get("reason") if job.stage in (jobs.REVIEW, jobs.REJECTED) else None
    if job.stage == jobs.FAILED:
        reason = job.error
    view = RequestStatus(
        key=job.key,
        stage=job.stage,
        error=job.error,
        reason=reason or None,
        prompt=str(request.get("prompt", "")),
        seed=int(request.get("seed", 0)),
        requester=str(payload.get("requester", "")),
        source=str(payload.get("source", "")),
        createdAt=job.created_at,
    )
    if "sha256" in payload:
        view["digest"] = "0x" + payload["sha256"]
    view["lane"] = str(payload.get("lane", "standard"))
    if "project" in payload:
        view["project"] = str(payload["project"])
    return view
