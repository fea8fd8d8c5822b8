"""The demo's report: one self-contained HTML page (images inline, no network) with each asset's
provenance, curation and zk status, where the money went, what the escrow still holds and what
became of every voucher.

The page tells the whole story without losing information:

1. Money: every payment into the run (`Report.paid_in`) and where it ended (`Report.money`, one
   bar per recipient and role: a creator's share and the protocol fee are separate bars even when
   one account takes both); the two totals are shown side by side and must agree.
2. Escrow: per payer and service, deposited = settled to the service + withdrawn by the payer +
   still held (`EscrowAccount`), with the difference shown when it does not add up.
3. Vouchers: each one settled, superseded (a newer cumulative voucher of its channel carries its
   amount) or skipped with the reason (`voucher_outcome`).
4. Assets: zk scores as decimals (the fixed-point score over 2^output_scale) with the verdicts;
   every identifier (CID, digest, address) whole in the page, shortened only by CSS, with the
   full value in its title and selected by one click.

Nothing is clipped: labels sit in table cells that grow with them, and no text is shortened by
the page itself (only identifiers, by CSS, as above).
"""

from __future__ import annotations

import base64
import html
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from agents.core.settlement import SkipKind
from agents.runtime import jobs

HEAD_SCALE: Final = 13
"""The curation head's fixed point (`zkml.settings.PINNED.output_scale`): its scores are over 2^13."""

_STYLE = """
body{font:14px system-ui,sans-serif;margin:2em;color:#222;background:#fafafa;max-width:1400px}
h1{margin-bottom:.2em} .sub{color:#666;margin-top:0} .muted{color:#666}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(440px,1fr));gap:1em}
.card{background:#fff;border:1px solid #ddd;border-radius:8px;padding:.8em;display:grid;
  grid-template-columns:128px minmax(0,1fr);gap:.8em;align-items:start}
.card img,.card .noimg{width:128px;height:128px;image-rendering:pixelated;border:1px solid #ccc}
.card .noimg{display:flex;align-items:center;justify-content:center;color:#999;background:#f3f3f3}
.card table{font-size:12px;border-collapse:collapse;table-layout:fixed;width:100%}
.card td{padding:1px 4px;vertical-align:top;overflow-wrap:anywhere}
.card td:first-child{color:#666;white-space:nowrap;width:7.5em;overflow-wrap:normal}
code{font-size:11px}
code.id{display:inline-block;max-width:100%;overflow:hidden;text-overflow:ellipsis;white-space:nowrap;
  vertical-align:bottom;user-select:all;cursor:text}
table.wide code.id{max-width:16em}
.badge{display:inline-block;padding:1px 6px;border-radius:9px;font-size:11px;color:#fff;white-space:nowrap}
.ok{background:#2a7} .warn{background:#c80} .bad{background:#c33} .info{background:#68a}
table.money{border-collapse:collapse;margin:1em 0}
table.money td,table.money th{padding:3px 10px;border-bottom:1px solid #ddd;text-align:right;vertical-align:top}
table.money td:first-child,table.money th:first-child{text-align:left}
table.money td.text,table.money th.text{text-align:left}
table.run td:first-child{white-space:nowrap}
table.chart{border-collapse:collapse;margin:1em 0;width:100%;max-width:1100px}
table.chart td,table.chart th{padding:3px 8px;border-bottom:1px solid #eee;vertical-align:middle}
table.chart th{text-align:left} table.chart td.label{white-space:nowrap}
table.chart td.track{width:100%;min-width:160px} table.chart td.amount{text-align:right;white-space:nowrap}
table.chart td.note{color:#666;font-size:12px;white-space:nowrap}
table.chart tr.total td{border-top:2px solid #999;font-weight:600}
.bar{height:18px;border-radius:3px;min-width:1px}
.bar.creator{background:#3a7bd5} .bar.fee{background:#8e44ad} .bar.developer{background:#2a9d8f}
.bar.data{background:#d4a72c} .bar.parents{background:#5c7cfa} .bar.market{background:#e07a2f}
.bar.escrow{background:repeating-linear-gradient(45deg,#888 0 6px,#aaa 6px 12px)} .bar.dust{background:#bbb}
.bar.other{background:#777}
"""

ETHER: Final = 10**18

SUPERSEDED: Final = "superseded"
"""A voucher a newer cumulative voucher of the same channel replaced (its amount is in the newer one)."""
_SUPERSEDED_KINDS: Final = frozenset({SkipKind.SUPERSEDED.value, SkipKind.BELOW_SETTLED.value})


@dataclass(frozen=True)
class AssetRow:
    key: str
    stage: str
    payload: Mapping[str, Any]
    png: bytes | None
    manifest_ok: bool | None = None
    metadata_name: str | None = None
    """The `name` of the asset's ERC-721 metadata, as the content store holds it."""


@dataclass(frozen=True)
class Flow:
    """One bar of the money chart: `wei` that ended with one recipient in one role. `kind` picks
    the bar's colour (creator, fee, developer, data, parents, market, escrow, dust, other)."""

    label: str
    wei: int
    kind: str = "other"
    note: str = ""


@dataclass(frozen=True)
class Distribution:
    """One `RoyaltySplitter.Distributed` event, with the creator of the asset it split."""

    creator: str
    amount: int
    creator_share: int
    developer_share: int
    data_share: int
    parents_share: int
    fee: int


@dataclass(frozen=True)
class EscrowAccount:
    """One payer's escrow with one service, in one currency."""

    payer: str
    service: str
    deposited: int
    settled: int
    """Paid to the service by settled vouchers (the channels' settled amounts)."""
    withdrawn: int
    """Taken back by the payer (`withdrawEscrow`)."""
    held: int
    """Still in escrow (`escrowOf`)."""

    @property
    def unaccounted(self) -> int:
        """deposited - settled - withdrawn - held: zero when the account adds up."""
        return self.deposited - self.settled - self.withdrawn - self.held


@dataclass(frozen=True)
class VoucherOutcome:
    """What became of one journaled voucher: `settled`, `superseded`, `skipped`, `failed` or
    still `pending`, and why (empty for settled)."""

    payer: str
    service: str
    asset: str
    terms_id: int
    cumulative: int
    outcome: str
    reason: str = ""


@dataclass(frozen=True)
class CostRow:
    """What one asset cost the operator and what it earned, in US dollars at the run's prices."""

    label: str
    stage: str
    by_stage: Mapping[str, float]
    cost: float
    revenue: float
    """What it earned: licence revenue (split among its payees, and waiting) and its generation fee."""

    @property
    def margin(self) -> float:
        return self.revenue - self.cost


@dataclass
class Report:
    title: str
    summary: list[tuple[str, str]] = field(default_factory=list)
    assets: list[AssetRow] = field(default_factory=list)
    paid_in: list[tuple[str, int]] = field(default_factory=list)
    """(what, wei): every payment into the run; its total is what `money` must add up to."""
    money: list[Flow] = field(default_factory=list)
    """Where the money paid in ended, in the order to chart."""
    escrow: list[EscrowAccount] = field(default_factory=list)
    vouchers: list[VoucherOutcome] = field(default_factory=list)
    score_scales: dict[int, int] = field(default_factory=dict)
    """Model id -> the output scale of its circuit (a score s reads as s / 2^scale)."""
    names: dict[str, str] = field(default_factory=dict)
    """Lower-case address -> the role it plays in the run (shown beside the address)."""
    costs: list[CostRow] = field(default_factory=list)
    cost_stages: tuple[str, ...] = ()
    """The stages the cost table shows, in pipeline order."""
    cost_prices: str = ""
    """Where the prices came from, and what they were."""
    notes: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------- figures


def distribution_flows(
    distributions: Iterable[Distribution],
    *,
    names: Mapping[str, str],
    treasury: str,
    data_claims: Sequence[tuple[str, int]] = (),
) -> list[Flow]:
    """The splitter's distributions as chart bars: one creator share per creator (named by
    `names`, lower-case address -> role), the protocol fee for `treasury` apart from any creator
    share the same account takes, the model developer's share, the data originators' pool as
    `data_claims` ((label, claimed wei)) and what is left unclaimed, and the rounding dust.
    Parents' shares have no bar: each became its parent's (inherited) revenue, which the parent's
    own distribution splits (or the parent still holds), so a bar would count it twice. The bars
    add up to the distributed amount less the parents' shares."""
    by_creator: dict[str, int] = {}
    fee = developer = data = parents = amount = 0
    for d in distributions:
        by_creator[d.creator.lower()] = by_creator.get(d.creator.lower(), 0) + d.creator_share
        fee += d.fee
        developer += d.developer_share
        data += d.data_share
        parents += d.parents_share
        amount += d.amount
    flows = [
        Flow(f"creator share: {names.get(creator, creator)}", wei, "creator")
        for creator, wei in sorted(by_creator.items(), key=lambda item: -item[1])
    ]
    flows.append(Flow(f"protocol fee: treasury ({names.get(treasury.lower(), treasury)})", fee, "fee"))
    flows.append(Flow("model developer", developer, "developer"))
    claimed = 0
    for label, wei in data_claims:
        flows.append(Flow(label, wei, "data", "claimed"))
        claimed += wei
    flows.append(Flow("data originators, unclaimed", data - claimed, "data", "in the pool until claimed"))
    paid = sum(by_creator.values()) + fee + developer + data + parents
    flows.append(Flow("rounding dust", amount - paid, "dust", "kept by the splitter"))
    return flows


def escrow_accounts(
    deposits: Iterable[tuple[str, str, int]],
    withdrawals: Iterable[tuple[str, str, int]],
    *,
    settled_of: Callable[[str, str], int],
    held_of: Callable[[str, str], int],
) -> list[EscrowAccount]:
    """One `EscrowAccount` per (payer, service) that deposited: `deposits` and `withdrawals` are
    (payer, service, wei) events (`EscrowDeposited`, `EscrowWithdrawn`), `settled_of(payer,
    service)` what its channels settled, `held_of(payer, service)` its escrow balance now."""
    deposited: dict[tuple[str, str], int] = {}
    for payer, service, wei in deposits:
        deposited[(payer, service)] = deposited.get((payer, service), 0) + wei
    withdrawn: dict[tuple[str, str], int] = {}
    for payer, service, wei in withdrawals:
        withdrawn[(payer, service)] = withdrawn.get((payer, service), 0) + wei
    return [
        EscrowAccount(
            payer,
            service,
            wei,
            settled_of(payer, service),
            withdrawn.get((payer, service), 0),
            held_of(payer, service),
        )
        for (payer, service), wei in deposited.items()
    ]


def voucher_outcome(stage: str, payload: Mapping[str, Any], error: str | None = None) -> VoucherOutcome:
    """A journaled voucher's outcome. The settlement daemon journals a voucher `skipped` for any
    reason it was not sent or not paid; one that a newer cumulative voucher of its channel
    replaced (`superseded` when planning, `below_settled` on chain) is reported as superseded,
    not skipped: the newer voucher carries its amount. One settled already counts as settled."""
    if stage == jobs.SETTLED:
        outcome, reason = jobs.SETTLED, ""
    elif stage == jobs.SKIPPED:
        outcome = SUPERSEDED if payload.get("skip") in _SUPERSEDED_KINDS else jobs.SKIPPED
        reason = str(payload.get("reason") or error or "no reason recorded")
    elif stage == jobs.FAILED:
        outcome, reason = jobs.FAILED, str(error or payload.get("reason") or "no reason recorded")
    else:
        outcome, reason = "pending", f"still {stage}"
    return VoucherOutcome(
        payer=str(payload.get("payer", "")),
        service=str(payload.get("service", "")),
        asset=str(payload.get("asset", "")),
        terms_id=int(payload.get("termsId", 0)),
        cumulative=int(payload.get("cumulativeAmount", 0)),
        outcome=outcome,
        reason=reason,
    )


def outcome_counts(outcomes: Iterable[VoucherOutcome]) -> dict[str, int]:
    """Vouchers per outcome, settled, superseded and skipped always present."""
    counts = {jobs.SETTLED: 0, SUPERSEDED: 0, jobs.SKIPPED: 0}
    for o in outcomes:
        counts[o.outcome] = counts.get(o.outcome, 0) + 1
    return counts


def voucher_summary(outcomes: Sequence[VoucherOutcome]) -> str:
    """How many vouchers settled, were superseded and were skipped (with the reasons), in words."""
    counts = outcome_counts(outcomes)
    said = [
        f"{counts.pop(jobs.SETTLED)} settled",
        f"{counts.pop(SUPERSEDED)} superseded (a newer cumulative voucher of the same channel replaced each)",
    ]
    skipped = counts.pop(jobs.SKIPPED)
    reasons: dict[str, int] = {}
    for o in outcomes:
        if o.outcome == jobs.SKIPPED:
            reasons[o.reason] = reasons.get(o.reason, 0) + 1
    why = "; ".join(f"{reason} ({n})" for reason, n in reasons.items())
    said.append(f"{skipped} skipped" + (f": {why}" if why else ""))
    said += [f"{n} {outcome}" for outcome, n in counts.items()]
    return ", ".join(said)


def score_text(score: int, scale: int) -> str:
    """A fixed-point zk score as the decimal it stands for: score / 2^scale, signed."""
    return f"{score / 2**scale:+.4f}"


def eth(wei: int) -> str:
    return f"{wei / ETHER:.6f}"


# ---------------------------------------------------------------------- HTML


def _badge(text: str, kind: str | None = None) -> str:
    kind = kind or {
        "attested": "ok",
        "accept": "ok",
        jobs.SETTLED: "ok",
        SUPERSEDED: "info",
        "registered": "warn",
        "review": "warn",
        "unproven": "warn",
        "pending": "warn",
    }.get(text, "bad")
    return f'<span class="badge {kind}">{html.escape(text)}</span>'


def _ident(value: str) -> str:
    """An identifier whole in the page: CSS may shorten it with an ellipsis, its title holds it,
    one click selects it and copying takes all of it."""
    text = html.escape(value)
    return f'<code class="id" title="{text}">{text}</code>'


def _who(address: str, names: Mapping[str, str]) -> str:
    role = names.get(address.lower())
    return f"{html.escape(role)} {_ident(address)}" if role else _ident(address)


def _curation_figure(curation: Mapping[str, Any]) -> str:
    """The curation head's score where it decided (as a decimal, its fixed point in the title),
    else the prompt alignment the cosine bands decided on."""
    if "score" in curation:
        raw = int(curation["score"])
        return f'head score <span title="fixed point {raw} / 2^{HEAD_SCALE}">{score_text(raw, HEAD_SCALE)}</span>'
    return f"alignment {float(curation.get('alignment', 0)):.3f}"


def _zk(row: AssetRow, scales: Mapping[int, int]) -> str:
    p = row.payload
    if "score" not in p:
        if row.stage == jobs.UNPROVEN:
            return f"{_badge('unproven')} no proof after the prover's retries"
        return '<span class="muted">not proven (not registered)</span>'
    model = p.get("attested_by")
    scale = scales.get(int(model)) if model is not None else None
    verdict = _badge("attested") if p.get("attested_on_chain", row.stage == jobs.ATTESTED) else _badge("unproven")
    if scale is None:
        score = f"score {int(p['score'])} (fixed point, scale unknown)"
    else:
        raw = f"fixed point {int(p['score'])} / 2^{scale}"
        score = f'score <span title="{raw}">{score_text(int(p["score"]), scale)}</span>'
    proven = f"proven verdict {_badge(str(p['verdict']))} " if "verdict" in p else ""
    return f"{verdict} {proven}{score} by model {html.escape(str(model))}"


def _asset_card(row: AssetRow, report: Report) -> str:
    p = row.payload
    if row.png:
        image = f'<img alt="asset" src="data:image/png;base64,{base64.b64encode(row.png).decode()}">'
    else:
        image = '<div class="noimg">no image</div>'
    curation = p.get("curation", {})
    decision = str(curation.get("decision", "-"))
    reason = html.escape(str(curation.get("reason", "")))
    lines: list[tuple[str, str]] = [
        ("prompt", html.escape(p["request"]["prompt"])),
        ("seed", str(p["request"]["seed"])),
        ("status", _badge(row.stage)),
        ("curation", f'<span title="{reason}">{_badge(decision)} {_curation_figure(curation)}</span>'),
        ("zk", _zk(row, report.score_scales)),
        ("image", _ident(str(p.get("cid", "-")))),
        ("sha256", _ident(str(p.get("sha256", "-")))),
    ]
    creator = p.get("registered_creator") or p.get("creator")
    if creator:
        lines.append(("creator", _who(str(creator), report.names)))
    if "market_request" in p:
        delivery = html.escape(str(p.get("delivery", "pending")))
        lines.append(("paid request", f"#{p['market_request']} on chain: {delivery}"))
    if "seq" in p:
        batch = f" in a batch of {p['register_batch']}" if "register_batch" in p else ""
        lines.append(("registered", f"asset #{p['seq']}{batch}"))
    if row.metadata_name is not None:
        lines.append(("name", html.escape(row.metadata_name)))
    if "metadata_uri" in p:
        lines.append(("metadata", _ident(str(p["metadata_uri"]))))
    if row.manifest_ok is not None:
        verdict = "signature valid, bound to these bytes" if row.manifest_ok else "INVALID"
        lines.append(("C2PA", verdict))
    if "manifest_cid" in p:
        lines.append(("sidecar", _ident(str(p["manifest_cid"]))))
    if p.get("error"):
        lines.append(("error", html.escape(str(p["error"]))))
    rows = "".join(f"<tr><td>{k}</td><td>{v}</td></tr>" for k, v in lines)
    return f'<div class="card">{image}<table>{rows}</table></div>'


def _money_chart(report: Report) -> str:
    money = report.money
    if not money:
        return "<p>No money moved.</p>"
    top = max(flow.wei for flow in money) or 1
    rows = []
    for flow in money:
        width = 0.0 if flow.wei <= 0 else max(0.3, 100 * flow.wei / top)
        rows.append(
            f'<tr><td class="label">{html.escape(flow.label)}</td>'
            f'<td class="track"><div class="bar {html.escape(flow.kind)}" style="width:{width:.2f}%"></div></td>'
            f'<td class="amount">{eth(flow.wei)} ETH</td><td class="note">{html.escape(flow.note)}</td></tr>'
        )
    total = sum(flow.wei for flow in money)
    paid_in = sum(wei for _, wei in report.paid_in)
    if report.paid_in:
        check = "adds up to what was paid in" if total == paid_in else f"{paid_in - total} wei unaccounted"
        rows.append(
            f'<tr class="total"><td class="label">total</td><td></td><td class="amount">{eth(total)} ETH</td>'
            f'<td class="note">{_badge(check, "ok" if total == paid_in else "bad")}</td></tr>'
        )
    head = "<tr><th>where it ended</th><th></th><th>ETH</th><th></th></tr>"
    return f'<table class="chart" aria-label="where the money went">{head}{"".join(rows)}</table>'


def _paid_in(report: Report) -> str:
    if not report.paid_in:
        return ""
    parts = ", ".join(f"{html.escape(what)} {eth(wei)}" for what, wei in report.paid_in)
    total = sum(wei for _, wei in report.paid_in)
    return f"<p>Paid in: {parts} ETH; {eth(total)} ETH in all.</p>"


def _escrow(report: Report) -> str:
    if not report.escrow:
        return "<p>No escrow was deposited.</p>"
    head = (
        "<tr><th class='text'>payer</th><th class='text'>service</th><th>deposited</th>"
        "<th>settled to the service</th><th>withdrawn by the payer</th><th>still held</th><th></th></tr>"
    )
    rows = []
    for a in report.escrow:
        off = a.unaccounted
        check = _badge("adds up", "ok") if off == 0 else _badge(f"{off} wei unaccounted", "bad")
        rows.append(
            f"<tr><td class='text'>{_who(a.payer, report.names)}</td>"
            f"<td class='text'>{_who(a.service, report.names)}</td>"
            f"<td>{eth(a.deposited)}</td><td>{eth(a.settled)}</td><td>{eth(a.withdrawn)}</td><td>{eth(a.held)}</td>"
            f"<td>{check}</td></tr>"
        )
    return (
        "<p>A payer deposits with a service; the service settles the payer's signed vouchers against it; "
        "what is not settled stays held for the payer (who may take it back after the withdrawal delay). "
        "In ETH: deposited = settled + withdrawn + still held.</p>"
        f"<table class='money wide'>{head}{''.join(rows)}</table>"
    )


def _vouchers(report: Report) -> str:
    if not report.vouchers:
        return "<p>No vouchers were handed in.</p>"
    head = (
        "<tr><th class='text'>terms</th><th class='text'>asset</th><th class='text'>payer</th>"
        "<th>cumulative ETH</th><th class='text'>outcome</th><th class='text'>why</th></tr>"
    )
    rows = "".join(
        f"<tr><td class='text'>#{v.terms_id}</td><td class='text'>{_ident(v.asset)}</td>"
        f"<td class='text'>{_who(v.payer, report.names)}</td><td>{eth(v.cumulative)}</td>"
        f"<td class='text'>{_badge(v.outcome)}</td><td class='text'>{html.escape(v.reason)}</td></tr>"
        for v in report.vouchers
    )
    return (
        f"<p>{len(report.vouchers)} vouchers: {html.escape(voucher_summary(report.vouchers))}. A voucher is "
        "cumulative: a newer one of the same channel (payer, service, terms) carries the amounts of the ones "
        "before it, which are superseded, not lost.</p>"
        f"<table class='money wide'>{head}{rows}</table>"
    )


def usd(value: float) -> str:
    """Dollars to six places (the run's amounts are fractions of a cent)."""
    return f"{'-' if value < 0 else ''}${abs(value):.6f}"


def _costs(report: Report) -> str:
    if not report.costs:
        return "<p>No cost records.</p>"
    stages = report.cost_stages
    head = "".join(f"<th>{html.escape(s)}</th>" for s in ("asset", "end", *stages, "cost", "revenue", "margin"))
    rows = []
    for row in report.costs:
        cells = "".join(f"<td class='amount'>{usd(row.by_stage.get(s, 0.0))}</td>" for s in stages)
        rows.append(
            f"<tr><td class='text'>{html.escape(row.label)}</td><td>{html.escape(row.stage)}</td>{cells}"
            f"<td class='amount'>{usd(row.cost)}</td><td class='amount'>{usd(row.revenue)}</td>"
            f"<td class='amount {'ok' if row.margin >= 0 else 'bad'}'>{usd(row.margin)}</td></tr>"
        )
    n = len(report.costs)
    totals = "".join(
        f"<td class='amount'>{usd(sum(r.by_stage.get(s, 0.0) for r in report.costs) / n)}</td>" for s in stages
    )
    cost, revenue = sum(r.cost for r in report.costs) / n, sum(r.revenue for r in report.costs) / n
    rows.append(
        f"<tr class='total'><td class='text'>mean of {n} assets</td><td></td>{totals}<td class='amount'>{usd(cost)}"
        f"</td><td class='amount'>{usd(revenue)}</td><td class='amount'>{usd(revenue - cost)}</td></tr>"
    )
    return (
        f"<p>{html.escape(report.cost_prices)}</p>"
        f"<table class='money costs' aria-label='cost per asset'><tr>{head}</tr>{''.join(rows)}</table>"
    )


def render(report: Report) -> str:
    summary = "".join(
        f"<tr><td>{html.escape(k)}</td><td class='text'>{html.escape(v)}</td></tr>" for k, v in report.summary
    )
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in report.notes)
    cards = "".join(_asset_card(row, report) for row in report.assets)
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(report.title)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{html.escape(report.title)}</h1><p class='sub'>Every figure on this page was read back from the "
        "chain, the journal and the content store after the run.</p>"
        f"<h2>Run</h2><table class='money run'>{summary}</table>"
        f"<h2>Where the money went</h2>{_paid_in(report)}{_money_chart(report)}"
        f"<h2>Escrow</h2>{_escrow(report)}"
        f"<h2>Vouchers</h2>{_vouchers(report)}"
        f"<h2>Cost and margin per asset</h2>{_costs(report)}"
        f"<h2>Assets</h2><div class='grid'>{cards}</div>"
        f"<h2>Notes</h2><ul>{notes}</ul></body></html>"
    )
