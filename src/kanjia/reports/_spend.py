"""Spend, tokens, requests, errors and latency from the ledger, grouped, in CNY and USD.

Amounts are what the ledger recorded (the vendor cost at the price in force when each
request was made), summed in SQL per (group, billing currency, day) and converted at
each day's exchange rate. Latency is the mean and the median of every request.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from kanjia.catalog import Catalog
from kanjia.metering.store import Database
from kanjia.reports._amounts import Amounts, check_currency
from kanjia.reports._query import check_by, label_of, where
from kanjia.reports._shape import window

__all__ = ["spend_by_day", "spend_report"]

_NANO = Decimal(10) ** 9


@dataclass(slots=True)
class _Row:
    label: str
    amounts: Amounts = field(default_factory=Amounts)
    requests: int = 0
    errors: int = 0
    input_tokens: int = 0
    cached_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    latency_sum: float = 0.0
    latency_p50: float | None = None

    def add(self, other: _Row) -> None:
        self.amounts.add(other.amounts)
        self.requests += other.requests
        self.errors += other.errors
        self.input_tokens += other.input_tokens
        self.cached_tokens += other.cached_tokens
        self.output_tokens += other.output_tokens
        self.reasoning_tokens += other.reasoning_tokens
        self.latency_sum += other.latency_sum

    def json(self, by: str, currency: str) -> dict[str, Any]:
        mean = self.latency_sum / self.requests if self.requests else None
        return {by: self.label, **self.amounts.json(currency), "requests": self.requests,
                "errors": self.errors, "tokens": self.input_tokens + self.output_tokens,
                "input_tokens": self.input_tokens, "cached_tokens": self.cached_tokens,
                "output_tokens": self.output_tokens, "reasoning_tokens": self.reasoning_tokens,
                "latency_p50_ms": _ms(self.latency_p50), "latency_mean_ms": _ms(mean)}


def _ms(value: float | None) -> float | None:
    return None if value is None else round(float(value), 3)


async def _parts(db: Database, catalog: Catalog, since: date | None, until: date | None,
                 by: str) -> list[tuple[str, date, _Row]]:
    """(label, day, row) per group and day, amounts converted at that day's rate."""
    cols = check_by(by)
    keys = ", ".join(dict.fromkeys((*cols, "currency", "day")))
    clause, args = where(since, until)
    sql = (f"SELECT {', '.join(cols)}, currency, day, COUNT(*), "
           "SUM(CASE WHEN status >= 400 THEN 1 ELSE 0 END), SUM(input_tokens), "
           "SUM(cached_tokens), SUM(output_tokens), SUM(reasoning_tokens), SUM(cost_nano), "
           f"SUM(latency_ms) FROM usage_records WHERE {clause} GROUP BY {keys}")
    n = len(cols)
    out: list[tuple[str, date, _Row]] = []
    for r in await db.fetch(sql, args):
        day = date.fromisoformat(r[n + 1])
        cost = Decimal(int(r[n + 8] or 0)) / _NANO
        count, errors, inp, cached, outp, reasoning = (int(v or 0) for v in r[n + 2:n + 8])
        row = _Row(label_of(by, r[:n]), Amounts.of(catalog.fx, cost, r[n], day), count, errors,
                   inp, cached, outp, reasoning, float(r[n + 9] or 0.0))
        out.append((row.label, day, row))
    return out


async def _medians(db: Database, since: date | None, until: date | None,
                   by: str) -> dict[str, float]:
    """The median latency per group (the mean of the two middle values when even)."""
    exprs = check_by(by)
    cols = ", ".join(exprs)
    named = ", ".join(f"{e} AS g{i}" for i, e in enumerate(exprs))
    names = ", ".join(f"g{i}" for i in range(len(exprs)))
    clause, args = where(since, until)
    sql = (f"SELECT {names}, AVG(latency_ms) FROM (SELECT {named}, latency_ms, "
           f"ROW_NUMBER() OVER (PARTITION BY {cols} ORDER BY latency_ms) AS rn, "
           f"COUNT(*) OVER (PARTITION BY {cols}) AS n FROM usage_records WHERE {clause}) t "
           f"WHERE rn IN ((n + 1) / 2, (n + 2) / 2) GROUP BY {names}")
    n = len(exprs)
    return {label_of(by, r[:n]): float(r[n]) for r in await db.fetch(sql, args)}


async def spend_report(db: Database, catalog: Catalog, *, since: date | None = None,
                       until: date | None = None, by: str = "model",
                       currency: str = "CNY") -> dict[str, Any]:
    """``{"kind": "spend", "total": {amount, currency, amounts, requests, tokens, errors,
    latency_p50_ms, ...}, "rows": [...]}``, most expensive row first (by day: in order)."""
    currency = check_currency(currency)
    rows: dict[str, _Row] = {}
    for label, _day, part in await _parts(db, catalog, since, until, by):
        rows.setdefault(label, _Row(label)).add(part)
    for label, p50 in (await _medians(db, since, until, by)).items():
        if label in rows:
            rows[label].latency_p50 = p50
    total = _Row("TOTAL")
    for row in rows.values():
        total.add(row)
    if len(rows) == 1:
        total.latency_p50 = next(iter(rows.values())).latency_p50
    elif rows:
        total.latency_p50 = await _median_all(db, since, until)
    ordered = sorted(rows.values(), key=lambda x: x.label) if by == "day" else \
        sorted(rows.values(), key=lambda x: (-x.amounts.get(currency), x.label))
    out_rows = [r.json(by, currency) for r in ordered]
    if by == "key" and out_rows:
        names = {str(k): v for k, v in await db.fetch("SELECT id, name FROM api_keys")}
        for item in out_rows:
            item["name"] = names.get(item["key"])
    return {"kind": "spend", **window(since, until), "by": by, "currency": currency,
            "total": total.json(by, currency), "rows": out_rows}


async def _median_all(db: Database, since: date | None, until: date | None) -> float | None:
    clause, args = where(since, until)
    sql = ("SELECT AVG(latency_ms) FROM (SELECT latency_ms, ROW_NUMBER() OVER "
           "(ORDER BY latency_ms) AS rn, COUNT(*) OVER () AS n FROM usage_records "
           f"WHERE {clause}) t WHERE rn IN ((n + 1) / 2, (n + 2) / 2)")
    found = await db.fetch(sql, args)
    return float(found[0][0]) if found and found[0][0] is not None else None


async def spend_by_day(db: Database, catalog: Catalog, *, since: date | None = None,
                       until: date | None = None, by: str = "vendor",
                       currency: str = "CNY") -> dict[str, Any]:
    """For charts: ``{"day": [ISO days], "series": {name: [amount per day]}, "total"}``,
    amounts in ``currency``; days without any request are left out."""
    currency = check_currency(currency)
    parts = await _parts(db, catalog, since, until, by)
    days = sorted({d for _, d, _ in parts})
    index = {d: i for i, d in enumerate(days)}
    series: dict[str, list[Decimal]] = {}
    total = _Row("TOTAL")
    for label, day, part in parts:
        values = series.setdefault(label, [Decimal(0)] * len(days))
        values[index[day]] += part.amounts.get(currency)
        total.add(part)
    names = sorted(series, key=lambda k: (-sum(series[k]), k))
    return {"kind": "spend_by_day", **window(since, until), "by": by, "currency": currency,
            "day": [d.isoformat() for d in days],
            "series": {k: [float(v) for v in series[k]] for k in names},
            "total": total.json(by, currency) | {by: "TOTAL"}}
