"""x402 (protocol version 2) over HTTP, with a payment scheme of proofmint's own.

A resource that needs payment answers `402 Payment Required` with a `PAYMENT-REQUIRED` header:
base64 of a JSON `PaymentRequired` object ({x402Version, error, resource, accepts}); the body
holds the same object beside the API's JSON error. The client pays by repeating the request
with a `PAYMENT-SIGNATURE` header: base64 of a JSON `PaymentPayload` ({x402Version, accepted,
payload}); the server answers with a `PAYMENT-RESPONSE` header (base64 JSON settlement response).

The scheme, `proofmint-voucher`, is a cumulative licence voucher: `payload` is an EIP-712
`Voucher` (payer, service, asset, termsId, cumulativeAmount, deadline) signed by the payer for
`LicenseManager` (the `extra` of the requirements gives domain and types). The service is the
server's operator, the one who serves the uses before they settle: `payTo` is its address and
`extra.service` names it again; a voucher must name it, and draws on the payer's escrow with it
(a deposit with another service pays nothing here). Each paid use raises the payer's cumulative
amount on the channel (payer, service, termsId) by at least the price per use; the payer's escrow
with the service covers it; the settlement daemon settles the newest voucher of each channel in
batches later (`transaction` in the response is empty: settlement is deferred), so a voucher's
deadline must be at least `extra.minDeadlineSeconds` ahead and not before the channel's newest
unsettled voucher's (`deadline_too_soon`). A voucher behind the channel is refused with
`replayed_or_short`, whose `details` carry `acceptedCumulative` and the payer's own voucher that
shows it (`acceptedVoucher`): a client catches up only to an amount it signed itself.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from agents.api.paywall import MIN_DEADLINE_S
from agents.core.addresses import address_of, checksummed
from agents.core.settlement import SignedVoucher, parse_voucher
from agents.core.vouchers import VOUCHER_TYPES, domain

X402_VERSION = 2
SCHEME = "proofmint-voucher"
REQUIRED_HEADER = "PAYMENT-REQUIRED"
SIGNATURE_HEADER = "PAYMENT-SIGNATURE"
RESPONSE_HEADER = "PAYMENT-RESPONSE"
LEGACY_SIGNATURE_HEADER = "X-PAYMENT"  # x402 version 1's name for the same header
MAX_HEADER_BYTES = 8_192
EIP712_DOMAIN_TYPE = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]


class PaymentHeaderError(ValueError):
    """A payment header that is not a payment this server can read; the message says why."""


def encode_header(obj: dict[str, Any]) -> str:
    return base64.b64encode(json.dumps(obj, separators=(",", ":")).encode()).decode("ascii")


def decode_header(value: str) -> dict[str, Any]:
    if len(value) > MAX_HEADER_BYTES:
        raise PaymentHeaderError(f"the payment header is longer than {MAX_HEADER_BYTES} bytes")
    try:
        obj = json.loads(base64.b64decode(value.strip(), validate=True))
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise PaymentHeaderError("the payment header is not base64 of a JSON object") from exc
    if not isinstance(obj, dict):
        raise PaymentHeaderError("the payment header is not base64 of a JSON object")
    return obj


def header_uint(value: Any, name: str) -> int:
    """An unsigned 256-bit integer in a payment header (decimal or 0x-hex text, or a JSON number)."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise PaymentHeaderError(f"{name} is not an integer")
    try:
        number = int(value, 0) if isinstance(value, str) and value.startswith("0x") else int(value)
    except ValueError as exc:
        raise PaymentHeaderError(f"{name} is not an integer") from exc
    if not 0 <= number < 2**256:
        raise PaymentHeaderError(f"{name} is out of range")
    return number


def header_hex(value: Any, name: str, size: int) -> bytes:
    """Exactly `size` bytes of 0x-prefixed hex in a payment header."""
    if not isinstance(value, str) or not value.startswith("0x"):
        raise PaymentHeaderError(f"{name} is not 0x-prefixed hex")
    try:
        raw = bytes.fromhex(value[2:])
    except ValueError as exc:
        raise PaymentHeaderError(f"{name} is not 0x-prefixed hex") from exc
    if len(raw) != size:
        raise PaymentHeaderError(f"{name} is {len(raw)} bytes, not {size}")
    return raw


def header_address(value: Any, name: str) -> str:
    """A 20-byte address in a payment header, checksummed."""
    return address_of(header_hex(value, name, 20))  # any 20 bytes are an address


def token_requirements(
    scheme: str, chain_id: int, amount: int, token: Any, pay_to: str, max_timeout_s: int, **extra: Any
) -> dict[str, Any]:
    """x402 payment requirements in an ERC-20 `token` (with its EIP-712 `name` and `version`, as
    stock clients expect them in `extra`), and the scheme's own `extra`."""
    return {
        "scheme": scheme,
        "network": network_of(chain_id),
        "amount": str(amount),
        "asset": checksummed(token.address),
        "payTo": checksummed(pay_to),
        "maxTimeoutSeconds": max_timeout_s,
        "extra": {"name": token.name, "version": token.version, **extra},
    }


def check_accepted(payment: dict[str, Any], wanted: dict[str, Any]) -> None:
    """PaymentHeaderError unless a decoded `PAYMENT-SIGNATURE` is x402 version 2 and accepts
    `wanted` (its scheme, network, asset, payee and amount)."""
    scheme = wanted["scheme"]
    if payment.get("x402Version") != X402_VERSION:
        raise PaymentHeaderError(f"x402Version {payment.get('x402Version')!r} is not supported for {scheme} (2)")
    accepted = payment.get("accepted")
    if not isinstance(accepted, dict) or accepted.get("scheme") != scheme:
        raise PaymentHeaderError(f"the payment does not accept the {scheme!r} scheme")
    for key in ("network", "asset", "payTo", "amount"):
        got = accepted.get(key)
        if not (isinstance(got, str) and got.lower() == str(wanted[key]).lower()):
            raise PaymentHeaderError(f"accepted.{key} is {got!r}, not this offer's {wanted[key]!r}")


def network_of(chain_id: int) -> str:
    """CAIP-2 name of an EVM chain."""
    return f"eip155:{chain_id}"


def typed_data(chain_id: int, verifying_contract: str) -> dict[str, Any]:
    """What a wallet's `eth_signTypedData_v4` needs, less the message."""
    return {
        "domain": domain(chain_id, verifying_contract),
        "types": {"EIP712Domain": EIP712_DOMAIN_TYPE, **VOUCHER_TYPES},
        "primaryType": "Voucher",
    }


@dataclass(frozen=True)
class Offer:
    """One way to pay for a licensed resource: a use under metered terms."""

    asset: bytes
    terms_id: int
    currency: str
    price_per_use: int
    chain_id: int
    settlement: str  # LicenseManager's address
    service: str  # the address vouchers must name: escrow with it pays for the use

    def requirements(self, max_timeout_s: int = 300) -> dict[str, Any]:
        return {
            "scheme": SCHEME,
            "network": network_of(self.chain_id),
            "amount": str(self.price_per_use),
            "asset": self.currency,
            "payTo": self.service,
            "maxTimeoutSeconds": max_timeout_s,
            "extra": {
                "assetDigest": "0x" + self.asset.hex(),
                "termsId": self.terms_id,
                "pricePerUse": str(self.price_per_use),
                "cumulative": True,
                "service": self.service,
                "settlementContract": self.settlement,
                "chainId": self.chain_id,
                "minDeadlineSeconds": MIN_DEADLINE_S,
                "eip712": typed_data(self.chain_id, self.settlement),
            },
        }


def payment_required(offer: Offer, url: str, error: str, mime_type: str = "") -> dict[str, Any]:
    return {
        "x402Version": X402_VERSION,
        "error": error,
        "resource": {"url": url, "description": "one use of a licensed proofmint asset", "mimeType": mime_type},
        "accepts": [offer.requirements()],
    }


def parse_payment(header: str, offer: Offer) -> SignedVoucher:
    """The signed voucher in a `PAYMENT-SIGNATURE` header for `offer`; PaymentHeaderError if
    it is malformed or pays for something else (service, signature and funds are checked by the
    paywall, which names what is wrong with its own codes)."""
    payment = decode_header(header)
    version = payment.get("x402Version")
    if version not in (1, X402_VERSION):
        raise PaymentHeaderError(f"x402Version {version!r} is not supported (2, or 1)")
    accepted = payment.get("accepted") if version == X402_VERSION else payment
    if not isinstance(accepted, dict):
        raise PaymentHeaderError("the payment names no accepted requirements")
    scheme = accepted.get("scheme")
    if scheme != SCHEME:
        raise PaymentHeaderError(f"scheme {scheme!r} is not offered here; the offer is {SCHEME!r}")
    if accepted.get("network") != network_of(offer.chain_id):
        raise PaymentHeaderError(f"network {accepted.get('network')!r} is not {network_of(offer.chain_id)!r}")
    try:
        voucher = parse_voucher(payment.get("payload"))
    except ValueError as exc:
        raise PaymentHeaderError(f"the voucher in the payment: {exc}") from exc
    if voucher.voucher.terms_id != offer.terms_id or voucher.voucher.asset != offer.asset:
        raise PaymentHeaderError(
            f"the voucher pays for terms {voucher.voucher.terms_id} of asset 0x{voucher.voucher.asset.hex()}, "
            f"not terms {offer.terms_id} of this asset"
        )
    return voucher


def settlement_response(voucher: SignedVoucher, chain_id: int, queued: str) -> dict[str, Any]:
    return {
        "success": True,
        "transaction": "",
        "network": network_of(chain_id),
        "payer": voucher.voucher.payer,
        "extra": {
            "settlement": "deferred",
            "service": voucher.channel[1],
            "termsId": voucher.voucher.terms_id,
            "cumulativeAmount": str(voucher.voucher.cumulative_amount),
            "queued": queued,
        },
    }
