"""What each budget's current window has already spent, read from the ledger.

Used when a process starts, when a budget appears, when a window opens, and when
Redis comes back empty. One grouped query per (scope, period) over the indexed
(key_id, ts) / (tenant, ts) columns; amounts are converted per day (per month for
``total`` budgets) at that date's exchange rate, as settlements are.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import date

from kanjia.ledger import from_nano, to_nano
from kanjia.ledger.query import charges_by_subject
from kanjia.ledger.store import Database
from kanjia.metering._fx import Fx
from kanjia.metering._money import Period
from kanjia.metering._registry import Budget, Scope
from kanjia.metering._windows import window_start

__all__ = ["ledger_spend"]

_CHUNK = 500


async def ledger_spend(db: Database, fx: Fx, budgets: Sequence[Budget],
                       now: float) -> dict[str, int]:
    """Budget id → nano-units of the budget's currency spent in its current window."""
    groups: dict[tuple[Scope, Period], list[Budget]] = defaultdict(list)
    for b in budgets:
        groups[b.scope, b.period].append(b)
    out: dict[str, int] = {}
    for (scope, period), members in groups.items():
        col = "key_id" if scope == "key" else "tenant"
        bucket = "substr(day, 1, 7)" if period == "total" else "day"
        subjects = sorted({b.subject for b in members})
        rows: dict[str, list[tuple[str, str, int]]] = defaultdict(list)
        for i in range(0, len(subjects), _CHUNK):
            chunk = subjects[i:i + _CHUNK]
            for subject, currency, when, nano in await charges_by_subject(
                    db, col, bucket, window_start(period, now), chunk):
                rows[subject].append((currency, when, int(nano or 0)))
        for b in members:
            total = sum((fx.convert(from_nano(nano), cur, b.currency, _date(when))
                         for cur, when, nano in rows.get(b.subject, ())), start=from_nano(0))
            out[b.id] = to_nano(total)
    return out


def _date(text: str) -> date:
    return date.fromisoformat(text if len(text) == 10 else text + "-01")
