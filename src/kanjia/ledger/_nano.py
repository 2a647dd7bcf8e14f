"""Exact amounts as integers: the ledger and the limit stores count in nano-units.

One nano-unit is 10⁻⁹ of a currency unit, so sums are exact integers on SQLite,
PostgreSQL and in Redis alike (a BIGINT holds up to 9.2 billion units).
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

__all__ = ["NANO", "from_nano", "to_nano"]

NANO = Decimal(10) ** 9


def to_nano(amount: Decimal) -> int:
    return int((amount * NANO).to_integral_value(ROUND_HALF_EVEN))


def from_nano(nano: int) -> Decimal:
    return (Decimal(nano) / NANO).normalize() if nano else Decimal(0)
