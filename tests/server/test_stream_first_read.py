"""A vendor stream that arrives in one read: the first chunk goes out before the rest of
that read is translated, and what follows it in the read still decides the outcome (a
whole answer ends on ``[DONE]`` with its cost on the usage chunk; an error behind the first
chunk ends the stream on that error, no ``[DONE]``, and the record is never a success)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from tests.reliability._util import chat, sse

from kanjia.config import load_settings
from kanjia.ledger.record import CallRecord
from kanjia.server import ServerThread, build_app

MODEL = "deepseek/deepseek-chat"


def _chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {"id": "c1", "object": "chat.completion.chunk", "model": "deepseek-chat",
            "usage": None, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


WHOLE = [_chunk({"role": "assistant", "content": ""}), _chunk({"content": "Hello"}),
         _chunk({"content": " there"}), _chunk({}, "stop"),
         {"id": "c1", "object": "chat.completion.chunk", "choices": [],
          "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11}}]
BROKEN = [_chunk({"role": "assistant", "content": ""}), _chunk({"content": "Hel"}),
          {"error": {"message": "the model is overloaded", "type": "server_error",
                     "code": "overloaded"}}]


class _Vendor(BaseHTTPRequestHandler):
    """Answers every POST with ``server.events`` as one SSE body, written at once."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        events: list[dict[str, Any]] = self.server.events  # type: ignore[attr-defined]
        body = b"".join(b"data: %s\n\n" % json.dumps(e).encode() for e in events)
        if events is WHOLE:
            body += b"data: [DONE]\n\n"
        self.wfile.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                         b"content-length: %d\r\n\r\n%s" % (len(body), body))

    def log_message(self, *args: Any) -> None:
        return


@pytest.fixture()
def vendor() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Vendor)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture()
def gateway(vendor: ThreadingHTTPServer) -> Iterator[tuple[str, list[CallRecord]]]:
    url = f"http://127.0.0.1:{vendor.server_address[1]}"
    app = build_app(load_settings(None, sandbox_url=url), env={})
    records: list[CallRecord] = []
    app.services.gateway.sinks.append(records.append)
    with ServerThread(app) as srv:
        yield srv.url, records


def test_a_whole_answer_in_one_read(vendor: ThreadingHTTPServer,
                                    gateway: tuple[str, list[CallRecord]]) -> None:
    vendor.events = WHOLE  # type: ignore[attr-defined]
    url, records = gateway
    reply = chat(url, model=MODEL, stream=True)
    assert reply.status == 200
    events = sse(reply.body)
    assert events[-1] == "[DONE]"
    text = "".join(e["choices"][0]["delta"].get("content") or ""
                   for e in events[:-1] if e.get("choices"))
    assert text == "Hello there"
    usage = [e["usage"] for e in events[:-1] if e.get("usage")]
    assert len(usage) == 1 and usage[0]["cost"] > 0  # the usage chunk, priced once
    assert [(r.status, r.error_class, r.output_tokens) for r in records] == [(200, None, 2)]


def test_an_error_behind_the_first_chunk_in_the_same_read(
        vendor: ThreadingHTTPServer, gateway: tuple[str, list[CallRecord]]) -> None:
    vendor.events = BROKEN  # type: ignore[attr-defined]
    url, records = gateway
    reply = chat(url, model=MODEL, stream=True)
    assert reply.status == 200  # the first chunk had gone out: no failover after it
    events = sse(reply.body)
    assert "[DONE]" not in events
    assert events[-1]["error"]["message"]  # the stream ends on the vendor's error
    assert events[0]["choices"][0]["delta"]["role"] == "assistant"
    assert len(records) == 1 and records[0].status != 200 and records[0].error_class
