"""Benchmark: replay a million-row ledger (issue 6's price-war replay).

    python bench/replay.py [--rows 1000000] [--seed 7] [--db FILE] [--keep] [--rounds 3]
                           [--verify]

1. Fills a SQLite ledger (the ledger's own schema, from `kanjia.ledger.store.migrate`)
   with realistic rows: four months of 2026 traffic over 13 models of 10 vendors, a
   third of it on DeepSeek (peak/off-peak windows, weekday-only windows, period changes
   mid-range), prompts from a few tokens to 300k (prompt-length tiers), cached tokens,
   1% errors, embeddings; each row costed with `cost_of` as the gateway does.
2. Times each report end to end (best wall-clock and best CPU seconds of --rounds;
   on a shared machine the wall clock also counts waiting for a core):
   `--reprice-at 2024-04-30`,
   `--baseline openai/gpt-4o`, `--reprice-at 2026-08-20` (windows on a weekday) and
   `--reprice-on openai`; and for the savings report, reading (its one grouped SQL pass)
   apart from pricing its cells (the replay and the split by lever); the savings
   report's CPU seconds over the slowest re-pricing's, side by side in one run.
3. `--verify` re-prices every row one by one with `cost_of` on the baseline and checks
   the report's total against it.

The last line of output is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

from kanjia.catalog import Catalog, Usage, cost_of, load_catalog
from kanjia.ledger._rows import NAMES
from kanjia.ledger.store import Database, migrate, open_database
from kanjia.reports import reprice_report, savings_report
from kanjia.reports._levers import lever_split
from kanjia.reports._replay import Keep, Pick, clamp, kind_of, pick, replay, utc
from kanjia.reports._scan import layout, scan

TARGET_S = 2.0
START = datetime(2026, 8, 1, tzinfo=UTC).timestamp()
DAYS = 120
#: model, share of traffic, longest prompt
MIX = (
    ("deepseek/deepseek-chat", 0.30, 300_000), ("deepseek/deepseek-reasoner", 0.04, 300_000),
    ("qwen/qwen-plus", 0.14, 120_000), ("qwen/qwen-turbo", 0.08, 120_000),
    ("zhipu/glm-4-flash", 0.08, 120_000), ("doubao/doubao-pro-32k", 0.07, 30_000),
    ("moonshot/moonshot-v1-8k", 0.05, 7_000), ("openai/gpt-4o-mini", 0.08, 120_000),
    ("anthropic/claude-3-5-haiku-20241022", 0.04, 190_000),
    ("gemini/gemini-2.0-flash", 0.05, 300_000), ("qianfan/ernie-speed-8k", 0.02, 7_000),
    ("hunyuan/hunyuan-lite", 0.03, 200_000), ("openai/text-embedding-3-small", 0.02, 8_000),
)


def _rows(catalog: Catalog, n: int, seed: int) -> Iterator[tuple[Any, ...]]:
    rng = np.random.default_rng(seed)
    shares = np.array([s for _, s, _ in MIX])
    which = rng.choice(len(MIX), size=n, p=shares / shares.sum())
    ts = np.sort(START + rng.uniform(0, DAYS * 86_400, size=n))
    prompt = np.clip(rng.lognormal(7.2, 1.4, size=n), 5, None).astype(np.int64)
    cached = (prompt * rng.uniform(0, 0.9, size=n) * (rng.random(n) < 0.4)).astype(np.int64)
    output = np.clip(rng.lognormal(5.3, 1.0, size=n), 1, 8_000).astype(np.int64)
    failed = rng.random(n) < 0.01
    latency = rng.lognormal(6.5, 0.7, size=n)
    route = rng.choice(np.array(["cheap-chat", "", "", "code", "long-doc"]), size=n)
    tenant = rng.choice(np.array(["acme", "globex", "initech", ""]), size=n)
    entries = [catalog.find(m)[0] for m, _, _ in MIX]
    for i in range(n):
        j = int(which[i])
        name, _, longest = MIX[j]
        entry = entries[j]
        vendor, model = name.split("/", 1)
        p = min(int(prompt[i]), longest)
        c = min(int(cached[i]), p)
        o = 0 if kind_of(entry) == "embeddings" else int(output[i])
        status = 429 if failed[i] else 200
        if failed[i]:
            p = c = o = 0
        when = float(ts[i])
        at = datetime.fromtimestamp(when, UTC)
        cost = cost_of(Usage(p, c, 0, o), entry, at)
        nano = int((cost.amount * 10**9).to_integral_value())
        yield (uuid.uuid4().hex, when, at.strftime("%Y-%m-%d"),
               "embeddings" if o == 0 and kind_of(entry) == "embeddings" else "chat",
               str(route[i]) or None, name, vendor, model, "default", str(tenant[i]) or None,
               f"key-{i % 7}", p, c, 0, o, 0, 0, cost.period_id, nano, cost.currency, nano,
               cost.currency, nano, cost.currency, float(latency[i]), None, status,
               "RateLimited" if failed[i] else None, 0, 0, "[]", 0, 0, 0)


async def _migrate(path: str) -> None:
    db = open_database(path)
    await db.connect()
    try:
        await migrate(db)
    finally:
        await db.close()


def seed(path: str, catalog: Catalog, n: int, seed_: int) -> float:
    t0 = time.perf_counter()
    asyncio.run(_migrate(path))
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous=OFF")
    sql = f"INSERT INTO usage_records ({', '.join(NAMES)}) VALUES ({', '.join('?' * len(NAMES))})"
    conn.execute("BEGIN")
    rows = _rows(catalog, n, seed_)
    conn.executemany(sql, (r if len(r) == len(NAMES) else _wrong(r) for r in rows))
    conn.execute("COMMIT")
    conn.close()
    return time.perf_counter() - t0


def _wrong(row: tuple[Any, ...]) -> tuple[Any, ...]:
    raise SystemExit(f"bench/replay.py writes {len(row)} columns, the ledger has "
                     f"{len(NAMES)}: update _rows() to the ledger's columns")


def _cpu() -> float:
    """CPU seconds of this process, all threads (the SQLite thread included)."""
    use = resource.getrusage(resource.RUSAGE_SELF)
    return use.ru_utime + use.ru_stime


async def _best(rounds: int, fn: Callable[[], Awaitable[dict[str, Any]]]
                ) -> tuple[float, float, dict[str, Any]]:
    """Best wall-clock and best CPU seconds over ``rounds`` runs, and the last result."""
    wall, cpu, out = float("inf"), float("inf"), {}
    for _ in range(rounds):
        t0, c0 = time.perf_counter(), _cpu()
        out = await fn()
        wall, cpu = min(wall, time.perf_counter() - t0), min(cpu, _cpu() - c0)
    return wall, cpu, out


async def _split(db: Database, catalog: Catalog, rounds: int) -> dict[str, float]:
    """Reading (grouped SQL) and pricing (cells) timed apart, for the savings report:
    its scan (cells keyed for the lever split too), its replay and its lever split."""
    base = catalog.find("openai/gpt-4o")[0]
    lay = layout([base], catalog, by="model", tiers=catalog.models)

    def resolve(src: str, entry: Any, start: int, bucket: int) -> Pick | Keep:
        if entry is None or kind_of(entry) != "chat":
            return Keep("not comparable")
        found = pick(base, utc(start), lay.limits, bucket)
        assert found is not None
        return found

    read, price, cells = float("inf"), float("inf"), 0
    for _ in range(rounds):
        t0 = time.perf_counter()
        found = await scan(db, lay, since=None, until=None, levers=True)
        t1 = time.perf_counter()
        replay(found, catalog, resolve, saved=True)
        lever_split(found, catalog, base, lay.limits, currency="CNY")
        t2 = time.perf_counter()
        read, price, cells = min(read, t1 - t0), min(price, t2 - t1), len(found)
    return {"seconds_read": round(read, 3), "seconds_reprice": round(price, 4), "cells": cells}


def verify(path: str, catalog: Catalog, report: dict[str, Any]) -> dict[str, Any]:
    """The baseline total re-computed row by row with cost_of."""
    base = catalog.find("openai/gpt-4o")[0]
    conn = sqlite3.connect(path)
    total = Decimal(0)
    t0 = time.perf_counter()
    for when, vendor, model, p, c, w, o, nano, cur in conn.execute(
            "SELECT ts, vendor, model, input_tokens, cached_tokens, cache_write_tokens, "
            "output_tokens, cost_nano, currency FROM usage_records"):
        day = datetime.fromtimestamp(when, UTC).date()
        entry = catalog.get(vendor, model)
        if entry is None or kind_of(entry) != "chat":
            total += catalog.fx.convert(Decimal(nano) / 10**9, cur, "CNY", day)
            continue
        at = clamp(base, datetime.fromtimestamp(when, UTC))
        assert at is not None
        cost = cost_of(Usage(p, c, w, o), base, at[0])
        total += catalog.fx.convert(cost.amount, cost.currency, "CNY", day)
    conn.close()
    got = report["baseline_total"]["amounts"]["CNY"]
    return {"verify_rows_s": round(time.perf_counter() - t0, 2),
            "verify_baseline_cny": float(total), "report_baseline_cny": got,
            "verify_match": abs(got - float(total)) <= 1e-9 * max(1.0, float(total))}


async def timings(path: str, catalog: Catalog, rounds: int) -> dict[str, Any]:
    db = open_database(path)
    await db.connect()
    try:
        out: dict[str, Any] = {}
        jobs: dict[str, Callable[[], Awaitable[dict[str, Any]]]] = {
            "reprice_at_2024_04_30": lambda: reprice_report(db, catalog, at=date(2024, 4, 30)),
            "baseline_gpt_4o": lambda: savings_report(db, catalog, baseline="openai/gpt-4o"),
            "reprice_at_2026_08_20": lambda: reprice_report(db, catalog, at=date(2026, 8, 20)),
            "reprice_on_openai": lambda: reprice_report(db, catalog, on_vendor="openai"),
        }
        reports: dict[str, dict[str, Any]] = {}
        for name, job in jobs.items():
            seconds, cpu, reports[name] = await _best(rounds, job)
            out[name] = {"seconds": round(seconds, 3), "cpu_seconds": round(cpu, 3),
                         "cells": reports[name]["cells"],
                         "total_cny": reports[name]["total"]["amounts"]["CNY"],
                         "requests": reports[name]["total"]["requests"]}
            print(json.dumps({name: out[name]}))
        out["split_baseline"] = await _split(db, catalog, rounds)
        out["_savings"] = reports["baseline_gpt_4o"]
        return out
    finally:
        await db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--db", default=None, help="Ledger file (reused if it exists).")
    parser.add_argument("--keep", action="store_true", help="Keep the generated ledger.")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--verify", action="store_true",
                        help="Also re-price every row with cost_of (slow) and compare.")
    args = parser.parse_args()
    catalog = load_catalog()
    tmp = None
    if args.db is None:
        tmp = tempfile.mkdtemp(prefix="kanjia-replay-")
        path = str(Path(tmp) / "ledger.db")
    else:
        path = args.db
    seeded = None
    try:
        if not Path(path).exists():
            seeded = seed(path, catalog, args.rows, args.seed)
            print(json.dumps({"seeded_rows": args.rows, "seed_seconds": round(seeded, 1),
                              "db": path}))
        rows = sqlite3.connect(path).execute("SELECT COUNT(*) FROM usage_records").fetchone()[0]
        figures = asyncio.run(timings(path, catalog, args.rounds))
        savings = figures.pop("_savings")
        extra = verify(path, catalog, savings) if args.verify else {}
        worst = max(v["seconds"] for v in figures.values() if "seconds" in v)
        split = figures["split_baseline"]
        reprices = [v["cpu_seconds"] for k, v in figures.items() if k.startswith("reprice_")]
        print(json.dumps({
            "rows": rows, "rounds": args.rounds, "load_avg_1m": round(os.getloadavg()[0], 2),
            "seconds_read": split["seconds_read"], "seconds_reprice": split["seconds_reprice"],
            **{f"seconds_{k}": v["seconds"] for k, v in figures.items() if "seconds" in v},
            **{f"cpu_seconds_{k}": v["cpu_seconds"] for k, v in figures.items()
               if "cpu_seconds" in v},
            "savings_cpu_over_slowest_reprice_cpu": round(
                figures["baseline_gpt_4o"]["cpu_seconds"] / max(reprices), 2),
            "worst_report_cpu_seconds": max(v["cpu_seconds"] for v in figures.values()
                                            if "cpu_seconds" in v),
            "worst_report_seconds": worst, "rows_per_s": round(rows / worst),
            "target_s": TARGET_S, "target_met": worst < TARGET_S, **extra}))
    finally:
        if tmp is not None and not args.keep:
            for f in Path(tmp).iterdir():
                f.unlink()
            os.rmdir(tmp)


if __name__ == "__main__":
    main()
