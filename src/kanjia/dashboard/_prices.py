"""The price-war panel: list price per 1M tokens over time, one line per model family,
grouped for the legend by vendor ("DeepSeek", "Alibaba Qwen (DashScope)", ...).

The series are the ones ``kanjia prices chart`` draws (``all_series``: blended
3 input : 1 output base price, converted at dated rates, free periods on a floor),
with the same cut labels (``price_cuts``: "−75%", "free"), shaped for the browser:
millisecond timestamps, ``None`` for "no price".

A legend of thirty lines in repeating colours reads as noise, so lines are grouped
into at most ``MAX_GROUPS`` vendor groups with one distinct colour each (lines of one
group differ by dash pattern); the groups with the fewest lines and cuts share one
grey "other" group, hidden until the reader turns it on.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

# the chart's series, order and cut labels are the ones `kanjia prices chart` draws
from kanjia.catalog import (
    CHART_START,
    FREE_FLOOR,
    VENDOR_COLORS,
    Catalog,
    Series,
    all_series,
    price_cuts,
)

__all__ = ["MAX_GROUPS", "OTHER_GROUP", "PALETTE", "price_war"]

#: distinct colours, told apart on white and by most colour-blind readers in pairs; the
#: CLI chart's vendor colour is kept when it is one of them
PALETTE = ("#1f4fd1", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#17becf", "#222222")
OTHER_COLOR = "#9a9a9a"
OTHER_GROUP = "other"
#: vendor groups drawn in colour; the rest are folded into "other"
MAX_GROUPS = len(PALETTE)
#: Chart.js dash patterns, one per line of the same group
_DASHES: tuple[tuple[int, ...], ...] = ((), (7, 4), (8, 3, 2, 3), (2, 3))


def _ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


def _groups(series: Sequence[Series], floor: float) -> list[str]:
    """The vendors drawn as their own group: most lines, then most cuts, then first drawn."""
    weight: dict[str, tuple[int, int, int]] = {}
    for i, s in enumerate(series):
        lines, cuts, first = weight.get(s.model.vendor, (0, 0, i))
        weight[s.model.vendor] = (lines + 1, cuts + len(price_cuts(s, floor)), first)
    ranked = sorted(weight, key=lambda v: (-weight[v][0], -weight[v][1], weight[v][2]))
    if len(ranked) > MAX_GROUPS:
        ranked = ranked[:MAX_GROUPS - 1]  # one colour is left for "other"... as grey
    return ranked


def _colors(vendors: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for v in vendors:  # the CLI chart's colour first, when it is a distinct one
        own = VENDOR_COLORS.get(v)
        if own in PALETTE and own not in out.values():
            out[v] = own
    free = [c for c in PALETTE if c not in out.values()]
    for v in vendors:
        if v not in out:
            out[v] = free.pop(0)
    return out


def price_war(catalog: Catalog, currency: str, today: date | None = None) -> dict[str, Any]:
    end = today or datetime.now(UTC).date()
    floor = FREE_FLOOR[currency]
    series = all_series(catalog, (), currency, end)
    named = _groups(series, floor)
    colors = _colors(named)
    groups: dict[str, dict[str, Any]] = {}
    out = []
    for s in series:
        vendor = s.model.vendor
        gid = vendor if vendor in colors else OTHER_GROUP
        group = groups.get(gid)
        if group is None:
            name = catalog.vendors[vendor].name if gid != OTHER_GROUP else "other vendors"
            group = groups[gid] = {"id": gid, "name": name,
                                   "color": colors.get(gid, OTHER_COLOR),
                                   "hidden": gid == OTHER_GROUP, "lines": 0, "vendors": []}
        if vendor not in group["vendors"]:
            group["vendors"].append(vendor)
        n = group["lines"]
        group["lines"] = n + 1
        region = catalog.vendors[vendor].region
        out.append({
            "label": f"{s.family} [{vendor}]", "family": s.family, "model": s.model.key,
            "vendor": vendor, "region": region, "group": gid, "color": group["color"],
            "dash": list(_DASHES[n % len(_DASHES)]), "width": 2.4 if region == "cn" else 1.4,
            "points": [[_ms(when), value] for when, value in s.points],
            "free_from": [_ms(when) for when in s.free_from],
            "cuts": [{"index": i, "at": _ms(s.points[i][0]), "text": text}
                     for i, text in price_cuts(s, floor)],
        })
    order = [*named, OTHER_GROUP]
    return {"currency": currency, "floor": floor,
            "start": _ms(datetime.combine(CHART_START, datetime.min.time(), UTC)),
            "end": _ms(datetime.combine(end, datetime.max.time(), UTC)), "series": out,
            "groups": sorted(groups.values(), key=lambda g: order.index(g["id"]))}
