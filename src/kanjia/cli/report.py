"""`kanjia report` and `kanjia breakeven`: who benefits from the price war.

    kanjia report [--since DATE] [--until DATE] [--by vendor|model|route|key|tenant|day]
                  [--currency CNY|USD] [--db PATH_OR_URL] [--json] [--html FILE]
                  [--baseline [MODEL]]                 # savings vs one model
                  [--reprice-at DATE] [--reprice-on VENDOR]   # price-war replay
    kanjia breakeven --model MODEL --gpu-hourly AMOUNT (--tokens-per-second N | --measure)
                     (--tokens-per-day N | --traffic-from-ledger) [--utilization 0.6]
                     [--currency ...] [--json] [--html FILE] [--chart FILE.png]

Bad input prints one line ("Error: ...") and exits with status 2.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable, Sequence
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import click

from kanjia.cli._common import CURRENCIES, BadInput, existing_ledger, iso_date
from kanjia.cli._common import Command as _Command
from kanjia.cli._common import friendly as _friendly

__all__ = ["breakeven", "report"]

_LEVERS = {"routing": "routing (requests sent to a route)",
           "direct": "direct model choices (requests that named their model)",
           "response_cache": "response cache (answered by kanjia, no vendor call; saving "
                             "as recorded at the answering model's price)"}
GROUP_NAMES = ("vendor", "model", "route", "key", "tenant", "day", "lever")
DEFAULT_BASELINE = "openai/gpt-4o"
#: the value of a bare --baseline: $KANJIA_BASELINE, else DEFAULT_BASELINE
_CONFIGURED = "\0configured"





def _run(database: str, job: Callable[[Any], Any]) -> Any:
    from kanjia.ledger.store import migrate, open_database

    async def main() -> Any:
        db = open_database(database)
        try:
            await db.connect()
        except (OSError, ConnectionError) as exc:
            raise BadInput(f"cannot open the ledger {database}: {exc}") from None
        try:
            await migrate(db)
            return await job(db)
        finally:
            await db.close()

    return asyncio.run(main())


def _emit(data: dict[str, Any], as_json: bool, html_out: Path | None,
          text: Callable[[dict[str, Any]], None]) -> None:
    if html_out is not None:
        from kanjia.reports import render_html

        html_out.write_text(render_html(data), encoding="utf-8")
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False))
    else:
        text(data)
        if html_out is not None:
            click.echo(f"wrote {html_out}")


# -- kanjia report --------------------------------------------------------------------
@click.command(cls=_Command)
@click.option("--since", callback=iso_date, default=None, metavar="DATE",
              help="From this UTC date (default: the whole ledger).")
@click.option("--until", callback=iso_date, default=None, metavar="DATE",
              help="Up to (not including) this UTC date.")
@click.option("--by", type=click.Choice(GROUP_NAMES), default="model", show_default=True)
@click.option("--currency", type=click.Choice(CURRENCIES, case_sensitive=False),
              default="CNY", show_default=True, help="The main currency (the other is shown too).")
@click.option("--baseline", is_flag=False, flag_value=_CONFIGURED, default=None,
              metavar="[MODEL]", help="Savings: the same traffic sent entirely to MODEL. "
              f"A bare --baseline means $KANJIA_BASELINE, else {DEFAULT_BASELINE}.")
@click.option("--reprice-at", callback=iso_date, default=None, metavar="DATE",
              help="Re-price every request at that date's prices (e.g. 2024-04-30).")
@click.option("--reprice-on", default=None, metavar="VENDOR",
              help="Re-price every request on VENDOR's closest models.")
@click.option("--db", "database", envvar="KANJIA_DB", default="kanjia.db", show_default=True,
              help="Ledger database: a SQLite path or postgresql://... ($KANJIA_DB).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--html", "html_out", type=click.Path(dir_okay=False, path_type=Path),
              default=None, metavar="FILE", help="Also write a self-contained HTML page.")
@_friendly
def report(since: date | None, until: date | None, by: str, currency: str,
           baseline: str | None, reprice_at: date | None, reprice_on: str | None,
           database: str, as_json: bool, html_out: Path | None) -> None:
    """Report spend, savings and errors from the ledger.

    Spend, tokens, errors and latency from the ledger; savings vs a baseline model;
    the ledger re-priced at another date or on another vendor."""
    from kanjia.catalog import load_catalog
    from kanjia.reports import reprice_report, savings_report, spend_report

    if baseline is not None and (reprice_at is not None or reprice_on is not None):
        raise BadInput("--baseline and --reprice-at/--reprice-on are separate reports: "
                       "choose one")
    if since is not None and until is not None and until <= since:
        raise BadInput(f"--until ({until}) must be after --since ({since})")
    if baseline == _CONFIGURED:
        baseline = os.environ.get("KANJIA_BASELINE") or DEFAULT_BASELINE
    currency = currency.upper()
    catalog = load_catalog()
    if reprice_on is not None and reprice_on not in catalog.vendors:
        raise BadInput(f"unknown vendor {reprice_on!r} for --reprice-on; known: "
                       f"{', '.join(sorted(catalog.vendors))}")
    if baseline is not None:
        from kanjia.reports import find_model

        find_model(catalog, baseline, "--baseline")       # fail before opening the ledger
    existing_ledger(database)

    async def job(db: Any) -> dict[str, Any]:
        if baseline is not None:
            return await savings_report(db, catalog, since=since, until=until,
                                        baseline=baseline, currency=currency, by=by)
        if reprice_at is not None or reprice_on is not None:
            return await reprice_report(db, catalog, at=reprice_at, on_vendor=reprice_on,
                                        since=since, until=until, currency=currency, by=by)
        return await spend_report(db, catalog, since=since, until=until, by=by,
                                  currency=currency)

    _emit(_run(database, job), as_json, html_out, _print_report)


def _num(value: float | None, digits: int = 6) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _pct(share: float | None) -> str:
    return "-" if share is None else f"{share:.1%}"


def _table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(x) for x in col) for col in zip(head, *rows, strict=True)]
    for row in (head, *rows):
        click.echo("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                             for i, (c, w) in enumerate(zip(row, widths, strict=True))))


def _other(m: dict[str, Any]) -> str:
    cur = "USD" if m["currency"] == "CNY" else "CNY"
    return _num(m["amounts"][cur])


def _print_report(r: dict[str, Any]) -> None:
    cur, by, kind = r["currency"], r["by"], r["kind"]
    alt = "USD" if cur == "CNY" else "CNY"
    span = f"{r['since'] or 'the beginning'} to {r['until'] or 'now'}"
    t = r["total"]
    if kind == "spend":
        click.echo(f"spend from {span}, by {by}, in {cur} (and {alt})")
        rows = [*r["rows"], t]
        _table((by, "requests", "errors", "tokens", f"cost {cur}", f"cost {alt}", "p50 ms",
                "mean ms"),
               [(str(x[by]), str(x["requests"]), str(x["errors"]), str(x["tokens"]),
                 _num(x["amount"]), _other(x), _num(x["latency_p50_ms"], 1),
                 _num(x["latency_mean_ms"], 1)) for x in rows])
    elif kind == "savings":
        click.echo(f"savings from {span}: the same traffic all on {r['baseline']}, by {by}, "
                   f"in {cur}")
        rows = [*r["rows"], {**t, by: "TOTAL", "baseline": r["baseline_total"],
                              "saving": r["saving"]}]
        _table((by, "requests", "tokens", f"cost {cur}", f"baseline {cur}", f"saving {cur}",
                "saving %"),
               [(str(x[by]), str(x["requests"]), str(x["tokens"]), _num(x["amount"]),
                 _num(x["baseline"]["amount"]), _num(x["saving"]["amount"]),
                 _pct(x["saving"]["share"])) for x in rows])
        s = r["saving"]
        click.echo(f"saved {_num(s['amount'])} {cur} ({_other(s)} {alt}), "
                   f"{_pct(s['share'])} of the baseline")
        for lever in r["levers"]:
            who = _LEVERS.get(lever["lever"], lever["lever"])
            click.echo(f"  {who}: {lever['requests']} requests, saved "
                       f"{_num(lever['saving']['amount'])} {cur} "
                       f"({_pct(lever['saving']['share'])} of their baseline)")
        split = r.get("lever_split")
        if split:
            click.echo(f"by lever, against {split['baseline']} at list price with nothing "
                       f"cached ({_num(split['baseline_list']['amount'])} {cur}): saved "
                       f"{_num(split['saving']['amount'])} {cur}")
            for name, amount in split["levers"].items():
                if amount["amount"]:
                    click.echo(f"  {name.replace('_', ' ')}: {_num(amount['amount'])} {cur}")
    else:
        how = " and ".join(x for x in (
            f"at the prices of {r['at']}" if r["at"] else "",
            f"on {r['on_vendor']}" if r["on_vendor"] else "") if x)
        click.echo(f"the ledger from {span} re-priced {how}, by {by}, in {cur}")
        rows = [*r["rows"], {**t, by: "TOTAL", "actual": r["actual_total"],
                              "difference": r["difference"]}]
        _table((by, "requests", "tokens", f"ledger {cur}", f"re-priced {cur}",
                f"difference {cur}", "change"),
               [(str(x[by]), str(x["requests"]), str(x["tokens"]), _num(x["actual"]["amount"]),
                 _num(x["amount"]), _num(x["difference"]["amount"]),
                 _pct(x["difference"]["share"])) for x in rows])
        for s in r["substitutions"]:
            click.echo(f"  {s['model']} -> {s['used']}: {s['reason']}")
    for note in r.get("notes", ()):
        click.echo(f"note: {note}")
    if not t["requests"]:
        click.echo("(no requests in the ledger for this window)")


# -- kanjia breakeven -----------------------------------------------------------------
def _measure(seconds: float) -> tuple[float, str]:
    hint = "install the local extra: pip install 'kanjia[local]'"
    try:
        from kanjia.local import measure
    except ImportError as exc:
        raise BadInput(f"--measure needs kanjia.local ({exc}); {hint}") from None
    try:
        found = measure(seconds=seconds)
    except Exception as exc:  # anything the local server does wrong ends the command
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        tail = "" if "pip install" in first else f"; {hint}"
        raise BadInput(f"--measure failed: {first}{tail}") from None
    return float(found.tokens_per_second), str(found.model)


@click.command(cls=_Command)
@click.option("--model", required=True, help="A catalog model with open weights.")
@click.option("--gpu-hourly", required=True, metavar="AMOUNT",
              help="One GPU's price per hour: 2.5USD, 15CNY or a number in --currency.")
@click.option("--tokens-per-second", type=click.FloatRange(min=0, min_open=True),
              default=None, help="Tokens one GPU serves per second at full load.")
@click.option("--measure", "do_measure", is_flag=True,
              help="Measure tokens/s of the local model instead (kanjia[local]).")
@click.option("--measure-seconds", type=click.FloatRange(min=1), default=20.0,
              show_default=True, help="How long --measure runs.")
@click.option("--utilization", type=click.FloatRange(0, 1, min_open=True), default=0.6,
              show_default=True, help="Average share of the GPUs' capacity used.")
@click.option("--tokens-per-day", type=click.FloatRange(min=0), default=None,
              help="Traffic: tokens (prompt + output) per day.")
@click.option("--traffic-from-ledger", is_flag=True,
              help="Traffic from the ledger: the model's (else all) tokens per day.")
@click.option("--input-share", type=click.FloatRange(0, 1), default=None,
              help="Share of prompt tokens in the traffic (default 0.75, or the ledger's).")
@click.option("--currency", type=click.Choice(CURRENCIES, case_sensitive=False),
              default="CNY", show_default=True)
@click.option("--db", "database", envvar="KANJIA_DB", default="kanjia.db", show_default=True,
              help="Ledger for --traffic-from-ledger ($KANJIA_DB).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--html", "html_out", type=click.Path(dir_okay=False, path_type=Path),
              default=None, metavar="FILE", help="Also write a self-contained HTML page.")
@click.option("--chart", "chart_out", type=click.Path(dir_okay=False, path_type=Path),
              default=None, metavar="FILE.png", help="Write the cost-vs-traffic chart (PNG).")
@_friendly
def breakeven(model: str, gpu_hourly: str, tokens_per_second: float | None, do_measure: bool,
              measure_seconds: float, utilization: float, tokens_per_day: float | None,
              traffic_from_ledger: bool, input_share: float | None, currency: str,
              database: str, as_json: bool, html_out: Path | None,
              chart_out: Path | None) -> None:
    """Compare self-hosting a model with paying its API.

    Self-hosting an open-weights model vs paying its API: monthly cost of each, the
    break-even tokens/day and the GPUs needed."""
    from kanjia.catalog import load_catalog
    from kanjia.reports import api_model, breakeven_chart, ledger_traffic, parse_amount
    from kanjia.reports import breakeven as compute

    currency = currency.upper()
    if (tokens_per_second is None) == (not do_measure):
        raise BadInput("give one of --tokens-per-second N and --measure")
    if (tokens_per_day is None) == (not traffic_from_ledger):
        raise BadInput("give one of --tokens-per-day N and --traffic-from-ledger")
    if chart_out is not None and chart_out.suffix.lower() != ".png":
        raise BadInput(f"--chart writes PNG: {chart_out} should end in .png")
    amount, gpu_currency = parse_amount(gpu_hourly, currency)
    catalog = load_catalog()
    local, _ = api_model(catalog, model)                 # fail early on a closed model
    measured: str | None = None
    if do_measure:
        tokens_per_second, measured = _measure(measure_seconds)
    assert tokens_per_second is not None
    source, cached_share = "given", 0.0
    if traffic_from_ledger:
        existing_ledger(database)
        traffic = _run(database, lambda db: ledger_traffic(db, local))
        tokens_per_day, source = traffic["tokens_per_day"], traffic["source"]
        cached_share = traffic["cached_share"]
        if input_share is None:
            input_share = traffic["input_share"]
    assert tokens_per_day is not None
    data = compute(catalog, model, gpu_hourly=Decimal(amount), gpu_currency=gpu_currency,
                   tokens_per_second=tokens_per_second, tokens_per_day=tokens_per_day,
                   utilization=utilization, currency=currency,
                   input_share=0.75 if input_share is None else input_share,
                   cached_share=cached_share, traffic_source=source)
    if measured is not None:
        data["self_host"]["measured_model"] = measured
        data["notes"].append(f"tokens/s measured on this machine with {measured}")
    if chart_out is not None:
        breakeven_chart(data, chart_out)
    _emit(data, as_json, html_out, _print_breakeven)
    if chart_out is not None and not as_json:
        click.echo(f"wrote {chart_out}")


def _print_breakeven(d: dict[str, Any]) -> None:
    cur = d["currency"]
    m, api, sh = d["monthly"], d["api"], d["self_host"]
    click.echo(f"{d['model']} self-hosted vs the API of {d['api_model']} (prices of {d['at']}, "
               f"{cur}, a month = {d['days_per_month']} days)")
    click.echo(f"  API: {_num(api['blended_mtok'], 4)} {cur} per 1M tokens blended "
               f"({api['input_share']:.0%} prompt; in {_num(api['input_mtok'], 4)}, "
               f"out {_num(api['output_mtok'], 4)})")
    click.echo(f"  GPU: {_num(sh['gpu_hourly']['amount'], 4)} {cur}/h, "
               f"{sh['tokens_per_second']:g} tok/s at {sh['utilization']:.0%} = "
               f"{sh['tokens_per_day_per_gpu']:,.0f} tokens/day per GPU "
               f"({_num(sh['cost_per_mtok_full_load'], 4)} {cur} per 1M at that load)")
    click.echo(f"  traffic: {d['traffic']['tokens_per_day']:,.0f} tokens/day "
               f"({d['traffic']['source']})")
    click.echo(f"  per month: API {_num(m['api']['amount'], 2)} {cur}, self-hosted "
               f"{_num(m['self_host']['amount'], 2)} {cur} on {m['gpus']} GPU(s): "
               f"{m['cheaper']} is cheaper")
    first = d["breakeven_tokens_per_day"]
    if first is None:
        click.echo("  break-even: never (one fully used GPU costs more per token than the API)")
    else:
        click.echo(f"  break-even: {first:,.0f} tokens/day; self-hosting is cheaper at any "
                   f"traffic above {d['self_host_always_cheaper_above_tokens_per_day']:,.0f}")
    for note in d["notes"]:
        click.echo(f"note: {note}")
