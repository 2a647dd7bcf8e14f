"""`kanjia prices`, `kanjia quote` and `kanjia catalog`: the price catalog on the command line.

    kanjia prices [--vendor V] [--capability tools] [--currency CNY|USD] [--at DATE]
                  [--sort input|output|blended] [--json]
    kanjia prices history MODEL [--json]
    kanjia prices chart [--out FILE.png|FILE.html] [--vendors ...] [--currency CNY|USD]
    kanjia quote --input-tokens N --output-tokens N [--cached-share 0.3] [--requests N]
                 [--at DATE] [--capability ...] [--currency ...] [--json]
    kanjia quote --workload FILE.jsonl [...]
    kanjia prices check [--max-age DAYS] [--json]
(`kanjia catalog` is in cli/catalog.py)

Bad input prints one line ("Error: ...") and exits with status 2.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any

import click

from kanjia.catalog import (
    Catalog,
    ModelEntry,
    PricePeriod,
    Workload,
    read_workload,
    render_chart,
)
from kanjia.catalog import quote as quote_workload
from kanjia.cli._common import CURRENCIES, BadInput
from kanjia.cli._common import Command as _Command
from kanjia.cli._common import Group as _Group
from kanjia.cli._common import friendly as _friendly
from kanjia.cli._user_catalog import user_catalog

__all__ = ["prices", "quote_command"]

CAPABILITIES = ("chat", "tools", "vision", "json_mode", "reasoning", "embeddings")


# -- shared helpers -------------------------------------------------------------------
def _parse_at(text: str | None) -> datetime:
    """None: now. YYYY-MM-DD: 12:00 UTC that day (after any 00:00 Beijing start).
    A full ISO date-time (with offset; naive means UTC) is used as is."""
    if text is None:
        return datetime.now(UTC)
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), time(12), UTC)
        at = datetime.fromisoformat(text)
    except ValueError:
        raise BadInput(f"--at {text!r} is not a date (YYYY-MM-DD) or ISO date-time") from None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _split(values: Iterable[str]) -> list[str]:
    return [v.strip() for item in values for v in item.split(",") if v.strip()]


def _check_vendors(cat: Catalog, vendors: Sequence[str]) -> None:
    unknown = [v for v in vendors if v not in cat.vendors]
    if unknown:
        raise BadInput(f"unknown vendor {unknown[0]!r}; known: {', '.join(sorted(cat.vendors))}")


def _num(d: Decimal | None) -> str:
    """A price for people: up to 6 significant digits, no exponent, no trailing zeros."""
    if d is None:
        return "-"
    if d == 0:
        return "0"
    rounded = Decimal(f"{d:.6g}")
    text = format(rounded, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _jnum(d: Decimal | None) -> Decimal | None:
    """A price or amount for JSON: an exact number in plain notation (``_json.dumps``)."""
    return d


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: set[int]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.rjust(w) if i in right else c.ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths, strict=True))).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]),
                      *(line(r) for r in rows)])


def _emit_json(data: Any) -> None:
    from kanjia.cli._json import dumps

    click.echo(dumps(data, ensure_ascii=False, indent=2))


def _period_json(p: PricePeriod) -> dict[str, Any]:
    def prices(src: Any) -> dict[str, Decimal | None]:
        return {f: _jnum(getattr(src, f)) for f in
                ("input_mtok", "cached_mtok", "cache_write_mtok", "cache_write_1h_mtok",
                 "output_mtok")}

    return {
        "id": p.id,
        "start": p.start.astimezone(p.tz).isoformat() if p.start else None,
        "end": p.end.astimezone(p.tz).isoformat() if p.end else None,
        "currency": p.currency, **prices(p), "free": p.free, "free_quota": p.free_quota,
        "tiers": [{"above_input_tokens": t.above_input_tokens, **prices(t)} for t in p.tiers],
        "windows": [{"label": w.label, "hours": list(w.hours), "days": w.days, **prices(w)}
                    for w in p.windows],
        "source": p.source, "checked": p.checked.isoformat(), "evidence": p.evidence,
        "start_evidence": p.start_evidence, "first_seen": p.first_seen, "note": p.note,
    }


def _model_json(cat: Catalog, m: ModelEntry, at: datetime, shown: str | None) -> dict[str, Any]:
    period = m.price_at(at)
    current: dict[str, Any] | None = None
    if period is not None:
        current = {"period_id": period.id, "currency": period.currency,
                   **{f: _jnum(getattr(period, f)) for f in
                      ("input_mtok", "cached_mtok", "output_mtok")}}
        if shown is not None:
            conv = _converted(cat, period, shown, at)
            current["shown"] = {"currency": shown, **{k: _jnum(v) for k, v in conv.items()}}
    return {
        "vendor": m.vendor, "model": m.model, "key": m.key, "aliases": list(m.aliases),
        "region": m.region, "currency": m.currency, "context_window": m.context_window,
        "max_output": m.max_output, "capabilities": sorted(m.capabilities),
        "open_weights": m.open_weights, "params_b": m.params_b, "family": m.family,
        "catalog_ids": dict(m.catalog_ids), "note": m.note, "at": current,
        "periods": [_period_json(p) for p in m.periods],
    }


def _converted(cat: Catalog, p: PricePeriod, currency: str,
               at: datetime) -> dict[str, Decimal | None]:
    def conv(v: Decimal | None) -> Decimal | None:
        return None if v is None else cat.fx.convert(v, p.currency, currency, at.date())

    out = p.output_mtok if p.output_mtok is not None else None
    blended = None if out is None else (3 * p.input_mtok + out) / 4
    return {"input_mtok": conv(p.input_mtok), "cached_mtok": conv(p.cached_mtok),
            "output_mtok": conv(out), "blended_mtok": conv(blended)}


def _flags(p: PricePeriod) -> str:
    bits = []
    if p.free:
        bits.append("free" + (f" ({p.free_quota})" if p.free_quota else ""))
    if p.windows and p.base_label:
        bits.append(f"shown: {p.base_label}")
    bits += [f"{w.label} {','.join(w.hours)}{'' if w.days == 'daily' else ' ' + w.days}"
             + f" (in {_num(w.input_mtok)}, out {_num(w.output_mtok)} {p.currency})"
             for w in p.windows]
    bits += [f"tier >{t.above_input_tokens // 1000}k" for t in p.tiers]
    if not p.complete:
        bits.append("output price unknown")
    if p.end is not None:
        bits.append(f"until {p.end.astimezone(p.tz):%Y-%m-%d}")
    return "; ".join(bits)


#: what the EVIDENCE column's codes mean (the catalog's ``evidence`` field)
EVIDENCE_LEGEND = ("EVIDENCE: S stated in a cited source; S3 a weaker third-party snapshot; "
                   "M unverified recollection; /date X: the start date is only that sure.")


# -- kanjia prices ----------------------------------------------------------------------
@click.group(cls=_Group, invoke_without_command=True)
@click.option("--vendor", "vendors", multiple=True, metavar="V",
              help="Only this vendor (repeat or comma-separate for several).")
@click.option("--capability", "capabilities", multiple=True,
              type=click.Choice(CAPABILITIES), help="Only models with this capability.")
@click.option("--currency", type=click.Choice(CURRENCIES),
              help="Show prices in this currency (default: as billed).")
@click.option("--at", "at_text", metavar="YYYY-MM-DD", help="Prices in force that day.")
@click.option("--sort", type=click.Choice(("input", "output", "blended")), default="blended",
              show_default=True, help="Order (cheapest first; blended = 3 input : 1 output).")
@click.option("--json", "as_json", is_flag=True, help="A JSON array, one object per model.")
@click.pass_context
@_friendly
def prices(ctx: click.Context, vendors: tuple[str, ...], capabilities: tuple[str, ...],
           currency: str | None, at_text: str | None, sort: str, as_json: bool) -> None:
    """Today's (or that date's) price per 1M tokens of every model.

    \b
    EVIDENCE is how sure a price is:
      S    stated in a cited source (the vendor's page, a repository or a package)
      S3   a weaker third-party snapshot (the llmprice.cn README's git history)
      M    unverified recollection: check it before relying on it
      /date X   the period's start date is only that sure (e.g. S3/date M)
    `kanjia prices history MODEL` shows each period's source."""
    if ctx.invoked_subcommand is not None:
        return
    cat = user_catalog()
    at = _parse_at(at_text)
    wanted = _split(vendors)
    _check_vendors(cat, wanted)
    models = [m for m in cat.every if (not wanted or m.vendor in wanted)
              and set(capabilities) <= m.capabilities]
    if as_json:
        _emit_json([_model_json(cat, m, at, currency) for m in models])
        return
    order_cur = currency or "CNY"
    priced: list[tuple[Decimal, ModelEntry, PricePeriod]] = []
    unpriced: list[str] = []
    for m in models:
        p = m.price_at(at)
        if p is None:
            unpriced.append(m.key)
            continue
        conv = _converted(cat, p, order_cur, at)
        key = conv[f"{sort}_mtok"]
        priced.append((key if key is not None else conv["input_mtok"] or Decimal(0), m, p))
    priced.sort(key=lambda r: (r[0], r[1].key))
    rows = []
    for _, m, p in priced:
        shown = _converted(cat, p, currency, at) if currency else {
            "input_mtok": p.input_mtok, "cached_mtok": p.cached_mtok,
            "output_mtok": p.output_mtok}
        rows.append([m.key, p.id, currency or p.currency, _num(shown["input_mtok"]),
                     _num(shown["cached_mtok"]), _num(shown["output_mtok"]),
                     p.evidence + ("/date " + p.start_evidence if p.start_evidence else ""),
                     _flags(p)])
    click.echo(_table(["MODEL", "PERIOD", "CUR", "INPUT", "CACHED", "OUTPUT", "EVIDENCE",
                       "NOTES"], rows, {3, 4, 5}))
    click.echo(f"\n{len(rows)} models priced at {at:%Y-%m-%d %H:%M} UTC, per 1M tokens"
               + (f"; {len(unpriced)} without a price then" if unpriced else "") + ".")
    click.echo(EVIDENCE_LEGEND)


@prices.command("history")
@click.argument("model")
@click.option("--json", "as_json", is_flag=True, help="One JSON object with every period.")
@_friendly
def history(model: str, as_json: bool) -> None:
    """Show every price period of a model.

    MODEL is "vendor/model", a model id or an alias."""
    cat = user_catalog()
    entry = _resolve(cat, model)
    if as_json:
        _emit_json(_model_json(cat, entry, datetime.now(UTC), None))
        return
    vendor = cat.vendors[entry.vendor]
    click.echo(f"{entry.key}: {vendor.name}, region {vendor.region}; prices per 1M tokens")
    if entry.note:
        click.echo(f"  {entry.note}")
    if not entry.periods:
        click.echo("  no price in any of our sources")
    for p in entry.periods:
        start = p.start.astimezone(p.tz).strftime("%Y-%m-%d %H:%M") if p.start else "unknown"
        start_note = " (first seen)" if p.first_seen else ""
        if p.start_evidence:
            start_note += f" [date {p.start_evidence}]"
        prices_text = "free" + (f" ({p.free_quota})" if p.free_quota else "") if p.free \
            else _prices_text(p)
        label = f" (base: {p.base_label})" if p.base_label else ""
        click.echo(f"\n{p.id}{label}  from {start}{start_note}  {p.currency}  {prices_text}"
                   f"  [{p.evidence}]")
        for w in p.windows:
            days = "" if w.days == "daily" else f" {w.days}"
            click.echo(f"    +{w.label} {','.join(w.hours)}{days}: {_prices_text(w)}")
        for t in p.tiers:
            click.echo(f"    prompt over {t.above_input_tokens:,} tokens: {_prices_text(t)}")
        if p.end is not None:
            click.echo(f"    until {p.end.astimezone(p.tz):%Y-%m-%d %H:%M}")
        click.echo(f"    source: {p.source} (checked {p.checked})")
        if p.note:
            click.echo(f"    note: {p.note}")


def _prices_text(src: Any) -> str:
    parts = [f"in {_num(src.input_mtok)}"]
    if src.cached_mtok is not None:
        parts.append(f"cached {_num(src.cached_mtok)}")
    if src.cache_write_mtok is not None:
        parts.append(f"cache-write {_num(src.cache_write_mtok)}")
    if src.cache_write_1h_mtok is not None:
        parts.append(f"cache-write-1h {_num(src.cache_write_1h_mtok)}")
    parts.append(f"out {_num(src.output_mtok)}" if src.output_mtok is not None
                 else "out unknown")
    return "  ".join(parts)


def _resolve(cat: Catalog, name: str) -> ModelEntry:
    found = cat.find(name)
    vendor, sep, rest = name.partition("/")
    exact = cat.get(vendor, rest) if sep else None
    if exact is not None:
        return exact
    if len(found) == 1:
        return found[0]
    if not found:
        raise BadInput(f"unknown model {name!r} (try `kanjia prices` for the list)")
    raise BadInput(f"{name!r} is ambiguous: {', '.join(m.key for m in found)}")


@prices.command("chart")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("price-war.png"), show_default=True,
              help="Output file: .png, .svg or .html.")
@click.option("--vendors", multiple=True, metavar="V,...",
              help="Only these vendors (repeat or comma-separate).")
@click.option("--currency", type=click.Choice(CURRENCIES), default="CNY", show_default=True)
@_friendly
def chart(out: Path, vendors: tuple[str, ...], currency: str) -> None:
    """Draw the price war as a chart.

    Price per 1M tokens over time, on a log scale."""
    if out.suffix.lower() not in (".png", ".svg", ".html"):
        raise BadInput(f"--out {str(out)!r}: use a .png, .svg or .html file name")
    cat = user_catalog()
    wanted = _split(vendors)
    _check_vendors(cat, wanted)
    try:
        lines = render_chart(cat, out, wanted, currency)
    except OSError as exc:
        raise BadInput(f"cannot write {out}: {exc.strerror or exc}") from None
    click.echo(f"wrote {out} ({lines} lines)")


# -- kanjia quote ---------------------------------------------------------------------
@click.command("quote", cls=_Command)
@click.option("--input-tokens", type=click.IntRange(min=0), help="Prompt tokens per request.")
@click.option("--output-tokens", type=click.IntRange(min=0),
              help="Output tokens per request (with --workload: for lines without any).")
@click.option("--cached-share", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Share of the prompt that hits the vendor's cache.")
@click.option("--requests", type=click.IntRange(min=1), default=1, show_default=True,
              help="Number of such requests (with --workload: times the file).")
@click.option("--at", "at_text", metavar="YYYY-MM-DD", help="Prices in force that day.")
@click.option("--capability", "capabilities", multiple=True, type=click.Choice(CAPABILITIES),
              help="Only models with this capability (default: chat).")
@click.option("--currency", type=click.Choice(CURRENCIES), default="CNY", show_default=True)
@click.option("--workload", type=click.Path(dir_okay=False, path_type=Path),
              help="JSONL of requests (token counts, or messages counted per tokenizer).")
@click.option("--json", "as_json", is_flag=True, help="JSON output.")
@_friendly
def quote_command(input_tokens: int | None, output_tokens: int | None, cached_share: float,
                  requests: int, at_text: str | None, capabilities: tuple[str, ...],
                  currency: str, workload: Path | None, as_json: bool) -> None:
    """What a workload costs on every model, cheapest first."""
    cat = user_catalog()
    at = _parse_at(at_text)
    work: Workload | Callable[[ModelEntry], Workload]
    if workload is not None:
        if input_tokens is not None:
            raise BadInput("give --workload or --input-tokens, not both")
        from kanjia.tokens import TokenCounter

        wfile = read_workload(workload, TokenCounter(), output_tokens or 0, cached_share)

        def work(model: ModelEntry) -> Workload:
            w = wfile.for_model(model)
            if requests == 1:
                return w
            return Workload(w.input_tokens, w.cached_tokens, w.cache_write_tokens,
                            w.output_tokens, w.count * requests)
        describe = f"{workload} x {requests}" if requests > 1 else str(workload)
    else:
        if input_tokens is None or output_tokens is None:
            raise BadInput("give --input-tokens and --output-tokens, or --workload FILE")
        work = Workload.uniform(input_tokens, output_tokens, cached_share, requests)
        describe = (f"{requests:,} x ({input_tokens:,} in, {cached_share:.0%} cached; "
                    f"{output_tokens:,} out)")
    rows = quote_workload(cat, work, at, currency, capabilities)
    if as_json:
        _emit_json({"at": at.isoformat(), "currency": currency, "workload": describe,
                    "rows": [{"rank": i, "vendor": r.model.vendor, "model": r.model.model,
                              "key": r.model.key, "period_id": r.period_id,
                              "billing_currency": r.currency, "amount": r.amount,
                              "cost": _jnum(r.amount_shown), "per_request": _jnum(r.per_request),
                              "requests": r.requests, "partial": r.partial}
                             for i, r in enumerate(rows, 1)]})
        return
    table = [[str(i), r.model.key, r.period_id, _num(r.amount_shown), _num(r.per_request),
              f"{_num(r.amount)} {r.currency}" + (" (floor: output price unknown)"
                                                 if r.partial else "")]
             for i, r in enumerate(rows, 1)]
    click.echo(f"Quote for {describe} at {at:%Y-%m-%d %H:%M} UTC, in {currency}:\n")
    click.echo(_table(["#", "MODEL", "PERIOD", f"TOTAL {currency}", "PER REQUEST", "AS BILLED"],
                      table, {0, 3, 4}))
    if not rows:
        click.echo("\nno priced model fits (capabilities, context window, date)")


def _subcommands() -> None:
    from kanjia.cli.prices_changes import changes
    from kanjia.cli.prices_check import check

    prices.add_command(check)
    prices.add_command(changes)


_subcommands()

#: `kanjia quote` (the main group maps "quote" to this attribute)
quote = quote_command
