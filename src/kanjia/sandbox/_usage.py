"""What the sandbox served and billed, per vendor, model and minute: the record
behind its usage export (``_usage_routes``).

Every answered request (not refused with an error fault) is recorded with the
token counts it was answered with, and billed by the sandbox's own price list
(``_prices``) at that moment, as a vendor's billing does. Sums are kept per minute
(the finest bucket of OpenAI's usage API) and per tier bucket (prompts that take the
same tier), so the record stays small under any load and a request costs a few dict
operations; a key is priced when it is exported. Prices are linear in tokens and
change only at whole minutes (period starts, windows and time zones are in minutes),
so that is exactly the sum of each request's charge. ``Skew`` rules make the export
dishonest on purpose (a vendor over-reporting a model's tokens), so tests can check
that a reconciliation finds it.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from kanjia.sandbox._prices import PriceList

__all__ = ["FIELDS", "KINDS", "Skew", "Sums", "UsageBook", "parse_skew"]

#: the usage endpoints: chat-like requests and embeddings
KINDS = ("completions", "embeddings")
#: what a skew rule can change in the export
FIELDS = ("requests", "input_tokens", "cached_tokens", "output_tokens", "cost")
_ZERO = Decimal(0)
_MTOK = Decimal(1_000_000)


@dataclass(slots=True)
class Sums:
    """Requests, tokens and charges (by line) of one vendor/kind/model/minute."""

    requests: int = 0
    input_tokens: int = 0
    uncached_tokens: int = 0             # sum of max(0, input - cached - cache write)
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    output_tokens: int = 0
    cost_input: Decimal = _ZERO
    cost_cached: Decimal = _ZERO
    cost_cache_write: Decimal = _ZERO
    cost_output: Decimal = _ZERO
    currency: str | None = None          # None: no price (tokens only)

    def add(self, other: Sums) -> None:
        self.requests += other.requests
        self.input_tokens += other.input_tokens
        self.uncached_tokens += other.uncached_tokens
        self.cached_tokens += other.cached_tokens
        self.cache_write_tokens += other.cache_write_tokens
        self.output_tokens += other.output_tokens
        self.cost_input += other.cost_input
        self.cost_cached += other.cost_cached
        self.cost_cache_write += other.cost_cache_write
        self.cost_output += other.cost_output
        self.currency = self.currency or other.currency


@dataclass(frozen=True, slots=True)
class Skew:
    """Report ``field`` of ``vendor``'s ``model`` (None: every model) as
    ``value * factor + add`` in every export result it appears in."""

    vendor: str
    field: str
    model: str | None = None
    factor: float = 1.0
    add: float = 0.0

    def applies(self, vendor: str, model: str | None) -> bool:
        return self.vendor == vendor and (self.model is None or self.model == model)

    def as_json(self) -> dict[str, Any]:
        return {"vendor": self.vendor, "model": self.model, "field": self.field,
                "factor": self.factor, "add": self.add}


def parse_skew(data: Any, vendors: tuple[str, ...]) -> Skew:
    """A rule from the JSON body of ``POST /_sandbox/usage/skew``; ValueError if invalid."""
    if not isinstance(data, dict):
        raise ValueError("body must be a JSON object")
    vendor, field, model = data.get("vendor"), data.get("field"), data.get("model")
    factor, add = data.get("factor", 1.0), data.get("add", 0.0)
    if vendor not in vendors:
        raise ValueError(f"vendor must be one of {', '.join(vendors)}")
    if field not in FIELDS:
        raise ValueError(f"field must be one of {', '.join(FIELDS)}")
    if model is not None and not isinstance(model, str):
        raise ValueError("model must be a string")
    for name, value in (("factor", factor), ("add", add)):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{name} must be a number")
    if factor == 1 and add == 0:
        raise ValueError("a skew needs factor != 1 or add != 0")
    return Skew(str(vendor), str(field), model, float(factor), float(add))


class UsageBook:
    """The served-usage record of one sandbox server."""

    def __init__(self) -> None:
        self._sums: dict[tuple[str, str, str, int, int], Sums] = {}
        self._prices: PriceList | None = None
        self._tiers: dict[tuple[str, str], tuple[int, ...]] = {}
        self.skews: list[Skew] = []

    @property
    def prices(self) -> PriceList:
        if self._prices is None:             # read the price files on first use
            self._prices = PriceList()
        return self._prices

    def record(self, vendor: str, kind: str, model: str, input_tokens: int,
               cached_tokens: int = 0, cache_write_tokens: int = 0,
               output_tokens: int = 0, at: float | None = None) -> None:
        """One answered request."""
        ts = time.time() if at is None else at
        tiers = self._tiers.get((vendor, model))
        if tiers is None:
            tiers = self._tiers[(vendor, model)] = self.prices.thresholds(vendor, model)
        key = (vendor, kind, model, int(ts) // 60 * 60, bisect_left(tiers, input_tokens))
        sums = self._sums.get(key)
        if sums is None:
            sums = self._sums[key] = Sums()
        sums.requests += 1
        sums.input_tokens += input_tokens
        sums.uncached_tokens += max(0, input_tokens - cached_tokens - cache_write_tokens)
        sums.cached_tokens += cached_tokens
        sums.cache_write_tokens += cache_write_tokens
        sums.output_tokens += output_tokens

    def _priced(self, vendor: str, model: str, minute: int, tier: int, sums: Sums) -> Sums:
        tiers = self._tiers.get((vendor, model), ())
        prompt = tiers[tier - 1] + 1 if tier else 0      # any prompt of that tier bucket
        out = Sums()
        out.add(sums)
        found = self.prices.rates(vendor, model, datetime.fromtimestamp(minute, UTC), prompt)
        if found is not None:
            currency, p = found
            out.currency = currency
            out.cost_input = p.input * sums.uncached_tokens / _MTOK
            out.cost_cached = p.cached * sums.cached_tokens / _MTOK
            out.cost_cache_write = p.cache_write * sums.cache_write_tokens / _MTOK
            out.cost_output = p.output * sums.output_tokens / _MTOK
        return out

    def select(self, vendor: str, kinds: tuple[str, ...], start: int,
               end: int) -> list[tuple[int, str, str, Sums]]:
        """(minute, kind, model, priced sums) of ``vendor`` in [start, end), by minute."""
        return sorted(((minute, kind, model, self._priced(v, model, minute, tier, sums))
                       for (v, kind, model, minute, tier), sums in self._sums.items()
                       if v == vendor and kind in kinds and start <= minute < end),
                      key=lambda item: (item[0], item[1], item[2]))

    def skewed(self, vendor: str, model: str | None, field: str, value: float) -> float:
        for skew in self.skews:
            if skew.field == field and skew.applies(vendor, model):
                value = value * skew.factor + skew.add
        return value

    def reset(self) -> None:
        self._sums.clear()
        self.skews.clear()
