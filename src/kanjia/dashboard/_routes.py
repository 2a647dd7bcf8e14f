"""Route decisions, fallbacks and per-vendor attempt outcomes, from the ledger.

Each ledger row carries ``attempts``: the fallback chain tried, as JSON
``["vendor/model@deployment", ...]``. Every attempt but the last failed; the last
one failed too when the row's ``status`` is an error. One grouped query feeds both
the route panel and the attempt counts of the vendor-health panel.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from kanjia.dashboard._period import Period
from kanjia.ledger.query import incidents, route_outcomes
from kanjia.ledger.store import Database

__all__ = ["DIRECT", "RouteStats", "VendorAttempts", "recent_incidents", "route_stats"]

#: the row label of requests that named a model rather than a route
DIRECT = "(direct)"
_RECENT = 25


def _chain(text: str | None) -> list[str]:
    try:
        value = orjson.loads(text or "[]")
    except orjson.JSONDecodeError:
        return []
    return [str(x) for x in value] if isinstance(value, list) else []


def _vendor_of(attempt: str) -> str:
    return attempt.split("/", 1)[0]


def _model_of(attempt: str) -> str:
    return attempt.rsplit("@", 1)[0]


@dataclass(slots=True)
class _Route:
    requests: int = 0
    first_try: int = 0
    after_fallback: int = 0
    failed: int = 0
    chosen: Counter[str] = field(default_factory=Counter)

    def json(self, name: str) -> dict[str, Any]:
        return {"route": name, "requests": self.requests, "first_try": self.first_try,
                "after_fallback": self.after_fallback, "failed": self.failed,
                "chosen": [{"model": m, "requests": n} for m, n in self.chosen.most_common()]}


@dataclass(slots=True)
class VendorAttempts:
    attempts: int = 0
    failed_attempts: int = 0
    requests: int = 0
    errors: int = 0
    latency_sum_ms: float = 0.0
    ok: int = 0

    def json(self, vendor: str) -> dict[str, Any]:
        avg = self.latency_sum_ms / self.ok if self.ok else None
        return {"vendor": vendor, "attempts": self.attempts,
                "failed_attempts": self.failed_attempts, "requests": self.requests,
                "errors": self.errors, "avg_latency_ms": round(avg, 1) if avg else avg}


@dataclass(slots=True)
class RouteStats:
    routes: dict[str, _Route] = field(default_factory=lambda: defaultdict(_Route))
    errors: Counter[str] = field(default_factory=Counter)
    vendors: dict[str, VendorAttempts] = field(default_factory=lambda: defaultdict(
        VendorAttempts))

    def add(self, route: str | None, model: str | None, status: int, error_class: str | None,
            chain: list[str], count: int, latency_sum_ms: float) -> None:
        r = self.routes[route or DIRECT]
        r.requests += count
        failed = status >= 400
        if failed:
            r.failed += count
            self.errors[error_class or f"http_{status}"] += count
        elif len(chain) > 1:
            r.after_fallback += count
        else:
            r.first_try += count
        if not failed:
            r.chosen[model or (chain[-1] if chain else "(unknown)")] += count
        for i, attempt in enumerate(chain):
            v = self.vendors[_vendor_of(attempt)]
            v.attempts += count
            if failed or i < len(chain) - 1:
                v.failed_attempts += count
        final = self.vendors[_vendor_of(chain[-1])] if chain else None
        if final is not None:
            final.requests += count
            if failed:
                final.errors += count
            else:
                final.ok += count
                final.latency_sum_ms += latency_sum_ms

    def json(self) -> dict[str, Any]:
        ordered = sorted(self.routes.items(), key=lambda kv: (kv[0] == DIRECT, -kv[1].requests,
                                                             kv[0]))
        totals = {"first_try": 0, "after_fallback": 0, "failed": 0}
        for _, r in ordered:
            totals["first_try"] += r.first_try
            totals["after_fallback"] += r.after_fallback
            totals["failed"] += r.failed
        return {"routes": [r.json(name) for name, r in ordered], "outcomes": totals,
                "error_classes": [{"error_class": c, "requests": n}
                                  for c, n in self.errors.most_common()]}


async def route_stats(db: Database, period: Period) -> RouteStats:
    where, args = period.where()
    stats = RouteStats()
    for route, vendor, model, status, error_class, attempts, n, latency in \
            await route_outcomes(db, where, args):
        key = f"{vendor}/{model}" if vendor and model else None
        stats.add(route, key, int(status), error_class, _chain(attempts), int(n),
                  float(latency or 0.0))
    return stats


async def recent_incidents(db: Database, period: Period, limit: int = _RECENT
                           ) -> list[dict[str, Any]]:
    """The latest requests that fell back or failed, newest first."""
    where, args = period.where()
    out = []
    for ts, route, requested, vendor, model, status, error_class, attempts, api in \
            await incidents(db, where, args, limit):
        chain = _chain(attempts)
        if int(status) < 400 and len(chain) < 2:
            continue  # a single attempt whose name holds a comma
        out.append({"at": datetime.fromtimestamp(float(ts), UTC).isoformat(timespec="seconds"),
                    "route": route or DIRECT, "api": api, "requested_model": requested,
                    "served_by": f"{vendor}/{model}" if vendor and model and int(status) < 400
                    else None, "status": int(status), "error_class": error_class,
                    "attempts": [_model_of(a) for a in chain]})
    return out
