"""The price war as a picture: price per 1M tokens over time, one line per family.

Each model with a ``family`` in the catalog draws one step line of its blended base
price (3 input : 1 output tokens) in one currency, on a log scale. Free periods sit
on a "free" floor band. Uses matplotlib's object API only (no pyplot state).
"""

from __future__ import annotations

import html
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any

from kanjia._extras import require
from kanjia.catalog._catalog import Catalog
from kanjia.catalog._model import ModelEntry, PricePeriod

__all__ = [
    "CHART_START",
    "FREE_FLOOR",
    "VENDOR_COLORS",
    "Series",
    "all_series",
    "family_series",
    "price_cuts",
    "render_chart",
    "shade",
]

CHART_START = date(2024, 3, 1)
#: where free periods are drawn, per display currency
FREE_FLOOR = {"CNY": 0.01, "USD": 0.0015}
VENDOR_COLORS = {
    "deepseek": "#1f4fd1", "qwen": "#ff7f0e", "zhipu": "#2ca02c", "moonshot": "#9467bd",
    "minimax": "#8c564b", "doubao": "#d62728", "qianfan": "#17becf", "hunyuan": "#008080",
    "spark": "#e377c2", "siliconflow": "#bcbd22", "openai": "#222222",
    "anthropic": "#b5651d", "gemini": "#7f7f7f", "openrouter": "#5b5b9b",
}
STYLES = ("-", "--", "-.", ":")


@dataclass(frozen=True, slots=True)
class Series:
    family: str
    model: ModelEntry
    #: step points (start, blended price or None for "no price"), then the end point
    points: tuple[tuple[datetime, float | None], ...]
    free_from: tuple[datetime, ...]


def _blended(period: PricePeriod) -> Decimal:
    out = period.output_mtok if period.output_mtok is not None else period.input_mtok
    return (3 * period.input_mtok + out) / 4


def family_series(catalog: Catalog, model: ModelEntry, currency: str, start: date,
                  end: date) -> Series:
    t0 = datetime.combine(start, time(0), UTC)
    t1 = datetime.combine(end, time(23, 59), UTC)
    points: list[tuple[datetime, float | None]] = []
    free_from: list[datetime] = []
    for period in model.periods:
        begin = max(period.start or t0, t0)
        if begin > t1:
            break
        if period.free:
            value: float | None = FREE_FLOOR[currency]
            free_from.append(begin)
        else:
            price = catalog.fx.convert(_blended(period), period.currency, currency, begin.date())
            value = float(price)
        points.append((begin, value))
        if period.end is not None and period.end < t1:
            points.append((max(period.end, t0), None))
    if points:
        points.append((t1, points[-1][1]))
    return Series(model.family or model.key, model, tuple(points), tuple(free_from))


def all_series(catalog: Catalog, vendors: Sequence[str], currency: str,
                end: date) -> list[Series]:
    found = []
    for model in catalog.models:
        if model.family is None or (vendors and model.vendor not in vendors):
            continue
        s = family_series(catalog, model, currency, CHART_START, end)
        if s.points:
            found.append(s)
    # mainland vendors first, then by vendor, keeping the files' model order
    order = {v: i for i, v in enumerate(VENDOR_COLORS)}
    found.sort(key=lambda s: (catalog.vendors[s.model.vendor].region != "cn",
                              order.get(s.model.vendor, len(order))))
    return found


def shade(color: str, n: int) -> str:
    """The n-th shade of a vendor colour (0 = the colour itself, then darker/lighter)."""
    r, g, b = (int(color[i:i + 2], 16) for i in (1, 3, 5))
    k = (0.0, -0.35, 0.35, -0.6, 0.55)[n % 5]
    if k < 0:
        r, g, b = (int(c * (1 + k)) for c in (r, g, b))
    else:
        r, g, b = (int(c + (255 - c) * k) for c in (r, g, b))
    return f"#{r:02x}{g:02x}{b:02x}"


def render_chart(catalog: Catalog, out: Path, vendors: Sequence[str] = (),
                 currency: str = "CNY", today: date | None = None) -> int:
    """Draw the chart to ``out`` (.png, .svg or .html); returns the number of lines."""
    require("matplotlib", "charts", "drawing the price chart")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.dates import DateFormatter, MonthLocator
    from matplotlib.figure import Figure
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    end = today or datetime.now(UTC).date()
    series = all_series(catalog, vendors, currency, end)
    fig = Figure(figsize=(16, 9.5), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    floor = FREE_FLOOR[currency]
    free_lines = [s for s in series if s.free_from]
    style_no: dict[str, int] = {}
    for s in series:
        vendor = s.model.vendor
        n = style_no.get(vendor, 0)
        style_no[vendor] = n + 1
        # free lines get their own height inside the "free" band so they stay apart
        lift = 1.0
        if s.free_from and len(free_lines) > 1:
            lift = 10 ** (-0.16 + 0.32 * free_lines.index(s) / (len(free_lines) - 1))
        xs: Any = [p[0] for p in s.points]   # matplotlib plots datetimes (typed as floats)
        ys = [math.nan if p[1] is None else (p[1] * lift if p[1] == floor else p[1])
              for p in s.points]
        region = catalog.vendors[vendor].region
        ax.step(xs, ys, where="post", color=shade(VENDOR_COLORS.get(vendor, "#444444"), n),
                linestyle=STYLES[n % len(STYLES)], linewidth=2.4 if region == "cn" else 1.5,
                label=f"{s.family}  [{vendor}]")
        _annotate_cuts(ax, s, floor, lift)
    ax.set_yscale("log")
    band = 10 ** 0.22
    ax.axhspan(floor / band, floor * band, color="#e8f5e9", zorder=0)
    ax.set_ylim(floor / 2.2, None)
    ticks = [floor, *(10.0 ** k for k in range(-3, 4) if 10.0 ** k > floor * 3)]
    ax.yaxis.set_major_locator(FixedLocator(ticks))
    ax.yaxis.set_minor_locator(NullLocator())
    ax.yaxis.set_major_formatter(FuncFormatter(
        lambda v, _: "free" if abs(v - floor) < floor * 0.01 else f"{v:g}"))
    ax.xaxis.set_major_locator(MonthLocator(bymonth=(1, 4, 7, 10)))  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_formatter(DateFormatter("%Y-%m"))  # type: ignore[no-untyped-call]
    lo: Any = datetime.combine(CHART_START, time(0), UTC)
    hi: Any = datetime.combine(end, time(23, 59), UTC)
    ax.set_xlim(lo, hi)
    ax.grid(True, which="major", alpha=0.35)
    ax.set_ylabel(f"{currency} per 1M tokens, blended 3 input : 1 output (log scale)")
    ax.set_title(f"The LLM price war, {CHART_START:%Y-%m} to {end:%Y-%m}: list price per 1M "
                 f"tokens in {currency}", fontsize=15, loc="left")
    ax.set_xlabel("Base prices: off-peak discounts and long-prompt tiers are not drawn. Thick "
                  "lines: mainland-China vendors. Prices in another currency are converted at "
                  "the dated rates of catalog/data/fx.toml.\nSources and evidence levels: "
                  "`kanjia prices history MODEL`.", fontsize=8.5, color="#555555", loc="left")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8.8, frameon=False)
    out = Path(out)
    suffix = out.suffix.lower()
    if suffix == ".html":
        buf = io.StringIO()
        fig.savefig(buf, format="svg")
        out.write_text(_html(buf.getvalue(), series, currency), encoding="utf-8")
    else:
        fig.savefig(out, format=suffix.lstrip(".") or "png")
    return len(series)


def price_cuts(s: Series, floor: float) -> list[tuple[int, str]]:
    """The cuts worth a label: (index into ``s.points``, text) for each cut of half or
    more ("−97%") and each moment a priced model turns free ("free")."""
    out = []
    prev: float | None = None
    for i, (_, value) in enumerate(s.points[:-1]):
        if value is not None and prev is not None and prev > floor:
            if value == floor:
                out.append((i, "free"))
            elif value <= prev * 0.5:
                out.append((i, f"−{(1 - value / prev) * 100:.0f}%"))
        prev = value if value is not None else prev
    return out


def _annotate_cuts(ax: object, s: Series, floor: float, lift: float) -> None:
    """Label cuts of half or more ("-97%") and the moment a model turns free."""
    for i, text in price_cuts(s, floor):
        when, value = s.points[i]
        assert value is not None
        at = value * lift if value == floor else value
        ax.annotate(text, (when, at), xytext=(3, -11),  # type: ignore[attr-defined]
                    textcoords="offset points", fontsize=7.5, color="#333333")


def _html(svg: str, series: list[Series], currency: str) -> str:
    rows = []
    for s in series:
        for when, value in s.points[:-1]:
            shown = "—" if value is None else ("free" if when in s.free_from else f"{value:g}")
            rows.append(f"<tr><td>{html.escape(s.family)}</td><td>{html.escape(s.model.key)}"
                        f"</td><td>{when:%Y-%m-%d}</td><td>{shown}</td></tr>")
    svg_body = svg[svg.find("<svg"):]
    return ("<!doctype html><html><head><meta charset='utf-8'><title>The LLM price war"
            "</title><style>body{font-family:sans-serif;margin:2em}table{border-collapse:"
            "collapse}td,th{border:1px solid #ccc;padding:2px 8px;font-size:13px}</style>"
            f"</head><body>{svg_body}<h2>Data ({currency} per 1M tokens, blended 3:1)</h2>"
            "<table><tr><th>family</th><th>model</th><th>from</th><th>price</th></tr>"
            + "".join(rows) + "</table></body></html>")
