"""CNY↔USD exchange rates by date: a small dated table, overridable from config."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from kanjia.errors import ConfigError

__all__ = ["FxRate", "FxTable"]

CURRENCIES = ("CNY", "USD")


@dataclass(frozen=True, slots=True)
class FxRate:
    """From ``date`` on (until the next row), one USD buys ``cny_per_usd`` CNY."""

    date: date
    cny_per_usd: Decimal
    source: str
    evidence: str


class FxTable:
    """Dated CNY per USD rates. A date before the first row uses the first row."""

    __slots__ = ("_dates", "_rates", "rates")

    def __init__(self, rates: Iterable[FxRate]) -> None:
        by_date = {r.date: r for r in rates}
        if not by_date:
            raise ConfigError("the exchange-rate table is empty")
        self.rates: tuple[FxRate, ...] = tuple(by_date[d] for d in sorted(by_date))
        self._dates = tuple(r.date for r in self.rates)
        self._rates = tuple(r.cny_per_usd for r in self.rates)

    def with_overrides(self, overrides: Mapping[date, Decimal] | Mapping[str, Decimal]) -> FxTable:
        """A new table where ``overrides`` (date or ISO date -> CNY per USD) win."""
        extra: list[FxRate] = []
        for key, value in overrides.items():
            try:
                day = key if isinstance(key, date) else date.fromisoformat(str(key))
                rate = Decimal(value)
            except (ValueError, ArithmeticError) as exc:
                raise ConfigError(f"fx override {key!r} = {value!r}: {exc}") from None
            if isinstance(day, datetime):
                day = day.date()
            if not rate.is_finite() or rate <= 0:
                raise ConfigError(f"fx override {key!r}: the rate must be a positive number")
            extra.append(FxRate(day, rate, "config override", "S"))
        return FxTable([*self.rates, *extra])

    def cny_per_usd(self, at: date) -> Decimal:
        if isinstance(at, datetime):
            at = at.date()
        i = bisect_right(self._dates, at) - 1
        return self._rates[max(i, 0)]

    def convert(self, amount: Decimal, from_cur: str, to_cur: str, at: date) -> Decimal:
        """``amount`` in ``from_cur`` expressed in ``to_cur`` at the rate of ``at``."""
        if from_cur == to_cur:
            return amount
        for cur in (from_cur, to_cur):
            if cur not in CURRENCIES:
                raise ConfigError(f"unknown currency {cur!r} (known: {', '.join(CURRENCIES)})")
        rate = self.cny_per_usd(at)
        return amount * rate if from_cur == "USD" else amount / rate
