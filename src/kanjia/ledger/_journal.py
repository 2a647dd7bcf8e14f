"""The local journal: every usage row is written here before its response is sent.

``append`` writes the row to the current segment with one ``os.write`` on the caller's
thread (the event loop; a few microseconds into the page cache), so a row is in the
file, and survives ``kill -9`` of the gateway, before the response that it meters goes
out. A thread makes the file durable against a power cut or a kernel crash: it
``fdatasync``s every ``interval_s``, so a power loss can lose the rows answered in the
last interval plus one fsync. The journal is split in segments, opened ahead by the
thread; a segment is deleted once the database has committed all its rows.

``append`` returns where the line went (one int: the segment's number and the byte
offset; ``where`` gives the file's path and the offset), so that a ledger writer
process can read the rows back from the file (the page cache) instead of being sent
a copy: the file is there until ``committed`` covers its rows, whether the segment
was rotated out, sealed by a repair, or the journal is closing. A row that went to
no file (the journal broken or not open) has no place: ``append`` returns None.

Failures are never silent. When a write or an fsync fails (a full disk, "too many open
files"), the journal is ``broken``: rows are held in memory (up to ``max_held``), the
owner refuses new work (``Ledger.check``) and the health check is red, while the thread
retries with backoff (up to 5 s): it opens a fresh segment, rewrites every row not yet
fsynced there, and is healthy again once that write and its fsync succeed. The thread
never dies of an error.

Each live process holds an ``flock`` on its owner file ``<owner>.lock``; the
segments of an owner whose lock is free belong to a dead process: ``recover``
hands their rows back for replay (the ledger inserts them idempotently, by
request id) and ``discard`` then deletes them.
"""

from __future__ import annotations

import collections
import fcntl
import logging
import os
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Journal", "Orphans"]

log = logging.getLogger("kanjia.ledger")

_SUFFIX = ".jsonl"
_MAX_BACKOFF_S = 5.0


#: a location is ``segment number << _OFFSET_BITS | byte offset`` (one int: ``append``
#: is on the request path); rotation keeps a segment far below 2**40 bytes
_OFFSET_BITS = 40
_OFFSET_MASK = (1 << _OFFSET_BITS) - 1


@dataclass(slots=True)
class _Segment:
    path: Path
    fd: int
    opened: float
    #: the segment's number (in its file name) shifted into a location's high bits
    base: int
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
                 segment_s: float = 5.0, segment_bytes: int = 32 << 20,
                 max_held: int = 100_000) -> None:
        self.directory = Path(directory)
        self.interval_s = interval_s
        self.segment_s = segment_s
        self.segment_bytes = segment_bytes
        self.max_held = max_held
        #: guards the segments, ``_held`` and ``_error`` (never held during an fsync)
        self._lock = threading.Lock()
        #: rows written (or to write) and not yet fsynced, oldest first
        self._held: collections.deque[tuple[int, bytes]] = collections.deque()
        self._error: str | None = None
        self._committed = -1
        self._written = -1
        self._synced = -1
        self._owner = ""
        #: the absolute path of this process's segments, up to the segment number
        self._prefix = ""
        self._lock_fd = -1
        self._counter = 0
        self._current: _Segment | None = None
        self._sealed: list[_Segment] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.fsyncs = 0
        #: rows that could not even be held in memory (the journal broken for too long)
        self.dropped = 0
        #: times the journal broke, and recovered
        self.failures = 0
        self.repairs = 0

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
        self._prefix = str((self.directory / self._owner).absolute())
        tmp = self.directory / f".{self._owner}.tmp"
        fd = os.open(tmp, os.O_CREAT | os.O_RDWR, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.rename(tmp, self.directory / f"{self._owner}.lock")
        self._lock_fd = fd
        self._current = self._open()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="kanjia-journal", daemon=True)
        self._thread.start()

    def append(self, seq: int, line: bytes) -> int | None:
        """Write one row (a newline-terminated line) to the journal file now.

        Called on the event loop: one ``os.write``, no fsync. Returns where the line is
        (a location, always > 0: see ``where``), so that the database writer can read it
        back from the file. None when the row is not in a file (the journal broken or
        not open): it is then held in memory until the journal is repaired, which writes
        it to a fresh segment at a place nobody is told (the caller keeps the row too,
        for the database)."""
        with self._lock:
            if len(self._held) >= self.max_held:
                self.dropped += 1
                if self.dropped == 1 or self.dropped % 10_000 == 0:
                    log.error("journal: broken for too long (%s); %d rows are not journaled "
                              "(they are still queued for the database)",
                              self._error, self.dropped)
                return None
            self._held.append((seq, line))
            seg = self._current
            if self._error is None and seg is not None:
                try:
                    _write_all(seg.fd, line)
                except OSError as exc:
                    self._broke(f"write to {seg.path.name} failed: {exc}")
                    return None
                at = seg.base + seg.size
                seg.size += len(line)
                seg.max_seq = max(seg.max_seq, seq)
                self._written = max(self._written, seq)
                return at
            if self._error is None:
                self._broke("the journal is not open")
            return None

    def where(self, location: int) -> tuple[str, int]:
        """The segment file (its path) and byte offset of a location from ``append``.

        The file stays until ``committed`` has covered every row in it (``_rotate``,
        ``close``), so a row not yet committed can be read back from it."""
        return (f"{self._prefix}-{location >> _OFFSET_BITS:08d}{_SUFFIX}",
                location & _OFFSET_MASK)

    def committed(self, seq: int) -> None:
        """Every row up to ``seq`` is in the database: its segments may go."""
        if seq > self._committed:
            self._committed = seq

    @property
    def durable_seq(self) -> int:
        """The highest sequence number written and fsynced."""
        return self._synced

    @property
    def written_seq(self) -> int:
        """The highest sequence number written to the file (not necessarily fsynced)."""
        return self._written

    @property
    def error(self) -> str | None:
        """Why the journal cannot take rows now, or None when it is healthy."""
        return self._error

    @property
    def held(self) -> int:
        """Rows not yet fsynced (all of them in memory too)."""
        return len(self._held)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        try:
            if self._error is not None:
                self._repair()
            self._sync()
        except OSError as exc:
            log.error("journal: %d rows could not be made durable at close: %s",
                      len(self._held), exc)
        with self._lock:
            segments = [*self._sealed, *([self._current] if self._current else [])]
            self._sealed, self._current = [], None
        for seg in segments:
            os.close(seg.fd)
            if seg.max_seq <= self._committed:
                seg.path.unlink(missing_ok=True)
        if self._lock_fd >= 0:
            if not any(self.directory.glob(f"{self._owner}-*{_SUFFIX}")):
                (self.directory / f"{self._owner}.lock").unlink(missing_ok=True)
            os.close(self._lock_fd)
            self._lock_fd = -1

    # -- the thread -----------------------------------------------------------------------
    def _run(self) -> None:
        delay = self.interval_s
        while not self._stop.wait(delay):
            try:
                if self._error is not None:
                    self._repair()
                    self.repairs += 1
                    log.warning("journal: repaired; %d held rows rewritten to %s",
                                len(self._held), self._current.path.name
                                if self._current else "?")
                self._sync()
                self._rotate()
            except Exception as exc:  # never die: retry with backoff, loudly
                with self._lock:
                    if self._error is None:
                        self._broke(f"{type(exc).__name__}: {exc}")
                delay = min(_MAX_BACKOFF_S, max(delay, self.interval_s) * 2)
                log.error("journal: %s; retrying in %.2f s", self._error, delay)
            else:
                delay = self.interval_s

    def _broke(self, why: str) -> None:
        """Mark the journal broken (with ``_lock`` held)."""
        if self._error is None:
            self.failures += 1
            log.error("journal: %s; refusing new requests until it is repaired", why)
        self._error = why

    def _sync(self) -> None:
        """fdatasync the current segment; drop the rows that are now durable."""
        with self._lock:
            if self._error is not None or not self._held:
                return
            n = len(self._held)
            last = self._held[n - 1][0]
            seg = self._current
        assert seg is not None
        try:
            os.fdatasync(seg.fd)
        except OSError as exc:
            with self._lock:
                self._broke(f"fsync of {seg.path.name} failed: {exc}")
            raise
        self.fsyncs += 1
        with self._lock:
            for _ in range(n):
                self._held.popleft()
            self._synced = max(self._synced, last)

    def _repair(self) -> None:
        """A fresh segment with every row not yet fsynced; raises OSError if it fails."""
        fresh = self._open()
        try:
            with self._lock:
                data = b"".join(line for _, line in self._held)
                _write_all(fresh.fd, data)
                fresh.size = len(data)
                fresh.max_seq = max((seq for seq, _ in self._held), default=-1)
                if self._current is not None:
                    self._sealed.append(self._current)
                self._current = fresh
                self._written = max(self._written, fresh.max_seq)
                self._error = None
        except OSError:
            os.close(fresh.fd)
            fresh.path.unlink(missing_ok=True)
            raise

    def _open(self) -> _Segment:
        self._counter += 1
        path = self.directory / f"{self._owner}-{self._counter:08d}{_SUFFIX}"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            _fsync_dir(self.directory)
        except OSError:
            os.close(fd)
            path.unlink(missing_ok=True)
            raise
        return _Segment(path, fd, time.monotonic(), self._counter << _OFFSET_BITS)

    def _rotate(self) -> None:
        seg = self._current
        if seg is not None and self._error is None and seg.size > 0 and (
                seg.size >= self.segment_bytes or time.monotonic() - seg.opened >= self.segment_s):
            try:
                fresh = self._open()  # here, so that the event loop never opens a file
            except OSError as exc:  # e.g. no descriptor left: keep writing to this one
                log.warning("journal: cannot open a new segment (%s); trying again in 1 s",
                            exc)
                seg.opened = time.monotonic() - self.segment_s + 1.0
            else:
                with self._lock:
                    self._current = fresh
                self._sealed.append(seg)
                os.fdatasync(seg.fd)  # its rows still held are fsynced with the next _sync
        keep: list[_Segment] = []
        for old in self._sealed:
            if old.max_seq <= self._committed:
                os.close(old.fd)
                old.path.unlink(missing_ok=True)
            else:
                keep.append(old)
        self._sealed = keep


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


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
