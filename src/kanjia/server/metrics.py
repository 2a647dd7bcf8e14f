"""Prometheus metrics, in a registry owned by one app (no process-global state).

Label values are bounded: a model name becomes a ``model`` label only when the gateway
knows it (the price catalog or the config, ``known_models``); any other name a client
sends through (``vendor/whatever`` passes through unpriced) is counted as ``other``, so
a client cannot grow the registry, the scrape or the time a scrape blocks the event loop.
Without ``known_models`` the first ``max_models`` names get labels, the rest ``other``.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from kanjia.ledger.record import CallRecord
from kanjia.routing.health import HealthBoard

__all__ = ["Metrics"]

_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
_STATE = {"closed": 0, "half_open": 1, "open": 2, "disabled": 3}
#: the ``model`` label of every model name the gateway does not know
OTHER = "other"


@dataclass(frozen=True, slots=True)
class _Children:
    requests: Any
    latency: Any
    input_tokens: Any
    output_tokens: Any
    cached_tokens: Any
    cost: Any
    ttft: Any


class Metrics:
    def __init__(self, health: HealthBoard, *,
                 known_models: Collection[tuple[str, str]] | None = None,
                 max_models: int = 1000) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._health = health
        self._known = frozenset(known_models) if known_models is not None else None
        self._max_models = max_models
        #: (vendor, model) pairs given a label of their own when no list is known
        self._labelled: set[tuple[str, str]] = set()
        r = self.registry
        self.requests = Counter("kanjia_requests", "Requests answered",
                                ["endpoint", "vendor", "model", "status"], registry=r)
        self.errors = Counter("kanjia_errors", "Errors by class", ["error_class", "vendor"],
                              registry=r)
        self.latency = Histogram("kanjia_request_latency_seconds", "End-to-end latency",
                                 ["endpoint", "vendor"], buckets=_BUCKETS, registry=r)
        self.ttft = Histogram("kanjia_time_to_first_token_seconds", "Streams: first token",
                              ["vendor"], buckets=_BUCKETS, registry=r)
        self.overhead = Histogram("kanjia_overhead_seconds", "Time spent in the gateway itself",
                                  buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                                           0.05), registry=r)
        self.tokens = Counter("kanjia_tokens", "Tokens", ["vendor", "model", "kind"], registry=r)
        self.cost = Counter("kanjia_cost", "Cost in the reporting currency",
                            ["vendor", "model", "currency"], registry=r)
        self.fallbacks = Counter("kanjia_fallbacks", "Attempts that failed over",
                                 ["vendor", "error_class"], registry=r)
        #: the labelled series one record updates, per label set
        self._children: dict[tuple[str, str, str, int, str], _Children] = {}
        self.breaker = Gauge("kanjia_breaker_state",
                             "Circuit breaker: 0 closed, 1 half-open, 2 open, 3 disabled",
                             ["deployment"], registry=r)

    def model_label(self, vendor: str, model: str) -> str:
        """``model`` itself when the gateway knows it, else ``other`` (bounded labels)."""
        pair = (vendor, model)
        if self._known is not None:
            return model if pair in self._known or model == "none" else OTHER
        if pair in self._labelled:
            return model
        if len(self._labelled) < self._max_models:
            self._labelled.add(pair)
            return model
        return OTHER

    def observe(self, rec: CallRecord, overhead_s: float | None) -> None:
        vendor = rec.vendor or "none"
        model = self.model_label(vendor, rec.model or "none")
        key = (rec.endpoint, vendor, model, rec.status, rec.reporting_currency)
        c = self._children.get(key)
        if c is None:  # ``labels()`` validates and locks: once per label set, not per call
            c = self._children[key] = _Children(
                self.requests.labels(rec.endpoint, vendor, model, str(rec.status)),
                self.latency.labels(rec.endpoint, vendor),
                self.tokens.labels(vendor, model, "input"),
                self.tokens.labels(vendor, model, "output"),
                self.tokens.labels(vendor, model, "cached"),
                self.cost.labels(vendor, model, rec.reporting_currency),
                self.ttft.labels(vendor))
        c.requests.inc()
        c.latency.observe(rec.latency_ms / 1000)
        if rec.ttft_ms is not None:
            c.ttft.observe(rec.ttft_ms / 1000)
        if overhead_s is not None:
            self.overhead.observe(overhead_s)
        if rec.error_class:
            self.errors.labels(rec.error_class, vendor).inc()
        if rec.vendor:
            c.input_tokens.inc(rec.input_tokens)
            c.output_tokens.inc(rec.output_tokens)
            if rec.cached_tokens:
                c.cached_tokens.inc(rec.cached_tokens)
            if rec.cost_reporting:
                c.cost.inc(float(rec.cost_reporting))

    def fallback(self, vendor: str, error_class: str) -> None:
        self.fallbacks.labels(vendor, error_class).inc()
        self.errors.labels(error_class, vendor).inc()

    def render(self) -> bytes:
        for dep_id, breaker in self._health.states().items():
            self.breaker.labels(dep_id).set(_STATE[breaker.state])
        return generate_latest(self.registry)
