"""Benchmark: quote 1M requests across the whole price catalog.

    python bench/quote.py [--requests 1000000] [--seed 7]

Generates synthetic requests (token counts), then times `kanjia.catalog.quote`:
1. "short": prompts that fit every model's context window (every chat model quoted);
2. "mixed": prompts up to 900k tokens (exercises prompt-length tiers; models whose
   window is too small drop out);
and `cost_of` per call, for comparison with re-pricing each request one by one.
The last line of output is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime

import numpy as np

from kanjia.catalog import Usage, Workload, cost_of, load_catalog, quote


def _workload(rng: np.random.Generator, n: int, max_prompt: int) -> Workload:
    prompt = np.clip(rng.lognormal(mean=7.0, sigma=1.3, size=n), 1, max_prompt).astype(np.int64)
    cached = (prompt * rng.uniform(0.0, 0.8, size=n)).astype(np.int64)
    output = np.clip(rng.lognormal(mean=5.5, sigma=1.0, size=n), 1, 8000).astype(np.int64)
    return Workload.from_arrays(prompt, cached, np.zeros(n, dtype=np.int64), output)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    at = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)          # a weekday, 11:00 Beijing (peak)

    t0 = time.perf_counter()
    catalog = load_catalog()
    load_s = time.perf_counter() - t0
    rng = np.random.default_rng(args.seed)
    short = _workload(rng, args.requests, 3_500)
    mixed = _workload(rng, args.requests, 900_000)

    t0 = time.perf_counter()
    rows = quote(catalog, short, at, "CNY")
    short_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    mixed_rows = quote(catalog, mixed, at, "USD")
    mixed_s = time.perf_counter() - t0

    priced = [m for m in catalog.models if m.price_at(at) is not None]
    usage = Usage(2_000, 600, 0, 300, 0)
    calls = 0
    t0 = time.perf_counter()
    for _ in range(200):
        for model in priced:
            cost_of(usage, model, at)
            calls += 1
    per_call_us = (time.perf_counter() - t0) / calls * 1e6

    print(f"catalog: {len(catalog.models)} models, {len(catalog.vendors)} vendors "
          f"(loaded in {load_s * 1000:.0f} ms)")
    print(f"short prompts: {args.requests:,} requests on {len(rows)} models in {short_s:.3f} s; "
          f"cheapest paid: {next(r.model.key for r in rows if r.amount)}")
    print(f"mixed prompts: {args.requests:,} requests on {len(mixed_rows)} models in "
          f"{mixed_s:.3f} s")
    print(f"cost_of: {per_call_us:.2f} us per call (one by one, {args.requests:,} x "
          f"{len(rows)} models would take ~{per_call_us * args.requests * len(rows) / 1e6:.0f} s)")
    print(json.dumps({
        "requests": args.requests, "models": len(catalog.models),
        "vendors": len(catalog.vendors), "load_ms": round(load_s * 1000, 1),
        "short_models_quoted": len(rows), "short_quote_s": round(short_s, 4),
        "mixed_models_quoted": len(mixed_rows), "mixed_quote_s": round(mixed_s, 4),
        "cost_of_us": round(per_call_us, 3), "under_1s": max(short_s, mixed_s) < 1.0,
    }))


if __name__ == "__main__":
    main()
