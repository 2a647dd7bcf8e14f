"""``kanjia serve --workers N``: N processes on one port, supervised by the parent."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import orjson
import pytest

from kanjia.sandbox import SandboxThread


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(stat[1]) == pid:
                out.append(int(entry))
    return out


def _up(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the gateway exited"
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("the gateway did not come up")


def _chat(url: str) -> int:
    body = {"model": "deepseek/deepseek-chat", "max_tokens": 5,
            "messages": [{"role": "user", "content": "hi"}]}
    req = urllib.request.Request(url + "/v1/chat/completions", orjson.dumps(body),
                                 {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return int(resp.status)


@pytest.fixture()
def gateway(sandbox: SandboxThread, tmp_path: Path):  # type: ignore[no-untyped-def]
    port = _port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "kanjia", "serve", "--sandbox", sandbox.url, "--port",
         str(port), "--workers", "2"],
        env={**os.environ, "KANJIA_JOURNAL_DIR": str(tmp_path / "j")},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        _up(url, proc)
        yield proc, url
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        for child in _children(proc.pid):
            os.kill(child, signal.SIGKILL)


def test_two_workers_answer_on_one_port_and_stop_together(gateway) -> None:  # type: ignore[no-untyped-def]
    proc, url = gateway
    workers = _children(proc.pid)
    assert len(workers) == 2
    assert all(_chat(url) == 200 for _ in range(20))
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    assert not any(Path(f"/proc/{w}").exists() and "Z" not in
                   Path(f"/proc/{w}/stat").read_text().rsplit(")", 1)[1].split()[0]
                   for w in workers)
    err = proc.stderr.read().decode() if proc.stderr else ""
    assert "2 workers" in err
    assert "per worker (no --redis): circuit breakers and deployment health" in err


def test_a_dead_worker_stops_the_gateway_with_an_error(gateway) -> None:  # type: ignore[no-untyped-def]
    proc, _ = gateway
    os.kill(_children(proc.pid)[0], signal.SIGKILL)
    assert proc.wait(timeout=30) != 0
    err = proc.stderr.read().decode() if proc.stderr else ""
    assert "exited with status -9; stopping the others" in err


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SO_REUSEPORT balancing")
def test_each_worker_gets_its_own_socket_and_a_share_of_the_connections() -> None:
    """One socket per worker on one port (SO_REUSEPORT): the kernel spreads connections
    over them, instead of one worker accepting a whole burst from a shared socket."""
    import selectors

    from kanjia.server._workers import listen

    socks = listen("127.0.0.1", 0, 2)
    clients: list[socket.socket] = []
    try:
        assert len(socks) == 2
        port = socks[0].getsockname()[1]
        assert socks[1].getsockname()[1] == port
        clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(64)]
        accepted = [0, 0]
        with selectors.DefaultSelector() as sel:
            for i, s in enumerate(socks):
                s.setblocking(False)
                sel.register(s, selectors.EVENT_READ, i)
            while sum(accepted) < len(clients):
                events = sel.select(timeout=10)
                assert events, f"connections not accepted: {accepted}"
                for key, _ in events:
                    conn, _ = key.fileobj.accept()  # type: ignore[union-attr]
                    conn.close()
                    accepted[key.data] += 1
        # a hash of the client's port decides: all 64 on one socket has odds 2**-63
        assert min(accepted) > 0, accepted
    finally:
        for c in clients:
            c.close()
        for s in socks:
            s.close()


def test_one_worker_binds_one_plain_socket() -> None:
    from kanjia.server._workers import listen

    (sock,) = listen("127.0.0.1", 0, 1)
    with sock:
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) == 0
