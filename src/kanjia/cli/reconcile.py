"""`kanjia reconcile`: the ledger against a vendor's own usage export.

    kanjia reconcile --vendor openai --file usage.json --file costs.json
    kanjia reconcile --vendor deepseek --file bill.csv \\
        --map date=Date,model=Model,input_tokens=Input,output_tokens=Output,cost=Amount
    kanjia reconcile --vendor qwen --file billing.json --format bailian --json

Exit status: 0 when every figure matches within the tolerance, 1 when there is a
difference, 2 on bad input (one line naming what was expected).
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import click

from kanjia.cli._common import BadInput, iso_date
from kanjia.cli._common import Command as _Command
from kanjia.cli._common import friendly as _friendly

__all__ = ["reconcile"]

_FORMATS = ("auto", "openai-usage", "openai-costs", "csv", "bailian")


def _offset(td: timedelta | None) -> str:
    minutes = int((td or timedelta(0)).total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


@click.command(cls=_Command)
@click.option("--vendor", required=True, metavar="V",
              help="The vendor the export is from (a kanjia vendor id: deepseek, openai, ...).")
@click.option("--file", "files", required=True, multiple=True, metavar="F",
              type=click.Path(dir_okay=False, path_type=Path),
              help="The vendor's export; repeat for several (e.g. OpenAI usage + costs).")
@click.option("--format", "fmt", type=click.Choice(_FORMATS), default="auto",
              show_default=True, help="openai-usage: /v1/organization/usage/completions "
              "(or /embeddings) pages with group_by=model; openai-costs: /v1/organization/"
              "costs pages with group_by=line_item; csv: any CSV with --map; bailian: "
              "Alibaba Model Studio billing items. auto: detect from the content.")
@click.option("--map", "mapping", default=None, metavar="FIELD=COLUMN,...",
              help="CSV columns: date=, model= and any of requests=, input_tokens=, "
              "cached_tokens=, cache_write_tokens=, output_tokens=, cost=, currency=.")
@click.option("--tz", default=None, metavar="ZONE",
              help="Time zone of CSV/bailian dates (UTC, Asia/Shanghai, +08:00); default: "
              "the vendor's billing zone (Beijing for CN vendors). OpenAI exports are UTC.")
@click.option("--currency", default=None, metavar="CUR",
              help="Currency of a CSV's cost column when it has no currency column.")
@click.option("--since", callback=iso_date, default=None, metavar="DATE",
              help="Compare days from this date (default: every day the export covers).")
@click.option("--until", callback=iso_date, default=None, metavar="DATE",
              help="Up to (not including) this date.")
@click.option("--tolerance", default="0", show_default=True, metavar="REL",
              help="Relative tolerance on every figure, e.g. 1% or 0.01 (default: figures "
              "must match up to the absolute tolerances below).")
@click.option("--cost-epsilon", default="0.01", show_default=True, metavar="AMOUNT",
              help="Absolute tolerance on cost per day and model, in the export's currency "
              "(vendors round amounts).")
@click.option("--token-epsilon", default="0", show_default=True, metavar="N",
              help="Absolute tolerance on requests and token counts per day and model.")
@click.option("--deployment", default=None, metavar="NAME",
              help="Only ledger rows of this deployment (one vendor account).")
@click.option("--db", "database", envvar="KANJIA_DB", default="kanjia.db", show_default=True,
              help="Ledger database: a SQLite path or postgresql://... ($KANJIA_DB).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@_friendly
def reconcile(vendor: str, files: tuple[Path, ...], fmt: str, mapping: str | None,
              tz: str | None, currency: str | None, since: date | None, until: date | None,
              tolerance: str, cost_epsilon: str, token_epsilon: str, deployment: str | None,
              database: str, as_json: bool) -> None:
    """Compare the ledger with a vendor's usage export.

    Compare the ledger with a vendor's usage export, per day and model (requests,
    input/cached/output tokens, cost), and list every difference beyond the tolerance.
    A difference is listed when |ledger - vendor| exceeds the larger of the absolute
    tolerance (--token-epsilon, default 0; --cost-epsilon, default 0.01) and
    --tolerance times the larger figure (default 0). Exit 1 when there is one."""
    from kanjia.catalog import load_catalog
    from kanjia.cli._common import existing_ledger as _check_ledger
    from kanjia.cli.report import _run
    from kanjia.reconcile import (
        Tolerance,
        load_export,
        parse_map,
        parse_tolerance,
    )
    from kanjia.reconcile import reconcile as run_reconcile

    if since is not None and until is not None and until <= since:
        raise BadInput(f"--until ({until}) must be after --since ({since})")
    limits = Tolerance(parse_tolerance(tolerance),
                       parse_tolerance(cost_epsilon, "--cost-epsilon", percent_ok=False),
                       parse_tolerance(token_epsilon, "--token-epsilon", percent_ok=False))
    columns = parse_map(mapping) if mapping is not None else None
    catalog = load_catalog()
    info = catalog.vendors.get(vendor)
    zone = tz or (_offset(info.tz.utcoffset(None)) if info is not None else "UTC")
    exports = [load_export(f, fmt, mapping=columns, tz=zone, currency=currency)
               for f in files]
    _check_ledger(database)

    async def job(db: Any) -> dict[str, Any]:
        if info is None:
            from kanjia.ledger.query import vendor_known

            if not await vendor_known(db, vendor):
                raise BadInput(f"unknown vendor {vendor!r}: not in the catalog nor the ledger")
        return await run_reconcile(db, vendor, exports, since=since, until=until,
                                   tolerance=limits, deployment=deployment,
                                   convert=catalog.fx.convert)

    result: dict[str, Any] = _run(database, job)
    if as_json:
        click.echo(json.dumps(result, ensure_ascii=False))
    else:
        _text(result)
    if not result["matched"]:
        raise click.exceptions.Exit(1)


def _fmt(value: float | int) -> str:
    if isinstance(value, int):
        return str(value)
    return f"{value:.9f}".rstrip("0").rstrip(".") or "0"


def _text(result: dict[str, Any]) -> None:
    click.echo(f"kanjia reconcile {result['vendor']}"
               + (f" (deployment {result['deployment']})" if result["deployment"] else ""))
    for e in result["exports"]:
        span = f"{e['first_day']} .. {e['last_day']}" if e["first_day"] else "no days"
        cur = f" (cost in {e['currency']})" if "cost" in e["fields"] and e["currency"] else ""
        click.echo(f"  {e['file']}: {e['format']} ({e['scope']}, {e['tz']}), {span}, "
                   f"{e['lines']} day/model lines: {', '.join(e['fields'])}{cur}")
        for theirs, ours in e["models_matched"].items():
            click.echo(f"    vendor model {theirs} = ledger model {ours}")
        for other in e["not_compared"]:
            click.echo(f"    not compared (no model): {other['day']} {other['line_item']} "
                       f"{other['amount']}")
    tol = result["tolerance"]
    rule = (f"tokens ±{tol['tokens']:g}, cost ±{tol['cost']:g}"
            + (f", or {tol['relative'] * 100:g}%" if tol["relative"] else ""))
    diffs = result["differences"]
    if not diffs:
        click.echo(f"no differences: {result['compared']} day/model lines match ({rule})")
        return
    click.echo(f"{len(diffs)} difference{'s' if len(diffs) != 1 else ''} beyond the "
               f"tolerance ({rule}):")
    rows = [("day", "model", "field", "ledger", "vendor", "difference", "file")]
    for d in diffs:
        unit = f" {d['currency']}" if d.get("currency") else ""
        note = f" ({d['estimated_rows']} estimated)" if d.get("estimated_rows") else ""
        sign = "+" if d["difference"] > 0 else ""
        rows.append((d["day"], d["model"], d["field"], f"{_fmt(d['ledger'])}{unit}",
                     f"{_fmt(d['vendor'])}{unit}", f"{sign}{_fmt(d['difference'])}{note}",
                     d["file"]))
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        click.echo("  " + "  ".join(str(v).ljust(w) if i < 3 or i == 6 else str(v).rjust(w)
                                    for i, (v, w) in enumerate(zip(r, widths, strict=True))))
