"""agents.settlement: voucher files and settlement plans (no chain: the chain reads are functions)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agents.settlement import (
    MAX_VOUCHERS,
    SignedVoucher,
    TermsView,
    VoucherFileError,
    append_vouchers,
    load_vouchers,
    plan_settlement,
)
from agents.vouchers import Voucher

ETH = "0x0000000000000000000000000000000000000000"
TOKEN = "0x00000000000000000000000000000000000000a1"
A, B = b"\xaa" * 32, b"\xbb" * 32
P1, P2 = "0x1111111111111111111111111111111111111111", "0x2222222222222222222222222222222222222222"
TERMS = {1: TermsView(A, ETH, 10), 2: TermsView(B, ETH, 10), 3: TermsView(A, TOKEN, 5), 4: TermsView(A, ETH, 0)}


def sv(payer: str, terms: int, cumulative: int, deadline: int = 10_000, asset: bytes | None = None) -> SignedVoucher:
    asset = asset if asset is not None else TERMS[terms].asset if terms in TERMS else A
    return SignedVoucher(Voucher(payer, asset, terms, cumulative, deadline), b"\x01" * 65)


def plan(vouchers: list[SignedVoucher], settled: dict[tuple[str, int], int] | None = None, **kw: int):  # type: ignore[no-untyped-def]
    settled = settled or {}
    return plan_settlement(
        vouchers,
        now=1_000,
        settled_of=lambda p, t: settled.get((p, t), 0),
        terms_of=TERMS.get,
        **kw,
    )


def test_round_trip_through_a_voucher_file(tmp_path: Path):
    path = tmp_path / "sub" / "v.jsonl"
    vouchers = [sv(P1, 1, 2**200), sv(P2, 3, 7)]
    append_vouchers(path, vouchers[:1])
    append_vouchers(path, vouchers[1:])
    assert load_vouchers(path) == vouchers


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("not json", "Expecting value"),
        ("[1]", "expected a JSON object"),
        ('{"payer": "0x1"}', "missing asset, cumulativeAmount"),
        (json.dumps({**sv(P1, 1, 5).as_json(), "payer": "0xzz"}), "payer is not an address"),
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
    assert [s.voucher.cumulative_amount for _, b in p.batches for s in b] == [30]
    assert [s.reason for s in p.skipped] == ["superseded by a newer voucher of the same channel"] * 2
    assert plan([sv(P1, 1, 30)], settled={(P1, 1): 12}).amount_by_currency() == {ETH: 18}


def test_skips_what_would_revert_with_reasons():
    vouchers = [
        sv(P1, 9, 5),  # unknown terms
        sv(P1, 4, 5),  # not metered
        sv(P2, 1, 5, asset=B),  # signed for another asset
        sv(P2, 2, 5, deadline=1_050),  # expires within the margin
        sv(P1, 2, 5),  # already settled
        sv(P2, 3, 8),  # fine
    ]
    p = plan(vouchers, settled={(P1, 2): 5})
    reasons = sorted(s.reason.split(" (")[0].split(",")[0] for s in p.skipped)
    assert len(reasons) == 5
    assert any("do not exist" in r for r in reasons)
    assert any("not metered" in r for r in reasons)
    assert any("not 0x" in s.reason for s in p.skipped)
    assert "expired" in reasons and "already settled" in reasons
    assert [(c, [s.voucher.terms_id for s in b]) for c, b in p.batches] == [(TOKEN, [3])]


def test_groups_by_currency_orders_by_asset_then_payer_and_chunks():
    vouchers = [sv(P2, 2, 1), sv(P1, 3, 1), sv(P2, 1, 1), sv(P1, 2, 1), sv(P1, 1, 1)]
    p = plan(vouchers, max_vouchers=2)
    flat = [(c, [(s.voucher.asset, s.voucher.payer) for s in b]) for c, b in p.batches]
    assert flat == [
        (ETH, [(A, P1), (A, P2)]),
        (ETH, [(B, P1), (B, P2)]),
        (TOKEN, [(A, P1)]),
    ]
    assert p.voucher_count == 5
    assert p.amount_by_currency() == {ETH: 4, TOKEN: 1}


def test_batch_cap():
    vouchers = [sv(f"0x{i:040x}", 1, 1) for i in range(1, MAX_VOUCHERS + 2)]
    p = plan(vouchers)
    assert [len(b) for _, b in p.batches] == [MAX_VOUCHERS, 1]
    for bad in (0, MAX_VOUCHERS + 1):
        with pytest.raises(ValueError, match="max_vouchers"):
            plan(vouchers, max_vouchers=bad)
