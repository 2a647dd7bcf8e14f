"""The spend and savings panels, from ``kanjia.reports`` (the same numbers as
``kanjia report``), reshaped for charts: a gap-free time axis (days, or weeks or
months on a long window, so a three-year window is some forty bars, not a thousand),
the largest series first and the long tail folded into "other"."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from kanjia.catalog import Catalog
from kanjia.dashboard._period import Period
from kanjia.ledger.store import Database
from kanjia.reports import savings_report, spend_by_day

__all__ = ["OTHER", "bucket_for", "bucket_of", "fill_days", "savings_panel", "spend_panel"]

OTHER = "other"
_TOP_VENDORS = 12
_TOP_MODELS = 10
_TOP_SAVINGS = 12
#: the longest window drawn with one bar per day, and with one bar per week (in days)
DAILY_MAX_DAYS = 90
WEEKLY_MAX_DAYS = 366


def bucket_for(n_days: int) -> str:
    """The bar width for a window of ``n_days``: ``day`` up to 90 days, ``week`` up to
    a year (at most 53 bars), ``month`` beyond (a three-year window is 37 bars)."""
    if n_days <= DAILY_MAX_DAYS:
        return "day"
    return "week" if n_days <= WEEKLY_MAX_DAYS else "month"


def bucket_of(day: str, bucket: str) -> str:
    """The axis key of the ISO ``day`` in ``bucket``: the day itself, the Monday that
    starts its ISO week, or its month (``YYYY-MM``)."""
    if bucket == "day":
        return day
    if bucket == "month":
        return day[:7]
    d = date.fromisoformat(day)
    return (d - timedelta(days=d.weekday())).isoformat()


def fill_days(report: dict[str, Any], days: list[str], top: int,
              bucket: str = "day") -> list[dict[str, Any]]:
    """``spend_by_day``'s ``{name: [amount per reported day]}`` on the axis ``days``
    (missing days are 0), summed per ``bucket`` when ``days`` are weeks or months
    (keys of ``bucket_of``), at most ``top`` series plus "other"."""
    index = {d: i for i, d in enumerate(days)}
    out = []
    for name, values in report["series"].items():
        if not any(values):
            continue  # free traffic: nothing to stack
        full = [0.0] * len(days)
        for day, value in zip(report["day"], values, strict=True):
            full[index[bucket_of(day, bucket)]] += float(value)
        out.append({"name": name, "values": full})
    if len(out) > top:  # the report orders series by total, largest first
        rest = out[top - 1:]
        folded = [sum(s["values"][i] for s in rest) for i in range(len(days))]
        out = [*out[:top - 1], {"name": f"{OTHER} ({len(rest)})", "values": folded}]
    return out


async def spend_panel(db: Database, catalog: Catalog, period: Period, currency: str,
                      today: date) -> dict[str, Any]:
    vendors = await spend_by_day(db, catalog, since=period.since, until=period.until,
                                 by="vendor", currency=currency)
    models = await spend_by_day(db, catalog, since=period.since, until=period.until,
                                by="model", currency=currency)
    shown = period.days(today)
    bucket = bucket_for(len(shown))
    days = sorted({bucket_of(d.isoformat(), bucket) for d in shown} |
                  {bucket_of(d, bucket) for d in vendors["day"]})
    return {"bucket": bucket, "days": days,
            "by_vendor": fill_days(vendors, days, _TOP_VENDORS, bucket),
            "by_model": fill_days(models, days, _TOP_MODELS, bucket),
            "total": float(vendors["total"]["amount"]),
            "requests": int(vendors["total"]["requests"])}


async def savings_panel(db: Database, catalog: Catalog, period: Period, currency: str,
                        baseline: str) -> dict[str, Any]:
    """``savings_report`` by model: what was paid, what the baseline would have cost."""
    report = await savings_report(db, catalog, since=period.since, until=period.until,
                                  baseline=baseline, currency=currency, by="model")
    rows = [{"label": r["model"], "actual": float(r["amount"]),
             "baseline": float(r["baseline"]["amount"]), "saving": float(r["saving"]["amount"]),
             "requests": int(r["requests"])}
            for r in report["rows"] if r["amount"] or r["baseline"]["amount"]]
    rows.sort(key=lambda r: (-r["baseline"], r["label"]))
    return {"baseline": report["baseline"], "total": float(report["total"]["amount"]),
            "baseline_total": float(report["baseline_total"]["amount"]),
            "saving": float(report["saving"]["amount"]), "share": report["saving"]["share"],
            "levers": [{"lever": x["lever"], "requests": int(x["requests"]),
                        "actual": float(x["amount"]),
                        "baseline": float(x["baseline"]["amount"]),
                        "saving": float(x["saving"]["amount"])}
                       for x in report.get("levers", [])],
            "lever_split": {k: float(v["amount"]) for k, v in
                            report.get("lever_split", {}).get("levers", {}).items()},
            "rows": rows[:_TOP_SAVINGS], "more_rows": max(len(rows) - _TOP_SAVINGS, 0),
            "notes": list(report.get("notes", []))}
