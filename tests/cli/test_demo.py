"""The README's first command: ``kanjia demo`` runs end to end, offline, and exits 0."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path


def test_demo_runs_the_workload_and_writes_the_ledger(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    out = subprocess.run([sys.executable, "-m", "kanjia", "demo", "--db", str(db)],
                         capture_output=True, text=True, timeout=120, cwd=tmp_path,
                         env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    total = next(line for line in lines if line.startswith("total"))
    requests, errors = (int(x) for x in total.split()[1:3])
    assert requests >= 40 and errors == 0
    vendors = {line.split()[0] for line in lines[lines.index(next(
        line for line in lines if line.startswith("vendor"))) + 1:] if line and
        not line.startswith(("total", "4", "sandbox"))}
    assert {"deepseek", "qwen", "zhipu", "anthropic", "gemini", "openai"} <= vendors
    assert "nothing left running" in out.stdout
    with sqlite3.connect(db) as conn:
        (rows,) = conn.execute("SELECT COUNT(*) FROM usage_records").fetchone()
        (cost,) = conn.execute("SELECT SUM(cost_nano) FROM usage_records").fetchone()
    assert rows == requests
    assert cost > 0
