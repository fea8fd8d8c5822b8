"""Permit2 transfers as x402 clients sign them: the canonical addresses, Permit2's EIP-712
domain, the `upto` scheme's signed permit (its digest, and the proxy call that settles it), and
how a receipt shows a token transfer.

Stock x402 clients sign for fixed addresses: Permit2 at `PERMIT2_ADDRESS` (its EIP-712 domain
`{name: "Permit2", chainId, verifyingContract}`), the spender x402's proxy (`UPTO_PROXY_ADDRESS`
for `upto`, `EXACT_PROXY_ADDRESS` for `exact` over Permit2). `agents.deploy.permit2` places them
on development chains; live networks have them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from eth_abi.abi import encode
from eth_utils.crypto import keccak

from agents.core.addresses import address_of, checksummed

PERMIT2_ADDRESS: Final = "0x000000000022D473030F116dDEE9F6B43aC78BA3"
UPTO_PROXY_ADDRESS: Final = "0x4020A4f3b7b90ccA423B9fabCc0CE57C6C240002"
EXACT_PROXY_ADDRESS: Final = "0x402085c248EeA27D92E8b30b2C58ed07f9E20001"
TRANSFER_TOPIC: Final = keccak(b"Transfer(address,address,uint256)")
_DOMAIN_TYPEHASH: Final = keccak(b"EIP712Domain(string name,uint256 chainId,address verifyingContract)")
_TOKEN_PERMISSIONS: Final = keccak(b"TokenPermissions(address token,uint256 amount)")
_WITNESS: Final = keccak(b"Witness(address to,address facilitator,uint256 validAfter)")
_PERMIT: Final = keccak(
    b"PermitWitnessTransferFrom(TokenPermissions permitted,address spender,uint256 nonce,uint256 deadline,"
    b"Witness witness)TokenPermissions(address token,uint256 amount)Witness(address to,address facilitator,"
    b"uint256 validAfter)"
)
_SETTLE_TYPES: Final = [
    "((address,uint256),uint256,uint256)",
    "uint256",
    "address",
    "(address,address,uint256)",
    "bytes",
]
_SETTLE: Final = keccak(b"settle(((address,uint256),uint256,uint256),uint256,address,(address,address,uint256),bytes)")[
    :4
]


def domain_separator(chain_id: int, address: str = PERMIT2_ADDRESS) -> bytes:
    """Permit2's EIP-712 domain separator at `address` on chain `chain_id`."""
    return keccak(
        _DOMAIN_TYPEHASH + keccak(b"Permit2") + chain_id.to_bytes(32, "big") + bytes(12) + bytes.fromhex(address[2:])
    )


@dataclass(frozen=True)
class UptoPermit:
    """A signed Permit2 `PermitWitnessTransferFrom` with x402's upto witness."""

    payer: str
    token: str
    amount: int
    spender: str
    nonce: int
    deadline: int
    to: str
    facilitator: str
    valid_after: int
    signature: bytes

    def digest(self, chain_id: int) -> bytes:
        """The EIP-712 digest Permit2 checks the signature against."""

        def word(address: str) -> bytes:
            return bytes(12) + bytes.fromhex(checksummed(address)[2:])

        permitted = keccak(_TOKEN_PERMISSIONS + word(self.token) + self.amount.to_bytes(32, "big"))
        witness = keccak(_WITNESS + word(self.to) + word(self.facilitator) + self.valid_after.to_bytes(32, "big"))
        struct = keccak(
            _PERMIT
            + permitted
            + word(self.spender)
            + self.nonce.to_bytes(32, "big")
            + self.deadline.to_bytes(32, "big")
            + witness
        )
        return keccak(b"\x19\x01" + domain_separator(chain_id) + struct)

    def settle_calldata(self, amount: int) -> bytes:
        """The proxy's `settle(permit, amount, owner, witness, signature)` taking `amount`."""
        return _SETTLE + encode(
            _SETTLE_TYPES,
            [
                ((checksummed(self.token), self.amount), self.nonce, self.deadline),
                amount,
                checksummed(self.payer),
                (checksummed(self.to), checksummed(self.facilitator), self.valid_after),
                self.signature,
            ],
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "payer": checksummed(self.payer),
            "token": checksummed(self.token),
            "amount": str(self.amount),
            "spender": checksummed(self.spender),
            "nonce": str(self.nonce),
            "deadline": self.deadline,
            "to": checksummed(self.to),
            "facilitator": checksummed(self.facilitator),
            "validAfter": self.valid_after,
            "signature": "0x" + self.signature.hex(),
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> UptoPermit:
        return cls(
            payer=raw["payer"],
            token=raw["token"],
            amount=int(raw["amount"]),
            spender=raw["spender"],
            nonce=int(raw["nonce"]),
            deadline=int(raw["deadline"]),
            to=raw["to"],
            facilitator=raw["facilitator"],
            valid_after=int(raw["validAfter"]),
            signature=bytes.fromhex(raw["signature"][2:]),
        )


def transferred(receipt: dict[str, Any], token: str, source: str, target: str, amount: int) -> bool:
    """Whether a successful receipt holds `token`'s `Transfer(source, target, amount)`."""
    if int(receipt.get("status", 0)) != 1:
        return False
    for log in receipt.get("logs", []):
        topics = [bytes(t) for t in log.get("topics", [])]
        if len(topics) != 3 or topics[0] != TRANSFER_TOPIC or checksummed(str(log["address"])) != checksummed(token):
            continue
        data = log.get("data", b"")
        moved = int.from_bytes(bytes.fromhex(data[2:]) if isinstance(data, str) else bytes(data), "big")
        if (address_of(topics[1][12:]), address_of(topics[2][12:]), moved) == (
            checksummed(source),
            checksummed(target),
            amount,
        ):
            return True
    return False
