"""Self-hosting an open-weights model vs paying its API, at some traffic.

The API side is linear: tokens/day × the catalog's blended price per token (``input
_share`` of the tokens are prompt tokens, ``cached_share`` of those hit the cache),
averaged over every 15 minutes of a week so that peak and off-peak windows count for
their hours. The self-hosted side is a step function: one GPU costs ``gpu_hourly`` ×
24 a day and serves ``tokens_per_second × utilization × 86 400`` tokens a day, and
traffic needs whole GPUs. A month is 30 days.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from kanjia.catalog import Catalog, ModelEntry, PricePeriod
from kanjia.reports._amounts import CURRENCIES, Amounts, check_currency, money
from kanjia.reports._equivalent import _names

__all__ = ["DAYS_PER_MONTH", "api_model", "breakeven", "parse_amount"]

DAYS_PER_MONTH = 30
_AMOUNT = re.compile(r"^\s*(?P<n>\d+(?:\.\d+)?|\.\d+)\s*(?P<cur>[A-Za-z]{3})?\s*$")
_MTOK = Decimal(1_000_000)


def parse_amount(text: str, default_currency: str) -> tuple[Decimal, str]:
    """``"2.5USD"``, ``"15 CNY"`` or a bare ``"2.5"`` (in ``default_currency``)."""
    m = _AMOUNT.match(text)
    if m is None:
        raise ValueError(f"bad amount {text!r}: expected e.g. 2.5USD, 15CNY or 2.5")
    cur = (m["cur"] or default_currency).upper()
    if cur not in CURRENCIES:
        raise ValueError(f"bad amount {text!r}: the currency must be CNY or USD")
    try:
        amount = Decimal(m["n"])
    except InvalidOperation:  # pragma: no cover - the pattern admits only decimals
        raise ValueError(f"bad amount {text!r}") from None
    if amount <= 0:
        raise ValueError(f"the amount {text!r} must be positive")
    return amount, cur


def api_model(catalog: Catalog, name: str) -> tuple[ModelEntry, ModelEntry]:
    """(the model to self-host, the hosted model whose API price it is compared with).

    The model must be open-weights; a self-hosted catalog entry (vllm, ollama, ...) is
    compared with the same model at a hosted vendor."""
    found = catalog.find(name)
    if not found:
        raise ValueError(f"model {name!r} is not in the catalog (see `kanjia prices`)")
    model = found[0]
    if not model.open_weights:
        opens = sorted(m.key for m in catalog.models
                       if m.open_weights and m.region != "self-hosted")
        raise ValueError(f"{model.key} is not open-weights: it cannot be self-hosted, so "
                         f"there is no break-even (open-weights: {', '.join(opens[:6])}, ...)")
    if model.region != "self-hosted":
        return model, model
    names = _names(model)
    hosted = [m for m in catalog.models if m.region != "self-hosted" and names & _names(m)
              and m.periods]
    if not hosted:
        raise ValueError(f"{model.key} is self-hosted and no vendor in the catalog sells "
                         "the same model by the token: nothing to compare with")
    return model, hosted[0]


def _week_rates(period_of: ModelEntry, at: datetime) -> tuple[PricePeriod, list[Decimal]]:
    """The period in force at ``at`` and its mean per-token (input, cached, output) rates
    over the week from ``at`` (every 15 minutes)."""
    period = period_of.price_at(at)
    if period is None:
        raise ValueError(f"{period_of.key} has no price on {at.date()}")
    sums = [Decimal(0)] * 3
    steps = 7 * 96
    for i in range(steps):
        r = period.rates_for(at + timedelta(minutes=15 * i), 0)
        sums[0] += r.input
        sums[1] += r.cached
        sums[2] += r.output
    return period, [s / steps for s in sums]


def _gpus(tokens_per_day: float, capacity: float) -> int:
    return max(1, math.ceil(tokens_per_day / capacity - 1e-9))


def breakeven(catalog: Catalog, model: str, *, gpu_hourly: Decimal, gpu_currency: str,
              tokens_per_second: float, tokens_per_day: float, utilization: float = 0.6,
              currency: str = "CNY", input_share: float = 0.75, cached_share: float = 0.0,
              at: datetime | None = None, traffic_source: str = "given") -> dict[str, Any]:
    """Monthly cost of the API and of self-hosting at ``tokens_per_day``, the break-even
    traffic, and the GPUs needed. Raises ``ValueError`` for bad input."""
    currency = check_currency(currency)
    gpu_currency = check_currency(gpu_currency)
    if not tokens_per_second > 0:
        raise ValueError("tokens per second must be positive")
    if not 0 < utilization <= 1:
        raise ValueError("utilization must be in (0, 1]")
    if tokens_per_day < 0:
        raise ValueError("tokens per day cannot be negative")
    if not (0 <= input_share <= 1 and 0 <= cached_share <= 1):
        raise ValueError("input and cached shares must be in [0, 1]")
    if gpu_hourly <= 0:
        raise ValueError("the GPU hourly price must be positive")
    at = at or datetime.now(UTC)
    local, hosted = api_model(catalog, model)
    period, (r_in, r_cached, r_out) = _week_rates(hosted, at)
    share_in, share_cached = Decimal(str(input_share)), Decimal(str(cached_share))
    per_token = (share_in * ((1 - share_cached) * r_in + share_cached * r_cached)
                 + (1 - share_in) * r_out)
    day = at.date()
    fx = catalog.fx
    price = fx.convert(per_token, period.currency, currency, day)
    gpu_day = fx.convert(gpu_hourly, gpu_currency, currency, day) * 24
    capacity = tokens_per_second * utilization * 86_400
    gpus = _gpus(tokens_per_day, capacity)
    tokens = Decimal(str(tokens_per_day))
    api_month = price * tokens * DAYS_PER_MONTH
    self_month = gpu_day * gpus * DAYS_PER_MONTH
    first, always = _crossings(float(price), float(gpu_day), capacity)
    cheaper = "self-host" if self_month < api_month else "api"

    def both(amount: Decimal) -> dict[str, Any]:
        return money(Amounts.of(fx, amount, currency, day), currency)

    notes = [f"{hosted.key}'s API price is the comparison (the same model, hosted)"
             ] if hosted is not local else []
    if not period.complete:
        notes.append(f"{hosted.key}'s output price is unknown: the API cost is a floor")
    if period.free or price == 0:
        notes.append(f"{hosted.key} is free by the API: self-hosting never pays off")
    return {
        "kind": "breakeven", "model": local.key, "api_model": hosted.key,
        "open_weights": local.open_weights, "params_b": local.params_b, "currency": currency,
        "at": day.isoformat(), "days_per_month": DAYS_PER_MONTH,
        "api": {"price_period": period.id, "billing_currency": period.currency,
                "input_mtok": float(fx.convert(r_in, period.currency, currency, day) * _MTOK),
                "cached_mtok": float(fx.convert(r_cached, period.currency, currency, day)
                                     * _MTOK),
                "output_mtok": float(fx.convert(r_out, period.currency, currency, day) * _MTOK),
                "blended_mtok": float(price * _MTOK), "input_share": input_share,
                "cached_share": cached_share},
        "self_host": {"gpu_hourly": both(gpu_day / 24),
                      "gpu_hourly_given": {"amount": float(gpu_hourly),
                                           "currency": gpu_currency},
                      "tokens_per_second": tokens_per_second, "utilization": utilization,
                      "tokens_per_day_per_gpu": capacity,
                      "cost_per_mtok_full_load": float(gpu_day / Decimal(capacity) * _MTOK)},
        "traffic": {"tokens_per_day": tokens_per_day, "source": traffic_source},
        "monthly": {"api": both(api_month), "self_host": both(self_month), "gpus": gpus,
                    "cheaper": cheaper},
        "gpus_needed": gpus,
        "breakeven_tokens_per_day": first,
        "self_host_always_cheaper_above_tokens_per_day": always,
        "total": {**both(min(api_month, self_month)), "cheaper": cheaper,
                  "api": float(api_month), "self_host": float(self_month)},
        "notes": notes,
    }


def _crossings(price: float, gpu_day: float, capacity: float) -> tuple[float | None,
                                                                        float | None]:
    """(the lowest tokens/day at which self-hosting costs no more than the API, the
    tokens/day above which it never costs more again); None when it never pays off.

    With n GPUs (traffic in ((n-1)·cap, n·cap]) self-hosting is cheaper from n·G/p on;
    that point lies inside the step while n·G/p <= n·cap, i.e. when one full GPU beats
    the API per token, and the steps are covered end to end from the first n with
    n·G/p <= (n-1)·cap."""
    if price <= 0 or gpu_day / capacity >= price:
        return None, None
    first = gpu_day / price
    n = math.ceil(price * capacity / (price * capacity - gpu_day) - 1e-12)
    always = max(first, (n - 1) * gpu_day / price)
    return first, always
