"""When is it cheapest to send deferrable work? Scan the price schedule ahead."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from kanjia.catalog import ModelEntry, estimate_cost

__all__ = ["SendTime", "cheapest_send_time"]


@dataclass(frozen=True, slots=True)
class SendTime:
    at: datetime
    cost_now: Decimal
    cost_then: Decimal
    currency: str
    period_then: str

    @property
    def deferred(self) -> bool:
        return self.cost_then < self.cost_now


def cheapest_send_time(entry: ModelEntry, prompt_tokens: int, output_tokens: int,
                       now: datetime, horizon_h: int = 48, step_min: int = 15) -> SendTime:
    """The earliest moment within ``horizon_h`` whose price is the lowest; ``now`` if
    nothing later is strictly cheaper. Window edges in the catalog are minute-aligned to
    quarter hours (00:30, 08:30, 09:00, ...), so a 15-minute step finds them exactly."""
    base = estimate_cost(entry, prompt_tokens, output_tokens, 0.0, now)
    best_at, best = now, base
    start = now.replace(second=0, microsecond=0)
    start += timedelta(minutes=(step_min - start.minute % step_min) % step_min or step_min)
    t = start
    end = now + timedelta(hours=horizon_h)
    while t <= end:
        if entry.price_at(t) is not None:
            c = estimate_cost(entry, prompt_tokens, output_tokens, 0.0, t)
            if c.amount < best.amount:
                best_at, best = t, c
        t += timedelta(minutes=step_min)
    return SendTime(best_at, base.amount, best.amount, base.currency, best.period_id)
