"""The span of ledger time one dashboard shows, and its SQL filter."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

__all__ = ["DEFAULT_DAYS", "Period"]

#: without ``since``, the dashboard shows this many days up to today
DEFAULT_DAYS = 30


def _midnight(day: date) -> float:
    return datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()


@dataclass(frozen=True, slots=True)
class Period:
    """UTC days ``since`` (inclusive) to ``until`` (exclusive; None = open-ended)."""

    since: date
    until: date | None = None

    @classmethod
    def recent(cls, since: date | None = None, until: date | None = None,
               today: date | None = None) -> Period:
        today = today or datetime.now(UTC).date()
        return cls(since or today - timedelta(days=DEFAULT_DAYS - 1), until)

    def where(self) -> tuple[str, Sequence[Any]]:
        """A WHERE clause on ``usage_records.ts`` with its arguments."""
        clauses, args = ["ts >= ?"], [_midnight(self.since)]
        if self.until is not None:
            clauses.append("ts < ?")
            args.append(_midnight(self.until))
        return " AND ".join(clauses), args

    def days(self, today: date | None = None) -> list[date]:
        """Every day shown, for a time axis without holes."""
        last = (self.until - timedelta(days=1)) if self.until is not None else \
            (today or datetime.now(UTC).date())
        n = (last - self.since).days + 1
        return [self.since + timedelta(days=i) for i in range(max(n, 0))]
