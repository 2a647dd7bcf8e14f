"""The savings split by lever, computed in one pass over the ledger's cells, against the
same definitions applied to every row one by one (``cost_of`` for the billed rates).

A few hundred random rows: off-peak windows and period changes (DeepSeek; the baseline's
own price changing within a UTC day), prompt tiers,
prompt-cache reads and 5-minute and 1-hour writes, Batch API rows, response-cache hits,
rows billed above today's catalog (a price override: ``unexplained``), routed and named
models, USD and CNY billing, an embeddings model and a model the catalog does not know.
"""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from tests.reports.conftest import random_prompt, random_when, record, usage_of, write

from kanjia.catalog import Catalog, ModelEntry, PricePeriod, Usage, cost_of
from kanjia.ledger import from_nano, to_nano
from kanjia.ledger.record import CallRecord
from kanjia.ledger.store import Database
from kanjia.reports import savings_report
from kanjia.reports._replay import clamp, kind_of

MODELS = ("deepseek/deepseek-chat", "deepseek/deepseek-v4-pro", "qwen/qwen-plus",
          "gemini/gemini-1.5-pro", "gemini/gemini-2.5-pro",
          "anthropic/claude-sonnet-4-5-20250929", "openai/gpt-4o-mini", "openai/gpt-4o",
          "minimax/MiniMax-M3", "openai/text-embedding-3-small", "acme/unknown-model")
BASELINES = ("openai/gpt-4o", "deepseek/deepseek-chat", "gemini/gemini-1.5-pro")
LEVERS = ("routing", "direct", "off_peak", "batch", "prompt_cache", "response_cache",
          "unexplained")


def _rows(catalog: Catalog, n: int, seed: int) -> list[CallRecord]:
    rng = random.Random(seed)
    out: list[CallRecord] = []
    for _ in range(n):
        when = random_when(rng)
        name = rng.choice(MODELS)
        route = rng.choice((None, "cheap-chat"))
        vendor, _, model = name.partition("/")
        entry = catalog.get(vendor, model)
        if rng.random() < 0.08:         # a response-cache hit: no tokens, cost 0
            out.append(record(catalog, name, when, input_tokens=0, output_tokens=0,
                              cache_hit=True, route=route, cost=Decimal(0),
                              cost_reporting=Decimal(0),
                              saved=Decimal(rng.randint(1, 10**9)) / 10**9))
            continue
        prompt, cached, write_, hour = random_prompt(rng)
        output = rng.randint(0, 3000)
        usage = Usage(prompt, cached, write_, output, 0, hour)
        kw: dict[str, object] = {}
        at = datetime.fromtimestamp(when, UTC)
        if entry is not None and entry.batch_factor is not None and rng.random() < 0.2 \
                and entry.price_at(at) is not None:
            c = cost_of(usage, entry, at, batch=True)
            kw = {"endpoint": "batch", "cost": c.amount, "cost_reporting": c.amount,
                  "price_period": c.period_id}
        elif entry is not None and entry.price_at(at) is not None and rng.random() < 0.05:
            c = cost_of(usage, entry, at)       # billed 10% over the catalog's price
            kw = {"cost": c.amount * Decimal("1.1"), "cost_reporting": c.amount * Decimal("1.1")}
        out.append(record(catalog, name, when, input_tokens=prompt, cached_tokens=cached,
                          cache_write_tokens=write_, cache_write_1h_tokens=hour,
                          output_tokens=output, route=route, **kw))
    # one UTC day, one model and route, either side of deepseek-chat's price change at
    # 2026-08-16 16:00 UTC: each priced at the baseline's price at its own time
    out += [record(catalog, "qwen/qwen-plus", f"2026-08-16T{hh}:00:00", input_tokens=3000,
                   output_tokens=800, route="cheap-chat") for hh in ("10", "20")]
    return out


def _list(period: PricePeriod, prompt: int, output: int) -> Decimal:
    """Every prompt token at the period's input price (its tier, no window), output at
    its output price."""
    rates = period.rates
    for tier in period.tiers:
        if prompt > tier.above_input_tokens:
            rates = tier.rates
    return rates.input * prompt + rates.output * output


class _Sums:
    """Amounts in CNY and USD, each converted on its own day."""

    def __init__(self, catalog: Catalog) -> None:
        self.fx = catalog.fx
        self.cny: dict[str, Decimal] = defaultdict(Decimal)
        self.usd: dict[str, Decimal] = defaultdict(Decimal)

    def add(self, name: str, amount: Decimal, currency: str, when: datetime) -> None:
        self.cny[name] += self.fx.convert(amount, currency, "CNY", when.date())
        self.usd[name] += self.fx.convert(amount, currency, "USD", when.date())


def _per_row(rows: list[CallRecord], catalog: Catalog, base: ModelEntry) -> _Sums:
    """The split's definitions (see ``kanjia.reports._levers``) applied row by row; also
    each lever row's ledger cost (``cost:<lever>``) and baseline (``base:<lever>``)."""
    out = _Sums(catalog)
    for r in rows:
        at = datetime.fromtimestamp(r.ts, UTC)
        lever = "response_cache" if r.cache_hit else "direct" if r.route is None else "routing"
        cost = from_nano(to_nano(r.cost))       # what the ledger holds
        out.add("total", cost, r.currency, at)
        out.add(f"cost:{lever}", cost, r.currency, at)
        if r.cache_hit:
            out.add("baseline_list", cost + r.saved, r.currency, at)
            out.add("response_cache", r.saved, r.currency, at)
            out.add("base:response_cache", cost + r.saved, r.currency, at)
            continue
        entry = catalog.get(r.vendor or "", r.model or "")
        period = entry.price_at(at) if entry is not None else None
        when = clamp(base, at)
        assert when is not None
        if entry is None or kind_of(entry) != kind_of(base):
            out.add(f"base:{lever}", cost, r.currency, at)
        else:
            c = cost_of(usage_of(r), base, when[0])
            out.add(f"base:{lever}", c.amount, c.currency, at)
        if entry is None or period is None or kind_of(entry) != kind_of(base) \
                or period.currency != r.currency:
            out.add("baseline_list", cost, r.currency, at)
            continue
        batch = (r.endpoint == "batch" or "+batch" in (r.price_period or "")) \
            and entry.batch_factor is not None
        usage = usage_of(r)
        billed = cost_of(usage, entry, at, batch=batch).amount
        no_cache = cost_of(Usage(r.input_tokens, 0, 0, r.output_tokens), entry, at,
                           batch=batch).amount
        standard = _list(period, r.input_tokens, r.output_tokens)
        base_period = base.price_at(when[0])
        assert base_period is not None
        baseline = _list(base_period, r.input_tokens, r.output_tokens)
        out.add("baseline_list", baseline, base_period.currency, when[0])
        out.add("unexplained", billed - cost, r.currency, at)
        out.add("prompt_cache", no_cache - billed, r.currency, at)
        out.add("batch" if batch else "off_peak", standard - no_cache, r.currency, at)
        out.add("direct" if r.route is None else "routing", baseline,
                base_period.currency, when[0])
        out.add("direct" if r.route is None else "routing", -standard, r.currency, at)
    return out


async def _check(db: Database, catalog: Catalog, rows: list[CallRecord],
                 baseline: str) -> None:
    base = catalog.find(baseline)[0]
    want = _per_row(rows, catalog, base)
    assert want.cny["unexplained"] and want.cny["batch"] and want.cny["off_peak"]
    assert want.cny["prompt_cache"] and want.cny["response_cache"]
    for currency in ("CNY", "USD"):
        r = await savings_report(db, catalog, baseline=baseline, currency=currency)
        split = r["lever_split"]
        got = {name: split["levers"][name]["amounts"] for name in LEVERS}
        for name in ("total", "baseline_list"):
            got[name] = split[name]["amounts"]
        for lever in r["levers"]:
            got[f"cost:{lever['lever']}"] = lever["amounts"]
            got[f"base:{lever['lever']}"] = lever["baseline"]["amounts"]
        assert set(got) == {*LEVERS, "total", "baseline_list",
                            *(f"{k}:{n}" for k in ("cost", "base")
                              for n in ("routing", "direct", "response_cache"))}
        for name, amounts in got.items():
            for cur, sums in (("CNY", want.cny), ("USD", want.usd)):
                assert amounts[cur] == pytest.approx(float(sums[name]), rel=1e-12,
                                                     abs=1e-12), (name, cur)
        assert sum(v["amount"] for v in split["levers"].values()) == pytest.approx(
            split["saving"]["amount"], rel=1e-12)
        assert split["total"]["amount"] == pytest.approx(r["total"]["amount"], rel=1e-12)


@pytest.mark.parametrize("baseline", BASELINES)
async def test_one_pass_split_equals_the_split_row_by_row(db: Database, catalog: Catalog,
                                                          baseline: str) -> None:
    rows = _rows(catalog, 400, seed=11)
    await write(db, rows)
    await _check(db, catalog, rows, baseline)


async def test_one_pass_split_equals_the_split_row_by_row_on_postgresql(
        pg_db: Database, catalog: Catalog) -> None:
    rows = _rows(catalog, 300, seed=12)
    await write(pg_db, rows)
    for baseline in BASELINES:
        await _check(pg_db, catalog, rows, baseline)
