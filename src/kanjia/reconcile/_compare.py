"""Comparing the ledger with vendor exports: every figure, per period and model.

For each export, over the periods it covers (within ``since``/``until``), the
ledger rows its vendor bills (``kanjia.reports.billed_usage``, in the export's
scope) are summed per period and model, and each figure the export carries
(requests, input/cached/cache-write/output tokens, cost) is compared. A difference is listed
when ``|ledger - vendor|`` exceeds the larger of the absolute tolerance (tokens and
requests: ``tokens``, default 0; cost: ``cost``, default 0.01 in the export's
currency) and ``relative`` times the larger of the two (default 0). A (period,
model) the ledger has and the export lacks, or the other way round, is compared
against zero.

Vendors often report dated snapshot names (``gpt-4o-2024-08-06``) for what the
ledger calls ``gpt-4o``: an export model that is not in the ledger is matched to
the ledger model it names without its date suffix, else case-insensitively; the
matches are reported.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from kanjia.ledger.store import Database
from kanjia.reconcile._export import METRICS, Export
from kanjia.reports import BilledSums, billed_usage

__all__ = ["Convert", "Tolerance", "parse_tolerance", "reconcile"]

#: (amount, from currency, to currency, day) -> amount; the catalog's exchange rates
Convert = Callable[[Decimal, str, str, date], Decimal]
_NANO = Decimal(10) ** 9
_ZERO = Decimal(0)
_SNAPSHOT = re.compile(r"-(\d{4}-\d{2}-\d{2}|\d{8}|\d{4})$")


@dataclass(frozen=True, slots=True)
class Tolerance:
    relative: Decimal = _ZERO
    cost: Decimal = Decimal("0.01")
    tokens: Decimal = _ZERO

    def allows(self, metric: str, ledger: Decimal, vendor: Decimal) -> bool:
        eps = self.cost if metric == "cost" else self.tokens
        return abs(ledger - vendor) <= max(eps, self.relative * max(abs(ledger), abs(vendor)))

    def json(self) -> dict[str, float]:
        return {"relative": float(self.relative), "cost": float(self.cost),
                "tokens": float(self.tokens)}


def parse_tolerance(text: str, what: str = "--tolerance", *, percent_ok: bool = True
                    ) -> Decimal:
    """``1%`` or ``0.01`` -> Decimal("0.01"); ValueError when not a number >= 0."""
    raw = text.strip()
    percent = raw.endswith("%")
    if percent and not percent_ok:
        raise ValueError(f"{what} is an amount, not a percentage: {text!r}")
    try:
        value = Decimal(raw[:-1] if percent else raw)
    except ArithmeticError:
        raise ValueError(f"{what} {text!r} is not a number (e.g. 0.5% or 0.005)") from None
    if not value.is_finite() or value < 0:
        raise ValueError(f"{what} must be a number >= 0, not {text!r}")
    return value / 100 if percent else value


@dataclass(slots=True)
class _Cell:
    requests: int = 0
    input_tokens: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    output_tokens: int = 0
    estimated: int = 0
    cost: dict[str, Decimal] | None = None      # by ledger currency

    def add(self, s: BilledSums) -> None:
        self.requests += s.requests
        self.input_tokens += s.input_tokens
        self.cached_tokens += s.cached_tokens
        self.cache_write_tokens += s.cache_write_tokens
        self.output_tokens += s.output_tokens
        self.estimated += s.estimated
        self.cost = self.cost or {}
        self.cost[s.currency] = self.cost.get(s.currency, _ZERO) + Decimal(s.cost_nano) / _NANO


def _match(export_models: set[str], ledger_models: set[str]) -> dict[str, str]:
    """Export model name -> ledger model name, for the names that differ."""
    lower = {m.lower(): m for m in ledger_models}
    out: dict[str, str] = {}
    for name in export_models - ledger_models:
        bare = _SNAPSHOT.sub("", name)
        if bare != name and bare in ledger_models:
            out[name] = bare
        elif name.lower() in lower:
            out[name] = lower[name.lower()]
    return out


def _num(value: Decimal, metric: str) -> float | int:
    return float(value) if metric == "cost" else int(value)


async def _compare_one(db: Database, vendor: str, export: Export, since: date | None,
                       until: date | None, tolerance: Tolerance, deployment: str | None,
                       convert: Convert | None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    kept = [i for i, p in enumerate(export.periods)
            if (since is None or p.day >= since) and (until is None or p.day < until)]
    spans = [(export.periods[i].start, export.periods[i].end) for i in kept]
    scopes = ("completions", "embeddings") if export.scope == "all" else (export.scope,)
    ledger: dict[tuple[int, str], _Cell] = {}
    for s in await billed_usage(db, vendor, spans, deployment=deployment):
        if s.scope in scopes:
            ledger.setdefault((kept[s.period], s.model), _Cell()).add(s)
    keep = set(kept)
    figures = {k: v for k, v in export.figures.items() if k[0] in keep}
    matched = _match({m for _, m in figures}, {m for _, m in ledger})
    vendor_side: dict[tuple[int, str], dict[str, Decimal]] = {}
    for (index, model), cell in figures.items():
        into = vendor_side.setdefault((index, matched.get(model, model)), {})
        for metric, value in cell.items():
            into[metric] = into.get(metric, _ZERO) + value
    metrics = [m for m in METRICS if m in export.metrics]
    currency = export.currency
    if "cost" in metrics and currency is None:
        found = {c for cell in ledger.values() for c in (cell.cost or {})}
        if len(found) > 1:
            raise ValueError(f"{export.source}: the ledger bills {vendor} in "
                             f"{' and '.join(sorted(found))}: say the export's currency "
                             "(--currency)")
        currency = found.pop() if found else None
    differences: list[dict[str, Any]] = []
    keys = sorted(set(vendor_side) | set(ledger), key=lambda k: (k[0], k[1]))
    for key in keys:
        period = export.periods[key[0]]
        theirs = vendor_side.get(key, {})
        ours = ledger.get(key, _Cell())
        for metric in metrics:
            if metric == "cost":
                mine = _ZERO
                for cur, amount in (ours.cost or {}).items():
                    if currency is None or cur == currency:
                        mine += amount
                    elif convert is None:
                        raise ValueError(f"the ledger's {cur} needs an exchange rate to "
                                         f"{currency}")
                    else:
                        mine += convert(amount, cur, currency, period.day)
            else:
                mine = Decimal(getattr(ours, metric))
            other = theirs.get(metric, _ZERO)
            if tolerance.allows(metric, mine, other):
                continue
            item: dict[str, Any] = {
                "file": export.source, "day": period.label, "model": key[1],
                "field": metric, "ledger": _num(mine, metric), "vendor": _num(other, metric),
                "difference": _num(mine - other, metric)}
            if metric == "cost":
                item["currency"] = currency
            if ours.estimated:
                item["estimated_rows"] = ours.estimated
            differences.append(item)
    summary = {"file": export.source, "format": export.format, "scope": export.scope,
               "currency": currency, "tz": export.tz, "fields": metrics,
               "periods": len(kept), "lines": len(keys),
               "first_day": export.periods[kept[0]].label if kept else None,
               "last_day": export.periods[kept[-1]].label if kept else None,
               "models_matched": dict(sorted(matched.items())),
               "not_compared": [o for o in export.other if o.get("day") in
                                {export.periods[i].label for i in kept}]}
    return summary, differences


async def reconcile(db: Database, vendor: str, exports: Sequence[Export], *,
                    since: date | None = None, until: date | None = None,
                    tolerance: Tolerance | None = None, deployment: str | None = None,
                    convert: Convert | None = None) -> dict[str, Any]:
    """``{"kind": "reconcile", "vendor", "exports": [...], "compared", "differences":
    [...], "matched"}``; ``matched`` is true when no difference exceeds the tolerance."""
    if since is not None and until is not None and until <= since:
        raise ValueError(f"--until ({until}) must be after --since ({since})")
    tolerance = tolerance or Tolerance()
    summaries: list[dict[str, Any]] = []
    differences: list[dict[str, Any]] = []
    for export in exports:
        summary, found = await _compare_one(db, vendor, export, since, until, tolerance,
                                            deployment, convert)
        summaries.append(summary)
        differences.extend(found)
    return {"kind": "reconcile", "vendor": vendor, "deployment": deployment,
            "since": since.isoformat() if since else None,
            "until": until.isoformat() if until else None,
            "tolerance": tolerance.json(), "exports": summaries,
            "compared": sum(s["lines"] for s in summaries),
            "differences": differences, "matched": not differences}
