"""EIP-712 review decisions: a person approves or rejects an asset the curator sent to review.

A decision says: reviewer `reviewer` approves (or rejects, saying why) the asset `asset`, and the
signature holds until `deadline`. The domain names the deployment's `ProvenanceRegistry` on its
chain, so a decision signed for one deployment is worthless on another. Who may decide is the
deployment's list of reviewer addresses (the API's `--reviewer`); the signature proves the
decision came from one of them, and it is kept with the asset as labelled data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils.address import is_address, to_checksum_address

from agents.core.errors import PermanentError

DOMAIN_NAME = "Proofmint Review"
DOMAIN_VERSION = "1"
MAX_REASON_CHARS = 500
REVIEW_TYPES: dict[str, list[dict[str, str]]] = {
    "ReviewDecision": [
        {"name": "reviewer", "type": "address"},
        {"name": "asset", "type": "bytes32"},
        {"name": "approve", "type": "bool"},
        {"name": "reason", "type": "string"},
        {"name": "deadline", "type": "uint256"},
    ]
}


class ReviewError(PermanentError, ValueError):
    """A review decision that cannot be taken as given; the message says why."""


@dataclass(frozen=True)
class ReviewDecision:
    reviewer: str
    asset: bytes
    approve: bool
    reason: str
    deadline: int

    def __post_init__(self) -> None:
        if not is_address(self.reviewer):
            raise ReviewError(f"reviewer {self.reviewer!r} is not an address")
        if len(self.asset) != 32:
            raise ReviewError("asset is a 32-byte content digest")
        if len(self.reason) > MAX_REASON_CHARS:
            raise ReviewError(f"the reason has {len(self.reason)} characters; at most {MAX_REASON_CHARS}")
        if not self.approve and not self.reason.strip():
            raise ReviewError("a rejection says why (reason)")
        if not 0 < self.deadline < 2**64:
            raise ReviewError("deadline is a unix time in seconds")

    def message(self) -> dict[str, Any]:
        return {
            "reviewer": to_checksum_address(self.reviewer),
            "asset": self.asset,
            "approve": self.approve,
            "reason": self.reason,
            "deadline": self.deadline,
        }

    def as_json(self) -> dict[str, Any]:
        return {
            "reviewer": to_checksum_address(self.reviewer),
            "asset": "0x" + self.asset.hex(),
            "approve": self.approve,
            "reason": self.reason,
            "deadline": self.deadline,
        }


def review_domain(chain_id: int, registry: str) -> dict[str, Any]:
    return {
        "name": DOMAIN_NAME,
        "version": DOMAIN_VERSION,
        "chainId": chain_id,
        "verifyingContract": to_checksum_address(registry),
    }


def sign_review(decision: ReviewDecision, private_key: str | bytes, chain_id: int, registry: str) -> bytes:
    """A 65-byte signature of the decision (what a wallet's eth_signTypedData_v4 returns)."""
    signable = encode_typed_data(review_domain(chain_id, registry), REVIEW_TYPES, decision.message())
    return bytes(Account.sign_message(signable, private_key).signature)


def signer_of_review(decision: ReviewDecision, signature: bytes, chain_id: int, registry: str) -> str:
    """The address that signed the decision; ReviewError for a signature that is no signature."""
    if len(signature) != 65:
        raise ReviewError(f"the signature is {len(signature)} bytes, not 65")
    signable = encode_typed_data(review_domain(chain_id, registry), REVIEW_TYPES, decision.message())
    try:
        return str(Account.recover_message(signable, signature=signature))
    except Exception as exc:  # eth_keys' BadSignature and ValueError, whatever the bytes
        raise ReviewError(f"the signature does not recover to any key ({type(exc).__name__})") from None
