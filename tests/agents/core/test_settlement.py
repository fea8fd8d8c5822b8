"""agents.core.settlement: voucher files and settlement plans (no chain: the chain reads are functions)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from eth_utils.address import to_checksum_address

from agents.core.reverts import WouldRevertError
from agents.core.settlement import (
    MAX_CUMULATIVE,
    MAX_VOUCHERS,
    MAX_WALLET_SIGNATURES,
    Batch,
    SignedVoucher,
    SkipKind,
    TermsView,
    VoucherFileError,
    append_vouchers,
    load_vouchers,
    plan_settlement,
    settleable,
    travels_listed,
)
from agents.core.vouchers import Voucher

ETH = "0x0000000000000000000000000000000000000000"
TOKEN = "0x00000000000000000000000000000000000000a1"
A, B = b"\xaa" * 32, b"\xbb" * 32
P1, P2 = "0x1111111111111111111111111111111111111111", "0x2222222222222222222222222222222222222222"
S1, S2 = "0x5555555555555555555555555555555555555555", "0x6666666666666666666666666666666666666666"
TERMS = {1: TermsView(A, ETH, 10), 2: TermsView(B, ETH, 10), 3: TermsView(A, TOKEN, 5), 4: TermsView(A, ETH, 0)}
PLENTY = 10**30


def sv(
    payer: str,
    terms: int,
    cumulative: int,
    deadline: int = 10_000,
    asset: bytes | None = None,
    service: str = S1,
) -> SignedVoucher:
    asset = asset if asset is not None else TERMS[terms].asset if terms in TERMS else A
    return SignedVoucher(Voucher(payer, service, asset, terms, cumulative, deadline), b"\x01" * 65)


def listed(payer: str, terms: int, cumulative: int) -> SignedVoucher:
    """A voucher whose signature has no compact form (v 5): it travels in `walletSignatures`."""
    return SignedVoucher(sv(payer, terms, cumulative).voucher, b"\x01" * 64 + b"\x05")


def plan(  # type: ignore[no-untyped-def]
    vouchers: list[SignedVoucher],
    settled: dict[tuple[str, str, int], int] | None = None,
    escrow: dict[tuple[str, str, str], int] | None = None,
    **kw: Any,
):
    settled = settled or {}
    return plan_settlement(
        vouchers,
        now=1_000,
        settled_of=lambda p, s, t: settled.get((p, s, t), 0),
        terms_of=TERMS.get,
        escrow_of=lambda p, c, s: PLENTY if escrow is None else escrow.get((p, c, s), 0),
        **kw,
    )


def test_round_trip_through_a_voucher_file(tmp_path: Path):
    path = tmp_path / "sub" / "v.jsonl"
    vouchers = [sv(P1, 1, 2**200), sv(P2, 3, 7, service=S2)]
    append_vouchers(path, vouchers[:1])
    append_vouchers(path, vouchers[1:])
    assert load_vouchers(path) == vouchers


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("not json", "Expecting value"),
        ("[1]", "expected a JSON object"),
        ('{"payer": "0x1"}', "missing asset, cumulativeAmount"),
        (json.dumps({k: v for k, v in sv(P1, 1, 5).as_json().items() if k != "service"}), "missing service"),
        (json.dumps({**sv(P1, 1, 5).as_json(), "payer": "0xzz"}), "payer is not an address"),
        (json.dumps({**sv(P1, 1, 5).as_json(), "service": "0x12"}), "service is not an address"),
        (json.dumps({**sv(P1, 1, 5).as_json(), "asset": "0x12"}), "asset must be 32 bytes"),
        (json.dumps({**sv(P1, 1, 5).as_json(), "asset": "aa" * 32}), "0x-prefixed"),
        (json.dumps({**sv(P1, 1, 5).as_json(), "termsId": -1}), "termsId is out of range"),
        (json.dumps({**sv(P1, 1, 5).as_json(), "cumulativeAmount": str(2**256)}), "cumulativeAmount is out of range"),
        (json.dumps({**sv(P1, 1, 5).as_json(), "deadline": True}), "deadline must be an integer"),
        (json.dumps({**sv(P1, 1, 5).as_json(), "signature": "0xzz"}), "non-hexadecimal"),
    ],
)
def test_malformed_lines_are_named(tmp_path: Path, line: str, message: str):
    path = tmp_path / "v.jsonl"
    path.write_text(json.dumps(sv(P1, 1, 5).as_json()) + "\n\n" + line + "\n")
    with pytest.raises(VoucherFileError, match=f"v.jsonl:3: .*{message}"):
        load_vouchers(path)


def test_missing_file_is_a_voucher_file_error(tmp_path: Path):
    with pytest.raises(VoucherFileError, match="No such file"):
        load_vouchers(tmp_path / "absent.jsonl")


def test_newest_voucher_per_channel_wins_whatever_the_order():
    p = plan([sv(P1, 1, 30), sv(P1, 1, 10), sv(P1, 1, 20)])
    assert [s.voucher.cumulative_amount for b in p.batches for s in b.vouchers] == [30]
    assert [s.reason for s in p.skipped] == ["superseded by a newer voucher of the same channel"] * 2
    assert plan([sv(P1, 1, 30)], settled={(P1, S1, 1): 12}).amount_by_currency() == {ETH: 18}


def test_a_channel_is_payer_service_and_terms():
    """The same payer and terms with two services are two channels, each settled on its own
    settled figure: neither supersedes the other."""
    p = plan([sv(P1, 1, 30), sv(P1, 1, 20, service=S2)], settled={(P1, S2, 1): 5})
    assert p.skipped == []
    # one `settle` per service: each batch names its service, its vouchers carry none; a
    # signature that is not a compact-able ECDSA one travels whole under its index
    assert [(b.service, [s.voucher.cumulative_amount for s in b.vouchers]) for b in p.batches] == [
        (S1, [30]),
        (S2, [20]),
    ]
    zero = bytes(32)
    assert Batch(ETH, S1, [listed(P1, 1, 30)]).call_args() == (
        ETH,
        S1,
        [(P1, 1, 30, 10_000, zero, zero)],
        [(0, b"\x01" * 64 + b"\x05")],
    )
    assert p.amount_by_currency() == {ETH: 30 + 15}


def test_skips_what_would_revert_with_reasons():
    vouchers = [
        sv(P1, 9, 5),  # unknown terms
        sv(P1, 4, 5),  # not metered
        sv(P2, 1, 5, asset=B),  # signed for another asset
        sv(P2, 2, 5, deadline=1_050),  # expires within the margin
        sv(P1, 2, 5),  # already settled
        sv(P1, 3, MAX_CUMULATIVE + 1),  # more than a channel holds: settle would revert (AmountTooLarge)
        sv(P2, 3, 8),  # fine
    ]
    p = plan(vouchers, settled={(P1, S1, 2): 5})
    reasons = sorted(s.reason.split(" (")[0].split(",")[0] for s in p.skipped)
    assert len(reasons) == 6
    assert [s.kind for s in p.skipped if s.voucher.voucher.terms_id == 3] == [SkipKind.AMOUNT_TOO_LARGE]
    assert any("do not exist" in r for r in reasons)
    assert any("not metered" in r for r in reasons)
    assert any("not 0x" in s.reason for s in p.skipped)
    assert "expired" in reasons and "already settled" in reasons
    assert [(b.currency, [s.voucher.terms_id for s in b.vouchers]) for b in p.batches] == [(TOKEN, [3])]
    kinds = {s.voucher.voucher.terms_id: s.kind for s in p.skipped}
    assert kinds[2] is SkipKind.ALREADY_SETTLED and kinds[2].settled  # settled: nothing is lost
    assert kinds[9] is SkipKind.UNKNOWN_TERMS and not kinds[9].settled


def test_leaves_out_what_settle_would_skip_with_reasons():
    """What the contract would pass over with `VoucherSkipped` is left out of the plan: a channel
    settled higher (a newer voucher got there first), and what the payer's escrow with the
    voucher's service cannot cover, counted in sending order as the contract counts it; escrow
    with another service covers nothing, and the planner's service filter drops other services."""
    below = plan([sv(P1, 1, 5)], settled={(P1, S1, 1): 9})
    assert [s.kind for s in below.skipped] == [SkipKind.BELOW_SETTLED] and not below.batches
    assert "below what its channel settled (9)" in below.skipped[0].reason

    # P1's escrow with S1 holds 25: asset A's voucher (20 due) is sent first and fits, asset B's
    # (10 due) then does not; P1's escrow with S2 holds plenty but pays for no S1 voucher
    escrow = {(P1, ETH, S1): 25, (P1, ETH, S2): 1_000, (P2, ETH, S1): 10}
    p = plan([sv(P1, 2, 10), sv(P1, 1, 20), sv(P2, 1, 10)], escrow=escrow)
    assert [(s.voucher.voucher.terms_id, s.kind) for s in p.skipped] == [(2, SkipKind.INSUFFICIENT_ESCROW)]
    assert "escrow with service " + S1 in p.skipped[0].reason and "needs 10, 5 left" in p.skipped[0].reason
    assert [(s.voucher.payer, s.voucher.terms_id) for b in p.batches for s in b.vouchers] == [(P1, 1), (P2, 1)]
    assert p.amount_by_currency() == {ETH: 30}
    # what is due counts, not the cumulative amount: a settled part needs no escrow
    assert plan([sv(P1, 1, 30)], settled={(P1, S1, 1): 20}, escrow={(P1, ETH, S1): 10}).voucher_count == 1
    only = plan([sv(P1, 1, 20), sv(P2, 1, 20, service=S2)], service=S2)
    assert [s.voucher.service for b in only.batches for s in b.vouchers] == [S2]
    assert [(s.kind, s.reason) for s in only.skipped] == [
        (SkipKind.OTHER_SERVICE, f"for service {S1}, not {S2}: only its service may settle it")
    ]


def test_groups_by_currency_orders_by_asset_then_payer_and_chunks():
    vouchers = [sv(P2, 2, 1), sv(P1, 3, 1), sv(P2, 1, 1), sv(P1, 2, 1, service=S2), sv(P1, 1, 1), sv(P1, 2, 1)]
    p = plan(vouchers, max_vouchers=2)
    flat = [(b.currency, b.service, [(s.voucher.asset, s.voucher.payer) for s in b.vouchers]) for b in p.batches]
    assert flat == [
        (ETH, S1, [(A, P1), (A, P2)]),
        (ETH, S1, [(B, P1), (B, P2)]),
        (ETH, S2, [(B, P1)]),
        (TOKEN, S1, [(A, P1)]),
    ]
    assert p.voucher_count == 6
    assert p.amount_by_currency() == {ETH: 5, TOKEN: 1}


def test_batch_cap():
    vouchers = [sv(f"0x{i:040x}", 1, 1) for i in range(1, MAX_VOUCHERS + 2)]
    p = plan(vouchers)
    assert [len(b.vouchers) for b in p.batches] == [MAX_VOUCHERS, 1]
    for bad in (0, MAX_VOUCHERS + 1):
        with pytest.raises(ValueError, match="max_vouchers"):
            plan(vouchers, max_vouchers=bad)


# F8: a line anyone can append (the payer's channel, a higher amount, no key) ------------------

GOOD = sv(P1, 1, 50)
"""The payer's real voucher on channel (P1, S1, 1)."""
FORGED = b"\x02" * 65
"""What a stranger appends as the signature (no key needed)."""


def line(amount: int = 10**20, *, asset: bytes = A, deadline: int = 10_000) -> SignedVoucher:
    """A line on GOOD's channel (payer P1, service S1, terms 1) with `amount` and a forged signature."""
    return SignedVoucher(Voucher(P1, S1, asset, 1, amount, deadline), FORGED)


def refuse_forged(voucher: SignedVoucher) -> tuple[str, SkipKind] | None:
    """A signature check that knows GOOD's signature and no other."""
    return None if voucher.signature != FORGED else ("bad signature: not the payer's", SkipKind.BAD_SIGNATURE)


@pytest.mark.parametrize(
    ("garbage", "kind", "kw"),
    [
        (line(asset=B), SkipKind.WRONG_ASSET, {}),
        (line(60, deadline=1_050), SkipKind.EXPIRED, {}),
        (line(MAX_CUMULATIVE + 1), SkipKind.AMOUNT_TOO_LARGE, {}),
        (line(60), SkipKind.BAD_SIGNATURE, {"signature_check": refuse_forged}),
        # above the payer's escrow: without the signature checked first, the line would be
        # left out for want of escrow, its signature never looked at, GOOD superseded
        (line(10**20), SkipKind.BAD_SIGNATURE, {"signature_check": refuse_forged, "escrow": {(P1, ETH, S1): 100}}),
    ],
    ids=["wrong-asset", "expired", "above-max-cumulative", "bad-signature", "bad-signature-above-escrow"],
)
def test_a_line_with_a_defect_never_supersedes_the_payers_voucher(
    garbage: SignedVoucher, kind: SkipKind, kw: dict[str, Any]
):
    """Whatever order the lines come in, the newest voucher of a channel is chosen among those
    that would settle: the garbage is left out for its own defect and GOOD is planned."""
    for order in ([GOOD, garbage], [garbage, GOOD]):
        p = plan(order, **kw)
        assert [s for b in p.batches for s in b.vouchers] == [GOOD]
        assert [(s.voucher, s.kind) for s in p.skipped] == [(garbage, kind)]
        assert p.amount_by_currency() == {ETH: 50}


def test_signatures_are_checked_newest_first_until_one_passes():
    """Only the vouchers above the one kept are checked; older ones are superseded unchecked, and
    a garbage line's escrow never counts against the payer's real vouchers."""
    asked: list[int] = []

    def check(voucher: SignedVoucher) -> tuple[str, SkipKind] | None:
        asked.append(voucher.voucher.cumulative_amount)
        return refuse_forged(voucher)

    vouchers = [sv(P1, 1, 10), line(40), GOOD, line(70), sv(P1, 1, 20)]
    p = plan(vouchers, signature_check=check, escrow={(P1, ETH, S1): 50})
    assert asked == [70, 50]  # 40 is below the voucher kept: superseded, never checked
    assert [s for b in p.batches for s in b.vouchers] == [GOOD]
    kinds = {s.voucher.voucher.cumulative_amount: s.kind for s in p.skipped}
    assert kinds == {
        70: SkipKind.BAD_SIGNATURE,
        40: SkipKind.SUPERSEDED,
        20: SkipKind.SUPERSEDED,
        10: SkipKind.SUPERSEDED,
    }
    # a channel with nothing that would settle: each voucher is left out for its own defect
    none_good = plan([line(60), line(70, asset=B)], signature_check=refuse_forged)
    assert not none_good.batches
    assert sorted(s.kind.value for s in none_good.skipped) == ["bad_signature", "wrong_asset"]


# F6: batches never carry more listed signatures than `settle` takes --------------------------


def payer(i: int) -> str:
    return to_checksum_address(f"0x{i:040x}")


def test_batches_hold_at_most_max_wallet_signatures():
    """25 wallet payers (1 wei each, as an attacker would hand them in) among honest vouchers:
    two batches, each within `MAX_WALLET_SIGNATURES`, so none reverts `TooManyWalletSignatures`;
    a signature without a compact form counts as listed whoever signed it."""
    wallets = {payer(i) for i in range(100, 125)}
    honest = [sv(payer(i), 1, 7) for i in range(1, 9)]
    vouchers = honest + [sv(w, 1, 1) for w in sorted(wallets)] + [listed(payer(200), 1, 3)]
    p = plan(vouchers, wallets=wallets)
    assert p.voucher_count == len(vouchers) and not p.skipped
    assert len(p.batches) == 2
    for batch in p.batches:
        signatures = batch.call_args(wallets)[3]
        assert len(signatures) == sum(travels_listed(s, wallets) for s in batch.vouchers) <= MAX_WALLET_SIGNATURES
    assert sum(len(b.call_args(wallets)[3]) for b in p.batches) == 26
    # the order the contract counts escrow in is kept across the cut: asset, then payer
    flat = [s.voucher.payer for b in p.batches for s in b.vouchers]
    assert flat == sorted(flat, key=str.lower)
    # the two caps together, and the cap's bounds
    small = plan(vouchers, wallets=wallets, max_wallet_signatures=10, max_vouchers=12)
    assert [len(b.call_args(wallets)[3]) for b in small.batches] == [4, 10, 10, 2]
    assert all(len(b.vouchers) <= 12 for b in small.batches)
    for bad in (0, MAX_WALLET_SIGNATURES + 1):
        with pytest.raises(ValueError, match="max_wallet_signatures"):
            plan(vouchers, max_wallet_signatures=bad)


def test_settleable_bisects_a_reverting_batch_in_log_n_simulations():
    """One voucher that reverts among 64: set aside with its error after O(log n) simulations, the
    other 63 merged back into one batch (one transaction)."""
    vouchers = [sv(payer(i), 1, 1) for i in range(1, 65)]
    bad = vouchers[37]
    simulated: list[int] = []

    def simulate(batch: Batch) -> None:
        simulated.append(len(batch.vouchers))
        if bad in batch.vouchers:
            raise WouldRevertError("would revert: LicenseManager__WrongSigner(index=0, ...)")

    parts, set_aside = settleable(Batch(ETH, S1, vouchers), simulate)
    assert [part.vouchers for part in parts] == [[v for v in vouchers if v is not bad]]
    assert set_aside == [(bad, "would revert: LicenseManager__WrongSigner(index=0, ...)")]
    assert len(simulated) <= 2 * 6 + 2  # 1 + 2 per level of 6 + the merged batch
