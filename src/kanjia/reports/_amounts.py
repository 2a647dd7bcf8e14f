"""Amounts in both reporting currencies, converted at each day's exchange rate."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from kanjia.catalog import FxTable

__all__ = ["CURRENCIES", "Amounts", "check_currency", "money"]

CURRENCIES = ("CNY", "USD")
_ZERO = Decimal(0)


def check_currency(currency: str) -> str:
    cur = currency.upper()
    if cur not in CURRENCIES:
        raise ValueError(f"currency must be one of {', '.join(CURRENCIES)}, not {currency!r}")
    return cur


@dataclass(slots=True)
class Amounts:
    """One amount held in CNY and in USD (each converted on the day it was spent)."""

    cny: Decimal = _ZERO
    usd: Decimal = _ZERO

    @classmethod
    def of(cls, fx: FxTable, amount: Decimal, currency: str, day: date) -> Amounts:
        if not amount:
            return cls()
        return cls(fx.convert(amount, currency, "CNY", day),
                   fx.convert(amount, currency, "USD", day))

    def add(self, other: Amounts) -> None:
        self.cny += other.cny
        self.usd += other.usd

    def minus(self, other: Amounts) -> Amounts:
        return Amounts(self.cny - other.cny, self.usd - other.usd)

    def get(self, currency: str) -> Decimal:
        return self.cny if currency == "CNY" else self.usd

    def json(self, currency: str) -> dict[str, Any]:
        return money(self, currency)


def money(amounts: Amounts, currency: str) -> dict[str, Any]:
    """``{"amount", "currency", "amounts": {"CNY", "USD"}}``: ``currency`` is the main one."""
    return {"amount": float(amounts.get(currency)), "currency": currency,
            "amounts": {"CNY": float(amounts.cny), "USD": float(amounts.usd)}}
