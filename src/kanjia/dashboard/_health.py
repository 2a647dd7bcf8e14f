"""Vendor health: the live circuit breakers of a running gateway (what ``/status``
shows), read without side effects: a breaker past its cooldown is reported as
``half_open`` (probe due) but not moved there, so looking never takes a probe slot."""

from __future__ import annotations

from typing import Any

from kanjia.routing.directory import ModelDirectory
from kanjia.routing.health import Breaker, HealthBoard

__all__ = ["live_breakers"]


def _state(b: Breaker) -> str:
    return b.view()


def live_breakers(directory: ModelDirectory, health: HealthBoard) -> dict[str, Any]:
    """Every deployment's breaker, plus the vendors that are configured off and why."""
    known = health.states()
    rows = []
    for vendor, deps in directory.deployments.items():
        for dep in deps:
            b = known.get(dep.id)
            rows.append({"deployment": dep.id, "vendor": vendor,
                         "state": _state(b) if b is not None else "closed",
                         "reason": b.reason if b is not None else "",
                         "recent_failures": len(b.failures) if b is not None else 0,
                         "latency_ewma_ms": round(b.latency_ewma_ms, 1)
                         if b is not None and b.latency_ewma_ms is not None else None})
    rows.sort(key=lambda r: (r["state"] == "closed", r["vendor"], r["deployment"]))
    return {"deployments": rows, "disabled_vendors": dict(directory.disabled_reason)}
