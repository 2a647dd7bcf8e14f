"""Metering cost: ledger records/s written on SQLite and PostgreSQL, and the gateway's
requests/s with metering off vs on. All the gateways are up at once and the load moves
from one to the next in short bursts, so machine noise hits every configuration alike.

Run: python bench/ledger.py [--records 50000] [--seconds 3] [--rounds 6] [--skip-gateway]
                           [--workers [--workers-only]] [--baseline TREE]
The gateways run pinned to cpu1 (sandbox and load generator on cpu0); besides req/s
it reports the gateway process's CPU time per request, which is the stable measure
of what metering costs when other work shares the machine.
"ledger" is the ledger alone (no keys: requests pass unmetered by budgets); "on"
means a ledger database AND a virtual key with a budget and rate limits on every
request (authenticate + reserve + settle + journal + batched write); "on_redis" the
same with budgets in Redis; "on_redis_pg" budgets in Redis and the PostgreSQL ledger.
``--workers``: "w1" / "w2" are "on_redis_pg" with ``--workers 1`` / ``2``, unpinned. CPU
per request counts every process of a gateway (workers and the ledger's writer), and is
also split by role (``..._workers``, ``..._writers``, ``..._parent``; for every
configuration, a role with no CPU left out except for "w1" / "w2" / "w1x2"). "w1x2" is a control:
two separate ``--workers 1`` gateways (each its own Redis prefix and PostgreSQL schema)
loaded at the same time with half the connections each, i.e. two gateway processes and
what they cost on this machine without anything ``--workers`` does.
With a redis-server on this machine, "redis_server_cpu_us_per_request_*" is its CPU time
per request during each Redis configuration's bursts (it shares the two cores).
``--baseline TREE``: also "on_base" and "on_redis_pg_base", the same configurations served
by another source tree (``TREE/src`` first on PYTHONPATH: an export of an earlier commit),
so that before and after are measured side by side in one run.
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
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

from _harness import CHAT_BODY, LoadResult, emit, free_port, load, process, sandbox
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
    return sum(_cpu_by_role(pid).values())


def _cpu_by_role(pid: int) -> dict[str, float]:
    """``_cpu_s`` split into the ledger's writer processes ("writers"), the supervising
    parent of ``--workers N`` ("parent") and the processes that serve ("workers")."""
    out = {"workers": 0.0, "writers": 0.0, "parent": 0.0}
    procs: dict[int, tuple[bytes, float]] = {}
    for p in _tree(pid):
        with contextlib.suppress(OSError, IndexError):
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            procs[p] = (Path(f"/proc/{p}/cmdline").read_bytes(),
                        (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"))
    supervised = any(b"kanjia.server.run" in cmd for cmd, _ in procs.values())
    for p, (cmd, cpu) in procs.items():
        role = "writers" if b"_writer_main" in cmd else \
            "parent" if p == pid and supervised else "workers"
        out[role] += cpu
    return out


def _redis_server() -> int | None:
    """The pid of a redis-server on this machine (its CPU per request is reported too:
    on two cores it competes with the gateway), or None."""
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                if Path(f"/proc/{entry}/comm").read_text().strip() == "redis-server":
                    return int(entry)
    return None


def _throughput(args: argparse.Namespace, tmp: Path, out: dict[str, Any],
                pg_schema: str | None = None) -> None:
    """Every configuration's gateway is up at once (all pinned to cpu1, idle when not
    under load); the load moves from one to the next in short bursts, ``--rounds``
    times over, so that whatever else the machine is doing hits every configuration
    alike. Figures: the median over bursts of req/s and of CPU time per request, and
    per configuration the median of its per-round ratios to "off"."""
    body = {**CHAT_BODY, "model": "deepseek/deepseek-chat"}
    configs: list[tuple[str, list[str]]] = [] if args.workers_only else [
        ("off", []), ("ledger", ["--db", str(tmp / "l.db")]), ("on", ["--db", str(tmp / "g.db")])]
    pinned = {"off", "ledger", "on", "on_redis", "on_redis_pg", "on_base", "on_redis_pg_base"}
    if args.baseline and not args.workers_only:
        configs.append(("on_base", ["--db", str(tmp / "gb.db")]))
    #: a configuration served by several separate gateways, each with these arguments
    separate: dict[str, list[list[str]]] = {}
    if _redis_ok():
        sep = "&" if "?" in REDIS_URL else "?"

        def redis() -> str:
            return f"{REDIS_URL}{sep}prefix=kjbench-{uuid.uuid4().hex[:8]}"

        if not args.workers_only:
            configs.append(("on_redis", ["--db", str(tmp / "r.db"), "--redis", redis()]))
        if pg_schema is not None and not args.workers_only:
            configs.append(("on_redis_pg", ["--db", f"{PG_URL}?schema={pg_schema}",
                                            "--redis", redis()]))
            if args.baseline:
                configs.append(("on_redis_pg_base", ["--db", f"{PG_URL}?schema={pg_schema}_b",
                                                     "--redis", redis()]))
        if args.workers and pg_schema is not None:  # unpinned: two workers need two cores
            configs += [(f"w{n}", ["--db", f"{PG_URL}?schema={pg_schema}_w{n}", "--redis",
                                   redis(), "--workers", str(n)]) for n in (1, 2)]
            separate["w1x2"] = [["--db", f"{PG_URL}?schema={pg_schema}_x{i}", "--redis",
                                 redis(), "--workers", "1"] for i in (1, 2)]
            configs.append(("w1x2", []))
    rps: dict[str, list[float]] = {name: [] for name, _ in configs}
    cpu: dict[str, list[float]] = {name: [] for name, _ in configs}
    roles: dict[str, dict[str, float]] = {}
    rcpu: dict[str, list[float]] = {name: [] for name, _ in configs}
    redis_pid = _redis_server()
    with sandbox(core=0) as sb, contextlib.ExitStack() as stack:
        targets: list[tuple[str, list[tuple[str, str, int]]]] = []
        for name, extra in configs:
            gateways = []
            for i, args_i in enumerate(separate.get(name, [extra])):
                port = free_port()
                gw = f"http://127.0.0.1:{port}"
                env = {"KANJIA_MASTER_KEY": MASTER,
                       "KANJIA_JOURNAL_DIR": str(tmp / f"journal-{name}-{i}")}
                if name.endswith("_base"):
                    env["PYTHONPATH"] = os.pathsep.join(
                        [str(Path(args.baseline) / "src"), os.environ.get("PYTHONPATH", "")])
                cmd = [sys.executable, "-m", "kanjia", "serve", "--sandbox", sb, "--port",
                       str(port), *args_i]
                proc = stack.enter_context(process(cmd, f"{gw}/healthz",
                                                   1 if name in pinned else None, env))
                workers = int(args_i[args_i.index("--workers") + 1]) \
                    if "--workers" in args_i else 1
                _wait_listening(port, workers)  # /healthz was answered by one of them
                key = _make_key(gw) if args_i and name != "ledger" else "bench"
                url = f"{gw}/v1/chat/completions"
                # warm-up: every worker knows the key, has seeded its budgets and started
                # its ledger writer before CPU is counted
                load(url, body, args.concurrency, 1 + workers, api_key=key)
                gateways.append((url, key, proc.pid))
            targets.append((name, gateways))
        for _ in range(args.rounds):
            for name, gateways in targets:
                c0 = [_cpu_by_role(pid) for _, _, pid in gateways]
                r0 = _cpu_s(redis_pid) if redis_pid else 0.0
                r = _load_together(gateways, body, args.concurrency, args.seconds)
                if redis_pid:
                    rcpu[name].append((_cpu_s(redis_pid) - r0) / max(1, r.requests) * 1e6)
                c1 = [_cpu_by_role(pid) for _, _, pid in gateways]
                by_role = {role: sum(b[role] - a[role] for a, b in zip(c0, c1, strict=True))
                           for role in c0[0]}
                used = sum(by_role.values())
                if r.errors:
                    print(f"{name}: {r.errors} errors", file=sys.stderr)
                rps[name].append(r.rps)
                cpu[name].append(used / max(1, r.requests) * 1e6)
                for role, v in by_role.items():
                    roles.setdefault(name, {}).setdefault(role, 0.0)
                    roles[name][role] += v
                roles[name]["requests"] = roles[name].get("requests", 0.0) + r.requests
                print(f"{name}: {r.rps:.0f} req/s, {cpu[name][-1]:.0f} us CPU/request",
                      file=sys.stderr)
    for name in rps:
        out[f"gateway_rps_{name}"] = round(statistics.median(rps[name]), 1)
        out[f"gateway_rps_{name}_runs"] = [round(v, 1) for v in rps[name]]
        out[f"gateway_cpu_us_per_request_{name}"] = round(statistics.median(cpu[name]), 1)
        if rcpu[name] and "redis" in name:
            out[f"redis_server_cpu_us_per_request_{name}"] = round(
                statistics.median(rcpu[name]), 1)
    for name in roles:  # over every round: processes' CPU per request by role
        n = max(1.0, roles[name].pop("requests"))
        for role, v in roles[name].items():
            if v or name in ("w1", "w2", "w1x2"):
                out[f"gateway_cpu_us_per_request_{name}_{role}"] = round(v / n * 1e6, 1)
    for name in rps:
        if name not in ("off", "w1", "w2", "w1x2") and "off" in rps:
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
    if "w1x2" in rps:
        cpairs = list(zip(cpu["w1x2"], cpu["w1"], strict=True))
        out["separate2_vs_1_cpu_per_request_ratio"] = round(
            statistics.median(a / b for a, b in cpairs), 3)


def _wait_listening(port: int, sockets: int, timeout: float = 60.0) -> None:
    """Until ``sockets`` sockets listen on ``port``: a worker of ``--workers N`` listens
    on its own socket once it has started. (Without ``ss``: no wait.)"""
    if shutil.which("ss") is None:
        return
    deadline = time.monotonic() + timeout
    while True:
        out = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True,
                             text=True).stdout
        if len(out.splitlines()) >= sockets:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{sockets} listening sockets on port {port}: not in {timeout} s")
        time.sleep(0.1)


def _load_together(gateways: list[tuple[str, str, int]], body: dict[str, Any],
                   connections: int, seconds: float) -> LoadResult:
    """``connections`` split evenly over the gateways, loaded at the same time."""
    if len(gateways) == 1:
        url, key, _ = gateways[0]
        return load(url, body, connections, seconds, api_key=key)
    share = connections // len(gateways)
    with ThreadPoolExecutor(len(gateways)) as pool:
        results = list(pool.map(lambda g: load(g[0], body, share, seconds, api_key=g[1]),
                                gateways))
    return LoadResult(sum(r.rps for r in results), statistics.median(r.p50_ms for r in results),
                      max(r.p99_ms for r in results), sum(r.requests for r in results),
                      sum(r.errors for r in results))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=50_000)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--skip-gateway", action="store_true")
    ap.add_argument("--baseline", metavar="TREE",
                    help="also serve 'on' and 'on_redis_pg' from TREE/src (before vs after)")
    ap.add_argument("--workers", action="store_true",
                    help="also --workers 1 vs 2 (keys, budgets in Redis, PostgreSQL ledger; "
                         "unpinned), and two separate 1-worker gateways loaded together")
    ap.add_argument("--workers-only", action="store_true",
                    help="with --workers: only those configurations")
    args = ap.parse_args()
    args.workers = args.workers or args.workers_only
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
                    for suffix in ("", "_b", "_w1", "_w2", "_x1", "_x2"):
                        asyncio.run(_pg_schema("drop", gw_schema + suffix))
    emit(out)


if __name__ == "__main__":
    main()
