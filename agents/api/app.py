"""The aiohttp application: routes, limits and the JSON error shape (see `agents.api.errors`).

Every route is in the OpenAPI document (`/openapi.json`, also at `/.well-known/openapi.json`),
and every answer is a shape it names (`agents.api.views` builds the assets'); the dApp's pages
(`/`, `/app/...`) are for people, not part of the API, and not in it.
Licensed content (`/v1/assets/{digest}/content`, and an asset image's CID under `/v1/content`)
is paid per use over x402 (`agents.api.x402`) with vouchers naming this server's service (the
paywall's; `/v1/deployment` tells it); everything else is free to read.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Middleware
from eth_utils.address import is_address, to_checksum_address
from prometheus_client import Counter, Histogram

from agents.api import accounts
from agents.api.catalog import Catalog
from agents.api.chainview import ChainView
from agents.api.dapp import PREFIX as DAPP_PREFIX
from agents.api.dapp import DappFiles, default_dir, to_app
from agents.api.derivatives import derivative_of, simulate_register
from agents.api.errors import ApiError, Handler, json_errors
from agents.api.exact import SCHEME as EXACT
from agents.api.exact import ExactOffer, ExactToken, accept_exact, check_on_chain, parse_exact, verify_exact
from agents.api.lineage import LineageIndex
from agents.api.openapi import document
from agents.api.paywall import PaymentRejectedError, Paywall
from agents.api.preview import Previews
from agents.api.ratelimit import RateLimiter
from agents.api.registration import registration_file, validation_record, well_known
from agents.api.reputation import PaymentEvidence, reputation
from agents.api.review import decision_of, review_item
from agents.api.review import eip712 as review_types
from agents.api.upto import SCHEME as UPTO
from agents.api.upto import UptoOffer, accept_upto, parse_upto, payment_view, spend_of
from agents.api.views import Asset, LineageGraph, asset_detail, asset_view, chain_view, hex0x, request_status
from agents.api.x402 import (
    LEGACY_SIGNATURE_HEADER,
    REQUIRED_HEADER,
    RESPONSE_HEADER,
    SIGNATURE_HEADER,
    X402_VERSION,
    Offer,
    PaymentHeaderError,
    decode_header,
    encode_header,
    network_of,
    parse_payment,
    payment_required,
    settlement_response,
)
from agents.api.x402 import SCHEME as VOUCHER_SCHEME
from agents.core.costs import (
    DEFAULT_PRICES,
    FEE_HISTORY_BLOCKS,
    CostFilter,
    CostPrices,
    Settlements,
    asset_usd,
    at_gas_price,
    gas_price_of,
    summarise,
)
from agents.core.metering import LANES, STANDARD_LANE, RequestPricing
from agents.core.quotas import DEFAULT_SIDE, MOST_COUNTED, Quotas, check, usage_of, work_of
from agents.core.requests import MAX_PROMPT_CHARS, GenerationRequest, GeneratorError
from agents.core.settlement import parse_voucher
from agents.core.toolchain import project_root
from agents.core.vouchers import VOUCHER_TYPES, domain
from agents.deploy.erc8004 import AgentDirectory, agent_uri
from agents.runtime import jobs
from agents.runtime.journal import Journal, StaleJobError
from agents.runtime.telemetry import LATENCY_BUCKETS, Metrics
from agents.storage.cid import RAW, Cid, CidError
from agents.storage.store import BlockNotFoundError, BlockStore

MAX_BODY_BYTES = 64 * 1024
MAX_LIMIT = 200
MAX_QUERY_CHARS = 256


@dataclass
class ApiDeps:
    journal: Journal
    store: BlockStore
    chain: ChainView
    paywall: Paywall
    metrics: Metrics | None = None
    data_trees: accounts.DataTrees = field(default_factory=dict)
    """Originators' trees of model versions, by model id, for data-share proofs."""
    rpc_url: str | None = None
    """A JSON-RPC endpoint of the chain that wallets can use (told to the dApp), if any."""
    dapp_dir: Path | None = None
    """The built dApp (default: dapp/dist of the project)."""
    reviewers: frozenset[str] = frozenset()
    """Addresses whose signed decisions settle assets in review (none: decisions are refused)."""
    exact_token: ExactToken | None = None
    """The EIP-3009 token x402 `exact` payments are taken in (terms priced in it are offered
    both ways), or None: vouchers only."""
    request_pricing: RequestPricing | None = None
    """What generation requests cost (with `exact_token`, the token they are paid in): `POST
    /v1/requests` takes x402 `upto` payments. None: requests are free (where they are taken)."""
    quotas: Quotas | None = None
    """What each requester may use per period (`POST /v1/requests` refuses past it with 429); None: no limits."""
    cost_prices: CostPrices | None = None
    """What compute, gas and storage cost the operator (`GET /v1/costs`); None: the shipped prices."""
    agents: AgentDirectory | None = None
    """The operator's ERC-8004 agents whose registration files this API serves, or None."""
    payment_evidence: PaymentEvidence | None = field(init=False)
    """Who paid the operator, kept between readings of its agents' reputation (with `agents`)."""
    catalog: Catalog = field(init=False)
    lineage: LineageIndex = field(init=False)
    previews: Previews = field(init=False)

    def __post_init__(self) -> None:
        if self.cost_prices is None:
            self.cost_prices = CostPrices.from_json(project_root() / DEFAULT_PRICES)
        self.catalog = Catalog(self.journal)
        self.lineage = LineageIndex(self.chain.client)
        self.previews = Previews()
        self.payment_evidence = (
            PaymentEvidence(self.chain.client, self.journal, self.paywall.service, self.agents.owner)
            if self.agents is not None
            else None
        )


DEPS: web.AppKey[ApiDeps] = web.AppKey("deps", ApiDeps)


def _deps(request: web.Request) -> ApiDeps:
    return request.app[DEPS]


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status, text=json.dumps(body, separators=(",", ":")), content_type="application/json", headers=headers
    )


def _digest(request: web.Request) -> bytes:
    text = request.match_info["digest"]
    raw = text.removeprefix("0x")
    if len(raw) != 64:
        raise ApiError(400, "an asset digest is 32 bytes in hex (0x and 64 hex digits)", code="bad_digest")
    try:
        return bytes.fromhex(raw)
    except ValueError:
        raise ApiError(400, "an asset digest is 32 bytes in hex (0x and 64 hex digits)", code="bad_digest") from None


def _int_query(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    text = request.query.get(name)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise ApiError(400, f"{name} must be an integer", code="bad_query", details={"parameter": name}) from None
    if not low <= value <= high:
        raise ApiError(400, f"{name} must be in [{low}, {high}]", code="bad_query", details={"parameter": name})
    return value


async def _json_body(request: web.Request, what: str) -> Any:
    """The request's JSON body: 415 if it is not declared JSON, 400 if it does not parse, 413
    (from aiohttp, past `client_max_size`) if it is too large."""
    if request.content_type != "application/json":
        raise ApiError(415, f"send {what} as application/json")
    try:
        return json.loads(await request.read())
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "the body is not JSON", code="bad_json") from None


def _address(text: str, name: str) -> str:
    if not is_address(text):
        raise ApiError(400, f"{name} is not an address", code="bad_address")
    return to_checksum_address(text)


async def health(request: web.Request) -> web.Response:
    deps = _deps(request)
    block = await deps.chain.client.block_number()
    return _json({"status": "ok", "chainId": deps.chain.chain_id, "block": block})


async def prometheus_metrics(request: web.Request) -> web.Response:
    deps = _deps(request)
    body = deps.metrics.render() if deps.metrics is not None else b""
    return web.Response(body=body, content_type="text/plain", charset="utf-8")


async def openapi(request: web.Request) -> web.Response:
    return _json(document())


async def list_assets(request: web.Request) -> web.Response:
    text = request.query.get("q", "")
    if len(text) > MAX_QUERY_CHARS:
        raise ApiError(400, f"q is longer than {MAX_QUERY_CHARS} characters", code="bad_query")
    limit = _int_query(request, "limit", 50, 1, MAX_LIMIT)
    offset = _int_query(request, "offset", 0, 0, 10**9)
    total, items = await _deps(request).catalog.search(text, limit, offset)
    return _json({"total": total, "offset": offset, "items": items})


async def _node_view(deps: ApiDeps, digest: bytes) -> Asset | None:
    job = await deps.catalog.get(digest)
    if job is not None:
        return asset_view(job)
    on = await deps.lineage.get(digest)
    return None if on is None else chain_view(on)


async def get_asset(request: web.Request) -> web.Response:
    deps, digest = _deps(request), _digest(request)
    job = await deps.catalog.get(digest)
    on = await deps.lineage.get(digest)
    if job is None and on is None:
        raise ApiError(404, f"no registered asset 0x{digest.hex()}")
    children = [await _node_view(deps, child) for child in deps.lineage.children.get(digest, [])]
    terms = await deps.chain.terms_of_asset(digest)
    return _json(asset_detail(job, on, [c for c in children if c is not None], terms))


async def asset_lineage(request: web.Request) -> web.Response:
    deps, digest = _deps(request), _digest(request)
    depth = _int_query(request, "depth", 3, 1, 8)
    if await deps.catalog.get(digest) is None and await deps.lineage.get(digest) is None:
        raise ApiError(404, f"no registered asset 0x{digest.hex()}")
    graph = await deps.lineage.graph(digest, depth)
    nodes = [view for d in graph.nodes if (view := await _node_view(deps, d)) is not None]
    answer: LineageGraph = {
        "root": hex0x(digest),
        "nodes": nodes,
        "edges": [[hex0x(a), hex0x(b)] for a, b in graph.edges],
        "truncated": graph.truncated,
    }
    return _json(answer)


async def asset_preview(request: web.Request) -> web.Response:
    deps, digest = _deps(request), _digest(request)
    job = await deps.catalog.get(digest)
    if job is None or "cid" not in job.payload:
        raise ApiError(404, f"no image of asset 0x{digest.hex()} here")
    png = await deps.store.get(Cid.parse(job.payload["cid"]))
    try:
        preview = await deps.previews.get(digest, png)
    except ValueError as exc:
        raise ApiError(404, f"asset 0x{digest.hex()} has no previewable image: {exc}") from None
    return web.Response(
        body=preview, content_type="image/png", headers={"Cache-Control": "public, max-age=31536000, immutable"}
    )


async def similar_assets(request: web.Request) -> web.Response:
    deps, digest = _deps(request), _digest(request)
    limit = _int_query(request, "limit", 10, 1, MAX_LIMIT)
    found = await deps.catalog.similar(digest, limit)
    if found is None:
        raise ApiError(404, f"no registered asset 0x{digest.hex()} with an image embedding")
    return _json({"items": found})


async def asset_terms(request: web.Request) -> web.Response:
    deps, digest = _deps(request), _digest(request)
    if await deps.catalog.get(digest) is None:
        raise ApiError(404, f"no registered asset 0x{digest.hex()}")
    return _json({"items": await deps.chain.terms_of_asset(digest)})


async def _offers(deps: ApiDeps, digest: bytes, terms_id: int | None) -> list[Offer]:
    offers = []
    for t in await deps.chain.terms_of_asset(digest):
        if int(t["pricePerUse"]) > 0 and t["active"] and not t["superseded"] and terms_id in (None, t["termsId"]):
            offers.append(
                Offer(
                    digest,
                    t["termsId"],
                    t["currency"],
                    int(t["pricePerUse"]),
                    deps.chain.chain_id,
                    deps.chain.settlement,
                    deps.paywall.service,
                )
            )
    return offers


async def _asset_cid(deps: ApiDeps, digest: bytes) -> Cid | None:
    """Where this server keeps a registered asset's bytes: the agents' record of it, or, for an
    asset registered by someone else (a derivative), its single raw block, whose CID is its digest."""
    job = await deps.catalog.get(digest)
    if job is not None:
        return Cid.parse(job.payload["cid"]) if "cid" in job.payload else None
    raw = Cid(1, RAW, digest)
    if await deps.lineage.get(digest) is not None and await asyncio.to_thread(deps.store.has, raw):
        return raw
    return None


async def _paid_content(request: web.Request, digest: bytes) -> web.Response:
    deps = _deps(request)
    cid = await _asset_cid(deps, digest)
    if cid is None:
        raise ApiError(404, f"no registered asset 0x{digest.hex()} with its image here")
    wanted = _int_query(request, "terms", 0, 0, 2**63) or None
    offers = await _offers(deps, digest, wanted)
    if not offers:
        raise ApiError(403, "this asset has no active terms sold per use", code="not_for_sale")
    header = request.headers.get(SIGNATURE_HEADER) or request.headers.get(LEGACY_SIGNATURE_HEADER)
    url = str(request.url)

    exact = await _exact_offers(deps, offers)

    def required(message: str, code: str, details: dict[str, Any] | None = None) -> ApiError:
        body = payment_required(offers[0], url, message, "image/png")
        body["accepts"] = [o.requirements() for o in offers] + [e.requirements() for e in exact]
        error = ApiError(402, message, code=code, details={**(details or {}), "x402": body})
        error.headers[REQUIRED_HEADER] = encode_header(body)
        return error

    if header is None:
        how = "sign a cumulative licence voucher" + (" or an EIP-3009 transfer (exact)" if exact else "")
        raise required(f"payment required: {how} (see accepts)", "payment_required")
    if exact:
        try:
            payment = decode_header(header)
        except PaymentHeaderError as exc:
            raise required(f"payment refused: {exc}", "bad_payment") from None
        accepted = payment.get("accepted")
        if isinstance(accepted, dict) and accepted.get("scheme") == EXACT:
            return await _paid_exactly(deps, cid, payment, exact, required)
    last: Exception | None = None
    for offer in offers:
        try:
            voucher = parse_payment(header, offer)
        except PaymentHeaderError as exc:
            last = exc
            continue
        try:
            queued = await deps.paywall.accept(voucher, asset=digest, terms_id=offer.terms_id)
        except PaymentRejectedError as exc:
            raise required(f"payment refused: {exc}", exc.code, exc.details) from None
        png = await deps.store.get(cid)
        response = settlement_response(voucher, deps.chain.chain_id, queued)
        return web.Response(body=png, content_type="image/png", headers={RESPONSE_HEADER: encode_header(response)})
    raise required(f"payment refused: {last}", "bad_payment")


async def _exact_offers(deps: ApiDeps, offers: list[Offer]) -> list[ExactOffer]:
    """The x402 `exact` offers beside the voucher offers: one per metered terms priced in the
    API's EIP-3009 token, paid to the asset's receiver."""
    token = deps.exact_token
    if token is None:
        return []
    return [
        ExactOffer(o.asset, o.terms_id, o.price_per_use, token, await deps.chain.receiver_of(o.asset),
                   o.chain_id)
        for o in offers
        if o.currency.lower() == token.address.lower()
    ]  # fmt: skip


async def _paid_exactly(
    deps: ApiDeps, cid: Cid, payment: dict[str, Any], offers: list[ExactOffer], required: Any
) -> web.Response:
    """Serves one use for an x402 `exact` payment (`agents.api.exact.accept_exact`: verified,
    claimed once in the journal, settled on chain from the service's key) with its settlement
    in PAYMENT-RESPONSE; 402 with the reason otherwise."""
    last: Exception | None = None
    for offer in offers:
        try:
            auth = parse_exact(payment, offer)
        except PaymentHeaderError as exc:
            last = exc
            continue
        try:
            tx_hash = await accept_exact(deps.journal, deps.chain.client, auth, offer)
        except PaymentRejectedError as exc:
            raise required(f"payment refused: {exc}", exc.code, exc.details) from None
        png = await deps.store.get(cid)
        response = {"success": True, "transaction": tx_hash, "network": network_of(offer.chain_id),
                    "payer": auth.payer, "amount": str(auth.value)}  # fmt: skip
        return web.Response(body=png, content_type="image/png", headers={RESPONSE_HEADER: encode_header(response)})
    raise required(f"payment refused: {last}", "bad_payment")


def _directory(request: web.Request) -> AgentDirectory:
    directory = _deps(request).agents
    if directory is None:
        raise ApiError(404, "this server registers no ERC-8004 agents", code="no_agents")
    return directory


async def agents_index(request: web.Request) -> web.Response:
    """The operator's ERC-8004 agents: registries, and each agent's id and registration file."""
    directory = _directory(request)
    registries = directory.registries
    return _json(
        {
            "agentRegistry": registries.agent_registry,
            "owner": directory.owner,
            "registries": {
                "identity": registries.identity,
                "reputation": registries.reputation,
                "validation": registries.validation,
                "validator": registries.validator,
            },
            "agents": [
                {"role": role, "agentId": agent_id, "agentURI": agent_uri(directory.public_url, role)}
                for role, agent_id in directory.ids.items()
            ],
        }
    )


def _role(request: web.Request) -> tuple[AgentDirectory, str]:
    """The directory and the path's `role`, one of its agents (404 otherwise)."""
    directory = _directory(request)
    role = request.match_info["role"]
    if role not in directory.ids:
        raise ApiError(404, f"no agent {role!r}: the agents are {', '.join(directory.ids)}", code="unknown_agent")
    return directory, role


async def agent_registration(request: web.Request) -> web.Response:
    """One agent's ERC-8004 registration file (what its on-chain agentURI resolves to)."""
    directory, role = _role(request)
    return _json(registration_file(directory, role, x402=_deps(request).exact_token is not None))


async def agent_reputation(request: web.Request) -> web.Response:
    """An agent's ERC-8004 feedback, counted only from clients who paid (agents.api.reputation)."""
    deps = _deps(request)
    directory, role = _role(request)
    tags = {name: request.query.get(name, "") for name in ("tag1", "tag2")}
    for name, value in tags.items():
        if len(value) > 64:
            raise ApiError(400, f"{name} is at most 64 characters", code="bad_query", details={"parameter": name})
    assert deps.payment_evidence is not None  # made with the directory (ApiDeps.__post_init__)
    summary = await reputation(deps.payment_evidence, directory.ids[role], tag1=tags["tag1"], tag2=tags["tag2"])
    return _json({"role": role, **summary})


async def agent_domain(request: web.Request) -> web.Response:
    """ERC-8004 endpoint-domain verification: every agent this domain serves."""
    return _json(well_known(_directory(request), x402=_deps(request).exact_token is not None))


async def validation(request: web.Request) -> web.Response:
    """A zkML validation request and, once answered, the assets it covers with their proofs."""
    deps = _deps(request)
    text = request.match_info["requestHash"].removeprefix("0x")
    try:
        request_hash = bytes.fromhex(text)
    except ValueError:
        request_hash = b""
    if len(request_hash) != 32:
        raise ApiError(400, "a request hash is 32 bytes in hex (0x and 64 hex digits)", code="bad_request_hash")
    record = await validation_record(deps.chain.client, deps.chain.chain_id, request_hash)
    if record is None:
        raise ApiError(404, f"no validation request 0x{request_hash.hex()} for this deployment's validator")
    return _json(record)


async def x402_supported(request: web.Request) -> web.Response:
    """x402 facilitator `/supported`: the schemes this server takes, and its settling key."""
    deps = _deps(request)
    network = network_of(deps.chain.chain_id)
    kinds: list[dict[str, Any]] = [{"x402Version": X402_VERSION, "scheme": VOUCHER_SCHEME, "network": network}]
    if deps.exact_token is not None:
        token = deps.exact_token
        extra = {"asset": token.address, "name": token.name, "version": token.version}
        kinds.append({"x402Version": X402_VERSION, "scheme": EXACT, "network": network, "extra": extra})
        if deps.request_pricing is not None:  # POST /v1/requests, settled by the service after the work
            upto = {"asset": token.address, "facilitatorAddress": deps.paywall.service,
                    "assetTransferMethod": "permit2"}  # fmt: skip
            kinds.append({"x402Version": X402_VERSION, "scheme": UPTO, "network": network, "extra": upto})
    return _json({"kinds": kinds, "extensions": [], "signers": {"eip155:*": [deps.paywall.service]}})


async def _facilitated(request: web.Request) -> tuple[ApiDeps, ExactOffer, dict[str, Any], dict[str, Any]]:
    """What `/verify` and `/settle` take: `{x402Version, paymentPayload, paymentRequirements}`
    for an `exact` offer of this server, which is looked up again (terms, price, the asset's
    receiver: a caller's requirements are never taken on trust)."""
    deps = _deps(request)
    body = await _json_body(request, "an x402 facilitator request")
    payment = body.get("paymentPayload") if isinstance(body, dict) else None
    wanted = body.get("paymentRequirements") if isinstance(body, dict) else None
    if not isinstance(payment, dict) or not isinstance(wanted, dict):
        raise ApiError(400, "expected {x402Version, paymentPayload, paymentRequirements}", code="bad_request")
    extra: dict[str, Any] = wanted["extra"] if isinstance(wanted.get("extra"), dict) else {}
    digest_text, terms_id = extra.get("assetDigest"), extra.get("termsId")
    if wanted.get("scheme") != EXACT or not isinstance(digest_text, str) or not isinstance(terms_id, int):
        raise ApiError(400, "only this server's exact offers (extra.assetDigest, extra.termsId) are facilitated")
    try:
        digest = bytes.fromhex(digest_text.removeprefix("0x"))
    except ValueError:
        raise ApiError(400, "extra.assetDigest is not hex", code="bad_request") from None
    offers = await _exact_offers(deps, await _offers(deps, digest, terms_id))
    if len(digest) != 32 or not offers:
        raise ApiError(404, f"no exact offer for terms {terms_id} of asset {digest_text} here", code="no_offer")
    return deps, offers[0], payment, wanted


def _payer_of(payment: dict[str, Any]) -> str | None:
    auth = payment.get("payload", {}).get("authorization") if isinstance(payment.get("payload"), dict) else None
    payer = auth.get("from") if isinstance(auth, dict) else None
    return payer if isinstance(payer, str) and is_address(payer) else None


async def x402_verify(request: web.Request) -> web.Response:
    """x402 facilitator `/verify` for this server's exact offers: valid or why not, changing nothing."""
    deps, offer, payment, _ = await _facilitated(request)
    try:
        auth = parse_exact(payment, offer)
    except PaymentHeaderError as exc:  # x402: an invalid payload is an answer, not an error
        return _json({"isValid": False, "invalidReason": "invalid_payload", "invalidMessage": str(exc),
                      "payer": _payer_of(payment)})  # fmt: skip
    try:
        verify_exact(auth, offer)
        await check_on_chain(deps.chain.client, auth, offer.token)
    except PaymentRejectedError as exc:
        return _json({"isValid": False, "invalidReason": exc.code, "invalidMessage": str(exc), "payer": auth.payer})
    return _json({"isValid": True, "payer": auth.payer})


async def x402_settle(request: web.Request) -> web.Response:
    """x402 facilitator `/settle` for this server's exact offers: `agents.api.exact.accept_exact`
    (one use per authorization, settled from the service's key)."""
    deps, offer, payment, _ = await _facilitated(request)
    network = network_of(offer.chain_id)
    try:
        auth = parse_exact(payment, offer)
    except PaymentHeaderError as exc:
        return _json({"success": False, "errorReason": "invalid_payload", "errorMessage": str(exc),
                      "payer": _payer_of(payment), "transaction": "", "network": network})  # fmt: skip
    try:
        tx_hash = await accept_exact(deps.journal, deps.chain.client, auth, offer)
    except PaymentRejectedError as exc:
        return _json({"success": False, "errorReason": exc.code, "errorMessage": str(exc), "payer": auth.payer,
                      "transaction": "", "network": network})  # fmt: skip
    return _json({"success": True, "payer": auth.payer, "transaction": tx_hash, "network": network,
                  "amount": str(auth.value)})  # fmt: skip


async def asset_content(request: web.Request) -> web.Response:
    return await _paid_content(request, _digest(request))


async def content(request: web.Request) -> web.Response:
    deps = _deps(request)
    text = request.match_info["cid"]
    try:
        cid = Cid.parse(text)
    except CidError as exc:
        raise ApiError(400, f"not a CID: {exc}", code="bad_cid") from None
    # an asset's image is licensed content, under whatever CID it is asked for (a CIDv0 names the
    # same dag-pb root as the CIDv1 the catalog records; a raw block's CID is the bytes' digest)
    as_v1 = Cid(1, cid.codec, cid.digest)
    job = await deps.catalog.by_cid(str(as_v1))
    if job is not None:
        return await _paid_content(request, bytes.fromhex(job.payload["sha256"]))
    try:
        data = await deps.store.get(cid)
    except BlockNotFoundError:
        raise ApiError(404, f"no content {cid} here") from None
    except CidError:  # a block stored under another codec: not a file by this CID
        raise ApiError(404, f"no content {cid} here (a block of another kind has its digest)") from None
    digest = hashlib.sha256(data).digest()
    # a registered asset's bytes are never free (the chain's record as of at most a second ago:
    # bytes kept here are kept once registered, so the index already knows them)
    if await deps.catalog.get(digest) is not None or await deps.lineage.get(digest, fresh=False) is not None:
        return await _paid_content(request, digest)
    kind = "application/json" if data[:1] in (b"{", b"[") else "application/octet-stream"
    return web.Response(body=data, content_type=kind, headers={"Cache-Control": "public, max-age=31536000, immutable"})


async def models(request: web.Request) -> web.Response:
    return _json({"items": await _deps(request).chain.models()})


def _terms_id(request: web.Request) -> int:
    try:
        terms_id = int(request.match_info["termsId"])
    except ValueError:
        raise ApiError(400, "a terms id is a positive integer", code="bad_terms_id") from None
    if not 1 <= terms_id < 2**63:
        raise ApiError(400, "a terms id is a positive integer", code="bad_terms_id")
    return terms_id


async def terms(request: web.Request) -> web.Response:
    terms_id = _terms_id(request)
    record = await _deps(request).chain.terms_record(terms_id)
    if record is None:
        raise ApiError(404, f"no terms {terms_id}")
    return _json(record)


async def deployment(request: web.Request) -> web.Response:
    deps = _deps(request)
    client = deps.chain.client
    return _json(
        {
            "chainId": deps.chain.chain_id,
            "network": f"eip155:{deps.chain.chain_id}",
            "rpcUrl": deps.rpc_url,
            "service": deps.paywall.service,
            "contracts": {
                name: {"address": contract.address, "abi": contract.abi} for name, contract in client.contracts.items()
            },
        }
    )


async def channel(request: web.Request) -> web.Response:
    """The channel (payer, this service, terms): what this server accepted and the chain settled."""
    deps = _deps(request)
    payer = _address(request.match_info["payer"], "payer")
    terms_id = _terms_id(request)
    if await deps.chain.terms_record(terms_id) is None:
        raise ApiError(404, f"no terms {terms_id}")
    service = deps.paywall.service
    book, settled = await asyncio.gather(
        asyncio.to_thread(deps.paywall.book.channel, payer, service, terms_id),
        deps.chain.settled(payer, service, terms_id),
    )
    accepted = max(book[0] if book is not None else 0, settled)
    return _json(
        {
            "payer": payer,
            "service": service,
            "termsId": terms_id,
            "acceptedCumulative": str(accepted),
            "settled": str(settled),
        }
    )


async def owed(request: web.Request) -> web.Response:
    deps = _deps(request)
    account = _address(request.match_info["address"], "address")
    currency = _address(request.query.get("currency", "0x" + "00" * 20), "currency")
    prices = deps.cost_prices
    assert prices is not None

    async def costs_of(digests: list[str]) -> dict[str, dict[str, Any] | None]:
        found = [await deps.catalog.get(bytes.fromhex(digest[2:])) for digest in digests]
        known = [job for job in found if job is not None]
        since = min((job.created_at for job in known), default=0.0)
        settled = await deps.journal.call(jobs.settlements_since, deps.journal, since, most=MAX_COST_JOBS)
        book = Settlements(settled)
        return {
            digest: None if job is None else asset_usd(job.payload, prices, book)
            for digest, job in zip(digests, found, strict=True)
        }

    eth = int(currency, 16) == 0  # the prices name ether's; a token's revenue is not priced
    return _json(
        await accounts.owed(
            deps.chain,
            deps.catalog,
            deps.data_trees,
            account,
            currency,
            costs_of=costs_of,
            usd_per_unit=prices.usd_per_eth / 1e18 if eth else None,
        )
    )


async def licences(request: web.Request) -> web.Response:
    holder = _address(request.match_info["address"], "holder")
    return _json({"holder": holder, "items": await _deps(request).chain.licences_of(holder)})


async def escrow(request: web.Request) -> web.Response:
    """A payer's escrow with a service (default: this server's) and what its vouchers accepted
    here promise of it (nothing, for another service's escrow)."""
    payer = _address(request.match_info["address"], "payer")
    currency = _address(request.query.get("currency", "0x" + "00" * 20), "currency")
    deps = _deps(request)
    service = _address(request.query.get("service", deps.paywall.service), "service")
    if service == deps.paywall.service:
        held, promised = await asyncio.gather(
            deps.chain.escrow(payer, currency, service), deps.paywall.promised(payer, currency)
        )
    else:
        held, promised = await deps.chain.escrow(payer, currency, service), 0
    return _json({"payer": payer, "currency": currency, "service": service, **held, "promised": str(promised)})


async def eip712(request: web.Request) -> web.Response:
    deps = _deps(request)
    return _json(
        {
            "domain": domain(deps.chain.chain_id, deps.chain.settlement),
            "types": VOUCHER_TYPES,
            "primaryType": "Voucher",
            "service": deps.paywall.service,
        }
    )


async def submit_voucher(request: web.Request) -> web.Response:
    deps = _deps(request)
    body = await _json_body(request, "the voucher")
    try:
        voucher = parse_voucher(body)
    except ValueError as exc:
        raise ApiError(422, f"not a voucher: {exc}", code="bad_voucher") from None
    try:
        queued = await deps.paywall.accept(voucher, asset=voucher.voucher.asset, terms_id=voucher.voucher.terms_id)
    except PaymentRejectedError as exc:
        raise ApiError(422, str(exc), code=exc.code, details=exc.details) from None
    return _json({"queued": queued, "cumulativeAmount": str(voucher.voucher.cumulative_amount)}, status=202)


def _generation_of(body: Any) -> tuple[GenerationRequest, str | None, dict[str, Any]]:
    """The generation request in a `POST /v1/requests` body, the requester it names (if any), and
    what else its job keeps (its project label)."""
    if not isinstance(body, dict):
        raise ApiError(422, "the request is a JSON object", code="bad_request_fields")
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or len(prompt) > MAX_PROMPT_CHARS:
        raise ApiError(422, f"prompt is a string of at most {MAX_PROMPT_CHARS} characters", code="bad_request_fields")
    unknown = set(body) - {"prompt", "seed", "steps", "guidance", "negativePrompt", "requester", "project", "lane"}
    if unknown:
        raise ApiError(422, f"unknown fields {sorted(unknown)}", code="bad_request_fields")
    requester = body.get("requester")
    if requester is not None and (not isinstance(requester, str) or len(requester) > 64):
        raise ApiError(422, "requester is a string of at most 64 characters", code="bad_request_fields")
    project = body.get("project")
    if project is not None and (not isinstance(project, str) or not 1 <= len(project) <= 64):
        raise ApiError(422, "project is a string of 1 to 64 characters", code="bad_request_fields")
    lane = body.get("lane", STANDARD_LANE)
    if lane not in LANES:
        raise ApiError(422, f"lane is one of {list(LANES)}", code="bad_request_fields")
    values: dict[str, Any] = {}
    for name, default, kinds in (("seed", 0, (int,)), ("steps", 25, (int,)), ("guidance", 1.5, (int, float))):
        value = body.get(name, default)
        if isinstance(value, bool) or not isinstance(value, kinds):
            raise ApiError(422, f"{name} must be a number", code="bad_request_fields")
        values[name] = value
    negative = body.get("negativePrompt", "")
    if not isinstance(negative, str) or len(negative) > MAX_PROMPT_CHARS:
        message = f"negativePrompt is a string of at most {MAX_PROMPT_CHARS} characters"
        raise ApiError(422, message, code="bad_request_fields")
    try:
        generation = GenerationRequest(prompt=prompt, negative_prompt=negative, **values)
    except GeneratorError as exc:
        raise ApiError(422, str(exc), code="bad_request_fields") from None
    return generation, requester, {**({"project": project} if project is not None else {}), "lane": lane}


async def submit_request(request: web.Request) -> web.Response:
    """A generation request for the agents (enabled with `accept_requests`): journaled once per
    (request, requester), like the CLI's and the chain's. Where the operator prices requests
    (`ApiDeps.request_pricing`), paid with x402 `upto` (`agents.api.upto`), the payer its requester."""
    deps = _deps(request)
    generation, requester, extra = _generation_of(await _json_body(request, "the request"))
    if deps.request_pricing is not None:
        if deps.exact_token is None:  # paid requests without a token to pay in: closed, never free
            raise ApiError(503, "generation requests are paid here, but this server has no token to take them in",
                           code="payments_unavailable")  # fmt: skip
        return await _paid_request(request, deps, generation, requester, extra)
    await _within_quota(deps, requester or "api", generation)
    key, new = await deps.journal.call(
        jobs.submit_request, deps.journal, generation, requester=requester or "api", source="api", extra=extra
    )
    return _json({"key": key, "new": new}, status=202 if new else 200)


async def _within_quota(deps: ApiDeps, requester: str, generation: GenerationRequest, *, spending: int = 0) -> None:
    """429 `quota_exceeded` (which limit, what was used, when it resets, and `Retry-After`) when one
    more request of `requester` (`generation`, authorising `spending`) would pass its quota this
    period (a high-cost one counted against its own limit too); before anything is journaled or
    computed."""
    quota = deps.quotas.of(requester) if deps.quotas is not None else None
    if quota is None:
        return
    now = time.time()
    start, _ = quota.window(now)
    journal = deps.journal
    asked = await journal.call(journal.of_requester_since, jobs.ASSET, requester, start, limit=MOST_COUNTED)
    paid = await journal.call(journal.of_requester_since, jobs.X402_UPTO, requester, start, limit=MOST_COUNTED)
    side = deps.request_pricing.default_side if deps.request_pricing is not None else DEFAULT_SIDE
    used = usage_of([job.payload for job in asked], sum(spend_of(job) for job in paid),
                    costly_over=quota.costly_over, default_side=side)  # fmt: skip
    work = work_of(asdict(generation), side)
    over = check(quota, used, now, spending=spending, work=work)
    if over is None:
        return
    details = {"limit": over.limit, "allowed": over.allowed, "used": over.used, "resetsAt": over.resets_at}
    error = ApiError(429, over.message(), code="quota_exceeded", details=details)
    error.headers["Retry-After"] = str(max(1, int(over.resets_at - now + 0.999)))
    raise error


async def _paid_request(
    request: web.Request, deps: ApiDeps, generation: GenerationRequest, requester: str | None, extra: dict[str, Any]
) -> web.Response:
    """A generation request paid with x402 `upto`: 402 with the offer (at most the request's
    maximum) until a permit for it comes; then journaled for the payer, the charge settled after
    the work (`agents.daemons.charge`), the payment in `PAYMENT-RESPONSE` and the request's status."""
    assert deps.request_pricing is not None and deps.exact_token is not None
    lane = str(extra.get("lane", STANDARD_LANE))
    offer = UptoOffer(deps.request_pricing.maximum(generation, lane), deps.exact_token, deps.paywall.service,
                      deps.chain.chain_id)  # fmt: skip
    body = {
        "x402Version": X402_VERSION,
        "resource": {"url": str(request.url), "description": "one generated image, metered",
                     "mimeType": "application/json"},
        "accepts": [offer.requirements()],
    }  # fmt: skip

    def required(message: str, code: str) -> ApiError:
        error = ApiError(402, message, code=code, details={"x402": {**body, "error": message}})
        error.headers[REQUIRED_HEADER] = encode_header({**body, "error": message})
        return error

    header = request.headers.get(SIGNATURE_HEADER) or request.headers.get(LEGACY_SIGNATURE_HEADER)
    if header is None:
        raise required(f"payment required: authorise at most {offer.maximum} with x402 upto (see accepts)",
                       "payment_required")  # fmt: skip
    try:
        permit = parse_upto(decode_header(header), offer)
    except PaymentHeaderError as exc:
        raise required(f"payment refused: {exc}", "bad_payment") from None
    if requester is not None and requester.lower() != permit.payer.lower():
        raise ApiError(422, f"a paid request's requester is its payer {permit.payer}, not {requester!r}",
                       code="bad_request_fields")  # fmt: skip
    await _within_quota(deps, permit.payer, generation, spending=offer.maximum)
    try:
        key, new, payment = await accept_upto(deps.journal, deps.chain.client, permit, offer, generation, extra)
    except PaymentRejectedError as exc:
        raise required(f"payment refused: {exc}", exc.code) from None
    response = {
        "success": new,
        "transaction": "",
        "network": network_of(offer.chain_id),
        "payer": permit.payer,
        "extra": {"settlement": "deferred" if new else "not used", "payment": payment,
                  "authorised": str(permit.amount), "request": key},
    }  # fmt: skip
    if not new:
        response["errorReason"] = "request_exists"
    return _json({"key": key, "new": new, "payment": payment}, status=202 if new else 200,
                 headers={RESPONSE_HEADER: encode_header(response)})  # fmt: skip


async def draft_derivative(request: web.Request) -> web.Response:
    """A derivative for the creator's wallet to register (see `agents.api.derivatives`)."""
    deps = _deps(request)
    derivative = derivative_of(await _json_body(request, "the derivative"))
    stored = derivative.cids()
    record = derivative.asset_input(stored.metadata)
    on = await deps.lineage.get(derivative.digest)
    if on is not None:  # registered: keep its files here once the chain holds exactly this record
        if (on.creator.lower(), on.params_digest, on.metadata_uri) != (
            derivative.creator.lower(),
            derivative.params_digest,
            record["metadataURI"],
        ):
            message = (
                f"0x{derivative.digest.hex()} is already registered by {on.creator} with another record "
                "(ProvenanceRegistry__AlreadyRegistered): the registry takes each image once"
            )
            raise ApiError(409, message, code="registered")
        await derivative.store(deps.store)
        return _json({"digest": hex0x(derivative.digest), "stored": True, "metadataCid": stored.metadata}, 201)
    tx = await simulate_register(deps.chain.client, derivative, stored.metadata)
    return _json(
        {
            "digest": hex0x(derivative.digest),
            "cid": stored.image,
            "paramsCid": stored.params,
            "metadataCid": stored.metadata,
            "paramsDigest": hex0x(derivative.params_digest),
            "input": {
                **record,
                "contentDigest": hex0x(record["contentDigest"]),
                "paramsDigest": hex0x(record["paramsDigest"]),
                "inputCommitment": hex0x(record["inputCommitment"]),
                "parents": [hex0x(p) for p in record["parents"]],
            },
            "licenseIds": [str(i) for i in derivative.license_ids],
            "transaction": tx,
        }
    )


async def review_queue(request: web.Request) -> web.Response:
    """Assets the curator sent to a person, oldest first."""
    deps = _deps(request)
    limit = _int_query(request, "limit", 50, 1, MAX_LIMIT)
    offset = _int_query(request, "offset", 0, 0, 10**9)
    counts = await deps.journal.call(deps.journal.counts)
    waiting = await deps.journal.call(deps.journal.at_stage, jobs.REVIEW, limit=limit, offset=offset)
    items = [review_item(job) for job in waiting if job.kind == jobs.ASSET]
    return _json({"total": int(counts.get(jobs.REVIEW, 0)), "offset": offset, "items": items})


async def review_eip712(request: web.Request) -> web.Response:
    deps = _deps(request)
    registry = deps.chain.client.contract("ProvenanceRegistry").address
    return _json(review_types(deps.chain.chain_id, registry, deps.reviewers))


async def review_decide(request: web.Request) -> web.Response:
    """A reviewer's signed decision on an asset in review (see `agents.api.review`)."""
    deps, digest = _deps(request), _digest(request)
    registry = deps.chain.client.contract("ProvenanceRegistry").address
    body = await _json_body(request, "the decision")
    decision, signature = decision_of(body, digest, deps.chain.chain_id, registry, deps.reviewers)
    try:
        key, stage, reason = await deps.journal.call(
            jobs.decide_review, deps.journal, decision, signature, decided_at=time.time()
        )
    except jobs.ReviewStateError as exc:
        raise ApiError(exc.status, str(exc), code="not_in_review") from None
    except StaleJobError:  # decided by another request a moment ago
        raise ApiError(409, f"asset 0x{digest.hex()} was decided a moment ago", code="not_in_review") from None
    return _json({"key": key, "stage": stage, "reason": reason})


async def refuse_requests(request: web.Request) -> web.Response:
    """`POST /v1/requests` where generation requests are off (`proofmint agent api`): a 404 that
    says so and where to send them instead."""
    raise ApiError(
        404,
        "this server takes no generation requests (proofmint agent api serves assets and licences); "
        "POST them to the API of `proofmint up`, or journal them with `proofmint request PROMPT --state DIR`",
        code="requests_not_accepted",
    )


MAX_COST_JOBS = 100_000
"""The most jobs one `GET /v1/costs` reads (the newest beyond it are left out: narrow `since`)."""


async def costs_report(request: web.Request) -> web.Response:
    """What the generation jobs matching the query consumed and cost (`agents.core.costs`)."""
    deps = _deps(request)
    texts: dict[str, str | None] = {}
    for name in ("requester", "project"):
        text = request.query.get(name)
        if text is not None and not 1 <= len(text) <= 64:
            raise ApiError(400, f"{name} is 1 to 64 characters", code="bad_query", details={"parameter": name})
        texts[name] = text
    model = _int_query(request, "model", -1, 0, 2**63) if "model" in request.query else None
    try:
        since = float(request.query.get("since", "0"))
    except ValueError:
        raise ApiError(
            400, "since is a time in unix seconds", code="bad_query", details={"parameter": "since"}
        ) from None
    if not 0 <= since < 1e11:
        raise ApiError(400, "since is a time in unix seconds", code="bad_query", details={"parameter": "since"})
    wanted = CostFilter(texts["requester"], texts["project"], model, since)
    payloads, truncated = await deps.journal.call(
        jobs.payloads_since, deps.journal, jobs.ASSET, since, wanted.takes, most=MAX_COST_JOBS
    )
    settled = await deps.journal.call(jobs.settlements_since, deps.journal, since, most=MAX_COST_JOBS)
    assert deps.cost_prices is not None
    summary = summarise(payloads, deps.cost_prices, Settlements(settled))
    web3 = deps.chain.client.web3
    try:
        history = await deps.chain.client.node(web3.eth.fee_history, FEE_HISTORY_BLOCKS, "latest", [50])
        summary["gasNow"] = at_gas_price(summary, gas_price_of(history), deps.cost_prices)
    except Exception as error:  # a node without eth_feeHistory: the receipts' figures stand alone
        summary["gasNow"] = {"error": f"no fee history: {str(error)[:200]}"}
    filters = {"requester": wanted.requester, "project": wanted.project, "model": wanted.model, "since": since}
    return _json({**summary, "filters": filters, "truncated": truncated})


async def get_request(request: web.Request) -> web.Response:
    deps = _deps(request)
    key = request.match_info["key"]
    job = await deps.journal.call(deps.journal.get, key) if key.startswith("req-") and len(key) <= 80 else None
    if job is None or job.kind != jobs.ASSET:
        raise ApiError(404, f"no request {key[:80]}")
    return _json(await _status_of(deps, job))


async def _status_of(deps: ApiDeps, job: Any) -> dict[str, Any]:
    """A request's status, with its x402 upto payment where it was paid."""
    status: dict[str, Any] = dict(request_status(job))
    paid_with = job.payload.get("payment")
    if isinstance(paid_with, str):
        payment = await deps.journal.call(deps.journal.get, paid_with)
        if payment is not None and payment.kind == jobs.X402_UPTO:
            status["payment"] = payment_view(payment)
    return status


async def list_requests(request: web.Request) -> web.Response:
    """A requester's generation requests (`?requester=`, as they were submitted), newest first."""
    deps = _deps(request)
    requester = request.query.get("requester", "")
    if not requester or len(requester) > 64:
        raise ApiError(400, "requester is required: who asked (1 to 64 characters)", code="bad_query")
    limit = _int_query(request, "limit", 50, 1, MAX_LIMIT)
    offset = _int_query(request, "offset", 0, 0, 10**9)
    total, found = await deps.journal.call(deps.journal.of_requester, jobs.ASSET, requester, limit=limit, offset=offset)
    return _json({"total": total, "offset": offset, "items": [await _status_of(deps, job) for job in found]})


def _instrument(metrics: Metrics) -> Middleware:
    """Requests by route and status, and their latency, on the agents' metrics registry."""
    requests = Counter(
        "proofmint_api_requests", "API requests by route and status", ["route", "status"], registry=metrics.registry
    )
    latency = Histogram(
        "proofmint_api_seconds",
        "API request latency by route",
        ["route"],
        buckets=LATENCY_BUCKETS,
        registry=metrics.registry,
    )

    @web.middleware
    async def instrument(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else "unmatched"
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            requests.labels(route, str(status)).inc()
            latency.labels(route).observe(time.perf_counter() - started)

    return instrument


DepsOpener = Callable[[], AbstractAsyncContextManager[ApiDeps]]
"""Opens the API's resources when the application starts and closes them when it stops."""


def _owned(open_deps: DepsOpener, metrics: Metrics) -> Callable[[web.Application], AsyncIterator[None]]:
    async def own(app: web.Application) -> AsyncIterator[None]:
        async with open_deps() as deps:
            if deps.metrics is None:
                deps.metrics = metrics
            app[DEPS] = deps
            yield

    return own


def build_app(
    deps: ApiDeps | DepsOpener,
    *,
    metrics: Metrics | None = None,
    dapp_dir: Path | None = None,
    max_body: int = MAX_BODY_BYTES,
    rate_per_s: float = 50.0,
    burst: int = 100,
    accept_requests: bool = False,
) -> web.Application:
    """The application over `deps`: resources opened by the caller (who closes them), or, as
    `agents.api.serve.api_app` passes them, an opener that the application enters on start-up
    and leaves on clean-up (`cleanup_ctx`), so it owns its resources and `runner.cleanup()`
    closes them. `accept_requests` opens `POST /v1/requests` (generation requests; free work
    for the agents, so off unless the operator wants it, as `proofmint up` does)."""
    given = deps if isinstance(deps, ApiDeps) else None
    meter = metrics or (given.metrics if given is not None else None) or Metrics()
    limiter = RateLimiter(rate_per_s, burst)
    app = web.Application(
        client_max_size=max_body,
        middlewares=[
            _instrument(meter),
            json_errors,
            limiter.middleware(exempt=frozenset({"/health", "/metrics"})),
        ],
    )
    if isinstance(deps, ApiDeps):
        deps.metrics = meter
        app[DEPS] = deps
    else:
        app.cleanup_ctx.append(_owned(deps, meter))
    r = app.router
    r.add_get("/health", health)
    r.add_get("/metrics", prometheus_metrics)
    r.add_get("/openapi.json", openapi)
    r.add_get("/.well-known/openapi.json", openapi)
    r.add_get("/v1/assets", list_assets)
    r.add_get("/v1/assets/{digest}", get_asset)
    r.add_get("/v1/assets/{digest}/similar", similar_assets)
    r.add_get("/v1/assets/{digest}/terms", asset_terms)
    r.add_get("/v1/assets/{digest}/content", asset_content)
    r.add_get("/v1/assets/{digest}/lineage", asset_lineage)
    r.add_get("/v1/assets/{digest}/preview", asset_preview)
    r.add_get("/v1/content/{cid}", content)
    r.add_get("/v1/models", models)
    r.add_get("/v1/deployment", deployment)
    r.add_get("/v1/channels/{payer}/{termsId}", channel)
    r.add_get("/v1/accounts/{address}/owed", owed)
    r.add_get("/v1/terms/{termsId}", terms)
    r.add_get("/v1/holders/{address}/licences", licences)
    r.add_get("/v1/holders/{address}/escrow", escrow)
    r.add_get("/v1/vouchers/eip712", eip712)
    r.add_post("/v1/vouchers", submit_voucher)
    r.add_get("/v1/agents", agents_index)
    r.add_get("/v1/agents/{role}/registration.json", agent_registration)
    r.add_get("/v1/agents/{role}/reputation", agent_reputation)
    r.add_get("/.well-known/agent-registration.json", agent_domain)
    r.add_get("/v1/validations/{requestHash}", validation)
    r.add_get("/v1/x402/supported", x402_supported)
    r.add_post("/v1/x402/verify", x402_verify)
    r.add_post("/v1/x402/settle", x402_settle)
    r.add_get("/v1/costs", costs_report)
    r.add_get("/v1/requests/{key}", get_request)
    r.add_get("/v1/requests", list_requests)
    r.add_post("/v1/derivatives", draft_derivative)
    r.add_get("/v1/review", review_queue)
    r.add_get("/v1/review/eip712", review_eip712)
    r.add_post("/v1/review/{digest}", review_decide)
    r.add_post("/v1/requests", submit_request if accept_requests else refuse_requests)
    files = DappFiles(dapp_dir or (given.dapp_dir if given is not None else None) or default_dir())
    r.add_get("/", to_app)
    r.add_get(DAPP_PREFIX.rstrip("/"), to_app)
    r.add_get(DAPP_PREFIX, files.handle)
    r.add_get(DAPP_PREFIX + "{name}", files.handle)
    return app
