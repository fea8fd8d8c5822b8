"""EIP-712 cumulative vouchers for `LicenseManager.settle`, signed in Python.

A voucher says: `payer` owes `cumulative_amount` in total, so far, for uses of `asset` under
`terms_id` served by `service`, drawn on the payer's escrow with that service, and the promise
holds until `deadline`. Each new voucher on a channel (payer, service, terms) replaces the last;
settlement pays the difference.
"""

from __future__ import annotations

import functools
from collections.abc import Container, Sequence
from dataclasses import dataclass
from typing import Any

from eth_account import Account
from eth_account.messages import SignableMessage, encode_typed_data
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from agents.core.addresses import checksummed

DOMAIN_NAME = "Proofmint LicenseManager"
DOMAIN_VERSION = "2"
VOUCHER_TYPES: dict[str, list[dict[str, str]]] = {
    "Voucher": [
        {"name": "payer", "type": "address"},
        {"name": "service", "type": "address"},
        {"name": "asset", "type": "bytes32"},
        {"name": "termsId", "type": "uint256"},
        {"name": "cumulativeAmount", "type": "uint256"},
        {"name": "deadline", "type": "uint256"},
    ]
}


@dataclass(frozen=True)
class Voucher:
    payer: str
    service: str
    asset: bytes
    terms_id: int
    cumulative_amount: int
    deadline: int

    def message(self) -> dict[str, Any]:
        return {
            "payer": checksummed(self.payer),
            "service": checksummed(self.service),
            "asset": self.asset,
            "termsId": self.terms_id,
            "cumulativeAmount": self.cumulative_amount,
            "deadline": self.deadline,
        }


def domain(chain_id: int, verifying_contract: str) -> dict[str, Any]:
    return {
        "name": DOMAIN_NAME,
        "version": DOMAIN_VERSION,
        "chainId": chain_id,
        "verifyingContract": to_checksum_address(verifying_contract),
    }


def signable_voucher(voucher: Voucher, chain_id: int, verifying_contract: str) -> SignableMessage:
    """The EIP-712 message to sign, for any signer that takes one (ape accounts, hardware wallets)."""
    return encode_typed_data(domain(chain_id, verifying_contract), VOUCHER_TYPES, voucher.message())


_DOMAIN_TYPEHASH = keccak(text="EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)")
_VOUCHER_TYPEHASH = keccak(
    text="Voucher(address payer,address service,bytes32 asset,uint256 termsId,"
    "uint256 cumulativeAmount,uint256 deadline)"
)


@functools.lru_cache(maxsize=64)
def domain_separator(chain_id: int, verifying_contract: str) -> bytes:
    """EIP-712 `hashStruct(EIP712Domain)` of LicenseManager on a chain."""
    return bytes(
        keccak(
            _DOMAIN_TYPEHASH
            + keccak(text=DOMAIN_NAME)
            + keccak(text=DOMAIN_VERSION)
            + chain_id.to_bytes(32, "big")
            + bytes(12)
            + bytes.fromhex(verifying_contract[2:])
        )
    )


def voucher_digest(voucher: Voucher, chain_id: int, verifying_contract: str) -> bytes:
    """The 32-byte digest a payer signs (what `LicenseManager.voucherDigest` returns), hashed
    directly (the same bytes as eth-account's typed-data encoding, without its schema walk)."""
    struct = keccak(
        _VOUCHER_TYPEHASH
        + bytes(12)
        + bytes.fromhex(checksummed(voucher.payer)[2:])
        + bytes(12)
        + bytes.fromhex(checksummed(voucher.service)[2:])
        + voucher.asset.rjust(32, b"\0")
        + voucher.terms_id.to_bytes(32, "big")
        + voucher.cumulative_amount.to_bytes(32, "big")
        + voucher.deadline.to_bytes(32, "big")
    )
    return bytes(keccak(b"\x19\x01" + domain_separator(chain_id, verifying_contract.lower()) + struct))


def sign_voucher(voucher: Voucher, private_key: str | bytes, chain_id: int, verifying_contract: str) -> bytes:
    """A 65-byte r ‖ s ‖ v signature (low s, v in {27, 28})."""
    signable = signable_voucher(voucher, chain_id, verifying_contract)
    signed = Account.sign_message(signable, private_key)
    return bytes(signed.signature)


CallVoucher = tuple[str, int, int, int, bytes, bytes]
"""`LicenseManager.Voucher` as a contract call takes it: (payer, termsId, cumulativeAmount,
deadline, r, vs); the terms fix the asset and the batch names the service."""


def compact_signature(signature: bytes) -> tuple[bytes, bytes] | None:
    """The EIP-2098 compact form (r, vs) of a 65-byte r ‖ s ‖ v signature with v in {27, 28} or
    its parity form {0, 1}, as some wallets return it (vs = s with v's parity in the top bit);
    None for any other signature. Both forms are the same signature: the API accepts a voucher
    in either, so settlement must send either as what it is, never as a wallet's signature."""
    if len(signature) != 65 or signature[64] not in (0, 1, 27, 28):
        return None
    s = int.from_bytes(signature[32:64], "big")
    if s >> 255:  # not representable: the top bit carries v
        return None
    vs = s | ((signature[64] % 27) << 255)
    return signature[:32], vs.to_bytes(32, "big")


def _ecdsa_form(signature: bytes) -> bytes:
    """A 65-byte signature with v as parity (0 or 1) written with v as 27 or 28: the contract
    tries ECDSA first on a listed signature (a payer with code may also hold its key, as an
    EIP-7702 account does), and recovers only 27 or 28; any other signature as it is."""
    if len(signature) == 65 and signature[64] in (0, 1):
        return signature[:64] + bytes([signature[64] + 27])
    return signature


def settle_arguments(
    vouchers: Sequence[tuple[Voucher, bytes]], wallets: Container[str] = ()
) -> tuple[list[CallVoucher], list[tuple[int, bytes]]]:
    """`settle`'s vouchers and wallet signatures for signed vouchers (all of one service).

    A voucher signed by an EOA with a 65-byte signature travels in compact form; one whose payer
    is in `wallets` (checksummed addresses of contract payers, ERC-1271) or whose signature has
    another shape travels with r = vs = 0 and its signature in the wallet list, under its index
    (a 65-byte one with v as parity rewritten with v as 27 or 28: the contract's ECDSA check of a
    listed signature, for an account with code that holds its key, reads only those)."""
    calls: list[CallVoucher] = []
    wallet_signatures: list[tuple[int, bytes]] = []
    zero = bytes(32)
    for index, (voucher, signature) in enumerate(vouchers):
        payer = checksummed(voucher.payer)
        compact = None if payer in wallets else compact_signature(signature)
        r, vs = compact if compact is not None else (zero, zero)
        if compact is None:
            wallet_signatures.append((index, _ecdsa_form(signature)))
        calls.append((payer, voucher.terms_id, voucher.cumulative_amount, voucher.deadline, r, vs))
    return calls, wallet_signatures
