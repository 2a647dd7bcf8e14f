"""The first hour's ledger surprises: read-only commands never create a ledger, an
unwritable --db and an address in use are one-line errors before `serve` says it
listens, with no traceback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

_ENV = {"PATH": "/usr/bin:/bin", "PYTHONPATH": os.environ.get("PYTHONPATH", "")}


def _kanjia(*args: str, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kanjia", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=cwd,
                          env={**_ENV, "HOME": str(cwd)})


@pytest.mark.parametrize("command", [
    ["usage"], ["report"], ["report", "--baseline"], ["dashboard", "--out", "x.html"],
    ["reconcile", "--vendor", "openai", "--file", "export.json", "--format", "openai-usage"],
])
def test_read_only_commands_never_create_a_ledger(tmp_path: Path, command: list[str]) -> None:
    (tmp_path / "export.json").write_text('{"object": "page", "data": []}')
    out = _kanjia(*command, "--db", "missing.db", cwd=tmp_path)
    assert out.returncode != 0
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "missing.db" in lines[0], out.stderr
    assert "Traceback" not in out.stderr
    assert not (tmp_path / "missing.db").exists()


def test_serve_names_an_unwritable_ledger_before_listening(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    out = _kanjia("serve", "--port", "0", "--db", str(blocker / "ledger.db"), cwd=tmp_path)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and str(blocker) in lines[0] and "not a folder" in lines[0], lines
    assert "listening" not in out.stderr and "gateway on" not in out.stderr
    out = _kanjia("serve", "--port", "0", "--db", str(tmp_path), cwd=tmp_path)
    assert out.returncode == 2 and "is a directory" in out.stderr


def test_serve_names_an_address_in_use(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = _kanjia("serve", "--port", str(port), cwd=tmp_path)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and f"127.0.0.1:{port} is already in use" in lines[0], lines
    assert "gateway on" not in out.stdout + out.stderr
