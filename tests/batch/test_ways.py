"""Which way a batch line goes: the cheapest that meets the deadline, priced from the
catalog (off-peak windows, batch API prices), and ``cost_of(batch=True)`` by hand."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from kanjia.batch import choose_way
from kanjia.catalog import Usage, cost_of, load_catalog
from kanjia.config import load_settings
from kanjia.routing.directory import ModelDirectory
from kanjia.routing.health import HealthBoard
from kanjia.routing.planner import Planner
from kanjia.vendors import load_vendor_specs

H = 3600.0


@pytest.fixture(scope="module")
def planner() -> Planner:
    settings = load_settings(None, sandbox_url="http://plan.invalid")
    catalog = load_catalog()
    return Planner(settings, ModelDirectory(settings, catalog, load_vendor_specs(), {}),
                   catalog, HealthBoard())


def _body(model: str) -> dict[str, object]:
    return {"model": model, "max_tokens": 1000,
            "messages": [{"role": "user", "content": "hello " * 50}]}


def test_vendor_batch_when_the_deadline_allows(planner: Planner) -> None:
    now = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)
    way = choose_way(planner, _body("openai/gpt-4o-mini"), "/v1/chat/completions", 24 * H, now)
    assert way.way == "vendor_batch" and way.target.key == "openai/gpt-4o-mini"
    now_way = choose_way(planner, _body("openai/gpt-4o-mini"), "/v1/chat/completions",
                         12 * H, now)
    assert now_way.way == "now"
    assert way.max_cost * 2 == now_way.max_cost  # the reservation is at the batch price


def test_offpeak_window_within_the_deadline(planner: Planner) -> None:
    # DeepSeek's 2025 off-peak window (00:30-08:30 Beijing) at half price or less
    peak = datetime(2025, 3, 3, 4, 0, tzinfo=UTC)       # 12:00 Beijing
    way = choose_way(planner, _body("deepseek/deepseek-chat"), "/v1/chat/completions",
                     24 * H, peak)
    assert way.way == "offpeak"
    assert way.send_at == datetime(2025, 3, 3, 16, 30, tzinfo=UTC)  # 00:30 Beijing
    short = choose_way(planner, _body("deepseek/deepseek-chat"), "/v1/chat/completions",
                       2 * H, peak)
    assert short.way == "now" and short.max_cost > way.max_cost


def test_no_batch_api_no_batch_way(planner: Planner) -> None:
    now = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)
    # Gemini has a batch price but kanjia has no adapter for its batch API
    way = choose_way(planner, _body("gemini/gemini-2.5-flash"), "/v1/chat/completions",
                     48 * H, now)
    assert way.way == "now"


def test_cost_of_batch_by_hand() -> None:
    catalog = load_catalog()
    entry = catalog.get("anthropic", "claude-haiku-4-5-20251001")
    assert entry is not None and entry.batch_factor == Decimal("0.5")
    at = datetime(2026, 12, 6, tzinfo=UTC)
    period = entry.price_at(at)
    assert period is not None and period.output_mtok is not None
    usage = Usage(input_tokens=3000, cached_tokens=1000, cache_write_tokens=500,
                  output_tokens=700)
    cost = cost_of(usage, entry, at, batch=True)
    cached = period.cached_mtok if period.cached_mtok is not None else period.input_mtok
    write = period.cache_write_mtok if period.cache_write_mtok is not None \
        else period.input_mtok
    want = (1500 * period.input_mtok + 1000 * cached + 500 * write
            + 700 * period.output_mtok) / 2 / 1_000_000
    assert cost.amount == want and cost.period_id.endswith("+batch")
    with pytest.raises(ValueError, match="no batch price"):
        cost_of(usage, catalog.get("deepseek", "deepseek-chat"),  # type: ignore[arg-type]
                at, batch=True)
