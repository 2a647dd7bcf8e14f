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
