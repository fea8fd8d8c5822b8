"""`POST /v1/derivatives`: a derivative drafted for the creator's wallet to register.

The API holds no key of the creator's, so it registers nothing: it reads the request
(`derivative_of`), simulates `ProvenanceRegistry.register` as the creator would send it
(`simulate_register`: the contract's own rules, a refusal named by its custom error), and answers
the transaction for the wallet, storing nothing (an upload that is never registered is never
hosted). Sent again once the chain holds exactly the drafted record (creator, parameters digest,
metadata URI), the request has the image, its parameters document and its metadata kept here;
the image is then a registered asset's, which `/v1/content` serves only through the paywall.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from agents.api.errors import ApiError
from agents.core.reverts import WouldRevertError, preflight
from agents.runtime.chain import ChainClient
from agents.storage.derivative import MAX_PARENTS, Derivative, DerivativeError

REGISTRY = "ProvenanceRegistry"
#: The largest image the API takes (base64 in a JSON body of at most 64 KiB); the ape script
#: (`ape run register_asset`) takes any size.
MAX_IMAGE_BYTES = 40 * 1024
_FIELDS = {"creator", "modelId", "parents", "licenseIds", "image", "title"}


def _bad(message: str) -> ApiError:
    return ApiError(422, message, code="bad_derivative")


def _hex32(value: Any, name: str) -> bytes:
    if not isinstance(value, str) or len(value) != 66 or not value.startswith("0x"):
        raise _bad(f"{name}: expected 0x and 64 hex digits")
    try:
        return bytes.fromhex(value[2:])
    except ValueError:
        raise _bad(f"{name}: expected 0x and 64 hex digits") from None


def _licence_id(value: Any, name: str) -> int:
    """A uint256 as a decimal string (JSON numbers lose precision past 2^53) or a small integer."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isdecimal() and len(value) <= 78:
        return int(value)
    raise _bad(f"{name}: expected a licence token id as a decimal string")


def derivative_of(body: Any) -> Derivative:
    """The derivative a request body describes, or a 422 saying what is wrong."""
    if not isinstance(body, dict):
        raise _bad("the request is a JSON object")
    unknown = set(body) - _FIELDS
    if unknown:
        raise _bad(f"unknown fields {sorted(unknown)}")
    missing = {"creator", "modelId", "parents", "licenseIds", "image"} - set(body)
    if missing:
        raise _bad(f"missing fields {sorted(missing)}")
    parents, licences = body["parents"], body["licenseIds"]
    if not isinstance(parents, list) or not isinstance(licences, list) or len(parents) > MAX_PARENTS:
        raise _bad(f"parents and licenseIds are lists of at most {MAX_PARENTS}, one licence per parent")
    model_id = body["modelId"]
    if isinstance(model_id, bool) or not isinstance(model_id, int):
        raise _bad("modelId must be an integer")
    image = body["image"]
    if not isinstance(image, str) or len(image) > (MAX_IMAGE_BYTES * 4) // 3 + 4:
        raise _bad(f"image is the file's bytes in base64, at most {MAX_IMAGE_BYTES // 1024} KiB")
    try:
        raw = base64.b64decode(image, validate=True)
    except (binascii.Error, ValueError):
        raise _bad("image is not base64") from None
    title = body.get("title", "")
    if not isinstance(title, str) or len(title) > 200:
        raise _bad("title is a string of at most 200 characters")
    creator = body["creator"]
    if not isinstance(creator, str):
        raise _bad("creator must be an address")
    try:
        return Derivative(
            image=raw,
            creator=creator,
            model_id=model_id,
            parents=tuple(_hex32(p, f"parents[{i}]") for i, p in enumerate(parents)),
            license_ids=tuple(_licence_id(x, f"licenseIds[{i}]") for i, x in enumerate(licences)),
            title=title,
        )
    except DerivativeError as exc:
        raise _bad(str(exc)) from None


async def simulate_register(client: ChainClient, derivative: Derivative, metadata_cid: str) -> dict[str, Any]:
    """The `register(input, licenseIds)` transaction as the creator would send it, simulated on
    the node: {from, to, data}; a 422 naming the contract's custom error when it would revert."""
    registry = client.contract(REGISTRY)
    data = registry.encode_abi("register", args=[derivative.asset_input(metadata_cid), list(derivative.license_ids)])
    tx = {"from": derivative.asset_input(metadata_cid)["creator"], "to": registry.address, "data": data}
    try:
        await client.node(preflight, client.web3, tx, client.errors)
    except WouldRevertError as exc:
        raise ApiError(422, f"the registry would refuse this derivative: {exc}", code="would_revert") from None
    return tx
