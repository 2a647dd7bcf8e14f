"""Routing: decision time of a route over the whole catalog, and throughput of a fault run.

Run: python bench/routing.py [--seconds 6]
1. Decision time (in-process): Planner.plan for the built-in routes over every catalog model,
   requests of random prompt sizes; "cold" = ranking recomputed every time, "warm" = the
   planner's per-minute ranking cache (what the gateway uses).
2. Fault run: a route over six vendors, half of them answering 500 to everything (sandbox
   server-wide faults); the gateway fails over; requests/s and client-visible errors.
Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

from _harness import CHAT_BODY, emit, gateway, load, sandbox
from kanjia.catalog import load_catalog
from kanjia.config import load_settings
from kanjia.routing.directory import ModelDirectory
from kanjia.routing.health import HealthBoard
from kanjia.routing.planner import Planner
from kanjia.vendors import load_vendor_specs

FAULT_ROUTE = """
[routes.resilient]
models = ["deepseek/deepseek-chat", "qwen/qwen-plus", "zhipu/glm-4-air",
          "moonshot/moonshot-v1-8k", "doubao/doubao-pro-32k", "openai/gpt-4o-mini"]
objective = "cheapest"
max_candidates = 6
"""
FAILING = ("deepseek", "zhipu", "doubao")


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def decision_times(n: int = 3000) -> dict[str, object]:
    settings = load_settings(None, sandbox_url="http://bench.invalid")
    catalog = load_catalog()
    directory = ModelDirectory(settings, catalog, load_vendor_specs(), {})
    planner = Planner(settings, directory, catalog, HealthBoard())
    rng = random.Random(7)
    sizes = [int(rng.lognormvariate(6.5, 1.2)) for _ in range(n)]
    out: dict[str, object] = {"catalog_models": len(catalog.models),
                              "routable_targets": len(directory.targets)}
    for route in ("cheap-chat", "cn-only", "long-doc", "code"):
        spec = settings.routes[route]
        cold, warm = [], []
        now = datetime.now(UTC)
        for size in sizes[:500]:
            t = time.perf_counter()
            planner.rank(route, spec, size, 256, now, set(spec.capabilities))
            cold.append(time.perf_counter() - t)
        bodies = [{"messages": [{"role": "user", "content": "x" * (size * 4)}],
                   "max_tokens": 256} for size in sizes]
        for body in bodies:
            t = time.perf_counter()
            planner.plan(route, body)
            warm.append(time.perf_counter() - t)
        # steady state: the same traffic again, every prompt-size bucket ranked once
        # already (rankings are cached per bucket and minute: a bucket's first request
        # in a minute pays the cold ranking, ~60 buckets a minute per route)
        steady = []
        for body in bodies:
            t = time.perf_counter()
            planner.plan(route, body)
            steady.append(time.perf_counter() - t)
        out[route] = {"cold_p50_us": round(_pct(cold, 0.5) * 1e6, 1),
                      "cold_p99_us": round(_pct(cold, 0.99) * 1e6, 1),
                      "warm_p50_us": round(_pct(warm, 0.5) * 1e6, 1),
                      "warm_p99_us": round(_pct(warm, 0.99) * 1e6, 1),
                      "warm_mean_us": round(statistics.fmean(warm) * 1e6, 1),
                      "steady_p50_us": round(_pct(steady, 0.5) * 1e6, 1),
                      "steady_p99_us": round(_pct(steady, 0.99) * 1e6, 1)}
    return out


def _faults(sb: str, method: str, body: dict[str, object] | None = None) -> None:
    req = urllib.request.Request(f"{sb}/_sandbox/faults", method=method,
                                 data=json.dumps(body).encode() if body else None,
                                 headers={"Content-Type": "application/json"})
    urllib.request.urlopen(req, timeout=5).read()


def fault_run(seconds: float) -> dict[str, object]:
    body = {**CHAT_BODY, "model": "resilient"}
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "kanjia.toml"
        cfg.write_text(FAULT_ROUTE)
        with sandbox(core=0) as sb, gateway(sb, core=1, extra=["--config", str(cfg)]) as gw:
            url = f"{gw}/v1/chat/completions"
            load(url, body, 8, 1)
            healthy = load(url, body, 64, seconds)
            for vendor in FAILING:
                _faults(sb, "POST", {"vendor": vendor, "fault": "server_error",
                                     "probability": 1.0})
            faulty = load(url, body, 64, seconds)
            _faults(sb, "DELETE")
    return {"healthy_rps_c64": round(healthy.rps, 1), "healthy_errors": healthy.errors,
            "half_failing_rps_c64": round(faulty.rps, 1),
            "half_failing_client_errors": faulty.errors,
            "half_failing_p99_ms": round(faulty.p99_ms, 2),
            "failing_vendors": list(FAILING)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=6.0)
    args = ap.parse_args()
    result = {"decision": decision_times(), "fault_run": fault_run(args.seconds)}
    d = result["decision"]
    routes = [v for v in d.values() if isinstance(v, dict)]  # type: ignore[union-attr]
    result["decision_warm_p99_us_max"] = max(v["warm_p99_us"] for v in routes)
    result["decision_steady_p99_us_max"] = max(v["steady_p99_us"] for v in routes)
    result["decision_cold_p50_us_max"] = max(v["cold_p50_us"] for v in routes)
    result["target_steady_p99_under_200us"] = result["decision_steady_p99_us_max"] < 200
    emit(result)


if __name__ == "__main__":
    main()
