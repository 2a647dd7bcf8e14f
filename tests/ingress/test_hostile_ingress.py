"""The Messages, count_tokens and Responses surfaces as a hostile client and a broken vendor
see them: wrong types, odd numbers and names, bodies at the size limit, injected headers,
keys in both directions, streams cut short and answers that are not what they claim. Every
case gets the API's own error shape (Anthropic's on /v1/messages*, OpenAI's on
/v1/responses), never a 500, never a secret; requests made upstream are in the ledger."""

from __future__ import annotations

import http.client
import json
import socket
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlparse

import anthropic
import openai
import pytest

from kanjia.config import load_settings
from kanjia.sandbox import SandboxThread
from kanjia.server import ServerThread
from kanjia.vendors import UpstreamRequest

from .conftest import Ledger, Sent, spied_gateway, sse_events

HAIKU = "anthropic/claude-3-5-haiku-20241022"
GPT = "openai/gpt-4o-mini"
DEEPSEEK = "deepseek/deepseek-chat"
CLIENT_KEY = "sk-ant-client-0123456789abcdefSECRET"
HI = [{"role": "user", "content": "hi [[sandbox:tokens=3]]"}]


def _gateway(url: str, ledger: Ledger, **server: Any
             ) -> AbstractContextManager[tuple[ServerThread, Sent]]:
    settings = load_settings(None, sandbox_url=url, server={
        "upstream_timeout_s": 2.0, "first_byte_timeout_s": 2.0, **server})
    return spied_gateway(settings, sinks=[ledger.append])


@pytest.fixture(scope="module")
def hostile(sandbox: SandboxThread, ledger: Ledger) -> Iterator[tuple[ServerThread, Sent]]:
    with _gateway(sandbox.url, ledger) as gw:
        yield gw


@pytest.fixture()
def fresh(sandbox: SandboxThread, ledger: Ledger) -> Iterator[tuple[ServerThread, Sent]]:
    """A gateway of its own, for a case whose vendor faults open circuits."""
    with _gateway(sandbox.url, ledger) as gw:
        yield gw


def _post(url: str, path: str, body: Any, headers: dict[str, str] | None = None
          ) -> tuple[int, dict[str, str], bytes]:
    u = urlparse(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=20)
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    try:
        conn.request("POST", path, body=data, headers={
            "x-api-key": CLIENT_KEY, "content-type": "application/json", **(headers or {})})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def _anthropic_error(status: int, data: bytes, expected: int = 400,
                     kind: str = "invalid_request_error") -> str:
    body = json.loads(data)
    assert status == expected, data
    assert body["type"] == "error" and body["error"]["type"] == kind, body
    return str(body["error"]["message"])


def _openai_error(status: int, data: bytes, expected: int = 400) -> str:
    body = json.loads(data)
    assert status == expected, data
    assert set(body) == {"error"} and body["error"]["type"] == "invalid_request_error", body
    return str(body["error"]["message"])


def _raw(model: str, field: str, value: str, base: str) -> bytes:
    """A body with ``field`` set to ``value`` as raw JSON text (NaN, 1e400, ...)."""
    return (base % model.encode()).replace(b"@", f'"{field}":{value},'.encode())


MESSAGES = b'{"model":"%s",@"max_tokens":5,"messages":[{"role":"user","content":"hi"}]}'
RESPONSES = b'{"model":"%s",@"input":"hi"}'

#: (field, raw JSON value, what the error names) a Messages request must refuse
BAD_MESSAGES = [
    ("max_tokens", "-1", "max_tokens"), ("max_tokens", "1.5", "max_tokens"),
    ("max_tokens", '"10"', "max_tokens"), ("max_tokens", "true", "max_tokens"),
    ("max_tokens", "123456789012345678901234567890", "max_tokens"),
    ("max_tokens", "2000000", "max_tokens"), ("max_tokens", "NaN", "JSON"),
    ("temperature", "Infinity", "JSON"), ("temperature", "1e400", "JSON"),
    ("temperature", '"hot"', "temperature"),
    ("speed", "5", "speed"), ("speed", '["fast"]', "speed"), ("speed", '"turbo"', "speed"),
    ("speed", '{"fast":true}', "speed"), ("thinking", '"on"', "thinking"),
    ("thinking", '{"type":"enabled","budget_tokens":-5}', "budget_tokens"),
    ("stream", '"yes"', "stream"), ("tools", '"x"', "tools"),
    ("tool_choice", '{"type":"tool"}', "tool_choice.name"),
    ("stop_sequences", "5", "stop_sequences"), ("system", "5", "system"),
    ("metadata", '"x"', "metadata"), ("cache_control", '"x"', "cache_control"),
    ("max_tokens", "0.0", "max_tokens"),  # not the integer 0 of cache warming
    ("thinking", '"on","output_config":{"effort":"high"}', "thinking"),  # checked with effort
    ("output_config", '{"effort":"ultra"}', "output_config.effort"),
]


@pytest.mark.parametrize("model", [HAIKU, DEEPSEEK])
@pytest.mark.parametrize(("field", "value", "named"), BAD_MESSAGES)
def test_messages_refuse_bad_fields_in_anthropics_shape(
        hostile: tuple[ServerThread, Sent], model: str, field: str, value: str,
        named: str) -> None:
    srv, sent = hostile
    before = len(sent)
    body = _raw(model, field, value, MESSAGES)
    if field == "max_tokens":  # replace the valid one rather than add a second
        body = body.replace(b',"max_tokens":5', b"")
    status, _, data = _post(srv.url, "/v1/messages", body)
    assert named in _anthropic_error(status, data)
    assert sent.since(before) == []  # refused before any vendor was called


BAD_MODELS = ["anthropic/../x", "anthropic/claude?x=1", "anthropic/claude#f",
              "anthropic/claude%2F", "anthropic/claude\r\nx-evil: 1", "anthropic/claude\x00",
              "a" * 300, "", 5, None]


@pytest.mark.parametrize("model", BAD_MODELS)
@pytest.mark.parametrize("path", ["/v1/messages", "/v1/messages/count_tokens",
                                  "/v1/responses"])
def test_bad_model_names_are_a_400_on_every_surface(
        hostile: tuple[ServerThread, Sent], model: Any, path: str) -> None:
    srv, sent = hostile
    before = len(sent)
    body: dict[str, Any] = {"model": model, "max_tokens": 5, "messages": HI}
    if path == "/v1/messages/count_tokens":
        body.pop("max_tokens")
    elif path == "/v1/responses":
        body = {"model": model, "input": "hi"}
    status, _, data = _post(srv.url, path, body)
    message = _openai_error(status, data) if path == "/v1/responses" \
        else _anthropic_error(status, data)
    assert "model" in message
    assert sent.since(before) == []


#: (field, raw JSON value, what the error names) a Responses request must refuse
BAD_RESPONSES = [
    ("max_output_tokens", "0", "max_output_tokens"),
    ("max_output_tokens", "-3", "max_output_tokens"),
    ("max_output_tokens", "2.5", "max_output_tokens"),
    ("max_output_tokens", '"5"', "max_output_tokens"),
    ("max_output_tokens", "2000000", "max_output_tokens"),
    ("max_output_tokens", "123456789012345678901234567890", "max_output_tokens"),
    ("temperature", "NaN", "JSON"), ("top_p", "-Infinity", "JSON"),
    ("temperature", "1e999", "JSON"),
    ("service_tier", "5", "service_tier"), ("service_tier", '["priority"]', "service_tier"),
    ("service_tier", '""', "service_tier"),
    ("store", '"yes"', "store"), ("stream", "1", "stream"), ("tools", '"x"', "tools"),
    ("tool_choice", "5", "tool_choice"), ("instructions", "5", "instructions"),
    ("reasoning", '"high"', "reasoning"), ("text", '"x"', "text"),
    ("metadata", "[1]", "metadata"), ("previous_response_id", "5", "previous_response_id"),
    ("input", "5", "input"), ("input", "[5]", "input[0]"),
    ("input", '[{"type":5}]', "input[0].type"),
]


@pytest.mark.parametrize("model", [GPT, DEEPSEEK])
@pytest.mark.parametrize(("field", "value", "named"), BAD_RESPONSES)
def test_responses_refuse_bad_fields_in_openais_shape(
        hostile: tuple[ServerThread, Sent], model: str, field: str, value: str,
        named: str) -> None:
    srv, sent = hostile
    before = len(sent)
    body = _raw(model, field, value, RESPONSES)
    if field == "input":
        body = body.replace(b',"input":"hi"', b"")
    status, _, data = _post(srv.url, "/v1/responses", body)
    message = _openai_error(status, data)
    assert named in message
    assert "max_completion_tokens" not in message and "'max_tokens'" not in message
    assert sent.since(before) == []


@pytest.mark.parametrize("body", [
    b"", b"[1]", b"null", b'"x"', b"\xff\xfe{", b"{" * 5000, b'{"model":1e400}',
    b"[" * 10000 + b"]" * 10000])
@pytest.mark.parametrize("path", ["/v1/messages", "/v1/messages/count_tokens",
                                  "/v1/responses"])
def test_bodies_that_are_not_requests(hostile: tuple[ServerThread, Sent], body: bytes,
                                      path: str) -> None:
    srv, _ = hostile
    status, _, data = _post(srv.url, path, body)
    if path == "/v1/responses":
        _openai_error(status, data)
    else:
        _anthropic_error(status, data)


@pytest.mark.parametrize("body", [
    {"model": HAIKU, "messages": "x"}, {"model": HAIKU, "messages": []},
    {"model": HAIKU, "messages": HI, "tools": [5]},
    {"model": HAIKU, "messages": HI, "system": 5},
    {"model": HAIKU, "messages": HI, "speed": 5},
    {"model": HAIKU, "messages": HI, "thinking": "on"},
    {"model": DEEPSEEK, "messages": HI, "mcp_servers": [{"type": "url", "url": "https://x",
                                                        "name": "x"}]},
    {"model": DEEPSEEK, "messages": [{"role": "user", "content": [
        {"type": "image", "source": {"type": "file", "file_id": "file_1"}}]}]}])
def test_count_tokens_refuses_what_messages_refuses(hostile: tuple[ServerThread, Sent],
                                                    body: dict[str, Any]) -> None:
    srv, sent = hostile
    before = len(sent)
    status, _, data = _post(srv.url, "/v1/messages/count_tokens", body)
    _anthropic_error(status, data)
    assert sent.since(before) == []


# -- sizes ---------------------------------------------------------------------------

LIMIT = 64 * 1024


@pytest.fixture(scope="module")
def small(sandbox: SandboxThread, ledger: Ledger) -> Iterator[ServerThread]:
    with _gateway(sandbox.url, ledger, max_body_bytes=LIMIT) as (srv, _):
        yield srv


def _sized(body: dict[str, Any], put: Any, size: int) -> bytes:
    put(body, "")
    pad = size - len(json.dumps(body).encode())
    put(body, "x" * pad)
    data = json.dumps(body).encode()
    assert len(data) == size
    return data


@pytest.mark.parametrize("model", [HAIKU, DEEPSEEK])
def test_bodies_at_the_size_limit(small: ServerThread, model: str, ledger: Ledger) -> None:
    """Exactly the limit is served; one byte more is a 413 in each API's shape."""
    def in_message(b: dict[str, Any], pad: str) -> None:
        b["messages"][0]["content"] = "hi [[sandbox:tokens=2]] " + pad

    def in_input(b: dict[str, Any], pad: str) -> None:
        b["input"] = "hi [[sandbox:tokens=2]] " + pad

    for size in (LIMIT, LIMIT + 1):
        message = _sized({"model": model, "max_tokens": 5, "messages": [
            {"role": "user", "content": ""}]}, in_message, size)
        count = _sized({"model": model, "messages": [{"role": "user", "content": ""}]},
                       in_message, size)
        response = _sized({"model": GPT if model == HAIKU else model, "input": ""},
                          in_input, size)
        results = [_post(small.url, "/v1/messages", message),
                   _post(small.url, "/v1/messages/count_tokens", count),
                   _post(small.url, "/v1/responses", response)]
        for (status, headers, data), path in zip(results, ["m", "c", "r"], strict=True):
            if size == LIMIT:
                assert status == 200, data
                if path != "c":
                    assert ledger.wait(headers["x-kanjia-request-id"]).status == 200
            elif path == "r":
                _openai_error(status, data, 413)
            else:
                _anthropic_error(status, data, 413, "request_too_large")


# -- headers and keys ----------------------------------------------------------------

def _raw_request(url: str, path: str, body: bytes, extra: bytes) -> bytes:
    u = urlparse(url)
    assert u.hostname is not None and u.port is not None
    with socket.create_connection((u.hostname, u.port), timeout=20) as s:
        s.sendall(b"POST " + path.encode() + b" HTTP/1.1\r\nhost: x\r\n"
                  b"content-type: application/json\r\nx-api-key: " + CLIENT_KEY.encode()
                  + b"\r\n" + extra + b"content-length: %d\r\nconnection: close\r\n\r\n"
                  % len(body) + body)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    return out


@pytest.mark.parametrize("path", ["/v1/messages", "/v1/messages/count_tokens"])
def test_injected_headers_never_reach_anthropic(hostile: tuple[ServerThread, Sent],
                                                path: str) -> None:
    """A CRLF inside anthropic-beta is a header line of its own: it is not the client's
    to send on (only anthropic-version and anthropic-beta go), and a bare CR or NUL is a
    400 with nothing sent upstream."""
    srv, sent = hostile
    body: dict[str, Any] = {"model": HAIKU, "messages": HI}
    if path == "/v1/messages":
        body["max_tokens"] = 5
    data = json.dumps(body).encode()
    before = len(sent)
    out = _raw_request(srv.url, path, data, b"anthropic-beta: a\r\nx-evil: 1\r\n"
                       b"anthropic-workspace-id: wrk\r\nauthorization: Bearer client\r\n")
    assert out.startswith(b"HTTP/1.1 200"), out[:300]
    (call,) = sent.since(before)
    names = {k.lower(): v for k, v in call.headers.items()}
    assert "x-evil" not in names and "anthropic-workspace-id" not in names
    assert names["anthropic-beta"] == "a"
    assert CLIENT_KEY not in json.dumps(names) and "Bearer client" not in json.dumps(names)
    for bad in (b"anthropic-beta: a\rx-evil: 1\r\n", b"anthropic-version: 2023\x00\r\n"):
        before = len(sent)
        out = _raw_request(srv.url, path, data, bad)
        assert out.startswith(b"HTTP/1.1 400"), out[:300]
        assert sent.since(before) == []


def test_the_clients_key_never_reaches_a_vendor(hostile: tuple[ServerThread, Sent]) -> None:
    """Through both SDKs, native and translated, plain and streamed, and count_tokens:
    no upstream request carries the client's key in a header or its body."""
    srv, sent = hostile
    before = len(sent)
    with anthropic.Anthropic(base_url=srv.url, api_key=CLIENT_KEY, max_retries=0,
                             timeout=20) as claude, \
            openai.OpenAI(base_url=srv.url + "/v1", api_key=CLIENT_KEY, max_retries=0,
                          timeout=20) as oai:
        for model in (HAIKU, DEEPSEEK):
            claude.messages.create(model=model, max_tokens=5, messages=HI)  # type: ignore[arg-type]
            with claude.messages.stream(model=model, max_tokens=5,
                                        messages=HI) as stream:  # type: ignore[arg-type]
                stream.get_final_message()
            claude.messages.count_tokens(model=model, messages=HI)  # type: ignore[arg-type]
        for model in (GPT, DEEPSEEK):
            oai.responses.create(model=model, input="hi [[sandbox:tokens=3]]", store=False)
            with oai.responses.stream(model=model, input="hi [[sandbox:tokens=3]]",
                                      store=False) as events:
                events.get_final_response()
    calls = sent.since(before)
    assert len(calls) >= 9  # every call but the DeepSeek count reached a vendor
    for call in calls:
        assert CLIENT_KEY not in json.dumps(call.headers), call.url
        assert CLIENT_KEY.encode() not in call.body, call.url


def _vendor_key(call: UpstreamRequest) -> str:
    headers = {k.lower(): v for k, v in call.headers.items()}
    key = headers.get("x-api-key") or headers.get("authorization", "")[7:]
    assert key
    return key


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("path", ["/v1/messages", "/v1/responses"])
def test_a_vendor_quoting_its_key_is_never_relayed(hostile: tuple[ServerThread, Sent],
                                                   ledger: Ledger, stream: bool,
                                                   path: str) -> None:
    """The vendor's refusal quotes the key it was called with (``echo_key``): the client
    gets the refusal in its API's shape without the key, and the call is in the ledger."""
    srv, sent = hostile
    prompt = "hi [[sandbox:echo_key]] [[sandbox:fault=context_too_long]]"
    body: dict[str, Any] = {"model": HAIKU, "max_tokens": 5, "stream": stream,
                            "messages": [{"role": "user", "content": prompt}]}
    if path == "/v1/responses":
        body = {"model": GPT, "input": prompt, "stream": stream}
    before = len(sent)
    status, headers, data = _post(srv.url, path, body)
    (call,) = sent.since(before)
    key = _vendor_key(call)
    assert key not in data.decode() and key not in json.dumps(headers)
    message = _openai_error(status, data) if path == "/v1/responses" \
        else _anthropic_error(status, data)
    assert "API key provided" in message  # the vendor did quote it
    rec = ledger.wait(headers["x-kanjia-request-id"])
    assert rec.status == 400 and rec.endpoint == path.rsplit("/", 1)[-1]


# -- streams cut short, answers that are not answers ---------------------------------

@pytest.mark.parametrize("fault", ["truncate", "reset", "malformed"])
@pytest.mark.parametrize("path", ["/v1/messages", "/v1/responses"])
def test_a_cut_native_stream_is_an_error_and_a_failed_record(
        fresh: tuple[ServerThread, Sent], ledger: Ledger, fault: str, path: str) -> None:
    srv, _ = fresh
    prompt = f"x [[sandbox:fault={fault}]] [[sandbox:tokens=30]]"
    body: dict[str, Any] = {"model": HAIKU, "max_tokens": 100, "stream": True,
                            "messages": [{"role": "user", "content": prompt}]}
    if path == "/v1/responses":
        body = {"model": GPT, "input": prompt, "stream": True}
    status, headers, data = _post(srv.url, path, body)
    if status != 200:  # broken before its first event: an error in the API's shape
        assert status == 502, data
        if path == "/v1/messages":
            _anthropic_error(status, data, 502, "api_error")
        else:
            assert json.loads(data)["error"]["type"] == "api_error", data
    else:
        names = [n for n, _ in sse_events(data)]
        assert "error" in names, data[-400:]
        if path == "/v1/messages":
            assert "message_stop" not in names
        else:
            assert names[-1] == "response.failed" and "response.completed" not in names
    rec = ledger.wait(headers["x-kanjia-request-id"])
    assert rec.stream and rec.status >= 500  # a broken stream is never a success


@pytest.mark.parametrize("fault", ["truncate", "malformed"])
@pytest.mark.parametrize("path", ["/v1/messages", "/v1/responses"])
def test_a_broken_native_answer_is_a_502_in_shape(fresh: tuple[ServerThread, Sent],
                                                  ledger: Ledger, fault: str,
                                                  path: str) -> None:
    srv, _ = fresh
    prompt = f"x [[sandbox:fault={fault}]]"
    body: dict[str, Any] = {"model": HAIKU, "max_tokens": 100,
                            "messages": [{"role": "user", "content": prompt}]}
    if path == "/v1/responses":
        body = {"model": GPT, "input": prompt}
    status, headers, data = _post(srv.url, path, body)
    if path == "/v1/responses":
        assert status == 502 and json.loads(data)["error"]["type"] == "api_error", data
    else:
        _anthropic_error(status, data, 502, "api_error")
    assert ledger.wait(headers["x-kanjia-request-id"]).status == 502


class _Fake(BaseHTTPRequestHandler):
    """An Anthropic that answers ``mode=<name>`` (in the request body) as named."""

    stolen: list[dict[str, str]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        key = self.headers.get("x-api-key", "")
        if self.path.startswith("/stolen"):
            self.stolen.append(dict(self.headers))
        mode = body.split(b"mode=", 1)[-1].split(b"]", 1)[0].decode() \
            if b"mode=" in body else "ok"
        status, ctype, out = {
            "html200": (200, "text/html", b"<html>maintenance</html>"),
            "str": (200, "application/json", b'{"input_tokens":"5"}'),
            "neg": (200, "application/json", b'{"input_tokens":-1}'),
            "float": (200, "application/json", b'{"input_tokens":1.5}'),
            "bool": (200, "application/json", b'{"input_tokens":true}'),
            "huge": (200, "application/json", b'{"input_tokens":123456789012345678901234}'),
            "list": (200, "application/json", b"[7]"),
            "empty": (200, "application/json", b""),
            "html500": (500, "text/html", b"<html>bad gateway</html>"),
            "count": (200, "application/json", b'{"input_tokens":3}'),
            "text400": (400, "text/plain", f"bad request, key {key}".encode()),
            "json400": (400, "application/json", json.dumps({
                "type": "error", "error": {"type": "invalid_request_error",
                                           "message": f"bad field (key {key})"}}).encode()),
            "json404": (404, "application/json", json.dumps({
                "type": "error", "error": {"type": "not_found_error",
                                           "message": f"model: no such model ({key})"}}).encode()),
        }.get(mode, (200, "application/json", b'{"input_tokens":3}'))
        if mode == "redirect" and not self.path.startswith("/stolen"):
            self.send_response(307)
            self.send_header("location", f"http://127.0.0.1:{self.server.server_address[1]}"
                                         "/stolen")
            self.send_header("content-length", "0")
            self.end_headers()
            return
        if mode == "close":
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.send_response(status)
        self.send_header("content-type", ctype)
        self.send_header("content-length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def fake_vendor() -> Iterator[tuple[str, list[dict[str, str]]]]:
    """The fake Anthropic's URL, and the headers of every request that reached /stolen."""
    stolen: list[dict[str, str]] = []
    handler = type("Fake", (_Fake,), {"stolen": stolen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", stolen
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def fake(fake_vendor: tuple[str, list[dict[str, str]]], ledger: Ledger
         ) -> Iterator[tuple[ServerThread, Sent, list[dict[str, str]]]]:
    """A gateway in front of the fake (counts open no circuit: one for the module)."""
    with _gateway(fake_vendor[0], ledger) as (srv, sent):
        yield srv, sent, fake_vendor[1]


@pytest.fixture()
def fake_fresh(fake_vendor: tuple[str, list[dict[str, str]]], ledger: Ledger
               ) -> Iterator[tuple[ServerThread, Sent, list[dict[str, str]]]]:
    """A gateway of its own in front of the fake (its failures open circuits)."""
    with _gateway(fake_vendor[0], ledger) as (srv, sent):
        yield srv, sent, fake_vendor[1]


def _count(url: str, mode: str) -> tuple[int, dict[str, str], bytes]:
    return _post(url, "/v1/messages/count_tokens", {"model": HAIKU, "messages": [
        {"role": "user", "content": f"count me [mode={mode}]"}]})


@pytest.mark.parametrize("mode", ["html200", "str", "neg", "float", "bool", "huge", "list",
                                  "empty", "html500", "close", "redirect"])
def test_garbage_from_anthropics_count_falls_back_to_the_estimate(
        fake: tuple[ServerThread, Sent, list[dict[str, str]]], mode: str) -> None:
    srv, sent, stolen = fake
    before = len(sent)
    status, headers, data = _count(srv.url, mode)
    assert status == 200, data
    assert headers["x-kanjia-estimate"] == "true"
    assert json.loads(data)["input_tokens"] > 0
    assert len(sent.since(before)) == 1  # Anthropic was asked, once
    assert stolen == []  # a redirect is never followed with the vendor's key


@pytest.mark.parametrize(("mode", "status", "kind"), [
    ("text400", 400, "invalid_request_error"), ("json400", 400, "invalid_request_error"),
    ("json404", 400, "invalid_request_error")])  # as a message's vendor 404 is relayed
def test_anthropics_count_refusal_is_relayed_without_its_key(
        fake: tuple[ServerThread, Sent, list[dict[str, str]]], mode: str, status: int,
        kind: str) -> None:
    srv, sent, _ = fake
    before = len(sent)
    got, headers, data = _count(srv.url, mode)
    (call,) = sent.since(before)
    key = _vendor_key(call)
    _anthropic_error(got, data, status, kind)
    assert key not in data.decode() and key not in json.dumps(headers)


@pytest.mark.parametrize("mode", ["count", "redirect", "list", "html200"])
def test_a_messages_answer_that_is_not_a_message_is_a_502(
        fake_fresh: tuple[ServerThread, Sent, list[dict[str, str]]], ledger: Ledger,
        mode: str) -> None:
    """A 200 that is not an Anthropic message (a count, a list, HTML; a redirect, not
    followed) is the vendor's failure: an Anthropic-shaped 502 and a failed record, never a
    success billed on an estimate."""
    srv, _, stolen = fake_fresh
    status, headers, data = _post(srv.url, "/v1/messages", {
        "model": HAIKU, "max_tokens": 5,
        "messages": [{"role": "user", "content": f"hi [mode={mode}]"}]})
    _anthropic_error(status, data, 502, "api_error")
    assert ledger.wait(headers["x-kanjia-request-id"]).status == 502
    assert stolen == []


# -- what the key may use --------------------------------------------------------------

MASTER = "hostile-master-key"


@pytest.fixture(scope="module")
def keyed(sandbox: SandboxThread, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[tuple[ServerThread, Sent]]:
    root = tmp_path_factory.mktemp("hostile")
    settings = load_settings(None, sandbox_url=sandbox.url, database=str(root / "ledger.db"),
                             server={"require_keys": True})
    env = {"KANJIA_MASTER_KEY": MASTER, "KANJIA_JOURNAL_DIR": str(root / "journal")}
    with spied_gateway(settings, env=env) as gw:
        yield gw


def test_count_tokens_only_for_a_model_the_key_may_use(keyed: tuple[ServerThread, Sent]
                                                       ) -> None:
    """A key limited to DeepSeek gets Anthropic's 403 for a count on Claude (as for a
    message), and kanjia does not call Anthropic's count with its own key for it."""
    srv, sent = keyed
    status, _, data = _post(srv.url, "/admin/keys", {"name": "ds", "models": [DEEPSEEK]},
                            {"authorization": f"Bearer {MASTER}"})
    assert status == 201, data
    key = json.loads(data)["key"]
    before = len(sent)
    for path in ("/v1/messages/count_tokens", "/v1/messages"):
        body: dict[str, Any] = {"model": HAIKU, "messages": HI}
        if path == "/v1/messages":
            body["max_tokens"] = 5
        status, _, data = _post(srv.url, path, body, {"x-api-key": key})
        assert "may not use" in _anthropic_error(status, data, 403, "permission_error")
    assert sent.since(before) == []
    status, headers, data = _post(srv.url, "/v1/messages/count_tokens",
                                  {"model": DEEPSEEK, "messages": HI}, {"x-api-key": key})
    assert status == 200 and headers["x-kanjia-estimate"] == "true"


# -- what kanjia does not send is named ----------------------------------------------

@pytest.mark.parametrize("model", [HAIKU, DEEPSEEK])
def test_speed_fast_is_named_when_dropped(hostile: tuple[ServerThread, Sent],
                                          model: str) -> None:
    """``speed: "fast"`` is not sent (no price for it): the answer, plain and streamed,
    says so in x-kanjia-dropped-fields; ``standard`` goes as it came, unnamed."""
    srv, sent = hostile
    with anthropic.Anthropic(base_url=srv.url, api_key=CLIENT_KEY, max_retries=0,
                             timeout=20) as claude:
        before = len(sent)
        raw = claude.messages.with_raw_response.create(
            model=model, max_tokens=5, messages=HI, speed="fast")  # type: ignore[arg-type]
        assert raw.headers["x-kanjia-dropped-fields"] == "speed"
        assert raw.parse().content
        with claude.messages.with_streaming_response.create(
                model=model, max_tokens=5, messages=HI, speed="fast",  # type: ignore[arg-type]
                stream=True) as streamed:
            assert streamed.headers["x-kanjia-dropped-fields"] == "speed"
            assert b"message_stop" in streamed.read()
        for call in sent.since(before):
            assert "speed" not in json.loads(call.body)
        before = len(sent)
        plain = claude.messages.with_raw_response.create(
            model=model, max_tokens=5, messages=HI, speed="standard")  # type: ignore[arg-type]
        assert "x-kanjia-dropped-fields" not in plain.headers
        if model == HAIKU:
            (call,) = sent.since(before)
            assert json.loads(call.body)["speed"] == "standard"
        counted = claude.messages.with_raw_response.count_tokens(
            model=model, messages=HI, speed="fast")  # type: ignore[arg-type]
        assert counted.parse().input_tokens > 0
        if model == HAIKU:  # Anthropic's count, asked without it
            assert counted.headers["x-kanjia-dropped-fields"] == "speed"


@pytest.mark.parametrize("model", [GPT, DEEPSEEK])
def test_a_premium_service_tier_is_named_when_dropped(hostile: tuple[ServerThread, Sent],
                                                      model: str) -> None:
    srv, sent = hostile
    with openai.OpenAI(base_url=srv.url + "/v1", api_key=CLIENT_KEY, max_retries=0,
                       timeout=20) as oai:
        before = len(sent)
        raw = oai.responses.with_raw_response.create(
            model=model, input="hi [[sandbox:tokens=3]]", service_tier="priority")
        assert raw.headers["x-kanjia-dropped-fields"] == "service_tier"
        assert raw.parse().output_text
        with oai.responses.with_streaming_response.create(
                model=model, input="hi [[sandbox:tokens=3]]", service_tier="flex",
                stream=True) as streamed:
            assert streamed.headers["x-kanjia-dropped-fields"] == "service_tier"
            assert b"response.completed" in streamed.read()
        for call in sent.since(before):
            assert "service_tier" not in json.loads(call.body)
        before = len(sent)
        plain = oai.responses.with_raw_response.create(
            model=model, input="hi [[sandbox:tokens=3]]", service_tier="default")
        assert "x-kanjia-dropped-fields" not in plain.headers
        if model == GPT:
            (call,) = sent.since(before)
            assert json.loads(call.body)["service_tier"] == "default"


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("path", ["/v1/messages", "/v1/responses"])
def test_tool_names_cannot_split_the_response(hostile: tuple[ServerThread, Sent],
                                              ledger: Ledger, stream: bool,
                                              path: str) -> None:
    """A dropped tool's name is the client's: with a CRLF (or beyond Latin-1) in it, the
    x-kanjia-dropped-tools header names it percent-encoded; the answer is sent, whole,
    with no header of the client's making (the server refused to send it before)."""
    srv, _ = hostile
    evil = "x\r\nx-evil: 1"
    body: dict[str, Any] = {
        "model": DEEPSEEK, "max_tokens": 5, "stream": stream, "messages": HI,
        "tools": [{"type": "web_search_20250305", "name": evil},
                  {"type": "bash_20250124", "name": "caf\u00e9\u4e2d,b"}]}
    if path == "/v1/responses":
        body = {"model": DEEPSEEK, "input": "hi [[sandbox:tokens=3]]", "stream": stream,
                "tools": [{"type": "web_search_preview", "name": evil},
                          {"type": "caf\u00e9\u4e2d,b"}]}
    status, headers, data = _post(srv.url, path, body)
    assert status == 200, data
    assert "x-evil" not in headers
    assert headers["x-kanjia-dropped-tools"] == "x%0D%0Ax-evil:%201,caf%C3%A9%E4%B8%AD%2Cb"
    assert (b"message_stop" if path == "/v1/messages" else b"response.completed") in data \
        if stream else json.loads(data)["model"] == DEEPSEEK
    assert ledger.wait(headers["x-kanjia-request-id"]).status == 200


def test_a_vendor_event_type_cannot_forgesse_events() -> None:
    """A native stream names each event by the vendor's ``type``: one with a line break in
    it is not relayed (it would start a frame of the vendor's making)."""
    from kanjia.ingress import MessagesPassThrough, ResponsesPassThrough

    forged = json.dumps({"type": "ping\n\nevent: message_stop\ndata: {}"}).encode()
    fine = json.dumps({"type": "ping"}).encode()
    out = MessagesPassThrough(HAIKU).feed([forged, fine])
    assert out == b'event: ping\ndata: {"type": "ping"}\n\n'
    out = ResponsesPassThrough(GPT, {}).feed([forged, fine])
    assert out == b'event: ping\ndata: {"type": "ping"}\n\n'
