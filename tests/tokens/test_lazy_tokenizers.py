"""``kanjia serve`` loads no tokenizer at start-up: a vendor that reports usage never needs
one, and the first estimate loads only its own family's."""

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
    assert any(v == "deepseek" for v, _ in targets) and any(v == "qwen" for v, _ in targets)
    with ServerThread(app) as srv:
        assert not any(counter.ready(v, m) for v, m in targets)   # started: none loaded

        headers, _ = _chat(srv.url, "deepseek/deepseek-chat", "hi")
        assert "x-kanjia-usage" not in headers
        assert not any(counter.ready(v, m) for v, m in targets)   # usage came from the vendor

        headers, _ = _chat(srv.url, "deepseek/deepseek-chat", "hi [[sandbox:no_usage]]")
        assert headers["x-kanjia-usage"] == "estimated"
        assert counter.ready("deepseek", "deepseek-chat")        # its family, loaded once
        assert not counter.ready("qwen", "qwen-max")             # and no other
