"""x402's `upto` scheme for generation requests: the payer authorises a maximum, the service takes
what the generation cost.

The offer (`UptoOffer.requirements`) for `POST /v1/requests` asks for at most `maximum` of the
API's token (`RequestPricing.maximum` of the request: its steps at its resolution, and a batch's
registration as if the asset were registered alone), paid to the service, settled by the service
(`extra.facilitatorAddress`). A stock client (the SDK's `UptoEvmScheme`) answers with a Permit2
`PermitWitnessTransferFrom` signed for the canonical Permit2, the spender x402's upto proxy, and
the witness `{to, facilitator, validAfter}` (`agents.deploy.permit2`). Nothing moves then.

`verify_upto` (the API, before journaling the request): the permit names this token, this
maximum, the proxy, the service as payee and as facilitator; it is valid now and for
`MIN_VALIDITY_S` more (the generation, and its registration, happen in that time); its EIP-712
signature is the payer's. `check_permit_on_chain`: its nonce unused, the payer's allowance to
Permit2 and balance cover the maximum.

After the work (`agents.daemons.settle.UptoStage`) the service charges what the job consumed
(`RequestPricing.charge` of its `Usage`): a base fee, the denoising steps it ran at the
resolution it ran at, and its share of its registration batch's gas; nothing for a request
refused before any compute or failed by the service. It calls the proxy's `settle(permit, amount,
owner, witness, signature)` once with that amount, at most the maximum; the rest never leaves
the payer's wallet, and `GET /v1/requests/{key}` shows authorised, charged and unused side by
side. Only the witness's facilitator may settle (the proxy checks the caller), the destination
is signed, and Permit2 spends each nonce once: a replayed permit pays nothing twice.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from agents.api.exact import ExactToken
from agents.api.paywall import PaymentRejectedError, recover_signer
from agents.api.x402 import (
    PaymentHeaderError,
    check_accepted,
    header_address,
    header_uint,
    token_requirements,
)
from agents.core.addresses import checksummed
from agents.core.permits import PERMIT2_ADDRESS, UPTO_PROXY_ADDRESS, UptoPermit
from agents.core.requests import GenerationRequest
from agents.runtime import jobs

SCHEME: Final = "upto"
MAX_TIMEOUT_S: Final = 3_600
"""What the offer gives the payer's signature to live (the SDK signs a deadline this far ahead)."""
DEADLINE_SLACK_S: Final = 300
"""How much later than `MAX_TIMEOUT_S` from now a permit's deadline may be (clock skew)."""
MAX_OUTSTANDING: Final = 32
"""The most permits of one payer waiting to be charged at once: each one's maximum counts against
the payer's balance and Permit2 allowance until it is charged."""
MIN_VALIDITY_S: Final = 900
"""How long a permit must stay valid when it is accepted: the generation and its registration
batch happen in that time, and the charge is settled before it runs out."""

KIND: Final = jobs.X402_UPTO
AUTHORISED: Final = jobs.UPTO_AUTHORISED
CHARGING: Final = jobs.UPTO_CHARGING
SETTLED: Final = jobs.UPTO_SETTLED
REFUSED: Final = jobs.UPTO_REFUSED
VOID: Final = jobs.UPTO_VOID


@dataclass(frozen=True)
class UptoOffer:
    """Pay at most `maximum` of `token` to the service for one generation request."""

    maximum: int
    token: ExactToken
    service: str  # the payee and the facilitator: it settles the charge
    chain_id: int

    def requirements(self, max_timeout_s: int = MAX_TIMEOUT_S) -> dict[str, Any]:
        return token_requirements(
            SCHEME,
            self.chain_id,
            self.maximum,
            self.token,
            self.service,
            max_timeout_s,
            assetTransferMethod="permit2",
            facilitatorAddress=checksummed(self.service),
            metered="base + denoising steps x megapixels + share of the registration batch's gas",
        )


def _object(value: Any, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise PaymentHeaderError(f"{name} is not an object")
    return value


def parse_upto(payment: dict[str, Any], offer: UptoOffer) -> UptoPermit:
    """The permit in a decoded `PAYMENT-SIGNATURE` that accepts `offer`; PaymentHeaderError for
    anything malformed or accepting something else."""
    check_accepted(payment, offer.requirements())
    body = _object(payment.get("payload"), "payload")
    auth = _object(body.get("permit2Authorization"), "payload.permit2Authorization")
    permitted = _object(auth.get("permitted"), "permit2Authorization.permitted")
    witness = _object(auth.get("witness"), "permit2Authorization.witness")
    signature = body.get("signature")
    if not isinstance(signature, str) or not signature.startswith("0x"):
        raise PaymentHeaderError("payload.signature is not 0x-prefixed hex")
    try:
        raw_signature = bytes.fromhex(signature[2:])
    except ValueError as exc:
        raise PaymentHeaderError("payload.signature is not 0x-prefixed hex") from exc
    if len(raw_signature) != 65:
        raise PaymentHeaderError(f"payload.signature is {len(raw_signature)} bytes, not 65")
    if raw_signature[64] in (0, 1):  # v as parity: Permit2's ecrecover takes only 27/28
        raw_signature = raw_signature[:64] + bytes([raw_signature[64] + 27])
    return UptoPermit(
        payer=header_address(auth.get("from"), "permit2Authorization.from"),
        token=header_address(permitted.get("token"), "permitted.token"),
        amount=header_uint(permitted.get("amount"), "permitted.amount"),
        spender=header_address(auth.get("spender"), "permit2Authorization.spender"),
        nonce=header_uint(auth.get("nonce"), "permit2Authorization.nonce"),
        deadline=header_uint(auth.get("deadline"), "permit2Authorization.deadline"),
        to=header_address(witness.get("to"), "witness.to"),
        facilitator=header_address(witness.get("facilitator"), "witness.facilitator"),
        valid_after=header_uint(witness.get("validAfter"), "witness.validAfter"),
        signature=raw_signature,
    )


def verify_upto(permit: UptoPermit, offer: UptoOffer, *, now: float | None = None) -> None:
    """PaymentRejectedError (a stable code, a message saying why) unless the permit authorises
    exactly the offer's maximum of its token through x402's upto proxy to the service, settled
    by the service, valid now and for `MIN_VALIDITY_S` more, and signed by its payer."""
    at = time.time() if now is None else now
    expected = (
        ("wrong_spender", permit.spender, UPTO_PROXY_ADDRESS, "the spender"),
        ("wrong_token", permit.token, offer.token.address, "the token"),
        ("wrong_payee", permit.to, offer.service, "the payee (witness.to)"),
        ("wrong_facilitator", permit.facilitator, offer.service, "the facilitator"),
    )
    for code, got, want, what in expected:
        if checksummed(got) != checksummed(want):
            raise PaymentRejectedError(code, f"{what} is {checksummed(got)}, not {checksummed(want)}")
    if permit.amount != offer.maximum:
        raise PaymentRejectedError(
            "wrong_amount", f"the permit authorises {permit.amount}, this request's maximum is {offer.maximum}"
        )
    if permit.valid_after > at:
        raise PaymentRejectedError("not_yet_valid", f"the permit is valid only after {permit.valid_after}")
    if permit.deadline > at + MAX_TIMEOUT_S + DEADLINE_SLACK_S:
        raise PaymentRejectedError(
            "expires_too_late", f"the permit's deadline {permit.deadline} is more than {MAX_TIMEOUT_S} s ahead"
        )
    if permit.deadline < at + MIN_VALIDITY_S:
        raise PaymentRejectedError(
            "expires_too_soon",
            f"the permit must stay valid for {MIN_VALIDITY_S} s more (deadline {permit.deadline}): the charge is "
            "settled after the generation; sign again with a later deadline",
        )
    signer = recover_signer(permit.signature, lambda: permit.digest(offer.chain_id))
    if signer != checksummed(permit.payer):
        raise PaymentRejectedError("wrong_signer", f"the permit is signed by {signer}, not by {permit.payer}")


_PERMIT2_ABI: Final = [
    {"type": "function", "name": "nonceBitmap", "stateMutability": "view",
     "inputs": [{"name": "owner", "type": "address"}, {"name": "wordPos", "type": "uint256"}],
     "outputs": [{"name": "", "type": "uint256"}]},
]  # fmt: skip
_TOKEN_ABI: Final = [
    {"type": "function", "name": "allowance", "stateMutability": "view",
     "inputs": [{"name": "owner", "type": "address"}, {"name": "spender", "type": "address"}],
     "outputs": [{"name": "", "type": "uint256"}]},
    {"type": "function", "name": "balanceOf", "stateMutability": "view",
     "inputs": [{"name": "account", "type": "address"}], "outputs": [{"name": "", "type": "uint256"}]},
]  # fmt: skip


async def nonce_used(client: Any, permit: UptoPermit) -> bool:
    """Whether Permit2 has spent (or the payer cancelled) the permit's nonce."""
    permit2 = client.web3.eth.contract(address=PERMIT2_ADDRESS, abi=_PERMIT2_ABI)
    bitmap = int(await client.node(permit2.functions.nonceBitmap(checksummed(permit.payer), permit.nonce >> 8).call))
    return bool(bitmap >> (permit.nonce & 0xFF) & 1)


async def check_permit_on_chain(client: Any, permit: UptoPermit, committed: int = 0) -> None:
    """What only the chain knows, read now: the payer a key (an address with code, a smart account
    or a delegated EOA, answers Permit2 itself and could refuse at settlement), the nonce unused,
    the payer's allowance to Permit2 and balance at least the maximum plus `committed` (what the
    payer's other permits still waiting to be charged may take); PaymentRejectedError
    `payer_has_code`, `replayed`, `permit2_allowance_required` or `insufficient_funds` otherwise."""
    payer = checksummed(permit.payer)
    if bytes(await client.node(client.web3.eth.get_code, payer)):
        raise PaymentRejectedError(
            "payer_has_code", f"{payer} has code: upto takes permits signed by plain keys (its wallet decides later)"
        )
    if await nonce_used(client, permit):
        raise PaymentRejectedError("replayed", "this permit's nonce was used or cancelled already: sign a new one")
    token = client.web3.eth.contract(address=checksummed(permit.token), abi=_TOKEN_ABI)
    needed = permit.amount + committed
    held = f" ({committed} of it for permits of this payer still waiting to be charged)" if committed else ""
    allowance = int(await client.node(token.functions.allowance(payer, PERMIT2_ADDRESS).call))
    if allowance < needed:
        raise PaymentRejectedError(
            "permit2_allowance_required",
            f"the payer allows Permit2 ({PERMIT2_ADDRESS}) {allowance} of {checksummed(permit.token)}, less than "
            f"{needed}{held}: approve Permit2 for the token (approve({PERMIT2_ADDRESS}, amount))",
        )
    balance = int(await client.node(token.functions.balanceOf(payer).call))
    if balance < needed:
        raise PaymentRejectedError("insufficient_funds", f"the payer holds {balance}, less than {needed}{held}")


def spend_of(job: Any) -> int:
    """What one payment took or may still take: its fixed charge once priced (settled or on its
    way), its maximum while it waits to be priced, nothing once void or refused."""
    if job.stage in (VOID, REFUSED):
        return 0
    charge = job.payload.get("charge")
    return int(charge["total"]) if charge else int(job.payload["permit"]["amount"])


def _committed(outstanding: list[Any], token: str) -> int:
    """What a payer's permits waiting to be charged may still take of `token`."""
    return sum(spend_of(job) for job in outstanding if checksummed(job.payload["permit"]["token"]) == token)


def upto_key(permit: UptoPermit) -> str:
    """The journal key of one permit: one per (payer, nonce), as Permit2 counts them."""
    return f"x402-upto-{checksummed(permit.payer).lower()}-{permit.nonce:x}"


def payment_view(job: Any) -> dict[str, Any]:
    """A payment as its payer sees it: authorised, charged, unused, and the settlement."""
    payload = job.payload
    authorised = int(payload["permit"]["amount"])
    charge = payload.get("charge")
    charged = int(charge["total"]) if charge and job.stage == SETTLED else None
    view: dict[str, Any] = {
        "scheme": SCHEME,
        "state": {AUTHORISED: "authorised", CHARGING: "charging", SETTLED: "settled", REFUSED: "refused"}.get(
            job.stage, "void"
        ),
        "payer": payload["permit"]["payer"],
        "token": payload["permit"]["token"],
        "authorised": str(authorised),
        "charged": None if charged is None else str(charged),
        "unused": None if charged is None else str(authorised - charged),
        "deadline": payload["permit"]["deadline"],
        "transaction": "0x" + str(payload["transaction"]) if payload.get("transaction") else None,
    }
    if charge:
        view["charge"] = charge
    if payload.get("reason"):
        view["reason"] = payload["reason"]
    return view


async def accept_upto(
    journal: Any,
    client: Any,
    permit: UptoPermit,
    offer: UptoOffer,
    request: GenerationRequest,
    extra: Mapping[str, Any] | None = None,
) -> tuple[str, bool, str]:
    """One request for one permit, at most once across every API process sharing the journal:
    verifies the permit (`verify_upto`, `check_permit_on_chain`), claims it (kind `x402-upto`,
    keyed by payer and nonce: a second claim, a replay, is refused with `replayed`), then journals
    the request for the payer. Returns (request key, whether the request was new, payment key).
    A request the payer had submitted already is not paid twice: its payment is void at once. A
    payer's permits waiting to be charged count against its balance and allowance together, at
    most `MAX_OUTSTANDING` of them."""
    verify_upto(permit, offer)
    payer = checksummed(permit.payer)
    _, recent = await journal.call(journal.of_requester, KIND, payer, limit=4 * MAX_OUTSTANDING)
    outstanding = [job for job in recent if job.stage in (AUTHORISED, CHARGING)]
    if len(outstanding) >= MAX_OUTSTANDING:
        raise PaymentRejectedError(
            "too_many_outstanding", f"{len(outstanding)} permits of {payer} wait to be charged: wait for them"
        )
    await check_permit_on_chain(client, permit, _committed(outstanding, checksummed(permit.token)))
    key = upto_key(permit)
    request_job = jobs.request_key(request, payer)
    payload = {"permit": permit.as_json(), "request": request_job, "requester": payer}
    if not await journal.call(journal.submit, key, KIND, payload, stage=AUTHORISED):
        raise PaymentRejectedError("replayed", "this permit has paid for a request already: sign a new one")
    submitted, new = await journal.call(
        jobs.submit_request, journal, request, requester=payer, source="api", extra={**(extra or {}), "payment": key}
    )
    if not new:
        reason = f"request {submitted} was submitted by this payer already: this permit is not used"
        await journal.call(journal.advance, [key], AUTHORISED, VOID, updates={key: {"reason": reason}})
    return submitted, new, key
