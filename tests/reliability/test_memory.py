"""Memory and event-loop stalls, measured on a gateway in its own process (``kanjia serve``)
so that the figures are the gateway's alone."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from kanjia.sandbox import SandboxThread

from ._util import Concurrently, chat, request, stop_process, wait_healthy
from .test_hostile import _open_stream

MB = 1024 * 1024


def _rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture()
def proc_gateway(rel_sandbox: SandboxThread) -> Iterator[tuple[str, int]]:
    port = _free_port()
    p = subprocess.Popen([sys.executable, "-m", "kanjia", "serve", "--sandbox", rel_sandbox.url,
                          "--port", str(port)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         env={**os.environ, "PYTHONUNBUFFERED": "1"})
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, p)
        yield url, p.pid
    finally:
        stop_process(p)


def _fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def _wait_until(ready: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


class _Probe:
    """Health checks in a loop on a thread; each one's latency, and a condition to wait
    for a number of them."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.latencies: list[float] = []
        self.stop = threading.Event()
        self.changed = threading.Condition()
        self.thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        while not self.stop.is_set():
            t = time.monotonic()
            request(self.url, "GET", "/healthz", timeout=10)
            with self.changed:
                self.latencies.append(time.monotonic() - t)
                self.changed.notify_all()
            self.stop.wait(0.01)

    def wait_for(self, n: int, timeout: float = 10.0) -> None:
        """Until ``n`` probes have completed."""
        with self.changed:
            assert self.changed.wait_for(lambda: len(self.latencies) >= n, timeout), \
                f"{len(self.latencies)} of {n} health probes in {timeout} s"


def test_first_usage_estimate_does_not_stall_the_event_loop(
        proc_gateway: tuple[str, int]) -> None:
    url, _ = proc_gateway
    assert chat(url, "warm").status == 200
    probe = _Probe(url)
    probe.thread.start()
    try:
        probe.wait_for(5)  # probing before the request
        r = chat(url, "no usage here [[sandbox:no_usage]]", model="openai/gpt-4o-mini")
        # the reply waited for the estimate, so the tokenizer has loaded; a probe that was
        # in flight meanwhile has finished once two more have
        probe.wait_for(len(probe.latencies) + 2)
    finally:
        probe.stop.set()
        probe.thread.join(10)
    lat = probe.latencies
    assert r.status == 200 and r.headers.get("x-kanjia-usage") == "estimated"
    assert max(lat) < 0.15, f"health probe stalled {max(lat) * 1000:.0f} ms"


def test_abandoned_streams_memory_is_bounded(proc_gateway: tuple[str, int]) -> None:
    """Rounds of 150 streams dropped by their clients: after a first round (tokenizers,
    pools and allocator arenas warm), RSS does not keep growing."""
    url, pid = proc_gateway
    # warm what a dropped stream needs: the estimating tokenizer, connection pools
    chat(url, "warm [[sandbox:no_usage]]", model="openai/gpt-4o-mini")
    after: list[int] = []
    for _ in range(3):
        fds = _fds(pid)
        socks = Concurrently(lambda i: _open_stream(url), 150).run(30).results
        for s in socks:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            s.close()
        # the gateway has let go of the dropped streams: their client and upstream sockets
        _wait_until(lambda fds=fds: _fds(pid) <= fds + 16, 15,  # type: ignore[misc]
                    "the gateway to close dropped streams")
        assert chat(url, "still there?").status == 200
        after.append(_rss(pid))
    growth = after[-1] - after[0]
    assert growth < 10 * MB, [a // MB for a in after]
    assert after[-1] < 400 * MB
