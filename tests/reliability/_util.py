"""Helpers for the reliability suite: in-process gateways over a dedicated sandbox, raw
HTTP with deadlines, SSE parsing, and leak probes (event-loop tasks, file descriptors)."""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from kanjia.config import load_settings
from kanjia.ledger.record import CallRecord
from kanjia.server import KanjiaApp, ServerThread, build_app

#: a route over two vendors: deepseek first, qwen as the fallback
FALLBACK_ROUTE = {"models": ["deepseek/deepseek-chat", "qwen/qwen-plus"], "objective": "ordered"}
MODEL = "deepseek/deepseek-chat"
#: every status a client may legitimately get from the gateway for an upstream failure
UPSTREAM_CODES = {"rate_limit_exceeded", "insufficient_quota", "upstream_auth_failed",
                  "overloaded", "timeout", "bad_gateway", "upstream_error",
                  "no_deployment_available", "stream_truncated"}


@dataclass
class Gw:
    """One running in-process gateway, its call records and its event loop."""

    srv: ServerThread
    app: KanjiaApp
    records: list[CallRecord] = field(default_factory=list)
    loop: asyncio.AbstractEventLoop | None = None

    @property
    def url(self) -> str:
        return self.srv.url

    def tasks(self) -> int:
        """Tasks alive in the gateway's event loop (the server's own included)."""
        assert self.loop is not None

        async def count() -> int:
            return len(asyncio.all_tasks())

        return asyncio.run_coroutine_threadsafe(count(), self.loop).result(5)

    def wait_records(self, n: int, timeout: float = 3.0) -> list[CallRecord]:
        """Records are written when a stream's last byte has gone out: wait for them."""
        deadline = time.monotonic() + timeout
        while len(self.records) < n and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.records

    def settle(self, baseline: int, timeout: float = 5.0) -> int:
        """Wait until the task count is back to ``baseline`` (or timeout); return it."""
        deadline = time.monotonic() + timeout
        n = self.tasks()
        while n > baseline and time.monotonic() < deadline:
            time.sleep(0.05)
            n = self.tasks()
        return n


@contextmanager
def gateway(sandbox_url: str, *, routes: Mapping[str, Any] | None = None,
            server: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None,
            **overrides: Any) -> Iterator[Gw]:
    srv_settings = {"upstream_timeout_s": 1.0, "first_byte_timeout_s": 1.0,
                    "connect_timeout_s": 1.0, **(server or {})}
    settings = load_settings(None, sandbox_url=sandbox_url, server=srv_settings,
                             routes=dict(routes or {}), **overrides)
    records: list[CallRecord] = []
    app = build_app(settings, env=dict(env or {}), sinks=[records.append])
    gw = Gw(ServerThread(app), app, records)

    async def capture_loop() -> None:
        gw.loop = asyncio.get_running_loop()

    app.on_startup.append(capture_loop)
    with gw.srv:
        yield gw


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes
    seconds: float

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def error(self) -> dict[str, Any]:
        err = self.json()["error"]
        assert {"message", "type", "code"} <= set(err), err
        return dict(err)


def request(url: str, method: str, path: str, body: bytes | dict[str, Any] | None = None,
            headers: Mapping[str, str] | None = None, timeout: float = 15.0) -> Reply:
    """One HTTP exchange; raises if it takes longer than ``timeout`` (nothing may hang)."""
    u = urlparse(url)
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    hdrs = {"Content-Type": "application/json", **(headers or {})}
    t0 = time.monotonic()
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    try:
        conn.request(method, path, body=data, headers=hdrs)
        resp = conn.getresponse()
        raw = resp.read()
        return Reply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, raw,
                     time.monotonic() - t0)
    finally:
        conn.close()


def chat(url: str, content: str = "Say hello.", *, model: str = MODEL, stream: bool = False,
         timeout: float = 15.0, **extra: Any) -> Reply:
    body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": content}],
                            "max_tokens": 16, **extra}
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return request(url, "POST", "/v1/chat/completions", body, timeout=timeout)


def sse(raw: bytes) -> list[Any]:
    """The data payloads of an SSE body: parsed JSON, or the string "[DONE]"."""
    out: list[Any] = []
    for block in raw.decode("utf-8").split("\n\n"):
        for line in block.splitlines():
            if line.startswith("data: "):
                data = line[6:]
                out.append(data if data == "[DONE]" else json.loads(data))
    return out


def stream_text(events: list[Any]) -> str:
    return "".join((c.get("delta") or {}).get("content") or ""
                   for e in events if isinstance(e, dict) for c in e.get("choices") or ())


def stream_error(events: list[Any]) -> dict[str, Any] | None:
    for e in events:
        if isinstance(e, dict) and "error" in e:
            return dict(e["error"])
    return None


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def rss_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def set_fault(sandbox_url: str, **rule: Any) -> None:
    r = request(sandbox_url, "POST", "/_sandbox/faults", rule, timeout=5)
    assert r.status == 200, r.body


def clear_faults(sandbox_url: str) -> None:
    request(sandbox_url, "DELETE", "/_sandbox/faults", timeout=5)


def raw_socket(url: str, timeout: float = 10.0) -> socket.socket:
    u = urlparse(url)
    s = socket.create_connection((u.hostname, u.port), timeout=timeout)
    return s


def read_http_response(s: socket.socket, limit: int = 1 << 20) -> bytes:
    """Read until the peer closes or the headers plus a complete small body arrived."""
    buf = b""
    while len(buf) < limit:
        try:
            chunk = s.recv(65536)
        except (TimeoutError, ConnectionResetError):
            break
        if not chunk:
            break
        buf += chunk
        head, sep, rest = buf.partition(b"\r\n\r\n")
        if sep:
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length" and len(rest) >= int(value):
                    return buf
            if b"transfer-encoding: chunked" in head.lower() and rest.endswith(b"0\r\n\r\n"):
                return buf
    return buf


class Concurrently:
    """Run a callable in N threads at once; collect results and exceptions."""

    def __init__(self, fn: Any, n: int) -> None:
        self.results: list[Any] = []
        self.errors: list[BaseException] = []
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(fn, i), daemon=True)
                         for i in range(n)]

    def _run(self, fn: Any, i: int) -> None:
        try:
            r = fn(i)
            with self._lock:
                self.results.append(r)
        except BaseException as exc:  # collected for the test to assert on
            with self._lock:
                self.errors.append(exc)

    def run(self, timeout: float) -> Concurrently:
        for t in self._threads:
            t.start()
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        alive = sum(t.is_alive() for t in self._threads)
        assert alive == 0, f"{alive} calls still running after {timeout} s"
        return self


def wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout: float = 20.0,
                 why: Callable[[], str] = lambda: "gateway did not start") -> None:
    """Wait until a gateway process answers /healthz (fail with ``why()`` if it dies)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if request(url, "GET", "/healthz", timeout=1).status == 200:
                return
        except OSError:
            pass
        assert proc.poll() is None and time.monotonic() < deadline, why()
        time.sleep(0.05)


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """SIGTERM, then SIGKILL if it has not exited within ``timeout`` seconds."""
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
