"""Helpers shared by the contract tests: records, registration, vouchers."""

from __future__ import annotations

import hashlib
from typing import Any

from eth_utils import to_checksum_address
from hypothesis import HealthCheck, settings

from agents.merkle import AssetRecord, DataTree
from agents.vouchers import Voucher, as_call_tuple, sign_voucher

ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
ETH = ZERO_ADDRESS
URI = "ipfs://bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"


def digest(label: str) -> bytes:
    return hashlib.sha256(label.encode()).digest()


def data_tree_for(label: str) -> DataTree:
    """A fixed three-originator data tree (weights 50/30/20%)."""
    originators = [to_checksum_address("0x" + hashlib.sha256(f"{label}/{i}".encode()).hexdigest()[:40]) for i in range(3)]
    return DataTree(list(zip(originators, [500_000, 300_000, 200_000], strict=True)))


def register_model(
    models: Any,
    developer: Any,
    *,
    label: str,
    developer_bps: int = 1_000,
    data_bps: int = 500,
    data_root: bytes | None = None,
) -> int:
    root = data_root if data_root is not None else (data_tree_for(label).root if data_bps else b"\x00" * 32)
    models.registerModel(
        {
            "weightsDigest": digest(label),
            "paramsCommitment": digest(label + "/params"),
            "dataRoot": root,
            "predecessor": 0,
            "developerBps": developer_bps,
            "dataBps": data_bps,
            "metadataURI": URI,
        },
        sender=developer,
    )
    return int(models.modelCount())


def asset_record(
    label: str, creator: Any, model_id: int, parents: tuple[bytes, ...] = (), uri: str = URI, commitment: bytes | None = None
) -> AssetRecord:
    return AssetRecord(
        content_digest=digest(label),
        creator=str(getattr(creator, "address", creator)),
        model_id=model_id,
        params_digest=digest(label + "/params"),
        input_commitment=commitment if commitment is not None else digest(label + "/input"),
        parents=tuple(sorted(parents)),
        metadata_uri=uri,
    )


def register_asset(
    provenance: Any, sender: Any, record: AssetRecord, license_ids: list[int] | None = None
) -> Any:
    return provenance.register(record.as_tuple(), license_ids or [], sender=sender)


def terms_input(
    *,
    currency: str = ETH,
    price: int = 10**15,
    price_per_use: int = 10**12,
    duration: int = 0,
    derivative_bps: int = 1_000,
    commercial: bool = True,
    derivatives: bool = True,
) -> dict[str, Any]:
    return {
        "currency": currency,
        "price": price,
        "pricePerUse": price_per_use,
        "duration": duration,
        "derivativeRoyaltyBps": derivative_bps,
        "commercialUse": commercial,
        "derivativesAllowed": derivatives,
    }


def attach_terms(licenses: Any, creator: Any, asset: bytes, **kwargs: Any) -> int:
    licenses.attachTerms(asset, terms_input(**kwargs), sender=creator)
    return int(licenses.termsCount())


def buy_license(licenses: Any, buyer: Any, terms_id: int, *, to: Any = None, value: int | None = None) -> int:
    terms = licenses.getTerms(terms_id)
    pay = int(terms.price) if value is None else value
    receipt = licenses.purchase(terms_id, getattr(to, "address", to) or buyer.address, sender=buyer, value=pay)
    return int(receipt.events.filter(licenses.LicensePurchased)[0].licenseId)


def signed_voucher(
    licenses: Any,
    chain_id: int,
    signer: Any,
    *,
    payer: str | None = None,
    asset: bytes,
    terms_id: int,
    cumulative: int,
    deadline: int,
) -> tuple[str, int, int, int, bytes]:
    v = Voucher(payer or signer.address, asset, terms_id, cumulative, deadline)
    return as_call_tuple(v, sign_voucher(v, signer.private_key, chain_id, licenses.address))


def stateful_settings(*, examples: int, steps: int) -> settings:
    """Hypothesis settings for the chain state machines: derandomized (a fixed seed, so a failure
    reproduces), no example database, no deadline (transactions take what they take)."""
    return settings(
        max_examples=examples,
        stateful_step_count=steps,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
