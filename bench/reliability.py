"""Reliability figures (issue 17): durability under ``kill -9``, a slow-connection attack,
and Prometheus labels from client-chosen model names. Prints JSON; the last line is one
JSON object with all three parts.

Run: python bench/reliability.py [--kill-runs 5] [--attack-s 20] [--names 20000]
     [--skip kill,attack,metrics]

- kill: ``--kill-runs`` runs of the regression test's procedure (tests/metering/
  test_crash.py ``kill_9_run``): a SQLite gateway writing to its database only every
  30 s takes 16 clients back to back (a quarter of them streaming) and is ``kill -9``ed
  mid-load; a new gateway replays the journal; every request a client saw succeed (a
  stream: its final frame) is looked up in the ledger. Reports acknowledged, recorded,
  missing, duplicates per run.
- attack: a gateway process under ``ulimit -n 1024`` (so its connection cap is 480) with
  the default timeouts (10 s for headers, 30 s for a body); ``--slow`` slow-header and as
  many slow-body connections (from a process of their own) that trickle a byte a second
  and come back a second after they are closed, for ``--attack-s`` seconds, while 8
  clients send real chat requests.
  Reports the real traffic's p50/p99 and failures before and during the attack, and how
  the gateway treated the attackers (408s, closes).
- metrics: ``--names`` requests, each with its own pass-through model name
  (``deepseek/probe-N``); then ``/metrics`` size and scrape time (median of 5) and the
  gateway's RSS growth.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' kill procedure

from _harness import emit, free_port, process, sandbox, wait_http

CHAT = {"model": "deepseek/deepseek-chat", "max_tokens": 16,
        "messages": [{"role": "user", "content": "hi [[sandbox:tokens=16]]"}]}


def _rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _pct(ms: list[float], q: float) -> float:
    if not ms:
        return 0.0
    ordered = sorted(ms)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)


# -- kill -9 ---------------------------------------------------------------------------------
def kill_runs(runs: int) -> dict[str, Any]:
    from tests.metering.test_crash import kill_9_run

    out: list[dict[str, float]] = []
    with sandbox(None) as sb, tempfile.TemporaryDirectory() as tmp:
        for run in range(runs):
            root = Path(tmp) / f"run{run}"
            root.mkdir()
            procs: list[Any] = []
            try:
                got = asyncio.run(kill_9_run(sb, str(root / "ledger.db"), root / "journal",
                                             root, procs))
            finally:
                for p in procs:
                    p.stop()
            out.append(got)
            print(orjson.dumps({"kill_run": run, **got}).decode(), flush=True)
    return {"runs": out, "acknowledged": sum(int(r["acknowledged"]) for r in out),
            "recorded": sum(int(r["recorded"]) for r in out),
            "missing": sum(int(r["missing"]) for r in out),
            "duplicates": sum(int(r["duplicates"]) for r in out)}


# -- slow connections ----------------------------------------------------------------------
async def _real_traffic(url: str, seconds: float, workers: int = 8) -> dict[str, Any]:
    lat: list[float] = []
    failures: dict[str, int] = {}
    stop = time.monotonic() + seconds
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout) as s:
        async def worker() -> None:
            while time.monotonic() < stop:
                t = time.perf_counter()
                try:
                    async with s.post(url + "/v1/chat/completions", json=CHAT) as r:
                        await r.read()
                        if r.status != 200:
                            failures[str(r.status)] = failures.get(str(r.status), 0) + 1
                            continue
                except (aiohttp.ClientError, TimeoutError) as exc:
                    failures[type(exc).__name__] = failures.get(type(exc).__name__, 0) + 1
                    await asyncio.sleep(0.05)
                    continue
                lat.append((time.perf_counter() - t) * 1000)

        await asyncio.gather(*(worker() for _ in range(workers)))
    return {"ok": len(lat), "failed": sum(failures.values()), "failures": failures,
            "p50_ms": _pct(lat, 0.5), "p99_ms": _pct(lat, 0.99)}


async def _attacker(host: str, port: int, body: bool, stop: asyncio.Event,
                    stats: dict[str, int]) -> None:
    while not stop.is_set():
        try:
            reader, writer = await asyncio.open_connection(host, port)
        except OSError:
            stats["connect_failed"] += 1
            await asyncio.sleep(1.0)
            continue
        stats["connections"] += 1
        head = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: "
                b"application/json\r\nContent-Length: 100000\r\n\r\n{" if body
                else b"POST /v1/chat/completions HTTP/1.1\r\nHo")
        try:
            writer.write(head)
            while not stop.is_set():
                try:
                    data = await asyncio.wait_for(reader.read(4096), 1.0)
                except TimeoutError:
                    writer.write(b" " if body else b"s")  # one more byte a second
                    await writer.drain()
                    continue
                if data.startswith(b"HTTP/1.1 408"):
                    stats["answered_408"] += 1
                if not data:
                    stats["closed_by_gateway"] += 1
                    await asyncio.sleep(1.0)  # then come back
                    break
                if data and not data.startswith(b"HTTP/1.1 408"):
                    stats["other_answer"] += 1
        except OSError:
            stats["reset_by_gateway"] += 1
        finally:
            writer.close()


async def _attackers(host: str, port: int, slow: int, seconds: float) -> dict[str, int]:
    stop = asyncio.Event()
    stats = dict.fromkeys(("connections", "connect_failed", "answered_408",
                           "closed_by_gateway", "reset_by_gateway", "other_answer"), 0)
    tasks = [asyncio.ensure_future(_attacker(host, port, i % 2 == 1, stop, stats))
             for i in range(2 * slow)]
    await asyncio.sleep(seconds)
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    return stats


def attack(slow: int, seconds: float) -> dict[str, Any]:
    """The attackers run in a process of their own (their reconnects must not slow the
    client that measures the real traffic)."""
    with sandbox(None) as sb:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        cmd = f"ulimit -n 1024 && exec {sys.executable} -m kanjia serve --sandbox {sb} " \
              f"--port {port}"
        with process(["bash", "-c", cmd], url + "/healthz"):
            before = asyncio.run(_real_traffic(url, 5.0))
            attackers = subprocess.Popen(
                [sys.executable, __file__, "--attacker", f"127.0.0.1:{port}", str(slow),
                 str(seconds + 4.0)], stdout=subprocess.PIPE)
            time.sleep(3.0)  # the attack opens its connections
            during = asyncio.run(_real_traffic(url, seconds))
            out, _ = attackers.communicate(timeout=120)
            wait_http(url + "/healthz")
    return {"before": before, "during": during, "attackers": orjson.loads(out),
            "slow_header_connections": slow, "slow_body_connections": slow,
            "gateway_fd_limit": 1024}


# -- metrics labels -----------------------------------------------------------------------
async def _names(url: str, n: int, workers: int = 32) -> int:
    ok = 0
    it = iter(range(n))
    async with aiohttp.ClientSession() as s:
        async def worker() -> None:
            nonlocal ok
            for i in it:
                body = {**CHAT, "model": f"deepseek/probe-{i}"}
                async with s.post(url + "/v1/chat/completions", json=body) as r:
                    await r.read()
                    ok += r.status == 200

        await asyncio.gather(*(worker() for _ in range(workers)))
    return ok


def metrics(names: int) -> dict[str, Any]:
    with sandbox(None) as sb:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        with process([sys.executable, "-m", "kanjia", "serve", "--sandbox", sb, "--port",
                      str(port)], url + "/healthz") as proc:
            asyncio.run(_names(url, 200))  # warm
            rss0 = _rss_kb(proc.pid)
            ok = asyncio.run(_names(url, names))
            rss1 = _rss_kb(proc.pid)
            sizes, times = [], []
            import urllib.request

            for _ in range(5):
                t = time.perf_counter()
                with urllib.request.urlopen(url + "/metrics", timeout=30) as r:
                    sizes.append(len(r.read()))
                times.append((time.perf_counter() - t) * 1000)
    return {"unique_model_names": names, "answered": ok, "metrics_bytes": sizes[-1],
            "scrape_ms_median": round(statistics.median(times), 2),
            "rss_growth_mb": round((rss1 - rss0) / 1024, 1)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kill-runs", type=int, default=5)
    ap.add_argument("--attack-s", type=float, default=20.0)
    ap.add_argument("--slow", type=int, default=2000, help="slow-header (and slow-body) conns")
    ap.add_argument("--names", type=int, default=20_000)
    ap.add_argument("--skip", default="", help="comma-separated: kill,attack,metrics")
    ap.add_argument("--attacker", nargs=3, metavar=("HOST:PORT", "SLOW", "SECONDS"),
                    help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.attacker:
        import resource

        _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        host, port = args.attacker[0].rsplit(":", 1)
        stats = asyncio.run(_attackers(host, int(port), int(args.attacker[1]),
                                       float(args.attacker[2])))
        print(orjson.dumps(stats).decode())
        return
    skip = set(filter(None, args.skip.split(",")))
    result: dict[str, Any] = {"bench": "reliability", "nproc": os.cpu_count()}
    if "kill" not in skip:
        result["kill_9"] = kill_runs(args.kill_runs)
        print(orjson.dumps({"kill_9": result["kill_9"]}).decode(), flush=True)
    if "attack" not in skip:
        result["slow_connections"] = attack(args.slow, args.attack_s)
        print(orjson.dumps({"slow_connections": result["slow_connections"]}).decode(),
              flush=True)
    if "metrics" not in skip:
        result["metrics_labels"] = metrics(args.names)
    emit(result)


if __name__ == "__main__":
    main()
