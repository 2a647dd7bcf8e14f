"""Metering cost: ledger records/s written on SQLite and PostgreSQL, and the gateway's
requests/s with metering off vs on. All the gateways are up at once and the load moves
from one to the next in short bursts, so machine noise hits every configuration alike.

Run: python bench/ledger.py [--records 50000] [--seconds 3] [--rounds 6] [--skip-gateway]
                           [--workers]
The gateways run pinned to cpu1 (sandbox and load generator on cpu0); besides req/s
it reports the gateway process's CPU time per request, which is the stable measure
of what metering costs when other work shares the machine.
"ledger" is the ledger alone (no keys: requests pass unmetered by budgets); "on"
means a ledger database AND a virtual key with a budget and rate limits on every
request (authenticate + reserve + settle + journal + batched write); "on_redis" the
same with budgets in Redis; "on_redis_pg" budgets in Redis and the PostgreSQL ledger.
``--workers``: "w1" / "w2" are "on_redis_pg" with ``--workers 1`` / ``2``, unpinned; CPU
per request counts every process of a gateway (workers and the ledger's writer).
``--records 0`` skips the ledger write rates. PostgreSQL / Redis parts are skipped when unreachable
(KANJIA_TEST_PG_URL, KANJIA_TEST_REDIS_URL). Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import urllib.request
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

from _harness import CHAT_BODY, emit, free_port, load, process, sandbox
from kanjia.ledger import Journal, Ledger
from kanjia.ledger._writer import ProcessWriter
from kanjia.ledger.record import CallRecord
from kanjia.ledger.store import migrate, open_database
from kanjia.server._ids import RequestIds

PG_URL = os.environ.get("KANJIA_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("KANJIA_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
MASTER = "bench-master"


_IDS = RequestIds()


def _record(i: int) -> CallRecord:
    now = time.time()  # ids as the gateway makes them: they sort by arrival
    return CallRecord(request_id=_IDS.new(now), ts=now,
                      endpoint="chat", route=None, requested_model="deepseek/deepseek-chat",
                      vendor="deepseek", model="deepseek-chat", deployment="default",
                      tenant="t1", key_id="key_bench", input_tokens=812, cached_tokens=128,
                      output_tokens=40, cost=Decimal("0.000631"), currency="CNY",
                      cost_reporting=Decimal("0.000631"), price_period="2025-09-05",
                      latency_ms=3.2, attempts=["deepseek/deepseek-chat@default"])


async def _write_rate(url: str, n: int, journal_dir: Path,
                      process: bool = False) -> dict[str, float]:
    db = open_database(url)
    await db.connect()
    await migrate(db)
    writer = ProcessWriter(url) if process else None
    ledger = Ledger(db, Journal(journal_dir), interval_s=0.05, writer=writer)
    await ledger.start()
    recs = [_record(i) for i in range(n)]
    t0 = time.perf_counter()
    sink_s = 0.0
    for i, rec in enumerate(recs):
        s = time.perf_counter()
        ledger.record(rec)
        sink_s += time.perf_counter() - s
        if i % 500 == 0:
            await asyncio.sleep(0)  # let the writer run, as the gateway's loop would
    while ledger.written < n:
        await asyncio.sleep(0.005)
    took = time.perf_counter() - t0
    await ledger.close()
    ((count,),) = await db.fetch("SELECT COUNT(*) FROM usage_records")
    await db.close()
    assert count == n, (count, n)
    return {"records_per_s": round(n / took, 1), "sink_us_per_record": round(sink_s / n * 1e6, 2)}


async def _pg_schema(action: str, schema: str) -> bool:
    import asyncpg

    try:
        conn = await asyncpg.connect(PG_URL, timeout=3)
    except (OSError, asyncpg.PostgresError):
        return False
    try:
        if action == "drop":
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()
    return True


def _redis_ok() -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping())
    except (OSError, redis.RedisError):
        return False


def _make_key(gw: str) -> str:
    req = urllib.request.Request(
        gw + "/admin/keys", method="POST",
        data=json.dumps({"name": "bench", "budget": ["1000000CNY/month", "100000CNY/day"],
                         "rpm": 10_000_000, "tpm": 2_000_000_000}).encode(),
        headers={"Authorization": f"Bearer {MASTER}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req) as resp:
        return str(json.loads(resp.read())["key"])


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants (workers, the ledger's writer process)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            parents.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(parents.get(p, ()))
    return out


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds the process and its descendants (workers, the ledger's
    writer process) have used so far."""
    total = 0
    for p in _tree(pid):
        with contextlib.suppress(OSError, IndexError):
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def _throughput(args: argparse.Namespace, tmp: Path, out: dict[str, Any],
                pg_schema: str | None = None) -> None:
    """Every configuration's gateway is up at once (all pinned to cpu1, idle when not
    under load); the load moves from one to the next in short bursts, ``--rounds``
    times over, so that whatever else the machine is doing hits every configuration
    alike. Figures: the median over bursts of req/s and of CPU time per request, and
    per configuration the median of its per-round ratios to "off"."""
    body = {**CHAT_BODY, "model": "deepseek/deepseek-chat"}
    configs: list[tuple[str, list[str]]] = [("off", []), ("ledger", ["--db", str(tmp / "l.db")]),
                                            ("on", ["--db", str(tmp / "g.db")])]
    pinned = {"off", "ledger", "on", "on_redis", "on_redis_pg"}
    if _redis_ok():
        sep = "&" if "?" in REDIS_URL else "?"

        def redis() -> str:
            return f"{REDIS_URL}{sep}prefix=kjbench-{uuid.uuid4().hex[:8]}"

        configs.append(("on_redis", ["--db", str(tmp / "r.db"), "--redis", redis()]))
        if pg_schema is not None:
            configs.append(("on_redis_pg", ["--db", f"{PG_URL}?schema={pg_schema}",
                                            "--redis", redis()]))
        if args.workers:  # both unpinned: two workers need two cores
            configs += [(f"w{n}", ["--db", f"{PG_URL}?schema={pg_schema}_w{n}", "--redis",
                                   redis(), "--workers", str(n)])
                        for n in (1, 2) if pg_schema is not None]
    rps: dict[str, list[float]] = {name: [] for name, _ in configs}
    cpu: dict[str, list[float]] = {name: [] for name, _ in configs}
    with sandbox(core=0) as sb, contextlib.ExitStack() as stack:
        targets: list[tuple[str, str, str, int]] = []
        for name, extra in configs:
            port = free_port()
            gw = f"http://127.0.0.1:{port}"
            env = {"KANJIA_MASTER_KEY": MASTER,
                   "KANJIA_JOURNAL_DIR": str(tmp / f"journal-{name}")}
            cmd = [sys.executable, "-m", "kanjia", "serve", "--sandbox", sb, "--port",
                   str(port), *extra]
            proc = stack.enter_context(process(cmd, f"{gw}/healthz",
                                               1 if name in pinned else None, env))
            key = _make_key(gw) if extra and name != "ledger" else "bench"
            url = f"{gw}/v1/chat/completions"
            load(url, body, args.concurrency, 1, api_key=key)  # warm-up
            targets.append((name, url, key, proc.pid))
        for _ in range(args.rounds):
            for name, url, key, pid in targets:
                c0 = _cpu_s(pid)
                r = load(url, body, args.concurrency, args.seconds, api_key=key)
                used = _cpu_s(pid) - c0
                if r.errors:
                    print(f"{name}: {r.errors} errors", file=sys.stderr)
                rps[name].append(r.rps)
                cpu[name].append(used / max(1, r.requests) * 1e6)
                print(f"{name}: {r.rps:.0f} req/s, {cpu[name][-1]:.0f} us CPU/request",
                      file=sys.stderr)
    for name in rps:
        out[f"gateway_rps_{name}"] = round(statistics.median(rps[name]), 1)
        out[f"gateway_rps_{name}_runs"] = [round(v, 1) for v in rps[name]]
        out[f"gateway_cpu_us_per_request_{name}"] = round(statistics.median(cpu[name]), 1)
    for name in rps:
        if name not in ("off", "w1", "w2"):
            ratios = [a / b for a, b in zip(rps[name], rps["off"], strict=True)]
            out[f"metering_{name}_throughput_ratio"] = round(statistics.median(ratios), 3)
            # CPU per request is what a saturated gateway trades for throughput, and
            # hardly moves when other processes share the machine
            costs = [1 - b / a for a, b in zip(cpu[name], cpu["off"], strict=True)]
            out[f"metering_{name}_cpu_cost_pct"] = round(statistics.median(costs) * 100, 1)
    if "w2" in rps:
        pairs = list(zip(rps["w2"], rps["w1"], strict=True))
        out["workers2_vs_1_rps_ratio"] = round(statistics.median(a / b for a, b in pairs), 3)
        cpairs = list(zip(cpu["w2"], cpu["w1"], strict=True))
        out["workers2_vs_1_cpu_per_request_ratio"] = round(
            statistics.median(a / b for a, b in cpairs), 3)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=50_000)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--skip-gateway", action="store_true")
    ap.add_argument("--workers", action="store_true",
                    help="also --workers 1 vs 2 (keys, budgets in Redis, PostgreSQL ledger; "
                         "unpinned)")
    args = ap.parse_args()
    out: dict[str, Any] = {"machine": platform.machine(), "cpus": os.cpu_count(),
                           "records": args.records, "concurrency": args.concurrency,
                           "seconds": args.seconds, "rounds": args.rounds}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        if args.records:
            sqlite = asyncio.run(_write_rate(str(tmp / "w.db"), args.records, tmp / "wj"))
            out["sqlite_records_per_s"] = sqlite["records_per_s"]
            out["sink_us_per_record"] = sqlite["sink_us_per_record"]
            proc = asyncio.run(_write_rate(str(tmp / "wp.db"), args.records, tmp / "wpj", True))
            out["sqlite_writer_process_records_per_s"] = proc["records_per_s"]
        schema = f"kj_bench_{uuid.uuid4().hex[:8]}"
        pg_ok = asyncio.run(_pg_schema("check", schema))
        if pg_ok and args.records:
            try:
                pg = asyncio.run(_write_rate(f"{PG_URL}?schema={schema}", args.records,
                                             tmp / "pj"))
                out["postgres_records_per_s"] = pg["records_per_s"]
                pgp = asyncio.run(_write_rate(f"{PG_URL}?schema={schema}_p", args.records,
                                              tmp / "ppj", True))
                out["postgres_writer_process_records_per_s"] = pgp["records_per_s"]
            finally:
                asyncio.run(_pg_schema("drop", schema))
                asyncio.run(_pg_schema("drop", f"{schema}_p"))
        if not args.skip_gateway:
            gw_schema = f"kj_bench_gw_{uuid.uuid4().hex[:8]}"
            try:
                _throughput(args, tmp, out, gw_schema if pg_ok else None)
            finally:
                if pg_ok:
                    for suffix in ("", "_w1", "_w2"):
                        asyncio.run(_pg_schema("drop", gw_schema + suffix))
    emit(out)


if __name__ == "__main__":
    main()
