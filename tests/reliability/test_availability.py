"""Availability against hostile clients (issue 17, F10/F11/F16/F18): slow connections
are timed out and shed before they starve real traffic; client-chosen model names do not
grow the Prometheus registry; a dashboard window to the year 9999 and a 30 MB upstream
body are handled off the event loop."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kanjia.ledger.record import CallRecord
from kanjia.routing.health import HealthBoard
from kanjia.server.metrics import OTHER, Metrics

from ._util import Gw, chat, gateway, raw_socket, read_http_response, request

OPENAI = "openai/gpt-4o-mini"


# -- F10: read timeouts and the connection cap ---------------------------------------------
@pytest.fixture()
def guarded(sb: str) -> Iterator[Gw]:
    with gateway(sb, server={"header_timeout_s": 0.5, "body_timeout_s": 0.5,
                             "max_connections": 150}) as g:
        yield g


def _slow(url: str, n: int, body: bool) -> list[socket.socket]:
    out = []
    for _ in range(n):
        s = raw_socket(url, timeout=5)
        if body:
            s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                      b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{")
        else:
            s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHo")
        out.append(s)
    return out


def test_slow_headers_get_408_and_are_closed(guarded: Gw) -> None:
    s = _slow(guarded.url, 1, body=False)[0]
    t0 = time.monotonic()
    reply = read_http_response(s)  # returns when the gateway answers and closes
    assert reply.startswith(b"HTTP/1.1 408"), reply[:100]
    assert s.recv(10) == b""  # closed
    assert time.monotonic() - t0 < 3
    s.close()


def test_slow_body_gets_a_408_in_the_api_shape_and_is_closed(guarded: Gw) -> None:
    s = _slow(guarded.url, 1, body=True)[0]
    reply = read_http_response(s)
    assert reply.startswith(b"HTTP/1.1 408"), reply[:200]
    head, _, body = reply.partition(b"\r\n\r\n")
    assert b"connection: close" in head.lower()
    assert json.loads(body)["error"]["code"] == "request_timeout"
    assert s.recv(10) == b""
    s.close()


def test_endless_headers_are_refused(guarded: Gw) -> None:
    """The header timeout bounds time; a size cap bounds what a client can pile up in it."""
    s = raw_socket(guarded.url)
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    try:
        for i in range(200):
            s.sendall(b"x-filler-%d: %s\r\n" % (i, b"a" * 1000))
    except OSError:
        pass  # closed under our feet: refused
    reply = read_http_response(s)
    assert reply.startswith(b"HTTP/1.1 400"), reply[:100]
    s.close()
    assert chat(guarded.url, "still here").status == 200


def test_slow_connections_do_not_starve_real_traffic(guarded: Gw) -> None:
    """400 slow-header and 400 slow-body connections against a cap of 150: the slowest
    are shed, and every real request meanwhile is answered promptly."""
    assert chat(guarded.url, "warm").status == 200
    socks: list[socket.socket] = []
    try:
        for _ in range(4):
            socks += _slow(guarded.url, 100, body=False) + _slow(guarded.url, 100, body=True)
        lat = []
        for i in range(40):
            r = chat(guarded.url, f"real {i}", timeout=10)
            assert r.status == 200, r.body[:200]
            lat.append(r.seconds)
            socks += _slow(guarded.url, 5, body=bool(i % 2))  # the attack goes on
        lat.sort()
        assert lat[int(len(lat) * 0.99) - 1] < 1.0, lat
    finally:
        for s in socks:
            s.close()


# -- F11: bounded metric labels -------------------------------------------------------------
def _rec(model: str) -> CallRecord:
    return CallRecord(request_id="r", ts=0.0, endpoint="chat", route=None,
                      requested_model=f"deepseek/{model}", vendor="deepseek", model=model,
                      input_tokens=3, output_tokens=2)


def test_unknown_model_names_do_not_grow_the_metrics() -> None:
    m = Metrics(HealthBoard(), known_models=[("deepseek", "deepseek-chat")])
    m.observe(_rec("deepseek-chat"), 0.001)
    small = len(m.render())
    for i in range(20_000):
        m.observe(_rec(f"probe-{i}"), 0.001)
    text = m.render()
    assert len(text) < small * 2, len(text)
    assert b"probe-" not in text
    assert f'model="{OTHER}"'.encode() in text and b'model="deepseek-chat"' in text


def test_without_a_known_list_labels_are_capped() -> None:
    m = Metrics(HealthBoard(), max_models=10)
    for i in range(1000):
        m.observe(_rec(f"probe-{i}"), None)
    assert m.render().count(b"kanjia_requests_total{") == 11  # 10 names and "other"


def test_pass_through_model_names_are_counted_as_other(gw: Gw) -> None:
    for i in range(30):
        r = chat(gw.url, "hi", model=f"deepseek/probe-{i}")
        assert r.status == 200, r.body[:200]
    assert chat(gw.url, "hi").status == 200
    text = request(gw.url, "GET", "/metrics").body
    assert b"probe-" not in text
    assert b'model="other"' in text and b'model="deepseek-chat"' in text
    models = request(gw.url, "GET", "/v1/models").json()["data"]
    assert not any("probe-" in m["id"] for m in models)  # nor remembered as targets


# -- F16 / F18: heavy work off the event loop ----------------------------------------------
class _Probe:
    """Pings /healthz back to back in a thread; the worst latency seen."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.worst = 0.0
        self.count = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            t = time.monotonic()
            request(self.url, "GET", "/healthz", timeout=30)
            self.worst = max(self.worst, time.monotonic() - t)
            self.count += 1

    def __enter__(self) -> _Probe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)


@pytest.fixture()
def patient(sb: str) -> Iterator[Gw]:
    with gateway(sb, server={"upstream_timeout_s": 60.0, "first_byte_timeout_s": 60.0}) as g:
        yield g


def test_large_upstream_body_is_parsed_off_the_loop(patient: Gw,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """F18: a ~30 MB embeddings reply is parsed in a worker thread (small ones inline)."""
    gw = patient
    target = gw.app.services.directory.resolve("openai/text-embedding-3-small")
    threads: list[str] = []
    real = type(target.adapter).parse_embeddings

    def spy(self: Any, data: bytes, model: str) -> Any:
        threads.append(threading.current_thread().name)
        return real(self, data, model)

    monkeypatch.setattr(type(target.adapter), "parse_embeddings", spy)
    small = request(gw.url, "POST", "/v1/embeddings",
                    {"model": "openai/text-embedding-3-small", "input": "x"})
    assert small.status == 200
    with _Probe(gw.url) as probe:
        big = request(gw.url, "POST", "/v1/embeddings", {
            "model": "openai/text-embedding-3-small",
            "input": [f"text number {i}" for i in range(1000)]}, timeout=60)
    assert big.status == 200 and len(big.body) > 10 << 20, len(big.body)
    assert len(big.json()["data"]) == 1000
    assert threads[0] == "kanjia-gateway" and threads[1] != "kanjia-gateway", threads
    assert probe.count > 0


def test_dashboard_window_to_year_9999_is_clamped_and_off_the_loop(sb: str, tmp_path: Path
                                                                   ) -> None:
    """F16: ``until=9999-12-31`` over a ledger of 20k rows answers, with the window
    clamped to end tomorrow, while /healthz keeps answering."""
    import asyncio

    from kanjia.ledger.store import migrate, open_database

    database = str(tmp_path / "ledger.db")

    async def fill() -> None:
        from kanjia.ledger._rows import COLUMNS, KEY, TABLE, row_of

        db = open_database(database)
        await db.connect()
        await migrate(db)
        now = time.time()
        rows = [row_of(CallRecord(request_id=f"r{i}", ts=now - i * 60, endpoint="chat",
                                  route=None, requested_model="deepseek/deepseek-chat",
                                  vendor="deepseek", model="deepseek-chat", input_tokens=10,
                                  output_tokens=5)) for i in range(20_000)]
        await db.insert_ignore(TABLE, COLUMNS, KEY, rows)
        await db.close()

    asyncio.run(fill())
    master = "dash-master"
    from kanjia.config import load_settings
    from kanjia.server import ServerThread, build_app

    settings = load_settings(None, sandbox_url=sb, database=database)
    app = build_app(settings, env={"KANJIA_MASTER_KEY": master,
                                   "KANJIA_JOURNAL_DIR": str(tmp_path / "journal")})
    with ServerThread(app) as srv:
        auth = {"Authorization": f"Bearer {master}"}
        with _Probe(srv.url) as probe:
            t0 = time.monotonic()
            r = request(srv.url, "GET", "/ui/data.json?since=2020-01-01&until=9999-12-31",
                        headers=auth, timeout=120)
            took = time.monotonic() - t0
        assert r.status == 200, r.body[:300]
        meta = r.json()["meta"]
        assert meta["until"] < "2100-01-01", meta
        assert r.json()["kpis"]["requests"] == 20_000
        assert probe.count > 0
        assert probe.worst < max(0.5, took / 3), (probe.worst, took)


# -- F8: a stream's record exists before its final frame ---------------------------------
def test_stream_record_is_written_before_the_final_frame(gw: Gw) -> None:
    """Even when the usage estimate must first load a tokenizer (a cold one: hundreds of
    ms), the record reaches the sinks (the journal) before ``data: [DONE]`` is sent: once
    a client has the whole stream, its record exists."""
    for i in range(3):
        assert not gw.app.services.gateway.counter.ready("openai", "gpt-4o-mini") or i
        n = len(gw.records)
        r = chat(gw.url, f"no usage [[sandbox:no_usage]] {i}", model=OPENAI, stream=True)
        assert r.status == 200 and r.body.rstrip().endswith(b"data: [DONE]")
        assert len(gw.records) == n + 1  # no waiting: it is there already
        rec = gw.records[-1]
        assert rec.stream and rec.usage_estimated and rec.status == 200
        assert rec.request_id == r.headers["x-kanjia-request-id"]
