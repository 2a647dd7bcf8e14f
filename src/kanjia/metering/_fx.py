"""The exchange-rate interface metering needs (``kanjia.catalog.FxTable`` has it)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Protocol

__all__ = ["Fx"]


class Fx(Protocol):
    def convert(self, amount: Decimal, from_cur: str, to_cur: str, at: date) -> Decimal: ...
