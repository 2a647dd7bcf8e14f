"""No task or connection leaks: bursts of mixed traffic (answers, streams, every fault,
fallbacks, streams dropped by the client) leave the gateway's event loop with the tasks it
had before, and the process with the file descriptors it had after the first burst."""

from __future__ import annotations

import random
import socket
import time

from ._util import UPSTREAM_CODES, Concurrently, Gw, chat, open_fds, sse, stream_error
from .test_hostile import _open_stream

FAULTS = ["rate_limit", "server_error", "overloaded", "reset", "malformed", "context_too_long",
          "content_filter"]


def _one(url: str, i: int) -> str:
    rnd = random.Random(i)
    kind = rnd.choice(["ok", "ok", "stream", "fault", "stream_fault", "fallback", "drop"])
    if kind == "drop":
        s = _open_stream(url, n_tokens=100, chunk_ms=10)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.close()
        return kind
    fault = rnd.choice(FAULTS)
    content = "hi [[sandbox:tokens=6]]"
    if kind in ("fault", "stream_fault"):
        content += f" [[sandbox:fault={fault}]]"
    # faults go to deepseek (whose breaker they may open); answers to openai; the fallback
    # route goes deepseek -> qwen, so it answers whatever deepseek's breaker says
    model = {"fallback": "fb", "fault": "deepseek/deepseek-chat",
             "stream_fault": "deepseek/deepseek-chat"}.get(kind, "openai/gpt-4o-mini")
    r = chat(url, content, model=model, stream=kind.startswith("stream"), timeout=10)
    if r.status == 200 and kind.startswith("stream"):
        err = stream_error(sse(r.body))
        assert err is None or err["code"] in UPSTREAM_CODES
    elif r.status != 200:
        assert kind in ("fault", "stream_fault"), (kind, r.status, r.body)
        assert r.status in (400, 429, 502, 503, 504)
        assert r.error["code"] in UPSTREAM_CODES | {"context_length_exceeded", "content_filter"}
    return kind


def _burst(gw: Gw, seed: int, n: int = 120, threads: int = 24) -> None:
    todo = list(range(seed, seed + n))
    per = (len(todo) + threads - 1) // threads

    def worker(t: int) -> None:
        for i in todo[t * per:(t + 1) * per]:
            _one(gw.url, i)

    c = Concurrently(worker, threads).run(60)
    assert not c.errors, c.errors[:3]


def _steady_fds(timeout: float = 5.0) -> int:
    """The open descriptors once sockets closing after the tasks have closed: the same count
    on three reads in a row, 50 ms apart."""
    deadline = time.monotonic() + timeout
    reads = [open_fds()]
    while len(reads) < 3 or len(set(reads[-3:])) > 1:
        assert time.monotonic() < deadline, f"open descriptors never settled: {reads[-5:]}"
        time.sleep(0.05)
        reads.append(open_fds())
    return reads[-1]


def test_bursts_leave_no_tasks_or_connections_behind(gw: Gw) -> None:
    base_tasks = gw.tasks()
    _burst(gw, 0)
    assert gw.settle(base_tasks) <= base_tasks
    fds_after_first = _steady_fds()
    for seed in (1000, 2000):
        _burst(gw, seed)
        assert gw.settle(base_tasks) <= base_tasks
    # pooled keep-alive connections may vary a little with the interleaving; leaks grow
    # with every burst (here: 240 more requests), and never come back down
    deadline = time.monotonic() + 5.0
    while open_fds() > fds_after_first + 24 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert open_fds() <= fds_after_first + 24
    # one record per request, and every record settled
    n = 3 * 120
    recs = gw.wait_records(n, timeout=10)
    assert len(recs) == n
    assert all(r.status >= 400 or r.vendor for r in recs)
