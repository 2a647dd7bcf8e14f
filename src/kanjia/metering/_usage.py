"""Spend and tokens from the ledger, grouped, in one currency (``kanjia usage``, /admin/usage).

Amounts are summed in SQL per (group, billing currency, day) by the ledger's one spend
aggregation (``kanjia.ledger.query.spend_sums``, which ``kanjia report`` uses
too) and converted in Python at each day's exchange rate, so a report over months
stays exact.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from kanjia.ledger import from_nano
from kanjia.ledger.query import GROUPS as QUERY_GROUPS
from kanjia.ledger.query import key_names, label_of, spend_sums
from kanjia.ledger.store import Database
from kanjia.metering._fx import Fx

__all__ = ["GROUPS", "usage_report"]

#: --by value -> the columns that name a row (the ledger query's groups ``kanjia usage`` offers)
GROUPS: dict[str, tuple[str, ...]] = {by: QUERY_GROUPS[by]
                                      for by in ("key", "tenant", "vendor", "model", "day",
                                                 "api")}


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


async def usage_report(db: Database, fx: Fx, *, since: date | None = None,
                       until: date | None = None, by: str = "model",
                       currency: str = "CNY") -> dict[str, Any]:
    """``{"total": {amount, currency, requests, tokens, ...}, "rows": [...]}``; amounts
    are vendor cost in ``currency``, ``charge`` what tenants were charged."""
    if by not in GROUPS:
        raise ValueError(f"--by must be one of {', '.join(GROUPS)}")
    rows: dict[str, _Row] = {}
    for part in await spend_sums(db, GROUPS[by], since, until, check=False):
        label = label_of(by, part.group)
        rows.setdefault(label, _Row(extra={by: label})).add(_Row(
            fx.convert(from_nano(part.cost_nano), part.currency, currency, part.day),
            fx.convert(from_nano(part.charge_nano), part.charge_currency, currency, part.day),
            part.requests, part.errors, part.input_tokens, part.cached_tokens,
            part.output_tokens, part.reasoning_tokens, part.estimated,
            cache_write_tokens=part.cache_write_tokens))
    if by == "key" and rows:
        names = await key_names(db)
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
