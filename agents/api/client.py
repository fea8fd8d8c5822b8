"""Pay-per-use for an agent in one call: `await PayingClient(session, key).fetch(url)`.

On `402 Payment Required` it reads the offer (x402 `PAYMENT-REQUIRED`, scheme
`proofmint-voucher`), signs the next cumulative voucher of its channel (payer, service, terms)
for the service the offer names (`payTo`, and `extra.service`) with the EIP-712 domain offered,
and repeats the request with `PAYMENT-SIGNATURE`. The voucher draws on the payer's escrow with
that service, so the payer deposits with it first (`LicenseManager.deposit(currency, service,
amount)`). It keeps each channel's cumulative amount itself; when the server says the amount is
behind (another process paid on the same channel), it catches up once from the amount the
server reports. It refuses offers above `max_per_use`, beyond `budget` in total, or for a
settlement contract, chain or service other than the ones it was told to expect.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from eth_account import Account
from eth_utils.address import is_address, to_checksum_address

from agents.api.x402 import (
    REQUIRED_HEADER,
    RESPONSE_HEADER,
    SCHEME,
    SIGNATURE_HEADER,
    X402_VERSION,
    decode_header,
    encode_header,
)
from agents.core.errors import PermanentError
from agents.core.settlement import SignedVoucher
from agents.core.vouchers import Voucher, sign_voucher


class PaymentError(PermanentError):
    """The resource could not be paid for; the message says why."""


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
    spent: int = 0
    channels: dict[tuple[str, int], int] = field(default_factory=dict)
    """(service, terms id) -> this payer's cumulative amount on that channel."""
    offers: dict[str, dict[str, Any]] = field(default_factory=dict)

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
                offer = self._pick(decode_header(response.headers.get(REQUIRED_HEADER, "")))
            self.offers[url] = offer
        else:
            self._pick({"accepts": [offer]})  # limits and budget still apply
        for attempt in range(2):
            voucher, added = self._voucher(offer)
            header = encode_header({"x402Version": X402_VERSION, "accepted": offer, "payload": voucher.as_json()})
            async with self.session.get(url, headers={SIGNATURE_HEADER: header}) as response:
                if response.status != 402:
                    self.channels[_channel(offer)] = voucher.voucher.cumulative_amount
                    self.spent += added
                    return await self._done(response, added)
                error = (await response.json()).get("error", {})
            if error.get("code") != "replayed_or_short":
                self.offers.pop(url, None)  # the offer may have changed: ask afresh next time
            accepted = error.get("details", {}).get("acceptedCumulative")
            if attempt == 0 and error.get("code") == "replayed_or_short" and accepted is not None:
                self.channels[_channel(offer)] = int(accepted)  # catch up once
                continue
            raise PaymentError(f"payment refused ({error.get('code')}): {error.get('message')}")
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
            extra = offer.get("extra", {})
            if self.expect_chain_id is not None and int(extra.get("chainId", -1)) != self.expect_chain_id:
                continue
            settlement = str(extra.get("settlementContract", ""))
            if self.expect_settlement is not None and settlement.lower() != self.expect_settlement.lower():
                continue
            try:
                service = service_of(offer)
            except PaymentError:
                continue
            if self.expect_service is not None and service.lower() != self.expect_service.lower():
                continue
            price = int(offer.get("amount", 0))
            if self.max_per_use is not None and price > self.max_per_use:
                raise PaymentError(f"the price per use {price} is above the limit {self.max_per_use}")
            if self.budget is not None and self.spent + price > self.budget:
                raise PaymentError(f"paying {price} would exceed the budget {self.budget} (spent {self.spent})")
            return offer
        raise PaymentError(
            f"no offer this client can pay (it pays {SCHEME!r} to a named service on the expected chain and contract)"
        )

    def _voucher(self, offer: dict[str, Any]) -> tuple[SignedVoucher, int]:
        extra = offer["extra"]
        terms_id, price = int(extra["termsId"]), int(offer["amount"])
        cumulative = self.channels.get(_channel(offer), 0) + price
        voucher = Voucher(
            to_checksum_address(self.address),
            service_of(offer),
            bytes.fromhex(str(extra["assetDigest"]).removeprefix("0x")),
            terms_id,
            cumulative,
            int(time.time()) + max(self.deadline_s, int(extra.get("minDeadlineSeconds", 0)) + 60),
        )
        signature = sign_voucher(voucher, self.private_key, int(extra["chainId"]), str(extra["settlementContract"]))
        return SignedVoucher(voucher, signature), price


def service_of(offer: dict[str, Any]) -> str:
    """The service an offer's vouchers must name: `payTo`, which `extra.service` (when there)
    must repeat; PaymentError if the offer names none or two."""
    pay_to = offer.get("payTo")
    named = offer.get("extra", {}).get("service", pay_to)
    if not isinstance(pay_to, str) or not is_address(pay_to) or not isinstance(named, str) or not is_address(named):
        raise PaymentError("the offer names no service address to pay (payTo)")
    if pay_to.lower() != named.lower():
        raise PaymentError(f"the offer pays {pay_to} but names service {named}")
    return to_checksum_address(pay_to)


def _channel(offer: dict[str, Any]) -> tuple[str, int]:
    return service_of(offer), int(offer["extra"]["termsId"])
