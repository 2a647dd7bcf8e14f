"""The HTTP surface: bad input gets a 4xx OpenAI-style error, never a 500."""

from __future__ import annotations

import http.client
import json
from typing import Any
from urllib.parse import urlparse

import openai
import pytest

from kanjia.server import ServerThread


def _request(gw: ServerThread, method: str, path: str, body: bytes | None = None,
             headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    u = urlparse(gw.url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=20)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def _error(data: bytes) -> dict[str, Any]:
    body = json.loads(data)
    assert set(body["error"]) >= {"message", "type", "code"}
    return dict(body["error"])


@pytest.mark.parametrize(("body", "status", "code"), [
    (b"{not json", 400, "invalid_request"),
    (b"", 400, "invalid_request"),
    (b"[1, 2]", 400, "invalid_request"),
    (b'{"model": "deepseek/deepseek-chat"}', 400, "invalid_request"),
    (b'{"model": "deepseek/deepseek-chat", "messages": []}', 400, "invalid_request"),
    (b'{"model": 5, "messages": [{"role": "user", "content": "x"}]}', 400, "invalid_request"),
    (b'{"model": "x", "messages": [{"role": "wizard", "content": "x"}]}', 400, "invalid_request"),
    (b'{"model": "deepseek/deepseek-chat", "messages": [{"role": "user", "content": "x"}],'
     b' "max_tokens": "lots"}', 400, "invalid_request"),
    (b'{"model": "deepseek/deepseek-chat", "messages": [{"role": "user", "content": "x"}],'
     b' "temperature": "hot"}', 400, "invalid_request"),
    (b'{"model": "nobody/none", "messages": [{"role": "user", "content": "x"}]}', 404,
     "model_not_found"),
    (b'{"model": "no-such-model", "messages": [{"role": "user", "content": "x"}]}', 404,
     "model_not_found"),
    (b'\xff\xfe{"model": 1}', 400, "invalid_request"),
    (b"[" * 5000 + b"]" * 5000, 400, "invalid_request"),
])
def test_bad_chat_requests(gateway: ServerThread, body: bytes, status: int, code: str) -> None:
    got, _, data = _request(gateway, "POST", "/v1/chat/completions", body,
                            {"Content-Type": "application/json"})
    assert got == status, data
    assert _error(data)["code"] == code


def test_oversized_body_is_413(gateway: ServerThread) -> None:
    limit = gateway.app.services.settings.server.max_body_bytes
    body = json.dumps({"model": "deepseek/deepseek-chat",
                       "messages": [{"role": "user", "content": "x" * (limit + 10)}]}).encode()
    got, _, data = _request(gateway, "POST", "/v1/chat/completions", body)
    assert got == 413
    assert _error(data)["code"] == "payload_too_large"


def test_header_injection_in_model_name(gateway: ServerThread) -> None:
    body = json.dumps({"model": "deepseek/x\r\nx-evil: 1",
                       "messages": [{"role": "user", "content": "x"}]}).encode()
    got, headers, _ = _request(gateway, "POST", "/v1/chat/completions", body)
    assert got == 400
    assert "x-evil" not in headers


def test_bad_embeddings(gateway: ServerThread) -> None:
    got, _, _ = _request(gateway, "POST", "/v1/embeddings",
                            b'{"model": "openai/text-embedding-3-small", "input": 5}')
    assert got == 400


def test_unknown_endpoint_is_404(gateway: ServerThread) -> None:
    got, _, data = _request(gateway, "GET", "/v1/nothing")
    assert got == 404
    _error(data)


def test_models_lists_vendors_and_routes(client: openai.OpenAI) -> None:
    ids = {m.id: m for m in client.models.list()}
    assert "deepseek/deepseek-chat" in ids
    assert "cheap-chat" in ids
    vendors = {getattr(m, "vendor", None) for m in ids.values()}
    assert {"deepseek", "qwen", "anthropic", "gemini"} <= vendors


def test_healthz_and_metrics(gateway: ServerThread, client: openai.OpenAI) -> None:
    client.chat.completions.create(model="deepseek/deepseek-chat",
                                   messages=[{"role": "user", "content": "hi"}])
    status, _, data = _request(gateway, "GET", "/healthz")
    assert status == 200 and json.loads(data)["status"] == "ok"
    status, _, data = _request(gateway, "GET", "/metrics")
    assert status == 200
    text = data.decode()
    for name in ("kanjia_requests_total", "kanjia_request_latency_seconds_bucket",
                 "kanjia_tokens_total", "kanjia_cost_total", "kanjia_errors_total"):
        assert name in text
    assert "sandbox-key" not in text


def test_openapi_document(gateway: ServerThread) -> None:
    status, _, data = _request(gateway, "GET", "/openapi.json")
    assert status == 200
    assert "/v1/chat/completions" in json.loads(data)["paths"]


def test_answers_carry_their_length_not_chunks(gateway: ServerThread) -> None:
    body = json.dumps({"model": "deepseek/deepseek-chat", "max_tokens": 5,
                       "messages": [{"role": "user", "content": "hi"}]}).encode()
    for method, path, data in [("POST", "/v1/chat/completions", body),
                               ("POST", "/v1/chat/completions", b"{not json"),
                               ("GET", "/v1/models", None)]:
        status, headers, got = _request(gateway, method, path, data,
                                        {"Content-Type": "application/json"})
        assert headers.get("content-length") == str(len(got)), (path, status)
        assert "transfer-encoding" not in headers


def test_a_missing_key_error_says_how_to_send_one() -> None:
    import asyncio

    from kanjia.access import OpenAccess
    from kanjia.errors import AuthFailed

    with pytest.raises(AuthFailed) as info:
        asyncio.run(OpenAccess("master", require_key=True).authenticate(None, "m"))
    message = info.value.body()["error"]["message"]
    assert "***" not in message and "Authorization header" in message
