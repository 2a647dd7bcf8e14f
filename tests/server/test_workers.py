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
    assert "per worker in any case: /metrics counts the requests of the worker" in err


def test_a_dead_worker_stops_the_gateway_with_an_error(gateway) -> None:  # type: ignore[no-untyped-def]
    proc, _ = gateway
    os.kill(_children(proc.pid)[0], signal.SIGKILL)
    assert proc.wait(timeout=30) != 0
    err = proc.stderr.read().decode() if proc.stderr else ""
    assert "exited with status -9; stopping the others" in err


def _accept_all(socks: list[socket.socket], n: int) -> list[int]:
    """Accept ``n`` connections from whichever of ``socks`` has them; how many each had."""
    import selectors

    accepted = [0] * len(socks)
    with selectors.DefaultSelector() as sel:
        for i, s in enumerate(socks):
            s.setblocking(False)
            sel.register(s, selectors.EVENT_READ, i)
        while sum(accepted) < n:
            events = sel.select(timeout=10)
            assert events, f"connections not accepted: {accepted}"
            for key, _ in events:
                conn, _ = key.fileobj.accept()  # type: ignore[union-attr]
                conn.close()
                accepted[key.data] += 1
    return accepted


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SO_REUSEPORT balancing")
def test_each_worker_gets_its_own_socket_and_a_share_of_the_connections() -> None:
    """One socket per worker on one port (SO_REUSEPORT): the kernel spreads connections
    over them, instead of one worker accepting a whole burst from a shared socket; a
    socket takes connections only once its worker listens (after its start-up)."""
    from kanjia.server._workers import bind

    socks = bind("127.0.0.1", 0, 2)
    clients: list[socket.socket] = []
    try:
        assert len(socks) == 2
        port = socks[0].getsockname()[1]
        assert socks[1].getsockname()[1] == port
        socks[0].listen()  # the first worker is serving, the second still starting
        clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(16)]
        assert _accept_all(socks[:1], 16) == [16]
        socks[1].listen()
        clients += [socket.create_connection(("127.0.0.1", port)) for _ in range(64)]
        accepted = _accept_all(socks, 64)
        # a hash of the client's port decides: all 64 on one socket has odds 2**-63
        assert min(accepted) > 0, accepted
        with pytest.raises(OSError):  # the port is taken while the workers hold it
            bind("127.0.0.1", port, 1)
    finally:
        for c in clients:
            c.close()
        for s in socks:
            s.close()


def test_one_worker_binds_one_plain_listening_socket() -> None:
    from kanjia.server._workers import bind

    (sock,) = bind("127.0.0.1", 0, 1)
    with sock:
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) == 0
        with socket.create_connection(sock.getsockname()):
            pass


def test_workers_flush_their_ledgers_as_often_as_one_gateway_together() -> None:
    from kanjia.server._workers import worker_env

    assert worker_env({"A": "1"}, 2) == {"A": "1", "KANJIA_LEDGER_FLUSH_S": "0.2"}
    assert worker_env({}, 3)["KANJIA_LEDGER_FLUSH_S"] == "0.3"
    assert worker_env({"KANJIA_LEDGER_FLUSH_S": "0.05"}, 4)["KANJIA_LEDGER_FLUSH_S"] == "0.05"
