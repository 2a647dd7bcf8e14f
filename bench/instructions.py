"""What metering costs a request, in instructions: every process of a gateway (the
server and its ledger writer) under callgrind while it serves a fixed number of chat
requests, with metering off, the ledger alone, and full metering.

Run: python bench/instructions.py [--requests 600] [--concurrency 16] [--baseline TREE]

bench/ledger.py measures the same configurations in requests/s and CPU µs per request,
which on a shared machine move by ±30% between runs; instruction counts do not, so the
cost of metering relative to "off" can be compared across runs and trees. The ratio
``instructions(config) / instructions(off)`` is what a saturated, CPU-bound gateway's
throughput ratio would be at equal instructions per cycle (it does not count system
calls' kernel time or cache misses, so it is a lower bound on the cost).

The ledger writes its queued rows every ``--flush-s`` seconds (5 by default, not 0.1): a
gateway under valgrind serves about 40 requests/s, and the writer's cost per row depends
on the batch size, so its batches are made about as large as a saturated gateway's.

Configurations (as bench/ledger.py): ``off``; ``ledger`` (``--db``, no key); ``on``
(``--db`` and a virtual key with two budgets, rpm and tpm); ``on_redis_pg`` (budgets in
Redis, the PostgreSQL ledger) when both are reachable. The sandbox runs natively; only
the gateway and its children run under valgrind. ``--baseline TREE`` also measures the
metered configurations served by another source tree (``TREE/src`` on PYTHONPATH).
Needs valgrind. Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp

from _harness import CHAT_BODY, emit, free_port, process, sandbox
from ledger import MASTER, _make_key

PG_URL = os.environ.get("KANJIA_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("KANJIA_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


async def _drive(url: str, key: str, requests: int, concurrency: int) -> int:
    """Send ``requests`` chat requests, ``concurrency`` at a time; returns the failures."""
    failed = 0
    todo = iter(range(requests))
    body = json.dumps(CHAT_BODY).encode()
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    timeout = aiohttp.ClientTimeout(total=600)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        async def worker() -> None:
            nonlocal failed
            for _ in todo:
                async with session.post(url, data=body, headers=headers) as resp:
                    await resp.read()
                    failed += resp.status != 200
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return failed


def _children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return out


def _cpu_s(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _control(*args: str) -> None:
    subprocess.run(["callgrind_control", *args], check=True, capture_output=True, timeout=120)


def _measure(sb: str, name: str, extra: list[str], tree: Path | None, args: argparse.Namespace,
             tmp: Path) -> dict[str, Any]:
    out_dir = tmp / f"cg-{name}-{uuid.uuid4().hex[:6]}"
    out_dir.mkdir()
    port = free_port()
    gw = f"http://127.0.0.1:{port}"
    env = {"KANJIA_MASTER_KEY": MASTER,
           "KANJIA_JOURNAL_DIR": str(out_dir / "journal"),
           # batches of the size a saturated gateway writes every 0.1 s (~200 rows): a
           # gateway under valgrind serves ~40 requests/s, so it flushes less often
           "KANJIA_LEDGER_FLUSH_S": str(args.flush_s)}
    if tree is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(tree / "src"), os.environ.get("PYTHONPATH", "")])
    cmd = ["valgrind", "--tool=callgrind", "--instr-atstart=no", "--trace-children=yes",
           f"--callgrind-out-file={out_dir}/cg.%p", sys.executable, "-m", "kanjia", "serve",
           "--sandbox", sb, "--port", str(port), *extra]
    # (a gateway under valgrind takes a minute or so to start)
    with process(cmd, f"{gw}/healthz", None, env, health_timeout=600) as proc:
        # (a baseline's configuration is named "<name>_base": the same key, or none)
        keyed = name.removesuffix("_base") not in ("off", "ledger")
        key = _make_key(gw) if keyed else "bench"
        url = f"{gw}/v1/chat/completions"
        # warm-up: every lazy part loaded, and the ledger's writer process started (by
        # the first batch) and already writing, so that it is measured too
        asyncio.run(_drive(url, key, args.warmup, args.concurrency))
        if name != "off":
            deadline = time.monotonic() + 600
            while not _children(proc.pid) and time.monotonic() < deadline:
                asyncio.run(_drive(url, key, args.concurrency, args.concurrency))
            if not _children(proc.pid):
                raise SystemExit(f"{name}: the ledger's writer process did not start")
            # its start-up under valgrind takes a while: wait until it idles
            while time.monotonic() < deadline:
                before = _cpu_s(_children(proc.pid))
                time.sleep(2.0)
                if _cpu_s(_children(proc.pid)) - before < 0.05:
                    break
            asyncio.run(_drive(url, key, args.warmup, args.concurrency))
        _control("-z")
        _control("-i", "on")
        t0 = time.monotonic()
        failed = asyncio.run(_drive(url, key, args.requests, args.concurrency))
        took = time.monotonic() - t0
        _control("-i", "off")
        _control("-d")
        deadline = time.monotonic() + 120
        dumps: list[Path] = []
        while time.monotonic() < deadline:
            dumps = [p for p in out_dir.glob("cg.*.*") if p.suffix[1:].isdigit()]
            if dumps:
                time.sleep(1.0)  # every process writes its own dump
                dumps = [p for p in out_dir.glob("cg.*.*") if p.suffix[1:].isdigit()]
                break
            time.sleep(0.2)
        per_process = []
        for dump in dumps:
            for line in dump.read_text(errors="replace").splitlines():
                if line.startswith("totals:"):
                    per_process.append(int(line.split()[1]))
        return {"instructions_per_request": round(sum(per_process) / args.requests),
                "instructions_per_request_by_process": sorted(
                    (round(v / args.requests) for v in per_process), reverse=True),
                "processes": len(dumps), "failed": failed, "seconds": round(took, 1)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=600)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--flush-s", type=float, default=5.0,
                    help="the ledger's flush interval under valgrind (see above)")
    ap.add_argument("--baseline", default=None,
                    help="also measure the metered configurations served by TREE/src")
    ap.add_argument("--configs", default="off,ledger,on,on_redis_pg")
    args = ap.parse_args()
    if not shutil.which("valgrind"):
        raise SystemExit("instructions.py needs valgrind: apt-get install valgrind")
    wanted = args.configs.split(",")
    result: dict[str, Any] = {"requests": args.requests, "concurrency": args.concurrency}
    with tempfile.TemporaryDirectory() as d, sandbox(core=None) as sb:
        tmp = Path(d)
        configs: list[tuple[str, list[str]]] = [
            ("off", []), ("ledger", ["--db", str(tmp / "l.db")]),
            ("on", ["--db", str(tmp / "g.db")])]
        schema = f"kanjia_instr_{os.getpid()}"
        if "on_redis_pg" in wanted and _reachable():
            configs.append(("on_redis_pg", ["--db", f"{PG_URL}?schema={schema}",
                                            "--redis", REDIS_URL]))
        runs: list[tuple[str, list[str], Path | None]] = [
            (n, e, None) for n, e in configs if n in wanted]
        if args.baseline:
            runs += [(f"{n}_base", [*e[:1], _base_db(e[1], tmp), *e[2:]] if e else e,
                      Path(args.baseline)) for n, e in configs if n in wanted and n != "off"]
        try:
            for name, extra, tree in runs:
                m = _measure(sb, name, extra, tree, args, tmp)
                print(f"{name}: {m}", file=sys.stderr)
                for k, v in m.items():
                    result[f"{k}_{name}"] = v
        finally:
            if any(n.startswith("on_redis_pg") for n, _, _ in runs):
                asyncio.run(_drop_schemas([schema, "b_" + schema]))
    off = result.get("instructions_per_request_off")
    if off:
        for name, _, _ in runs:
            v = result.get(f"instructions_per_request_{name}")
            if v and name != "off":
                result[f"cost_vs_off_{name}"] = round(v / off - 1, 3)
                result[f"throughput_ratio_at_equal_ipc_{name}"] = round(off / v, 3)
    emit(result)


def _base_db(db: str, tmp: Path) -> str:
    """The baseline's own database beside the measured one."""
    if db.startswith("postgresql://"):
        return db.replace("?schema=", "?schema=b_")
    return str(tmp / ("b_" + Path(db).name))


async def _drop_schemas(names: list[str]) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_URL, timeout=10)
    try:
        for name in names:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
    finally:
        await conn.close()


def _reachable() -> bool:
    try:
        import redis

        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping())
    except Exception:
        return False


if __name__ == "__main__":
    main()
