"""Gateway overhead: requests/s and added latency of kanjia vs calling the sandbox directly.

Also the Anthropic Messages (/v1/messages) and OpenAI Responses (/v1/responses) APIs,
streamed and not, at one connection: the same upstream chat call as the chat figures,
so ``<api>_added_p50_ms`` is their added latency over the direct call and
``<api>_vs_chat_p50_ms`` what the translation adds over /v1/chat/completions.

Run: python bench/overhead.py [--seconds 10] [--metering]
Pinning (on 2+ cores): gateway on cpu1; sandbox and wrk on cpu0. Rounds alternate direct and
gateway so that machine noise hits both. Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import copy
import platform
import shutil
import tempfile

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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument(
        "--metering",
        action="store_true",
        help="also run with the ledger on (SQLite) and report the ratio",
    )
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
        if args.metering:
            with (
                tempfile.TemporaryDirectory() as tmp,
                gateway(sb, core=1, extra=["--db", f"{tmp}/ledger.db"]) as gwm,
            ):
                via_m = f"{gwm}/v1/chat/completions"
                load(via_m, body, 8, 2)
                m = load(via_m, body, 64, args.seconds)
                out["metered_gateway_rps_c64"] = round(m.rps, 1)
                out["metering_throughput_ratio"] = round(m.rps / float(out["gateway_rps_c64"]), 3)  # type: ignore[arg-type]
    emit(out)


if __name__ == "__main__":
    main()
