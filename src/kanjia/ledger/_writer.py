"""Where the ledger's batches go: into the database from this process, or through a
writer process of its own.

``ThreadWriter`` inserts through the ``Database`` (SQLite's thread, asyncpg's loop).
``ProcessWriter`` hands each batch, as the journal's JSON lines, to a child process
(``python -m kanjia.ledger._writer_main``) that owns a database connection and answers
with the number of rows it inserted. The gateway then spends no CPU on binding rows
and no GIL hand-over per row with a database thread; the child's work runs on
another core when there is one.

Frames, both ways: a 4-byte big-endian length, then the payload. The first frame to
the child is the database URL (not on the command line, where ``ps`` would show a
password); each later one is a batch of newline-terminated journal lines. The child
answers each batch with ``{"inserted": N}`` or ``{"error": "..."}``, and exits when
its input closes (a clean close, or the gateway killed): it ignores SIGINT and
SIGTERM, so a Ctrl-C to the process group cannot cut it off before the gateway's
last flush. Inserts are idempotent by request id, so a batch retried after a lost
answer is not counted twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import sys
from collections.abc import Sequence
from typing import Any, BinaryIO, Protocol

import orjson

from kanjia.ledger._rows import COLUMNS, KEY, TABLE, row_from_json
from kanjia.ledger.store import Database, open_database

__all__ = ["ProcessWriter", "RowWriter", "ThreadWriter", "serve"]

_LEN = struct.Struct(">I")


class RowWriter(Protocol):
    async def write(self, rows: Sequence[tuple[Any, ...]], lines: Sequence[bytes]) -> int:
        """Insert one batch (the rows, and the same rows as journal lines); returns how
        many were new."""
        ...

    async def close(self) -> None: ...


class ThreadWriter:
    """Inserts through the gateway's own database connection."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def write(self, rows: Sequence[tuple[Any, ...]], lines: Sequence[bytes]) -> int:
        return await self.db.insert_ignore(TABLE, COLUMNS, KEY, rows)

    async def close(self) -> None:
        return None


class ProcessWriter:
    """Inserts through a child process; started on first use, restarted if it dies."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._proc: asyncio.subprocess.Process | None = None

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

    async def write(self, rows: Sequence[tuple[Any, ...]], lines: Sequence[bytes]) -> int:
        proc = self._proc if self._proc is not None and self._proc.returncode is None \
            else await self._start()
        assert proc.stdin is not None and proc.stdout is not None
        try:
            proc.stdin.write(_frame(b"".join(lines)))
            await proc.stdin.drain()
            size = _LEN.unpack(await proc.stdout.readexactly(_LEN.size))[0]
            answer = orjson.loads(await proc.stdout.readexactly(size))
        except (OSError, asyncio.IncompleteReadError) as exc:
            await self._stop(proc)
            raise RuntimeError(f"the ledger writer process stopped ({exc!r})") from None
        if "error" in answer:
            raise RuntimeError(str(answer["error"]))
        return int(answer["inserted"])

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


def _frame(payload: bytes) -> bytes:
    return _LEN.pack(len(payload)) + payload


def _read_frame(stream: BinaryIO) -> bytes | None:
    head = stream.read(_LEN.size)
    if len(head) < _LEN.size:
        return None
    (size,) = _LEN.unpack(head)
    data = stream.read(size)
    return data if len(data) == size else None


async def serve(inp: BinaryIO, out: BinaryIO) -> None:
    url = _read_frame(inp)
    if url is None:
        return
    db = open_database(url.decode())
    await db.connect()
    try:
        while (batch := await asyncio.to_thread(_read_frame, inp)) is not None:
            rows = [r for r in map(row_from_json, batch.splitlines()) if r is not None]
            try:
                answer: dict[str, object] = {
                    "inserted": await db.insert_ignore(TABLE, COLUMNS, KEY, rows)}
            except Exception as exc:  # the gateway keeps the batch and retries
                answer = {"error": f"write of {len(rows)} rows to {db.display} failed: {exc}"}
            out.write(_frame(orjson.dumps(answer)))
            out.flush()
    finally:
        with contextlib.suppress(Exception):
            await db.close()
