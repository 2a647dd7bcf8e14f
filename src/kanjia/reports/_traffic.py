"""Traffic from the ledger for the break-even: tokens per day and the token mix."""

from __future__ import annotations

from datetime import date
from typing import Any

from kanjia.catalog import ModelEntry
from kanjia.ledger.query import traffic_sums
from kanjia.ledger.store import Database

__all__ = ["ledger_traffic"]


async def ledger_traffic(db: Database, model: ModelEntry | None, *, since: date | None = None,
                         until: date | None = None) -> dict[str, Any]:
    """``{tokens_per_day, days, input_share, cached_share, requests, source}``: the
    average over the calendar days from the first to the last request, of ``model``'s
    rows if the ledger has any, else of all traffic. Raises ``ValueError`` if empty."""
    found: tuple[Any, ...] | None = None
    source = "all ledger traffic"
    if model is not None:
        found = await traffic_sums(db, since, until, vendor=model.vendor,
                                   models=[model.model, *model.aliases])
        source = f"ledger traffic of {model.key}"
        if not found or not found[2]:
            found, source = None, "all ledger traffic"
    if not found:
        found = await traffic_sums(db, since, until)
    if not found:
        raise ValueError("the ledger has no requests to take the traffic from")
    first, last, count, inp, cached, out = found
    if not count:
        raise ValueError("the ledger has no requests to take the traffic from")
    days = (date.fromisoformat(last) - date.fromisoformat(first)).days + 1
    inp, cached, out = int(inp or 0), int(cached or 0), int(out or 0)
    tokens = inp + out
    return {"tokens_per_day": tokens / days, "days": days, "requests": int(count),
            "input_share": inp / tokens if tokens else 0.75,
            "cached_share": cached / inp if inp else 0.0,
            "source": f"{source}, {days} day(s) from {first} to {last}"}
