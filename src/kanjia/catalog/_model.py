"""The catalog's runtime types: vendors, models and their dated price periods.

Everything here is frozen and built once by the loader. Per-token rates are
precomputed as exact ``Decimal`` values so that costing a request is a handful of
multiplications.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

__all__ = [
    "CacheRules",
    "ModelEntry",
    "PricePeriod",
    "PriceTier",
    "PriceWindow",
    "Rates",
    "VendorInfo",
]

_ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class Rates:
    """Prices per single token in force for one request, and the label that says why."""

    label: str                      # "" for the base price (or "free"), else the window's
                                    # ("offpeak", "peak") or tier's ("over-200k") label
    input: Decimal
    cached: Decimal
    cache_write: Decimal
    output: Decimal
    output_known: bool = True
    #: a 1-hour cache write (Anthropic); None: the 5-minute write price
    cache_write_1h: Decimal | None = None

    @classmethod
    def per_mtok(cls, label: str, input_mtok: Decimal, cached_mtok: Decimal | None,
                 cache_write_mtok: Decimal | None, output_mtok: Decimal | None,
                 cache_write_1h_mtok: Decimal | None = None) -> Rates:
        inp = input_mtok.scaleb(-6)
        write = inp if cache_write_mtok is None else cache_write_mtok.scaleb(-6)
        return cls(
            label=label,
            input=inp,
            cached=inp if cached_mtok is None else cached_mtok.scaleb(-6),
            cache_write=write,
            output=_ZERO if output_mtok is None else output_mtok.scaleb(-6),
            output_known=output_mtok is not None,
            cache_write_1h=write if cache_write_1h_mtok is None else cache_write_1h_mtok.scaleb(-6),
        )


@dataclass(frozen=True, slots=True)
class PriceTier:
    """Prices once the prompt is longer than ``above_input_tokens`` (for every token)."""

    above_input_tokens: int
    input_mtok: Decimal
    cached_mtok: Decimal | None
    cache_write_mtok: Decimal | None
    output_mtok: Decimal | None
    rates: Rates = field(repr=False)
    cache_write_1h_mtok: Decimal | None = None


@dataclass(frozen=True, slots=True)
class PriceWindow:
    """Prices during some hours of the day in the vendor's time zone."""

    label: str
    hours: tuple[str, ...]                 # as written: "00:30-08:30"
    days: str                              # "daily" | "weekdays" | "weekends"
    input_mtok: Decimal
    cached_mtok: Decimal | None
    cache_write_mtok: Decimal | None
    output_mtok: Decimal | None
    rates: Rates = field(repr=False)
    #: [start, end) minutes after local midnight; a wrapping range is split in two
    minutes: tuple[tuple[int, int], ...] = field(repr=False, default=())
    weekdays: frozenset[int] = field(repr=False, default=frozenset(range(7)))
    cache_write_1h_mtok: Decimal | None = None

    def covers(self, local: datetime) -> bool:
        if local.weekday() not in self.weekdays:
            return False
        minute = local.hour * 60 + local.minute
        return any(lo <= minute < hi for lo, hi in self.minutes)


@dataclass(frozen=True, slots=True)
class PricePeriod:
    """One price period: prices per 1M tokens from ``start`` (inclusive) to ``end``."""

    id: str                         # "2025-02-26", "2026-09-10T12:00", "before-2024-05-21"
    start: datetime | None          # aware; None = since an unknown date
    end: datetime | None            # aware, exclusive; None = until the next period
    currency: str
    input_mtok: Decimal
    cached_mtok: Decimal | None     # None: billed as input
    cache_write_mtok: Decimal | None
    output_mtok: Decimal | None     # None: not known (see note)
    free: bool
    free_quota: str | None
    tiers: tuple[PriceTier, ...]
    windows: tuple[PriceWindow, ...]
    source: str
    checked: date
    evidence: str                   # S | S3 | M
    start_evidence: str | None
    first_seen: bool
    note: str | None
    tz: timezone = field(repr=False)
    rates: Rates = field(repr=False)
    #: 1-hour cache write (Anthropic); None: billed as a 5-minute write
    cache_write_1h_mtok: Decimal | None = None
    #: what the vendor calls the base prices when windows exist ("offpeak", "standard");
    #: for display only: a price period id names a window only when one applied
    base_label: str = ""

    def rates_for(self, at: datetime, prompt_tokens: int) -> Rates:
        """The rates for a request of ``prompt_tokens`` at ``at`` (aware)."""
        if self.windows:
            local = at.astimezone(self.tz)
            for window in self.windows:
                if window.covers(local):
                    return window.rates
        for tier in reversed(self.tiers):
            if prompt_tokens > tier.above_input_tokens:
                return tier.rates
        return self.rates

    def window_at(self, at: datetime) -> PriceWindow | None:
        local = _aware(at).astimezone(self.tz)
        return next((w for w in self.windows if w.covers(local)), None)

    @property
    def complete(self) -> bool:
        """False when some price of the period is unknown (see ``note``)."""
        return self.output_mtok is not None or self.free


@dataclass(frozen=True, slots=True)
class CacheRules:
    """A vendor's prompt-cache rules (``[vendor.cache]``; see ``_schema.CacheSpec``)."""

    mode: str                       # implicit | explicit
    min_tokens: int
    unit: int
    ttl_s: int
    write_premium: bool
    source: str

    def cached(self, prefix_tokens: int) -> int:
        """The tokens of a seen prefix the vendor serves from cache: whole units, and
        none below the minimum."""
        tokens = prefix_tokens // self.unit * self.unit
        return tokens if tokens >= self.min_tokens else 0


@dataclass(frozen=True, slots=True)
class VendorInfo:
    id: str
    name: str
    region: str                     # cn | global | self-hosted
    currency: str                   # the currency the vendor bills in
    pricing_urls: tuple[str, ...]
    tz: timezone
    note: str | None = None
    cache: CacheRules | None = None


@dataclass(frozen=True, slots=True, eq=False)
class ModelEntry:
    """A model of one vendor, with every price period it has had."""

    vendor: str
    model: str
    aliases: tuple[str, ...]
    context_window: int | None
    max_output: int | None
    capabilities: frozenset[str]
    open_weights: bool
    params_b: float | None
    region: str
    currency: str                   # the vendor's billing currency
    periods: tuple[PricePeriod, ...]
    family: str | None = None
    note: str | None = None
    catalog_ids: Mapping[str, str] = field(default_factory=dict)
    source_file: str = ""
    #: other catalog -> why its values differ from ours (with our primary source)
    differs: Mapping[str, str] = field(default_factory=dict)
    #: through the vendor's batch API every price is this share of the standard one
    #: (None: no batch API for this model); ``batch_source`` cites it
    batch_factor: Decimal | None = None
    batch_source: str | None = None
    _starts: tuple[datetime, ...] = field(default=(), repr=False)

    @property
    def key(self) -> str:
        return f"{self.vendor}/{self.model}"

    def price_at(self, at: datetime) -> PricePeriod | None:
        """The period in force at ``at`` (naive means UTC); None if unpriced then."""
        periods = self.periods
        if not periods:
            return None
        if at.tzinfo is None:
            at = at.replace(tzinfo=UTC)
        i = bisect_right(self._starts, at) - 1
        if i < 0:
            first = periods[0]
            if first.start is not None:
                return None          # before launch / before the first known price
            i = 0
        elif periods[0].start is None:
            i += 1                   # _starts skips the open-started first period
        period = periods[i]
        if period.end is not None and at >= period.end:
            return None
        return period


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def parse_offset(text: str) -> timezone:
    sign = -1 if text[0] == "-" else 1
    hours, minutes = int(text[1:3]), int(text[4:6])
    return timezone(sign * timedelta(hours=hours, minutes=minutes))
