"""``kanjia usage``: spend and tokens from the ledger."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, date, datetime
from typing import Any

import click

from kanjia.cli._common import BadInput, existing_ledger, iso_date
from kanjia.ledger.store import migrate, open_database
from kanjia.metering import GROUPS, usage_report


@click.command()
@click.option("--since", callback=iso_date, default=None,
              help="From this UTC date (default: the first of this month).")
@click.option("--until", callback=iso_date, default=None, help="Up to (not including) this date.")
@click.option("--all", "everything", is_flag=True, help="The whole ledger.")
@click.option("--by", type=click.Choice(list(GROUPS)), default="model", show_default=True)
@click.option("--currency", type=click.Choice(["CNY", "USD"], case_sensitive=False),
              default="CNY", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON: {total, rows}.")
@click.option("--db", "database", envvar="KANJIA_DB", default="kanjia.db", show_default=True,
              help="Ledger database: a SQLite path or postgresql://... ($KANJIA_DB).")
def usage(since: date | None, until: date | None, everything: bool, by: str, currency: str,
          as_json: bool, database: str) -> None:
    """Show spend and tokens from the ledger, grouped.

    Spend (vendor cost, and what tenants were charged) and tokens, grouped."""
    from kanjia.catalog import load_catalog

    if since is None and not everything:
        now = datetime.now(UTC)
        since = date(now.year, now.month, 1)
    existing_ledger(database)
    fx = load_catalog().fx

    async def main() -> dict[str, Any]:
        db = open_database(database)
        try:
            await db.connect()
        except (OSError, ConnectionError) as exc:
            raise BadInput(f"cannot open the ledger {database}: {exc}") from None
        try:
            await migrate(db)
            return await usage_report(db, fx, since=since, until=until, by=by,
                                      currency=currency.upper())
        finally:
            await db.close()

    report = asyncio.run(main())
    if as_json:
        click.echo(json.dumps(report, ensure_ascii=False))
        return
    _print_table(report, by)


def _print_table(report: dict[str, Any], by: str) -> None:
    cur = report["currency"]
    head = (by, "requests", "tokens", f"cost {cur}", f"charge {cur}", "errors")
    lines = [(str(r[by]) + (f" ({r['name']})" if r.get("name") else ""), str(r["requests"]),
              str(r["tokens"]), f"{r['amount']:.6f}", f"{r['charge']:.6f}", str(r["errors"]))
             for r in report["rows"]]
    t = report["total"]
    lines.append(("TOTAL", str(t["requests"]), str(t["tokens"]), f"{t['amount']:.6f}",
                  f"{t['charge']:.6f}", str(t["errors"])))
    widths = [max(len(x) for x in col) for col in zip(head, *lines, strict=True)]
    since = report["since"] or "the beginning"
    click.echo(f"usage since {since}, by {by}, in {cur}")
    for row in (head, *lines):
        click.echo("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                             for i, (c, w) in enumerate(zip(row, widths, strict=True))))
