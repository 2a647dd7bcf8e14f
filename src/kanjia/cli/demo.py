"""``kanjia demo``: the sandbox and the gateway on free ports, a realistic mixed
workload through the official openai SDK, and the story it tells: what each request
cost, where each route went and why, what that saved, and what to try next."""

from __future__ import annotations

import os
import secrets
import signal
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import click

from kanjia.cli._demo_summary import Sent, print_summary
from kanjia.config import load_settings
from kanjia.ledger.record import CallRecord

_CHAT_MODELS = (
    "deepseek/deepseek-chat", "qwen/qwen-plus", "zhipu/glm-4-flash", "moonshot/moonshot-v1-8k",
    "doubao/doubao-pro-32k", "qianfan/ernie-speed-8k", "hunyuan/hunyuan-lite", "spark/lite",
    "minimax/MiniMax-M2", "openai/gpt-4o-mini", "anthropic/claude-3-5-haiku-20241022",
    "gemini/gemini-2.0-flash",
)
_ROUTES = ("cheap-chat", "cn-only", "long-doc", "code")
_EMBEDDINGS = ("openai/text-embedding-3-small", "qwen/text-embedding-v3", "zhipu/embedding-3")
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


def _workload(client: Any, sandbox_url: str, sent: Sent) -> None:
    for i, model in enumerate(_CHAT_MODELS):
        prompt = _PROMPTS[i % len(_PROMPTS)]
        client.chat.completions.create(model=model, max_tokens=120,
                                       messages=[{"role": "user", "content": prompt}])
        sent.add("chat")
        stream = client.chat.completions.create(
            model=model, max_tokens=80, stream=True, stream_options={"include_usage": True},
            messages=[{"role": "system", "content": "Be brief."},
                      {"role": "user", "content": _PROMPTS[(i + 1) % len(_PROMPTS)]}])
        for _ in stream:
            pass
        sent.add("chat, streamed")
        client.chat.completions.create(
            model=model, tools=_TOOLS, tool_choice="required", max_tokens=200,
            messages=[{"role": "user", "content": "What does deepseek-chat cost?"}])
        sent.add("chat with tools")
    for route in _ROUTES:
        _routed(client, route, sent)
    # a vendor failure: the cheapest candidate of cheap-chat answers 429 once, and the
    # route falls over to the next candidate (the client sees one answer)
    first = _routed(client, "cheap-chat", sent, record=False)
    if first is not None:
        vendor, model = first
        _fault(sandbox_url, vendor, model)
        _routed(client, "cheap-chat", sent)
    # the other client APIs kanjia speaks, on a Chinese vendor (translated for it)
    client.responses.create(model="deepseek/deepseek-chat", max_output_tokens=80,
                            instructions="Be brief.", input=_PROMPTS[1])
    sent.add("OpenAI Responses API (/v1/responses)")
    _messages(client, "qwen/qwen-plus", _PROMPTS[2])
    sent.add("Anthropic Messages API (/v1/messages)")
    for model in _EMBEDDINGS:
        try:
            client.embeddings.create(model=model, input=["价格战", "price war", "谁会受益"])
            sent.add("embeddings")
        except Exception as exc:  # one missing model must not end the demo
            click.echo(f"  embeddings {model}: {exc}", err=True)


def _routed(client: Any, route: str, sent: Sent, *,
            record: bool = True) -> tuple[str, str] | None:
    """One request to ``route``; the vendor and model it went to."""
    raw = client.chat.completions.with_raw_response.create(
        model=route, max_tokens=100, messages=[{"role": "user", "content": _PROMPTS[0]}])
    raw.parse()
    sent.add(f"chat via a route ({route})")
    vendor, model = raw.headers.get("x-kanjia-vendor"), raw.headers.get("x-kanjia-model")
    if record:
        sent.routed.append(dict(raw.headers))
    return (vendor, model) if vendor and model else None


def _messages(client: Any, model: str, prompt: str) -> None:
    """One Anthropic Messages API call, as the anthropic SDK sends it (plain HTTP: the
    demo needs only the openai SDK)."""
    import json
    import urllib.request

    body = {"model": model, "max_tokens": 80, "system": "Be brief.",
            "messages": [{"role": "user", "content": prompt}]}
    req = urllib.request.Request(str(client.base_url).rstrip("/") + "/messages",
                                 method="POST", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json",
                                          "x-api-key": client.api_key,
                                          "anthropic-version": "2023-06-01"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        reply = json.loads(resp.read())
    if reply.get("type") != "message":
        raise click.ClickException(f"/v1/messages answered {reply!r}")


def _fault(sandbox_url: str, vendor: str, model: str) -> None:
    import json
    import urllib.request

    rule = {"vendor": vendor, "model": model, "fault": "rate_limit", "count": 1}
    req = urllib.request.Request(f"{sandbox_url}/_sandbox/faults", method="POST",
                                 data=json.dumps(rule).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        resp.read()


def _ledger_path(database: str | None) -> str:
    if database:
        return database
    folder = Path(tempfile.mkdtemp(prefix="kanjia-demo-"))
    return str(folder / "ledger.db")


@click.command()
@click.option("--db", "database", default=None, metavar="PATH",
              help="Write the ledger here (SQLite path or postgresql:// URL); "
                   "default: a new file in a temporary folder, printed at the start.")
@click.option("--ui", is_flag=True,
              help="Keep the gateway and the sandbox running afterwards and print the "
                   "dashboard's address with a sign-in key, until Ctrl-C.")
def demo(database: str | None, ui: bool) -> None:
    """Run a sample workload against the vendor sandbox.

    A mixed workload goes through the gateway to the local vendor sandbox."""
    import openai

    from kanjia.sandbox import SandboxSettings, SandboxThread
    from kanjia.server import ServerThread
    from kanjia.server.run import make_app

    ledger = _ledger_path(database)
    records: list[CallRecord] = []
    sent = Sent()
    t0 = time.perf_counter()
    settings_env: dict[str, str] = {}
    with SandboxThread(SandboxSettings(port=0)) as sandbox:
        settings = load_settings(None, sandbox_url=sandbox.url, database=ledger)
        if ui:
            settings_env[settings.server.master_key_env] = secrets.token_urlsafe(24)
        with _env(settings_env):
            app = make_app(settings)
        app.services.gateway.sinks.append(records.append)
        with ServerThread(app) as gateway:
            click.echo(f"sandbox {sandbox.url}  gateway {gateway.url}/v1")
            click.echo(f"ledger  {ledger}")
            with openai.OpenAI(base_url=gateway.url + "/v1", api_key="demo",
                               max_retries=0) as client:
                _workload(client, sandbox.url, sent)
            elapsed = time.perf_counter() - t0
            if ui:
                print_summary(records, sent, app, ledger, elapsed, None)
                key = settings_env[settings.server.master_key_env]
                click.echo(f"\ndashboard: {gateway.url}/ui?key={key}")
                click.echo("the gateway and the sandbox keep running; Ctrl-C stops both.")
                _wait_for_interrupt()
                click.echo("stopping.")
                return
        # the gateway has stopped (its ledger flushed): close the loop, the ledger
        # against the sandbox's own usage export
        from kanjia.cli._sandbox_reconcile import reconcile_with_sandbox

        check = reconcile_with_sandbox(sandbox.url, ledger, records,
                                       app.services.catalog.fx.convert)
    print_summary(records, sent, app, ledger, elapsed, _report_db(ledger))
    click.echo(f"\nreconcile: {check}")
    click.echo("nothing left running.")


def _report_db(ledger: str) -> str:
    """The --db argument a later command needs to read this ledger."""
    return ledger if ledger.startswith(("postgresql://", "postgres://")) else \
        os.path.abspath(ledger)


class _env:
    """Set environment variables for the duration of a block."""

    def __init__(self, values: dict[str, str]) -> None:
        self._values = values
        self._saved: dict[str, str | None] = {}

    def __enter__(self) -> None:
        for k, v in self._values.items():
            self._saved[k] = os.environ.get(k)
            os.environ[k] = v

    def __exit__(self, *exc: object) -> None:
        for k, v in self._saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _wait_for_interrupt() -> None:
    stop = threading.Event()
    previous = signal.signal(signal.SIGINT, lambda *_: stop.set())
    term = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    finally:
        signal.signal(signal.SIGINT, previous)
        signal.signal(signal.SIGTERM, term)
