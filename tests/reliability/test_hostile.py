"""Hostile clients: oversized bodies, deep nesting, invalid UTF-8, slow-loris uploads,
header injection through model names, malformed content parts, and many streams
abandoned mid-way. The gateway answers with clear 4xx errors (never a 500 or a dropped
connection), keeps serving everyone else, and its tasks and memory stay bounded."""

from __future__ import annotations

import json
import socket
import time
from typing import Any

import pytest

from ._util import (
    Concurrently,
    Gw,
    chat,
    raw_socket,
    read_http_response,
    request,
)

OPENAI = "openai/gpt-4o-mini"
NATIVE = ["openai/gpt-4o-mini", "anthropic/claude-3-haiku-20240307", "gemini/gemini-2.0-flash"]


def _post(gw: Gw, body: bytes | dict[str, Any], path: str = "/v1/chat/completions",
          **kw: Any) -> Any:
    return request(gw.url, "POST", path, body, **kw)


# -- size and shape ---------------------------------------------------------------------
def test_oversized_body_with_content_length_is_refused_early(gw: Gw) -> None:
    limit = gw.app.services.settings.server.max_body_bytes
    s = raw_socket(gw.url)
    try:
        # announce a body over the limit but send none of it: the answer must not wait
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                  b"Content-Type: application/json\r\n"
                  b"Content-Length: " + str(limit + 1).encode() + b"\r\n\r\n")
        s.settimeout(5)
        raw = read_http_response(s)
    finally:
        s.close()
    assert raw.startswith(b"HTTP/1.1 413"), raw[:200]
    assert b"payload_too_large" in raw


def test_oversized_chunked_body_is_refused(gw: Gw) -> None:
    limit = gw.app.services.settings.server.max_body_bytes
    s = raw_socket(gw.url)
    chunk = b"x" * 65536
    try:
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                  b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
        sent = 0
        try:
            while sent <= limit + len(chunk):
                s.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed: fine
        s.settimeout(5)
        raw = read_http_response(s)
    finally:
        s.close()
    assert raw.startswith(b"HTTP/1.1 413"), raw[:200]


@pytest.mark.parametrize("depth", [2000, 100_000])
def test_deeply_nested_json_body_is_400(gw: Gw, depth: int) -> None:
    r = _post(gw, b'{"model": "' + OPENAI.encode() + b'", "messages": ' + b"[" * depth
              + b"]" * depth + b"}")
    assert r.status == 400 and r.error["code"] == "invalid_request"


def test_deeply_nested_content_is_a_client_error(gw: Gw) -> None:
    d = 600
    nest = "[" * d + "]" * d
    body = f'{{"model": "{OPENAI}", "messages": [{{"role": "user", "content": {nest}}}]}}'
    body_bytes = body.encode()
    r = _post(gw, body_bytes)
    assert r.status == 400, r.body[:200]


@pytest.mark.parametrize("body", [
    b'{"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "\xff\xfe"}]}',
    b'{"model": "openai/gpt-4o-\xc3", "messages": [{"role": "user", "content": "hi"}]}',
    b'{"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "\xed\xa0\x80"}]}',
    b"\xef\xbb\xbf\xff",
])
def test_invalid_utf8_is_400(gw: Gw, body: bytes) -> None:
    r = _post(gw, body)
    assert r.status == 400 and r.error["code"] == "invalid_request"


def test_non_ascii_header_bytes_do_not_break_the_gateway(gw: Gw) -> None:
    s = raw_socket(gw.url)
    body = json.dumps({"model": OPENAI, "messages": [{"role": "user", "content": "hi"}]}).encode()
    try:
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                  b"Authorization: Bearer \xff\xfe\x80\r\nContent-Type: application/json\r\n"
                  b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        s.settimeout(5)
        raw = read_http_response(s)
    finally:
        s.close()
    status = int(raw.split(b" ", 2)[1])
    assert status in (200, 400, 401), raw[:300]


# -- header injection --------------------------------------------------------------------
@pytest.mark.parametrize("model", [
    "openai/gpt-4o-mini\r\nX-Evil: 1",
    "openai/gpt-4o-mini\nX-Evil: 1",
    "vllm/evil\r\nX-Evil: 1",
    "vllm/evil\nSet-Cookie: a=b",
    "vllm/evil\x00X-Evil: 1",
])
def test_header_injection_in_model_name_is_refused(gw: Gw, model: str) -> None:
    r = chat(gw.url, "hi", model=model)
    assert r.status == 400, r.body[:200]
    assert "x-evil" not in r.headers and "set-cookie" not in r.headers


@pytest.mark.parametrize("model", ["vllm/a\u2028X-Evil: 2", "vllm/a\x85X-Evil: 3"])
def test_unicode_line_breaks_in_model_name_do_not_split_headers(gw: Gw, model: str) -> None:
    r = chat(gw.url, "hi", model=model)
    assert r.status in (200, 400, 404)
    assert "x-evil" not in r.headers


@pytest.mark.parametrize("model", ["vllm/evil\x0bX-Evil: 1", "openrouter/x\x7fy", "vllm/a\x1bb"])
@pytest.mark.parametrize("stream", [False, True])
def test_control_characters_in_model_name_get_a_clear_error(gw: Gw, model: str,
                                                            stream: bool) -> None:
    try:
        r = chat(gw.url, "hi", model=model, stream=stream)
    except ConnectionError as exc:
        pytest.fail(f"connection dropped without a response: {exc!r}")
    assert r.status == 400, r.body[:200]
    assert r.error["code"] == "invalid_request"
    # nothing was sent upstream, so nothing may be recorded as served
    assert all(rec.status != 200 for rec in gw.records)


def test_no_control_character_reaches_a_response_header() -> None:
    """Defence in depth behind validate._model: whatever a model, vendor, deployment or route
    name holds (a config, a catalog, a vendor), the x-kanjia-* headers carry no C0/DEL/C1."""
    from types import SimpleNamespace

    from kanjia.server.gateway import Gateway

    plan = SimpleNamespace(route="r\x0bx", candidate_keys=["vllm/a\x1bb", "vllm/c"])
    ctx = SimpleNamespace(t0=time.perf_counter(), upstream_s=0.0, rid="kj-1", plan=plan,
                          attempts=["vllm/a\x1bb@d\x7f", "vllm/c@d"])
    target = SimpleNamespace(vendor="vllm\r\n", model="evil\x0bX-Evil: 1\x85")
    headers = Gateway._headers(None, ctx, target, None)  # type: ignore[arg-type]
    assert headers["x-kanjia-model"] == "evil?X-Evil: 1?"
    for value in headers.values():
        assert not any(ord(c) < 0x20 or 0x7f <= ord(c) <= 0x9f for c in value), value


@pytest.mark.parametrize("field", ["metadata", "response_format", "tools"])
def test_deep_nesting_anywhere_in_the_body_is_a_client_error(gw: Gw, field: str) -> None:
    """Past validate.MAX_DEPTH in any field (not only content): a 400, never a 500; a body
    with many brackets but shallow nesting is fine."""
    d = 400
    deep = "[" * d + "]" * d
    value = {"metadata": deep, "response_format": f'{{"type": "text", "x": {deep}}}',
             "tools": f'[{{"type": "function", "function": {{"name": "f", "parameters": '
                      f'{{"x": {deep}}}}}}}]'}[field]
    body = (f'{{"model": "{OPENAI}", "{field}": {value}, '
            f'"messages": [{{"role": "user", "content": "hi"}}]}}')
    r = _post(gw, body.encode())
    assert r.status == 400 and r.error["code"] == "invalid_request", r.body[:200]
    wide = {"model": OPENAI, "metadata": {"k": [[i] for i in range(300)]},
            "messages": [{"role": "user", "content": "hi"}]}
    assert _post(gw, wide).status == 200


# -- malformed content parts ----------------------------------------------------------------
@pytest.mark.parametrize(("model", "parts"), [
    *((m, [{"type": "text", "text": 5}]) for m in NATIVE),
    *((m, [{"type": "text", "text": {"nested": "object"}}]) for m in NATIVE),
    # OpenAI-compatible vendors get the parts as they are: only the translating adapters
    *((m, [{"type": "image_url", "image_url": 5}]) for m in NATIVE[1:]),
    *((m, [{"type": "image_url", "image_url": {"url": 7}}]) for m in NATIVE[1:]),
])
def test_malformed_content_parts_are_client_errors(gw: Gw, model: str,
                                                   parts: list[Any]) -> None:
    r = _post(gw, {"model": model, "messages": [{"role": "user", "content": parts}]})
    assert r.status < 500, r.body[:200]
    if r.status != 200:
        assert r.error["code"] == "invalid_request"


_ASSISTANT = {"role": "assistant", "content": "ok"}


@pytest.mark.parametrize("model", NATIVE)
@pytest.mark.parametrize(("label", "messages", "extra"), [
    ("non-object part", [{"role": "user", "content": [5]}], {}),
    ("non-string part type", [{"role": "user", "content": [{"type": 5, "text": "x"}]}], {}),
    ("non-string text in another part", [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "https://x/y.png"}, "text": [1]}]}], {}),
    ("tool_calls not an array", [{**_ASSISTANT, "tool_calls": 5}], {}),
    ("tool call not an object", [{**_ASSISTANT, "tool_calls": [5]}], {}),
    ("tool call function not an object", [{**_ASSISTANT, "tool_calls": [
        {"id": "c1", "type": "function", "function": "f"}]}], {}),
    ("tool call id not a string", [{**_ASSISTANT, "tool_calls": [
        {"id": [1], "type": "function", "function": {"name": "f", "arguments": "{}"}}]}], {}),
    ("tool_call_id not a string", [{"role": "tool", "tool_call_id": [1], "content": "r"}], {}),
    ("name not a string", [{"role": "user", "name": {"a": 1}, "content": "hi"}], {}),
    ("tool_choice function not an object", [{"role": "user", "content": "hi"}],
     {"tools": [{"type": "function", "function": {"name": "f"}}],
      "tool_choice": {"type": "function", "function": "f"}}),
])
def test_malformed_messages_are_400(gw: Gw, model: str, label: str,
                                    messages: list[Any], extra: dict[str, Any]) -> None:
    r = _post(gw, {"model": model, "messages": messages, **extra})
    assert r.status == 400, (label, r.body[:200])
    assert r.error["code"] == "invalid_request"


@pytest.mark.parametrize("model", NATIVE[1:])
def test_image_url_as_a_bare_string_is_accepted(gw: Gw, model: str) -> None:
    """Some clients send ``"image_url": "https://..."``: the translating adapters take it."""
    parts = [{"type": "text", "text": "what is this?"},
             {"type": "image_url", "image_url": "https://example.com/cat.png"}]
    r = _post(gw, {"model": model, "messages": [{"role": "user", "content": parts}]})
    assert r.status == 200, r.body[:200]


# -- slow-loris uploads ---------------------------------------------------------------------
def test_slow_loris_uploads_do_not_block_others(gw: Gw) -> None:
    """30 connections trickle their bodies a byte at a time; meanwhile everyone else is
    served at once; when the slow clients give up, their tasks go away."""
    base = gw.tasks()
    body = json.dumps({"model": OPENAI, "messages": [{"role": "user", "content": "hi"}]}).encode()
    socks: list[socket.socket] = []
    for _ in range(30):
        s = raw_socket(gw.url)
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                  b"Content-Type: application/json\r\n"
                  b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n")
        socks.append(s)
    try:
        t_end = time.monotonic() + 2.0
        i = 0
        fast: list[float] = []
        while time.monotonic() < t_end:
            for s in socks:
                s.sendall(body[i:i + 1])
            i += 1
            r = chat(gw.url, "quick")
            assert r.status == 200
            fast.append(r.seconds)
        assert len(fast) >= 5
        assert sorted(fast)[len(fast) // 2] < 0.25, fast
        # a slow client that finishes is answered properly
        socks[0].sendall(body[i:])
        socks[0].settimeout(5)
        assert read_http_response(socks[0]).startswith(b"HTTP/1.1 200")
    finally:
        for s in socks:
            s.close()
    assert gw.settle(base) <= base


def test_slow_headers_do_not_block_others(gw: Gw) -> None:
    socks = []
    for _ in range(30):
        s = raw_socket(gw.url)
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHo")
        socks.append(s)
    try:
        for _ in range(5):
            r = chat(gw.url, "quick")
            assert r.status == 200 and r.seconds < 0.5
    finally:
        for s in socks:
            s.close()


# -- abandoned streams -------------------------------------------------------------------
def _open_stream(url: str, n_tokens: int = 400, chunk_ms: int = 20) -> socket.socket:
    body = json.dumps({
        "model": OPENAI, "stream": True, "stream_options": {"include_usage": True},
        "messages": [{"role": "user", "content":
                      f"long story [[sandbox:tokens={n_tokens}]] [[sandbox:chunk_ms={chunk_ms}]]"}],
    }).encode()
    s = raw_socket(url)
    s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
              b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    s.settimeout(10)
    first = s.recv(65536)
    assert first.startswith(b"HTTP/1.1 200"), first[:200]
    return s


def test_many_abandoned_streams_are_cleaned_up(gw: Gw) -> None:
    """150 streams of ~8 s each are opened, read once, and dropped by the client. The
    gateway notices, stops reading upstream, records them as disconnected, its tasks go
    back to the baseline, and it keeps answering meanwhile (memory: test_memory.py)."""
    for _ in range(3):  # warm the pools and allocator
        chat(gw.url, "warm")
        chat(gw.url, "warm", stream=True)
    base_tasks = gw.tasks()
    n_before = len(gw.records)
    n = 150
    socks = Concurrently(lambda i: _open_stream(gw.url), n).run(30).results
    assert len(socks) == n
    r = chat(gw.url, "still there?")
    assert r.status == 200 and r.seconds < 1.0
    for s in socks:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.close()  # RST: the rudest way to leave
    assert gw.settle(base_tasks, timeout=8) <= base_tasks
    recs = gw.wait_records(n_before + n + 1, timeout=8)[n_before:]
    dropped = [x for x in recs if x.stream]
    assert len(dropped) == n
    assert all(x.client_disconnected for x in dropped)
    # far less than the ~8 s each stream would have taken
    assert max(x.latency_ms for x in dropped) < 6000
    h = request(gw.url, "GET", "/healthz")
    assert h.status == 200 and h.seconds < 1.0
