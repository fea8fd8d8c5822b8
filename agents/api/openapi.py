"""The OpenAPI 3.1 document of the API (served at `/openapi.json` and `/.well-known/openapi.json`;
the fuzz tests generate requests from it, and tests hold the app's routes and its answers to it).

Every JSON answer has a component schema that names each field, its type and whether it is
required; objects admit no other fields (`additionalProperties: false`), so the schema of an
asset (`Asset`, `AssetDetail`) is the shape `agents.api.views` builds and `dapp/src/api.ts`
reads. Schemas use the JSON Schema subset OpenAPI 3.1 shares with 2020-12: `type` (one or a
list, for nullable fields), `enum`, `const`, `pattern`, bounds, `properties`, `required`,
`additionalProperties`, `items`, `prefixItems`, `oneOf` and `$ref`.
"""

from __future__ import annotations

from typing import Any

from agents.deploy.erc8004 import ROLES

DIGEST = {"type": "string", "pattern": "^(0x)?[0-9a-fA-F]{64}$", "description": "sha-256 of the image, hex"}
ADDRESS = {"type": "string", "pattern": "^0x[0-9a-fA-F]{40}$"}
UINT = {"type": "string", "pattern": "^[0-9]+$", "description": "an unsigned integer, decimal"}

ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["status", "code", "message"],
            "properties": {
                "status": {"type": "integer"},
                "code": {"type": "string"},
                "message": {"type": "string"},
                "details": {"type": "object"},
            },
        }
    },
}
VOUCHER = {
    "type": "object",
    "required": ["payer", "service", "asset", "termsId", "cumulativeAmount", "deadline", "signature"],
    "properties": {
        "payer": ADDRESS,
        "service": ADDRESS | {"description": "the service the voucher pays (this server's: see /v1/deployment)"},
        "asset": {"type": "string", "pattern": "^0x[0-9a-fA-F]{64}$"},
        "termsId": {"oneOf": [{"type": "integer", "minimum": 0}, UINT]},
        "cumulativeAmount": {"oneOf": [{"type": "integer", "minimum": 0}, UINT]},
        "deadline": {"oneOf": [{"type": "integer", "minimum": 0}, UINT]},
        "signature": {"type": "string", "pattern": "^0x[0-9a-fA-F]{130}$"},
    },
}

REQUEST = {
    "type": "object",
    "required": ["prompt"],
    "properties": {
        "prompt": {"type": "string", "minLength": 1, "maxLength": 1000},
        "negativePrompt": {"type": "string", "maxLength": 1000},
        "seed": {"type": "integer", "minimum": 0, "maximum": 2**63 - 1},
        "steps": {"type": "integer", "minimum": 1, "maximum": 1000},
        "guidance": {"type": "number", "minimum": 0, "maximum": 50},
        "requester": {"type": "string", "maxLength": 64},
        "project": {
            "type": "string",
            "minLength": 1,
            "maxLength": 64,
            "description": "a free label costs are grouped by (GET /v1/costs?project=)",
        },
        "lane": {
            "enum": ["standard", "fast"],
            "description": "served first (never starving the standard lane) at the fast lane's price",
        },
    },
    "additionalProperties": False,
}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` or null: a type list for simple types, `oneOf` for references."""
    if "type" in schema and isinstance(schema["type"], str):
        return schema | {"type": [schema["type"], "null"]}
    return {"oneOf": [schema, {"type": "null"}]}


def _object(properties: dict[str, Any], *, optional: tuple[str, ...] = (), description: str = "") -> dict[str, Any]:
    """An object with exactly these fields, all required but `optional`."""
    schema: dict[str, Any] = {
        "type": "object",
        "required": [name for name in properties if name not in optional],
        "properties": properties,
        "additionalProperties": False,
    }
    return schema | ({"description": description} if description else {})


def _items(item: dict[str, Any], **more: Any) -> dict[str, Any]:
    return _object({**more, "items": {"type": "array", "items": item}})


STRING = {"type": "string"}
INT = {"type": "integer"}
NUMBER = {"type": "number"}
BOOL = {"type": "boolean"}
HEX32 = {"type": "string", "pattern": "^0x[0-9a-f]{64}$", "description": "32 bytes, 0x and lowercase hex"}

ZK_STATUS = {
    "description": "Whether an EZKL proof of the curation model's inference on the asset was verified on chain",
    "oneOf": [
        _object(
            {
                "status": {"const": "attested"},
                "modelId": _nullable(INT | {"description": "the curation model version proven"}),
                "score": _nullable(NUMBER | {"description": "the proven fixed-point score (over 2^13)"}),
                "verdict": _nullable(
                    {
                        "enum": ["accept", "review", "reject"],
                        "description": "what the contract derived from the proven score and the model version's bands",
                    }
                ),
                "transaction": _nullable(HEX32 | {"description": "the attesting transaction"}),
            }
        ),
        _object({"status": {"const": "unproven"}, "reason": _nullable(STRING)}),
        _object(
            {
                "status": {
                    "enum": ["pending", "unknown"],
                    "description": "pending: being proven; unknown: registered outside these agents",
                }
            }
        ),
    ],
}
CURATION_FLAG = _object({"concept": STRING, "where": {"enum": ["prompt", "image"]}, "similarity": NUMBER})
CURATION = _object(
    {
        "decision": {"enum": ["accept", "review", "reject"]},
        "alignment": NUMBER | {"description": "CLIP similarity of image and prompt"},
        "score": _nullable(
            NUMBER | {"description": "the curation head's score, which decided (null: cosine bands decided)"}
        ),
        "flags": {"type": "array", "items": _ref("CurationFlag")},
        "duplicateOf": _nullable(HEX32 | {"description": "the nearest earlier asset, when a near duplicate"}),
        "duplicateSimilarity": NUMBER,
    },
    description="The curator's verdict",
)
ASSET_FIELDS: dict[str, Any] = {
    "digest": HEX32 | {"description": "sha-256 of the image: the asset's id on chain"},
    "cid": _nullable(STRING | {"description": "the image's CIDv1 (null: no image on this server)"}),
    "prompt": _nullable(STRING),
    "creator": _nullable(ADDRESS),
    "requester": _nullable(STRING | {"description": "who asked for it: an address, or `api` / `cli`"}),
    "seq": _nullable(INT | {"description": "the registry's registration number"}),
    "width": _nullable(INT),
    "height": _nullable(INT),
    "zk": _ref("ZkStatus"),
    "curation": _nullable(_ref("Curation")),
    "source": {"enum": ["agents", "chain"], "description": "made by these agents, or known from the chain only"},
}
ASSET = _object(ASSET_FIELDS, description="An asset in a list")
SIMILAR_ASSET = _object(ASSET_FIELDS | {"similarity": NUMBER | {"description": "cosine, in [-1, 1]"}})
GENERATION_REQUEST = _object(
    {
        "prompt": STRING,
        "negativePrompt": STRING,
        "seed": INT,
        "steps": INT,
        "guidance": NUMBER,
        "height": _nullable(INT),
        "width": _nullable(INT),
        "parents": {"type": "array", "items": HEX32},
    },
    description="What was asked for (the generator used these parameters as given, unless the lineage says it "
    "served fewer steps under load)",
)
LINEAGE = _object(
    {
        "modelId": _nullable(INT | {"description": "the registered model version that made it"}),
        "modelDigest": STRING | {"description": "digest of the model's weights"},
        "paramsCid": _nullable(
            STRING | {"description": "the parameters document: sha256 of its bytes is paramsDigest"}
        ),
        "pipeline": STRING,
        "scheduler": STRING,
        "adapters": {"type": "array", "items": STRING},
        "device": STRING,
        "dtype": STRING,
        "batch": INT,
        "steps": _nullable(INT | {"description": "the denoising steps it was made with"}),
        "requestedSteps": _nullable(
            INT | {"description": "what the request asked for, where the generator served fewer under load"}
        ),
        "adaptation": _nullable(STRING | {"description": "why it was served with fewer steps; null: as asked"}),
    },
    description="What produced the image beyond the request: enough to reproduce it on the same device",
)
REGISTRATION = _object(
    {"modelId": _nullable(INT | {"description": "the model version registered"}), "transaction": _nullable(HEX32)},
    description="The asset's registration on chain",
)
MARKET_REQUEST = _object(
    {"market": _nullable(ADDRESS), "requestId": UINT},
    description="The GenerationMarket request the asset fulfils",
)
TERMS = _object(
    {
        "termsId": INT,
        "asset": HEX32,
        "currency": ADDRESS,
        "pricePerUse": UINT,
        "price": UINT,
        "duration": INT | {"description": "seconds a licence lasts (0: perpetual)"},
        "derivativeRoyaltyBps": INT,
        "commercialUse": BOOL,
        "derivativesAllowed": BOOL,
        "active": BOOL,
        "superseded": BOOL | {"description": "terms of an earlier record of the asset: they sell nothing"},
    }
)
ASSET_DETAIL = _object(
    ASSET_FIELDS
    | {
        "metadataCid": _nullable(STRING),
        "manifestCid": _nullable(STRING | {"description": "the signed provenance manifest (C2PA vocabulary)"}),
        "metadataURI": _nullable(STRING),
        "request": _nullable(_ref("GenerationRequest")),
        "lineage": _nullable(_ref("Lineage")),
        "parents": {"type": "array", "items": HEX32},
        "paramsDigest": _nullable(HEX32 | {"description": "sha-256 of the generation parameters, as registered"}),
        "commitment": _nullable(HEX32 | {"description": "the Poseidon commitment to the curation input"}),
        "registration": _nullable(_ref("Registration")),
        "marketRequest": _nullable(_ref("MarketRequest")),
        "children": {"type": "array", "items": _ref("Asset")},
        "terms": {"type": "array", "items": _ref("Terms")},
    },
    description="One asset in full: provenance, lineage, curation, zk status, derivatives, terms",
)
LINEAGE_GRAPH = _object(
    {
        "root": HEX32,
        "nodes": {"type": "array", "items": _ref("Asset")},
        "edges": {
            "type": "array",
            "items": {"type": "array", "prefixItems": [HEX32, HEX32], "minItems": 2, "maxItems": 2},
            "description": "[parent, child] pairs",
        },
        "truncated": BOOL,
    }
)
MODEL = _object(
    {
        "modelId": INT,
        "developer": ADDRESS,
        "weightsDigest": HEX32,
        "paramsCommitment": HEX32,
        "dataRoot": HEX32,
        "verifier": ADDRESS,
        "vkDigest": HEX32,
        "verifierCodeHash": HEX32,
        "predecessor": INT,
        "developerBps": INT,
        "dataBps": INT,
        "registeredAt": INT,
        "retiredAt": INT,
        "metadataURI": STRING,
    },
    optional=("verifierCodeHash",),
)
LICENCE = _object(
    {"licenseId": UINT, "termsId": INT, "buyer": ADDRESS, "price": UINT, "expiresAt": INT, "transaction": HEX32}
)
ESCROW = _object(
    {
        "payer": ADDRESS,
        "currency": ADDRESS,
        "service": ADDRESS,
        "balance": UINT,
        "pendingWithdrawal": UINT,
        "unlockAt": INT,
        "expiresAt": INT,
        "withdrawal": {"enum": ["none", "waiting", "withdrawable", "expired"]},
        "promised": UINT,
    }
)
CHANNEL = _object({"payer": ADDRESS, "service": ADDRESS, "termsId": INT, "acceptedCumulative": UINT, "settled": UINT})
OWED = _object(
    {
        "account": ADDRESS,
        "currency": ADDRESS,
        "balance": UINT,
        "assets": {
            "type": "array",
            "items": _object(
                {
                    "digest": HEX32,
                    "prompt": _nullable(STRING),
                    "pendingRevenue": UINT,
                    "distributed": UINT,
                    "costUsd": _nullable(NUMBER)
                    | {"description": "what making it cost the operator (cost records, priced); null: not made here"},
                    "costByStage": {"type": ["object", "null"], "additionalProperties": NUMBER},
                    "revenueUsd": _nullable(NUMBER)
                    | {"description": "split and waiting revenue at the configured ether price; null for a token"},
                    "marginUsd": _nullable(NUMBER) | {"description": "revenueUsd - costUsd"},
                }
            ),
        },
        "models": {"type": "array", "items": _object({"modelId": INT, "developerBps": INT, "dataBps": INT})},
        "dataShares": {
            "type": "array",
            "items": _object(
                {
                    "modelId": INT,
                    "weight": INT,
                    "proof": {"type": "array", "items": HEX32},
                    "claimed": UINT,
                    "claimable": UINT,
                }
            ),
        },
    }
)
DEPLOYMENT = _object(
    {
        "chainId": INT,
        "network": STRING,
        "rpcUrl": _nullable(STRING),
        "service": ADDRESS,
        "contracts": {
            "type": "object",
            "additionalProperties": _object({"address": ADDRESS, "abi": {"type": "array"}}),
            "description": "by contract name: address and ABI",
        },
    }
)
EIP712 = _object(
    {
        "domain": _object({"name": STRING, "version": STRING, "chainId": INT, "verifyingContract": ADDRESS}),
        "types": {"type": "object", "description": "EIP-712 types (Voucher)"},
        "primaryType": {"const": "Voucher"},
        "service": ADDRESS,
    }
)
HEALTH = _object({"status": {"const": "ok"}, "chainId": INT, "block": INT})
REVIEW_ITEM = _object(
    {
        "key": STRING,
        "digest": HEX32,
        "prompt": STRING,
        "seed": INT,
        "alignment": _nullable(NUMBER),
        "score": _nullable(NUMBER | {"description": "the curation head's score (null: cosine bands decided)"}),
        "reason": _nullable(STRING),
        "cid": _nullable(STRING),
        "createdAt": NUMBER,
    },
    description="an asset waiting for a reviewer",
)
REVIEW_DECISION = {
    "type": "object",
    "required": ["reviewer", "approve", "deadline", "signature"],
    "properties": {
        "reviewer": ADDRESS,
        "approve": BOOL,
        "reason": {"type": "string", "maxLength": 500, "description": "required to reject"},
        "deadline": {"type": "integer", "description": "unix seconds; at most 7 days ahead"},
        "signature": {"type": "string", "pattern": "^0x[0-9a-fA-F]{130}$", "description": "EIP-712, by the reviewer"},
    },
    "additionalProperties": False,
}
REVIEW_EIP712 = _object(
    {
        "domain": _object({"name": STRING, "version": STRING, "chainId": INT, "verifyingContract": ADDRESS}),
        "types": {"type": "object", "description": "EIP-712 types (ReviewDecision)"},
        "primaryType": {"const": "ReviewDecision"},
        "reviewers": {"type": "array", "items": ADDRESS},
    }
)
REVIEW_OUTCOME = _object({"key": STRING, "stage": STRING, "reason": _nullable(STRING)})
DERIVATIVE_REQUEST = {
    "type": "object",
    "required": ["creator", "modelId", "parents", "licenseIds", "image"],
    "properties": {
        "creator": ADDRESS,
        "modelId": {"type": "integer", "minimum": 1},
        "parents": {"type": "array", "items": {"type": "string", "pattern": "^0x[0-9a-fA-F]{64}$"}, "minItems": 1,
                    "maxItems": 16},
        "licenseIds": {"type": "array", "items": {"type": "string", "pattern": "^[0-9]{1,78}$"}, "minItems": 1,
                       "maxItems": 16, "description": "one ERC-1155 licence id per parent, same order"},
        "image": {"type": "string", "description": "the image file in base64, at most 40 KiB"},
        "title": {"type": "string", "maxLength": 200},
    },
    "additionalProperties": False,
}  # fmt: skip
DERIVATIVE_DRAFT = _object(
    {
        "digest": HEX32,
        "cid": STRING,
        "paramsCid": STRING,
        "metadataCid": STRING,
        "paramsDigest": HEX32,
        "input": _object(
            {
                "contentDigest": HEX32,
                "creator": ADDRESS,
                "modelId": INT,
                "paramsDigest": HEX32,
                "inputCommitment": HEX32,
                "parents": {"type": "array", "items": HEX32},
                "metadataURI": STRING,
            }
        ),
        "licenseIds": {"type": "array", "items": STRING},
        "transaction": _object(
            {"from": ADDRESS, "to": ADDRESS, "data": {"type": "string", "pattern": "^0x[0-9a-f]*$"}}
        ),
    },
    description="ProvenanceRegistry.register(input, licenseIds), simulated as the creator: the wallet sends it",
)
REQUEST_STATUS = _object(
    {
        "key": STRING,
        "stage": STRING,
        "error": _nullable(STRING),
        "reason": _nullable(STRING),
        "prompt": STRING,
        "seed": INT,
        "requester": STRING,
        "source": STRING,
        "createdAt": NUMBER,
        "digest": HEX32,
        "lane": {"enum": ["standard", "fast"]},
        "project": STRING,
        "payment": _ref("UptoPayment"),
    },
    optional=("digest", "payment", "project"),
    description="a generation request: its stage and, in review, rejected or failed, why (reason); "
    "a paid one, its x402 upto payment",
)
_CONSUMED = {name: NUMBER for name in ("wall_s", "cpu_s", "proof_s", "gas", "fee_wei", "stored_bytes", "usd")}
COSTS = _object(
    {
        "jobs": INT,
        "registered": INT,
        "byStage": _object(
            {stage: _object(_CONSUMED) for stage in ("generate", "curate", "publish", "register", "prove", "settle")}
        ),
        "usd": NUMBER,
        "usdPerJob": {"type": ["number", "null"]},
        "usdPerRegisteredAsset": {"type": ["number", "null"]},
        "prices": _object(
            {name: NUMBER for name in ("usd_per_cpu_second", "usd_per_gpu_second", "usd_per_eth", "usd_per_gb_stored")}
        ),
        "filters": {"type": "object"},
        "truncated": BOOL,
        "gasNow": {
            "type": "object",
            "description": "the same gas at the chain's price now (eth_feeHistory: the next base fee plus the "
            "median priority fee of recent blocks): priceWei, blocks, gas, feeUsd, feeUsdPerRegisteredAsset; or "
            "error where the node has no fee history",
        },
    },
    description="what the matching generation jobs consumed, stage by stage (compute seconds, gas and fees as "
    "the receipts show them, bytes stored; settle: the settlement transactions of the vouchers that paid for "
    "their assets and of the payments that paid for their requests), and what it cost at the configured prices: "
    "in all, per job, and per asset registered (the rejected jobs' costs included)",
)
UPTO_PAYMENT = _object(
    {
        "scheme": {"const": "upto"},
        "state": {"enum": ["authorised", "charging", "settled", "refused", "void"]},
        "payer": ADDRESS,
        "token": ADDRESS,
        "authorised": UINT | {"description": "the most the payer signed for"},
        "charged": _nullable(UINT) | {"description": "what was taken (once settled)"},
        "unused": _nullable(UINT) | {"description": "authorised - charged: never left the payer's wallet"},
        "deadline": INT,
        "transaction": _nullable(STRING),
        "charge": {
            "type": "object",
            "description": "the charge item by item: base, compute, batch, total, steps, pixels, batchGas, batchSize",
        },
        "reason": STRING,
    },
    optional=("charge", "reason"),
    description="an x402 upto payment for a generation request",
)

SCHEMAS: dict[str, Any] = {
    "Error": ERROR,
    "Voucher": VOUCHER,
    "NewRequest": REQUEST,
    "ZkStatus": ZK_STATUS,
    "CurationFlag": CURATION_FLAG,
    "Curation": CURATION,
    "Asset": ASSET,
    "SimilarAsset": SIMILAR_ASSET,
    "GenerationRequest": GENERATION_REQUEST,
    "Lineage": LINEAGE,
    "Registration": REGISTRATION,
    "MarketRequest": MARKET_REQUEST,
    "Terms": TERMS,
    "AssetDetail": ASSET_DETAIL,
    "AssetPage": _object(
        {"total": INT, "offset": INT, "items": {"type": "array", "items": _ref("Asset")}},
        description="A page of assets",
    ),
    "SimilarAssets": _items(_ref("SimilarAsset")),
    "LineageGraph": LINEAGE_GRAPH,
    "TermsList": _items(_ref("Terms")),
    "Models": _items(MODEL),
    "Licences": _items(LICENCE, holder=ADDRESS),
    "Escrow": ESCROW,
    "Channel": CHANNEL,
    "Owed": OWED,
    "Deployment": DEPLOYMENT,
    "Eip712": EIP712,
    "Health": HEALTH,
    "VoucherAccepted": _object({"queued": STRING, "cumulativeAmount": UINT}),
    "RequestAccepted": _object({"key": STRING, "new": BOOL, "payment": STRING}, optional=("payment",)),
    "RequestStatus": REQUEST_STATUS,
    "Costs": COSTS,
    "UptoPayment": UPTO_PAYMENT,
    "DerivativeRequest": DERIVATIVE_REQUEST,
    "ReviewItem": REVIEW_ITEM,
    "ReviewPage": _object({"total": INT, "offset": INT, "items": {"type": "array", "items": _ref("ReviewItem")}}),
    "ReviewDecision": REVIEW_DECISION,
    "ReviewEip712": REVIEW_EIP712,
    "ReviewOutcome": REVIEW_OUTCOME,
    "DerivativeDraft": DERIVATIVE_DRAFT,
    "DerivativeKept": _object({"digest": HEX32, "stored": {"const": True}, "metadataCid": STRING}),
    "RequestPage": _object({"total": INT, "offset": INT, "items": {"type": "array", "items": _ref("RequestStatus")}}),
    "X402Supported": _object(
        {
            "kinds": {
                "type": "array",
                "items": _object(
                    {"x402Version": INT, "scheme": STRING, "network": STRING, "extra": {"type": "object"}},
                    optional=("extra",),
                ),
            },
            "extensions": {"type": "array", "items": STRING},
            "signers": {"type": "object", "additionalProperties": {"type": "array", "items": ADDRESS}},
        }
    ),
    "Agents": _object(
        {
            "agentRegistry": {"type": "string", "description": "eip155:{chainId}:{identityRegistry}"},
            "owner": ADDRESS,
            "registries": _object(
                {
                    "identity": ADDRESS,
                    "reputation": ADDRESS,
                    "validation": {"type": ["string", "null"]},
                    "validator": {"type": ["string", "null"]},
                }
            ),
            "agents": {
                "type": "array",
                "items": _object({"role": STRING, "agentId": INT, "agentURI": STRING}),
            },
        },
        description="the operator's ERC-8004 agents",
    ),
    "AgentRegistration": {
        "type": "object",
        "description": "an ERC-8004 registration file (registration-v1)",
        "required": [
            "type",
            "name",
            "description",
            "image",
            "services",
            "x402Support",
            "active",
            "registrations",
            "supportedTrust",
        ],
        "properties": {
            "type": STRING,
            "name": STRING,
            "description": STRING,
            "image": STRING,
            "services": {"type": "array", "items": {"type": "object"}},
            "x402Support": BOOL,
            "active": BOOL,
            "registrations": {
                "type": "array",
                "items": _object({"agentId": INT, "agentRegistry": STRING}),
            },
            "supportedTrust": {"type": "array", "items": STRING},
            "validation": {"type": "object"},
        },
    },
    "Reputation": _object(
        {
            "role": STRING,
            "agentId": INT,
            "count": INT,
            "value": INT,
            "valueDecimals": INT,
            "tag1": STRING,
            "tag2": STRING,
            "payingClients": {
                "type": "array",
                "items": _object({"address": ADDRESS, "evidence": {"type": "object"}}),
            },
            "ignoredClients": {"type": "array", "items": ADDRESS},
            "notJudged": INT,
        },
        description="an agent's ERC-8004 feedback summary over the clients with evidence of a settled payment "
        "for the operator's work (a settled voucher or an x402 receipt); other clients' feedback is listed as "
        "ignored; clients past the first 2,000 are counted in notJudged",
    ),
    "Validation": {
        "type": "object",
        "description": "a zkML validation request to this deployment's validator; once answered, the "
        "covered assets with their Merkle proofs (ZkmlValidator.itemResponse) and attestations",
        "required": ["requestHash", "validator", "agentId", "state", "lastUpdate"],
        "properties": {
            "requestHash": HEX32,
            "validator": ADDRESS,
            "agentId": INT,
            "state": {"type": "string", "enum": ["requested", "answered", "revoked"]},
            "lastUpdate": INT,
            "response": INT,
            "tag": STRING,
            "modelId": INT,
            "count": INT,
            "root": HEX32,
            "responseHash": HEX32,
            "responseTx": STRING,
            "items": {
                "type": "array",
                "items": _object(
                    {
                        "asset": HEX32,
                        "index": INT,
                        "proof": {"type": "array", "items": HEX32},
                        "attestation": _object({"attested": BOOL, "score": INT, "verdict": INT}),
                        "verify": STRING,
                    }
                ),
            },
        },
    },
    "X402Facilitation": _object(
        {"x402Version": INT, "paymentPayload": {"type": "object"}, "paymentRequirements": {"type": "object"}},
        optional=("x402Version",),
        description="x402's facilitator request: a payment payload and the requirements it accepts",
    ),
    "X402Verified": _object(
        {"isValid": BOOL, "invalidReason": STRING, "invalidMessage": STRING, "payer": {"type": ["string", "null"]}},
        optional=("invalidReason", "invalidMessage"),
    ),
    "X402Settled": _object(
        {
            "success": BOOL,
            "errorReason": STRING,
            "errorMessage": STRING,
            "payer": {"type": ["string", "null"]},
            "transaction": STRING,
            "network": STRING,
            "amount": UINT,
        },
        optional=("errorReason", "errorMessage", "amount"),
    ),
}


def _errors(*statuses: int) -> dict[str, Any]:
    ref = {"content": {"application/json": {"schema": _ref("Error")}}}
    return {str(s): {"description": "error", **ref} for s in (*statuses, 429)}


def _ok(description: str, schema: str, status: int = 200) -> dict[str, Any]:
    """A JSON answer of the component schema `schema`."""
    return {str(status): {"description": description, "content": {"application/json": {"schema": _ref(schema)}}}}


def _bytes(description: str, *media: str) -> dict[str, Any]:
    return {"200": {"description": description, "content": {m: {"schema": {"type": "string"}} for m in media}}}


STORED = {
    "200": {
        "description": "the bytes as stored: JSON (ERC-721 metadata, provenance manifests: documents of "
        "their own standards, not this API's shapes), other blocks, or a paid image",
        "content": {
            "application/json": {"schema": {"type": ["object", "array"]}},
            "application/octet-stream": {"schema": {"type": "string"}},
            "image/png": {"schema": {"type": "string"}},
        },
    }
}


def _path_param(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema}


def _query(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema}


DIGEST_PARAM = _path_param("digest", DIGEST)
ROLE_PARAM = _path_param("role", {"type": "string", "enum": list(ROLES)})
LIMIT = _query("limit", {"type": "integer", "minimum": 1, "maximum": 200})
PAYMENT = {
    "name": "PAYMENT-SIGNATURE",
    "in": "header",
    "required": False,
    "description": "x402: base64 of a JSON PaymentPayload carrying a signed cumulative voucher",
    "schema": {"type": "string"},
}
PAID = {
    "200": {
        "description": "the image; PAYMENT-RESPONSE header: base64 JSON settlement response",
        "content": {"image/png": {"schema": {"type": "string", "format": "binary"}}},
    },
    "402": {
        "description": "payment required or refused; PAYMENT-REQUIRED header: base64 JSON PaymentRequired",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    },
}


def document() -> dict[str, Any]:
    own = {
        "get": {
            "summary": "This document",
            "responses": {
                "200": {"description": "the document", "content": {"application/json": {"schema": {"type": "object"}}}}
            },
        }
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "proofmint API",
            "version": "2.0.0",
            "description": "Provenance-registered generated images: browse, verify, license per use (x402).",
        },
        "paths": {
            "/health": {"get": {"summary": "Liveness and chain head", "responses": _ok("ok", "Health") | _errors(503)}},
            "/metrics": {"get": {"summary": "Prometheus metrics", "responses": _bytes("metrics", "text/plain")}},
            "/openapi.json": own,
            "/.well-known/openapi.json": own,
            "/v1/assets": {
                "get": {
                    "summary": "Registered assets, newest last, optionally filtered by words of the prompt",
                    "parameters": [
                        _query("q", {"type": "string", "maxLength": 256}),
                        LIMIT,
                        _query("offset", {"type": "integer", "minimum": 0}),
                    ],
                    "responses": _ok("a page of assets", "AssetPage") | _errors(400),
                }
            },
            "/v1/assets/{digest}": {
                "get": {
                    "summary": "One asset: provenance, lineage (parents, children), curation, zk status, terms",
                    "parameters": [DIGEST_PARAM],
                    "responses": _ok("the asset", "AssetDetail") | _errors(400, 404),
                }
            },
            "/v1/assets/{digest}/similar": {
                "get": {
                    "summary": "Assets nearest to one by image similarity (CLIP embeddings)",
                    "parameters": [DIGEST_PARAM, LIMIT],
                    "responses": _ok("similar assets", "SimilarAssets") | _errors(400, 404),
                }
            },
            "/v1/assets/{digest}/terms": {
                "get": {
                    "summary": "The licence terms attached to an asset",
                    "parameters": [DIGEST_PARAM],
                    "responses": _ok("terms", "TermsList") | _errors(400, 404),
                }
            },
            "/v1/assets/{digest}/content": {
                "get": {
                    "summary": "The image, paid per use (x402, scheme proofmint-voucher)",
                    "parameters": [DIGEST_PARAM, _query("terms", {"type": "integer", "minimum": 1}), PAYMENT],
                    "responses": PAID | _errors(400, 403, 404),
                }
            },
            "/v1/content/{cid}": {
                "get": {
                    "summary": "Content by CID (metadata and manifests free; an asset's image as its content route)",
                    "parameters": [_path_param("cid", {"type": "string", "maxLength": 128}), PAYMENT],
                    "responses": PAID | STORED | _errors(400, 403, 404),
                }
            },
            "/v1/assets/{digest}/lineage": {
                "get": {
                    "summary": "An asset's lineage on chain: ancestors and derivatives within `depth` generations",
                    "parameters": [DIGEST_PARAM, _query("depth", {"type": "integer", "minimum": 1, "maximum": 8})],
                    "responses": _ok("nodes and parent->child edges", "LineageGraph") | _errors(400, 404),
                }
            },
            "/v1/assets/{digest}/preview": {
                "get": {
                    "summary": "A free reduced preview of the image (the full image is licensed content)",
                    "parameters": [DIGEST_PARAM],
                    "responses": _bytes("a PNG", "image/png") | _errors(400, 404),
                }
            },
            "/v1/models": {"get": {"summary": "Registered model versions", "responses": _ok("models", "Models")}},
            "/v1/deployment": {
                "get": {
                    "summary": "Chain id, contract addresses and ABIs, the RPC a wallet can use, and this "
                    "server's service (the address vouchers name and escrow is deposited with)",
                    "responses": _ok("the deployment", "Deployment"),
                }
            },
            "/v1/channels/{payer}/{termsId}": {
                "get": {
                    "summary": "A pay-per-use channel (payer, this server's service, terms): the cumulative "
                    "amount accepted here and settled on chain",
                    "parameters": [
                        _path_param("payer", ADDRESS),
                        _path_param("termsId", {"type": "integer", "minimum": 1}),
                    ],
                    "responses": _ok("the channel", "Channel") | _errors(400, 404),
                }
            },
            "/v1/accounts/{address}/owed": {
                "get": {
                    "summary": "What an account is owed: royalty balance, revenue to split, data shares with proofs",
                    "parameters": [_path_param("address", ADDRESS), _query("currency", ADDRESS)],
                    "responses": _ok("what is owed", "Owed") | _errors(400),
                }
            },
            "/v1/terms/{termsId}": {
                "get": {
                    "summary": "One licence terms record",
                    "parameters": [_path_param("termsId", {"type": "integer", "minimum": 1})],
                    "responses": _ok("terms", "Terms") | _errors(400, 404),
                }
            },
            "/v1/holders/{address}/licences": {
                "get": {
                    "summary": "Licences bought for a holder",
                    "parameters": [_path_param("address", ADDRESS)],
                    "responses": _ok("licences", "Licences") | _errors(400),
                }
            },
            "/v1/holders/{address}/escrow": {
                "get": {
                    "summary": "A payer's escrow with a service in LicenseManager (default: this server's "
                    "service): balance, pending withdrawal, when it unlocks and expires, what vouchers accepted "
                    "here promise",
                    "parameters": [
                        _path_param("address", ADDRESS),
                        _query("currency", ADDRESS),
                        _query("service", ADDRESS),
                    ],
                    "responses": _ok("escrow", "Escrow") | _errors(400),
                }
            },
            "/v1/vouchers/eip712": {
                "get": {
                    "summary": "The EIP-712 domain and types of licence vouchers, and the service they must name",
                    "responses": _ok("typed data", "Eip712"),
                }
            },
            "/v1/vouchers": {
                "post": {
                    "summary": "Submit a signed cumulative voucher naming this server's service, for settlement",
                    "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("Voucher")}}},
                    "responses": _ok("queued for settlement", "VoucherAccepted", 202) | _errors(400, 413, 415, 422),
                }
            },
            "/v1/agents": {
                "get": {
                    "summary": "The operator's ERC-8004 agents: registries, ids and registration-file URIs",
                    "responses": _ok("the agents", "Agents") | _errors(404),
                }
            },
            "/v1/agents/{role}/registration.json": {
                "get": {
                    "summary": "One agent's ERC-8004 registration file (its on-chain agentURI)",
                    "parameters": [ROLE_PARAM],
                    "responses": _ok("the registration file", "AgentRegistration") | _errors(404),
                }
            },
            "/v1/agents/{role}/reputation": {
                "get": {
                    "summary": "One agent's ERC-8004 reputation, counted only from paying clients",
                    "parameters": [
                        ROLE_PARAM,
                        _query("tag1", {"type": "string", "maxLength": 64}),
                        _query("tag2", {"type": "string", "maxLength": 64}),
                    ],
                    "responses": _ok("the summary", "Reputation") | _errors(400, 404),
                }
            },
            "/.well-known/agent-registration.json": {
                "get": {
                    "summary": "ERC-8004 endpoint-domain verification: every agent this domain serves",
                    "responses": _ok("the domain's registration file", "AgentRegistration") | _errors(404),
                }
            },
            "/v1/validations/{requestHash}": {
                "get": {
                    "summary": "A zkML validation request (ERC-8004) and, once answered, the assets it covers",
                    "parameters": [_path_param("requestHash", HEX32 | {"pattern": "^(0x)?[0-9a-fA-F]{64}$"})],
                    "responses": _ok("the request", "Validation") | _errors(400, 404),
                }
            },
            "/v1/x402/supported": {
                "get": {
                    "summary": "x402 facilitator: the schemes and networks this server takes, and its settling key",
                    "responses": _ok("supported kinds", "X402Supported"),
                }
            },
            "/v1/x402/verify": {
                "post": {
                    "summary": "x402 facilitator: whether an exact payment for one of this server's offers is valid "
                    "(signature, payee, amount, time, unused, funded); changes nothing",
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _ref("X402Facilitation")}},
                    },
                    "responses": _ok("valid or why not", "X402Verified") | _errors(400, 404, 413, 415),
                }
            },
            "/v1/x402/settle": {
                "post": {
                    "summary": "x402 facilitator: settles an exact payment for one of this server's offers from its "
                    "key, once per authorization",
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _ref("X402Facilitation")}},
                    },
                    "responses": _ok("settled or why not", "X402Settled") | _errors(400, 404, 413, 415),
                }
            },
            "/v1/review": {
                "get": {
                    "summary": "Assets the curator sent to a person (the human-review band), oldest first",
                    "parameters": [LIMIT, _query("offset", {"type": "integer", "minimum": 0})],
                    "responses": _ok("a page of the queue", "ReviewPage") | _errors(400),
                }
            },
            "/v1/review/eip712": {
                "get": {
                    "summary": "The EIP-712 domain and types of review decisions, and this deployment's reviewers",
                    "responses": _ok("typed data", "ReviewEip712"),
                }
            },
            "/v1/review/{digest}": {
                "post": {
                    "summary": "A reviewer's signed decision: approve (the asset continues through the pipeline) or "
                    "reject (it ends, with the reason); kept as labelled data",
                    "parameters": [DIGEST_PARAM],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _ref("ReviewDecision")}},
                    },
                    "responses": _ok("decided", "ReviewOutcome") | _errors(400, 403, 404, 409, 413, 415, 422),
                }
            },
            "/v1/derivatives": {
                "post": {
                    "summary": "Draft a derivative of assets the creator holds licences for: answers "
                    "register(input, licenseIds) simulated as the creator (422 would_revert names the contract's "
                    "error) for the creator's wallet to send, storing nothing; sent again once registered as "
                    "drafted, it keeps the image, parameters document and metadata here (201)",
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _ref("DerivativeRequest")}},
                    },
                    "responses": _ok("the transaction to send", "DerivativeDraft")
                    | _ok("registered as drafted: its files are kept here", "DerivativeKept", 201)
                    | _errors(400, 409, 413, 415, 422),
                }
            },
            "/v1/requests": {
                "get": {
                    "summary": "A requester's generation requests, newest first, with each one's stage and reason",
                    "parameters": [
                        {**_query("requester", {"type": "string", "minLength": 1, "maxLength": 64}), "required": True},
                        LIMIT,
                        _query("offset", {"type": "integer", "minimum": 0}),
                    ],
                    "responses": _ok("a page of requests", "RequestPage") | _errors(400),
                },
                "post": {
                    "summary": "Ask the agents for an image (when the server accepts requests; "
                    "otherwise 404 with code requests_not_accepted)",
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _ref("NewRequest")}},
                    },
                    "responses": _ok("journaled", "RequestAccepted", 202)
                    | _ok("already journaled", "RequestAccepted")
                    | _errors(400, 402, 404, 413, 415, 422, 503),  # 429: also quota_exceeded
                },
            },
            "/v1/costs": {
                "get": {
                    "summary": "What generation cost: the jobs' cost records summed by stage, priced, per job and "
                    "per registered asset",
                    "parameters": [
                        _query("requester", {"type": "string", "minLength": 1, "maxLength": 64}),
                        _query("project", {"type": "string", "minLength": 1, "maxLength": 64}),
                        _query("model", {"type": "integer", "minimum": 0}),
                        _query("since", {"type": "number", "minimum": 0, "description": "unix seconds"}),
                    ],
                    "responses": _ok("the costs", "Costs") | _errors(400),
                }
            },
            "/v1/requests/{key}": {
                "get": {
                    "summary": "Where a generation request is",
                    "parameters": [_path_param("key", {"type": "string", "maxLength": 80})],
                    "responses": _ok("its stage", "RequestStatus") | _errors(404),
                }
            },
        },
        "components": {"schemas": SCHEMAS},
    }
