"""``kanjia dashboard``: the /ui dashboard as one self-contained HTML file."""

from __future__ import annotations

import asyncio
from datetime import date
from pathlib import Path

import click

from kanjia.cli._common import existing_ledger, iso_date


@click.command()
@click.option("--db", "database", envvar="KANJIA_DB", default="kanjia.db", show_default=True,
              help="Ledger database: a SQLite path or postgresql://... ($KANJIA_DB).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Where to write the HTML file.")
@click.option("--since", callback=iso_date, default=None,
              help="From this UTC date (default: the last 30 days).")
@click.option("--until", callback=iso_date, default=None, help="Up to (not including) this date.")
@click.option("--currency", type=click.Choice(["CNY", "USD"], case_sensitive=False),
              default="CNY", show_default=True)
@click.option("--baseline", default="openai/gpt-4o", show_default=True,
              help="The model savings are measured against.")
def dashboard(database: str, out: Path, since: date | None, until: date | None,
              currency: str, baseline: str) -> None:
    """Write the dashboard as one offline HTML file.

    Write the dashboard (spend, savings, price war, routes, budgets, vendor health)
    with its data embedded: it opens from file:// with no network."""
    from kanjia.catalog import load_catalog
    from kanjia.dashboard import write_report

    existing_ledger(database)
    catalog = load_catalog()
    summary = asyncio.run(write_report(database, catalog, out, since=since, until=until,
                                       currency=currency.upper(), baseline=baseline))
    click.echo(f"wrote {out} ({summary})")
