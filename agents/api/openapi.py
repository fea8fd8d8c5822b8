"""The OpenAPI 3.1 document of the API (served at `/openapi.json` and `/.well-known/openapi.json`;
the fuzz tests generate requests from it)."""

from __future__ import annotations

from typing import Any

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
    },
    "additionalProperties": False,
}


def _errors(*statuses: int) -> dict[str, Any]:
    ref = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    return {str(s): {"description": "error", **ref} for s in (*statuses, 429)}


def _ok(description: str, media: str = "application/json") -> dict[str, Any]:
    return {"200": {"description": description, "content": {media: {"schema": {"type": "object"}}}}}


def _path_param(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema}


def _query(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema}


DIGEST_PARAM = _path_param("digest", DIGEST)
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
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "proofmint API",
            "version": "1.0.0",
            "description": "Provenance-registered generated images: browse, verify, license per use (x402).",
        },
        "paths": {
            "/health": {"get": {"summary": "Liveness and chain head", "responses": _ok("ok") | _errors(503)}},
            "/metrics": {"get": {"summary": "Prometheus metrics", "responses": _ok("metrics", "text/plain")}},
            "/openapi.json": {"get": {"summary": "This document", "responses": _ok("the document")}},
            "/v1/assets": {
                "get": {
                    "summary": "Registered assets, newest last, optionally filtered by words of the prompt",
                    "parameters": [
                        _query("q", {"type": "string", "maxLength": 256}),
                        LIMIT,
                        _query("offset", {"type": "integer", "minimum": 0}),
                    ],
                    "responses": _ok("a page of assets") | _errors(400),
                }
            },
            "/v1/assets/{digest}": {
                "get": {
                    "summary": "One asset: provenance, lineage (parents, children), curation, zk status, terms",
                    "parameters": [DIGEST_PARAM],
                    "responses": _ok("the asset") | _errors(400, 404),
                }
            },
            "/v1/assets/{digest}/similar": {
                "get": {
                    "summary": "Assets nearest to one by image similarity (CLIP embeddings)",
                    "parameters": [DIGEST_PARAM, LIMIT],
                    "responses": _ok("similar assets") | _errors(400, 404),
                }
            },
            "/v1/assets/{digest}/terms": {
                "get": {
                    "summary": "The licence terms attached to an asset",
                    "parameters": [DIGEST_PARAM],
                    "responses": _ok("terms") | _errors(400, 404),
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
                    "responses": _ok("the bytes", "application/octet-stream") | PAID | _errors(400, 403, 404),
                }
            },
            "/v1/assets/{digest}/lineage": {
                "get": {
                    "summary": "An asset's lineage on chain: ancestors and derivatives within `depth` generations",
                    "parameters": [DIGEST_PARAM, _query("depth", {"type": "integer", "minimum": 1, "maximum": 8})],
                    "responses": _ok("nodes and parent->child edges") | _errors(400, 404),
                }
            },
            "/v1/assets/{digest}/preview": {
                "get": {
                    "summary": "A free reduced preview of the image (the full image is licensed content)",
                    "parameters": [DIGEST_PARAM],
                    "responses": _ok("a PNG", "image/png") | _errors(400, 404),
                }
            },
            "/v1/models": {"get": {"summary": "Registered model versions", "responses": _ok("models")}},
            "/v1/deployment": {
                "get": {
                    "summary": "Chain id, contract addresses and ABIs, the RPC a wallet can use, and this "
                    "server's service (the address vouchers name and escrow is deposited with)",
                    "responses": _ok("the deployment"),
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
                    "responses": _ok("the channel") | _errors(400, 404),
                }
            },
            "/v1/accounts/{address}/owed": {
                "get": {
                    "summary": "What an account is owed: royalty balance, revenue to split, data shares with proofs",
                    "parameters": [_path_param("address", ADDRESS), _query("currency", ADDRESS)],
                    "responses": _ok("what is owed") | _errors(400),
                }
            },
            "/v1/terms/{termsId}": {
                "get": {
                    "summary": "One licence terms record",
                    "parameters": [_path_param("termsId", {"type": "integer", "minimum": 1})],
                    "responses": _ok("terms") | _errors(400, 404),
                }
            },
            "/v1/holders/{address}/licences": {
                "get": {
                    "summary": "Licences bought for a holder",
                    "parameters": [_path_param("address", ADDRESS)],
                    "responses": _ok("licences") | _errors(400),
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
                    "responses": _ok("escrow") | _errors(400),
                }
            },
            "/v1/vouchers/eip712": {
                "get": {
                    "summary": "The EIP-712 domain and types of licence vouchers, and the service they must name",
                    "responses": _ok("typed data"),
                }
            },
            "/v1/vouchers": {
                "post": {
                    "summary": "Submit a signed cumulative voucher naming this server's service, for settlement",
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Voucher"}}},
                    },
                    "responses": {"202": {"description": "queued for settlement"}} | _errors(400, 413, 415, 422),
                }
            },
            "/v1/requests": {
                "post": {
                    "summary": "Ask the agents for an image (when the server accepts requests)",
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Request"}}},
                    },
                    "responses": {"202": {"description": "journaled"}, "200": {"description": "already journaled"}}
                    | _errors(400, 404, 405, 413, 415, 422),
                }
            },
            "/v1/requests/{key}": {
                "get": {
                    "summary": "Where a generation request is",
                    "parameters": [_path_param("key", {"type": "string", "maxLength": 80})],
                    "responses": _ok("its stage") | _errors(404),
                }
            },
        },
        "components": {"schemas": {"Error": ERROR, "Voucher": VOUCHER, "Request": REQUEST}},
    }
