"""The README's first command: ``kanjia demo`` runs end to end, offline, exits 0, and
tells its story (cost per model, route decisions and why, savings by lever, next steps)."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import urllib.request
from pathlib import Path

_ENV = {"PATH": "/usr/bin:/bin"}


def test_demo_runs_the_workload_and_writes_the_ledger(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    out = subprocess.run([sys.executable, "-m", "kanjia", "demo", "--db", str(db)],
                         capture_output=True, text=True, timeout=120, cwd=tmp_path,
                         env={**_ENV, "HOME": str(tmp_path)})
    assert out.returncode == 0, out.stderr
    text = out.stdout
    lines = text.splitlines()
    total = next(line for line in lines if line.startswith("total"))
    requests, errors = (int(x) for x in total.split()[1:3])
    assert requests >= 40 and errors == 0
    table = lines[lines.index(next(x for x in lines if x.startswith("vendor"))) + 1:
                  lines.index(total)]
    vendors = {line.split()[0] for line in table}
    assert {"deepseek", "qwen", "zhipu", "anthropic", "gemini", "openai"} <= vendors
    # full model names: a free model shows its ":free" suffix, the reason it costs 0
    assert any(":free" in line for line in table) or all(":free" not in line for line in lines)
    # the request kinds sent
    assert re.search(r"\d+\s+chat, streamed", text) and re.search(r"\d+\s+embeddings", text)
    assert "Anthropic Messages API (/v1/messages)" in text
    assert "OpenAI Responses API (/v1/responses)" in text
    # the loop closed: the ledger matches the sandbox's own usage export
    assert re.search(r"^reconcile: .*no differences", text, re.M), text[-800:]
    # each routed request's decision and why, a fallback included
    decisions = text.split("route decisions:")[1].split("\n\n")[0]
    assert "cheap-chat" in decisions and "cheapest adequate candidate" in decisions
    assert "fallback:" in decisions
    # savings against the baseline, split between routing and direct choices
    assert re.search(r"savings against openai/gpt-4o .* saved \d+\.\d+ CNY", text)
    assert re.search(r"routing: requests sent to a route: \d+ requests", text)
    assert re.search(r"direct: requests that named their model: \d+ requests", text)
    assert f"kanjia report --db {db} --baseline" in text
    assert "nothing left running" in text
    with sqlite3.connect(db) as conn:
        (rows,) = conn.execute("SELECT COUNT(*) FROM usage_records").fetchone()
        (cost,) = conn.execute("SELECT SUM(cost_nano) FROM usage_records").fetchone()
    assert rows == requests
    assert cost > 0
    # every suggested next command runs as printed (but the one that starts servers)
    suggested = [line.strip() for line in text.split("\nnext:")[1].splitlines()
                 if line.strip().startswith("kanjia ") and "--ui" not in line]
    assert len(suggested) >= 4
    for cmd in suggested:
        args = cmd.split()[1:]
        if "--out" in args:
            args[args.index("--out") + 1] = str(tmp_path / "report.html")
        ran = subprocess.run([sys.executable, "-m", "kanjia", *args], capture_output=True,
                             text=True, timeout=120, cwd=tmp_path,
                             env={**_ENV, "HOME": str(tmp_path)})
        assert ran.returncode == 0, (cmd, ran.stderr[-500:])


def test_demo_without_db_names_the_ledger_it_keeps(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "kanjia", "demo"], capture_output=True,
                         text=True, timeout=120, cwd=tmp_path,
                         env={**_ENV, "HOME": str(tmp_path), "TMPDIR": str(tmp_path)})
    assert out.returncode == 0, out.stderr
    ledger = re.search(r"^ledger\s+(\S+)$", out.stdout, re.M)
    assert ledger is not None
    path = Path(ledger.group(1))
    assert path.is_file() and path.is_relative_to(tmp_path)
    report = subprocess.run([sys.executable, "-m", "kanjia", "report", "--db", str(path),
                             "--baseline"], capture_output=True, text=True, timeout=60,
                            env={**_ENV, "HOME": str(tmp_path)})
    assert report.returncode == 0, report.stderr
    assert "routing (requests sent to a route)" in report.stdout


def test_demo_ui_keeps_the_dashboard_up_until_ctrl_c(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "kanjia", "demo", "--ui", "--db",
                             str(tmp_path / "ui.db")], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=tmp_path,
                            env={**_ENV, "HOME": str(tmp_path)}, start_new_session=True)
    try:
        assert proc.stdout is not None
        url = None
        for line in proc.stdout:                  # waits on the line, not on a timer
            if line.startswith("dashboard: "):
                url = line.split(" ", 1)[1].strip()
                break
        assert url is not None and "/ui?key=" in url
        # /ui?key= sets a session cookie and redirects to /ui
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
        with opener.open(url, timeout=30) as resp:
            assert resp.status == 200
            assert b"<html" in resp.read().lower()
        os.killpg(proc.pid, signal.SIGINT)         # as a terminal's Ctrl-C does
        rest, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert "stopping" in rest
        assert "Traceback" not in err
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
