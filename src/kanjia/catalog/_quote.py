"""What a workload costs on every model, cheapest first.

A ``Workload`` holds the token counts of many requests as numpy arrays. Pricing it
on a model needs only a few sums: one per prompt-length tier the model has (prices
are linear within a tier, and time-of-day windows depend on the instant alone), so a
million requests are re-priced across the whole catalog in well under a second, with
exact ``Decimal`` results.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

import numpy as np
import numpy.typing as npt

from kanjia.catalog._catalog import Catalog
from kanjia.catalog._model import ModelEntry, PricePeriod, Rates

__all__ = ["QuoteRow", "Workload", "quote"]

_ZERO = Decimal(0)
_Ints = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class _Sums:
    uncached: int
    cached: int
    cache_write: int
    output: int
    requests: int


@dataclass(frozen=True)
class Workload:
    """Token counts per request row; ``count`` says how many requests each row stands for."""

    input_tokens: _Ints
    cached_tokens: _Ints
    cache_write_tokens: _Ints
    output_tokens: _Ints
    count: _Ints
    _cache: dict[int, _Sums] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def uniform(cls, input_tokens: int, output_tokens: int, cached_share: float = 0.0,
                requests: int = 1) -> Workload:
        cached = int(input_tokens * min(max(cached_share, 0.0), 1.0))
        return cls.from_rows([(input_tokens, cached, 0, output_tokens, requests)])

    @classmethod
    def from_rows(cls, rows: Iterable[tuple[int, int, int, int, int]]) -> Workload:
        """Rows of (input, cached, cache_write, output, count)."""
        arr = np.array(list(rows), dtype=np.int64).reshape(-1, 5)
        return cls.from_arrays(arr[:, 0], arr[:, 1], arr[:, 2], arr[:, 3], arr[:, 4])

    @classmethod
    def from_arrays(cls, input_tokens: _Ints, cached_tokens: _Ints, cache_write_tokens: _Ints,
                    output_tokens: _Ints, count: _Ints | None = None) -> Workload:
        inp = np.asarray(input_tokens, dtype=np.int64)
        cnt = np.ones_like(inp) if count is None else np.asarray(count, dtype=np.int64)
        arrays = [np.asarray(a, dtype=np.int64) for a in
                  (cached_tokens, cache_write_tokens, output_tokens)]
        if any(a.shape != inp.shape for a in (*arrays, cnt)):
            raise ValueError("workload arrays differ in length")
        if any(bool((a < 0).any()) for a in (inp, *arrays, cnt)):
            raise ValueError("token counts and request counts cannot be negative")
        cached = np.minimum(arrays[0], inp)
        write = np.minimum(arrays[1], inp - cached)
        return cls(inp, cached, write, arrays[2], cnt)

    @property
    def requests(self) -> int:
        return int(self.count.sum())

    @property
    def max_prompt_tokens(self) -> int:
        return int(self.input_tokens.max()) if self.input_tokens.size else 0

    @property
    def total_input_tokens(self) -> int:
        return int(np.dot(self.input_tokens, self.count))

    @property
    def total_output_tokens(self) -> int:
        return int(np.dot(self.output_tokens, self.count))

    def sums_above(self, limit: int) -> _Sums:
        """Token totals of the requests whose prompt is longer than ``limit`` (-1: all)."""
        hit = self._cache.get(limit)
        if hit is None:
            mask = self.input_tokens > limit
            cnt = np.where(mask, self.count, 0)
            uncached = self.input_tokens - self.cached_tokens - self.cache_write_tokens
            hit = _Sums(int(np.dot(uncached, cnt)), int(np.dot(self.cached_tokens, cnt)),
                        int(np.dot(self.cache_write_tokens, cnt)),
                        int(np.dot(self.output_tokens, cnt)), int(cnt.sum()))
            self._cache[limit] = hit
        return hit


@dataclass(frozen=True, slots=True)
class QuoteRow:
    model: ModelEntry
    period_id: str
    currency: str               # the billing currency of the period
    amount: Decimal             # whole workload, billing currency, exact
    amount_shown: Decimal       # whole workload in the requested currency
    shown_currency: str
    requests: int
    partial: bool = False       # a price of the period is unknown (the amount is a floor)

    @property
    def per_request(self) -> Decimal:
        return self.amount_shown / self.requests if self.requests else _ZERO


def _apply(rates: Rates, s: _Sums) -> Decimal:
    return (rates.input * s.uncached + rates.cached * s.cached
            + rates.cache_write * s.cache_write + rates.output * s.output)


def cost_of_workload(work: Workload, period: PricePeriod, at: datetime) -> tuple[Decimal, str]:
    """Exact cost of ``work`` in the period's currency, and the price label(s) used."""
    if period.windows or not period.tiers:
        rates = period.rates_for(at, 0)
        label = f"{period.id}+{rates.label}" if rates.label else period.id
        return _apply(rates, work.sums_above(-1)), label
    total = _ZERO
    limits = [-1, *(t.above_input_tokens for t in period.tiers)]
    rates_list = [period.rates, *(t.rates for t in period.tiers)]
    used: list[str] = []
    for i, rates in enumerate(rates_list):
        lower = work.sums_above(limits[i])
        if i + 1 < len(limits):
            upper = work.sums_above(limits[i + 1])
            lower = _Sums(lower.uncached - upper.uncached, lower.cached - upper.cached,
                          lower.cache_write - upper.cache_write, lower.output - upper.output,
                          lower.requests - upper.requests)
        if lower.requests:
            total += _apply(rates, lower)
            used.append(rates.label)
    label = period.id + "".join(f"+{u}" for u in used if u)
    return total, label


def quote(catalog: Catalog, workload: Workload | Callable[[ModelEntry], Workload],
          at: datetime, currency: str, capabilities: Collection[str] = (),
          vendors: Sequence[str] = (), market: bool = True) -> list[QuoteRow]:
    """The workload's cost on every priced model with ``capabilities``, cheapest first.

    Without a capability filter only chat models are quoted (an embeddings model
    would look cheapest for a chat workload); models whose context window is smaller
    than the longest prompt are left out. ``workload`` may be a function of the
    model, for workloads counted with each model's own tokenizer. ``market`` adds the
    rest of the market (genai-prices) to kanjia's own models, except market models
    whose output price is unknown (their floor would rank them falsely cheap).
    """
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    needs = set(capabilities) or {"chat"}
    rows: list[QuoteRow] = []
    day = at.date()
    own = len(catalog.models)
    shared: Workload | None = None if callable(workload) else workload
    # a shared workload's totals are computed once, not once per model (2,000 of them)
    longest = shared.max_prompt_tokens if shared is not None else 0
    has_output = shared.total_output_tokens > 0 if shared is not None else False
    requests = shared.requests if shared is not None else 0
    for i, model in enumerate(catalog.every if market else catalog.models):
        if vendors and model.vendor not in vendors:
            continue
        if not needs <= model.capabilities:
            continue
        period = model.price_at(at)
        if period is None or (i >= own and not period.complete):
            continue
        if shared is not None:
            work = shared
        else:
            assert callable(workload)
            work = workload(model)
            longest, has_output, requests = (work.max_prompt_tokens,
                                             work.total_output_tokens > 0, work.requests)
        if model.context_window is not None and longest > model.context_window:
            continue
        amount, label = cost_of_workload(work, period, at)
        shown = catalog.fx.convert(amount, period.currency, currency, day)
        partial = not period.complete and has_output
        rows.append(QuoteRow(model, label, period.currency, amount, shown, currency,
                             requests, partial))
    rows.sort(key=lambda r: (r.amount_shown, r.model.key))
    return rows
