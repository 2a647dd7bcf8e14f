"""``kanjia serve`` loads one tokenizer at start-up, the estimating one (o200k); a vendor
that reports usage never needs another, and an exact family's first estimate loads only
that family's."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

from kanjia.config import load_settings
from kanjia.sandbox import SandboxThread
from kanjia.server import ServerThread
from kanjia.server.run import make_app


def _chat(url: str, model: str, prompt: str) -> tuple[dict[str, str], dict[str, Any]]:
    """(response headers, body) of one chat request."""
    body = {"model": model, "max_tokens": 8, "messages": [{"role": "user", "content": prompt}]}
    request = urllib.request.Request(f"{url}/v1/chat/completions",
                                     data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as reply:
        return {k.lower(): v for k, v in reply.headers.items()}, json.load(reply)


def test_tokenizers_load_on_first_need_per_family(sandbox: SandboxThread) -> None:
    app = make_app(load_settings(None, sandbox_url=sandbox.url))
    counter = app.services.gateway.counter
    targets = [(t.vendor, t.model) for t in app.services.directory.targets]
    exact = [(v, m) for v, m in targets if counter.family(v, m).encoding != "o200k_base"]
    assert ("deepseek", "deepseek-chat") in exact and ("qwen", "qwen-max") in exact
    assert not any(counter.ready(v, m) for v, m in targets)       # built: none loaded
    with ServerThread(app) as srv:
        # started: the estimating tokenizer only (Claude, Gemini, GLM, ... and gpt-4o)
        assert counter.ready("anthropic", "claude-3-5-haiku-20241022")
        assert counter.ready("openai", "gpt-4o-mini")
        assert not any(counter.ready(v, m) for v, m in exact)

        headers, _ = _chat(srv.url, "deepseek/deepseek-chat", "hi")
        assert "x-kanjia-usage" not in headers
        assert not any(counter.ready(v, m) for v, m in exact)     # usage came from the vendor

        headers, _ = _chat(srv.url, "deepseek/deepseek-chat", "hi [[sandbox:no_usage]]")
        assert headers["x-kanjia-usage"] == "estimated"
        assert counter.ready("deepseek", "deepseek-chat")        # its family, loaded once
        assert not counter.ready("qwen", "qwen-max")             # and no other
