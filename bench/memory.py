"""Memory of an idle gateway with every sandbox vendor enabled, and after one request to
each vendor, with the tokenizers loaded lazily (now) and eagerly at start-up (before).

    python bench/memory.py [--stream] [--omit-usage]

Starts the sandbox and ``kanjia serve --sandbox URL`` twice: ``after`` is the gateway as
it ships (the estimating tokenizer, o200k, loads at start-up; the exact families of
DeepSeek, Qwen and older OpenAI models on their first estimate); ``before`` is the same app
with the old start-up hook that loaded the tokenizer of every model
(``Gateway.warm_tokenizers``) and the old OpenAI encoders, started through the same
``serve``. For
each: VmRSS (/proc/PID/status) once idle, then one chat request per vendor (the first
chat model the gateway lists for it), timing each first request, then VmRSS again.
With ``--omit-usage`` every vendor leaves usage out (the sandbox's ``no_usage``
directive), so kanjia must estimate it: the worst case, where the lazy gateway loads each
family's tokenizer on that family's first request. Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
import urllib.request
from typing import Any

from _harness import emit, free_port, process, sandbox

#: the gateway's start-up before the change: make_app plus the eager warm-up hook, and
#: OpenAI's encodings as full ``tiktoken.Encoding`` objects (without the Rust module on
#: ``tiktoken``'s namespace, kanjia falls back to them; tiktoken.core keeps its own handle)
_EAGER = """
import sys
import tiktoken
del tiktoken._tiktoken
from kanjia.config import load_settings
from kanjia.server import run

settings = load_settings(None, sandbox_url=sys.argv[1], server={"port": int(sys.argv[2])})
app = run.make_app(settings)
app.on_startup.append(app.services.gateway.warm_tokenizers)
run.serve(settings, None, 1, None, app)
"""


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError("no VmRSS")


def settled_rss_mb(pid: int, timeout: float = 20.0) -> float:
    """VmRSS once two reads half a second apart differ by under 1 MB."""
    last = rss_mb(pid)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = rss_mb(pid)
        if abs(now - last) < 1.0:
            return now
        last = now
    return last


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as reply:
        return json.load(reply)


def chat(url: str, model: str, stream: bool, omit_usage: bool) -> tuple[float, int, bool]:
    """(seconds to the whole reply, HTTP status, usage estimated by kanjia)."""
    prompt = "Name three vendors of LLM APIs." + (" [[sandbox:no_usage]]" if omit_usage else "")
    body = {"model": model, "max_tokens": 16, "stream": stream,
            "messages": [{"role": "user", "content": prompt}]}
    request = urllib.request.Request(
        f"{url}/v1/chat/completions", data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": "Bearer bench"})
    start = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            reply.read()
            status, headers = reply.status, reply.headers
    except urllib.error.HTTPError as err:
        err.read()
        status, headers = err.code, err.headers
    elapsed = time.perf_counter() - start
    return elapsed, status, (headers.get("x-kanjia-usage") or "") == "estimated"


def one_model_per_vendor(url: str) -> dict[str, str]:
    chosen: dict[str, str] = {}
    for item in get_json(f"{url}/v1/models")["data"]:
        caps = set(item.get("capabilities") or ())
        if "embeddings" in caps and "chat" not in caps:
            continue
        chosen.setdefault(item["vendor"], item["id"])
    return dict(sorted(chosen.items()))


def measure(mode: str, sandbox_url: str, stream: bool, omit_usage: bool) -> dict[str, Any]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    if mode == "before":
        args = [sys.executable, "-c", _EAGER, sandbox_url, str(port)]
    else:
        args = [sys.executable, "-m", "kanjia", "serve", "--sandbox", sandbox_url,
                "--port", str(port)]
    started = time.perf_counter()
    with process(args, f"{url}/healthz", core=1) as proc:
        ready_s = time.perf_counter() - started
        idle = settled_rss_mb(proc.pid)
        models = one_model_per_vendor(url)
        first: dict[str, float] = {}
        second: dict[str, float] = {}
        statuses: dict[str, int] = {}
        estimated: list[str] = []
        for vendor, model in models.items():
            seconds, status, est = chat(url, model, stream, omit_usage)
            first[vendor] = round(seconds * 1000.0, 1)
            statuses[vendor] = status
            if est:
                estimated.append(vendor)
            second[vendor] = round(chat(url, model, stream, omit_usage)[0] * 1000.0, 1)
        after = settled_rss_mb(proc.pid)
    return {
        "ready_s": round(ready_s, 2),
        "idle_rss_mb": round(idle, 1),
        "after_requests_rss_mb": round(after, 1),
        "vendors": len(models),
        "not_ok": {v: s for v, s in statuses.items() if s != 200},
        "usage_estimated": estimated,
        "first_request_ms": first,
        "second_request_ms": second,
        "first_request_p50_ms": round(statistics.median(first.values()), 1),
        "first_request_max_ms": max(first.values()),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--stream", action="store_true", help="Stream the requests.")
    ap.add_argument("--omit-usage", action="store_true",
                    help="Vendors leave usage out: kanjia estimates it (the worst case).")
    args = ap.parse_args()
    with sandbox(core=0) as sandbox_url:
        result = {mode: measure(mode, sandbox_url, args.stream, args.omit_usage)
                  for mode in ("before", "after")}
    slower = {v: round(result["after"]["first_request_ms"][v]
                       - result["before"]["first_request_ms"][v], 1)
              for v in result["after"]["first_request_ms"]}
    emit({
        "bench": "memory",
        "stream": args.stream,
        "omit_usage": args.omit_usage,
        "python": platform.python_version(),
        **result,
        "first_request_slower_ms": slower,
        "first_request_slower_max_ms": max(slower.values()),
        "targets": {"idle_rss_mb": 150, "after_requests_rss_mb": 200,
                    "first_request_slower_ms": 50},
    })


if __name__ == "__main__":
    main()
