"""Pay-per-use for an agent in one call: `await PayingClient(session, key).fetch(url)`.

On `402 Payment Required` it reads the offer (x402 `PAYMENT-REQUIRED`, scheme
`proofmint-voucher`), signs the next cumulative voucher of its channel for the service the offer
names (`payTo`, and `extra.service`) with the EIP-712 domain offered, and repeats the request
with `PAYMENT-SIGNATURE`. The voucher draws on the payer's escrow with that service, so the payer
deposits with it first (`LicenseManager.deposit(currency, service, amount)`).

The server is not trusted with anything the client signs (a malicious server, or anyone on the
path of a plain-http request, writes the offer and the refusals):

1. an offer is taken only for the chain, settlement contract and service it was told to expect
   (`expect_*`, when given), at a price within `max_per_use` and `budget`, asking for a deadline
   (`minDeadlineSeconds`) within `max_deadline_s` (7 days by default);
2. a channel is (chain, settlement contract, service, terms); the client starts it from the newest
   voucher of its own it holds for it (`channels`), or from 0;
3. when the server says the channel is further on (`replayed_or_short`: another process of the
   same payer paid meanwhile, or this one is fresh), the client catches up only to a voucher
   the server shows (`acceptedVoucher`) that this client's key signed for that very channel
   (same chain, contract, service, asset and terms) for exactly the amount claimed; a bare
   figure, or a voucher that is not its own, is refused (PaymentError) and nothing more is
   signed. So a server can never make it sign more than one use above what the payer itself
   already signed on the channel;
4. what a fetch adds to the channel (the new cumulative amount less the one it starts from)
   counts against `max_per_use` and `budget`; the deadline is at least the one of the voucher it
   starts from (a paywall refuses a newer voucher that expires first) and never more than
   `max_deadline_s` ahead.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import aiohttp
from eth_account import Account
from eth_utils.address import is_address, to_checksum_address

from agents.api.paywall import PaymentRejectedError, signer_of
from agents.api.x402 import (
    REQUIRED_HEADER,
    RESPONSE_HEADER,
    SCHEME,
    SIGNATURE_HEADER,
    X402_VERSION,
    PaymentHeaderError,
    decode_header,
    encode_header,
)
from agents.core.errors import PermanentError
from agents.core.settlement import SignedVoucher, parse_voucher
from agents.core.vouchers import Voucher, sign_voucher

MAX_DEADLINE_S = 7 * 86_400
"""The default of `PayingClient.max_deadline_s`: the furthest ahead a deadline it signs may be.
A voucher stays settleable until its deadline, so this bounds how long a signature outlives the
fetch that made it."""
DEADLINE_SLACK_S = 60
"""Signed deadlines go this much past the offer's `minDeadlineSeconds` (clocks differ)."""


class PaymentError(PermanentError):
    """The resource could not be paid for; the message says why."""


class ChannelKey(NamedTuple):
    """A payment channel as a client sees it: where its vouchers settle and what they pay."""

    chain_id: int
    settlement: str  # LicenseManager's address, checksummed
    service: str  # checksummed
    terms_id: int


@dataclass(frozen=True)
class OfferTerms:
    """What a `proofmint-voucher` offer asks to be signed, read and checked for shape."""

    channel: ChannelKey
    asset: bytes
    price: int
    min_deadline_s: int


@dataclass
class Paid:
    body: bytes
    content_type: str
    settlement: dict[str, Any] | None
    paid: int  # what this fetch added to the channel (0 when no payment was asked)


@dataclass
class PayingClient:
    session: aiohttp.ClientSession
    private_key: str
    max_per_use: int | None = None
    budget: int | None = None
    expect_settlement: str | None = None
    expect_chain_id: int | None = None
    expect_service: str | None = None
    deadline_s: int = 3_600
    """How far ahead its vouchers' deadlines are at least (more when the offer asks)."""
    max_deadline_s: int = MAX_DEADLINE_S
    """The furthest ahead a deadline it signs may be; an offer asking for more is refused."""
    spent: int = 0
    """What its fetches added to their channels, in all (counted against `budget`)."""
    channels: dict[ChannelKey, SignedVoucher] = field(default_factory=dict)
    """The newest voucher of this payer's per channel: one it signed and the server took, or one
    the server showed that its key had signed."""
    offers: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 0 < self.deadline_s <= self.max_deadline_s:
            raise ValueError(f"deadline_s ({self.deadline_s}) must be in (0, max_deadline_s = {self.max_deadline_s}]")

    @property
    def address(self) -> str:
        return str(Account.from_key(self.private_key).address)

    async def fetch(self, url: str) -> Paid:
        """The resource at `url`, paid for when it asks. The offer is remembered per URL, so
        later fetches pay in one round trip (a refused payment brings a fresh offer)."""
        offer = self.offers.get(url)
        if offer is None:
            async with self.session.get(url) as response:
                if response.status != 402:
                    return await self._done(response, 0)
                try:
                    required = decode_header(response.headers.get(REQUIRED_HEADER, ""))
                except PaymentHeaderError as exc:
                    raise PaymentError(f"the 402 from {url} carries no offer this client can read: {exc}") from None
                offer = self._pick(required)
            self.offers[url] = offer
        else:
            self._pick({"accepts": [offer]})  # limits and budget still apply
        channel = offer_terms(offer).channel
        for attempt in range(2):
            voucher, added = self._voucher(offer)
            header = encode_header({"x402Version": X402_VERSION, "accepted": offer, "payload": voucher.as_json()})
            async with self.session.get(url, headers={SIGNATURE_HEADER: header}) as response:
                if response.status != 402:
                    self.channels[channel] = voucher
                    self.spent += added
                    return await self._done(response, added)
                error = await _error_of(response)
            code = error.get("code")
            if code != "replayed_or_short":
                self.offers.pop(url, None)  # the offer may have changed: ask afresh next time
            elif attempt == 0:
                details = error.get("details")
                self.channels[channel] = self._proven(offer, details if isinstance(details, dict) else {})
                continue
            raise PaymentError(f"payment refused ({code}): {error.get('message')}")
        raise PaymentError("payment refused twice")

    async def _done(self, response: aiohttp.ClientResponse, added: int) -> Paid:
        if response.status >= 400:
            text = await response.text()
            raise PaymentError(f"{response.status} from {response.url}: {text[:300]}")
        header = response.headers.get(RESPONSE_HEADER)
        settlement = decode_header(header) if header else None
        return Paid(await response.read(), response.content_type, settlement, added)

    def _pick(self, required: dict[str, Any]) -> dict[str, Any]:
        for offer in required.get("accepts", []):
            if not isinstance(offer, dict) or offer.get("scheme") != SCHEME:
                continue
            try:
                terms = offer_terms(offer)
            except PaymentError:
                continue
            channel = terms.channel
            if self.expect_chain_id is not None and channel.chain_id != self.expect_chain_id:
                continue
            if self.expect_settlement is not None and channel.settlement.lower() != self.expect_settlement.lower():
                continue
            if self.expect_service is not None and channel.service.lower() != self.expect_service.lower():
                continue
            self._check_spending(terms.price)
            if terms.min_deadline_s > self.max_deadline_s:
                raise PaymentError(
                    f"the offer asks for vouchers valid {terms.min_deadline_s} s ahead, more than this client signs "
                    f"({self.max_deadline_s} s): a signature outlives its fetch until then (raise the limit to accept)"
                )
            return offer
        raise PaymentError(
            f"no offer this client can pay (it pays {SCHEME!r} to a named service on the expected chain and contract)"
        )

    def _check_spending(self, added: int) -> None:
        if self.max_per_use is not None and added > self.max_per_use:
            raise PaymentError(f"the price per use {added} is above the limit {self.max_per_use}")
        if self.budget is not None and self.spent + added > self.budget:
            raise PaymentError(f"paying {added} would exceed the budget {self.budget} (spent {self.spent})")

    def _voucher(self, offer: dict[str, Any]) -> tuple[SignedVoucher, int]:
        """The next voucher of the offer's channel, signed, and what it adds to the channel."""
        terms = offer_terms(offer)
        channel = terms.channel
        held = self.channels.get(channel)
        previous = held.voucher.cumulative_amount if held is not None else 0
        cumulative = previous + terms.price
        added = cumulative - previous
        self._check_spending(added)
        now = int(time.time())
        deadline = now + min(max(self.deadline_s, terms.min_deadline_s + DEADLINE_SLACK_S), self.max_deadline_s)
        if held is not None and held.voucher.deadline > deadline:
            deadline = held.voucher.deadline  # a newer voucher must not expire before the one it supersedes
        if deadline > now + self.max_deadline_s:
            raise PaymentError(
                f"the channel's newest voucher runs to {deadline}, more than {self.max_deadline_s} s ahead, and the "
                "next must not expire first: raise the deadline limit or pay after that voucher settles"
            )
        voucher = Voucher(
            to_checksum_address(self.address), channel.service, terms.asset, channel.terms_id, cumulative, deadline
        )
        signature = sign_voucher(voucher, self.private_key, channel.chain_id, channel.settlement)
        return SignedVoucher(voucher, signature), added

    def _proven(self, offer: dict[str, Any], details: dict[str, Any]) -> SignedVoucher:
        """The voucher a `replayed_or_short` refusal shows for what the channel already holds,
        checked to be this payer's own for the offer's channel at exactly the amount claimed;
        PaymentError otherwise (nothing is signed on the server's word)."""
        terms = offer_terms(offer)
        channel = terms.channel
        try:
            claimed = _int(details.get("acceptedCumulative"))
        except ValueError:
            raise PaymentError(
                "the server refused the voucher as behind its channel but said not by how much"
            ) from None
        shown = details.get("acceptedVoucher")
        if shown is None:
            raise PaymentError(
                f"the server says this channel already holds {claimed} but shows no voucher of this payer's for it; "
                "nothing is signed on its word (check settledOf(payer, service, terms) on chain)"
            )
        try:
            proof = parse_voucher(shown)
            signer = signer_of(proof, channel.chain_id, channel.settlement)
        except (ValueError, PaymentRejectedError) as exc:
            raise PaymentError(f"the voucher the server shows for this channel is not one: {exc}") from None
        v = proof.voucher
        mine = to_checksum_address(self.address)
        if signer != mine or proof.channel != (mine, channel.service, channel.terms_id) or v.asset != terms.asset:
            raise PaymentError(
                "the voucher the server shows for this channel is not this payer's own for it "
                f"(signed by {signer} for {proof.channel}): nothing more is signed"
            )
        if v.cumulative_amount != claimed:
            raise PaymentError(
                f"the server claims {claimed} on this channel but shows a voucher for {v.cumulative_amount}"
            )
        return proof


async def _error_of(response: aiohttp.ClientResponse) -> dict[str, Any]:
    """The API's JSON error of a refusal, or an empty one."""
    try:
        body = await response.json()
    except (aiohttp.ContentTypeError, ValueError):
        return {}
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else {}


def service_of(offer: dict[str, Any]) -> str:
    """The service an offer's vouchers must name: `payTo`, which `extra.service` (when there)
    must repeat; PaymentError if the offer names none or two."""
    extra = offer.get("extra")
    pay_to = offer.get("payTo")
    named = extra.get("service", pay_to) if isinstance(extra, dict) else pay_to
    if not isinstance(pay_to, str) or not is_address(pay_to) or not isinstance(named, str) or not is_address(named):
        raise PaymentError("the offer names no service address to pay (payTo)")
    if pay_to.lower() != named.lower():
        raise PaymentError(f"the offer pays {pay_to} but names service {named}")
    return to_checksum_address(pay_to)


def offer_terms(offer: dict[str, Any]) -> OfferTerms:
    """What a `proofmint-voucher` offer asks to be signed; PaymentError if it is malformed."""
    service = service_of(offer)
    extra = offer.get("extra")
    if not isinstance(extra, dict):
        raise PaymentError("the offer has no `extra` naming its chain, contract, asset and terms")
    try:
        chain_id, terms_id = _int(extra.get("chainId")), _int(extra.get("termsId"))
        price, min_deadline_s = _int(offer.get("amount")), _int(extra.get("minDeadlineSeconds", 0))
        asset = bytes.fromhex(str(extra.get("assetDigest", "")).removeprefix("0x"))
    except ValueError:
        raise PaymentError("the offer's chain id, terms id, amount, deadline or asset is malformed") from None
    settlement = extra.get("settlementContract")
    if not isinstance(settlement, str) or not is_address(settlement):
        raise PaymentError("the offer names no settlement contract address")
    if chain_id == 0 or price == 0 or len(asset) != 32:
        raise PaymentError("the offer's chain id and price must be positive and its asset 32 bytes")
    return OfferTerms(
        ChannelKey(chain_id, to_checksum_address(settlement), service, terms_id), asset, price, min_deadline_s
    )


def _int(value: Any) -> int:
    """A non-negative integer below 2**256 from JSON (a number or a decimal string)."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError("not an integer")
    if isinstance(value, str) and not (value.isascii() and value.isdigit()):
        raise ValueError("not a decimal string")
    number = int(value)
    if not 0 <= number < 2**256:
        raise ValueError("out of range")
    return number
