"""The demo's report: one self-contained HTML page (images inline, no network) with each asset's
provenance, curation and zk status, and a chart of where the money went."""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

_STYLE = """
body{font:14px system-ui,sans-serif;margin:2em;color:#222;background:#fafafa}
h1{margin-bottom:.2em} .sub{color:#666;margin-top:0}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(330px,1fr));gap:1em}
.card{background:#fff;border:1px solid #ddd;border-radius:8px;padding:.8em;display:flex;gap:.8em}
.card img{width:128px;height:128px;image-rendering:pixelated;border:1px solid #ccc}
.card table{font-size:12px;border-collapse:collapse} .card td{padding:1px 4px;vertical-align:top}
.card td:first-child{color:#666;white-space:nowrap} code{font-size:11px;word-break:break-all}
.badge{display:inline-block;padding:1px 6px;border-radius:9px;font-size:11px;color:#fff}
.ok{background:#2a7} .warn{background:#c80} .bad{background:#c33}
table.money{border-collapse:collapse;margin:1em 0}
table.money td,table.money th{padding:3px 10px;border-bottom:1px solid #ddd;text-align:right}
table.money td:first-child,table.money th:first-child{text-align:left}
"""


@dataclass(frozen=True)
class AssetRow:
    key: str
    stage: str
    payload: Mapping[str, Any]
    png: bytes | None
    manifest_ok: bool | None = None


@dataclass
class Report:
    title: str
    summary: list[tuple[str, str]] = field(default_factory=list)
    assets: list[AssetRow] = field(default_factory=list)
    money: list[tuple[str, int]] = field(default_factory=list)
    """(recipient, wei) in the order to chart."""
    notes: list[str] = field(default_factory=list)


def _badge(stage: str) -> str:
    kind = {"attested": "ok", "registered": "warn", "review": "warn", "rejected": "bad"}.get(stage, "bad")
    return f'<span class="badge {kind}">{html.escape(stage)}</span>'


def _short(text: str, keep: int = 18) -> str:
    return text if len(text) <= 2 * keep else f"{text[:keep]}…{text[-6:]}"


def _asset_card(row: AssetRow) -> str:
    p = row.payload
    image = f'<img alt="asset" src="data:image/png;base64,{base64.b64encode(row.png).decode()}">' if row.png else ""
    curation = p.get("curation", {})
    lines: list[tuple[str, str]] = [
        ("prompt", html.escape(p["request"]["prompt"])),
        ("seed", str(p["request"]["seed"])),
        ("status", _badge(row.stage)),
        (
            "curation",
            f"{html.escape(str(curation.get('decision', '-')))}, alignment {curation.get('alignment', 0):.3f}",
        ),
        ("image", f"<code>{html.escape(_short(str(p.get('cid', '-'))))}</code>"),
        ("sha256", f"<code>{html.escape(_short(str(p.get('sha256', '-'))))}</code>"),
    ]
    if "market_request" in p:
        delivery = html.escape(str(p.get("delivery", "pending")))
        lines.append(("paid request", f"#{p['market_request']} on chain: {delivery}"))
    if "seq" in p:
        lines.append(("registered", f"asset #{p['seq']} (batch {p.get('batch_id', '-')})"))
    if "score" in p:
        lines.append(("zk", f"attested by model {p.get('attested_by')}, score {p['score']}"))
    if "metadata_uri" in p:
        lines.append(("metadata", f"<code>{html.escape(_short(str(p['metadata_uri'])))}</code>"))
    if row.manifest_ok is not None:
        lines.append(("C2PA", "signature valid, bound to these bytes" if row.manifest_ok else "INVALID"))
    if p.get("error"):
        lines.append(("error", html.escape(str(p["error"]))))
    rows = "".join(f"<tr><td>{k}</td><td>{v}</td></tr>" for k, v in lines)
    return f'<div class="card">{image}<table>{rows}</table></div>'


def _money_chart(money: Sequence[tuple[str, int]]) -> str:
    if not money:
        return "<p>No money moved.</p>"
    top = max(amount for _, amount in money) or 1
    width, bar_h, label_w = 640, 24, 230
    height = len(money) * (bar_h + 8) + 8
    bars = []
    for i, (name, amount) in enumerate(money):
        y = 8 + i * (bar_h + 8)
        w = max(1, int((width - label_w - 120) * amount / top))
        bars.append(
            f'<text x="0" y="{y + 16}" font-size="12">{html.escape(name)}</text>'
            f'<rect x="{label_w}" y="{y}" width="{w}" height="{bar_h}" fill="#3a7bd5"/>'
            f'<text x="{label_w + w + 6}" y="{y + 16}" font-size="12">{amount / 1e18:.6f} ETH</text>'
        )
    return f'<svg width="{width}" height="{height}" role="img" aria-label="where the money went">{"".join(bars)}</svg>'


def render(report: Report) -> str:
    summary = "".join(f"<tr><td>{html.escape(k)}</td><td>{html.escape(v)}</td></tr>" for k, v in report.summary)
    money_rows = "".join(
        f"<tr><td>{html.escape(name)}</td><td>{amount / 1e18:.6f}</td></tr>" for name, amount in report.money
    )
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in report.notes)
    cards = "".join(_asset_card(row) for row in report.assets)
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(report.title)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{html.escape(report.title)}</h1><p class='sub'>Every figure on this page was read back from the "
        "chain, the journal and the content store after the run.</p>"
        f"<h2>Run</h2><table class='money'>{summary}</table>"
        f"<h2>Where the money went</h2>{_money_chart(report.money)}"
        f"<table class='money'><tr><th>recipient</th><th>ETH</th></tr>{money_rows}</table>"
        f"<h2>Assets</h2><div class='grid'>{cards}</div>"
        f"<h2>Notes</h2><ul>{notes}</ul></body></html>"
    )
