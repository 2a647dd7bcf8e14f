"""`kanjia catalog`: the price catalog's data against other catalogs, and a guarded sync.

    kanjia catalog import [--genai-prices] [--litellm FILE.json] [--json]
    kanjia catalog import --from FILE [--vendor V] [--max-increase PCT] [--apply]
                          [--overrides FILE] [--json]
    kanjia catalog build-market

Without ``--from``, ``import`` lists where genai-prices (or a LiteLLM file) differs
from kanjia's own data by more than 5%. With ``--from FILE`` (LiteLLM's
``model_prices_and_context_window.json`` or a kanjia vendor TOML; ``--from
genai-prices`` for the snapshot) it plans a sync: decreases and increases up to
``--max-increase`` are accepted, larger increases and offers in another currency are
held for review; ``--apply`` writes the accepted ones to the user's override file with
their source and date. kanjia's own data files are never written.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import click

from kanjia.catalog import (
    Change,
    Comparison,
    compare_genai_prices,
    compare_litellm,
    default_overrides_path,
    genai_offers,
    load_catalog,
    plan_sync,
    read_overrides,
    read_price_file,
    write_overrides,
)
from kanjia.cli._common import BadInput
from kanjia.cli._common import Group as _Group
from kanjia.cli._common import friendly as _friendly

__all__ = ["catalog"]

#: increases larger than this (percent) are held for review by default
DEFAULT_MAX_INCREASE = Decimal(10)


def _num(d: Decimal | None) -> str:
    if d is None:
        return "-"
    if d == 0:
        return "0"
    text = format(Decimal(f"{d:.6g}"), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _jnum(d: Decimal | None) -> float | None:
    return None if d is None else float(d)


def _table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                     for r in [headers, ["-" * w for w in widths], *rows])


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "?"


@click.group(cls=_Group)
def catalog() -> None:
    """Compare and sync the price catalog.

    Compare it with other catalogs; sync it from one, with guards."""


@catalog.command("import")
@click.option("--genai-prices", "use_genai", is_flag=True,
              help="Compare with the snapshot bundled in genai-prices (the default).")
@click.option("--litellm", type=click.Path(dir_okay=False, path_type=Path),
              metavar="FILE.json", help="Compare with a LiteLLM-format price JSON.")
@click.option("--from", "from_file", metavar="FILE",
              help="Plan a sync from LiteLLM's price JSON, a kanjia vendor TOML, or "
                   "'genai-prices'.")
@click.option("--vendor", "vendors", multiple=True, metavar="V",
              help="Only this vendor (repeat or comma-separate).")
@click.option("--max-increase", type=click.FloatRange(min=0), default=float(DEFAULT_MAX_INCREASE),
              show_default=True, metavar="PCT",
              help="Increases above this percentage are held for review, not applied.")
@click.option("--apply", "do_apply", is_flag=True,
              help="Write the accepted changes to the override file.")
@click.option("--overrides", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The user's price-override file (default: $KANJIA_PRICE_OVERRIDES or "
                   "~/.config/kanjia/price-overrides.toml).")
@click.option("--json", "as_json", is_flag=True, help="JSON output.")
@_friendly
def import_command(use_genai: bool, litellm: Path | None, from_file: str | None,
                   vendors: tuple[str, ...], max_increase: float, do_apply: bool,
                   overrides: Path | None, as_json: bool) -> None:
    """Compare other catalogs with ours, or sync from one.

    Lists where other catalogs differ from ours; with --from, a guarded sync."""
    path = overrides or default_overrides_path()
    read_overrides(path)                      # a broken override file stops everything
    cat = load_catalog(overrides=path if path.exists() else None)
    wanted = [v.strip() for item in vendors for v in item.split(",") if v.strip()]
    unknown = [v for v in wanted if v not in cat.vendors]
    if unknown:
        raise BadInput(f"unknown vendor {unknown[0]!r}; known: {', '.join(sorted(cat.vendors))}")
    if from_file is None:
        if do_apply:
            raise BadInput("--apply needs --from FILE (or --from genai-prices)")
        _compare(cat, use_genai, litellm, wanted, as_json)
        return
    offers = genai_offers(cat) if from_file == "genai-prices" else \
        read_price_file(Path(from_file))
    plan = plan_sync(cat, offers, Decimal(str(max_increase)) / 100, vendors=wanted)
    written = 0
    if do_apply and plan.accepted:
        today = datetime.now(UTC).date()
        written = write_overrides(path, [c.override(today) for c in plan.accepted])
    if as_json:
        click.echo(json.dumps({
            "from": from_file, "max_increase_pct": max_increase, "applied": do_apply,
            "overrides": str(path), "written": written, "unchanged": plan.unchanged,
            "unknown": len(plan.unknown),
            "accepted": [_change_json(c) for c in plan.accepted],
            "held": [_change_json(c) for c in plan.held]}, indent=2, ensure_ascii=False))
        return
    click.echo(f"{from_file}: {len(plan.accepted)} changes accepted, {len(plan.held)} held "
               f"for review, {plan.unchanged} unchanged, {len(plan.unknown)} models not in "
               "the catalog.\n")
    if plan.accepted:
        click.echo("Accepted (decreases, and increases up to "
                   f"{max_increase:g}%):\n" + _changes_table(plan.accepted) + "\n")
    if plan.held:
        click.echo("Held for review (not applied):\n" + _changes_table(plan.held) + "\n")
    if do_apply:
        click.echo(f"wrote {written} entries to {path}" if written else
                   "nothing to write")
    else:
        click.echo("Nothing was changed (use --apply to write the accepted changes to "
                   f"{path}).")


def _changes_table(changes: tuple[Change, ...]) -> str:
    rows = []
    for c in changes:
        old = " / ".join(_num(c.old.get(k)) for k in ("input_mtok", "cached_mtok",
                                                        "output_mtok"))
        new = " / ".join(_num(c.new.get(k)) for k in ("input_mtok", "cached_mtok",
                                                        "output_mtok"))
        rows.append([c.key, f"{old} {c.currency}", f"{new} {c.offer_currency or c.currency}",
                     c.held or "", c.source])
    return _table(["MODEL", "NOW in/cached/out", "OFFER", "HELD BECAUSE", "SOURCE"], rows)


def _change_json(c: Change) -> dict[str, Any]:
    return {"key": c.key, "currency": c.currency, "offer_currency": c.offer_currency,
            "old": {k: _jnum(v) for k, v in c.old.items()},
            "new": {k: _jnum(v) for k, v in c.new.items()},
            "increase": None if c.increase is None or not c.increase.is_finite()
            else float(c.increase), "held": c.held, "source": c.source}


def _compare(cat: Any, use_genai: bool, litellm: Path | None, wanted: list[str],
             as_json: bool) -> None:
    results: list[Comparison] = []
    if use_genai or litellm is None:
        results.append(compare_genai_prices(cat))
    if litellm is not None:
        results.append(compare_litellm(cat, litellm))
    if wanted:
        results = [Comparison(c.catalog, c.at,
                              tuple(k for k in c.matched if k.split("/", 1)[0] in wanted),
                              tuple(k for k in c.missing if k.split("/", 1)[0] in wanted),
                              tuple(d for d in c.disagreements
                                    if d.key.split("/", 1)[0] in wanted))
                   for c in results]
    if as_json:
        click.echo(json.dumps({"comparisons": [_comparison_json(c) for c in results]},
                              indent=2, ensure_ascii=False))
        return
    for c in results:
        name = c.catalog + (f" {_version('genai-prices')}" if c.catalog == "genai-prices" else "")
        explained = [d for d in c.disagreements if d.explained]
        click.echo(f"{name}: {len(c.matched)} of our models found there, "
                   f"{len(c.missing)} not found; {len(c.disagreements)} values differ by "
                   f"more than 5% (compared in USD at {c.at:%Y-%m-%d}), "
                   f"{len(c.disagreements) - len(explained)} unexplained:\n")
        rows = [[d.key, d.field, "-" if d.ours is None else
                 f"{_num(d.ours)}{' ' + d.ours_currency if d.ours_currency else ''}",
                 _num(d.ours_usd) if d.ours_currency else "",
                 _num(d.theirs_usd), f"{d.relative:.0%}" if d.relative is not None else "",
                 d.period_id or "", d.explained or ""] for d in c.disagreements]
        click.echo(_table(["MODEL", "FIELD", "OURS", "OURS USD", "THEIRS", "DIFF",
                           "OUR PERIOD", "EXPLAINED"], rows))
        if c.missing:
            click.echo(f"\nnot found there: {', '.join(c.missing)}")
        click.echo("")
    click.echo("Nothing was changed: fix catalog/data/<vendor>.toml by hand after checking "
               "the vendor's page, or sync with --from FILE --apply.")


def _comparison_json(c: Comparison) -> dict[str, Any]:
    return {"catalog": c.catalog, "at": c.at.isoformat(), "matched": list(c.matched),
            "missing": list(c.missing),
            "disagreements": [{"key": d.key, "their_id": d.their_id, "field": d.field,
                               "ours": _jnum(d.ours), "ours_currency": d.ours_currency,
                               "ours_usd": _jnum(d.ours_usd), "theirs_usd": _jnum(d.theirs_usd),
                               "relative": _jnum(d.relative), "period_id": d.period_id,
                               "explained": d.explained}
                              for d in c.disagreements],
            "unexplained": sum(1 for d in c.disagreements if not d.explained)}


@catalog.command("build-market")
@_friendly
def build_market() -> None:
    """Rebuild the market catalog from genai-prices.

    Writes catalog/market/genai_prices.json from the installed genai-prices."""
    from kanjia.catalog._market_build import MARKET_FILE, write_market

    models, vendors = write_market(load_catalog(market=False))
    click.echo(f"wrote {MARKET_FILE.name}: {models} models of {vendors} vendors from "
               f"genai-prices {_version('genai-prices')}")
