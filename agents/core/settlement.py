"""Voucher files and settlement plans: what `ape run settle` and the settlement daemon do with
a pile of signed vouchers before anything is sent.

A voucher file holds one JSON object per line (payer, service, asset, termsId, cumulativeAmount,
deadline, signature, all hex or decimal strings), appended by whoever collects vouchers. A
voucher draws on the payer's escrow with the service it names, on the channel (payer, service,
terms). Planning keeps the newest voucher of each channel (cumulative vouchers make every older
one worthless) and drops, with the reason, what `LicenseManager.settle` would revert on
(unknown or unmetered terms, an asset other than the terms', a deadline too close, an amount
above `MAX_CUMULATIVE`) and what it would skip (a channel settled as much or more already; a
voucher the payer's escrow with its service cannot cover, counted in the order the vouchers will
be sent, as the contract counts them). Only a service may settle its vouchers, so a settler
plans with its own address as `service` and vouchers naming another are dropped too.
`settle(currency, service, vouchers, walletSignatures)` takes the vouchers of one service in one
currency, so the rest is grouped by (currency, service), each group ordered by asset, then payer
(the contract credits each run of one asset once and touches each payer's escrow once per run)
and cut into batches of at most `MAX_VOUCHERS` (192). Signatures are not checked here: the
contract judges them (a bad one reverts the whole call, which the callers simulate first; an
ERC-1271 wallet's refusal is skipped).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Container, Iterable, Iterator
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from eth_utils.address import is_address, to_checksum_address

from agents.core.errors import PermanentError
from agents.core.vouchers import CallVoucher, Voucher, settle_arguments

MAX_VOUCHERS = 192
"""`LicenseManager.MAX_VOUCHERS`: the most vouchers one `settle` call takes."""
DEADLINE_MARGIN_S = 120
"""A voucher that expires within this many seconds is not planned: it could expire in the mempool."""
MAX_CUMULATIVE = 2**85 - 1
"""`LicenseManager.MAX_CUMULATIVE`: the largest cumulative amount a channel holds (`settle`
reverts `AmountTooLarge` above it)."""

FIELDS = ("payer", "service", "asset", "termsId", "cumulativeAmount", "deadline", "signature")
"""The keys of a voucher's JSON object (a voucher file line, an x402 payload, `POST /v1/vouchers`)."""

Channel = tuple[str, str, int]
"""(payer, service, terms id), addresses checksummed: what a cumulative voucher counts on."""


class VoucherFileError(PermanentError, ValueError):
    """A voucher file line is not a voucher; the message names the file and line."""


@dataclass(frozen=True)
class SignedVoucher:
    voucher: Voucher
    signature: bytes

    @property
    def channel(self) -> Channel:
        v = self.voucher
        return (to_checksum_address(v.payer), to_checksum_address(v.service), v.terms_id)

    def as_json(self) -> dict[str, str | int]:
        v = self.voucher
        return {
            "payer": to_checksum_address(v.payer),
            "service": to_checksum_address(v.service),
            "asset": "0x" + v.asset.hex(),
            "termsId": v.terms_id,
            "cumulativeAmount": str(v.cumulative_amount),
            "deadline": v.deadline,
            "signature": "0x" + self.signature.hex(),
        }


def append_vouchers(path: Path, vouchers: Iterable[SignedVoucher]) -> None:
    """Append vouchers to a voucher file, one line each, flushed to disk before returning."""
    lines = "".join(json.dumps(sv.as_json(), separators=(",", ":")) + "\n" for sv in vouchers)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf8") as handle:
        handle.write(lines)
        handle.flush()


def _hex_bytes(value: Any, name: str, length: int | None) -> bytes:
    if not isinstance(value, str) or not value.startswith("0x"):
        raise ValueError(f"{name} must be a 0x-prefixed hex string")
    raw = bytes.fromhex(value[2:])
    if length is not None and len(raw) != length:
        raise ValueError(f"{name} must be {length} bytes, got {len(raw)}")
    return raw


def _uint(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"{name} must be an integer or a decimal string")
    number = int(value)
    if not 0 <= number < 2**256:
        raise ValueError(f"{name} is out of range")
    return number


def _address(value: Any, name: str) -> str:
    if not isinstance(value, str) or not is_address(value):
        raise ValueError(f"{name} is not an address")
    return to_checksum_address(value)


def parse_voucher(obj: Any) -> SignedVoucher:
    if not isinstance(obj, dict):
        raise ValueError("expected a JSON object")
    missing = set(FIELDS) - obj.keys()
    if missing:
        raise ValueError(f"missing {', '.join(sorted(missing))}")
    return SignedVoucher(
        Voucher(
            payer=_address(obj["payer"], "payer"),
            service=_address(obj["service"], "service"),
            asset=_hex_bytes(obj["asset"], "asset", 32),
            terms_id=_uint(obj["termsId"], "termsId"),
            cumulative_amount=_uint(obj["cumulativeAmount"], "cumulativeAmount"),
            deadline=_uint(obj["deadline"], "deadline"),
        ),
        _hex_bytes(obj["signature"], "signature", None),
    )


def load_vouchers(path: Path) -> list[SignedVoucher]:
    """Every voucher in a voucher file; blank lines are skipped, anything else malformed is an error."""
    try:
        text = path.read_text(encoding="utf8")
    except OSError as exc:
        raise VoucherFileError(f"{path}: {exc.strerror or exc}") from exc
    vouchers: list[SignedVoucher] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            vouchers.append(parse_voucher(json.loads(line)))
        except ValueError as exc:  # json.JSONDecodeError is a ValueError
            raise VoucherFileError(f"{path}:{number}: {exc}") from exc
    return vouchers


@dataclass(frozen=True)
class TermsView:
    """What planning needs of a terms id: its asset, currency and price per use."""

    asset: bytes
    currency: str
    price_per_use: int


class SkipKind(Enum):
    """Why a voucher is left out of a plan (or was skipped by `settle`: the last three)."""

    SUPERSEDED = "superseded"
    """A newer voucher of the same channel is in hand."""
    OTHER_SERVICE = "other_service"
    """It names a service other than the one planning."""
    UNKNOWN_TERMS = "unknown_terms"
    NOT_METERED = "not_metered"
    WRONG_ASSET = "wrong_asset"
    EXPIRED = "expired"
    AMOUNT_TOO_LARGE = "amount_too_large"
    ALREADY_SETTLED = "already_settled"
    """Its channel settled exactly its amount: it is settled (by whoever sent it first)."""
    BELOW_SETTLED = "below_settled"
    """Its channel settled more: a newer voucher was settled in its place."""
    INSUFFICIENT_ESCROW = "insufficient_escrow"
    """The payer's escrow with its service does not cover it after the vouchers sent before it."""
    WALLET_REJECTED = "wallet_rejected"
    """The payer is an ERC-1271 wallet that refused the signature."""

    @property
    def settled(self) -> bool:
        """Whether a voucher left out for this reason is nevertheless paid on chain (its amount)."""
        return self is SkipKind.ALREADY_SETTLED


SKIP_REASONS: dict[int, SkipKind] = {
    0: SkipKind.ALREADY_SETTLED,
    1: SkipKind.BELOW_SETTLED,
    2: SkipKind.INSUFFICIENT_ESCROW,
    3: SkipKind.WALLET_REJECTED,
}
"""`ILicenseManager.SkipReason` (a `VoucherSkipped` event's `reason`) by its value."""

ALREADY_SETTLED = "already settled"


@dataclass(frozen=True)
class Skipped:
    voucher: SignedVoucher
    reason: str
    kind: SkipKind


@dataclass(frozen=True)
class Batch:
    """One `settle(currency, service, vouchers, walletSignatures)` call (sent by the service)."""

    currency: str
    service: str
    vouchers: list[SignedVoucher]

    def call_args(self, wallets: Container[str] = ()) -> tuple[str, str, list[CallVoucher], list[tuple[int, bytes]]]:
        """`settle`'s arguments; `wallets`: the payers that are contracts (ERC-1271), whose
        signatures travel whole in `walletSignatures` (see `agents.core.vouchers.settle_arguments`)."""
        calls, signatures = settle_arguments([(sv.voucher, sv.signature) for sv in self.vouchers], wallets)
        return (self.currency, self.service, calls, signatures)


@dataclass
class Plan:
    batches: list[Batch] = field(default_factory=list)
    """The `settle` calls in the order to send them."""
    skipped: list[Skipped] = field(default_factory=list)
    amounts: dict[str, int] = field(default_factory=dict)
    """Planned amount per currency, from the settled figures read while planning."""

    @property
    def voucher_count(self) -> int:
        return sum(len(b.vouchers) for b in self.batches)

    def amount_by_currency(self) -> dict[str, int]:
        """What the planned batches move, per currency (cumulative minus already settled)."""
        return dict(self.amounts)


def _chunks(items: list[SignedVoucher], size: int) -> Iterator[list[SignedVoucher]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def plan_settlement(
    vouchers: Iterable[SignedVoucher],
    *,
    now: int,
    settled_of: Callable[[str, str, int], int],
    terms_of: Callable[[int], TermsView | None],
    escrow_of: Callable[[str, str, str], int],
    service: str | None = None,
    max_vouchers: int = MAX_VOUCHERS,
) -> Plan:
    """Plan the `settle` calls for `vouchers` (see the module text). The chain is read through
    `settled_of(payer, service, termsId)`, `terms_of(termsId)` (None for unknown terms) and
    `escrow_of(payer, currency, service)` (the escrow's balance: a pending withdrawal is still
    there to settle against). `service`: plan only vouchers that name it (the settler's own
    address: only the service may settle); None plans every service's (a dry run)."""
    if not 1 <= max_vouchers <= MAX_VOUCHERS:
        raise ValueError(f"max_vouchers must be in 1..{MAX_VOUCHERS}")
    only = to_checksum_address(service) if service is not None else None
    plan = Plan()
    newest: dict[Channel, SignedVoucher] = {}
    superseded = "superseded by a newer voucher of the same channel"
    for sv in vouchers:
        held = newest.get(sv.channel)
        if held is None or sv.voucher.cumulative_amount > held.voucher.cumulative_amount:
            if held is not None:
                plan.skipped.append(Skipped(held, superseded, SkipKind.SUPERSEDED))
            newest[sv.channel] = sv
        else:
            plan.skipped.append(Skipped(sv, superseded, SkipKind.SUPERSEDED))

    groups: dict[tuple[str, str], list[tuple[SignedVoucher, int]]] = {}
    terms_cache: dict[int, TermsView | None] = {}
    for (payer, named, terms_id), sv in newest.items():
        if terms_id not in terms_cache:
            terms_cache[terms_id] = terms_of(terms_id)
        terms = terms_cache[terms_id]
        v = sv.voucher
        left_out: tuple[str, SkipKind] | None = None
        settled = 0
        if only is not None and named != only:
            left_out = (f"for service {named}, not {only}: only its service may settle it", SkipKind.OTHER_SERVICE)
        elif terms is None:
            left_out = (f"terms {terms_id} do not exist", SkipKind.UNKNOWN_TERMS)
        elif terms.price_per_use == 0:
            left_out = (f"terms {terms_id} are not metered (no price per use)", SkipKind.NOT_METERED)
        elif terms.asset != v.asset:
            left_out = (
                f"terms {terms_id} are for asset 0x{terms.asset.hex()}, not 0x{v.asset.hex()}",
                SkipKind.WRONG_ASSET,
            )
        elif v.deadline < now + DEADLINE_MARGIN_S:
            left_out = (f"expired (deadline {v.deadline}, now {now})", SkipKind.EXPIRED)
        elif v.cumulative_amount > MAX_CUMULATIVE:
            left_out = (
                f"the cumulative amount is above {MAX_CUMULATIVE}, what a channel holds",
                SkipKind.AMOUNT_TOO_LARGE,
            )
        else:
            settled = settled_of(payer, named, terms_id)
            if v.cumulative_amount == settled:
                left_out = (ALREADY_SETTLED, SkipKind.ALREADY_SETTLED)
            elif v.cumulative_amount < settled:
                left_out = (f"below what its channel settled ({settled}): a newer voucher was", SkipKind.BELOW_SETTLED)
        if left_out is not None:
            plan.skipped.append(Skipped(sv, *left_out))
            continue
        assert terms is not None
        groups.setdefault((terms.currency, named), []).append((sv, v.cumulative_amount - settled))

    for currency, named in sorted(groups):
        ordered = sorted(
            groups[(currency, named)], key=lambda item: (item[0].voucher.asset, item[0].channel[0].lower())
        )
        left: dict[str, int] = {}  # what each payer's escrow with the service still holds, in sending order
        kept: list[SignedVoucher] = []
        for sv, due in ordered:
            payer = sv.channel[0]
            if payer not in left:
                left[payer] = escrow_of(payer, currency, named)
            if due > left[payer]:
                reason = (
                    f"the payer's escrow with service {named} cannot cover it (needs {due}, {left[payer]} left for it)"
                )
                plan.skipped.append(Skipped(sv, reason, SkipKind.INSUFFICIENT_ESCROW))
                continue
            left[payer] -= due
            kept.append(sv)
            plan.amounts[currency] = plan.amounts.get(currency, 0) + due
        plan.batches.extend(Batch(currency, named, chunk) for chunk in _chunks(kept, max_vouchers))
    return plan
