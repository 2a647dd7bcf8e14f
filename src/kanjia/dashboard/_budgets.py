"""Budget use per key and tenant: each budget's current window, spent from the ledger.

Spend is what the ledger has settled (``charge_nano`` in ``charge_currency``),
converted to the budget's currency at each day's rate, as the gatekeeper seeds
its windows; requests in flight are not counted.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from kanjia.catalog import Catalog
from kanjia.ledger.query import budget_charges
from kanjia.ledger.store import Database
from kanjia.metering import Budget, KeyInfo, Registry

__all__ = ["budget_use", "window_bounds"]

_NANO = Decimal(10) ** 9


def window_bounds(period: str, now: datetime) -> tuple[float, str | None]:
    """Start (unix time) of the window holding ``now`` and the day it resets."""
    if period == "day":
        start = datetime(now.year, now.month, now.day, tzinfo=UTC)
        reset = date.fromordinal(start.date().toordinal() + 1)
    elif period == "month":
        start = datetime(now.year, now.month, 1, tzinfo=UTC)
        reset = date(now.year + 1, 1, 1) if now.month == 12 else date(now.year, now.month + 1, 1)
    else:
        return 0.0, None
    return start.timestamp(), reset.isoformat()


async def _spent(db: Database, catalog: Catalog, b: Budget, start: float) -> Decimal:
    col = "key_id" if b.scope == "key" else "tenant"
    rows = await budget_charges(db, col, b.subject, start)
    total = Decimal(0)
    for currency, day, nano in rows:
        amount = Decimal(int(nano or 0)) / _NANO
        total += catalog.fx.convert(amount, currency, b.currency, date.fromisoformat(day))
    return total


def _label(b: Budget, keys: dict[str, KeyInfo]) -> str:
    if b.scope == "tenant":
        return f"tenant {b.subject}"
    key = keys.get(b.subject)
    return f"key {key.name}" if key is not None else f"key {b.subject}"


async def budget_use(db: Database, catalog: Catalog, now: datetime | None = None
                     ) -> list[dict[str, Any]]:
    """Every live budget with its current window's spend, most used first."""
    now = now or datetime.now(UTC)
    registry = Registry(db)
    keys = {k.id: k for k in await registry.keys(include_revoked=True)}
    out: list[dict[str, Any]] = []
    for b in await registry.budgets():
        start, reset = window_bounds(b.period, now)
        spent = await _spent(db, catalog, b, start)
        share = float(spent / b.amount) if b.amount > 0 else 0.0
        key = keys.get(b.subject) if b.scope == "key" else None
        out.append({"id": b.id, "scope": b.scope, "subject": b.subject,
                    "label": _label(b, keys), "tenant": key.tenant if key else None,
                    "revoked": bool(key and key.revoked_at is not None),
                    "period": b.period, "amount": float(b.amount), "currency": b.currency,
                    "spent": float(spent), "used": round(share, 6), "resets": reset})
    out.sort(key=lambda x: (-float(x["used"]), str(x["label"])))
    return out
