"""Gateway overhead: requests/s and added latency of kanjia vs calling the sandbox directly.

Also the Anthropic Messages (/v1/messages) and OpenAI Responses (/v1/responses) APIs,
streamed and not, at one connection, for the same model: a Messages request is translated
to the same upstream chat call as the chat figures; a Responses request goes to the
sandbox's OpenAI Responses endpoint as the client wrote it (OpenAI speaks that API, so
kanjia passes it through). ``<api>_added_p50_ms`` is their added latency over the direct
chat call and ``<api>_vs_chat_p50_ms`` the difference to /v1/chat/completions.

``--metering`` adds a gateway with full metering (the SQLite ledger and a virtual key with
two budgets, rpm and tpm on every request): its requests/s at c64 beside the plain
gateway's, its added p50 at one connection (non-streaming and streaming) over the direct
call, on chat and on the Messages and Responses APIs (``metered_<api>_...``), and for
streams the time to first byte and the gap between chunks (p50 over sequential requests)
of the direct call, the plain gateway and the metered one.

Run: python bench/overhead.py [--seconds 10] [--metering]
Pinning (on 2+ cores): gateway on cpu1; sandbox and wrk on cpu0. Rounds alternate direct and
gateway so that machine noise hits both. Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import platform
import shutil
import statistics
import tempfile
import time

import orjson

from _harness import CHAT_BODY, emit, gateway, load, sandbox

_SYSTEM, _USER = (m["content"] for m in CHAT_BODY["messages"])  # type: ignore[attr-defined]
#: the chat body's request in the other client APIs (the same upstream call)
API_BODIES: dict[str, tuple[str, dict[str, object]]] = {
    "messages": ("/v1/messages", {"model": CHAT_BODY["model"], "max_tokens": 40,
                                  "system": _SYSTEM,
                                  "messages": [{"role": "user", "content": _USER}]}),
    "responses": ("/v1/responses", {"model": CHAT_BODY["model"], "max_output_tokens": 40,
                                    "instructions": _SYSTEM, "input": _USER}),
}


async def _stream_timing(url: str, body: dict[str, object], n: int,
                         key: str) -> tuple[float, float]:
    """p50 over ``n`` sequential streams of the time to the first byte and of the mean gap
    between SSE data lines (ms)."""
    import aiohttp

    data = orjson.dumps(body)
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}
    ttfb: list[float] = []
    gaps: list[float] = []
    async with aiohttp.ClientSession() as s:
        for _ in range(n):
            t0 = time.perf_counter()
            stamps: list[float] = []
            async with s.post(url, data=data, headers=headers) as r:
                assert r.status == 200, r.status
                async for line in r.content:
                    if line.startswith(b"data:"):
                        stamps.append(time.perf_counter())
            ttfb.append((stamps[0] - t0) * 1000)
            if len(stamps) > 1:
                gaps.append((stamps[-1] - stamps[0]) / (len(stamps) - 1) * 1000)
    return statistics.median(ttfb), statistics.median(gaps) if gaps else 0.0


def _metered(args: argparse.Namespace, sb: str, body: dict[str, object],
             sbody: dict[str, object], out: dict[str, object]) -> None:
    """Full metering (ledger + key with 2 budgets, rpm, tpm) beside the direct call."""
    from ledger import MASTER, _make_key

    direct = f"{sb}/openai/chat/completions"
    with tempfile.TemporaryDirectory() as tmp, \
            gateway(sb, core=1, extra=["--db", f"{tmp}/ledger.db"],
                    env={"KANJIA_MASTER_KEY": MASTER,
                         "KANJIA_JOURNAL_DIR": f"{tmp}/journal"}) as gwm:
        key = _make_key(gwm)
        via_m = f"{gwm}/v1/chat/completions"
        load(via_m, body, 8, 2, api_key=key)
        m = load(via_m, body, 64, args.seconds, api_key=key)
        out["metered_gateway_rps_c64"] = round(m.rps, 1)
        out["metering_throughput_ratio"] = round(m.rps / float(out["gateway_rps_c64"]), 3)  # type: ignore[arg-type]
        out["metered_errors_c64"] = m.errors
        for prefix, b in (("", body), ("stream_", sbody)):
            added = []
            for _ in range(max(3, args.rounds)):  # alternate: noise hits both
                d = load(direct, b, 1, args.seconds / 2)
                g = load(via_m, b, 1, args.seconds / 2, api_key=key)
                added.append(g.p50_ms - d.p50_ms)
            out[f"metered_{prefix}added_p50_ms_c1"] = round(statistics.median(added), 3)
        for api, (path, api_body) in API_BODIES.items():  # the same key, the other APIs
            for prefix, b in (("", api_body), ("stream_", {**api_body, "stream": True})):
                d_body = sbody if prefix else body
                load(f"{gwm}{path}", b, 4, 1, api_key=key)  # warm-up
                added = []
                for _ in range(max(3, args.rounds)):
                    d = load(direct, d_body, 1, args.seconds / 2)
                    g = load(f"{gwm}{path}", b, 1, args.seconds / 2, api_key=key)
                    added.append(g.p50_ms - d.p50_ms)
                out[f"metered_{api}_{prefix}added_p50_ms_c1"] = round(statistics.median(added), 3)
        out["stream_timing_ms"] = out.get("stream_timing_ms", {})
        timing: dict[str, float] = {}
        for name, url, k in (("direct", direct, "sandbox-key"), ("metered", via_m, key)):
            ttfb, gap = asyncio.run(_stream_timing(url, sbody, args.stream_n, k))
            timing[f"{name}_ttfb_p50"] = round(ttfb, 3)
            timing[f"{name}_chunk_gap_p50"] = round(gap, 4)
        out["stream_timing_ms"].update(timing)  # type: ignore[attr-defined]
        out["metered_stream_added_ttfb_ms"] = round(
            timing["metered_ttfb_p50"] - timing["direct_ttfb_p50"], 3)
        out["metered_stream_added_chunk_gap_ms"] = round(
            timing["metered_chunk_gap_p50"] - timing["direct_chunk_gap_p50"], 4)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument(
        "--metering",
        action="store_true",
        help="also run with full metering (SQLite ledger, key with 2 budgets, rpm, tpm)",
    )
    ap.add_argument("--stream-n", type=int, default=300,
                    help="sequential streams for time to first byte and chunk gaps")
    args = ap.parse_args()
    body = copy.deepcopy(CHAT_BODY)
    sbody = {**body, "stream": True, "stream_options": {"include_usage": True}}
    out: dict[str, object] = {
        "machine": platform.machine(),
        "cpus": __import__("os").cpu_count(),
        "load_tool": "wrk" if shutil.which("wrk") else "aiohttp",
        "seconds": args.seconds,
    }
    with sandbox(core=0) as sb:
        direct = f"{sb}/openai/chat/completions"
        with gateway(sb, core=1) as gw:
            via = f"{gw}/v1/chat/completions"
            load(via, body, 8, 2)  # warm-up
            load(via, sbody, 8, 1)
            for prefix, b in (("", body), ("stream_", sbody)):
                for c in (1, 64):
                    d_runs, g_runs = [], []
                    for _ in range(args.rounds):
                        d_runs.append(load(direct, b, c, args.seconds))
                        g_runs.append(load(via, b, c, args.seconds))
                    d = max(d_runs, key=lambda r: r.rps)
                    g = max(g_runs, key=lambda r: r.rps)
                    out[f"{prefix}direct_rps_c{c}"] = round(d.rps, 1)
                    out[f"{prefix}gateway_rps_c{c}"] = round(g.rps, 1)
                    out[f"{prefix}direct_p50_ms_c{c}"] = round(d.p50_ms, 3)
                    out[f"{prefix}gateway_p50_ms_c{c}"] = round(g.p50_ms, 3)
                    out[f"{prefix}gateway_added_p50_ms_c{c}"] = round(g.p50_ms - d.p50_ms, 3)
                    out[f"{prefix}gateway_added_p99_ms_c{c}"] = round(g.p99_ms - d.p99_ms, 3)
                    out[f"{prefix}gateway_errors_c{c}"] = g.errors
            for api, (path, api_body) in API_BODIES.items():
                for prefix, b in (("", api_body), ("stream_", {**api_body, "stream": True})):
                    load(f"{gw}{path}", b, 4, 1)  # warm-up
                    r = max((load(f"{gw}{path}", b, 1, args.seconds)
                             for _ in range(args.rounds)), key=lambda r: r.rps)
                    chat_p50 = float(out[f"{prefix}gateway_p50_ms_c1"])  # type: ignore[arg-type]
                    direct_p50 = float(out[f"{prefix}direct_p50_ms_c1"])  # type: ignore[arg-type]
                    out[f"{api}_{prefix}gateway_p50_ms_c1"] = round(r.p50_ms, 3)
                    out[f"{api}_{prefix}added_p50_ms_c1"] = round(r.p50_ms - direct_p50, 3)
                    out[f"{api}_{prefix}vs_chat_p50_ms_c1"] = round(r.p50_ms - chat_p50, 3)
                    out[f"{api}_{prefix}errors_c1"] = r.errors
            ttfb, gap = asyncio.run(_stream_timing(via, sbody, args.stream_n, "bench"))
            out["stream_timing_ms"] = {"gateway_ttfb_p50": round(ttfb, 3),
                                       "gateway_chunk_gap_p50": round(gap, 4)}
        if args.metering:
            _metered(args, sb, body, sbody, out)
    emit(out)


if __name__ == "__main__":
    main()
