"""The levers of the price war on one recorded agent workload, four ways.

The workload is a recorded set of multi-turn agent conversations: every conversation
shares one long system prompt and tool list, has ``--turns`` turns (each turn sends the
whole transcript so far: the prompt grows), and ``--conversations`` of them run at once.
A few conversations are re-runs of earlier ones (the same task again: identical
requests), and ``--deferrable`` of the conversations are offline work that may wait.
The route ``agent`` is ``cheapest`` over two models, each served by two deployments
(two API keys of one vendor: two separate prompt caches at the vendor sandbox).

The same workload runs four ways, each against a fresh vendor sandbox and a fresh
gateway with metering on (a SQLite ledger); costs are read back from the ledger:

- ``plain``: cheapest routing by list price, deployments shuffled per request;
- ``cache_aware``: + prompt-cache-aware routing (effective price, prefix affinity);
- ``response_cache``: + kanjia's exact response cache on the route;
- ``batch``: + the deferrable conversations' turns through kanjia's Batch API (the
  OpenAI SDK's files + batches flow; each line the cheapest way within 24 h).

Prints one JSON object: for each way its ``cost`` (in ``currency``), ``p50_ms`` (client
latency per request; a batch line's is submission to results) and counts, and
``cache_aware_saving`` (1 - cache_aware / plain).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import statistics
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import openai

from kanjia.catalog import load_catalog
from kanjia.config import load_settings
from kanjia.ledger.store import open_database
from kanjia.sandbox import SandboxSettings, SandboxThread
from kanjia.server import ServerThread, build_app

MASTER = "sk-bench-levers-master"
MODELS = ["openai/gpt-4o-mini", "openai/gpt-5-mini"]
WAYS = ("plain", "cache_aware", "response_cache", "batch")

_RULES = ("Rule {i}: when a tool call fails, read the error, fix the arguments and retry "
          "once; never invent file paths; quote the exact line you change; keep answers "
          "short and cite the tool output you rely on. ")
_TOOL = {"type": "function", "function": {
    "name": "tool_{i}", "description": "Operate on the repository: " + "details " * 60,
    "parameters": {"type": "object", "properties": {
        "path": {"type": "string", "description": "file path " * 10},
        "query": {"type": "string", "description": "what to look for " * 10}},
        "required": ["path"]}}}


def record_workload(conversations: int, turns: int, reruns: int, deferrable: int
                    ) -> list[dict[str, Any]]:
    """The recorded transcripts: per conversation, its user turns and the assistant's
    recorded answers, and whether it may be deferred. Deterministic."""
    system = "You are a coding agent for the kanjia repository. " + "".join(
        _RULES.format(i=i) for i in range(60))
    tools = [json.loads(json.dumps(_TOOL).replace("{i}", str(i))) for i in range(8)]
    convs: list[dict[str, Any]] = []
    for c in range(conversations):
        steps = [{"user": f"task {c} step {t}: inspect module {c}-{t} and report "
                          f"[[sandbox:tokens=24]]",
                  "assistant": f"Step {t} of task {c}: tool_1 returned module {c}-{t}: "
                               + "def handler(request): return respond(request) # ok\n" * 12}
                 for t in range(turns)]
        convs.append({"id": f"c{c}", "system": system, "tools": tools, "steps": steps,
                      "deferrable": c >= conversations - deferrable})
    for r in range(reruns):  # the same task run again: identical requests
        again = dict(convs[r])
        again["id"] = f"c{r}-rerun"
        again["deferrable"] = False
        again["rerun"] = True
        convs.append(again)
    return convs


def requests_of(conv: dict[str, Any]) -> list[dict[str, Any]]:
    """One chat request per turn: the transcript so far plus the turn's question."""
    messages: list[dict[str, Any]] = [{"role": "system", "content": conv["system"]}]
    out = []
    for step in conv["steps"]:
        messages = [*messages, {"role": "user", "content": step["user"]}]
        out.append({"model": "agent", "messages": messages, "tools": conv["tools"],
                    "max_tokens": 64})
        messages = [*messages, {"role": "assistant", "content": step["assistant"]}]
    return out


def _settings(way: str, sandbox_url: str, root: Path, models: list[str]) -> Any:
    deployments = [{"name": "a", "base_url": f"{sandbox_url}/openai", "api_key_env": "OA_A"},
                   {"name": "b", "base_url": f"{sandbox_url}/openai", "api_key_env": "OA_B"}]
    route = {"models": models, "objective": "cheapest", "cache_aware": way != "plain",
             "response_cache": way in ("response_cache", "batch")}
    return load_settings(None, database=str(root / "ledger.db"),
                         batch_queue=str(root / "queue.db"),
                         vendors={"openai": {"deployments": deployments}},
                         routes={"agent": route},
                         server={"upstream_timeout_s": 30.0, "first_byte_timeout_s": 30.0})


async def _conversation(session: aiohttp.ClientSession, url: str, conv: dict[str, Any],
                        latencies: list[float]) -> int:
    n = 0
    for body in requests_of(conv):
        t0 = time.perf_counter()
        async with session.post(url + "/v1/chat/completions", json=body) as resp:
            text = await resp.text()
            if resp.status != 200:
                raise RuntimeError(f"{resp.status}: {text[:300]}")
        latencies.append((time.perf_counter() - t0) * 1000)
        n += 1
    return n


def _batch(url: str, convs: list[dict[str, Any]], latencies: list[float]) -> int:
    """The deferrable conversations' turns as one batch through the OpenAI SDK."""
    lines = [json.dumps({"custom_id": f"{conv['id']}-{i}", "method": "POST",
                         "url": "/v1/chat/completions", "body": body})
             for conv in convs for i, body in enumerate(requests_of(conv))]
    if not lines:
        return 0
    client = openai.OpenAI(base_url=url + "/v1", api_key=MASTER, max_retries=0, timeout=60)
    buf = io.BytesIO(("\n".join(lines) + "\n").encode())
    buf.name = "deferrable.jsonl"
    t0 = time.perf_counter()
    f = client.files.create(file=buf, purpose="batch")
    batch = client.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions",
                                  completion_window="24h")
    while batch.status not in ("completed", "failed", "cancelled", "expired"):
        time.sleep(0.1)
        batch = client.batches.retrieve(batch.id)
    if batch.status != "completed" or batch.request_counts is None \
            or batch.request_counts.failed:
        raise RuntimeError(f"batch ended {batch.status}: {batch.request_counts}")
    latencies.extend([(time.perf_counter() - t0) * 1000] * len(lines))
    return len(lines)


async def _ledger_cost(database: str, expected: int, currency: str
                       ) -> tuple[Decimal, int, float, int, int]:
    """The ledger's total cost (in ``currency``) once all ``expected`` rows are in, its
    rows, the share of prompt tokens read from the vendor's cache, and response-cache
    hits, and rows billed at a vendor batch price."""
    db = open_database(database)
    await db.connect()
    try:
        deadline = time.monotonic() + 60
        while True:
            rows = await db.fetch("SELECT COUNT(*) FROM usage_records", ())
            if int(rows[0][0]) >= expected or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)  # the ledger writes in batches, off the request path
        rows = await db.fetch("SELECT currency, SUM(cost_nano), COUNT(*) FROM usage_records "
                              "WHERE status = 200 GROUP BY currency", ())
        tok = await db.fetch("SELECT SUM(cached_tokens), SUM(input_tokens), SUM(cache_hit), "
                             "SUM(CASE WHEN price_period LIKE '%+batch%' THEN 1 ELSE 0 END) "
                             "FROM usage_records WHERE status = 200", ())
    finally:
        await db.close()
    catalog = load_catalog(market=False)
    today = time.strftime("%Y-%m-%d")
    from datetime import date
    total = sum((catalog.fx.convert(Decimal(int(nano or 0)) / Decimal(10) ** 9, str(cur),
                                    currency, date.fromisoformat(today))
                 for cur, nano, _ in rows), Decimal(0))
    cached, prompt, hits, batched = (int(x or 0) for x in tok[0])
    return total, sum(int(n) for _, _, n in rows), cached / max(prompt, 1), hits, batched


async def run_way(way: str, convs: list[dict[str, Any]], currency: str,
                  batch_delay_s: float, models: list[str]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp, \
            SandboxThread(SandboxSettings(port=0, ttft_ms=5)) as sandbox:
        root = Path(tmp)
        app = build_app(_settings(way, sandbox.url, root, models),
                        env={"OA_A": "sk-deployment-a", "OA_B": "sk-deployment-b",
                             "KANJIA_MASTER_KEY": MASTER,
                             "KANJIA_JOURNAL_DIR": str(root / "journal"),
                             "KANJIA_LEDGER_FLUSH_S": "0.05"})
        app.services.batch_poll_s = 0.05
        _sandbox_batches(sandbox.url, batch_delay_s)
        latencies: list[float] = []
        deferred = [c for c in convs if c["deferrable"]] if way == "batch" else []
        live = [c for c in convs if c not in deferred]
        with ServerThread(app) as srv:
            headers = {"Authorization": f"Bearer {MASTER}"}
            first = [c for c in live if not c.get("rerun")]
            again = [c for c in live if c.get("rerun")]
            async with aiohttp.ClientSession(headers=headers) as session:
                batch_task = asyncio.to_thread(_batch, srv.url, deferred, latencies)
                counts = await asyncio.gather(
                    batch_task, *(_conversation(session, srv.url, c, latencies) for c in first))
                # the re-runs come later, once the tasks they repeat are done
                counts += await asyncio.gather(
                    *(_conversation(session, srv.url, c, latencies) for c in again))
            sent = sum(counts)
            cost, rows, share, hits, batched = await _ledger_cost(
                str(root / "ledger.db"), sent, currency)
    return {"cost": float(round(cost, 6)), "currency": currency,
            "p50_ms": round(statistics.median(latencies), 2), "requests": sent,
            "ledger_rows": rows, "prompt_cached_share": round(share, 4),
            "response_cache_hits": hits, "batch_price_rows": batched}


def _sandbox_batches(url: str, delay_s: float) -> None:
    import urllib.request
    req = urllib.request.Request(f"{url}/_sandbox/batches", method="POST",
                                 data=json.dumps({"delay_s": delay_s, "fail": []}).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5):
        pass


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--conversations", type=int, default=6)
    ap.add_argument("--turns", type=int, default=22)
    ap.add_argument("--reruns", type=int, default=2)
    ap.add_argument("--deferrable", type=int, default=2,
                    help="conversations that may wait (sent as a batch in the batch way)")
    ap.add_argument("--currency", default="USD", choices=["USD", "CNY"])
    ap.add_argument("--batch-delay-s", type=float, default=0.5)
    ap.add_argument("--ways", default=",".join(WAYS))
    ap.add_argument("--models", default=",".join(MODELS),
                    help="the route's models (OpenAI models: both deployments serve each)")
    ap.add_argument("--workload", type=Path, help="read the recorded workload from this "
                    "JSON file (written there first when it does not exist)")
    args = ap.parse_args(argv)
    convs = None
    if args.workload is not None and args.workload.exists():
        convs = json.loads(args.workload.read_text())
    if convs is None:
        convs = record_workload(args.conversations, args.turns, args.reruns, args.deferrable)
        if args.workload is not None:
            args.workload.write_text(json.dumps(convs))
    models = args.models.split(",")
    result: dict[str, Any] = {"currency": args.currency, "models": models,
                              "deployments_per_model": 2, "conversations": len(convs),
                              "turns": max(len(c["steps"]) for c in convs)}
    for way in args.ways.split(","):
        if way not in WAYS:
            ap.error(f"unknown way {way!r}; ways: {', '.join(WAYS)}")
        result[way] = asyncio.run(run_way(way, convs, args.currency, args.batch_delay_s,
                                          models))
        print(f"{way}: {result[way]}", file=sys.stderr)
    if "plain" in result and "cache_aware" in result and result["plain"]["cost"]:
        result["cache_aware_saving"] = round(
            1 - result["cache_aware"]["cost"] / result["plain"]["cost"], 4)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
