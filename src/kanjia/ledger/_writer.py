"""Where the ledger's batches go: into the database from this process, or through a
writer process of its own.

``ThreadWriter`` inserts the rows through the ``Database`` (SQLite's thread, asyncpg's
loop). ``ProcessWriter`` hands each batch to a child process
(``python -m kanjia.ledger._writer_main``) that owns a database connection and answers
with the number of rows it inserted. The gateway then spends no CPU on binding rows
and no GIL hand-over per row with a database thread; the child's work runs on
another core when there is one.

A batch whose rows are all in the journal goes to the child as file ranges (segment
path, start, end): the child reads the lines back from the journal's segment files
(``os.pread``, from the page cache) instead of the gateway copying them into the pipe.
A segment is deleted only after the gateway has seen every row in it committed
(``Journal.committed``), so the files of a batch exist while the child reads them. A
batch with a row that is not in a file (the journal broken, or no journal) goes
inline, as the journal lines themselves; so does a batch the child could not read
back whole (a short read, a missing file, not the rows it was told): it is resent
inline at once, and after three such batches in a row every later one goes inline.

Frames, both ways: a 4-byte big-endian length, then the payload. The first frame to
the child is the database URL (not on the command line, where ``ps`` would show a
password); each later one carries, after the length, one byte of kind: ``L`` and
newline-terminated journal lines, or ``R`` and a JSON object ``{"rows": N, "ranges":
[[path, start, end], ...]}``. The child answers each batch with ``{"inserted": N}``,
``{"error": "..."}``, or ``{"error": "...", "unreadable": true}`` for ranges it could
not read back, and exits when its input closes (a clean close, or the gateway killed):
it ignores SIGINT and SIGTERM, so a Ctrl-C to the process group cannot cut it off
before the gateway's last flush. Inserts are idempotent by request id, so a batch
retried after a lost answer is not counted twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import struct
import sys
from collections.abc import Sequence
from typing import Any, BinaryIO, Protocol

import orjson

from kanjia.ledger._rows import COLUMNS, KEY, TABLE, rows_from_json
from kanjia.ledger.store import Database, open_database

__all__ = ["ProcessWriter", "Range", "RowWriter", "ThreadWriter", "serve"]

log = logging.getLogger("kanjia.ledger")

_LEN = struct.Struct(">I")
_LINES = b"L"
_RANGES = b"R"
#: batches in a row the child could not read back before ranges are given up
_MAX_MISSES = 3

#: a run of consecutive journal lines: segment file path, start and end byte offsets
Range = tuple[str, int, int]


class RowWriter(Protocol):
    async def write(self, rows: Sequence[tuple[Any, ...]], lines: Sequence[bytes],
                    ranges: Sequence[Range] | None = None) -> int:
        """Insert one batch (the rows; the same rows as journal lines; and, when every
        one of them is in the journal, where those lines are in its files, in order);
        returns how many were new."""
        ...

    async def close(self) -> None: ...


class ThreadWriter:
    """Inserts through the gateway's own database connection."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def write(self, rows: Sequence[tuple[Any, ...]], lines: Sequence[bytes],
                    ranges: Sequence[Range] | None = None) -> int:
        return await self.db.insert_ignore(TABLE, COLUMNS, KEY, rows)

    async def close(self) -> None:
        return None


class ProcessWriter:
    """Inserts through a child process; started on first use, restarted if it dies."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._proc: asyncio.subprocess.Process | None = None
        #: batches sent as file ranges; those the child could not read back (resent inline)
        self.ranged = 0
        self.unreadable = 0
        #: unreadable batches in a row; at _MAX_MISSES, batches go inline from then on
        self._misses = 0

    @property
    def pid(self) -> int | None:
        """The writer process's id (None before the first batch)."""
        return self._proc.pid if self._proc is not None else None

    async def _start(self) -> asyncio.subprocess.Process:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "kanjia.ledger._writer_main",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
        assert proc.stdin is not None
        proc.stdin.write(_frame(self._url.encode()))
        self._proc = proc
        return proc

    async def write(self, rows: Sequence[tuple[Any, ...]], lines: Sequence[bytes],
                    ranges: Sequence[Range] | None = None) -> int:
        if ranges is not None and self._misses < _MAX_MISSES:
            self.ranged += 1
            answer = await self._ask(_RANGES, orjson.dumps(
                {"rows": len(lines), "ranges": ranges}))
            if "unreadable" not in answer:
                self._misses = 0
                return _inserted(answer)
            self.unreadable += 1
            self._misses += 1
            log.warning("ledger: the writer process could not read a batch back from the "
                        "journal (%s); sending its %d rows inline%s", answer["error"],
                        len(lines), "" if self._misses < _MAX_MISSES else
                        ", and every later batch too")
        return _inserted(await self._ask(_LINES, b"".join(lines)))

    async def _ask(self, kind: bytes, payload: bytes) -> dict[str, Any]:
        proc = self._proc if self._proc is not None and self._proc.returncode is None \
            else await self._start()
        assert proc.stdin is not None and proc.stdout is not None
        try:
            proc.stdin.write(_LEN.pack(len(payload)) + kind + payload)
            await proc.stdin.drain()
            size = _LEN.unpack(await proc.stdout.readexactly(_LEN.size))[0]
            answer: dict[str, Any] = orjson.loads(await proc.stdout.readexactly(size))
        except (OSError, asyncio.IncompleteReadError) as exc:
            await self._stop(proc)
            raise RuntimeError(f"the ledger writer process stopped ({exc!r})") from None
        return answer

    async def _stop(self, proc: asyncio.subprocess.Process) -> None:
        self._proc = None
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), 30)
        except TimeoutError:
            proc.kill()
            await proc.wait()

    async def close(self) -> None:
        if self._proc is not None:
            await self._stop(self._proc)


def _inserted(answer: dict[str, Any]) -> int:
    if "error" in answer:
        raise RuntimeError(str(answer["error"]))
    return int(answer["inserted"])


def _frame(payload: bytes) -> bytes:
    return _LEN.pack(len(payload)) + payload


def _read_exactly(stream: BinaryIO, size: int) -> bytes | None:
    data = stream.read(size)
    return data if len(data) == size else None


def _read_frame(stream: BinaryIO) -> bytes | None:
    head = _read_exactly(stream, _LEN.size)
    return None if head is None else _read_exactly(stream, _LEN.unpack(head)[0])


def _read_batch(stream: BinaryIO) -> tuple[bytes, bytes] | None:
    """(kind, payload) of the next batch frame; None when the input is closed."""
    head = _read_exactly(stream, _LEN.size + 1)
    if head is None:
        return None
    payload = _read_exactly(stream, _LEN.unpack_from(head)[0])
    return None if payload is None else (head[_LEN.size:], payload)


class Unreadable(Exception):
    """Ranges that could not be read back whole from the journal's files."""


class _Segments:
    """The writer's read-only descriptors of journal segments: those of the last
    batch stay open (the next batch usually reads the same segment); the others are
    closed, so that a deleted segment's space is not held."""

    def __init__(self) -> None:
        self._fds: dict[str, int] = {}

    def read(self, ranges: Sequence[Sequence[Any]], rows: int) -> bytes:
        """The lines in ``ranges``, which must be ``rows`` whole lines; else Unreadable."""
        used: dict[str, int] = {}
        chunks: list[bytes] = []
        try:
            for path, start, end in ranges:
                fd = used.get(path)
                if fd is None:
                    fd = self._fds.pop(path, None)
                    if fd is None:
                        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
                    used[path] = fd
                size = end - start
                chunk = os.pread(fd, size, start)
                if len(chunk) != size or not chunk.endswith(b"\n"):
                    raise Unreadable(f"short read of {path} [{start}, {end}): "
                                     f"{len(chunk)} bytes")
                chunks.append(chunk)
        except OSError as exc:
            raise Unreadable(str(exc)) from None
        finally:
            self.close()
            self._fds = used
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        lines = data.count(b"\n")
        if lines != rows:
            raise Unreadable(f"{lines} lines read back, {rows} sent")
        return data

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds = {}


async def serve(inp: BinaryIO, out: BinaryIO) -> None:
    url = _read_frame(inp)
    if url is None:
        return
    db = open_database(url.decode())
    await db.connect()
    segments = _Segments()
    try:
        while (frame := await asyncio.to_thread(_read_batch, inp)) is not None:
            kind, payload = frame
            answer: dict[str, object]
            try:
                if kind == _RANGES:
                    batch = orjson.loads(payload)
                    data = segments.read(batch["ranges"], batch["rows"])
                else:
                    data = payload
            except Unreadable as exc:
                answer = {"error": str(exc), "unreadable": True}
            else:
                rows = rows_from_json(data)
                try:
                    answer = {"inserted": await db.insert_ignore(TABLE, COLUMNS, KEY, rows)}
                except Exception as exc:  # the gateway keeps the batch and retries
                    answer = {"error": f"write of {len(rows)} rows to {db.display} failed: "
                                       f"{exc}"}
            out.write(_frame(orjson.dumps(answer)))
            out.flush()
    finally:
        segments.close()
        with contextlib.suppress(Exception):
            await db.close()
