"""x402's `exact` scheme over an EIP-3009 token, proofmint acting as its own facilitator.

The offer (`ExactOffer.requirements`) asks for the terms' price per use in the token, paid to the
asset's payment receiver (`LicenseManager.paymentReceiverOf(asset)`), with the token's
EIP-712 domain in `extra` (`name`, `version`) as stock clients expect. A client answers with a
`TransferWithAuthorization` signed for exactly that: `{authorization: {from, to, value,
validAfter, validBefore, nonce}, signature}`.

Verification (`verify_exact`, the facilitator's `/verify`): the payee is the asset's receiver,
the value is the price, the authorization is valid now and for at least `MIN_VALIDITY_S` more
(long enough to land on chain), and the EIP-712 signature is the payer's (65 bytes, low s).
What only the chain knows (the nonce unused, the balance enough) the settlement finds out.

Settlement (`settle_exact`, the facilitator's `/settle`): the service's key submits
`transferWithAuthorization`; the payment counts only if that transaction succeeded and its
receipt shows the token moving `value` from the payer to the receiver. A replayed authorization
fails on chain (`DevUsd__AuthorizationUsed`, or the live token's equivalent) and pays for
nothing. Because the receiver's address is the asset's, a front-runner who submits the
authorization first changes only who paid the gas: the money still goes to the asset, and
`LicenseManager.sweepPayments` (anyone may call it) moves it into the asset's royalty split.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Final

from eth_abi.abi import encode
from eth_utils.crypto import keccak

from agents.api.paywall import PaymentRejectedError, recover_signer
from agents.api.x402 import (
    PaymentHeaderError,
    check_accepted,
    header_address,
    header_hex,
    header_uint,
    token_requirements,
)
from agents.core.addresses import checksummed
from agents.core.permits import transferred
from agents.runtime import jobs

SCHEME: Final = "exact"
MIN_VALIDITY_S: Final = 30
"""How long an authorization must stay valid after it is verified: the settlement transaction
has that long to be mined."""
MAX_TIMEOUT_S: Final = 300
AUTHORIZATION_FIELDS: Final = (
    {"name": "from", "type": "address"},
    {"name": "to", "type": "address"},
    {"name": "value", "type": "uint256"},
    {"name": "validAfter", "type": "uint256"},
    {"name": "validBefore", "type": "uint256"},
    {"name": "nonce", "type": "bytes32"},
)
"""EIP-3009's `TransferWithAuthorization` (and `ReceiveWithAuthorization`) fields, as EIP-712 types."""
_TRANSFER_TYPEHASH: Final = keccak(
    ("TransferWithAuthorization(" + ",".join(f"{f['type']} {f['name']}" for f in AUTHORIZATION_FIELDS) + ")").encode()
)
_DOMAIN_TYPEHASH: Final = keccak(b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)")
_ARGUMENT_TYPES: Final = [f["type"] for f in AUTHORIZATION_FIELDS] + ["uint8", "bytes32", "bytes32"]
_SELECTOR: Final = keccak(f"transferWithAuthorization({','.join(_ARGUMENT_TYPES)})".encode())[:4]


X402_KIND: Final = jobs.X402
PAYING: Final = jobs.X402_PAYING
PAID: Final = jobs.X402_PAID  # the settlement daemon's sweeper takes them from here
REFUSED: Final = jobs.X402_REFUSED


@dataclass(frozen=True)
class ExactToken:
    """An EIP-3009 token and its EIP-712 domain (what clients sign under)."""

    address: str
    name: str
    version: str

    def domain_separator(self, chain_id: int) -> bytes:
        return keccak(
            _DOMAIN_TYPEHASH
            + keccak(self.name.encode())
            + keccak(self.version.encode())
            + chain_id.to_bytes(32, "big")
            + bytes(12)
            + bytes.fromhex(checksummed(self.address)[2:])
        )


@dataclass(frozen=True)
class ExactOffer:
    """One use of an asset under metered terms priced in `token`, paid to the asset's receiver."""

    asset: bytes
    terms_id: int
    price_per_use: int
    token: ExactToken
    pay_to: str  # LicenseManager.paymentReceiverOf(asset)
    chain_id: int

    def requirements(self, max_timeout_s: int = MAX_TIMEOUT_S) -> dict[str, Any]:
        return token_requirements(
            SCHEME,
            self.chain_id,
            self.price_per_use,
            self.token,
            self.pay_to,
            max_timeout_s,
            assetTransferMethod="eip3009",
            assetDigest="0x" + self.asset.hex(),
            termsId=self.terms_id,
        )


@dataclass(frozen=True)
class Authorization:
    """A signed EIP-3009 `TransferWithAuthorization`."""

    payer: str
    to: str
    value: int
    valid_after: int
    valid_before: int
    nonce: bytes
    signature: bytes

    def digest(self, token: ExactToken, chain_id: int) -> bytes:
        struct = keccak(
            _TRANSFER_TYPEHASH
            + bytes(12)
            + bytes.fromhex(checksummed(self.payer)[2:])
            + bytes(12)
            + bytes.fromhex(checksummed(self.to)[2:])
            + self.value.to_bytes(32, "big")
            + self.valid_after.to_bytes(32, "big")
            + self.valid_before.to_bytes(32, "big")
            + self.nonce
        )
        return keccak(b"\x19\x01" + token.domain_separator(chain_id) + struct)

    def calldata(self) -> bytes:
        """`transferWithAuthorization(from, to, value, validAfter, validBefore, nonce, v, r, s)`."""
        v = self.signature[64] if self.signature[64] >= 27 else self.signature[64] + 27
        return _SELECTOR + encode(
            _ARGUMENT_TYPES,
            [
                checksummed(self.payer),
                checksummed(self.to),
                self.value,
                self.valid_after,
                self.valid_before,
                self.nonce,
                v,
                self.signature[:32],
                self.signature[32:64],
            ],
        )


def parse_exact(payment: dict[str, Any], offer: ExactOffer) -> Authorization:
    """The authorization in a decoded `PAYMENT-SIGNATURE` (`agents.api.x402.decode_header`)
    that accepts `offer`'s exact requirements; PaymentHeaderError for anything malformed or
    accepting something else."""
    check_accepted(payment, offer.requirements())
    body = payment.get("payload")
    if not isinstance(body, dict) or not isinstance(body.get("authorization"), dict):
        raise PaymentHeaderError("the payload holds no EIP-3009 authorization")
    auth = body["authorization"]
    signature = header_hex(body.get("signature"), "payload.signature", 65)
    return Authorization(
        payer=header_address(auth.get("from"), "authorization.from"),
        to=header_address(auth.get("to"), "authorization.to"),
        value=header_uint(auth.get("value"), "authorization.value"),
        valid_after=header_uint(auth.get("validAfter"), "authorization.validAfter"),
        valid_before=header_uint(auth.get("validBefore"), "authorization.validBefore"),
        nonce=header_hex(auth.get("nonce"), "authorization.nonce", 32),
        signature=signature,
    )


def signer_of(auth: Authorization, token: ExactToken, chain_id: int) -> str:
    """Who signed the authorization; PaymentRejectedError for a signature no EIP-3009 token takes."""
    return recover_signer(auth.signature, lambda: auth.digest(token, chain_id))


def verify_exact(auth: Authorization, offer: ExactOffer, *, now: float | None = None) -> None:
    """The facilitator's `/verify`: PaymentRejectedError (a stable code, a message saying why)
    unless the authorization pays the offer's price to the asset's receiver, is valid now and
    for `MIN_VALIDITY_S` more, and is signed by its payer."""
    at = time.time() if now is None else now
    if checksummed(auth.to) != checksummed(offer.pay_to):
        raise PaymentRejectedError(
            "wrong_payee", f"the authorization pays {auth.to}, not this asset's receiver {offer.pay_to}"
        )
    if auth.value != offer.price_per_use:
        raise PaymentRejectedError(
            "wrong_amount", f"the authorization is for {auth.value}, the price of a use is {offer.price_per_use}"
        )
    if auth.valid_after >= at:
        raise PaymentRejectedError("not_yet_valid", f"the authorization is valid only after {auth.valid_after}")
    if auth.valid_before < at + MIN_VALIDITY_S:
        raise PaymentRejectedError(
            "expires_too_soon",
            f"the authorization must stay valid for {MIN_VALIDITY_S} s more (validBefore {auth.valid_before}): "
            "sign again with a later validBefore",
        )
    signer = signer_of(auth, offer.token, offer.chain_id)
    if signer != checksummed(auth.payer):
        raise PaymentRejectedError("wrong_signer", f"the authorization is signed by {signer}, not by {auth.payer}")


def paid_in(receipt: dict[str, Any], auth: Authorization, token: str) -> bool:
    """Whether a successful receipt shows `token` moving the authorization's value from its
    payer to its payee."""
    return transferred(receipt, token, auth.payer, auth.to, auth.value)


_USED_TOPIC: Final = keccak(b"AuthorizationUsed(address,bytes32)")
LOOKBACK_BLOCKS: Final = 2_000
"""How far back `settle_exact` looks for a use of an authorization someone else submitted (an
authorization lives at most `MAX_TIMEOUT_S`; 2,000 blocks cover it on any chain of 0.15 s blocks
or slower)."""


async def settle_exact(client: Any, auth: Authorization, token: ExactToken) -> str:
    """The facilitator's `/settle`: submits the authorization from the service's key and waits
    for it; the hash of the transaction whose receipt shows the payment. When the token refuses
    it because it was used already, the use is looked up: if a transaction (a front-runner's)
    moved exactly this payment, that is the settlement (the money reached the asset's receiver
    all the same). PaymentRejectedError `payment_failed` otherwise: nothing was paid. Callers
    make a use of each authorization once (`accept_exact`): this function alone would answer a
    replay with the first settlement."""
    from agents.core.reverts import WouldRevertError
    from agents.runtime.sender import BroadcastRefusedError, RevertedOnChainError

    try:
        receipt = await client.sender.send_and_wait(
            checksummed(token.address), auth.calldata(), label="x402 exact payment", keys=[exact_key(auth)]
        )
    except BroadcastRefusedError as exc:  # the node refuses the service's transaction (its gas, say)
        raise PaymentRejectedError("payment_failed", f"this server could not submit the payment: {exc}") from exc
    except (WouldRevertError, RevertedOnChainError) as exc:
        found = await _used_by(client, auth, token)
        if found is None:
            raise PaymentRejectedError("payment_failed", f"the token refused the authorization: {exc}") from exc
        receipt = found
    if not paid_in(receipt, auth, token.address):
        raise PaymentRejectedError("payment_failed", "the settlement transaction moved no such payment")
    tx_hash = receipt.get("transactionHash", b"")
    return tx_hash if isinstance(tx_hash, str) else "0x" + bytes(tx_hash).hex()


async def _used_by(client: Any, auth: Authorization, token: ExactToken) -> dict[str, Any] | None:
    """The receipt of the transaction that used the authorization (its `AuthorizationUsed`
    event) within the last `LOOKBACK_BLOCKS`, or None."""
    web3 = client.web3
    head = int(await client.block_number())
    logs = await client.node(
        web3.eth.get_logs,
        {
            "address": checksummed(token.address),
            "fromBlock": max(0, head - LOOKBACK_BLOCKS),
            "toBlock": head,
            "topics": [
                "0x" + _USED_TOPIC.hex(),
                "0x" + bytes(12).hex() + checksummed(auth.payer)[2:].lower(),
                "0x" + auth.nonce.hex(),
            ],
        },
    )
    if not logs:
        return None
    receipt = await client.node(web3.eth.get_transaction_receipt, logs[-1]["transactionHash"])
    return dict(receipt)


async def accept_exact(journal: Any, client: Any, auth: Authorization, offer: ExactOffer) -> str:
    """One use for one authorization, at most once across every API process sharing the journal:
    verifies it, claims it in the journal (kind `x402`, keyed by payer and nonce: a second claim,
    a replay, is refused with `replayed`), settles it and records the settlement; the
    transaction hash. A claimed authorization stays claimed whatever happens next (a client
    whose payment failed signs a new one)."""
    verify_exact(auth, offer)
    key = exact_key(auth)
    payload = {
        "payer": checksummed(auth.payer),
        "requester": checksummed(auth.payer),  # indexed: reputation looks payments up by payer
        "asset": "0x" + offer.asset.hex(),
        "termsId": offer.terms_id,
        "token": checksummed(offer.token.address),
        "receiver": checksummed(offer.pay_to),
        "value": str(auth.value),
    }
    if not await journal.call(journal.submit, key, X402_KIND, payload, stage=PAYING):
        raise PaymentRejectedError("replayed", "this authorization has paid for a use already: sign a new one")
    try:
        tx_hash = await settle_exact(client, auth, offer.token)
    except PaymentRejectedError as refused:
        await journal.call(journal.advance, [key], PAYING, REFUSED, updates={key: {"reason": str(refused)}})
        raise
    await journal.call(journal.advance, [key], PAYING, PAID, updates={key: {"transaction": tx_hash}})
    return tx_hash


_STATE_ABI: Final = [
    {"type": "function", "name": "authorizationState", "stateMutability": "view",
     "inputs": [{"name": "authorizer", "type": "address"}, {"name": "nonce", "type": "bytes32"}],
     "outputs": [{"name": "", "type": "bool"}]},
    {"type": "function", "name": "balanceOf", "stateMutability": "view",
     "inputs": [{"name": "account", "type": "address"}], "outputs": [{"name": "", "type": "uint256"}]},
]  # fmt: skip


async def check_on_chain(client: Any, auth: Authorization, token: ExactToken) -> None:
    """What only the chain knows, read now: the authorization unused (not cancelled) and the
    payer's balance enough; PaymentRejectedError `replayed` or `insufficient_funds` otherwise."""
    contract = client.web3.eth.contract(address=checksummed(token.address), abi=_STATE_ABI)
    payer = checksummed(auth.payer)
    used = await client.node(contract.functions.authorizationState(payer, auth.nonce).call)
    if used:
        raise PaymentRejectedError("replayed", "this authorization was used or cancelled already")
    balance = int(await client.node(contract.functions.balanceOf(payer).call))
    if balance < auth.value:
        raise PaymentRejectedError("insufficient_funds", f"the payer holds {balance}, less than {auth.value}")


def exact_key(auth: Authorization) -> str:
    """The journal key of one authorization: one per (payer, nonce), as the token counts them."""
    return f"x402-exact-{checksummed(auth.payer).lower()}-{auth.nonce.hex()}"
