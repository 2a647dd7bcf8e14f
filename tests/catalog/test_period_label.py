"""A price period id names a window or tier only when one applied: the base prices of a
period are the period itself ("2026-09-10T12:00"), never "+offpeak" (which would credit
an off-peak discount that did not happen, in the ledger and in savings by lever)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from kanjia.catalog import Usage, cost_of, load_catalog

BEIJING = timezone(timedelta(hours=8))


def _model(key: str):  # type: ignore[no-untyped-def]
    return next(m for m in load_catalog().models if m.key == key)


def test_base_price_has_no_window_label() -> None:
    flash = _model("deepseek/deepseek-chat")
    sunday = datetime(2026, 12, 6, 10, tzinfo=BEIJING)      # no peak on weekends
    monday_peak = datetime(2026, 12, 7, 10, tzinfo=BEIJING)
    base = cost_of(Usage(1_000_000, 0, 0, 0, 0), flash, sunday)
    peak = cost_of(Usage(1_000_000, 0, 0, 0, 0), flash, monday_peak)
    assert base.period_id == "2026-09-10T12:00" and base.amount == 1
    assert peak.period_id == "2026-09-10T12:00+peak" and peak.amount == 2


def test_offpeak_only_when_the_offpeak_window_applied() -> None:
    chat = _model("deepseek/deepseek-chat")
    night = datetime(2025, 3, 3, 1, tzinfo=BEIJING)          # 00:30-08:30: off-peak
    day = datetime(2025, 3, 3, 12, tzinfo=BEIJING)
    assert cost_of(Usage(1_000_000, 0, 0, 0, 0), chat, night).period_id == "2025-02-26+offpeak"
    assert cost_of(Usage(1_000_000, 0, 0, 0, 0), chat, day).period_id == "2025-02-26"


def test_every_offpeak_label_is_a_cheaper_window() -> None:
    """Across every model and every hour of a year: "+offpeak" appears exactly when an
    off-peak window's rates were used, and then the price is below the period's base."""
    checked = {"base": 0, "window": 0}
    for m in load_catalog().models:
        for p in m.periods:
            if not p.windows or p.start is None:
                continue
            for h in range(0, 24 * 14, 1):  # two weeks from the period's start, hourly
                at = p.start + timedelta(hours=h, minutes=45)
                period = m.price_at(at)
                if period is not p:
                    continue
                cost = cost_of(Usage(1_000_000, 0, 0, 0, 0), m, at)
                window = p.window_at(at)
                if window is None:
                    assert cost.period_id == p.id, (m.key, at)
                    checked["base"] += 1
                else:
                    assert cost.period_id == f"{p.id}+{window.label}", (m.key, at)
                    checked["window"] += 1
                    if window.label == "offpeak":
                        assert window.input_mtok < p.input_mtok
    assert checked["base"] > 100 and checked["window"] > 100, checked
