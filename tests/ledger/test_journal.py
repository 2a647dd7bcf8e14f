"""The journal: rows fsynced in groups, recovered from dead processes only, deleted
once committed."""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from tests._waiting import until

from kanjia.ledger import Journal


def _lines(n: int, start: int = 0) -> list[bytes]:
    return [f'["r{i}"]\n'.encode() for i in range(start, start + n)]


def _sizes(directory: Path) -> list[int]:
    """The journal segments' sizes, smallest first (a segment may go while we look)."""
    out = []
    for path in directory.glob("*.jsonl"):
        with contextlib.suppress(FileNotFoundError):
            out.append(path.stat().st_size)
    return sorted(out)


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
    rows = len(b"".join(_lines(3)))
    # the segment with the rows is sealed once it is segment_s old, the next one opened
    until(lambda: _sizes(tmp_path) == [0, rows], "the first segment's rotation")
    j.committed(2)
    # only the next segment, opened ahead (so that the event loop never opens a file), is left
    until(lambda: _sizes(tmp_path) == [0], "the committed segment's deletion")
    j.close()
    assert not list(tmp_path.glob("*.jsonl"))


def test_kill_9_leaves_fsynced_rows(tmp_path: Path) -> None:
    script = textwrap.dedent(f"""
        import sys, time
        from kanjia.ledger import Journal
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
    first = len(b"".join(_lines(200)))
    # kill it while it writes more rows behind the durable ones
    until(lambda: sum(_sizes(tmp_path)) > 2 * first,
          "the child writing rows beyond the durable ones")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    orphans = Journal(tmp_path).recover()
    got = set(orphans.lines)
    assert {f'["r{i}"]'.encode() for i in range(200)} <= got
    assert all(line.startswith(b'["r') for line in got)  # a torn last line is dropped later
    Journal(tmp_path).discard(orphans)
    assert not list(tmp_path.glob("*.jsonl")) and not list(tmp_path.glob("*.lock"))


def test_append_is_in_the_file_before_it_returns(tmp_path: Path) -> None:
    """No fsync interval to wait for: a row is in the OS (a process kill keeps it) as soon
    as ``append`` returns, before the response it meters is sent."""
    j = Journal(tmp_path, interval_s=60)  # the thread would not write for a minute
    j.start()
    try:
        for i, line in enumerate(_lines(3)):
            assert j.append(i, line)
        assert j.written_seq == 2
        data = b"".join(p.read_bytes() for p in tmp_path.glob("*.jsonl"))
        assert data == b"".join(_lines(3))
    finally:
        j.close()


def test_a_failed_write_breaks_the_journal_loudly_and_it_recovers(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """F9: an OSError (here EMFILE, as under a descriptor flood) neither kills the thread
    nor loses a row: the journal reports itself broken, holds the rows, and the thread
    rewrites them into a fresh segment once the error goes away."""
    j = Journal(tmp_path, interval_s=0.01)
    j.start()
    real_write, real_open = os.write, os.open
    failing = {"on": True}
    refused: list[str] = []  # the fresh segments the thread could not open

    def bad_write(fd: int, data: bytes | memoryview) -> int:
        if failing["on"]:
            raise OSError(errno.EMFILE, "Too many open files")
        return real_write(fd, data)

    def bad_open(path: Any, flags: int, *args: Any, **kw: Any) -> int:
        if failing["on"]:
            if str(path).endswith(".jsonl"):
                refused.append(str(path))
            raise OSError(errno.EMFILE, "Too many open files")
        return real_open(path, flags, *args, **kw)

    try:
        assert j.append(0, b'["r0"]\n')
        monkeypatch.setattr(os, "write", bad_write)
        monkeypatch.setattr(os, "open", bad_open)
        assert not j.append(1, b'["r1"]\n')
        assert j.error is not None and "Too many open files" in j.error
        assert not j.append(2, b'["r2"]\n')
        # the thread retries (and fails) meanwhile, twice at least: it must stay alive
        until(lambda: len(refused) >= 2, "two failed repairs")
        assert j._thread is not None and j._thread.is_alive()
        assert j.error is not None and j.failures == 1
        failing["on"] = False
        deadline = time.monotonic() + 10
        while (j.error is not None or j.durable_seq < 2) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert j.error is None and j.durable_seq == 2 and j.repairs >= 1
        assert j.append(3, b'["r3"]\n')
    finally:
        monkeypatch.undo()
        j.close()
    got = Journal(tmp_path).recover().lines
    assert set(got) == {b'["r0"]', b'["r1"]', b'["r2"]', b'["r3"]'}


def test_held_rows_are_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    j = Journal(tmp_path, interval_s=60, max_held=5)
    j.start()
    try:
        monkeypatch.setattr(os, "write", lambda fd, data: (_ for _ in ()).throw(
            OSError(errno.ENOSPC, "No space left on device")))
        for i in range(20):
            j.append(i, b'["r%d"]\n' % i)
        assert j.held == 5 and j.dropped == 15
    finally:
        monkeypatch.undo()
        j.close()


def test_no_descriptor_for_a_new_segment_keeps_the_journal_working(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """EMFILE when the thread opens the next segment is not a failure of the journal:
    rows keep going to the current segment, and rotation resumes once it can."""
    j = Journal(tmp_path, interval_s=0.01, segment_s=0.02)
    j.start()
    real_open = os.open
    failing = {"on": True}
    refused: list[str] = []

    def bad_open(path: Any, flags: int, *args: Any, **kw: Any) -> int:
        if failing["on"] and str(path).endswith(".jsonl"):
            refused.append(str(path))
            raise OSError(errno.EMFILE, "Too many open files")
        return real_open(path, flags, *args, **kw)

    monkeypatch.setattr(os, "open", bad_open)
    try:
        for i in range(50):
            assert j.append(i, b'["r%d"]\n' % i)
        until(lambda: len(refused) >= 1, "the thread's refused rotation")
        assert j.append(50, b'["r50"]\n')  # after the refusal, rows still go in
        assert j.error is None and len(list(tmp_path.glob("*.jsonl"))) == 1
        failing["on"] = False
        deadline = time.monotonic() + 5
        while len(list(tmp_path.glob("*.jsonl"))) < 2 and time.monotonic() < deadline:
            j.append(99, b'["r99"]\n')
            time.sleep(0.01)
        assert len(list(tmp_path.glob("*.jsonl"))) >= 2  # rotated again
    finally:
        monkeypatch.undo()
        j.close()
    assert {b'["r%d"]' % i for i in range(51)} <= set(Journal(tmp_path).recover().lines)
