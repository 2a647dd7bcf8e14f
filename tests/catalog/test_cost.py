"""cost_of: exact, monotone, zero when free, the right period and time-of-day window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from kanjia.catalog import (
    Catalog,
    ModelEntry,
    Usage,
    cost_of,
    estimate_cost,
    load_catalog,
    most_cost,
)

CATALOG = load_catalog()
BEIJING = timezone(timedelta(hours=8))
PRICED = [m for m in CATALOG.models if m.periods]
FREE = [m for m in CATALOG.models if m.periods and all(p.free for p in m.periods)]

tokens = st.integers(min_value=0, max_value=2_000_000)
instants = st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2027, 6, 1),
                        timezones=st.just(UTC))
models = st.sampled_from(PRICED)


@st.composite
def usages(draw: st.DrawFn) -> Usage:
    prompt = draw(tokens)
    cached = draw(st.integers(0, prompt))
    write = draw(st.integers(0, prompt - cached))
    out = draw(tokens)
    return Usage(prompt, cached, write, out, draw(st.integers(0, out)),
                 draw(st.integers(0, write)))


def _get(key: str) -> ModelEntry:
    vendor, model = key.split("/", 1)
    entry = CATALOG.get(vendor, model)
    assert entry is not None
    return entry


def test_exact_amounts() -> None:
    chat = _get("deepseek/deepseek-chat")
    at = datetime(2024, 6, 1, tzinfo=UTC)
    cost = cost_of(Usage(1_000_000, 0, 0, 1_000_000, 0), chat, at)
    assert cost.amount == 3 and cost.priced
    assert (cost.currency, cost.period_id) == ("CNY", "2024-05-06")
    # 1234 prompt tokens of which 1000 hit the cache, 100 output, V3 list price
    at = datetime(2025, 2, 20, 4, tzinfo=UTC)
    cost = cost_of(Usage(1234, 1000, 0, 100, 0), chat, at)
    expected = (Decimal(234) * 2 + Decimal(1000) * Decimal("0.5") + 100 * 8) / 1_000_000
    assert cost.amount == expected
    assert cost.input_amount + cost.cached_amount + cost.output_amount == cost.amount
    assert str(cost.amount.normalize()) == "0.001768"


def test_anthropic_cache_write_and_read() -> None:
    sonnet = _get("anthropic/claude-sonnet-4-20250514")
    at = datetime(2025, 7, 1, tzinfo=UTC)
    cost = cost_of(Usage(10_000, 6_000, 3_000, 500, 0), sonnet, at)
    assert cost.input_amount == Decimal(1_000 * 3) / 1_000_000
    assert cost.cached_amount == Decimal("0.3") * 6_000 / 1_000_000
    assert cost.cache_write_amount == Decimal("3.75") * 3_000 / 1_000_000
    assert cost.output_amount == Decimal(15 * 500) / 1_000_000
    assert cost.currency == "USD"


def test_anthropic_one_hour_cache_write() -> None:
    """1-hour writes (ttl "1h") cost 2x base input, 5-minute writes 1.25x, reads 0.1x."""
    sonnet = _get("anthropic/claude-sonnet-4-20250514")
    at = datetime(2025, 7, 1, tzinfo=UTC)
    # 10k prompt: 2k read, 5k written (1k of them for an hour), 3k plain
    cost = cost_of(Usage(10_000, 2_000, 5_000, 500, 0, 1_000), sonnet, at)
    assert cost.input_amount == Decimal(3) * 3_000 / 1_000_000
    assert cost.cached_amount == Decimal("0.3") * 2_000 / 1_000_000
    assert cost.cache_write_amount == (Decimal("3.75") * 4_000 + Decimal(6) * 1_000) / 1_000_000
    assert cost.amount == (Decimal(9_000) + 600 + 15_000 + 6_000 + 15 * 500) / 1_000_000
    # every Anthropic period that prices 5-minute writes prices 1-hour ones at 2x input
    for entry in CATALOG.by_vendor("anthropic"):
        for period in entry.periods:
            assert period.cache_write_1h_mtok == 2 * period.input_mtok, entry.key
            for tier in period.tiers:
                assert tier.cache_write_1h_mtok == 2 * tier.input_mtok, entry.key


def test_one_hour_write_defaults_to_the_write_price() -> None:
    """A model without a 1-hour price bills 1-hour writes as (5-minute) writes."""
    gpt = _get("openai/gpt-6-sol")
    at = datetime(2026, 12, 1, tzinfo=UTC)
    both = cost_of(Usage(4_000, 0, 4_000, 0, 0, 4_000), gpt, at)
    five = cost_of(Usage(4_000, 0, 4_000, 0, 0, 0), gpt, at)
    assert both.amount == five.amount == Decimal("2.5") * 4_000 / 1_000_000


def test_prompt_length_tier_is_a_cliff() -> None:
    sonnet = _get("anthropic/claude-sonnet-4-5-20250929")
    at = datetime(2026, 1, 1, tzinfo=UTC)
    short = cost_of(Usage(200_000, 0, 0, 0, 0), sonnet, at)
    long = cost_of(Usage(200_001, 0, 0, 1, 0), sonnet, at)
    assert short.period_id == "2025-09-29" and short.amount == Decimal("0.6")
    assert long.period_id == "2025-09-29+over-200k"
    assert long.amount == (Decimal(200_001) * 6 + Decimal("22.5")) / 1_000_000


def test_unpriced_never_raises() -> None:
    abab = _get("minimax/abab6.5s-chat")
    cost = cost_of(Usage(100, 0, 0, 100, 0), abab, datetime.now(UTC))
    assert not cost.priced and cost.amount == 0 and cost.period_id == "unpriced"
    gpt5 = _get("openai/gpt-5")
    before = cost_of(Usage(100, 0, 0, 100, 0), gpt5, datetime(2024, 1, 1, tzinfo=UTC))
    assert not before.priced


def test_partial_when_output_price_is_unknown() -> None:
    hy = _get("hunyuan/hunyuan-standard-256k")
    cost = cost_of(Usage(1_000_000, 0, 0, 10, 0), hy, datetime(2024, 6, 1, tzinfo=UTC))
    assert cost.amount == 15 and cost.partial
    assert not cost_of(Usage(10, 0, 0, 0, 0), hy, datetime(2024, 6, 1, tzinfo=UTC)).partial


def test_naive_datetimes_are_utc() -> None:
    chat = _get("deepseek/deepseek-chat")
    naive = datetime(2025, 3, 3, 17, 0)                    # 01:00 Beijing: off-peak
    assert cost_of(Usage(10, 0, 0, 10, 0), chat, naive).period_id == "2025-02-26+offpeak"


def test_estimate_cost_uses_the_cached_share() -> None:
    chat = _get("deepseek/deepseek-chat")
    at = datetime(2025, 2, 20, 4, tzinfo=UTC)
    est = estimate_cost(chat, 1000, 100, 0.3, at)
    assert est.amount == cost_of(Usage(1000, 300, 0, 100, 0), chat, at).amount
    assert estimate_cost(chat, 1000, 100, 7.0, at).cached_amount == Decimal("0.5") * 1000 / 10**6


@settings(max_examples=300, deadline=None, database=None)
@given(model=models, usage=usages(), at=instants,
       field=st.sampled_from(["input_tokens", "cached_tokens", "cache_write_tokens",
                              "cache_write_1h_tokens", "output_tokens"]),
       extra=st.integers(1, 100_000))
def test_monotone_in_each_token_count(model: ModelEntry, usage: Usage, at: datetime, field: str,
                                      extra: int) -> None:
    base = cost_of(usage, model, at)
    more = dict(input_tokens=usage.input_tokens, cached_tokens=usage.cached_tokens,
                cache_write_tokens=usage.cache_write_tokens, output_tokens=usage.output_tokens,
                reasoning_tokens=usage.reasoning_tokens,
                cache_write_1h_tokens=usage.cache_write_1h_tokens)
    more[field] += extra
    if field == "cache_write_1h_tokens":
        more["cache_write_tokens"] += extra    # 1-hour writes are part of the writes
    if field in ("cached_tokens", "cache_write_tokens", "cache_write_1h_tokens"):
        more["input_tokens"] += extra          # cached tokens are part of the prompt
    bigger = cost_of(Usage(**more), model, at)
    # also across a prompt-length cliff: every tier costs at least the base price
    assert bigger.amount >= base.amount >= 0
    assert bigger.period_id.split("+")[0] == base.period_id.split("+")[0]


@settings(max_examples=200, deadline=None, database=None)
@given(model=st.sampled_from(FREE), usage=usages(), at=instants)
def test_free_models_cost_zero(model: ModelEntry, usage: Usage, at: datetime) -> None:
    cost = cost_of(usage, model, at)
    assert cost.amount == 0
    if cost.priced:
        assert cost.period_id.endswith("+free")


@settings(max_examples=200, deadline=None, database=None)
@given(model=models, usage=usages(), data=st.data())
def test_right_period_at_boundaries(model: ModelEntry, usage: Usage, data: st.DataObject) -> None:
    dated = [(i, p) for i, p in enumerate(model.periods) if p.start is not None]
    if not dated:
        return
    i, period = data.draw(st.sampled_from(dated))
    start = period.start
    assert start is not None
    assert model.price_at(start) is period
    just_before = model.price_at(start - timedelta(microseconds=1))
    if i == 0:
        assert just_before is None
    else:
        assert just_before is model.periods[i - 1]
    cost = cost_of(usage, model, start)
    assert cost.period_id.split("+")[0] == period.id


@settings(max_examples=400, deadline=None, database=None)
@given(at=st.datetimes(min_value=datetime(2025, 2, 26), max_value=datetime(2025, 9, 5, 15, 59),
                       timezones=st.just(UTC)),
       usage=usages())
def test_deepseek_offpeak_is_0030_to_0830_beijing(at: datetime, usage: Usage) -> None:
    local = at.astimezone(BEIJING)
    offpeak = (0, 30) <= (local.hour, local.minute) < (8, 30)
    for key in ("deepseek/deepseek-chat", "deepseek/deepseek-reasoner"):
        cost = cost_of(usage, _get(key), at)
        assert cost.period_id == ("2025-02-26+offpeak" if offpeak else "2025-02-26")
    chat = cost_of(Usage(1_000_000, 0, 0, 0, 0), _get("deepseek/deepseek-chat"), at)
    assert chat.amount == (1 if offpeak else 2)


@settings(max_examples=400, deadline=None, database=None)
@given(at=st.datetimes(min_value=datetime(2026, 8, 23), max_value=datetime(2027, 1, 1),
                       timezones=st.just(UTC)))
def test_v4_peak_weekdays_9_to_12_and_14_to_18_beijing(at: datetime) -> None:
    local = at.astimezone(BEIJING)
    peak = local.weekday() < 5 and (9 <= local.hour < 12 or 14 <= local.hour < 18)
    pro = cost_of(Usage(1_000_000, 0, 0, 0, 0), _get("deepseek/deepseek-v4-pro"), at)
    assert pro.period_id.endswith("+peak") if peak else "+" not in pro.period_id
    assert pro.amount == (9 if peak else Decimal("4.5"))


def test_v4_weekend_peak_before_2026_08_23() -> None:
    pro = _get("deepseek/deepseek-v4-pro")
    saturday = datetime(2026, 8, 22, 10, tzinfo=BEIJING)
    sunday_after = datetime(2026, 8, 23, 10, tzinfo=BEIJING)
    assert cost_of(Usage(1, 0, 0, 0, 0), pro, saturday).period_id == "2026-08-17+peak"
    assert cost_of(Usage(1, 0, 0, 0, 0), pro, sunday_after).period_id == "2026-08-23"
    edge = datetime(2026, 8, 24, 12, tzinfo=BEIJING)    # Monday 12:00 is off-peak
    assert cost_of(Usage(1, 0, 0, 0, 0), pro, edge).period_id == "2026-08-23"
    assert cost_of(Usage(1, 0, 0, 0, 0), pro, edge - timedelta(seconds=1)
                   ).period_id == "2026-08-23+peak"


def test_cost_is_fast(catalog: Catalog) -> None:
    import time

    chat = _get("deepseek/deepseek-chat")
    usage = Usage(1234, 200, 0, 567, 0)
    at = datetime(2026, 11, 27, 3, tzinfo=UTC)
    n = 20_000
    t0 = time.perf_counter()
    for _ in range(n):
        cost_of(usage, chat, at)
    per_call_us = (time.perf_counter() - t0) / n * 1e6
    assert per_call_us < 50        # a few microseconds in practice; generous for CI


@settings(max_examples=300, deadline=None, database=None)
@given(model=models, usage=usages(), at=instants)
def test_most_cost_bounds_every_usage_of_that_size(model: ModelEntry, usage: Usage,
                                                   at: datetime) -> None:
    """What a budget reserves: no split of the prompt into cached, cache-write and plain
    tokens costs more, and with nothing cached it is exactly ``cost_of``."""
    top, currency = most_cost(model, usage.input_tokens, usage.output_tokens, at)
    cost = cost_of(usage, model, at)
    assert currency == cost.currency
    assert cost.amount <= top
    plain = cost_of(Usage(usage.input_tokens, 0, 0, usage.output_tokens, 0), model, at)
    written = cost_of(Usage(usage.input_tokens, 0, usage.input_tokens, usage.output_tokens, 0),
                      model, at)
    hour = cost_of(Usage(usage.input_tokens, 0, usage.input_tokens, usage.output_tokens, 0,
                         usage.input_tokens), model, at)
    assert top == max(plain.amount, written.amount, hour.amount)
