"""x402 `upto` for generation requests without a chain (`agents.api.upto`,
`agents.daemons.charge.usage_of`): the pricing file and its arithmetic, what a permit signed by
the `x402` package's own `UptoEvmScheme` parses to and verifies as (the digest proofmint checks
is the one the SDK signs), and every way a payment header or a permit is refused."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from x402 import x402ClientSync
from x402.http import decode_payment_required_header, encode_payment_signature_header
from x402.mechanisms.evm.upto.client import UptoEvmScheme

from agents.api.exact import ExactToken
from agents.api.paywall import PaymentRejectedError
from agents.api.upto import MIN_VALIDITY_S, UptoOffer, parse_upto, upto_key, verify_upto
from agents.api.x402 import PaymentHeaderError, decode_header, encode_header
from agents.core.metering import DEFAULT_PRICING, PricingError, RequestPricing, Usage
from agents.core.permits import EXACT_PROXY_ADDRESS, PERMIT2_ADDRESS, UPTO_PROXY_ADDRESS
from agents.core.requests import GenerationRequest
from agents.core.toolchain import project_root
from agents.daemons.charge import usage_of
from agents.runtime import jobs
from agents.runtime.journal import Job

PAYER = Account.from_key("0x" + "11" * 32)
SERVICE = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
TOKEN = ExactToken("0x5FC8d32690cc91D4c39d9d3abcBD16989F875707", "Proofmint Dev USD", "2")
PRICING = RequestPricing(base=2_000, per_step_megapixel=1_000_000, per_megagas=100_000, max_batch_gas=400_000,
                         default_side=32)  # fmt: skip
OFFER = UptoOffer(PRICING.maximum(GenerationRequest("a red circle", 1)), TOKEN, SERVICE, 31337)


def sdk_payment(offer: UptoOffer = OFFER, account: Any = PAYER, **requirements: Any) -> dict[str, Any]:
    """What a stock client sends: the SDK reads the 402 and signs the upto permit."""
    required = {
        "x402Version": 2,
        "error": "payment required",
        "resource": {"url": "http://proofmint.test/v1/requests", "description": "a request", "mimeType": ""},
        "accepts": [{**offer.requirements(), **requirements}],
    }
    client = x402ClientSync().register("eip155:*", UptoEvmScheme(account))
    allowed = {"network": "eip155:31337", "asset": TOKEN.address, "max_amount_per_payment": str(10**9)}
    client.set_spend_controls({"allowed_assets": [allowed]})  # type: ignore[typeddict-item]
    payload = client.create_payment_payload(decode_payment_required_header(encode_header(required)))
    return decode_header(encode_payment_signature_header(payload))


def test_the_shipped_pricing_loads_and_its_arithmetic_is_the_documented_one(tmp_path: Path) -> None:
    shipped = RequestPricing.from_json(project_root() / DEFAULT_PRICING)
    assert shipped.default_side == 32
    request = GenerationRequest("a red circle", 1, steps=25)
    assert PRICING.maximum(request) == 2_000 + 25 * 1024 + 40_000
    assert PRICING.maximum(GenerationRequest("a", 1, steps=10, height=64, width=32)) == 2_000 + 10 * 2048 + 40_000
    charged = PRICING.charge(Usage(True, 25, 1024, batch_gas=300_001, batch_size=4), authorised=10**9)
    assert charged["batch"] == "7501"  # ceil(ceil(300,001 / 4) x 0.1)
    assert int(charged["total"]) == 2_000 + 25_600 + int(charged["batch"])
    assert PRICING.charge(Usage(False), authorised=10**9)["total"] == "0"
    assert PRICING.charge(Usage(True, 25, 1024), authorised=10**9)["batch"] == "0"  # not registered
    alone = PRICING.charge(Usage(True, 25, 1024, batch_gas=10**7, batch_size=1), authorised=10**9)
    assert alone["batch"] == "40000"  # the share is capped at what was authorised for it
    assert PRICING.charge(Usage(True, 25, 1024, batch_gas=10**7, batch_size=1), authorised=5)["total"] == "5"
    fast = RequestPricing(**{**PRICING.__dict__, "fast_lane_percent": 250})
    assert fast.maximum(request, "fast") == 2_000 + 25_600 + (27_600 * 3 + 1) // 2 + 40_000  # ceil(1.5 x work)
    assert fast.maximum(request) == PRICING.maximum(request)  # the standard lane pays the standard price
    sped = fast.charge(Usage(True, 25, 1024, lane="fast"), authorised=10**9)
    assert (sped["lane"], sped["laneName"], sped["total"]) == ("41400", "fast", str(27_600 + 41_400))
    assert PRICING.charge(Usage(True, 25, 1024, lane="fast"), authorised=10**9)["lane"] == "0"  # 100 %

    good = json.loads((project_root() / DEFAULT_PRICING).read_text())
    for broken, why in (
        ({**good, "base": -1}, "base"),
        ({**good, "base": True}, "base"),
        ({**good, "perMegagas": 1.5}, "per_megagas"),
        ({**good, "defaultSide": 4}, "default_side"),
        ({**good, "fastLanePercent": 99}, "fast_lane_percent"),
        ({**good, "colour": 1}, "colour"),
        ({k: v for k, v in good.items() if k != "maxBatchGas"}, "maxBatchGas"),
        ([1], "JSON object"),
    ):
        path = tmp_path / "pricing.json"
        path.write_text(json.dumps(broken))
        with pytest.raises(PricingError, match=why):
            RequestPricing.from_json(path)
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(PricingError, match="not a readable JSON"):
        RequestPricing.from_json(tmp_path / "bad.json")


def test_a_permit_the_sdk_signed_parses_and_verifies_as_signed() -> None:
    payment = sdk_payment()
    permit = parse_upto(payment, OFFER)
    assert (permit.payer, permit.amount, permit.spender) == (PAYER.address, OFFER.maximum, UPTO_PROXY_ADDRESS)
    assert (permit.to, permit.facilitator, permit.valid_after) == (SERVICE, SERVICE, 0)
    verify_upto(permit, OFFER)  # the SDK's EIP-712 signature recovers to the payer under our digest
    assert upto_key(permit).startswith("x402-upto-" + PAYER.address.lower())
    assert parse_upto(json.loads(json.dumps(payment)), OFFER) == permit


def _with(payment: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    copy = json.loads(json.dumps(payment))
    node = copy
    *parents, last = path.split(".")
    for name in parents:
        node = node[name]
    if value is ...:
        del node[last]
    else:
        node[last] = value
    return copy


def test_every_malformed_payment_header_is_refused_saying_what() -> None:
    payment = sdk_payment()
    auth = "payload.permit2Authorization"
    for path, value, why in (
        ("x402Version", 1, "x402Version"),
        ("accepted.scheme", "exact", "upto"),
        ("accepted.amount", str(OFFER.maximum - 1), "accepted.amount"),
        ("accepted.payTo", PAYER.address, "accepted.payTo"),
        ("accepted.network", "eip155:1", "accepted.network"),
        ("payload", "x", "payload is not an object"),
        (auth, ..., "permit2Authorization is not an object"),
        (f"{auth}.permitted", [], "permitted is not an object"),
        (f"{auth}.witness", ..., "witness is not an object"),
        (f"{auth}.from", "0x1234", "permit2Authorization.from"),
        (f"{auth}.spender", 7, "permit2Authorization.spender"),
        (f"{auth}.nonce", "-1", "nonce is out of range"),
        (f"{auth}.nonce", True, "nonce is not an integer"),
        (f"{auth}.deadline", "soon", "deadline is not an integer"),
        (f"{auth}.permitted.amount", str(2**256), "amount is out of range"),
        (f"{auth}.witness.to", "0x" + "zz" * 20, "witness.to"),
        ("payload.signature", "abc", "signature is not 0x"),
        ("payload.signature", "0xzz", "signature is not 0x"),
        ("payload.signature", "0x" + "00" * 64, "64 bytes, not 65"),
    ):
        with pytest.raises(PaymentHeaderError, match=why):
            parse_upto(_with(payment, path, value), OFFER)


def test_every_permit_that_is_not_this_offer_is_refused_with_its_code() -> None:
    payment = sdk_payment()
    auth = "payload.permit2Authorization"
    now = time.time()
    for path, value, code in (
        (f"{auth}.spender", EXACT_PROXY_ADDRESS, "wrong_spender"),
        (f"{auth}.permitted.token", PERMIT2_ADDRESS, "wrong_token"),
        (f"{auth}.witness.to", PAYER.address, "wrong_payee"),
        (f"{auth}.witness.facilitator", PAYER.address, "wrong_facilitator"),
        (f"{auth}.permitted.amount", str(OFFER.maximum + 1), "wrong_amount"),
        (f"{auth}.witness.validAfter", str(int(now) + 60), "not_yet_valid"),
        (f"{auth}.deadline", str(int(now) + MIN_VALIDITY_S - 5), "expires_too_soon"),
        (f"{auth}.nonce", "12345", "wrong_signer"),  # any signed field changed: another signer
        (f"{auth}.from", SERVICE, "wrong_signer"),
    ):
        permit = parse_upto(_with(payment, path, value), OFFER)
        with pytest.raises(PaymentRejectedError) as refused:
            verify_upto(permit, OFFER, now=now)
        assert refused.value.code == code, (path, refused.value)
    with pytest.raises(PaymentRejectedError) as short:  # the SDK signs what the offer gives: a long enough life
        verify_upto(parse_upto(sdk_payment(maxTimeoutSeconds=60), OFFER), OFFER)
    assert short.value.code == "expires_too_soon"
    high_s = _with(payment, "payload.signature", "0x" + "11" * 32 + "ff" * 32 + "1b")
    with pytest.raises(PaymentRejectedError) as malleable:
        verify_upto(parse_upto(high_s, OFFER), OFFER)
    assert malleable.value.code == "bad_signature"


def _job(stage: str, **payload: Any) -> Job:
    return Job("req-1", jobs.ASSET, stage, payload, 1, 0.0, 0.0, None, None)


def test_usage_is_what_the_job_consumed() -> None:
    lineage = {"steps": 20, "height": None, "width": 64}
    made = {"sha256": "ab" * 32, "lineage": lineage}
    assert usage_of(_job(jobs.REJECTED, curation={"screened": "prompt"}), PRICING, None) == Usage(False)
    assert usage_of(_job(jobs.FAILED, **made), PRICING, None) == Usage(False)  # the service's failure
    assert usage_of(_job(jobs.CANCELLED, **made), PRICING, None) == Usage(False)
    assert usage_of(_job(jobs.REJECTED, **made), PRICING, None) == Usage(True, 20, 32 * 64)
    registered = usage_of(_job(jobs.REGISTERED, **made, register_batch=8), PRICING, 480_000)
    assert registered == Usage(True, 20, 32 * 64, batch_gas=480_000, batch_size=8)
