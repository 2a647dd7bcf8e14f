"""`kanjia prices changes`: what a price change means for the traffic the buyer sent.

    kanjia prices changes [--since DATE] [--until DATE] [--at DATE] [--db LEDGER]
                          [--currency CNY|USD] [--json]

For every model the ledger used between --since and --until (default: last calendar
month), the price then and the price at --at (default: today; the user's price
overrides included), and what that traffic cost and would cost at the new prices.
The re-pricing is `kanjia report --reprice-at`'s: each request at its own UTC time of
day on the --at date, so off-peak windows and tiers apply as they would.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any

import click

from kanjia.catalog import Catalog, ModelEntry, PricePeriod
from kanjia.cli._common import CURRENCIES, BadInput, Command, iso_date
from kanjia.cli._common import friendly as _friendly
from kanjia.cli._user_catalog import user_catalog

__all__ = ["changes", "price_changes"]


def _last_month(today: date) -> tuple[date, date]:
    first = today.replace(day=1)
    prev = date(first.year - 1, 12, 1) if first.month == 1 else \
        first.replace(month=first.month - 1)
    return prev, first


def _prices(p: PricePeriod | None) -> dict[str, Any] | None:
    if p is None:
        return None
    return {"period": p.id, "currency": p.currency,
            **{k: None if getattr(p, k) is None else float(getattr(p, k))
               for k in ("input_mtok", "cached_mtok", "output_mtok")}}


def _entry(catalog: Catalog, key: str) -> ModelEntry | None:
    vendor, _, model = key.partition("/")
    return catalog.get(vendor, model)


async def price_changes(db: Any, catalog: Catalog, *, since: date, until: date, at: date,
                        currency: str = "CNY") -> dict[str, Any]:
    """Per used model: the price on ``since`` and on ``at``, the traffic's actual cost,
    its cost at ``at``'s prices and the difference (``rows``), plus totals."""
    from kanjia.reports import reprice_report

    report = await reprice_report(db, catalog, at=at, since=since, until=until,
                                  currency=currency, by="model")
    old_at = datetime.combine(since, time(12), UTC)
    new_at = datetime.combine(at, time(12), UTC)
    substituted = {s["model"]: s for s in report["substitutions"]}
    rows = []
    for row in report["rows"]:
        key = row["model"]
        entry = _entry(catalog, key)
        old = _prices(entry.price_at(old_at)) if entry else None
        new = _prices(entry.price_at(new_at)) if entry else None
        rows.append({
            "model": key, "requests": row["requests"], "input_tokens": row["input_tokens"],
            "cached_tokens": row["cached_tokens"], "output_tokens": row["output_tokens"],
            "old_price": old, "new_price": new,
            "changed": old != new and old is not None and new is not None
            and {k: v for k, v in old.items() if k != "period"}
            != {k: v for k, v in new.items() if k != "period"},
            "actual": row["actual"]["amount"], "at_new_prices": row["amount"],
            "difference": row["difference"]["amount"], "share": row["difference"]["share"],
            "substituted_by": substituted.get(key, {}).get("used"),
            "partial": row["partial"]})
    return {"kind": "price-changes", "since": since.isoformat(), "until": until.isoformat(),
            "at": at.isoformat(), "currency": currency, "rows": rows,
            "actual_total": report["actual_total"]["amount"],
            "total_at_new_prices": report["total"]["amount"],
            "difference": report["difference"]["amount"],
            "share": report["difference"]["share"], "notes": report["notes"]}


def _p(d: dict[str, Any] | None) -> str:
    if d is None:
        return "no price"
    out = d["output_mtok"]
    return (f"{Decimal(str(d['input_mtok'])).normalize():f} / "
            f"{'?' if out is None else format(Decimal(str(out)).normalize(), 'f')} "
            f"{d['currency']}")


@click.command("changes", cls=Command)
@click.option("--since", callback=iso_date, default=None, metavar="DATE",
              help="Start of the traffic (default: the first day of last month).")
@click.option("--until", callback=iso_date, default=None, metavar="DATE",
              help="End of the traffic, exclusive (default: the first day of this month).")
@click.option("--at", "at_day", callback=iso_date, default=None, metavar="DATE",
              help="The new prices: those in force on this date (default: today).")
@click.option("--currency", type=click.Choice(CURRENCIES, case_sensitive=False),
              default="CNY", show_default=True)
@click.option("--db", "database", envvar="KANJIA_DB", default="kanjia.db", show_default=True,
              help="The ledger (SQLite file or postgresql:// URL).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
@_friendly
def changes(since: date | None, until: date | None, at_day: date | None, currency: str,
            database: str, as_json: bool) -> None:
    """Price your past traffic at the new prices.

    What the traffic you sent would cost at the new prices, per model you used."""
    from kanjia.ledger.store import migrate, open_database

    today = datetime.now(UTC).date()
    default_since, default_until = _last_month(today)
    since, until, at = since or default_since, until or default_until, at_day or today
    if until <= since:
        raise BadInput(f"--until ({until}) must be after --since ({since})")
    if not database.startswith(("postgresql://", "postgres://")) and \
            not Path(database.removeprefix("sqlite:///")).is_file():
        raise BadInput(f"no ledger at {database} (set --db or $KANJIA_DB)")
    catalog = user_catalog()

    async def run() -> dict[str, Any]:
        db = open_database(database)
        await db.connect()
        try:
            await migrate(db)
            return await price_changes(db, catalog, since=since, until=until, at=at,
                                       currency=currency.upper())
        finally:
            await db.close()

    out = asyncio.run(run())
    if as_json:
        click.echo(json.dumps(out, ensure_ascii=False))
        return
    cur = out["currency"]
    click.echo(f"Traffic {out['since']} .. {out['until']} at the prices of {out['at']} "
               f"(in {cur}):\n")
    for r in out["rows"]:
        mark = "changed" if r["changed"] else "same price"
        click.echo(f"  {r['model']}: {r['requests']:,} requests; price {_p(r['old_price'])} "
                   f"-> {_p(r['new_price'])} per 1M in/out ({mark}); cost "
                   f"{r['actual']:,.4f} -> {r['at_new_prices']:,.4f} ({r['difference']:+,.4f})"
                   + (f"; priced on {r['substituted_by']}" if r["substituted_by"] else ""))
    if not out["rows"]:
        click.echo("  no traffic in that window")
    click.echo(f"\nTotal: {out['actual_total']:,.4f} -> {out['total_at_new_prices']:,.4f} "
               f"{cur} ({out['difference']:+,.4f})")
