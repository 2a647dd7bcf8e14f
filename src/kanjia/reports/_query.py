"""The SQL both report engines share: the time window and the grouping columns."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

__all__ = ["GROUPS", "LEVER", "check_by", "label_of", "ts_bounds", "where"]

#: how a request chose its model: through a route ("routing") or named by the client
#: ("direct"); or it was answered from kanjia's response cache ("response_cache")
LEVER = ("(CASE WHEN cache_hit = 1 THEN 'response_cache' "
         "WHEN route IS NULL THEN 'direct' ELSE 'routing' END)")

#: --by value -> the ledger columns (or expressions) that name a row ("day" comes from
#: the time)
GROUPS: dict[str, tuple[str, ...]] = {
    "vendor": ("vendor",), "model": ("vendor", "model"), "route": ("route",),
    "key": ("key_id",), "tenant": ("tenant",), "day": ("day",), "lever": (LEVER,),
}

NONE = "(none)"


def check_by(by: str) -> tuple[str, ...]:
    if by not in GROUPS:
        raise ValueError(f"by must be one of {', '.join(GROUPS)}, not {by!r}")
    return GROUPS[by]


def ts_bounds(since: date | None, until: date | None) -> tuple[float | None, float | None]:
    """Unix times of ``since`` 00:00 UTC and ``until`` 00:00 UTC (exclusive)."""
    def ts(d: date | None) -> float | None:
        return None if d is None else datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp()
    if since is not None and until is not None and until <= since:
        raise ValueError(f"until ({until}) must be after since ({since})")
    return ts(since), ts(until)


def where(since: date | None, until: date | None) -> tuple[str, list[Any]]:
    """A WHERE clause (with ``?`` placeholders) for the window, and its arguments."""
    lo, hi = ts_bounds(since, until)
    parts, args = ["1 = 1"], []
    if lo is not None:
        parts.append("ts >= ?")
        args.append(lo)
    if hi is not None:
        parts.append("ts < ?")
        args.append(hi)
    return " AND ".join(parts), args


def label_of(by: str, values: Sequence[Any]) -> str:
    """The row name: "vendor/model" for models, else the column's value."""
    if by == "model":
        return f"{values[0]}/{values[1]}" if values[0] else NONE
    return str(values[0]) if values[0] is not None else NONE
