"""Request counters served by ``GET /_sandbox/stats``."""

from __future__ import annotations

from typing import Any

__all__ = ["Stats"]


class Stats:
    """Requests per vendor and model, and faults applied per vendor."""

    def __init__(self) -> None:
        self.total = 0
        self.requests: dict[str, dict[str, int]] = {}
        self.faults: dict[str, dict[str, int]] = {}

    def count(self, vendor: str, model: str, fault: str | None) -> None:
        self.total += 1
        models = self.requests.setdefault(vendor, {})
        models[model] = models.get(model, 0) + 1
        if fault is not None:
            faults = self.faults.setdefault(vendor, {})
            faults[fault] = faults.get(fault, 0) + 1

    def reset(self) -> None:
        self.total = 0
        self.requests.clear()
        self.faults.clear()

    def as_json(self) -> dict[str, Any]:
        per_vendor = {v: sum(models.values()) for v, models in self.requests.items()}
        faults_total: dict[str, int] = {}
        for faults in self.faults.values():
            for name, n in faults.items():
                faults_total[name] = faults_total.get(name, 0) + n
        return {
            "total": self.total,
            "vendors": per_vendor,
            "requests": self.requests,
            "faults": self.faults,
            "faults_total": faults_total,
        }
