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
from kanjia.ledger.query import check_by, key_names, label_of, latency_medians, spend_sums
from kanjia.ledger.store import Database
from kanjia.reports._amounts import Amounts, check_currency
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
    merged: dict[tuple[str, str, date], _Row] = {}
    costs: dict[tuple[str, str, date], int] = {}
    for p in await spend_sums(db, check_by(by), since, until):
        at = (label_of(by, p.group), p.currency, p.day)
        costs[at] = costs.get(at, 0) + p.cost_nano
        merged.setdefault(at, _Row(at[0])).add(
            _Row(at[0], Amounts(), p.requests, p.errors, p.input_tokens, p.cached_tokens,
                 p.output_tokens, p.reasoning_tokens, p.latency_ms))
    for (label, cur, day), row in merged.items():
        row.amounts = Amounts.of(catalog.fx, Decimal(costs[label, cur, day]) / _NANO, cur, day)
    return [(label, day, row) for (label, _cur, day), row in merged.items()]


async def spend_report(db: Database, catalog: Catalog, *, since: date | None = None,
                       until: date | None = None, by: str = "model",
                       currency: str = "CNY") -> dict[str, Any]:
    """``{"kind": "spend", "total": {amount, currency, amounts, requests, tokens, errors,
    latency_p50_ms, ...}, "rows": [...]}``, most expensive row first (by day: in order)."""
    currency = check_currency(currency)
    rows: dict[str, _Row] = {}
    for label, _day, part in await _parts(db, catalog, since, until, by):
        rows.setdefault(label, _Row(label)).add(part)
    for group, p50 in await latency_medians(db, check_by(by), since, until):
        label = label_of(by, group)
        if label in rows:
            rows[label].latency_p50 = p50
    total = _Row("TOTAL")
    for row in rows.values():
        total.add(row)
    if len(rows) == 1:
        total.latency_p50 = next(iter(rows.values())).latency_p50
    elif rows:
        total.latency_p50 = next((m for _, m in await latency_medians(db, (), since, until)),
                                 None)
    ordered = sorted(rows.values(), key=lambda x: x.label) if by == "day" else \
        sorted(rows.values(), key=lambda x: (-x.amounts.get(currency), x.label))
    out_rows = [r.json(by, currency) for r in ordered]
    if by == "key" and out_rows:
        names = await key_names(db)
        for item in out_rows:
            item["name"] = names.get(item["key"])
    return {"kind": "spend", **window(since, until), "by": by, "currency": currency,
            "total": total.json(by, currency), "rows": out_rows}


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
