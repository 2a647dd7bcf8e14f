"""Budgets and the bounds of the limit stores, in the ledger's nano-units
(``kanjia.ledger``: ``to_nano``/``from_nano``, 10⁻⁹ of a currency unit)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Literal

from kanjia.errors import ConfigError
from kanjia.ledger import NANO, to_nano

__all__ = ["MAX_BUDGET", "MAX_NANO", "BudgetSpec", "Period", "parse_budget", "to_nano_capped"]

#: the largest amount a limit store counts in one step (a reservation, a settlement):
#: 10⁹ units, so that sums of a few stay inside a signed 64-bit integer (Redis, BIGINT)
MAX_NANO = 10**18
#: the largest budget amount (in its currency): 10⁹ units
MAX_BUDGET = Decimal(MAX_NANO) / NANO
Period = Literal["day", "month", "total"]
_PERIODS: tuple[Period, ...] = ("day", "month", "total")
_SPEC = re.compile(r"^\s*(?P<amount>\d+(?:\.\d+)?)\s*(?P<cur>[A-Za-z]{3})\s*"
                   r"(?:/\s*(?P<period>[a-z]+))?\s*$")


def to_nano_capped(amount: Decimal) -> int:
    """``to_nano`` bounded to [0, MAX_NANO + 1]: what a reservation or settlement may
    count. MAX_NANO + 1 stands for "more than any budget": no budget admits it."""
    if not amount.is_finite() or amount > MAX_BUDGET:
        return MAX_NANO + 1 if not amount.is_signed() else 0
    nano = to_nano(amount)
    return nano if nano > 0 else 0


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
    if amount > MAX_BUDGET:
        raise ConfigError(f"bad budget {text!r}: the amount may be at most "
                          f"{MAX_BUDGET:,.0f}")
    if amount != 0 and to_nano(amount) == 0:
        raise ConfigError(f"bad budget {text!r}: amounts are counted to 9 decimal places")
    return BudgetSpec(amount, m["cur"].upper(), period)
