"""The price-war panel: list price per 1M tokens over time, one line per model family.

The series are the ones ``kanjia prices chart`` draws (``all_series``: blended
3 input : 1 output base price, converted at dated rates, free periods on a floor),
shaped for the browser: millisecond timestamps, ``None`` for "no price".
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

# the chart's series, order and colours are the ones `kanjia prices chart` draws
from kanjia.catalog import CHART_START, FREE_FLOOR, VENDOR_COLORS, Catalog, all_series, shade

__all__ = ["price_war"]

#: Chart.js dash patterns, one per model of the same vendor (as the PNG's line styles)
_DASHES: tuple[tuple[int, ...], ...] = ((), (7, 4), (8, 3, 2, 3), (2, 3))


def _ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


def price_war(catalog: Catalog, currency: str, today: date | None = None) -> dict[str, Any]:
    end = today or datetime.now(UTC).date()
    out = []
    seen: dict[str, int] = {}
    for s in all_series(catalog, (), currency, end):
        vendor = s.model.vendor
        n = seen.get(vendor, 0)
        seen[vendor] = n + 1
        region = catalog.vendors[vendor].region
        out.append({
            "label": f"{s.family} [{vendor}]", "family": s.family, "model": s.model.key,
            "vendor": vendor, "region": region,
            "color": shade(VENDOR_COLORS.get(vendor, "#444444"), n),
            "dash": list(_DASHES[n % len(_DASHES)]), "width": 2.4 if region == "cn" else 1.4,
            "points": [[_ms(when), value] for when, value in s.points],
            "free_from": [_ms(when) for when in s.free_from],
        })
    return {"currency": currency, "floor": FREE_FLOOR[currency],
            "start": _ms(datetime.combine(CHART_START, datetime.min.time(), UTC)),
            "end": _ms(datetime.combine(end, datetime.max.time(), UTC)), "series": out}
