"""Exact amounts as integers: the ledger and the limit stores count in nano-units.

One nano-unit is 10⁻⁹ of a currency unit, so sums are exact integers on SQLite,
PostgreSQL and in Redis alike (a BIGINT holds up to 9.2 billion units).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Literal

from kanjia.errors import ConfigError

__all__ = ["NANO", "BudgetSpec", "Period", "from_nano", "parse_budget", "to_nano"]

NANO = Decimal(10) ** 9
Period = Literal["day", "month", "total"]
_PERIODS: tuple[Period, ...] = ("day", "month", "total")
_SPEC = re.compile(r"^\s*(?P<amount>\d+(?:\.\d+)?)\s*(?P<cur>[A-Za-z]{3})\s*"
                   r"(?:/\s*(?P<period>[a-z]+))?\s*$")


def to_nano(amount: Decimal) -> int:
    return int((amount * NANO).to_integral_value(ROUND_HALF_EVEN))


def from_nano(nano: int) -> Decimal:
    return (Decimal(nano) / NANO).normalize() if nano else Decimal(0)


@dataclass(frozen=True, slots=True)
class BudgetSpec:
    amount: Decimal
    currency: str
    period: Period

    def __str__(self) -> str:
        return f"{format(self.amount.normalize(), 'f')}{self.currency}/{self.period}"


def parse_budget(text: str) -> BudgetSpec:
    """``"100CNY/month"``, ``"5 USD/day"``, ``"20USD/total"``; the period defaults to month."""
    m = _SPEC.match(text)
    if m is None:
        raise ConfigError(f"bad budget {text!r}: expected AMOUNT CURRENCY[/day|month|total], "
                          "e.g. 100CNY/month")
    period = m["period"] or "month"
    if period not in _PERIODS:
        raise ConfigError(f"bad budget period {period!r}: use day, month or total")
    try:
        amount = Decimal(m["amount"])
    except InvalidOperation:  # pragma: no cover - the regex admits only decimals
        raise ConfigError(f"bad budget amount in {text!r}") from None
    return BudgetSpec(amount, m["cur"].upper(), period)
