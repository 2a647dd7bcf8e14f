"""Real traffic for the dashboard: the ``kanjia demo`` workload through a gateway with a
ledger, then keys with budgets, fallbacks forced by sandbox faults, a disabled
deployment, failed requests and a model name written as markup."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kanjia.cli._demo_summary import Sent
from kanjia.cli.demo import _workload
from kanjia.config import load_settings
from kanjia.sandbox import SandboxSettings, SandboxThread
from kanjia.server import KanjiaApp, ServerThread, build_app

MASTER = "test-dashboard-master-key-3f9a"
#: deepseek first, then qwen, then zhipu: faults on deepseek make it fall back
FALLBACK_ROUTE = {"models": ["deepseek/deepseek-chat", "qwen/qwen-plus", "zhipu/glm-4-flash"],
                  "objective": "ordered"}
#: a model name that would run script if the page ever parsed ledger text as HTML (no
#: whitespace: model ids may hold none; "/" separates HTML attributes as well)
HOSTILE_MODEL = "deepseek/<img/src=x/onerror=\"document.title='pwned'\">"


@dataclass
class Served:
    url: str
    database: str
    app: KanjiaApp
    sandbox_url: str


def http(method: str, url: str, body: Any = None, headers: dict[str, str] | None = None,
         form: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """One request without following redirects: (status, headers, body)."""
    data, hdrs = None, dict(headers or {})
    if form is not None:
        from urllib.parse import urlencode

        data = urlencode(form).encode()
        hdrs["content-type"] = "application/x-www-form-urlencoded"
    elif body is not None:
        data = json.dumps(body).encode()
        hdrs["content-type"] = "application/json"

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    req = urllib.request.Request(url, data=data, headers=hdrs, method=method)
    try:
        with opener.open(req, timeout=20) as resp:
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read()


def _admin(url: str, method: str, path: str, body: Any = None) -> Any:
    status, _, raw = http(method, url + path, body, {"Authorization": f"Bearer {MASTER}"})
    assert status in (200, 201), raw
    return json.loads(raw)


def _chat(url: str, key: str, model: str, text: str = "hello", tokens: int = 40) -> int:
    body = {"model": model, "max_tokens": tokens,
            "messages": [{"role": "user", "content": f"{text} [[sandbox:tokens={tokens}]]"}]}
    status, _, _ = http("POST", url + "/v1/chat/completions", body,
                        {"Authorization": f"Bearer {key}"})
    return status


def _fault(sandbox_url: str, rule: dict[str, Any]) -> None:
    status, _, raw = http("POST", sandbox_url + "/_sandbox/faults", rule)
    assert status == 200, raw


def fill(served: Served) -> None:
    import openai

    url = served.url
    with openai.OpenAI(base_url=url + "/v1", api_key="demo", max_retries=0) as client:
        _workload(client, served.sandbox_url, Sent())
    # keys with budgets (from now on every request needs a key: the master key is one)
    team = _admin(url, "POST", "/admin/keys", {"name": "team-a", "tenant": "acme",
                                              "budget": ["0.02CNY/day", "1CNY/month"]})
    bot = _admin(url, "POST", "/admin/keys", {"name": "bot", "budget": "0.5USD/total"})
    for model in ("deepseek/deepseek-chat", "qwen/qwen-plus", "openai/gpt-4o-mini"):
        assert _chat(url, team["key"], model, tokens=300) == 200
    assert _chat(url, bot["key"], "anthropic/claude-3-5-haiku-20241022", tokens=200) == 200
    # fallbacks: deepseek fails three times, the route moves on to qwen
    _fault(served.sandbox_url, {"vendor": "deepseek", "fault": "server_error", "count": 3})
    for _ in range(3):
        assert _chat(url, team["key"], "fallback-chat") == 200
    assert _chat(url, team["key"], "fallback-chat") == 200  # deepseek again
    # a vendor out of balance: the request fails and its deployment is taken out
    _fault(served.sandbox_url, {"vendor": "moonshot", "fault": "balance", "count": 1})
    assert _chat(url, MASTER, "moonshot/moonshot-v1-8k") == 402
    assert _chat(url, MASTER, "deepseek/deepseek-chat",
                 text="[[sandbox:fault=overloaded]]") >= 500
    _chat(url, MASTER, HOSTILE_MODEL)


@contextmanager
def served_gateway(root: Path, database: str | None = None) -> Iterator[Served]:
    """Sandbox + gateway with a ledger (SQLite in ``root`` unless ``database``) and the
    master key, filled with traffic."""
    database = database or str(root / "ledger.db")
    with SandboxThread(SandboxSettings(port=0)) as sandbox:
        settings = load_settings(None, sandbox_url=sandbox.url, database=database,
                                 batch_queue=str(root / "queue.db"),
                                 routes={"fallback-chat": FALLBACK_ROUTE},
                                 server={"upstream_timeout_s": 5.0,
                                         "first_byte_timeout_s": 5.0})
        app = build_app(settings, env={"KANJIA_MASTER_KEY": MASTER,
                                       "KANJIA_JOURNAL_DIR": str(root / "journal"),
                                       "KANJIA_LEDGER_FLUSH_S": "0.05"})
        with ServerThread(app) as srv:
            served = Served(srv.url, database, app, sandbox.url)
            fill(served)
            yield served
