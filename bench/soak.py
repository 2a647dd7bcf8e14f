"""Soak: N minutes at a steady request rate, streaming and vendor faults mixed in.

Run:   python bench/soak.py [--minutes 10] [--rate 100] [--fault-rate 0.02] [--no-db]

The sandbox (cpu0) injects server-wide faults at random (``POST /_sandbox/faults`` with a
probability: 429s, 5xx, overloaded, resets, malformed bodies, slow trickle streams); the
gateway (``kanjia serve --db`` on cpu1, with a fallback route over two vendors) is driven
at a steady rate by an async client (cpu0): 70% non-streamed, 30% streamed with usage,
half of them through the fallback route, and 1% of the streams dropped by the client
after their first chunk.

Pass criteria (both in the JSON):
- ``memory_ok``: the gateway's RSS at the end is within 10% of its RSS after warm-up
  (first 10% of the run, at least 30 s; the warm-up also loads the tokenizers that usage
  estimation needs, see below);
- ``errors_explained``: every error a client saw is one the injected faults explain: its
  code is one a fault produces, and per code there were no more errors than faults of
  that kind; no 500, no connection error, no client timeout, no stream that ended
  without ``[DONE]`` or an error event.
Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import orjson

from _harness import CHAT_BODY, emit, free_port
from _litellm import RssSampler, Server, kanjia_args

MB = 1024 * 1024
#: fault -> (share of the fault budget, the client-visible codes it can cause)
FAULT_MIX: dict[str, tuple[float, tuple[str, ...]]] = {
    "rate_limit": (0.25, ("rate_limit_exceeded",)),
    "server_error": (0.25, ("upstream_error",)),
    "overloaded": (0.15, ("overloaded",)),
    "reset": (0.15, ("upstream_error", "stream_truncated")),
    "malformed": (0.15, ("bad_gateway",)),
    "slow_stream": (0.05, ("timeout", "stream_truncated")),
}
#: a circuit breaker opened by injected failures answers this while open
BREAKER_CODE = "no_deployment_available"
ROUTE_TOML = """
[routes.soak-fb]
description = "soak: deepseek first, qwen as fallback"
models = ["deepseek/deepseek-chat", "qwen/qwen-plus"]
objective = "ordered"
"""
MODELS = ["openai/gpt-4o-mini", "soak-fb"]


def _post_json(url: str, body: dict[str, Any] | None = None, method: str = "POST") -> Any:
    data = orjson.dumps(body) if body is not None else None
    req = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        return orjson.loads(r.read())


class Tally:
    def __init__(self) -> None:
        self.sent = 0
        self.kinds: Counter[str] = Counter()
        self.status: Counter[int] = Counter()
        self.codes: Counter[str] = Counter()
        self.unexplained: list[str] = []
        self.latency_ns: list[float] = []
        self.ttfb_stream: list[float] = []
        self.dropped = 0
        self.overloaded_client = 0

    def bad(self, what: str) -> None:
        if len(self.unexplained) < 50:
            self.unexplained.append(what)
        else:
            self.unexplained.append("...")


async def one(session: Any, url: str, tally: Tally, rnd: random.Random) -> None:
    import aiohttp

    stream = rnd.random() < 0.3
    model = MODELS[rnd.random() < 0.5]
    body = {**CHAT_BODY, "model": model, "max_tokens": 16}
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    drop = stream and rnd.random() < 0.01
    kind = ("stream" if stream else "plain") + ("_drop" if drop else "")
    tally.kinds[kind] += 1
    t0 = time.perf_counter()
    try:
        async with session.post(
            url, data=orjson.dumps(body), headers={"Content-Type": "application/json"}
        ) as r:
            tally.status[r.status] += 1
            if r.status != 200:
                data = await r.read()
                try:
                    code = orjson.loads(data)["error"]["code"]
                except Exception:
                    tally.bad(f"{r.status} non-OpenAI error body: {data[:120]!r}")
                    return
                tally.codes[code] += 1
                if r.status == 500:
                    tally.bad(f"500: {data[:160]!r}")
                return
            if not stream:
                data = await r.read()
                try:
                    ok = orjson.loads(data)["choices"][0]["message"]["content"]
                except Exception:
                    tally.bad(f"200 with a broken body: {data[:120]!r}")
                    return
                if not ok:
                    tally.bad("200 with empty content")
                tally.latency_ns.append(time.perf_counter() - t0)
                return
            buf = b""
            first = True
            async for chunk in r.content.iter_any():
                if first:
                    tally.ttfb_stream.append(time.perf_counter() - t0)
                    first = False
                    if drop:
                        tally.dropped += 1
                        r.close()
                        return
                buf += chunk
            events = [ln[6:] for ln in buf.split(b"\n") if ln.startswith(b"data: ")]
            if events and events[-1] == b"[DONE]":
                if any(e.startswith(b'{"error"') for e in events[:-1]):
                    tally.bad(f"[DONE] after an error event: {buf[-160:]!r}")
                return
            if events and events[-1].startswith(b'{"error"'):  # cut: no [DONE] after it
                tally.codes[orjson.loads(events[-1])["error"]["code"]] += 1
                return
            tally.bad(f"stream ended without [DONE] or an error event: {buf[-160:]!r}")
    except TimeoutError:
        tally.bad(f"client timeout after {time.perf_counter() - t0:.1f} s ({kind})")
    except aiohttp.ClientError as exc:
        tally.bad(f"connection error: {type(exc).__name__}: {exc}")


async def drive(url: str, rate: float, seconds: float, tally: Tally, seed: int = 1) -> None:
    import aiohttp

    rnd = random.Random(seed)
    timeout = aiohttp.ClientTimeout(total=60)
    conn = aiohttp.TCPConnector(limit=0)
    inflight: set[asyncio.Task[None]] = set()
    async with aiohttp.ClientSession(connector=conn, timeout=timeout) as session:
        t0 = time.perf_counter()
        due = 0.0
        while (now := time.perf_counter() - t0) < seconds:
            target = now * rate
            while due < target:
                due += 1
                if len(inflight) >= 1024:
                    tally.overloaded_client += 1
                    continue
                task = asyncio.ensure_future(one(session, url, tally, rnd))
                inflight.add(task)
                task.add_done_callback(inflight.discard)
                tally.sent += 1
            await asyncio.sleep(0.005)
        if inflight:
            await asyncio.wait(inflight, timeout=90)


def _explain(tally: Tally, faults: dict[str, int]) -> tuple[bool, dict[str, Any]]:
    budget: Counter[str] = Counter()
    for fault, n in faults.items():
        for code in FAULT_MIX.get(fault, (0.0, ()))[1]:
            budget[code] += n
    breaker_faults = sum(n for f, n in faults.items() if f not in ("rate_limit", "slow_stream"))
    detail: dict[str, Any] = {}
    ok = not tally.unexplained
    for code, n in tally.codes.items():
        good = breaker_faults > 0 if code == BREAKER_CODE else n <= budget.get(code, 0)
        detail[code] = {
            "client_errors": n,
            "faults_that_cause_it": budget.get(code, 0),
            "explained": good,
        }
        ok = ok and good
    return ok, detail


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--rate", type=float, default=100.0, help="requests per second")
    ap.add_argument(
        "--fault-rate", type=float, default=0.02, help="share of upstream calls that get a fault"
    )
    ap.add_argument("--no-db", action="store_true", help="run without the SQLite ledger")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    seconds = args.minutes * 60
    warmup = max(30.0, seconds * 0.1)
    with contextlib.suppress(AttributeError, OSError):
        if (os.cpu_count() or 1) >= 2:
            os.sched_setaffinity(0, {0})
    tmp = tempfile.TemporaryDirectory()
    cfg = Path(tmp.name) / "soak.toml"
    cfg.write_text(ROUTE_TOML)
    db = str(Path(tmp.name) / "ledger.db")
    sp = free_port()
    sb_url = f"http://127.0.0.1:{sp}"
    out: dict[str, Any] = {
        "minutes": args.minutes,
        "rate": args.rate,
        "fault_rate": args.fault_rate,
        "warmup_s": warmup,
        "ledger": not args.no_db,
    }
    sandbox = Server(
        [
            sys.executable,
            "-m",
            "kanjia",
            "sandbox",
            "--port",
            str(sp),
            "--seed",
            str(args.seed),
            "--hang-s",
            "5",
        ],
        f"{sb_url}/_sandbox/stats",
        0,
    )
    gp = free_port()
    extra = ["--config", str(cfg)] + ([] if args.no_db else ["--db", db])
    gw = Server(kanjia_args(sb_url, gp, extra), f"http://127.0.0.1:{gp}/healthz", 1)
    with sandbox, gw:
        url = f"http://127.0.0.1:{gp}/v1/chat/completions"
        # what a reset stream or a usage-less answer needs: load the estimating tokenizers
        for model in ("openai/gpt-4o-mini", "deepseek/deepseek-chat", "qwen/qwen-plus"):
            _post_json(
                url,
                {
                    **CHAT_BODY,
                    "model": model,
                    "max_tokens": 4,
                    "messages": [{"role": "user", "content": "warm [[sandbox:no_usage]]"}],
                },
            )
        for fault, (share, _) in FAULT_MIX.items():
            _post_json(
                f"{sb_url}/_sandbox/faults",
                {"vendor": "*", "fault": fault, "probability": args.fault_rate * share},
            )
        sampler = RssSampler(gw.pid, interval=1.0).start()
        tally = Tally()
        t0 = time.monotonic()
        asyncio.run(drive(url, args.rate, seconds, tally, args.seed))
        took = time.monotonic() - t0
        sampler.stop()
        stats = _post_json(f"{sb_url}/_sandbox/stats", None, "GET")
        faults = stats.get("faults_total", {})
        time.sleep(0.5)
    if not args.no_db:
        with sqlite3.connect(db) as con:
            out["ledger_rows"] = int(
                con.execute("SELECT count(*) FROM usage_records").fetchone()[0]
            )
        out["ledger_rows_expected"] = tally.sent + 3  # + the three warm-up calls
        out["ledger_consistent"] = out["ledger_rows"] == out["ledger_rows_expected"]
    tmp.cleanup()
    samples = sampler.samples
    start = samples[0][0]
    after_warm = [v for t, v in samples if warmup <= t - start < warmup + 10] or [samples[0][1]]
    end = [v for _, v in samples[-10:]]
    rss_warm = statistics.mean(after_warm)
    rss_end = statistics.mean(end)
    growth = (rss_end - rss_warm) / rss_warm
    explained, detail = _explain(tally, faults)
    lat = sorted(tally.latency_ns)
    pick = (
        (lambda q: round(lat[min(len(lat) - 1, int(q * len(lat)))] * 1000, 2))
        if lat
        else (lambda q: None)
    )
    out.update(
        {
            "duration_s": round(took, 1),
            "requests_sent": tally.sent,
            "achieved_rps": round(tally.sent / took, 1),
            "kinds": dict(tally.kinds),
            "status": {str(k): v for k, v in sorted(tally.status.items())},
            "client_error_codes": dict(tally.codes),
            "faults_injected": faults,
            "upstream_calls": stats.get("total"),
            "streams_dropped_by_client": tally.dropped,
            "client_backlog_skips": tally.overloaded_client,
            "plain_p50_ms": pick(0.5),
            "plain_p99_ms": pick(0.99),
            "error_detail": detail,
            "unexplained_errors": len(tally.unexplained),
            "unexplained_samples": tally.unexplained[:10],
            "rss_after_warmup_mb": round(rss_warm / MB, 1),
            "rss_end_mb": round(rss_end / MB, 1),
            "rss_peak_mb": round(sampler.peak / MB, 1),
            "rss_growth_pct": round(growth * 100, 2),
            "memory_ok": abs(growth) <= 0.10,
            "errors_explained": explained,
        }
    )
    out["ok"] = out["memory_ok"] and out["errors_explained"]
    emit(out)


if __name__ == "__main__":
    main()
