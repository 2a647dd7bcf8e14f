"""``kanjia demo``: the sandbox and the gateway on free ports, a realistic mixed
workload through the official openai SDK, and what it cost."""

from __future__ import annotations

import time
from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import click

from kanjia.config import load_settings
from kanjia.metering.record import CallRecord

_CHAT_MODELS = (
    "deepseek/deepseek-chat", "qwen/qwen-plus", "zhipu/glm-4-flash", "moonshot/moonshot-v1-8k",
    "doubao/doubao-pro-32k", "qianfan/ernie-speed-8k", "hunyuan/hunyuan-lite", "spark/lite",
    "minimax/MiniMax-M2", "openai/gpt-4o-mini", "anthropic/claude-3-5-haiku-20241022",
    "gemini/gemini-2.0-flash",
)
_PROMPTS = (
    "用三句话解释大模型价格战对中小企业意味着什么。",
    "Summarise the trade-offs between self-hosting an open-weights model and paying per token.",
    "把下面这句话翻译成英文：降价之后，谁真正受益？",
    "Write a haiku about cheap tokens.",
)
_TOOLS = [{"type": "function", "function": {
    "name": "get_price", "description": "Look up a model's price per 1M tokens",
    "parameters": {"type": "object", "properties": {
        "model": {"type": "string"}, "currency": {"type": "string", "enum": ["CNY", "USD"]}},
        "required": ["model"]}}}]


def _workload(client: Any, models: list[str]) -> int:
    sent = 0
    for i, model in enumerate(models):
        prompt = _PROMPTS[i % len(_PROMPTS)]
        client.chat.completions.create(model=model, max_tokens=120,
                                       messages=[{"role": "user", "content": prompt}])
        stream = client.chat.completions.create(
            model=model, max_tokens=80, stream=True, stream_options={"include_usage": True},
            messages=[{"role": "system", "content": "Be brief."},
                      {"role": "user", "content": _PROMPTS[(i + 1) % len(_PROMPTS)]}])
        for _ in stream:
            pass
        client.chat.completions.create(
            model=model, tools=_TOOLS, tool_choice="required",
            messages=[{"role": "user", "content": "What does deepseek-chat cost?"}])
        sent += 3
    for route in ("cheap-chat", "cn-only", "long-doc", "code"):
        client.chat.completions.create(model=route, max_tokens=100,
                                       messages=[{"role": "user", "content": _PROMPTS[0]}])
        sent += 1
    for model in ("openai/text-embedding-3-small", "qwen/text-embedding-v3",
                  "zhipu/embedding-3"):
        try:
            client.embeddings.create(model=model, input=["价格战", "price war", "谁会受益"])
            sent += 1
        except Exception as exc:  # a model missing from the catalog still shows in the table
            click.echo(f"  embeddings {model}: {exc}", err=True)
    return sent


def _report(records: list[CallRecord], fx: Any) -> None:
    rows: dict[tuple[str, str], dict[str, Any]] = defaultdict(
        lambda: {"n": 0, "in": 0, "out": 0, "cny": Decimal(0), "usd": Decimal(0), "err": 0,
                 "priced": False})
    today = datetime.now(UTC).date()
    for r in records:
        row = rows[(r.vendor or "-", r.model or r.requested_model)]
        row["n"] += 1
        row["priced"] = row["priced"] or r.price_period not in (None, "unpriced")
        row["err"] += r.status >= 400
        row["in"] += r.input_tokens
        row["out"] += r.output_tokens
        row["cny"] += fx.convert(r.cost, r.currency, "CNY", today)
        row["usd"] += fx.convert(r.cost, r.currency, "USD", today)
    click.echo(f"\n{'vendor':<11} {'model':<34} {'req':>4} {'err':>3} {'in tok':>7} "
               f"{'out tok':>7} {'cost CNY':>12} {'cost USD':>12}")
    total = {"n": 0, "in": 0, "out": 0, "cny": Decimal(0), "usd": Decimal(0), "err": 0}
    for (vendor, model), row in sorted(rows.items()):
        cny, usd = ((f"{row['cny']:>12.6f}", f"{row['usd']:>12.6f}") if row["priced"]
                    else (f"{'unpriced':>12}", f"{'unpriced':>12}"))
        click.echo(f"{vendor:<11} {model[:34]:<34} {row['n']:>4} {row['err']:>3} {row['in']:>7} "
                   f"{row['out']:>7} {cny} {usd}")
        for k in total:
            total[k] += row[k]
    click.echo(f"{'total':<46} {total['n']:>4} {total['err']:>3} {total['in']:>7} "
               f"{total['out']:>7} {total['cny']:>12.6f} {total['usd']:>12.6f}")


@click.command()
@click.option("--db", "database", default=None,
              help="Also write the ledger here (SQLite path or postgresql:// URL).")
def demo(database: str | None) -> None:
    """Run a mixed workload through the gateway against the local vendor sandbox."""
    import openai

    from kanjia.sandbox import SandboxSettings, SandboxThread
    from kanjia.server import ServerThread
    from kanjia.server.run import make_app

    records: list[CallRecord] = []
    t0 = time.perf_counter()
    with SandboxThread(SandboxSettings(port=0)) as sandbox:
        overrides: dict[str, Any] = {"sandbox_url": sandbox.url}
        if database:
            overrides["database"] = database
        settings = load_settings(None, **overrides)
        app = make_app(settings)
        app.services.gateway.sinks.append(records.append)
        with ServerThread(app) as gateway:
            click.echo(f"sandbox {sandbox.url}  gateway {gateway.url}/v1")
            with openai.OpenAI(base_url=gateway.url + "/v1", api_key="demo",
                               max_retries=0) as client:
                sent = _workload(client, list(_CHAT_MODELS))
    _report(records, app.services.catalog.fx)
    click.echo(f"\n{sent} requests through kanjia in {time.perf_counter() - t0:.1f} s; "
               "nothing left running.")
