"""Prometheus metrics, in a registry owned by one app (no process-global state)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from kanjia.metering.record import CallRecord
from kanjia.routing.health import HealthBoard

__all__ = ["Metrics"]

_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
_STATE = {"closed": 0, "half_open": 1, "open": 2, "disabled": 3}


class Metrics:
    def __init__(self, health: HealthBoard) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._health = health
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
        self.breaker = Gauge("kanjia_breaker_state",
                             "Circuit breaker: 0 closed, 1 half-open, 2 open, 3 disabled",
                             ["deployment"], registry=r)

    def observe(self, rec: CallRecord, overhead_s: float | None) -> None:
        vendor = rec.vendor or "none"
        model = rec.model or "none"
        self.requests.labels(rec.endpoint, vendor, model, str(rec.status)).inc()
        self.latency.labels(rec.endpoint, vendor).observe(rec.latency_ms / 1000)
        if rec.ttft_ms is not None:
            self.ttft.labels(vendor).observe(rec.ttft_ms / 1000)
        if overhead_s is not None:
            self.overhead.observe(overhead_s)
        if rec.error_class:
            self.errors.labels(rec.error_class, vendor).inc()
        if rec.vendor:
            t = self.tokens
            t.labels(vendor, model, "input").inc(rec.input_tokens)
            t.labels(vendor, model, "output").inc(rec.output_tokens)
            if rec.cached_tokens:
                t.labels(vendor, model, "cached").inc(rec.cached_tokens)
            if rec.cost_reporting:
                self.cost.labels(vendor, model, rec.reporting_currency).inc(
                    float(rec.cost_reporting))

    def fallback(self, vendor: str, error_class: str) -> None:
        self.fallbacks.labels(vendor, error_class).inc()
        self.errors.labels(error_class, vendor).inc()

    def render(self) -> bytes:
        for dep_id, breaker in self._health.states().items():
            self.breaker.labels(dep_id).set(_STATE[breaker.state])
        return generate_latest(self.registry)
