"""Quoting a workload: the same exact amounts as cost_of, summed, for every model."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from kanjia.catalog import Catalog, Usage, Workload, cost_of, quote
from kanjia.catalog._quote import cost_of_workload

rows = st.lists(st.tuples(st.integers(0, 400_000), st.floats(0, 1), st.integers(0, 8000),
                          st.integers(1, 5)), min_size=1, max_size=12)


@settings(max_examples=60, deadline=None, database=None)
@given(data=rows, at=st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2027, 1, 1),
                                  timezones=st.just(UTC)))
def test_workload_equals_the_sum_of_cost_of(catalog: Catalog, data: list[tuple[int, float, int,
                                                                                int]],
                                            at: datetime) -> None:
    table = [(inp, int(inp * share), 0, out, n) for inp, share, out, n in data]
    work = Workload.from_rows(table)
    for model in catalog.models:
        period = model.price_at(at)
        if period is None:
            continue
        amount, _ = cost_of_workload(work, period, at)
        expected = sum((cost_of(Usage(i, c, w, o, 0), model, at).amount * n
                        for i, c, w, o, n in table), Decimal(0))
        assert amount == expected, model.key


def test_uniform_quote_is_sorted_and_filtered(catalog: Catalog) -> None:
    at = datetime(2025, 3, 1, 12, tzinfo=UTC)
    rows = quote(catalog, Workload.uniform(2000, 500, 0.3, 1_000_000), at, "CNY")
    amounts = [r.amount_shown for r in rows]
    assert amounts == sorted(amounts)
    assert all("chat" in r.model.capabilities for r in rows)
    assert all(r.requests == 1_000_000 for r in rows)
    keys = [r.model.key for r in rows]
    assert "openai/gpt-5" not in keys              # not launched yet on that date
    chat = next(r for r in rows if r.model.key == "deepseek/deepseek-chat")
    assert chat.period_id == "2025-02-26"            # 20:00 Beijing: the base price
    assert chat.amount == Decimal(1_000_000) * (1400 * 2 + 600 * Decimal("0.5") + 500 * 8) / 10**6
    big = quote(catalog, Workload.uniform(300_000, 10), at, "USD", capabilities=["tools"])
    assert all((r.model.context_window or 0) >= 300_000 for r in big)
    assert all(r.shown_currency == "USD" for r in big)


def test_a_million_requests_in_well_under_a_second(catalog: Catalog) -> None:
    import time

    rng = np.random.default_rng(1)
    n = 1_000_000
    inp = rng.integers(10, 250_000, n)
    work = Workload.from_arrays(inp, inp // 3, np.zeros(n, dtype=np.int64),
                                rng.integers(1, 4000, n))
    t0 = time.perf_counter()
    rows = quote(catalog, work, datetime(2026, 11, 27, 3, tzinfo=UTC), "CNY")
    assert time.perf_counter() - t0 < 3.0          # ~0.1 s in practice
    assert rows and all(r.requests <= n for r in rows)


def test_workload_validation() -> None:
    import pytest

    with pytest.raises(ValueError):
        Workload.from_rows([(10, 0, 0, -1, 1)])
    w = Workload.from_rows([(10, 50, 0, 1, 1)])     # cached is clipped to the prompt
    assert int(w.cached_tokens[0]) == 10
