"""Voucher files and settlement plans: what `ape run settle` and the settlement daemon do with
a pile of signed vouchers before anything is sent.

A voucher file holds one JSON object per line (payer, service, asset, termsId, cumulativeAmount,
deadline, signature, all hex or decimal strings), appended by whoever collects vouchers. A
voucher draws on the payer's escrow with the service it names, on the channel (payer, service,
terms). Planning drops, with the reason, what `LicenseManager.settle` would revert on (another
service's voucher: only a service may settle its vouchers, so a settler plans with its own
address as `service`; unknown or unmetered terms, an asset other than the terms', a deadline too
close, an amount above `MAX_CUMULATIVE`; a signature the caller's check refuses), then keeps the
newest of what is left on each channel (cumulative vouchers make every older one worthless).
The order matters: anyone can append a line naming someone else's channel with a higher amount
and no valid signature, and such a line must never supersede the payer's real voucher. Only
vouchers above the one kept are checked (newest first), so a channel costs one check when its
newest voucher is good. Then what `settle` would skip is dropped too (a channel settled as much
or more already; a voucher the payer's escrow with its service cannot cover, counted in the
order the vouchers will be sent, as the contract counts them).

`settle(currency, service, vouchers, walletSignatures)` takes the vouchers of one service in one
currency, so the rest is grouped by (currency, service), each group ordered by asset, then payer
(the contract credits each run of one asset once and touches each payer's escrow once per run)
and cut into batches of at most `MAX_VOUCHERS` (192) vouchers, of which at most
`MAX_WALLET_SIGNATURES` (24) carry a listed signature (a payer with code, or a signature that
has no compact form): one more and the whole call reverts, so 25 wallet vouchers of one payer
never hold up a batch. Without a signature check the contract judges signatures (a bad one
reverts the whole call, which the callers simulate first: `settleable` bisects a batch that
reverts; an ERC-1271 wallet's refusal is skipped).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Container, Iterable, Iterator
from dataclasses import dataclass, field, replace
from enum import Enum
from pathlib import Path
from typing import Any

from eth_utils.address import is_address, to_checksum_address

from agents.core.addresses import checksummed
from agents.core.errors import PermanentError
from agents.core.reverts import WouldRevertError
from agents.core.vouchers import CallVoucher, Voucher, compact_signature, settle_arguments

MAX_VOUCHERS = 192
"""`LicenseManager.MAX_VOUCHERS`: the most vouchers one `settle` call takes."""
MAX_WALLET_SIGNATURES = 24
"""`LicenseManager.MAX_WALLET_SIGNATURES`: the most listed signatures (`walletSignatures`) one
`settle` call takes; one more reverts the call (`TooManyWalletSignatures`)."""
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
        return (checksummed(v.payer), checksummed(v.service), v.terms_id)

    def as_json(self) -> dict[str, str | int]:
        v = self.voucher
        return {
            "payer": checksummed(v.payer),
            "service": checksummed(v.service),
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
    return checksummed(value)


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
    BAD_SIGNATURE = "bad_signature"
    """The signature is not the payer's (a signature check given to the planner says so)."""

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


def travels_listed(sv: SignedVoucher, wallets: Container[str]) -> bool:
    """Whether `settle` takes the voucher's signature in `walletSignatures` (see
    `agents.core.vouchers.settle_arguments`): its payer is in `wallets`, or the signature has no
    compact form."""
    return sv.channel[0] in wallets or compact_signature(sv.signature) is None


def _chunks(
    items: list[SignedVoucher], size: int, wallets: Container[str], max_listed: int
) -> Iterator[list[SignedVoucher]]:
    """`items` in order, cut into runs of at most `size` vouchers and `max_listed` listed signatures."""
    chunk: list[SignedVoucher] = []
    listed = 0
    for sv in items:
        here = travels_listed(sv, wallets)
        if chunk and (len(chunk) == size or listed + here > max_listed):
            yield chunk
            chunk, listed = [], 0
        chunk.append(sv)
        listed += here
    if chunk:
        yield chunk


Defect = tuple[str, SkipKind]
"""Why a voucher is left out, and the kind of reason."""


def plan_settlement(
    vouchers: Iterable[SignedVoucher],
    *,
    now: int,
    settled_of: Callable[[str, str, int], int],
    terms_of: Callable[[int], TermsView | None],
    escrow_of: Callable[[str, str, str], int],
    service: str | None = None,
    max_vouchers: int = MAX_VOUCHERS,
    signature_check: Callable[[SignedVoucher], Defect | None] | None = None,
    wallets: Container[str] = (),
    max_wallet_signatures: int = MAX_WALLET_SIGNATURES,
) -> Plan:
    """Plan the `settle` calls for `vouchers` (see the module text). The chain is read through
    `settled_of(payer, service, termsId)`, `terms_of(termsId)` (None for unknown terms) and
    `escrow_of(payer, currency, service)` (the escrow's balance: a pending withdrawal is still
    there to settle against). `service`: plan only vouchers that name it (the settler's own
    address: only the service may settle); None plans every service's (a dry run).
    `signature_check(voucher)`: why the voucher's signature will not pass (None when it will),
    asked before a voucher may supersede older ones of its channel. `wallets`: the payers with
    code (their signatures are listed), which `max_wallet_signatures` counts per batch."""
    if not 1 <= max_vouchers <= MAX_VOUCHERS:
        raise ValueError(f"max_vouchers must be in 1..{MAX_VOUCHERS}")
    if not 1 <= max_wallet_signatures <= MAX_WALLET_SIGNATURES:
        raise ValueError(f"max_wallet_signatures must be in 1..{MAX_WALLET_SIGNATURES}")
    only = to_checksum_address(service) if service is not None else None
    plan = Plan()
    terms_cache: dict[int, TermsView | None] = {}

    def terms_for(terms_id: int) -> TermsView | None:
        if terms_id not in terms_cache:
            terms_cache[terms_id] = terms_of(terms_id)
        return terms_cache[terms_id]

    def defect(sv: SignedVoucher) -> Defect | None:
        """What `settle` would revert on (or a refused signature); None for a settleable voucher."""
        _, named, terms_id = sv.channel
        v = sv.voucher
        if only is not None and named != only:
            return (f"for service {named}, not {only}: only its service may settle it", SkipKind.OTHER_SERVICE)
        terms = terms_for(terms_id)
        if terms is None:
            return (f"terms {terms_id} do not exist", SkipKind.UNKNOWN_TERMS)
        if terms.price_per_use == 0:
            return (f"terms {terms_id} are not metered (no price per use)", SkipKind.NOT_METERED)
        if terms.asset != v.asset:
            return (
                f"terms {terms_id} are for asset 0x{terms.asset.hex()}, not 0x{v.asset.hex()}",
                SkipKind.WRONG_ASSET,
            )
        if v.deadline < now + DEADLINE_MARGIN_S:
            return (f"expired (deadline {v.deadline}, now {now})", SkipKind.EXPIRED)
        if v.cumulative_amount > MAX_CUMULATIVE:
            return (f"the cumulative amount is above {MAX_CUMULATIVE}, what a channel holds", SkipKind.AMOUNT_TOO_LARGE)
        return signature_check(sv) if signature_check is not None else None

    by_channel: dict[Channel, list[SignedVoucher]] = {}
    for sv in vouchers:
        by_channel.setdefault(sv.channel, []).append(sv)
    newest: dict[Channel, SignedVoucher] = {}
    superseded = "superseded by a newer voucher of the same channel"
    for channel, held in by_channel.items():
        # newest first (of equal amounts, the first handed in); each is left out for its own
        # defect until one has none: that one is the channel's, every voucher below it superseded
        for sv in sorted(held, key=lambda sv: -sv.voucher.cumulative_amount):
            if channel in newest:
                plan.skipped.append(Skipped(sv, superseded, SkipKind.SUPERSEDED))
            elif (problem := defect(sv)) is not None:
                plan.skipped.append(Skipped(sv, *problem))
            else:
                newest[channel] = sv

    groups: dict[tuple[str, str], list[tuple[SignedVoucher, int]]] = {}
    for (payer, named, terms_id), sv in newest.items():
        terms = terms_for(terms_id)
        assert terms is not None
        v = sv.voucher
        settled = settled_of(payer, named, terms_id)
        if v.cumulative_amount == settled:
            plan.skipped.append(Skipped(sv, ALREADY_SETTLED, SkipKind.ALREADY_SETTLED))
        elif v.cumulative_amount < settled:
            reason = f"below what its channel settled ({settled}): a newer voucher was"
            plan.skipped.append(Skipped(sv, reason, SkipKind.BELOW_SETTLED))
        else:
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
        chunks = _chunks(kept, max_vouchers, wallets, max_wallet_signatures)
        plan.batches.extend(Batch(currency, named, chunk) for chunk in chunks)
    return plan


Refused = tuple[SignedVoucher, str]
"""A voucher set aside and why."""


def _bisect(batch: Batch, simulate: Callable[[Batch], object]) -> tuple[list[Batch], list[Refused]]:
    try:
        simulate(batch)
    except WouldRevertError as exc:
        if len(batch.vouchers) == 1:
            return [], [(batch.vouchers[0], str(exc))]
        half = len(batch.vouchers) // 2
        left, left_out = _bisect(replace(batch, vouchers=batch.vouchers[:half]), simulate)
        right, right_out = _bisect(replace(batch, vouchers=batch.vouchers[half:]), simulate)
        return left + right, left_out + right_out
    return [batch], []


def settleable(batch: Batch, simulate: Callable[[Batch], object]) -> tuple[list[Batch], list[Refused]]:
    """The parts of `batch` that `simulate` (raising WouldRevertError) passes, and each voucher
    that reverts on its own with the error. A batch that reverts is bisected: a voucher that
    reverts alone is set aside; parts that pass are merged back into one batch when that passes
    too (one transaction rather than one per part), else kept apart (a revert of the batch as a
    whole splits it for good). One voucher that reverts among n costs about 2 log2(n) + 2
    simulations, never one per voucher."""
    parts, set_aside = _bisect(batch, simulate)
    if len(parts) > 1 and set_aside:
        merged = replace(batch, vouchers=[sv for part in parts for sv in part.vouchers])
        try:
            simulate(merged)
        except WouldRevertError:
            return parts, set_aside
        return [merged], set_aside
    return parts, set_aside
