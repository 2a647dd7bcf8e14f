"""What routing saved: the same traffic sent entirely to one baseline model.

Every request keeps its token counts (cached ones included) and is priced on the
baseline at the price in force at its own time (tiers and off-peak windows included);
the saving is that baseline total minus what the ledger recorded. Requests the
baseline cannot serve (embeddings for a chat baseline) or whose model the catalog does
not know keep their ledger cost on both sides, so they save nothing.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Any

from kanjia.catalog import Catalog, ModelEntry
from kanjia.ledger.query import check_by
from kanjia.ledger.store import Database
from kanjia.reports._amounts import check_currency, money
from kanjia.reports._levers import lever_split
from kanjia.reports._replay import Keep, Line, Pick, kind_of, pick, replay, utc
from kanjia.reports._scan import Cell, layout, scan
from kanjia.reports._shape import counts, diff, notes, ordered, window

__all__ = ["find_model", "savings_report"]


def find_model(catalog: Catalog, name: str, what: str) -> ModelEntry:
    """The catalog model ``name`` means ("vendor/model", an id or an alias)."""
    found = catalog.find(name)
    if not found:
        raise ValueError(f"{what} {name!r} is not in the catalog (see `kanjia prices`)")
    vendor, _, rest = name.partition("/")
    if len(found) > 1 and catalog.get(vendor, rest) is not found[0]:
        keys = ", ".join(m.key for m in found[:4])
        raise ValueError(f"{what} {name!r} is ambiguous ({keys}): write it as vendor/model")
    return found[0]


async def savings_report(db: Database, catalog: Catalog, *, since: date | None = None,
                         until: date | None = None, baseline: str = "openai/gpt-4o",
                         currency: str = "CNY", by: str = "model") -> dict[str, Any]:
    """``{"kind": "savings", "total", "baseline_total", "saving", "rows", "notes"}``:
    ``total`` is the ledger's cost, ``saving`` = baseline_total - total (and its share
    of the baseline); each row has its cost, ``baseline`` and ``saving``. ``levers``
    splits the same into ``routing`` (requests a route chose the model for) and
    ``direct`` (requests that named their model), and ``response_cache``: requests
    answered from kanjia's response cache (cost 0), whose saving is what each hit
    recorded as ``saved`` (its cached usage at the answering model's price then), not a
    baseline re-pricing: hits have no tokens to re-price, so that is their baseline, in
    every row, in ``baseline_total`` and in ``saving`` (and apart, as
    ``saving.response_cache``).

    ``lever_split`` splits the saving by lever — routing, off-peak, batch, prompt cache,
    response cache (and direct, the client's own choice) — against the baseline at list
    price with no prompt token cached: each part of each request's saving credited to
    one lever, adding up to its ``saving`` (see ``_levers``).

    One pass over the ledger gives all three: the scan's cells are keyed by what the
    lever split needs too (``scan(levers=True)``), and their buckets cut every catalog
    model's prompt tiers."""
    currency = check_currency(currency)
    check_by(by)
    base = find_model(catalog, baseline, "baseline")
    if not base.periods:
        raise ValueError(f"baseline {base.key} has no price in the catalog")
    lay = layout([base], catalog, by=by, tiers=catalog.models)
    limits = lay.limits
    kind = kind_of(base)
    cache: dict[tuple[int, int], Pick] = {}

    def resolve(src: str, entry: ModelEntry | None, start: int, bucket: int) -> Pick | Keep:
        if entry is None:
            return Keep("the model is not in the catalog")
        if kind_of(entry) != kind:
            return Keep(f"{kind_of(entry)} traffic: {base.key} cannot serve it")
        hit = cache.get((start, bucket))
        if hit is None:
            found = pick(base, utc(start), limits, bucket)
            assert found is not None             # base has periods
            hit = cache[(start, bucket)] = found
        return hit

    cells = await scan(db, lay, since=since, until=until, by=by, levers=True)
    result = replay(cells, catalog, resolve, by=by, saved=True)
    total = result.total()

    def row(name: str, line: Line) -> dict[str, Any]:
        return {name: line.label, **money(line.actual, currency), **counts(line),
                "baseline": money(line.replayed, currency),
                "saving": diff(line.replayed, line.actual, currency, share_of=line.replayed),
                "partial": line.partial}

    rows = [row(by, line) for line in ordered(result.lines.values(), by, currency)]
    # who gets the credit: requests a route chose their model for, requests that named
    # their model (the client's own choice, not kanjia's routing), and requests the
    # response cache answered
    by_lever = result if by == "lever" else replay(
        [_by_lever(c) for c in cells], catalog, resolve, by="lever", saved=True)
    levers = [row("lever", by_lever.lines[name])
              for name in ("routing", "direct", "response_cache") if name in by_lever.lines]
    saving = diff(total.replayed, total.actual, currency, share_of=total.replayed)
    hits = by_lever.lines.get("response_cache")
    if hits is not None:
        saving["response_cache"] = money(hits.replayed, currency)
    return {"kind": "savings", **window(since, until), "by": by, "currency": currency,
            "baseline": base.key,
            "total": {**money(total.actual, currency), **counts(total)},
            "baseline_total": money(total.replayed, currency), "saving": saving,
            "rows": rows, "levers": levers, "partial": total.partial,
            "lever_split": lever_split(cells, catalog, base, lay.limits, currency=currency),
            "notes": notes(result, f"priced at {base.key}'s nearest price"),
            "cells": result.cells}


def _by_lever(cell: Cell) -> Cell:
    """``cell`` labelled by its lever (what ``by="lever"`` groups on)."""
    assert cell.levers is not None
    return replace(cell, label=(cell.levers.lever,))
