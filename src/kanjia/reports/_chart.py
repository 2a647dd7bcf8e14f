"""Charts of the reports as PNG bytes (matplotlib's object API only: no pyplot state)."""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

from kanjia._extras import require

__all__ = ["breakeven_chart", "report_chart"]

_API = "#1f4fd1"
_SELF = "#d62728"
_ACTUAL = "#2ca02c"


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    return buf.getvalue()


def _figure(width: float, height: float) -> Any:
    require("matplotlib", "charts", "drawing a chart")
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height))


def breakeven_chart(report: dict[str, Any], out: Path | None = None) -> bytes:
    """Monthly cost against tokens/day: the API as a line, self-hosting as steps (whole
    GPUs), the break-even and the given traffic marked. Written to ``out`` if given."""
    cur = report["currency"]
    days = report["days_per_month"]
    per_token = report["api"]["blended_mtok"] / 1e6
    gpu_month = report["self_host"]["gpu_hourly"]["amount"] * 24 * days
    cap = report["self_host"]["tokens_per_day_per_gpu"]
    traffic = report["traffic"]["tokens_per_day"]
    first = report["breakeven_tokens_per_day"]
    top = max(4 * cap, 1.5 * traffic, 2.5 * (first or 0), 1.0)
    xs = [top * i / 600 for i in range(601)]
    mil = [x / 1e6 for x in xs]
    fig = _figure(8, 4.6)
    ax = fig.add_subplot()
    ax.plot(mil, [x * per_token * days for x in xs], color=_API,
            label=f"API ({report['api_model']})")
    ax.step(mil, [max(1, math.ceil(x / cap - 1e-9)) * gpu_month for x in xs], where="post",
            color=_SELF, label=f"self-hosted ({report['self_host']['tokens_per_second']:g} "
                               f"tok/s per GPU at {report['self_host']['utilization']:.0%})")
    if first is not None:
        ax.axvline(first / 1e6, color="#555555", linestyle=":",
                   label=f"break-even {first / 1e6:,.1f}M/day")
    if traffic:
        ax.axvline(traffic / 1e6, color=_ACTUAL, linestyle="--",
                   label=f"traffic {traffic / 1e6:,.1f}M/day")
    ax.set_xlabel("million tokens per day")
    ax.set_ylabel(f"{cur} per month")
    ax.set_title(f"Self-hosting {report['model']} vs its API")
    ax.set_xlim(0, top / 1e6)
    ax.set_ylim(bottom=0)
    ax.ticklabel_format(style="plain", axis="both")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    data = _png(fig)
    if out is not None:
        Path(out).write_bytes(data)
    return data


def report_chart(report: dict[str, Any]) -> bytes | None:
    """A bar chart of a spend, savings or re-pricing report (None when it has no rows)."""
    kind = report.get("kind")
    if kind == "spend_by_day":
        return _stacked(report)
    rows = report.get("rows") or []
    if not rows:
        return None
    by = report["by"]
    rows = rows[:15]
    labels = [str(r[by]) for r in rows][::-1]
    fig = _figure(8, 1.2 + 0.35 * len(rows))
    ax = fig.add_subplot()
    ys = list(range(len(rows)))
    if kind == "savings":
        pairs = [("ledger cost", _ACTUAL, [r["amount"] for r in rows]),
                 (f"all on {report['baseline']}", _API, [r["baseline"]["amount"] for r in rows])]
    elif kind == "reprice":
        pairs = [("ledger cost", _ACTUAL, [r["actual"]["amount"] for r in rows]),
                 ("re-priced", _SELF, [r["amount"] for r in rows])]
    else:
        pairs = [("cost", _ACTUAL, [r["amount"] for r in rows])]
    height = 0.8 / len(pairs)
    for i, (name, color, values) in enumerate(pairs):
        ax.barh([y + i * height for y in ys], values[::-1], height=height, color=color,
                label=name)
    ax.set_yticks([y + height * (len(pairs) - 1) / 2 for y in ys], labels, fontsize=8)
    ax.set_xlabel(report["currency"])
    ax.grid(axis="x", alpha=0.3)
    if len(pairs) > 1:
        ax.legend(fontsize=8)
    return _png(fig)


def _stacked(report: dict[str, Any]) -> bytes | None:
    days = report["day"]
    if not days:
        return None
    fig = _figure(9, 4.5)
    ax = fig.add_subplot()
    bottom = [0.0] * len(days)
    for name, values in list(report["series"].items())[:12]:
        ax.bar(range(len(days)), values, bottom=bottom, label=name)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    step = max(1, len(days) // 12)
    ax.set_xticks(range(0, len(days), step), days[::step], rotation=45, fontsize=7)
    ax.set_ylabel(report["currency"])
    ax.legend(fontsize=7, ncol=2)
    return _png(fig)
