"""The dashboard written to one HTML file (``kanjia dashboard --out FILE.html``)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from kanjia.catalog import Catalog
from kanjia.dashboard._data import BASELINE, collect_dashboard
from kanjia.dashboard._page import Assets, render_page
from kanjia.dashboard._period import Period
from kanjia.ledger.store import migrate, open_database

__all__ = ["write_report"]


async def write_report(database: str, catalog: Catalog, out: Path, *,
                       since: date | None = None, until: date | None = None,
                       currency: str = "CNY", baseline: str = BASELINE) -> str:
    """Read the ledger at ``database``, write the report to ``out``; returns a
    one-line summary."""
    db = open_database(database)
    await db.connect()
    try:
        await migrate(db)
        data = await collect_dashboard(db, catalog, period=Period.recent(since, until),
                                       currency=currency, baseline=baseline)
    finally:
        await db.close()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_page(data, Assets.load()), encoding="utf-8")
    k = data["kpis"]
    return (f"{k['requests']} requests since {data['meta']['since']}, spend {k['spend']:.6g} "
            f"{currency}, saved {k['saving']:.6g} {currency} against {baseline}")
