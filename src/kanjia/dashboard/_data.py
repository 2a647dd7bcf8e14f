"""Everything one dashboard shows, gathered from the ledger and the catalog into one
JSON-able dict (the page script draws it; ``/ui/data.json`` returns it)."""

from __future__ import annotations

from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from kanjia.catalog import Catalog
from kanjia.dashboard._budgets import budget_use
from kanjia.dashboard._period import Period
from kanjia.dashboard._prices import price_war
from kanjia.dashboard._reports import savings_panel, spend_panel
from kanjia.dashboard._routes import recent_incidents, route_stats
from kanjia.ledger.store import Database
from kanjia.metering import usage_report

__all__ = ["BASELINE", "collect_dashboard"]

#: what savings are measured against unless told otherwise
BASELINE = "openai/gpt-4o"


def _version() -> str:
    try:
        return version("kanjia")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "unknown"


async def _keys(db: Database, catalog: Catalog, period: Period, currency: str
                ) -> list[dict[str, Any]]:
    report = await usage_report(db, catalog.fx, since=period.since, until=period.until,
                                by="key", currency=currency)
    return [{"key": r["key"], "name": r.get("name"), "requests": r["requests"],
             "amount": r["amount"], "charge": r["charge"]}
            for r in report["rows"] if r["key"] != "(none)"]


async def _apis(db: Database, catalog: Catalog, period: Period, currency: str
                ) -> list[dict[str, Any]]:
    """Requests per client API they came in on (chat, messages, responses, ...)."""
    report = await usage_report(db, catalog.fx, since=period.since, until=period.until,
                                by="api", currency=currency)
    return [{"api": r["api"], "requests": r["requests"], "errors": r["errors"],
             "tokens": r["tokens"], "amount": r["amount"]} for r in report["rows"]]


async def collect_dashboard(db: Database, catalog: Catalog, *, period: Period,
                            currency: str = "CNY", baseline: str = BASELINE,
                            live: dict[str, Any] | None = None,
                            now: datetime | None = None) -> dict[str, Any]:
    """The dashboard's data for ``period`` in ``currency``. ``live`` is the gateway's
    breaker snapshot (``live_breakers``) when served; None in a report file."""
    now = now or datetime.now(UTC)
    spend = await spend_panel(db, catalog, period, currency, now.date())
    savings = await savings_panel(db, catalog, period, currency, baseline)
    stats = await route_stats(db, period)
    routes = stats.json()
    routes["recent"] = await recent_incidents(db, period)
    outcomes = routes["outcomes"]
    requests = outcomes["first_try"] + outcomes["after_fallback"] + outcomes["failed"]
    return {
        "meta": {"generated_at": now.strftime("%Y-%m-%d %H:%M UTC"),
                 "since": period.since.isoformat(),
                 "until": period.until.isoformat() if period.until else None,
                 "currency": currency, "baseline": baseline, "live": live is not None,
                 "database": db.display, "version": _version()},
        "kpis": {"spend": spend["total"], "requests": requests,
                 "errors": outcomes["failed"], "fallbacks": outcomes["after_fallback"],
                 "baseline_total": savings["baseline_total"], "saving": savings["saving"]},
        "spend": spend,
        "savings": savings,
        "routes": routes,
        "prices": price_war(catalog, currency, now.date()),
        "budgets": await budget_use(db, catalog, now),
        "keys": await _keys(db, catalog, period, currency),
        "apis": await _apis(db, catalog, period, currency),
        "health": {"vendors": [v.json(name) for name, v in sorted(
            stats.vendors.items(), key=lambda kv: (-kv[1].attempts, kv[0]))], "live": live},
    }
