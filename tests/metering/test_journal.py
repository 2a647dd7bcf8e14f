"""The journal: rows fsynced in groups, recovered from dead processes only, deleted
once committed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from kanjia.metering import Journal


def _lines(n: int, start: int = 0) -> list[bytes]:
    return [f'["r{i}"]\n'.encode() for i in range(start, start + n)]


def test_live_journal_is_not_recovered_and_closes_clean(tmp_path: Path) -> None:
    j = Journal(tmp_path, interval_s=0.01)
    j.start()
    for i, line in enumerate(_lines(5)):
        j.append(i, line)
    deadline = time.monotonic() + 5
    while j.durable_seq < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert j.durable_seq == 4
    other = Journal(tmp_path)
    assert other.recover().lines == []  # the owner is alive: hands off
    j.committed(4)
    j.close()
    assert list(tmp_path.iterdir()) == []


def test_uncommitted_rows_survive_close(tmp_path: Path) -> None:
    j = Journal(tmp_path, interval_s=0.01)
    j.start()
    for i, line in enumerate(_lines(6)):
        j.append(i, line)
    j.committed(2)
    j.close()
    orphans = Journal(tmp_path).recover()
    assert sorted(orphans.lines) == sorted(x.rstrip(b"\n") for x in _lines(6))
    Journal(tmp_path).discard(orphans)
    assert list(tmp_path.iterdir()) == []


def test_committed_segments_are_deleted_while_running(tmp_path: Path) -> None:
    j = Journal(tmp_path, interval_s=0.01, segment_s=0.05)
    j.start()
    for i, line in enumerate(_lines(3)):
        j.append(i, line)
    time.sleep(0.2)
    j.committed(2)
    time.sleep(0.2)
    assert not list(tmp_path.glob("*.jsonl"))
    j.close()


def test_kill_9_leaves_fsynced_rows(tmp_path: Path) -> None:
    script = textwrap.dedent(f"""
        import sys, time
        from kanjia.metering import Journal
        j = Journal({str(tmp_path)!r}, interval_s=0.02)
        j.start()
        for i in range(200):
            j.append(i, b'["r%d"]\\n' % i)
        while j.durable_seq < 199:
            time.sleep(0.005)
        print("durable", flush=True)
        for i in range(200, 100000):
            j.append(i, b'["r%d"]\\n' % i)
            if i % 1000 == 0:
                time.sleep(0.001)
        time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == b"durable"
    time.sleep(0.1)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    orphans = Journal(tmp_path).recover()
    got = set(orphans.lines)
    assert {f'["r{i}"]'.encode() for i in range(200)} <= got
    assert all(line.startswith(b'["r') for line in got)  # a torn last line is dropped later
    Journal(tmp_path).discard(orphans)
    assert not list(tmp_path.glob("*.jsonl")) and not list(tmp_path.glob("*.lock"))
