"""What routing saved: the same traffic sent entirely to one baseline model.

Every request keeps its token counts (cached ones included) and is priced on the
baseline at the price in force at its own time (tiers and off-peak windows included);
the saving is that baseline total minus what the ledger recorded. Requests the
baseline cannot serve (embeddings for a chat baseline) or whose model the catalog does
not know keep their ledger cost on both sides, so they save nothing.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from kanjia.catalog import Catalog, ModelEntry
from kanjia.metering.store import Database
from kanjia.reports._amounts import Amounts, check_currency, money
from kanjia.reports._query import check_by, where
from kanjia.reports._replay import Keep, Line, Pick, kind_of, pick, replay, utc
from kanjia.reports._scan import layout, scan
from kanjia.reports._shape import counts, diff, notes, ordered, window

__all__ = ["cache_saved", "find_model", "savings_report"]


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
    baseline re-pricing; it is included in the total ``saving``."""
    currency = check_currency(currency)
    check_by(by)
    base = find_model(catalog, baseline, "baseline")
    if not base.periods:
        raise ValueError(f"baseline {base.key} has no price in the catalog")
    lay = layout([base], catalog, by=by)
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

    cells = await scan(db, lay, since=since, until=until, by=by)
    result = replay(cells, catalog, resolve, by=by)
    total = result.total()

    def row(name: str, line: Line) -> dict[str, Any]:
        return {name: line.label, **money(line.actual, currency), **counts(line),
                "baseline": money(line.replayed, currency),
                "saving": diff(line.replayed, line.actual, currency, share_of=line.replayed),
                "partial": line.partial}

    rows = [row(by, line) for line in ordered(result.lines.values(), by, currency)]
    # who gets the credit: requests a route chose their model for, and requests that
    # named their model (the client's own choice, not kanjia's routing)
    by_lever = result if by == "lever" else replay(
        await scan(db, lay, since=since, until=until, by="lever"), catalog, resolve,
        by="lever")
    levers = [row("lever", by_lever.lines[name]) for name in ("routing", "direct")
              if name in by_lever.lines]
    saving = diff(total.replayed, total.actual, currency, share_of=total.replayed)
    hits = by_lever.lines.get("response_cache")
    if hits is not None:
        saved = await cache_saved(db, catalog, since, until)
        cached = {"baseline": money(saved, currency),
                  "saving": diff(saved, hits.actual, currency, share_of=saved)}
        levers.append({"lever": "response_cache", **money(hits.actual, currency),
                       **counts(hits), **cached, "partial": False})
        if by == "lever":
            rows = [{**x, **cached} if x["lever"] == "response_cache" else x for x in rows]
        both = Amounts(total.replayed.cny + saved.cny, total.replayed.usd + saved.usd)
        saving = {**diff(both, total.actual, currency, share_of=total.replayed),
                  "response_cache": money(saved, currency)}
    return {"kind": "savings", **window(since, until), "by": by, "currency": currency,
            "baseline": base.key,
            "total": {**money(total.actual, currency), **counts(total)},
            "baseline_total": money(total.replayed, currency), "saving": saving,
            "rows": rows, "levers": levers, "partial": total.partial,
            "notes": notes(result, f"priced at {base.key}'s nearest price"),
            "cells": result.cells}


async def cache_saved(db: Database, catalog: Catalog, since: date | None,
                      until: date | None) -> Amounts:
    """What the response cache's hits saved: their recorded ``saved``, converted at each
    day's exchange rate."""
    clause, args = where(since, until)
    nano = Decimal(10) ** 9
    out = Amounts()
    rows = await db.fetch(f"SELECT day, currency, SUM(saved_nano) FROM usage_records "
                          f"WHERE {clause} AND cache_hit = 1 GROUP BY day, currency", args)
    for day, cur, saved in rows:
        out.add(Amounts.of(catalog.fx, Decimal(int(saved or 0)) / nano, str(cur),
                           date.fromisoformat(str(day))))
    return out
