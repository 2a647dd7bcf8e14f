"""Budget periods as named UTC windows: ``d2026-11-28``, ``m2026-11``, ``total``."""

from __future__ import annotations

from datetime import UTC, date, datetime

from kanjia.metering._money import Period

__all__ = ["WindowClock", "window_end", "window_id", "window_reset", "window_start",
           "window_ttl_s"]


def window_id(period: Period, now: float) -> str:
    d = datetime.fromtimestamp(now, UTC)
    if period == "day":
        return f"d{d:%Y-%m-%d}"
    if period == "month":
        return f"m{d:%Y-%m}"
    return "total"


def window_start(period: Period, now: float) -> float:
    """Unix time at which the window holding ``now`` began (0 for ``total``)."""
    d = datetime.fromtimestamp(now, UTC)
    if period == "day":
        return datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp()
    if period == "month":
        return datetime(d.year, d.month, 1, tzinfo=UTC).timestamp()
    return 0.0


def window_end(period: Period, now: float) -> float:
    """Unix time at which the window holding ``now`` ends (inf for ``total``)."""
    reset = window_reset(period, now)
    if reset is None:
        return float("inf")
    d = date.fromisoformat(reset)
    return datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp()


class WindowClock:
    """``window_id`` for the request path: recomputed only when a window ends."""

    def __init__(self) -> None:
        self._current: dict[Period, tuple[float, float, str]] = {}
        self._day = (0.0, 0.0, date.min)

    def date(self, now: float) -> date:
        """The UTC date of ``now`` (unix time)."""
        start, end, day = self._day
        if not start <= now < end:
            day = datetime.fromtimestamp(now, UTC).date()
            start = datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()
            self._day = (start, start + 86400, day)
        return day

    def id(self, period: Period, now: float) -> str:
        known = self._current.get(period)
        if known is None or not known[0] <= now < known[1]:
            known = (window_start(period, now), window_end(period, now), window_id(period, now))
            self._current[period] = known
        return known[2]


def window_reset(period: Period, now: float) -> str | None:
    """When the window holding ``now`` ends (ISO date), or None for ``total``."""
    d = datetime.fromtimestamp(now, UTC).date()
    if period == "day":
        return date.fromordinal(d.toordinal() + 1).isoformat()
    if period == "month":
        return (date(d.year + 1, 1, 1) if d.month == 12 else date(d.year, d.month + 1, 1)
                ).isoformat()
    return None


def window_ttl_s(period: Period) -> int | None:
    """How long a limit store keeps a window's counters (None: forever)."""
    return {"day": 3 * 86400, "month": 40 * 86400}.get(period)
