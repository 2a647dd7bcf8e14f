"""A gateway in front of the sandbox whose ledger records, and requests upstream, the tests
can read."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import pytest

from kanjia.config import Settings, load_settings
from kanjia.ledger.record import CallRecord
from kanjia.sandbox import SandboxThread
from kanjia.server import ServerThread, build_app
from kanjia.server.gateway import RecordSink
from kanjia.server.upstream import Upstream
from kanjia.vendors import UpstreamRequest


class Ledger:
    """The records the gateway emits, with a wait for one (streams settle after the
    last byte reaches the client)."""

    def __init__(self) -> None:
        self.records: list[CallRecord] = []
        self._cond = threading.Condition()

    def append(self, rec: CallRecord) -> None:
        with self._cond:
            self.records.append(rec)
            self._cond.notify_all()

    def wait(self, request_id: str, timeout: float = 10.0) -> CallRecord:
        """The record of ``request_id``: a whole request id, or the part after its prefix
        (what ``msg_…``/``resp_…`` ids carry)."""
        def found() -> CallRecord | None:
            return next((r for r in self.records if request_id in
                         (r.request_id, r.request_id.split("-", 1)[-1])), None)

        with self._cond:
            self._cond.wait_for(lambda: found() is not None, timeout)
            rec = found()
        assert rec is not None, f"no ledger record for {request_id}"
        return rec


class Sent:
    """Every request the gateway sent upstream."""

    def __init__(self, upstream: Upstream) -> None:
        self.requests: list[UpstreamRequest] = []
        self._lock = threading.Lock()
        send = upstream.send

        async def spy(req: UpstreamRequest, stream: bool) -> Any:
            with self._lock:
                self.requests.append(req)
            return await send(req, stream)

        upstream.send = spy  # type: ignore[method-assign]

    def __len__(self) -> int:
        with self._lock:
            return len(self.requests)

    def since(self, n: int) -> list[UpstreamRequest]:
        with self._lock:
            return self.requests[n:]

    def to(self, url_part: str) -> list[UpstreamRequest]:
        """The requests whose URL has ``url_part`` in it."""
        with self._lock:
            return [r for r in self.requests if url_part in r.url]

    def last(self, url_end: str) -> dict[str, Any]:
        """The body of the latest request whose URL ends with ``url_end``."""
        with self._lock:
            req = next(r for r in reversed(self.requests) if r.url.endswith(url_end))
        body: dict[str, Any] = json.loads(req.body)
        return body


@contextmanager
def spied_gateway(settings: Settings, env: Mapping[str, str] | None = None,
                  sinks: list[RecordSink] | None = None) -> Iterator[tuple[ServerThread, Sent]]:
    """A gateway running on ``settings``, with a spy on what it sends upstream."""
    app = build_app(settings, env=env or {}, sinks=sinks)
    sent = Sent(app.services.gateway.upstream)
    with ServerThread(app) as srv:
        yield srv, sent


def sse_events(data: bytes) -> list[tuple[str, dict[str, Any]]]:
    """The named events of an SSE body, as (event name, parsed data)."""
    out = []
    for frame in data.replace(b"\r\n", b"\n").split(b"\n\n"):
        lines = frame.split(b"\n")
        name = next((ln[7:].decode() for ln in lines if ln.startswith(b"event: ")), None)
        payload = next((ln[6:] for ln in lines if ln.startswith(b"data: ")), None)
        if name and payload:
            out.append((name, json.loads(payload)))
    return out


@pytest.fixture(scope="module")
def ledger() -> Ledger:
    return Ledger()


@pytest.fixture(scope="module")
def gw(sandbox: SandboxThread, ledger: Ledger) -> Iterator[ServerThread]:
    settings = load_settings(None, sandbox_url=sandbox.url,
                             server={"upstream_timeout_s": 2.0, "first_byte_timeout_s": 2.0})
    with ServerThread(build_app(settings, env={}, sinks=[ledger.append])) as srv:
        yield srv
