"""A vendor usage export, whatever its format: figures per period and model.

Every format parser returns an ``Export``: the periods the export covers (unix
second ranges, with the label reports show: an ISO day, or a range when the
period is not one whole day), the figures it gives per (period, model), which of
the figures it carries at all, the ledger rows it is about (``scope``) and its
currency. A file that is not what its format says raises ``ExportError`` with one
line naming the field or column it expected.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from decimal import Decimal

__all__ = ["METRICS", "SCOPES", "Export", "ExportError", "Period", "day_period", "span_period"]

#: the figures a reconciliation compares, in report order
METRICS = ("requests", "input_tokens", "cached_tokens", "cache_write_tokens", "output_tokens",
           "cost")
#: which ledger rows an export is about: chat-like calls, embeddings, or everything
SCOPES = ("completions", "embeddings", "all")


class ExportError(ValueError):
    """The file is not a usage export of the format asked for (one line)."""


@dataclass(frozen=True, slots=True)
class Period:
    label: str
    start: int                      # unix seconds, inclusive
    end: int                        # exclusive
    day: date                       # the day it starts on (in the export's time zone)


def day_period(day: date, tz: tzinfo) -> Period:
    """The whole local ``day`` in ``tz``."""
    lo = datetime(day.year, day.month, day.day, tzinfo=tz)
    nxt = day + timedelta(days=1)
    hi = datetime(nxt.year, nxt.month, nxt.day, tzinfo=tz)
    return Period(day.isoformat(), int(lo.timestamp()), int(hi.timestamp()), day)


def span_period(start: int, end: int) -> Period:
    """A UTC range: labelled by its day when it is exactly one UTC day."""
    lo = datetime.fromtimestamp(start, UTC)
    if start % 86400 == 0 and end - start == 86400:
        return Period(lo.date().isoformat(), start, end, lo.date())
    hi = datetime.fromtimestamp(end, UTC)
    return Period(f"{lo:%Y-%m-%dT%H:%MZ}/{hi:%Y-%m-%dT%H:%MZ}", start, end, lo.date())


@dataclass(slots=True)
class Export:
    format: str
    source: str                     # the file name
    scope: str
    currency: str | None            # of "cost" (upper case); None: no cost or unknown
    tz: str = "UTC"
    periods: list[Period] = field(default_factory=list)
    #: (period index, vendor's model name) -> metric -> value
    figures: dict[tuple[int, str], dict[str, Decimal]] = field(default_factory=dict)
    metrics: set[str] = field(default_factory=set)
    #: lines not about a model (e.g. "web search tool calls"): listed, not compared
    other: list[dict[str, object]] = field(default_factory=list)

    def add(self, period: int, model: str, metric: str, value: Decimal) -> None:
        cell = self.figures.setdefault((period, model), {})
        cell[metric] = cell.get(metric, Decimal(0)) + value
        self.metrics.add(metric)
