"""agents.app.report: the demo's report built from data shaped like a demo run's (journal
payloads, chain events) through the module's own API, and its HTML checked: escrow that adds up,
a creator's share and the protocol fee as separate bars, superseded vouchers told apart from
skipped ones, zk scores as decimals with their verdicts, identifiers whole in the page, and (in
Chromium) no label clipped."""

from __future__ import annotations

import html
import io
import os
import re
from pathlib import Path
from typing import Any

import pytest

from agents.app.report import (
    SUPERSEDED,
    AssetRow,
    Distribution,
    Flow,
    Report,
    distribution_flows,
    escrow_accounts,
    outcome_counts,
    render,
    score_text,
    voucher_outcome,
    voucher_summary,
)
from agents.runtime import jobs

OPERATOR = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
PATRON = "0x976EA74026E726554dB657fA54763abd0C3a0aa9"
PAYER = "0x9965507D1a55bcC2695C58ba16FB37d819B0A4dc"
DEVELOPER = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
NAMES = {OPERATOR.lower(): "operator", PATRON.lower(): "patron", PAYER.lower(): "payer agent"}
FINNEY = 10**15
SCALE = 13


def _png() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (32, 32), (40, 90, 200)).save(out, format="PNG")
    return out.getvalue()


def asset_payload(seq: int, prompt: str, *, score: int | None, model: int = 3, **extra: Any) -> dict[str, Any]:
    """An asset job's payload as the pipeline leaves it (the fields the report reads)."""
    digest = f"{seq:02x}" * 32
    payload: dict[str, Any] = {
        "request": {"prompt": prompt, "seed": 7_000 + seq, "steps": 25, "guidance": 1.5},
        "cid": f"bafkrei{seq}gcivsgs65wnm5cqpnjzk7en5brygspkgvlwhwzypj4qrbxjwgjg"[:59],
        "sha256": digest,
        "curation": {"decision": "accept", "alignment": 0.921, "reason": "prompt alignment 0.921 is at least 0.85"},
        "manifest_cid": f"bafkreib2ji7tqiuhx377dfyyva6jo3jo6rm36sjvxpixhxqic5qsffzg{seq:02d}",
        "metadata_cid": f"bafkreibdrrx7m4qzpjvjae6jekyeeqeb3q5a7ypdajnphmg7jimgtuyf{seq:02d}",
        "metadata_uri": f"ipfs://bafkreibdrrx7m4qzpjvjae6jekyeeqeb3q5a7ypdajnphmg7jimgtuyf{seq:02d}",
        "registered_creator": OPERATOR,
        "seq": seq,
        "register_batch": 4,
        **extra,
    }
    if score is not None:
        payload.update(score=score, attested_by=model, attested_on_chain=True)
    return payload


def voucher_payload(terms_id: int, cumulative: int, **outcome: Any) -> dict[str, Any]:
    """A voucher job's payload: the voucher as `SignedVoucher.as_json` journals it, and what the
    settlement daemon added."""
    return {
        "payer": PAYER,
        "service": OPERATOR,
        "asset": "0x" + f"{terms_id:02x}" * 32,
        "termsId": terms_id,
        "cumulativeAmount": str(cumulative),
        "deadline": 1_796_056_832,
        "signature": "0x" + "ab" * 65,
        **outcome,
    }


SUPERSEDED_REASON = "superseded by a newer voucher of the same channel"
ESCROW_REASON = "the payer's escrow with service 0xf39F cannot cover it (needs 9000000000000000, 0 left for it)"


def vouchers() -> list[tuple[str, dict[str, Any]]]:
    return [
        (jobs.SKIPPED, voucher_payload(4, 2 * FINNEY, skip="superseded", reason=SUPERSEDED_REASON)),
        (jobs.SETTLED, voucher_payload(4, 5 * FINNEY, settle_tx="0x65db", batch_size=2)),
        (jobs.SKIPPED, voucher_payload(5, 2 * FINNEY, skip="below_settled", reason="below what its channel settled")),
        (jobs.SETTLED, voucher_payload(5, 5 * FINNEY, settle_tx="0x65db", batch_size=2)),
        (jobs.SKIPPED, voucher_payload(6, 9 * FINNEY, skip="insufficient_escrow", reason=ESCROW_REASON)),
    ]


def distributions() -> list[Distribution]:
    """Splits of 10 finney each at a 2.5% fee, 10% developer, 5% data: two assets the operator
    made (it is also the treasury), one the patron made."""

    def split(creator: str) -> Distribution:
        amount = 10 * FINNEY
        fee, developer, data = amount * 250 // 10_000, amount // 10, amount // 20
        return Distribution(creator, amount, amount - fee - developer - data, developer, data, 0, fee)

    return [split(OPERATOR), split(OPERATOR), split(PATRON)]


@pytest.fixture(scope="module")
def report() -> Report:
    escrow = escrow_accounts(
        [(PAYER, OPERATOR, 30 * FINNEY), (PAYER, OPERATOR, 20 * FINNEY)],
        [(PAYER, OPERATOR, 5 * FINNEY)],
        settled_of=lambda payer, service: 10 * FINNEY,
        held_of=lambda payer, service: 35 * FINNEY,
    )
    money = distribution_flows(
        distributions(), names=NAMES, treasury=OPERATOR, data_claims=[("data originator A", 9 * FINNEY // 10)]
    )
    money += [
        Flow("generation fees: operator", 2 * FINNEY, "market", "for fulfilled requests"),
        Flow("still in escrow", 35 * FINNEY, "escrow", "the payer's, with the service"),
        Flow("escrow taken back by payers", 5 * FINNEY, "escrow"),
    ]
    rows = [
        AssetRow(
            "req-1",
            jobs.ATTESTED,
            asset_payload(0, "three small blue circles at the top over a dotted black background", score=6_656),
            _png(),
            True,
            "three small blue circles at the top over a dotted black (seed 7000)",
        ),
        AssetRow(
            "req-2",
            jobs.ATTESTED,
            asset_payload(1, "three large cyan circles at the top over a plain navy background", score=-8_320, model=2),
            _png(),
            True,
        ),
        AssetRow(
            "req-3",
            jobs.UNPROVEN,
            asset_payload(2, "a small magenta circle in the centre over a plain black background", score=None),
            None,
            False,
        ),
    ]
    return Report(
        title="proofmint demo",
        summary=[("network", "ethereum:local"), ("royalty splitter: paid in / out / held", "0.080000 / 0.044 ETH")],
        assets=rows,
        paid_in=[("licences", 20 * FINNEY), ("escrow deposits", 50 * FINNEY), ("generation fees", 2 * FINNEY)],
        money=money,
        escrow=escrow,
        vouchers=[voucher_outcome(stage, payload) for stage, payload in vouchers()],
        score_scales={2: SCALE, 3: SCALE},
        names=NAMES,
        notes=["The chain is the embedded py-evm chain."],
    )


@pytest.fixture(scope="module")
def page(report: Report) -> str:
    return render(report)


def text_of(fragment: str) -> str:
    """The visible text of an HTML fragment, tags dropped and entities decoded."""
    return html.unescape(re.sub(r"<[^>]+>", "", fragment))


def section(page: str, title: str) -> str:
    """The HTML between heading `title` and the next heading."""
    start = page.index(f"<h2>{title}</h2>")
    end = page.find("<h2>", start + 1)
    return page[start : end if end != -1 else None]


# ---------------------------------------------------------------------- escrow


def test_escrow_accounts_sum_each_payers_deposits_and_withdrawals_with_each_service():
    accounts = escrow_accounts(
        [(PAYER, OPERATOR, 30), (PATRON, OPERATOR, 7), (PAYER, OPERATOR, 20)],
        [(PAYER, OPERATOR, 5)],
        settled_of=lambda payer, service: {PAYER: 10, PATRON: 7}[payer],
        held_of=lambda payer, service: {PAYER: 35, PATRON: 0}[payer],
    )
    by_payer = {a.payer: a for a in accounts}
    assert (by_payer[PAYER].deposited, by_payer[PAYER].settled, by_payer[PAYER].withdrawn) == (50, 10, 5)
    assert by_payer[PAYER].held == 35 and by_payer[PAYER].unaccounted == 0
    assert (by_payer[PATRON].deposited, by_payer[PATRON].withdrawn, by_payer[PATRON].unaccounted) == (7, 0, 0)


def test_the_report_shows_escrow_deposited_settled_withdrawn_and_still_held_and_that_it_adds_up(page: str):
    escrow = section(page, "Escrow")
    row = text_of(re.findall(r"<tr>.*?</tr>", escrow)[1])
    assert "payer agent" in row and PAYER in row and OPERATOR in row
    assert "0.050000" in row and "0.010000" in row and "0.005000" in row and "0.035000" in row
    assert "adds up" in row
    header = text_of(re.findall(r"<tr>.*?</tr>", escrow)[0])
    for column in ("deposited", "settled to the service", "withdrawn by the payer", "still held"):
        assert column in header


def test_an_escrow_account_that_does_not_add_up_says_by_how_much(report: Report):
    off = escrow_accounts(
        [(PAYER, OPERATOR, 50)], [], settled_of=lambda payer, service: 10, held_of=lambda payer, service: 39
    )
    assert off[0].unaccounted == 1
    escrow = section(render(Report(title="t", escrow=off, names=NAMES)), "Escrow")
    assert "1 wei unaccounted" in text_of(escrow) and "adds up" not in text_of(escrow)


# ---------------------------------------------------------------------- money


def test_a_creators_share_and_the_protocol_fee_are_separate_flows_when_one_account_takes_both():
    flows = {flow.label: flow for flow in distribution_flows(distributions(), names=NAMES, treasury=OPERATOR)}
    operator_share = 2 * (10 * FINNEY - 250 * FINNEY // 1_000 - FINNEY - FINNEY // 2)
    assert flows["creator share: operator"].wei == operator_share
    assert flows["protocol fee: treasury (operator)"].wei == 3 * 250 * FINNEY // 1_000
    assert flows["creator share: patron"].wei == operator_share // 2
    assert flows["model developer"].wei == 3 * FINNEY
    assert flows["data originators, unclaimed"].wei == 3 * FINNEY // 2
    assert sum(flow.wei for flow in flows.values()) == 30 * FINNEY, "the bars add up to what was distributed"


def test_a_parents_share_is_no_bar_of_its_own_its_parent_splits_it_again():
    child = Distribution(OPERATOR, 10 * FINNEY, 8 * FINNEY, FINNEY // 2, 0, FINNEY, FINNEY // 2)
    parent = Distribution(OPERATOR, FINNEY, FINNEY - FINNEY // 10, FINNEY // 10, 0, 0, 0)  # the inherited share
    flows = distribution_flows([child, parent], names=NAMES, treasury=OPERATOR)
    assert not [flow for flow in flows if "parent" in flow.label]
    assert sum(flow.wei for flow in flows) == 10 * FINNEY, "what came in once, counted once"
    assert next(f for f in flows if f.label == "rounding dust").wei == 0


def test_the_money_chart_has_a_bar_each_for_the_creator_share_and_the_fee_and_adds_up_to_what_was_paid_in(page: str):
    chart = section(page, "Where the money went")
    rows = re.findall(r"<tr>(.*?)</tr>", chart)
    bars = {text_of(re.search(r'class="label">(.*?)</td>', r).group(1)): r for r in rows if 'class="label"' in r}
    creator, fee = bars["creator share: operator"], bars["protocol fee: treasury (operator)"]
    assert 'class="bar creator"' in creator and 'class="bar fee"' in fee
    widths = [float(re.search(r"width:([\d.]+)%", r).group(1)) for r in (creator, fee)]  # type: ignore[union-attr]
    assert widths[0] > widths[1] > 0, "the fee is a bar of its own, drawn to scale"
    assert "0.016500 ETH" in creator and "0.000750 ETH" in fee
    total = text_of(re.search(r'<tr class="total">(.*?)</tr>', chart).group(1))  # type: ignore[union-attr]
    assert "0.072000 ETH" in total and "adds up to what was paid in" in total
    assert "Paid in: licences 0.020000, escrow deposits 0.050000, generation fees 0.002000 ETH" in text_of(chart)


def test_money_that_does_not_add_up_to_what_was_paid_in_is_flagged(report: Report):
    short = Report(title="t", paid_in=[("licences", 10)], money=[Flow("creator share: operator", 9, "creator")])
    total = re.search(r'<tr class="total">(.*?)</tr>', render(short)).group(1)  # type: ignore[union-attr]
    assert "1 wei unaccounted" in text_of(total)


# ---------------------------------------------------------------------- vouchers


def test_vouchers_a_newer_one_replaced_are_superseded_and_the_rest_keep_their_reason():
    outcomes = [voucher_outcome(stage, payload) for stage, payload in vouchers()]
    assert [o.outcome for o in outcomes] == [SUPERSEDED, jobs.SETTLED, SUPERSEDED, jobs.SETTLED, jobs.SKIPPED]
    assert outcomes[0].reason == SUPERSEDED_REASON and outcomes[1].reason == ""
    assert outcomes[4].reason == ESCROW_REASON
    assert (outcomes[0].terms_id, outcomes[0].cumulative) == (4, 2 * FINNEY)
    assert outcome_counts(outcomes) == {jobs.SETTLED: 2, SUPERSEDED: 2, jobs.SKIPPED: 1}
    line = voucher_summary(outcomes)
    assert line.startswith("2 settled, 2 superseded (a newer cumulative voucher of the same channel replaced each)")
    assert line.endswith(f"1 skipped: {ESCROW_REASON} (1)")


def test_a_voucher_settled_already_counts_as_settled_and_one_that_failed_says_why():
    already = voucher_outcome(
        jobs.SETTLED, voucher_payload(4, FINNEY, skip="already_settled", reason="already settled")
    )
    failed = voucher_outcome(jobs.FAILED, voucher_payload(4, FINNEY), "not a voucher: missing signature")
    assert already.outcome == jobs.SETTLED
    assert (failed.outcome, failed.reason) == (jobs.FAILED, "not a voucher: missing signature")


def test_the_report_lists_each_voucher_as_settled_superseded_or_skipped_with_the_reason(page: str):
    table = section(page, "Vouchers")
    rows = [text_of(r) for r in re.findall(r"<tr>(.*?)</tr>", table)[1:]]
    assert len(rows) == 5
    assert "superseded" in rows[0] and SUPERSEDED_REASON in rows[0] and "skipped" not in rows[0]
    assert "settled" in rows[1]
    assert "skipped" in rows[4] and ESCROW_REASON in rows[4]
    assert "5 vouchers: 2 settled, 2 superseded" in text_of(table)


# ---------------------------------------------------------------------- assets


def test_zk_scores_read_as_the_fixed_point_score_over_2_to_the_output_scale():
    assert score_text(6_656, 13) == "+0.8125"
    assert score_text(-8_320, 13) == "-1.0156"
    assert score_text(0, 13) == "+0.0000"


def cards(page: str) -> list[str]:
    return re.findall(r'<div class="card">.*?</table></div>', page)


def zk_cell(card: str) -> str:
    return re.search(r"<tr><td>zk</td><td>(.*?)</td></tr>", card).group(1)  # type: ignore[union-attr]


def test_each_asset_shows_its_zk_score_as_a_decimal_with_the_verdicts(page: str):
    first, second, third = cards(page)
    assert text_of(zk_cell(first)) == "attested score +0.8125 by model 3"
    assert 'title="fixed point 6656 / 2^13"' in zk_cell(first), "the raw figure stays reachable"
    assert text_of(zk_cell(second)) == "attested score -1.0156 by model 2"
    assert "unproven" in text_of(zk_cell(third)) and "score" not in text_of(zk_cell(third))
    assert "accept" in text_of(re.search(r"<td>curation</td><td>(.*?)</td></tr>", first).group(1))  # type: ignore[union-attr]
    assert "6656" not in text_of(page) and "-8320" not in text_of(page), "no raw fixed-point score as text"


def test_every_identifier_is_whole_in_the_page_in_its_title_and_its_text(report: Report, page: str):
    idents = re.findall(r'<code class="id" title="([^"]*)">([^<]*)</code>', page)
    assert idents and all(title == text for title, text in idents)
    whole = {html.unescape(text) for _, text in idents}
    for row in report.assets:
        for key in ("cid", "sha256", "metadata_uri", "manifest_cid"):
            assert row.payload[key] in whole, key
    assert {OPERATOR, PAYER} <= whole
    assert {v.asset for v in report.vouchers} <= whole
    assert "…" not in text_of(page), "the page itself shortens nothing (CSS may, with an ellipsis)"


def test_the_metadata_name_is_shown_whole(page: str):
    first = cards(page)[0]
    assert "three small blue circles at the top over a dotted black (seed 7000)" in text_of(first)


# ---------------------------------------------------------------------- in a browser

CHROMIUM = os.environ.get("PROOFMINT_CHROMIUM", "/usr/bin/chromium")

CLIPPED = """() => {
  const clipped = [];
  for (const el of document.querySelectorAll('td, th, p, li, span, h1, h2, code, div.bar')) {
    if (el.matches('code.id')) {
      if (el.title !== el.textContent) clipped.push('title differs: ' + el.textContent);
      continue;
    }
    if (el.scrollWidth > el.clientWidth + 1 && getComputedStyle(el).display !== 'inline') {
      clipped.push(el.tagName + ' ' + el.className + ': ' + el.textContent.slice(0, 80));
    }
  }
  for (const el of document.querySelectorAll('td.label, .card td:first-child, th')) {
    if (!el.textContent.trim()) continue;
    const range = document.createRange();
    range.selectNodeContents(el);
    const text = range.getBoundingClientRect(), box = el.getBoundingClientRect();
    if (text.right > box.right + 1 || text.left < box.left - 1) clipped.push('overflows: ' + el.textContent);
  }
  return clipped;
}"""


@pytest.mark.parametrize("width", [1400, 900])
def test_no_label_is_clipped_in_chromium(page: str, tmp_path: Path, width: int):
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium is not at {CHROMIUM}: run `make setup-tests` (Debian's chromium)")
    from playwright.sync_api import sync_playwright

    path = tmp_path / "report.html"
    path.write_text(page, encoding="utf8")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            view = browser.new_page(viewport={"width": width, "height": 900})
            view.goto(path.as_uri())
            assert view.evaluate(CLIPPED) == []
            copied = view.evaluate(
                """() => { const el = document.querySelector('.card code.id');
                           getSelection().selectAllChildren(el); return [getSelection().toString(), el.title]; }"""
            )
            assert copied[0] == copied[1], "selecting a shortened identifier takes all of it"
        finally:
            browser.close()
