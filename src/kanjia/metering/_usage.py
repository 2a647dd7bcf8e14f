"""Spend and tokens from the ledger, grouped, in one currency (``kanjia usage``, /admin/usage).

Amounts are summed in SQL per (group, billing currency, day) and converted in
Python at each day's exchange rate, so a report over months stays exact.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from kanjia.metering._fx import Fx
from kanjia.metering._money import from_nano
from kanjia.metering.store import Database

__all__ = ["GROUPS", "usage_report"]

#: --by value -> the columns that name a row
GROUPS: dict[str, tuple[str, ...]] = {
    "key": ("key_id",), "tenant": ("tenant",), "vendor": ("vendor",),
    "model": ("vendor", "model"), "day": ("day",),
}


@dataclass(slots=True)
class _Row:
    amount: Decimal = Decimal(0)
    charge: Decimal = Decimal(0)
    requests: int = 0
    errors: int = 0
    input_tokens: int = 0
    cached_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    estimated: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    cache_write_tokens: int = 0

    def add(self, other: _Row) -> None:
        self.amount += other.amount
        self.charge += other.charge
        for name in ("requests", "errors", "input_tokens", "cached_tokens", "output_tokens",
                     "reasoning_tokens", "estimated", "cache_write_tokens"):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def json(self, currency: str) -> dict[str, Any]:
        return {**self.extra, "amount": _num(self.amount), "currency": currency,
                "charge": _num(self.charge), "requests": self.requests,
                "tokens": self.input_tokens + self.output_tokens,
                "input_tokens": self.input_tokens, "cached_tokens": self.cached_tokens,
                "cache_write_tokens": self.cache_write_tokens,
                "output_tokens": self.output_tokens, "reasoning_tokens": self.reasoning_tokens,
                "errors": self.errors, "estimated_usage": self.estimated}


def _num(amount: Decimal) -> float:
    return float(amount)


def _label(by: str, values: Sequence[Any]) -> str:
    if by == "model":
        return f"{values[0]}/{values[1]}" if values[0] else "(none)"
    return str(values[0]) if values[0] is not None else "(none)"


async def usage_report(db: Database, fx: Fx, *, since: date | None = None,
                       until: date | None = None, by: str = "model",
                       currency: str = "CNY") -> dict[str, Any]:
    """``{"total": {amount, currency, requests, tokens, ...}, "rows": [...]}``; amounts
    are vendor cost in ``currency``, ``charge`` what tenants were charged."""
    if by not in GROUPS:
        raise ValueError(f"--by must be one of {', '.join(GROUPS)}")
    cols = GROUPS[by]
    group = ", ".join(cols)
    where, args = ["1 = 1"], []
    if since is not None:
        where.append("ts >= ?")
        args.append(datetime(since.year, since.month, since.day, tzinfo=UTC).timestamp())
    if until is not None:
        where.append("ts < ?")
        args.append(datetime(until.year, until.month, until.day, tzinfo=UTC).timestamp())
    sql = (f"SELECT {group}, currency, charge_currency, day, COUNT(*), "
           "SUM(CASE WHEN status >= 400 THEN 1 ELSE 0 END), SUM(input_tokens), "
           "SUM(cached_tokens), SUM(output_tokens), SUM(reasoning_tokens), "
           "SUM(usage_estimated), SUM(cost_nano), SUM(charge_nano), SUM(cache_write_tokens) "
           "FROM usage_records "
           f"WHERE {' AND '.join(where)} GROUP BY {group}, currency, charge_currency, day")
    rows: dict[str, _Row] = {}
    n = len(cols)
    for r in await db.fetch(sql, args):
        label = _label(by, r[:n])
        cur, charge_cur, day = r[n], r[n + 1], date.fromisoformat(r[n + 2])
        count, errors, inp, cached, out, reasoning, estimated = (int(v or 0)
                                                                  for v in r[n + 3:n + 10])
        part = _Row(fx.convert(from_nano(int(r[n + 10] or 0)), cur, currency, day),
                    fx.convert(from_nano(int(r[n + 11] or 0)), charge_cur, currency, day),
                    count, errors, inp, cached, out, reasoning, estimated,
                    cache_write_tokens=int(r[n + 12] or 0))
        rows.setdefault(label, _Row(extra={by: label})).add(part)
    if by == "key" and rows:
        names = dict(await db.fetch("SELECT id, name FROM api_keys"))
        for label, row in rows.items():
            row.extra["name"] = names.get(label)
    total = _Row()
    for row in rows.values():
        total.add(row)
    ordered = sorted(rows.values(), key=lambda x: str(x.extra[by])) if by == "day" else \
        sorted(rows.values(), key=lambda x: (-x.amount, str(x.extra[by])))
    return {"since": since.isoformat() if since else None,
            "until": until.isoformat() if until else None, "by": by, "currency": currency,
            "total": total.json(currency), "rows": [r.json(currency) for r in ordered]}
