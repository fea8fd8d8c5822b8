"""Helpers shared by the contract tests: records, registration, vouchers."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import ape
from ape.exceptions import ContractLogicError, CustomError
from eth_abi.abi import encode
from eth_utils import to_checksum_address
from eth_utils.crypto import keccak
from hypothesis import HealthCheck, settings

from agents.core.merkle import AssetRecord, DataTree
from agents.core.vouchers import CallVoucher, Voucher, settle_arguments, sign_voucher
from tests.strict_reverts import StrictReverts, revert_data

ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
ETH = ZERO_ADDRESS
SERVICE = "0x14dC79964da2C08b23698B3D3cc7Ca32193d9955"
"""The service whose escrow the tests' vouchers draw on and who settles them: test account 7
(the `service` fixture)."""
URI = "ipfs://bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"


def digest(label: str) -> bytes:
    return hashlib.sha256(label.encode()).digest()


FIELD_MODULUS = 21888242871839275222246405745257275088548364400416034343698204186575808495617
"""BN254's scalar field: proofs' public instances (input commitments among them) lie below it."""


def field_commitment(label: str) -> bytes:
    """A stand-in input commitment that is a field element, as a real (Poseidon) one is."""
    return (int.from_bytes(digest(label + "/input"), "big") % FIELD_MODULUS).to_bytes(32, "big")


def params_document(label: str) -> bytes:
    """The generation-parameters document of `asset_record(label, ...)`: its sha256 is the
    record's `paramsDigest` (the `prompt` ERC-7007 `verify` takes)."""
    return (label + "/params").encode()


def data_tree_for(label: str) -> DataTree:
    """A fixed three-originator data tree (weights 50/30/20%)."""
    originators = [
        to_checksum_address("0x" + hashlib.sha256(f"{label}/{i}".encode()).hexdigest()[:40]) for i in range(3)
    ]
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


SHIPPED_BANDS = (6_472, 4_588)
"""The shipped curation head's (acceptAt, reviewAt), scores at 2^-13: what `bindVerifier` binds
unless a test says otherwise."""

NONE, REJECT, REVIEW, ACCEPT = 0, 1, 2, 3
"""`IProvenanceRegistry.Verdict` as the ABI carries it (uint8)."""


def verdict_of(score: int, bands: tuple[int, int]) -> int:
    """The verdict the contract derives, as `media.head_training.Bands.decide_fixed` decides:
    accept at or above acceptAt, reject below reviewAt, review in between."""
    accept_at, review_at = bands
    return ACCEPT if score >= accept_at else REJECT if score < review_at else REVIEW


def bind_verifier(
    models: Any, developer: Any, model_id: int, verifier: Any, vk_digest: bytes, bands: tuple[int, int] = SHIPPED_BANDS
) -> Any:
    """`bindVerifier(modelId, verifier, vkDigest, acceptAt, reviewAt)` from the developer."""
    return models.bindVerifier(model_id, verifier, vk_digest, *bands, sender=developer)


def asset_record(
    label: str,
    creator: Any,
    model_id: int,
    parents: tuple[bytes, ...] = (),
    uri: str = URI,
    commitment: bytes | None = None,
) -> AssetRecord:
    return AssetRecord(
        content_digest=digest(label),
        creator=str(getattr(creator, "address", creator)),
        model_id=model_id,
        params_digest=hashlib.sha256(params_document(label)).digest(),
        input_commitment=commitment if commitment is not None else digest(label + "/input"),
        parents=tuple(sorted(parents)),
        metadata_uri=uri,
    )


def register_asset(provenance: Any, sender: Any, record: AssetRecord, license_ids: list[int] | None = None) -> Any:
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
    service: str = SERVICE,
    asset: bytes,
    terms_id: int,
    cumulative: int,
    deadline: int,
) -> CallVoucher:
    """A voucher signed by `signer`'s key in the compact form `settle` takes (for `payer`, which
    defaults to the signer: another payer makes a forgery)."""
    v = Voucher(payer or signer.address, service, asset, terms_id, cumulative, deadline)
    calls, wallet_signatures = settle_arguments([(v, sign_voucher(v, signer.private_key, chain_id, licenses.address))])
    assert not wallet_signatures
    return calls[0]


def stateful_settings(*, examples: int, steps: int) -> settings:
    """Hypothesis settings for the chain state machines: derandomized (a fixed seed, so a failure
    reproduces), no example database, no deadline (transactions take what they take).

    `PROOFMINT_STATEFUL_SCALE` (default 1) multiplies the examples, for a longer hunt than the
    suite's budget allows (`PROOFMINT_STATEFUL_SCALE=10 ape test tests/contracts -m slow`)."""
    scale = int(os.environ.get("PROOFMINT_STATEFUL_SCALE", "1"))
    if scale < 1:
        raise ValueError(f"PROOFMINT_STATEFUL_SCALE must be at least 1, got {scale}")
    return settings(
        max_examples=examples * scale,
        stateful_step_count=steps,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


class Views:
    """A contract's view functions called straight through web3, for the invariants a state
    machine checks after every step (ape's call machinery costs about three times as much per
    read on the embedded chain). Arguments as ape takes them (accounts and contracts stand for
    their addresses); results as ape gives them: one value, or a tuple whose fields (several
    outputs, a struct's members) also go by name."""

    def __init__(self, contract: Any, web3: Any) -> None:
        abi = [item.model_dump(by_alias=True, mode="json") for item in contract.contract_type.abi]
        self._functions = _reader(web3).eth.contract(address=str(contract.address), abi=abi).functions
        self._outputs = {item["name"]: item.get("outputs", []) for item in abi if item.get("type") == "function"}

    def __getattr__(self, name: str) -> Any:
        outputs = self._outputs[name]
        function = getattr(self._functions, name)

        def call(*args: Any) -> Any:
            result = function(*(getattr(a, "address", a) for a in args)).call()
            if len(outputs) == 1:
                return _shaped(outputs[0], result)
            return _shaped({"type": "tuple", "components": outputs}, result)

        return call


def _reader(web3: Any) -> Any:
    """A Web3 for reads alone on `web3`'s chain: no middleware (web3's validation middleware asks
    the node for its chain id before every `eth_call`) and, over HTTP, a session that does not
    read the proxy settings from the environment on every request (anvil is on 127.0.0.1). On
    anvil those two were a fifth of test_stateful_accounting's time."""
    import requests
    from web3 import HTTPProvider, Web3

    provider = web3.provider
    if isinstance(provider, HTTPProvider):
        session = requests.Session()
        session.trust_env = False
        provider = HTTPProvider(provider.endpoint_uri, session=session)
    return Web3(provider, middleware=[])


def _shaped(output: dict[str, Any], value: Any) -> Any:
    if output["type"] != "tuple":
        return value
    from collections import namedtuple

    names = [component["name"] or f"_{i}" for i, component in enumerate(output["components"])]
    struct = namedtuple("Struct", names, rename=True)  # type: ignore[misc]
    return struct(*(_shaped(c, v) for c, v in zip(output["components"], value, strict=True)))


# --- EIP-3009 (DevUsd, x402 `exact`) ---------------------------------------------------------

DEV_USD_NAME, DEV_USD_VERSION = "Proofmint Dev USD", "2"


def sign_eip3009(token: Any, key: Any, primary: str, message: dict[str, Any], *, chain_id: int | None = None) -> bytes:
    """`key`'s 65-byte signature of an EIP-3009 message (`primary`: TransferWithAuthorization,
    ReceiveWithAuthorization or CancelAuthorization) under `token`'s domain (DevUsd's name and
    version; `chain_id` default: the chain under test)."""
    from eth_account import Account
    from eth_account.messages import encode_typed_data

    from agents.api.exact import AUTHORIZATION_FIELDS
    from agents.api.x402 import EIP712_DOMAIN_TYPE

    fields = (
        [{"name": "authorizer", "type": "address"}, {"name": "nonce", "type": "bytes32"}]
        if primary == "CancelAuthorization"
        else list(AUTHORIZATION_FIELDS)
    )
    typed = {
        "types": {"EIP712Domain": EIP712_DOMAIN_TYPE, primary: fields},
        "primaryType": primary,
        "domain": {
            "name": DEV_USD_NAME,
            "version": DEV_USD_VERSION,
            "chainId": ape.chain.chain_id if chain_id is None else chain_id,
            "verifyingContract": token.address,
        },
        "message": message,
    }
    return bytes(Account.sign_message(encode_typed_data(full_message=typed), key).signature)


def eip3009_authorization(
    token: Any,
    key: Any,
    payer: str,
    to: str,
    value: int,
    *,
    valid_after: int = 0,
    valid_before: int = 2**40,
    nonce: bytes | None = None,
    primary: str = "TransferWithAuthorization",
    chain_id: int | None = None,
) -> tuple[dict[str, Any], bytes]:
    """An EIP-3009 authorization as an x402 `exact` client signs it: (its fields, the signature by `key`)."""
    message = {
        "from": to_checksum_address(payer),
        "to": to_checksum_address(to),
        "value": value,
        "validAfter": valid_after,
        "validBefore": valid_before,
        "nonce": nonce if nonce is not None else os.urandom(32),
    }
    return message, sign_eip3009(token, key, primary, message, chain_id=chain_id)


def authorization_args(message: dict[str, Any]) -> list[Any]:
    """`transferWithAuthorization`'s arguments before the signature."""
    return [message[k] for k in ("from", "to", "value", "validAfter", "validBefore", "nonce")]


def vrs(signature: bytes) -> tuple[int, bytes, bytes]:
    return signature[64], signature[:32], signature[32:64]


def reverts(error: Any, **inputs: Any) -> StrictReverts:
    """Expects the custom error `error` (a contract instance's error type) with `inputs` (a
    subset of its arguments), strictly even where ape cannot decode the revert
    (`tests.strict_reverts`, which the suite also installs as `ape.reverts`)."""
    return StrictReverts(error, **inputs)


@contextmanager
def reverts_raw(signature: str, *args: Any) -> Iterator[None]:
    """Expects the revert data of the error `signature` (e.g. "ERC721NonexistentToken(uint256)")
    with `args`, for reverts ape does not decode: errors raised by a contract the called one
    called and bubbled up (ape decodes only the called contract's), and on the embedded chain
    errors whose data holds a 0x27 byte (ERC721NonexistentToken's selector 0x7e273289 does:
    Python writes those bytes as b"...", which ape's parsing of the revert message misses)."""
    types = [t for t in signature[signature.index("(") + 1 : -1].split(",") if t]
    expected = keccak(text=signature)[:4] + encode(types, list(args))
    try:
        yield
    except ContractLogicError as error:
        if isinstance(error, CustomError):  # decoded after all (another provider)
            assert type(error).__name__ == signature[: signature.index("(")], repr(error)
            assert tuple(error.inputs.values()) == args, repr(error)
            return
        data = revert_data(error)
        if data is None:
            raise AssertionError(f"expected {signature} with {args}, got {error!r}") from error
        assert data == expected, f"expected {signature} with {args}, got 0x{data.hex()}"
    else:
        raise AssertionError("Transaction did not revert.")
