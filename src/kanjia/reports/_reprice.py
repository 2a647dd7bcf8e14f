"""Price-war replay: the ledger re-priced at another date's prices, or on another vendor.

``at``: every request is priced as if sent at its own UTC time of day on that date, on
its own model if that model had a price then, else on the nearest equivalent priced
all that day (the same vendor's closest model first). ``on_vendor``: every request is
priced on that vendor's closest model, at its own time (or on ``at`` when both are
given). Each substitution is stated with its reason; amounts are converted at each
request's own day's exchange rate, so the difference is the prices' alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from kanjia.catalog import Catalog, ModelEntry
from kanjia.ledger.query import check_by
from kanjia.ledger.store import Database
from kanjia.reports._amounts import check_currency, money
from kanjia.reports._equivalent import Equivalent, closest
from kanjia.reports._replay import Keep, Pick, Replay, pick, replay
from kanjia.reports._scan import DAY, Layout, layout, scan
from kanjia.reports._shape import counts, diff, notes, ordered, window
from kanjia.routing.planner import QualityTiers

__all__ = ["reprice_instant", "reprice_report"]


def reprice_instant(ts: float, at: date) -> datetime:
    """When a request sent at unix time ``ts`` is priced by a replay ``at`` a date: the
    same UTC time of day on that date."""
    midnight = datetime.combine(at, time(0), UTC)
    return midnight + timedelta(seconds=ts % DAY)


def _priced_all_day(model: ModelEntry, lo: datetime) -> bool:
    return (model.price_at(lo) is not None
            and model.price_at(lo + timedelta(seconds=DAY - 1)) is not None)


class _Resolver:
    """Chooses the target of each source model once, and caches rates per cell shape."""

    def __init__(self, catalog: Catalog, at: date | None, vendor: str | None,
                 limits: Sequence[int], now: datetime) -> None:
        self.at, self.vendor, self.limits = at, vendor, limits
        self.tiers = QualityTiers()
        self.lo = datetime.combine(at, time(0), UTC) if at is not None else None
        models = catalog.by_vendor(vendor) if vendor is not None else catalog.models
        if self.lo is not None:
            pool = [m for m in models if _priced_all_day(m, self.lo)]
        else:
            pool = [m for m in models if m.price_at(now) is not None]
        if vendor is not None and not pool:
            pool = [m for m in models if m.periods]
        self.pool = pool
        self.chosen: dict[str, Equivalent | None] = {}
        self.cache: dict[tuple[str, int, int], Pick | Keep] = {}

    def instant(self, start: int) -> datetime:
        if self.lo is not None:
            return self.lo + timedelta(seconds=start % DAY)
        return datetime.fromtimestamp(start, UTC)

    def equivalent(self, entry: ModelEntry) -> Equivalent | None:
        if entry.key not in self.chosen:
            self.chosen[entry.key] = closest(entry, self.pool, self.tiers,
                                             same_vendor_first=self.vendor is None,
                                             any_hosting=self.vendor is not None)
        return self.chosen[entry.key]

    def __call__(self, src: str, entry: ModelEntry | None, start: int,
                 bucket: int) -> Pick | Keep:
        if entry is None:
            return Keep("the model is not in the catalog")
        when = self.instant(start)
        tod = start % DAY if self.lo is not None else start
        key = (src, tod, bucket)
        hit = self.cache.get(key)
        if hit is None:
            hit = self.cache[key] = self._resolve(entry, when, bucket)
        return hit

    def _resolve(self, entry: ModelEntry, when: datetime, bucket: int) -> Pick | Keep:
        own = entry.vendor == self.vendor if self.vendor is not None \
            else entry.price_at(when) is not None
        target = entry
        if not own:
            eq = self.equivalent(entry)
            if eq is None:
                where = f"on {self.vendor}" if self.vendor else f"priced on {self.at}"
                return Keep(f"no equivalent {where}")
            target = eq.model
        found = pick(target, when, self.limits, bucket)
        return found if found is not None else Keep(f"{target.key} has no price at all")


def _layout(catalog: Catalog, at: date | None, vendor: str | None, by: str) -> Layout:
    models = catalog.by_vendor(vendor) if vendor is not None else catalog.models
    if at is None:
        return layout(models, catalog, by=by)
    lo = datetime.combine(at, time(0), UTC)
    return layout(models, catalog, by=by, lo=lo, hi=lo + timedelta(seconds=DAY),
                  absolute=False)


def _substitutions(result: Replay, resolver: _Resolver) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for src, stat in sorted(result.sources.items()):
        for used, n in sorted(stat.used.items()):
            if used == src:
                continue
            eq = resolver.chosen.get(src)
            why = eq.why if eq is not None else ""
            if resolver.vendor is not None:
                reason = f"on {resolver.vendor}: {why}"
            else:
                reason = f"{src} had no price on {resolver.at}; {why}"
            if n != stat.requests:
                reason += f" ({n} of {stat.requests} requests)"
            out.append({"model": src, "used": used, "reason": reason, "requests": n})
    return out


async def reprice_report(db: Database, catalog: Catalog, *, at: date | None = None,
                         on_vendor: str | None = None, since: date | None = None,
                         until: date | None = None, currency: str = "CNY",
                         by: str = "model") -> dict[str, Any]:
    """``{"kind": "reprice", "total" (re-priced), "actual_total", "difference",
    "substitutions": [{model, used, reason}], "rows", "notes"}``."""
    currency = check_currency(currency)
    check_by(by)
    if at is None and on_vendor is None:
        raise ValueError("re-pricing needs a date (at) or a vendor (on_vendor)")
    if on_vendor is not None and on_vendor not in catalog.vendors:
        raise ValueError(f"unknown vendor {on_vendor!r}; known: "
                         f"{', '.join(sorted(catalog.vendors))}")
    lay = _layout(catalog, at, on_vendor, by)
    resolver = _Resolver(catalog, at, on_vendor, lay.limits, datetime.now(UTC))
    cells = await scan(db, lay, since=since, until=until, by=by)
    result = replay(cells, catalog, resolver, by=by)
    total = result.total()
    subs = _substitutions(result, resolver)
    rows = [{by: line.label, **money(line.replayed, currency), **counts(line),
             "actual": money(line.actual, currency),
             "difference": diff(line.replayed, line.actual, currency), "partial": line.partial}
            for line in ordered(result.lines.values(), by, currency)]
    out: dict[str, Any] = {
        "kind": "reprice", "at": at.isoformat() if at else None, "on_vendor": on_vendor,
        **window(since, until), "by": by, "currency": currency,
        "total": {**money(total.replayed, currency), **counts(total)},
        "actual_total": money(total.actual, currency),
        "difference": diff(total.replayed, total.actual, currency),
        "substitutions": subs, "rows": rows, "partial": total.partial,
        "notes": notes(result, "priced at its nearest price"), "cells": result.cells}
    if on_vendor is not None:
        out["mapping"] = {src: max(stat.used, key=lambda k: stat.used[k])
                          for src, stat in sorted(result.sources.items()) if stat.used}
    return out
