"""The real thing: SmolLM2-135M on llama.cpp's llama-server, through a kanjia gateway.

Slow (KANJIA_SLOW=1) and needs the kanjia[local] extra; skipped otherwise.
"""

from __future__ import annotations

from pathlib import Path

import openai
import pytest

from kanjia.config import load_settings
from kanjia.errors import LocalNotInstalled
from kanjia.local import MODEL_ALIAS, ServerOptions, find_paths, measure, start_server
from kanjia.server import ServerThread, build_app


def _extra_missing() -> str:
    try:
        find_paths()
    except LocalNotInstalled as exc:
        return exc.message
    return ""


_MISSING = _extra_missing()


@pytest.mark.slow
@pytest.mark.skipif(bool(_MISSING), reason=f"the kanjia[local] extra is absent: {_MISSING}")
def test_real_chat_through_kanjia_and_measured_speed(tmp_path: Path) -> None:
    # what `kanjia breakeven --measure` calls: its own server, started and stopped
    m = measure(seconds=10)
    print(f"\nmeasured {m.key}: {m.tokens_per_second:.1f} tokens/s generated, prompt "
          f"{m.prompt_tokens_per_second or 0:.1f} tokens/s ({m.requests} requests, "
          f"{m.completion_tokens} tokens, {m.source})")
    assert m.model == MODEL_ALIAS and m.source == "server-timings"
    assert m.tokens_per_second > 5 and m.completion_tokens > 0

    with start_server(ServerOptions(port=0), log=tmp_path / "llama-server.log") as server:
        server.wait_ready(120)
        settings = load_settings(
            None, vendors={"llamacpp": {"base_url": server.base_url}},
            routes={"local-chat": {"models": [f"llamacpp/{MODEL_ALIAS}"]}},
            server={"upstream_timeout_s": 60.0})
        with ServerThread(build_app(settings, env={})) as gateway, \
                openai.OpenAI(base_url=gateway.url + "/v1", api_key="local",
                              max_retries=0, timeout=60) as client:
            raw = client.chat.completions.with_raw_response.create(
                model=f"llamacpp/{MODEL_ALIAS}", max_tokens=48,
                messages=[{"role": "user", "content": "What is the capital of France?"}])
            reply = raw.parse()
            assert raw.headers["x-kanjia-vendor"] == "llamacpp"
            assert raw.headers["x-kanjia-model"] == MODEL_ALIAS
            assert raw.headers["x-kanjia-cost"].startswith("0 ")
            text = reply.choices[0].message.content
            assert text and text.strip()
            usage = reply.usage
            assert usage is not None and usage.prompt_tokens > 5
            assert 0 < usage.completion_tokens <= 48
            assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
            print(f"reply: {text.strip()[:120]!r} usage {usage.prompt_tokens}+"
                  f"{usage.completion_tokens}")

            # the same model through a config route, streamed
            stream = client.chat.completions.with_raw_response.create(
                model="local-chat", max_tokens=32, stream=True,
                stream_options={"include_usage": True},
                messages=[{"role": "user", "content": "Name three colours."}])
            assert stream.headers["x-kanjia-vendor"] == "llamacpp"
            assert stream.headers["x-kanjia-route"] == "local-chat"
            chunks = list(stream.parse())
            streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
            final = [c.usage for c in chunks if c.usage is not None]
            assert streamed.strip() and final and final[-1].completion_tokens > 0
