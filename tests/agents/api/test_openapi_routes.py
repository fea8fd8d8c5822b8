"""The OpenAPI document and the app agree, and an asset's public JSON is the documented shape.

- every route the app registers is documented, and every documented operation is a route
  (the dApp's pages, `/` and `/app/...`, are HTML for people and not part of the API);
- the document's schemas use only what `schema_check` checks, and every reference resolves;
- the typed shapes of `agents.api.views` and the document's schemas name the same fields;
- an asset's JSON, built from journal records as the daemons write them and from chain records,
  is camelCase at every depth, valid by its schema, and carries nothing internal (the curator's
  embedding, journal bookkeeping, a model folder of this machine).
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import asdict
from typing import Any

import pytest

from agents.api import views
from agents.api.app import ApiDeps, build_app
from agents.api.dapp import PREFIX as DAPP_PREFIX
from agents.api.lineage import OnChain
from agents.api.openapi import document
from agents.core.requests import GenerationRequest
from agents.models.generator import Lineage
from agents.runtime import jobs
from agents.runtime.journal import Job
from tests.agents.api.schema_check import KEYWORDS, check, not_camel_case, resolve

DOC = document()
SCHEMAS = DOC["components"]["schemas"]
METHODS = {"get", "post", "put", "patch", "delete"}
LOCAL_MODEL = "/home/operator/proofmint/models/tiny-t2i"
CREATOR = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
MARKET = "0x5FbDB2315678afecb367f032d93F642f64180aa3"


@asynccontextmanager
async def _never() -> AsyncIterator[ApiDeps]:
    raise AssertionError("the routes are read without starting the app")
    yield  # pragma: no cover


def _registered(accept_requests: bool) -> set[tuple[str, str]]:
    app = build_app(_never, accept_requests=accept_requests)
    routes = set()
    for route in app.router.routes():
        path = route.resource.canonical if route.resource is not None else ""
        if route.method == "HEAD" or path == "/" or path == DAPP_PREFIX.rstrip("/") or path.startswith(DAPP_PREFIX):
            continue  # HEAD mirrors GET; the dApp's pages are not the API
        routes.add((route.method, path))
    return routes


def _documented() -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, item in DOC["paths"].items() for method in item if method in METHODS}


def test_every_route_is_documented_and_every_documented_operation_is_a_route():
    assert _registered(accept_requests=True) == _documented()
    # without `accept_requests` the same routes: POST /v1/requests then says it takes no requests (404)
    assert _registered(accept_requests=False) == _documented()


def test_every_path_parameter_is_documented_in_its_operation():
    for path, item in DOC["paths"].items():
        for method, operation in item.items():
            named = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert named == set(re.findall(r"\{(\w+)\}", path)), (method, path)


def _schemas(schema: Any) -> Iterator[dict[str, Any]]:
    if isinstance(schema, dict):
        yield schema
        for key in ("properties",):
            for inner in schema.get(key, {}).values():
                yield from _schemas(inner)
        for key in ("oneOf", "prefixItems"):
            for inner in schema.get(key, []):
                yield from _schemas(inner)
        for key in ("items", "additionalProperties"):
            yield from _schemas(schema.get(key))


def _operation_schemas() -> Iterator[tuple[str, dict[str, Any]]]:
    for path, item in DOC["paths"].items():
        for method, operation in item.items():
            where = f"{method.upper()} {path}"
            for p in operation.get("parameters", []):
                yield where, p["schema"]
            for media in operation.get("requestBody", {}).get("content", {}).values():
                yield where, media["schema"]
            for status, response in operation["responses"].items():
                for media in response.get("content", {}).values():
                    yield f"{where} {status}", media["schema"]


def test_the_documents_schemas_use_only_what_the_checker_checks_and_every_reference_resolves():
    roots = [*SCHEMAS.values(), *(schema for _, schema in _operation_schemas())]
    for root in roots:
        for schema in _schemas(root):
            assert set(schema) <= KEYWORDS, set(schema) - KEYWORDS
            if "$ref" in schema:
                assert resolve(schema, SCHEMAS)  # KeyError if it names no component
            if schema.get("type") == "object" and "properties" in schema:
                assert set(schema["required"]) <= set(schema["properties"])


def test_every_json_answer_of_the_api_has_a_component_schema():
    stored = ("/openapi.json", "/v1/content/{cid}")  # the document itself; content as stored
    for path, item in DOC["paths"].items():
        for method, operation in item.items():
            for status, response in operation["responses"].items():
                media = response.get("content", {}).get("application/json")
                if media is not None and not path.endswith(stored):
                    assert "$ref" in media["schema"], (method, path, status)


SHAPES = {
    "Asset": views.Asset,
    "SimilarAsset": views.SimilarAsset,
    "AssetDetail": views.AssetDetail,
    "GenerationRequest": views.GenerationRequest,
    "Lineage": views.Lineage,
    "Registration": views.Registration,
    "MarketRequest": views.MarketRequest,
    "Curation": views.Curation,
    "CurationFlag": views.CurationFlag,
    "LineageGraph": views.LineageGraph,
}


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_the_typed_shape_and_its_schema_name_the_same_fields(name: str):
    shape, schema = SHAPES[name], SCHEMAS[name]
    assert set(schema["properties"]) == shape.__required_keys__ | shape.__optional_keys__
    assert set(schema["required"]) == shape.__required_keys__


def test_each_zk_status_shape_is_one_branch_of_its_schema():
    branches = [set(b["properties"]) for b in SCHEMAS["ZkStatus"]["oneOf"]]
    shapes = [views.ZkAttested, views.ZkUnproven, views.ZkOther]
    assert branches == [s.__required_keys__ for s in shapes]


# -- an asset's JSON --------------------------------------------------------------------------


def _job(stage: str, payload: dict[str, Any], error: str | None = None) -> Job:
    return Job("req-" + payload["sha256"][:40], jobs.ASSET, stage, payload, 1, 0.0, 1.0, None, error)


def _payload(n: int, *, parents: tuple[str, ...] = (), market: bool = False) -> dict[str, Any]:
    """A journal record as the daemons write it, request to registration."""
    request = GenerationRequest(f"a red square {n}", 7_000 + n, negative_prompt="blurry", parents=parents)
    payload = jobs.request_payload(request, requester=CREATOR if market else "cli", source="cli")
    lineage = Lineage(
        model_id=1,
        model_digest="ab" * 32,
        pipeline="StableDiffusionPipeline",
        scheduler="EulerDiscreteScheduler",
        adapters=("lora-style",),
        prompt=request.prompt,
        negative_prompt=request.negative_prompt,
        seed=request.seed,
        steps=request.steps,
        guidance=request.guidance,
        height=None,
        width=None,
        parents=request.parents,
        device="cpu",
        dtype="float32",
        batch=2,
    )
    sha = f"{n:02x}" * 32
    payload |= {  # generator, curator, publisher, registrar
        "cid": f"bafkreicid{n}",
        "sha256": sha,
        "params_digest": lineage.params_digest().hex(),
        "params_cid": f"bafkreiparams{n}",
        # journaled by an older version, the lineage also named the model's folder on this machine
        "lineage": asdict(lineage) | {"model": LOCAL_MODEL},
        "generated_at": 1.0,
        "curation": {
            "decision": "accept",
            "alignment": 0.31,
            "flags": [{"concept": "logo", "where": "image", "similarity": 0.12}],
            "duplicate_of": None if n == 1 else "01" * 32,
            "duplicate_similarity": 0.2,
        },
        "embedding": [0.5, 0.25, 0.125],
        "manifest_cid": f"bafkreimanifest{n}",
        "metadata_cid": f"bafkreimetadata{n}",
        "metadata_uri": f"ipfs://bafkreimetadata{n}",
        "commitment": "0c" * 32,
        "width": 64,
        "height": 64,
        "seq": n,
        "register_tx": "fe" * 32,
        "register_batch": 2,
        "registered_creator": CREATOR,
    }
    if market:
        payload |= {"market_request": 3, "market": MARKET, "fee": "1000", "deadline": 99, "block": 7, "tx": "0x01"}
        payload["creator"] = CREATOR
    return payload


def _on_chain(n: int, parents: tuple[bytes, ...] = ()) -> OnChain:
    return OnChain(
        digest=bytes([n]) * 32,
        creator=CREATOR,
        model_id=1,
        params_digest=bytes([0xAA]) * 32,
        input_commitment=bytes([0xCC]) * 32,
        parents=parents,
        seq=n,
        metadata_uri=f"ipfs://meta{n}",
        transaction="0x" + "ef" * 32,
    )


TERMS = {
    "termsId": 1,
    "asset": "0x" + "01" * 32,
    "currency": "0x" + "00" * 20,
    "pricePerUse": "1000",
    "price": "10000",
    "duration": 0,
    "derivativeRoyaltyBps": 1_000,
    "commercialUse": True,
    "derivativesAllowed": True,
    "active": True,
    "superseded": False,
}


def _answers() -> list[tuple[str, Any]]:
    original = _payload(1)
    derived = _payload(2, parents=("0x" + "01" * 32,), market=True)
    attested = _job(
        jobs.ATTESTED,
        original
        | {"score": 6_500, "verdict": "accept", "attested_by": 2, "attest_tx": "ad" * 32}
        | {"curation": original["curation"] | {"score": 6_500}},  # decided by the curation head
    )
    unproven = _job(jobs.UNPROVEN, derived, error="proving failed after 3 tries")
    pending = _job(jobs.DELIVERED, _payload(3))
    someone_elses = _on_chain(9, parents=(bytes([1]) * 32,))
    graph: views.LineageGraph = {
        "root": "0x" + "01" * 32,
        "nodes": [views.asset_view(attested), views.chain_view(someone_elses)],
        "edges": [["0x" + "01" * 32, "0x" + "09" * 32]],
        "truncated": False,
    }
    return [
        ("AssetPage", {"total": 3, "offset": 0, "items": [views.asset_view(j) for j in (attested, unproven, pending)]}),
        ("SimilarAssets", {"items": [views.similar_view(unproven, 0.5)]}),
        ("AssetDetail", views.asset_detail(attested, _on_chain(1), [views.chain_view(someone_elses)], [TERMS])),
        ("AssetDetail", views.asset_detail(unproven, None, [], [])),
        ("AssetDetail", views.asset_detail(pending, None, [], [])),
        ("AssetDetail", views.asset_detail(None, someone_elses, [], [])),
        ("LineageGraph", graph),
    ]


@pytest.mark.parametrize("number", range(7))
def test_asset_json_is_camel_case_valid_by_its_schema_and_leaks_nothing_internal(number: int):
    name, answer = _answers()[number]
    body = json.loads(json.dumps(answer))  # what a client reads
    assert not_camel_case(body) == []
    check(body, name, DOC)
    text = json.dumps(body)
    for internal in ("embedding", LOCAL_MODEL):
        assert f'"{internal}' not in text


def test_the_detail_of_an_agents_asset_names_its_request_lineage_and_registration():
    job = _job(jobs.ATTESTED, _payload(2, parents=("01" * 32,), market=True) | {"attested_by": 2, "score": 1})
    detail = views.asset_detail(job, None, [], [])
    assert detail["request"] == {
        "prompt": "a red square 2",
        "negativePrompt": "blurry",
        "seed": 7_002,
        "steps": 25,
        "guidance": 1.5,
        "height": None,
        "width": None,
        "parents": ["0x" + "01" * 32],
    }
    assert detail["lineage"] is not None and "model" not in detail["lineage"]  # a folder of this machine
    assert detail["lineage"]["modelId"] == 1 and detail["lineage"]["paramsCid"] == "bafkreiparams2"
    assert detail["lineage"]["modelDigest"] == "ab" * 32 and detail["lineage"]["adapters"] == ["lora-style"]
    assert detail["parents"] == ["0x" + "01" * 32] and detail["source"] == "agents"
    assert detail["registration"] == {"modelId": 1, "transaction": "0x" + "fe" * 32}
    assert detail["marketRequest"] == {"market": MARKET, "requestId": "3"}
    assert detail["zk"] == {"status": "attested", "modelId": 2, "score": 1.0, "verdict": None, "transaction": None}
    assert detail["curation"] is not None and detail["curation"]["duplicateOf"] == "0x" + "01" * 32
    assert detail["curation"]["score"] is None  # decided by cosine bands: no head score
    # the chain, when it knows the asset, is the authority on its parents and registration
    on = _on_chain(2)
    both = views.asset_detail(job, on, [], [])
    assert both["parents"] == [] and both["registration"] == {"modelId": 1, "transaction": on.transaction}
