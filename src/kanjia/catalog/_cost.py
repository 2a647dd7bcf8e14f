"""What a request cost: a pure function of (usage, model, time).

``cost_of`` runs on every gateway response, so it does no validation, allocation
beyond the result, or lookups beyond the model's period list: the per-token rates
were precomputed as exact ``Decimal`` values when the catalog was loaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from kanjia.catalog._model import ModelEntry, PricePeriod, Rates

__all__ = ["Cost", "Usage", "batch_rates", "cost_of", "estimate_cost", "most_cost"]

_ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts of one request, as the vendor reported them (or as estimated).

    ``input_tokens`` counts ALL prompt tokens, including the cached (cache-read) and
    cache-write ones, so the uncached prompt is ``input - cached - cache_write``;
    ``cache_write_tokens`` counts every cache write, and ``cache_write_1h_tokens`` those
    of them written for one hour (Anthropic ``ttl: "1h"``, priced apart);
    ``output_tokens`` includes the reasoning tokens.
    """

    input_tokens: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    cache_write_1h_tokens: int = 0


@dataclass(frozen=True, slots=True)
class Cost:
    """An exact amount in the billing currency, with the price period it used."""

    amount: Decimal
    currency: str
    #: "2025-02-26" (its base prices), "2025-02-26+offpeak" (a window or tier applied),
    #: "2024-05-22+free"; "unpriced" when no price applied
    period_id: str
    input_amount: Decimal           # uncached prompt tokens
    cached_amount: Decimal
    cache_write_amount: Decimal     # 5-minute and 1-hour writes
    output_amount: Decimal
    priced: bool = True
    #: some price of the period is unknown (its output price): the amount is a floor
    partial: bool = False


def cost_of(usage: Usage, model: ModelEntry, at: datetime, *, batch: bool = False) -> Cost:
    """The cost of ``usage`` on ``model`` at ``at`` (naive means UTC).

    ``batch``: the request went through the vendor's batch API, priced at the model's
    ``batch_factor`` of the standard (windowless) price; the period id ends ``+batch``.
    Never raises for a missing price: a model without a period in force returns a
    zero ``Cost`` with ``priced=False`` and ``period_id="unpriced"``.
    """
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    period = model.price_at(at)
    if period is None:
        return Cost(_ZERO, model.currency, "unpriced", _ZERO, _ZERO, _ZERO, _ZERO, priced=False)
    prompt = usage.input_tokens
    rates = batch_rates(model, period, prompt) if batch else period.rates_for(at, prompt)
    cached = usage.cached_tokens
    write = usage.cache_write_tokens
    uncached = prompt - cached - write
    if uncached < 0:
        uncached = 0
    inp = rates.input * uncached
    cac = rates.cached * cached
    write_1h = usage.cache_write_1h_tokens
    if write_1h:
        write_1h = min(write_1h, write)
        hour = rates.cache_write if rates.cache_write_1h is None else rates.cache_write_1h
        wri = rates.cache_write * (write - write_1h) + hour * write_1h
    else:
        wri = rates.cache_write * write
    out = rates.output * usage.output_tokens
    pid = f"{period.id}+{rates.label}" if rates.label else period.id
    return Cost(inp + cac + wri + out, period.currency, pid, inp, cac, wri, out,
                partial=not rates.output_known and usage.output_tokens > 0)


def batch_rates(model: ModelEntry, period: PricePeriod, prompt_tokens: int) -> Rates:
    """The rates of a request sent through the vendor's batch API: the model's
    ``batch_factor`` times the standard rates (tiers apply, off-peak windows do not)."""
    factor = model.batch_factor
    if factor is None:
        raise ValueError(f"{model.key} has no batch price in the catalog")
    base = period.rates
    for tier in reversed(period.tiers):
        if prompt_tokens > tier.above_input_tokens:
            base = tier.rates
            break
    return Rates("batch", base.input * factor, base.cached * factor,
                 base.cache_write * factor, base.output * factor, base.output_known,
                 None if base.cache_write_1h is None else base.cache_write_1h * factor)


def estimate_cost(model: ModelEntry, prompt_tokens: int, output_tokens: int,
                  cached_share: float, at: datetime) -> Cost:
    """The expected cost of a request, for routing: ``cached_share`` of the prompt hits."""
    share = min(max(cached_share, 0.0), 1.0)
    cached = int(prompt_tokens * share)
    return cost_of(Usage(prompt_tokens, cached, 0, output_tokens, 0), model, at)


def most_cost(model: ModelEntry, prompt_tokens: int, output_tokens: int,
              at: datetime, *, batch: bool = False) -> tuple[Decimal, str]:
    """The most a request can cost (no prompt token cached): what a budget reserves.
    The same rates as ``cost_of`` (``at`` aware), without building a ``Cost``."""
    period = model.price_at(at)
    if period is None:
        return _ZERO, model.currency
    rates = batch_rates(model, period, prompt_tokens) if batch \
        else period.rates_for(at, prompt_tokens)
    top = max(rates.input, rates.cache_write,
              rates.cache_write if rates.cache_write_1h is None else rates.cache_write_1h)
    return top * prompt_tokens + rates.output * output_tokens, period.currency
