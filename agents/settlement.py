"""Voucher files and settlement plans: what `ape run settle` (and later the settling agent) does
with a pile of signed vouchers before anything is sent.

A voucher file holds one JSON object per line (payer, asset, termsId, cumulativeAmount, deadline,
signature, all hex or decimal strings), appended by whoever collects vouchers. Planning keeps the
newest voucher of each channel (payer, terms): cumulative vouchers make every older one worthless.
It drops what would revert (already settled, expired, unknown or unmetered terms, an asset that
does not match the terms) with the reason, groups the rest by currency, orders each group by
asset and then payer (the contract credits each run of one asset once and touches each payer's
escrow once per run), and cuts it into batches of at most `MAX_VOUCHERS` (192).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_utils.address import is_address, to_checksum_address

from agents.errors import PermanentError
from agents.vouchers import Voucher

MAX_VOUCHERS = 192
"""`LicenseManager.MAX_VOUCHERS`: the most vouchers one `settle` call takes."""
DEADLINE_MARGIN_S = 120
"""A voucher that expires within this many seconds is not planned: it could expire in the mempool."""


class VoucherFileError(PermanentError, ValueError):
    """A voucher file line is not a voucher; the message names the file and line."""


@dataclass(frozen=True)
class SignedVoucher:
    voucher: Voucher
    signature: bytes

    def as_json(self) -> dict[str, str | int]:
        v = self.voucher
        return {
            "payer": to_checksum_address(v.payer),
            "asset": "0x" + v.asset.hex(),
            "termsId": v.terms_id,
            "cumulativeAmount": str(v.cumulative_amount),
            "deadline": v.deadline,
            "signature": "0x" + self.signature.hex(),
        }

    def as_call_tuple(self) -> tuple[str, int, int, int, bytes]:
        v = self.voucher
        return (to_checksum_address(v.payer), v.terms_id, v.cumulative_amount, v.deadline, self.signature)


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


def parse_voucher(obj: Any) -> SignedVoucher:
    if not isinstance(obj, dict):
        raise ValueError("expected a JSON object")
    missing = {"payer", "asset", "termsId", "cumulativeAmount", "deadline", "signature"} - obj.keys()
    if missing:
        raise ValueError(f"missing {', '.join(sorted(missing))}")
    if not isinstance(obj["payer"], str) or not is_address(obj["payer"]):
        raise ValueError("payer is not an address")
    return SignedVoucher(
        Voucher(
            payer=to_checksum_address(obj["payer"]),
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


@dataclass(frozen=True)
class Skipped:
    voucher: SignedVoucher
    reason: str


@dataclass
class Plan:
    batches: list[tuple[str, list[SignedVoucher]]] = field(default_factory=list)
    """(currency, vouchers) in the order to send them."""
    skipped: list[Skipped] = field(default_factory=list)
    amounts: dict[str, int] = field(default_factory=dict)
    """Planned amount per currency, from the settled figures read while planning."""

    @property
    def voucher_count(self) -> int:
        return sum(len(b) for _, b in self.batches)

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
    settled_of: Callable[[str, int], int],
    terms_of: Callable[[int], TermsView | None],
    max_vouchers: int = MAX_VOUCHERS,
) -> Plan:
    """Plan the `settle` calls for `vouchers` (see the module text). `settled_of(payer, termsId)`
    and `terms_of(termsId)` read the chain; `terms_of` returns None for unknown terms."""
    if not 1 <= max_vouchers <= MAX_VOUCHERS:
        raise ValueError(f"max_vouchers must be in 1..{MAX_VOUCHERS}")
    plan = Plan()
    newest: dict[tuple[str, int], SignedVoucher] = {}
    for sv in vouchers:
        v = sv.voucher
        key = (v.payer, v.terms_id)
        held = newest.get(key)
        if held is None or v.cumulative_amount > held.voucher.cumulative_amount:
            if held is not None:
                plan.skipped.append(Skipped(held, "superseded by a newer voucher of the same channel"))
            newest[key] = sv
        else:
            plan.skipped.append(Skipped(sv, "superseded by a newer voucher of the same channel"))

    by_currency: dict[str, list[SignedVoucher]] = {}
    terms_cache: dict[int, TermsView | None] = {}
    for (payer, terms_id), sv in newest.items():
        if terms_id not in terms_cache:
            terms_cache[terms_id] = terms_of(terms_id)
        terms = terms_cache[terms_id]
        v = sv.voucher
        reason = None
        settled = 0
        if terms is None:
            reason = f"terms {terms_id} do not exist"
        elif terms.price_per_use == 0:
            reason = f"terms {terms_id} are not metered (no price per use)"
        elif terms.asset != v.asset:
            reason = f"terms {terms_id} are for asset 0x{terms.asset.hex()}, not 0x{v.asset.hex()}"
        elif v.deadline < now + DEADLINE_MARGIN_S:
            reason = f"expired (deadline {v.deadline}, now {now})"
        else:
            settled = settled_of(payer, terms_id)
            if v.cumulative_amount <= settled:
                reason = "already settled"
        if reason is not None:
            plan.skipped.append(Skipped(sv, reason))
            continue
        assert terms is not None
        by_currency.setdefault(terms.currency, []).append(sv)
        plan.amounts[terms.currency] = plan.amounts.get(terms.currency, 0) + v.cumulative_amount - settled

    for currency in sorted(by_currency):
        ordered = sorted(by_currency[currency], key=lambda s: (s.voucher.asset, s.voucher.payer.lower()))
        plan.batches.extend((currency, chunk) for chunk in _chunks(ordered, max_vouchers))
    return plan
