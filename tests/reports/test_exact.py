"""The fast path (cells priced once) against ``cost_of`` on every row, one by one.

A few hundred random rows over models with off-peak windows (weekday-only ones too),
prompt-length tiers, period changes at odd hours, USD and CNY billing, an embeddings
model and a model the catalog does not know; every report must equal the sum of
``cost_of`` over the rows, per row label, to float precision.
"""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from tests.reports.conftest import random_prompt, random_when, record, usage_of, write

from kanjia.catalog import Catalog, ModelEntry, cost_of
from kanjia.ledger.record import CallRecord
from kanjia.ledger.store import Database
from kanjia.reports import reprice_report, savings_report
from kanjia.reports._replay import clamp, kind_of
from kanjia.reports._reprice import reprice_instant

MODELS = ("deepseek/deepseek-chat", "deepseek/deepseek-reasoner", "deepseek/deepseek-v4-pro",
          "qwen/qwen-plus", "qwen/qwen-max", "gemini/gemini-1.5-pro", "gemini/gemini-2.5-pro",
          "anthropic/claude-sonnet-4-5-20250929", "openai/gpt-4o", "openai/gpt-5.5",
          "minimax/MiniMax-M3", "zhipu/glm-4-flash", "openai/text-embedding-3-small",
          "acme/unknown-model")


def _rows(catalog: Catalog, n: int, seed: int) -> list[CallRecord]:
    rng = random.Random(seed)
    out: list[CallRecord] = []
    for _ in range(n):
        when = random_when(rng)
        prompt, cached, write_, hour = random_prompt(rng)
        out.append(record(catalog, rng.choice(MODELS), when, input_tokens=prompt,
                          cached_tokens=cached, cache_write_tokens=write_,
                          cache_write_1h_tokens=hour,
                          output_tokens=rng.randint(0, 3000),
                          route=rng.choice((None, "cheap-chat"))))
    return out


def _cny(catalog: Catalog, amount: Decimal, currency: str, when: float) -> Decimal:
    return catalog.fx.convert(amount, currency, "CNY", datetime.fromtimestamp(when, UTC).date())


def _check(report: dict[str, object], expected: dict[str, Decimal], field: str | None) -> None:
    rows = report["rows"]
    assert isinstance(rows, list)
    got = {r["model"]: (r[field]["amounts"]["CNY"] if field else r["amounts"]["CNY"])
           for r in rows}
    assert set(got) == set(expected)
    for key, value in expected.items():
        assert got[key] == pytest.approx(float(value), rel=1e-12, abs=1e-15), key


@pytest.fixture()
async def rows(db: Database, catalog: Catalog) -> list[CallRecord]:
    found = _rows(catalog, 400, seed=6)
    await write(db, found)
    return found


def _entry(catalog: Catalog, r: CallRecord) -> ModelEntry | None:
    return catalog.get(r.vendor or "", r.model or "")


@pytest.mark.parametrize("baseline", ["openai/gpt-4o", "deepseek/deepseek-chat",
                                      "gemini/gemini-1.5-pro",
                                      "anthropic/claude-sonnet-4-5-20250929"])
async def test_savings_equal_cost_of_per_row(db: Database, catalog: Catalog,
                                             rows: list[CallRecord], baseline: str) -> None:
    base = catalog.find(baseline)[0]
    expected: dict[str, Decimal] = defaultdict(Decimal)
    for r in rows:
        entry = _entry(catalog, r)
        key = f"{r.vendor}/{r.model}"
        if entry is None or kind_of(entry) != kind_of(base):
            expected[key] += _cny(catalog, r.cost, r.currency, r.ts)   # kept at its cost
            continue
        found = clamp(base, datetime.fromtimestamp(r.ts, UTC))
        assert found is not None
        c = cost_of(usage_of(r), base, found[0])
        expected[key] += _cny(catalog, c.amount, c.currency, r.ts)
    report = await savings_report(db, catalog, baseline=baseline, currency="CNY")
    _check(report, expected, "baseline")
    assert report["baseline_total"]["amounts"]["CNY"] == pytest.approx(
        float(sum(expected.values())), rel=1e-12)
    actual = sum(_cny(catalog, r.cost, r.currency, r.ts) for r in rows)
    assert report["total"]["amounts"]["CNY"] == pytest.approx(float(actual), rel=1e-12)


@pytest.mark.parametrize("at", [date(2024, 4, 30), date(2025, 3, 3), date(2026, 4, 26),
                                date(2026, 8, 20), date(2026, 8, 22)])
async def test_reprice_at_equals_cost_of_per_row(db: Database, catalog: Catalog,
                                                 rows: list[CallRecord], at: date) -> None:
    report = await reprice_report(db, catalog, at=at, currency="CNY")
    used = {s["model"]: catalog.find(s["used"])[0] for s in report["substitutions"]}
    expected: dict[str, Decimal] = defaultdict(Decimal)
    for r in rows:
        entry = _entry(catalog, r)
        key = f"{r.vendor}/{r.model}"
        if entry is None:
            expected[key] += _cny(catalog, r.cost, r.currency, r.ts)
            continue
        when = reprice_instant(r.ts, at)
        target = entry if entry.price_at(when) is not None else used[key]
        c = cost_of(usage_of(r), target, when)
        assert c.priced
        expected[key] += _cny(catalog, c.amount, c.currency, r.ts)
    _check(report, expected, None)


@pytest.mark.parametrize(("vendor", "at"), [("openai", None), ("deepseek", None),
                                            ("qwen", date(2024, 4, 30)),
                                            ("deepseek", date(2026, 8, 21))])
async def test_reprice_on_equals_cost_of_per_row(db: Database, catalog: Catalog,
                                                 rows: list[CallRecord], vendor: str,
                                                 at: date | None) -> None:
    report = await reprice_report(db, catalog, on_vendor=vendor, at=at, currency="CNY")
    mapping = {k: catalog.find(v)[0] for k, v in report["mapping"].items()}
    expected: dict[str, Decimal] = defaultdict(Decimal)
    for r in rows:
        entry = _entry(catalog, r)
        key = f"{r.vendor}/{r.model}"
        if entry is None or key not in mapping:     # no equivalent there: kept
            assert entry is None or any(key in n for n in report["notes"])
            expected[key] += _cny(catalog, r.cost, r.currency, r.ts)
            continue
        target = mapping[key]
        if entry.vendor == vendor:
            assert target is entry
        when = reprice_instant(r.ts, at) if at else datetime.fromtimestamp(r.ts, UTC)
        found = clamp(target, when)
        assert found is not None
        c = cost_of(usage_of(r), target, found[0])
        expected[key] += _cny(catalog, c.amount, c.currency, r.ts)
    _check(report, expected, None)


async def test_by_day_and_route_sum_like_by_model(db: Database, catalog: Catalog,
                                                  rows: list[CallRecord]) -> None:
    by_model = await savings_report(db, catalog, baseline="deepseek/deepseek-chat")
    for by in ("day", "route", "vendor"):
        other = await savings_report(db, catalog, baseline="deepseek/deepseek-chat", by=by)
        assert other["baseline_total"]["amount"] == pytest.approx(
            by_model["baseline_total"]["amount"], rel=1e-12)
        assert sum(r["baseline"]["amount"] for r in other["rows"]) == pytest.approx(
            by_model["baseline_total"]["amount"], rel=1e-12)
    per_day: dict[str, Decimal] = defaultdict(Decimal)
    base = catalog.find("deepseek/deepseek-chat")[0]
    for r in rows:
        entry = _entry(catalog, r)
        day = datetime.fromtimestamp(r.ts, UTC).date().isoformat()
        if entry is None or kind_of(entry) != "chat":
            per_day[day] += _cny(catalog, r.cost, r.currency, r.ts)
            continue
        found = clamp(base, datetime.fromtimestamp(r.ts, UTC))
        assert found is not None
        c = cost_of(usage_of(r), base, found[0])
        per_day[day] += _cny(catalog, c.amount, c.currency, r.ts)
    daily = await savings_report(db, catalog, baseline="deepseek/deepseek-chat", by="day")
    got = {r["day"]: r["baseline"]["amounts"]["CNY"] for r in daily["rows"]}
    assert got == pytest.approx({k: float(v) for k, v in per_day.items()}, rel=1e-12)
