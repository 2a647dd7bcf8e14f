"""Savings split by lever: routing, off-peak, batch, prompt cache, response cache.

A request can use several levers at once (a routed request, sent in an off-peak window,
half of its prompt read from the vendor's cache), so its saving is split along one
chain of prices, each step credited to exactly one lever. For a ledger row with usage
U on model M at time t:

- ``A``  what the ledger recorded (the bill);
- ``Ac`` U priced on M at the rates the call was billed at (the window's, the batch
  price or the standard ones), cached tokens at the cache price, writes at the write
  price: the catalog's view of ``A``;
- ``N``  the same rates with every prompt token at the input price (no prompt cache);
- ``S``  every prompt token at M's standard input price in force at t (tier included,
  no time-of-day window, no batch discount);
- ``B``  every prompt token at the baseline model's standard price at t (its nearest
  priced time when it had none then): the "no levers" price of the request.

Then ``prompt_cache = N - Ac`` (reads at the cache price instead of input, less any
write premium: negative when writes cost more than reads saved); ``off_peak = S - N``
for rows billed in a time-of-day window (``price_period`` with ``+offpeak``; a surcharge
window such as ``+peak`` counts negative), ``batch = S - N`` for rows billed at a batch
price (``+batch`` or endpoint ``batch``); ``routing = B - S`` for requests a route chose
the model for and ``direct = B - S`` for requests that named their model (the client's
choice, not a kanjia lever, shown so the split adds up); ``response_cache``: a hit costs
0 and saved what it recorded (``saved``); ``unexplained = Ac - A``: where the ledger
billed a call other than today's catalog prices it (a price override, an estimate that
was repriced): normally 0. The levers add up exactly to ``B - A`` = ``baseline_list -
total``. Rows the baseline cannot serve (embeddings for a chat baseline) or whose model
the catalog does not know count their ledger cost on both sides: they save nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from kanjia.catalog import Catalog, ModelEntry, PricePeriod, Rates, Usage, batch_rates
from kanjia.reports._amounts import Amounts, money
from kanjia.reports._replay import clamp, kind_of
from kanjia.reports._scan import Cell, bucket_prompt

__all__ = ["LEVER_NAMES", "lever_split"]

#: the split's keys, in the order reports print them
LEVER_NAMES = ("routing", "direct", "off_peak", "batch", "prompt_cache", "response_cache",
               "unexplained")
_NANO = Decimal(10) ** 9


def _standard(period: PricePeriod, prompt: int) -> Rates:
    """The period's rates without a time-of-day window (its prompt tier applies)."""
    for tier in reversed(period.tiers):
        if prompt > tier.above_input_tokens:
            return tier.rates
    return period.rates


def _priced(u: Usage, r: Rates, uncached: int | None = None) -> Decimal:
    """``u`` at rates ``r``, the way ``cost_of`` prices it (linear in the tokens, so a
    group's summed usage at the group's rates is the sum of its requests' costs);
    ``uncached``: the sum of each request's uncached prompt, when ``u`` sums several."""
    write = u.cache_write_tokens
    if uncached is None:
        uncached = max(0, u.input_tokens - u.cached_tokens - write)
    hour_n = min(u.cache_write_1h_tokens, write)
    hour = r.cache_write if r.cache_write_1h is None else r.cache_write_1h
    return (r.input * uncached + r.cached * u.cached_tokens
            + r.cache_write * (write - hour_n) + hour * hour_n + r.output * u.output_tokens)


def _uncached(u: Usage) -> Usage:
    return Usage(u.input_tokens, 0, 0, u.output_tokens, 0, 0)


def lever_split(cells: Iterable[Cell], catalog: Catalog, base: ModelEntry,
                limits: Sequence[int], *, currency: str) -> dict[str, Any]:
    """``{"baseline_list", "total", "saving", "levers": {name: money}}`` (see the module
    docstring); ``sum(levers) == saving == baseline_list - total``.

    ``cells`` come from the savings report's own scan (``scan(levers=True)`` over a
    layout whose buckets ``limits`` cut every catalog model's prompt tiers): within a
    cell every request has the same model, recorded price period, batch and route
    flags, prompt tier and exchange rate, and its time prices the baseline like every
    other's; prices are linear in tokens, so each cell is priced once."""
    fx = catalog.fx
    levers = {name: Amounts() for name in LEVER_NAMES}
    total, baseline = Amounts(), Amounts()
    base_kind = kind_of(base)
    entries: dict[tuple[str | None, str | None], ModelEntry | None] = {}

    def credit(name: str, amount: Decimal, cur: str, day: date) -> None:
        if amount:
            levers[name].add(Amounts.of(fx, amount, cur, day))

    for cell in cells:
        facts = cell.levers
        if facts is None:
            raise ValueError("lever_split needs the cells of a scan with levers=True")
        cur = facts.currency
        at = datetime.fromtimestamp(facts.first_ts, UTC)
        day = at.date()
        actual = (Decimal(cell.cost_cny_nano) + Decimal(cell.cost_usd_nano)) / _NANO
        total.add(Amounts.of(fx, actual, cur, day))
        if facts.hit:
            saved = Decimal(facts.saved_nano) / _NANO
            baseline.add(Amounts.of(fx, actual + saved, cur, day))
            credit("response_cache", saved, cur, day)
            continue
        ident = (cell.vendor, cell.model)
        if ident not in entries:
            entries[ident] = catalog.get(str(cell.vendor), str(cell.model))
        entry = entries[ident]
        period = entry.price_at(at) if entry is not None else None
        when = clamp(base, at)
        if entry is None or period is None or when is None or kind_of(entry) != base_kind \
                or period.currency != cur:
            baseline.add(Amounts.of(fx, actual, cur, day))  # kept: saves nothing
            continue
        prompt = bucket_prompt(limits, cell.bucket)  # every prompt of the cell: one tier
        u = Usage(cell.input_tokens, cell.cached, cell.cache_write, cell.output, 0,
                  cell.cache_write_1h)
        batch = ("+batch" in (facts.price_period or "") or facts.batch_endpoint) \
            and entry.batch_factor is not None
        applied = batch_rates(entry, period, prompt) if batch \
            else period.rates_for(at, prompt)
        ac = _priced(u, applied, cell.uncached)
        n = _priced(_uncached(u), applied)
        s = _priced(_uncached(u), _standard(period, prompt))
        base_period = base.price_at(when[0])
        assert base_period is not None
        b = _priced(_uncached(u), _standard(base_period, prompt))
        b_day = when[0].date()
        baseline.add(Amounts.of(fx, b, base_period.currency, b_day))
        credit("unexplained", ac - actual, cur, day)
        credit("prompt_cache", n - ac, cur, day)
        credit("batch" if batch else "off_peak", s - n, cur, day)
        # routing/direct: B (baseline currency) - S (the model's): each converted on its day
        levers["direct" if facts.direct else "routing"].add(
            Amounts.of(fx, b, base_period.currency, b_day).minus(Amounts.of(fx, s, cur, day)))
    saving = baseline.minus(total)
    return {"baseline": base.key, "baseline_list": money(baseline, currency),
            "total": money(total, currency), "saving": money(saving, currency),
            "levers": {name: money(levers[name], currency) for name in LEVER_NAMES}}
