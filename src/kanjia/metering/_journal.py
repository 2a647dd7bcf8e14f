"""The local journal: every usage row is appended here before it reaches the database.

A thread writes and fsyncs the rows queued by the event loop in small groups
(every ``interval_s``), so after ``kill -9`` or a power cut every row older than
one interval plus one fsync is on disk. The journal is split in segments; a
segment is deleted once the database has committed all its rows.

Each live process holds an ``flock`` on its owner file ``<owner>.lock``; the
segments of an owner whose lock is free belong to a dead process: ``recover``
hands their rows back for replay (the ledger inserts them idempotently, by
request id) and ``discard`` then deletes them.
"""

from __future__ import annotations

import collections
import contextlib
import fcntl
import os
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

__all__ = ["Journal", "Orphans"]

_SUFFIX = ".jsonl"


@dataclass(slots=True)
class _Segment:
    path: Path
    file: IO[bytes]
    opened: float
    size: int = 0
    max_seq: int = -1


@dataclass(slots=True)
class Orphans:
    """Rows left by dead processes, and the files to delete once they are replayed."""

    lines: list[bytes] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    locks: list[tuple[Path, int]] = field(default_factory=list)


class Journal:
    def __init__(self, directory: str | Path, *, interval_s: float = 0.05,
                 segment_s: float = 5.0, segment_bytes: int = 32 << 20) -> None:
        self.directory = Path(directory)
        self.interval_s = interval_s
        self.segment_s = segment_s
        self.segment_bytes = segment_bytes
        self._queue: collections.deque[tuple[int, bytes]] = collections.deque()
        self._committed = -1
        self._written = -1
        self._owner = ""
        self._lock_fd = -1
        self._counter = 0
        self._current: _Segment | None = None
        self._sealed: list[_Segment] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.fsyncs = 0

    # -- start-up: what dead processes left behind ---------------------------------
    def recover(self) -> Orphans:
        self.directory.mkdir(parents=True, exist_ok=True)
        out = Orphans()
        owners: dict[str, list[Path]] = collections.defaultdict(list)
        for path in sorted(self.directory.glob("*" + _SUFFIX)):
            owners[path.name.rsplit("-", 1)[0]].append(path)
        for lock in self.directory.glob("*.lock"):
            owners.setdefault(lock.stem, [])
        for owner, segments in owners.items():
            if owner == self._owner:
                continue
            lock_path = self.directory / f"{owner}.lock"
            fd = _try_lock(lock_path)
            if fd == -2:
                continue  # its process is alive
            if fd >= 0:
                out.locks.append((lock_path, fd))
            for seg in segments:
                out.lines.extend(_read_lines(seg))
                out.files.append(seg)
        return out

    def discard(self, orphans: Orphans) -> None:
        for path in orphans.files:
            path.unlink(missing_ok=True)
        for path, fd in orphans.locks:
            path.unlink(missing_ok=True)
            os.close(fd)

    # -- running ----------------------------------------------------------------------
    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._owner = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
        tmp = self.directory / f".{self._owner}.tmp"
        fd = os.open(tmp, os.O_CREAT | os.O_RDWR, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.rename(tmp, self.directory / f"{self._owner}.lock")
        self._lock_fd = fd
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="kanjia-journal", daemon=True)
        self._thread.start()

    def append(self, seq: int, line: bytes) -> None:
        """Queue one row (called on the event loop; never blocks)."""
        self._queue.append((seq, line))

    def committed(self, seq: int) -> None:
        """Every row up to ``seq`` is in the database: its segments may go."""
        if seq > self._committed:
            self._committed = seq

    @property
    def durable_seq(self) -> int:
        """The highest sequence number written and fsynced."""
        return self._written

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._write()
        for seg in [*self._sealed, *([self._current] if self._current else [])]:
            seg.file.close()
            if seg.max_seq <= self._committed:
                seg.path.unlink(missing_ok=True)
        self._sealed, self._current = [], None
        if self._lock_fd >= 0:
            if not any(self.directory.glob(f"{self._owner}-*{_SUFFIX}")):
                (self.directory / f"{self._owner}.lock").unlink(missing_ok=True)
            os.close(self._lock_fd)
            self._lock_fd = -1

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._write()
            self._rotate()

    def _write(self) -> None:
        items: list[tuple[int, bytes]] = []
        with contextlib.suppress(IndexError):
            while True:
                items.append(self._queue.popleft())
        if not items:
            return
        seg = self._current or self._open()
        data = b"".join(line for _, line in items)
        seg.file.write(data)
        seg.file.flush()
        os.fdatasync(seg.file.fileno())
        self.fsyncs += 1
        seg.size += len(data)
        seg.max_seq = max(seg.max_seq, max(seq for seq, _ in items))
        self._written = max(self._written, seg.max_seq)

    def _open(self) -> _Segment:
        self._counter += 1
        path = self.directory / f"{self._owner}-{self._counter:08d}{_SUFFIX}"
        seg = _Segment(path, open(path, "ab"), time.monotonic())  # noqa: SIM115
        _fsync_dir(self.directory)
        self._current = seg
        return seg

    def _rotate(self) -> None:
        seg = self._current
        if seg is not None and (seg.size >= self.segment_bytes
                                or time.monotonic() - seg.opened >= self.segment_s):
            self._sealed.append(seg)
            self._current = None
        keep: list[_Segment] = []
        for old in self._sealed:
            if old.max_seq <= self._committed:
                old.file.close()
                old.path.unlink(missing_ok=True)
            else:
                keep.append(old)
        self._sealed = keep


def _try_lock(path: Path) -> int:
    """An fd holding the lock; -1 if there is no lock file; -2 if someone holds it."""
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return -1
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return -2
    return fd


def _read_lines(path: Path) -> list[bytes]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    return [line for line in data.split(b"\n") if line.strip()]


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
