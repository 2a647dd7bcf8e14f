"""The sandbox's own price list: what each simulated vendor charges for a request.

The sandbox is the oracle kanjia's bills are checked against, so it prices with
code of its own: it reads the price files (``kanjia/catalog/data/*.toml``, the
vendors' published prices) with ``tomllib`` and never imports ``kanjia.catalog``.
Rules, as the vendors bill and as the files describe them:

- a period is in force from ``start`` (a date is 00:00 in the vendor's time zone,
  ``timezone`` or +08:00 for ``region = "cn"``, else UTC) until ``end`` or the
  next period's start; before the first dated start a model is unpriced;
- a time-of-day window (``hours`` in the vendor's local time, ``days`` daily,
  weekdays or weekends) replaces the period's prices while it is open;
- a tier (``above_input_tokens``) prices every token of a longer prompt;
- cached input is billed at ``cached_mtok`` and cache writes at
  ``cache_write_mtok``, each the input price when not given; ``free`` is zero;
- amounts are per 1M tokens in the period's ``currency`` (else the vendor's).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

__all__ = ["Charge", "PriceList"]

_DATA = Path(__file__).resolve().parent.parent / "catalog" / "data"
_MTOK = Decimal(1_000_000)
_ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class Charge:
    """What one request costs, by line (uncached input, cached input, cache writes,
    output), in ``currency``."""

    currency: str
    input: Decimal
    cached: Decimal
    cache_write: Decimal
    output: Decimal


@dataclass(frozen=True, slots=True)
class _Prices:
    input: Decimal
    cached: Decimal
    cache_write: Decimal
    output: Decimal

    @classmethod
    def of(cls, spec: dict[str, Any], free: bool = False) -> _Prices:
        if free:
            return cls(_ZERO, _ZERO, _ZERO, _ZERO)
        inp = _dec(spec.get("input_mtok"))
        return cls(inp, _dec(spec.get("cached_mtok"), inp),
                   _dec(spec.get("cache_write_mtok"), inp), _dec(spec.get("output_mtok")))


@dataclass(frozen=True, slots=True)
class _Window:
    minutes: tuple[tuple[int, int], ...]   # [start, end) after local midnight
    weekdays: frozenset[int]
    prices: _Prices

    def open_at(self, local: datetime) -> bool:
        minute = local.hour * 60 + local.minute
        return local.weekday() in self.weekdays and any(a <= minute < b for a, b in self.minutes)


@dataclass(frozen=True, slots=True)
class _Period:
    start: datetime | None
    end: datetime | None
    currency: str
    prices: _Prices
    tiers: tuple[tuple[int, _Prices], ...]    # ascending above_input_tokens
    windows: tuple[_Window, ...]


@dataclass(frozen=True, slots=True)
class _Model:
    tz: timezone
    periods: tuple[_Period, ...]

    def period_at(self, at: datetime) -> _Period | None:
        found: _Period | None = None
        for p in self.periods:
            if p.start is None or p.start <= at:
                found = p
            else:
                break
        if found is None or (found.end is not None and at >= found.end):
            return None
        return found


def _dec(value: Any, default: Decimal = _ZERO) -> Decimal:
    return default if value is None else Decimal(str(value))


def _offset(text: str) -> timezone:
    sign = -1 if text.startswith("-") else 1
    return timezone(sign * timedelta(hours=int(text[1:3]), minutes=int(text[4:6])))


def _instant(value: Any, tz: timezone) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return (value if value.tzinfo is not None else value.replace(tzinfo=tz)).astimezone(UTC)
    if isinstance(value, date):
        return datetime.combine(value, time(0), tz).astimezone(UTC)
    raise ValueError(f"not a date: {value!r}")


def _minutes(hours: list[str]) -> tuple[tuple[int, int], ...]:
    out: list[tuple[int, int]] = []
    for item in hours:
        a, b = item.split("-")
        lo = int(a[:2]) * 60 + int(a[3:5])
        hi = int(b[:2]) * 60 + int(b[3:5])
        if hi > lo:
            out.append((lo, hi))
        else:                                   # wraps past midnight
            out += [(lo, 24 * 60), (0, hi)]
    return tuple(out)


_DAYS = {"daily": frozenset(range(7)), "weekdays": frozenset(range(5)),
         "weekends": frozenset({5, 6})}


def _model(spec: dict[str, Any], tz: timezone, currency: str) -> _Model:
    periods: list[_Period] = []
    for p in spec.get("periods", []):
        free = bool(p.get("free", False))
        windows = tuple(
            _Window(_minutes(w["hours"]), _DAYS[w.get("days", "daily")], _Prices.of(w))
            for w in p.get("windows", []))
        tiers = tuple(sorted((int(t["above_input_tokens"]), _Prices.of(t))
                             for t in p.get("tiers", [])))
        periods.append(_Period(_instant(p.get("start"), tz), _instant(p.get("end"), tz),
                               str(p.get("currency") or currency), _Prices.of(p, free),
                               tiers, windows))
    return _Model(tz, tuple(periods))


class PriceList:
    """Every model of every price file, by (vendor, model id or alias)."""

    def __init__(self, data_dir: Path = _DATA) -> None:
        self._models: dict[tuple[str, str], _Model] = {}
        #: "file: model" entries this reader could not make sense of (left unpriced, so
        #: a reconciliation shows their cost as a difference rather than the sandbox
        #: failing every request)
        self.skipped: list[str] = []
        for path in sorted(data_dir.glob("*.toml")):
            if path.stem == "fx":
                continue
            try:
                with path.open("rb") as fh:
                    doc = tomllib.load(fh)
                vendor = doc.get("vendor", {})
                offset = vendor.get("timezone") or ("+08:00" if vendor.get("region") == "cn"
                                                    else "+00:00")
                tz, currency = _offset(offset), str(vendor.get("currency", "USD"))
            except (OSError, tomllib.TOMLDecodeError, ValueError, TypeError, IndexError):
                self.skipped.append(path.name)
                continue
            for spec in doc.get("models", []):
                try:
                    model = _model(spec, tz, currency)
                    names = (str(spec["id"]), *map(str, spec.get("aliases", [])))
                except (KeyError, ValueError, TypeError, IndexError, ArithmeticError):
                    self.skipped.append(f"{path.name}: {spec.get('id')}")
                    continue
                for name in names:
                    self._models.setdefault((path.stem, name), model)

    def thresholds(self, vendor: str, model: str) -> tuple[int, ...]:
        """Every prompt length at which a tier of the model starts, ascending: requests
        with as many of them below their prompt take the same tier in any period."""
        entry = self._models.get((vendor, model))
        if entry is None:
            return ()
        return tuple(sorted({above for p in entry.periods for above, _ in p.tiers}))

    def rates(self, vendor: str, model: str, at: datetime,
              input_tokens: int) -> tuple[str, _Prices] | None:
        """The currency and prices per 1M tokens of a request at ``at`` (aware) with
        ``input_tokens`` of prompt; None when the model has no price then."""
        entry = self._models.get((vendor, model))
        period = entry.period_at(at) if entry is not None else None
        if entry is None or period is None:
            return None
        local = at.astimezone(entry.tz)
        window = next((w for w in period.windows if w.open_at(local)), None)
        if window is not None:
            return period.currency, window.prices
        prices = period.prices
        for above, tier in period.tiers:
            if input_tokens > above:
                prices = tier
        return period.currency, prices

    def charge(self, vendor: str, model: str, at: datetime, input_tokens: int,
               cached_tokens: int, cache_write_tokens: int, output_tokens: int) -> Charge | None:
        """The charge for one request at ``at`` (aware); None when the vendor has no
        price for the model then (the sandbox then bills tokens only)."""
        found = self.rates(vendor, model, at, input_tokens)
        if found is None:
            return None
        currency, prices = found
        uncached = max(0, input_tokens - cached_tokens - cache_write_tokens)
        return Charge(currency, prices.input * uncached / _MTOK,
                      prices.cached * cached_tokens / _MTOK,
                      prices.cache_write * cache_write_tokens / _MTOK,
                      prices.output * output_tokens / _MTOK)
