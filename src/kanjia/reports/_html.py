"""A report as one self-contained HTML page: inline CSS, tables, the chart as an
embedded PNG (without the ``charts`` extra the page says so in place of the chart).
Nothing is fetched from anywhere."""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from typing import Any

from kanjia._extras import MissingExtra
from kanjia.reports._chart import breakeven_chart, report_chart

__all__ = ["render_html"]

_CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1100px;
       color: #222; padding: 0 1em; }
h1 { font-size: 1.4em; } h2 { font-size: 1.1em; margin-top: 1.6em; }
table { border-collapse: collapse; margin: .5em 0; }
th, td { padding: .25em .7em; border-bottom: 1px solid #ddd; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f4f4f4; } .meta { color: #666; } img { max-width: 100%; }
"""

_TITLES = {"spend": "Spend", "spend_by_day": "Spend by day",
           "savings": "Savings from routing", "reprice": "Price-war replay",
           "breakeven": "Self-hosting break-even"}


def _e(value: Any) -> str:
    return html.escape(str(value))


def _n(value: Any, digits: int = 6) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return _e(value)


def _money(m: dict[str, Any] | None) -> str:
    if not m:
        return "-"
    other = [f"{_n(v)} {c}" for c, v in m.get("amounts", {}).items() if c != m["currency"]]
    extra = f" ({', '.join(other)})" if other else ""
    share = m.get("share")
    pct = f", {share:.1%}" if isinstance(share, float) else ""
    return f"<b>{_n(m['amount'])} {_e(m['currency'])}</b>{extra}{pct}"


def _table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    out = ["<table><tr>", *(f"<th>{_e(h)}</th>" for h in head), "</tr>"]
    for row in rows:
        out.append("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>")
    out.append("</table>")
    return "".join(out)


def _rows(report: dict[str, Any]) -> str:
    kind, by = report["kind"], report.get("by", "model")
    rows = report.get("rows", [])
    if kind == "spend":
        return _table([by, "requests", "errors", "tokens", "cost", "p50 ms", "mean ms"],
                      [[_e(r[by]), _n(r["requests"]), _n(r["errors"]), _n(r["tokens"]),
                        _money(r), _n(r["latency_p50_ms"], 1), _n(r["latency_mean_ms"], 1)]
                       for r in rows])
    if kind == "savings":
        return _table([by, "requests", "tokens", "cost", "baseline", "saving"],
                      [[_e(r[by]), _n(r["requests"]), _n(r["tokens"]), _money(r),
                        _money(r["baseline"]), _money(r["saving"])] for r in rows])
    if kind == "reprice":
        return _table([by, "requests", "tokens", "ledger cost", "re-priced", "difference"],
                      [[_e(r[by]), _n(r["requests"]), _n(r["tokens"]), _money(r["actual"]),
                        _money(r), _money(r["difference"])] for r in rows])
    if kind == "spend_by_day":
        names = list(report["series"])
        return _table(["day", *names],
                      [[_e(d), *(_n(report["series"][k][i]) for k in names)]
                       for i, d in enumerate(report["day"])])
    return ""


def _summary(report: dict[str, Any]) -> str:
    kind = report["kind"]
    lines: list[tuple[str, str]] = []
    if kind == "breakeven":
        m = report["monthly"]
        lines = [("model", _e(report["model"])), ("API compared", _e(report["api_model"])),
                 ("traffic", f"{_n(report['traffic']['tokens_per_day'], 0)} tokens/day "
                             f"({_e(report['traffic']['source'])})"),
                 ("API per month", _money(m["api"])),
                 ("self-hosted per month", f"{_money(m['self_host'])}, {m['gpus']} GPU(s)"),
                 ("cheaper", _e(m["cheaper"])),
                 ("break-even", f"{_n(report['breakeven_tokens_per_day'], 0)} tokens/day"),
                 ("always cheaper above",
                  f"{_n(report['self_host_always_cheaper_above_tokens_per_day'], 0)} "
                  "tokens/day")]
    else:
        t = report["total"]
        label = "re-priced total" if kind == "reprice" else "total"
        lines.append((label, f"{_money(t)}; {_n(t['requests'])} requests, "
                             f"{_n(t['tokens'])} tokens"))
        for key, name in (("baseline_total", "baseline total"), ("saving", "saving"),
                          ("actual_total", "ledger total"), ("difference", "difference")):
            if key in report:
                lines.append((name, _money(report[key])))
    return _table(["", ""], [[_e(k), v] for k, v in lines])


def _meta(report: dict[str, Any]) -> str:
    keys = ("since", "until", "by", "currency", "baseline", "at", "on_vendor")
    parts = [f"{k}: {_e(report[k])}" for k in keys if report.get(k) is not None]
    return f"<p class='meta'>{' · '.join(parts)}</p>"


def render_html(report: dict[str, Any]) -> str:
    """The page for any report dict of ``kanjia.reports``."""
    kind = report.get("kind", "spend")
    title = _TITLES.get(kind, "Report")
    no_chart = None
    try:
        png = breakeven_chart(report) if kind == "breakeven" else report_chart(report)
    except MissingExtra as exc:
        png, no_chart = None, exc.message
    body = [f"<h1>kanjia: {_e(title)}</h1>", _meta(report), _summary(report)]
    if no_chart is not None:
        body.append(f"<p class='meta'>no chart: {_e(no_chart)}</p>")
    if png is not None:
        data = base64.b64encode(png).decode()
        body.append(f"<p><img alt='chart' src='data:image/png;base64,{data}'></p>")
    subs = report.get("substitutions")
    if subs:
        body.append("<h2>Substitutions</h2>")
        body.append(_table(["model", "priced as", "requests", "reason"],
                           [[_e(s["model"]), _e(s["used"]), _n(s.get("requests")),
                             _e(s["reason"])] for s in subs]))
    rows = _rows(report)
    if rows:
        body += ["<h2>Rows</h2>", rows]
    notes = report.get("notes")
    if notes:
        body.append("<h2>Notes</h2><ul>" + "".join(f"<li>{_e(n)}</li>" for n in notes)
                    + "</ul>")
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>kanjia {_e(title)}</title><style>{_CSS}</style></head><body>"
            + "\n".join(body) + "</body></html>\n")
