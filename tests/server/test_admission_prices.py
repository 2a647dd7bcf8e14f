"""Admission's worst case remembers each model's prices per UTC minute: it must equal
``catalog.most_cost`` at every instant (across period starts, off-peak windows, tiers)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from kanjia.catalog import ModelEntry, load_catalog, most_cost
from kanjia.server._admission import Admission
from kanjia.tokens import TokenCounter

CATALOG = load_catalog()
PRICED = [m for m in CATALOG.models if m.periods]
#: models with an off-peak (or peak) window or prompt tiers: where the minute matters
SHAPED = [m for m in PRICED if any(p.windows or p.tiers for p in m.periods)]


async def _no_load(_: object) -> None:
    return None


def _admission() -> Admission:
    return Admission(TokenCounter(), {}, "CNY", _no_load)


def _edges(model: ModelEntry) -> list[datetime]:
    """Instants where a model's prices change: period starts and ends."""
    out = []
    for p in model.periods:
        out += [t for t in (p.start, p.end) if t is not None]
    return out


def _check(adm: Admission, model: ModelEntry, at: datetime, prompt: int, out: int) -> None:
    expected = most_cost(model, prompt, out, at) if model.price_at(at) is not None else None
    assert adm.most_cost(model, prompt, out, at.timestamp()) == expected, (model.key, at)


@settings(max_examples=300, deadline=None, database=None)
@given(model=st.sampled_from(SHAPED or PRICED),
       at=st.datetimes(min_value=datetime(2024, 6, 1), max_value=datetime(2027, 6, 1),
                       timezones=st.just(UTC)),
       prompt=st.integers(0, 2_000_000), out=st.integers(0, 200_000),
       steps=st.lists(st.integers(-3600, 3600), max_size=6))
def test_equals_most_cost_at_any_instant(model: ModelEntry, at: datetime, prompt: int,
                                         out: int, steps: list[int]) -> None:
    adm = _admission()  # one admission: later instants meet what earlier ones remembered
    for step in [0, *steps]:
        at += timedelta(seconds=step)
        _check(adm, model, at, prompt, out)


def test_every_minute_of_a_day_and_every_period_edge() -> None:
    adm = _admission()
    for model in SHAPED or PRICED:
        day = datetime(2026, 12, 7, tzinfo=UTC)
        for minute in range(0, 24 * 60, 7):
            for second in (0, 30, 59.999):
                _check(adm, model, day + timedelta(minutes=minute, seconds=second), 1000, 100)
        for edge in _edges(model):
            for delta in (-61, -60, -1, -0.000001, 0, 0.000001, 1, 59, 60):
                _check(adm, model, edge + timedelta(seconds=delta), 300_000, 4096)
