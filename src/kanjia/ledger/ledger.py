"""The ledger: one usage row per request, journaled at once, written to the database
in batches by a background task. The request path appends to a queue and writes one
line to the journal file (``os.write``) before its response is sent; the queue keeps,
with each row, where the journal wrote its line.

    gateway ──record()──> pending rows ──every 100 ms──> writer ──> database (one transaction)
                      └─> journal file (os.write now; a thread fsyncs every 50 ms)
                              └─ read back by a writer process (the batch as file ranges)

A batch is handed to the writer as rows, as journal lines, and, when every row of it is
in a journal file, as file ranges (one per run of consecutive lines in a segment): a
writer process reads those lines back from the files rather than through its pipe. A
segment is deleted only once ``committed`` covers its rows, which is told after the
writer has answered.

``check()`` is the gateway's admission guard: it refuses new requests (503
``ledger_unavailable``) while the journal is broken or the database is so far behind
that ``max_pending`` rows wait in memory; ``problem()`` says the same to the health check.

The writer is the database connection of this process (``ThreadWriter``) or a
writer process of its own (``ProcessWriter``, what ``kanjia serve`` uses).

On start the rows dead processes left in the journal are replayed (inserts are
idempotent by request id, so nothing is counted twice); on close everything
pending is written and the journal closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from kanjia.errors import LedgerUnavailable
from kanjia.ledger._journal import Journal
from kanjia.ledger._rows import (
    COLUMNS,
    KEY,
    TABLE,
    DayClock,
    row_from_json,
    row_of,
    row_to_json,
    to_record,
)
from kanjia.ledger._writer import Range, RowWriter, ThreadWriter
from kanjia.ledger.query import record_rows
from kanjia.ledger.record import CallRecord
from kanjia.ledger.store import Database

__all__ = ["Ledger"]


def _call_number(request_id: str) -> int:
    tail = request_id.rsplit(".", 1)[-1]
    return int(tail) if tail.isdigit() else 0

log = logging.getLogger("kanjia.ledger")


class Ledger:
    def __init__(self, db: Database, journal: Journal | None = None, *,
                 interval_s: float = 0.1, max_batch: int = 2000,
                 writer: RowWriter | None = None, max_pending: int = 200_000) -> None:
        self.db = db
        self.max_pending = max_pending
        self.journal = journal
        self.writer = writer if writer is not None else ThreadWriter(db)
        self.interval_s = interval_s
        self.max_batch = max_batch
        self.written = 0
        self.recovered = 0
        self._seq = 0
        #: (sequence number, row, the row as a journal line, where the journal wrote that
        #: line: ``Journal.append``'s location, None when it is not in a file)
        self._pending: list[tuple[int, tuple[Any, ...], bytes, int | None]] = []
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._stop = asyncio.Event()
        self._failures = 0
        self._days = DayClock()

    @property
    def pending(self) -> int:
        return len(self._pending)

    def problem(self) -> str | None:
        """Why the ledger cannot take new records now (None: it can)."""
        if self.journal is not None and self.journal.error is not None:
            return f"usage journal: {self.journal.error}"
        if len(self._pending) >= self.max_pending:
            return (f"ledger database {self.db.display} is behind: "
                    f"{len(self._pending)} rows waiting")
        return None

    def check(self) -> None:
        """Refuse a new request when its record could not be kept (admission guard)."""
        if (self.journal is not None and self.journal.error is not None) \
                or len(self._pending) >= self.max_pending:
            raise LedgerUnavailable("usage records cannot be written now, so the gateway "
                                    "takes no new requests; retry later", retry_after=1.0)

    # -- the sink -----------------------------------------------------------------------
    def record(self, rec: CallRecord) -> None:
        """Queue one record and write it to the journal file (the gateway's sink: one
        ``os.write``, never waits for a lock held across I/O or for an fsync)."""
        row = row_of(rec, self._days.day(rec.ts))
        line = row_to_json(row)
        self._seq += 1
        at = None if self.journal is None else self.journal.append(self._seq, line)
        self._pending.append((self._seq, row, line, at))
        if len(self._pending) >= self.max_batch:
            self._wake.set()

    __call__ = record

    async def find(self, request_id: str) -> CallRecord | None:
        """The record of ``request_id``: still queued here (not yet written: the writer
        runs every ``interval_s``), else from the database (a primary-key lookup)."""
        for _, row, _, _ in reversed(self._pending):
            if row[0] == request_id:
                return to_record(row)
        rows = await record_rows(self.db, request_id)
        return to_record(rows[0]) if rows else None

    async def find_calls(self, request_id: str) -> list[CallRecord]:
        """The further calls of a cascade request (``<request id>.<n>``), in order."""
        prefix = request_id + "."
        found = {row[0]: row for _, row, _, _ in self._pending if row[0].startswith(prefix)}
        for row in await record_rows(self.db, request_id, calls=True):
            found.setdefault(row[0], row)
        return [to_record(found[k]) for k in sorted(found, key=_call_number)]

    # -- lifecycle ------------------------------------------------------------------------
    async def start(self) -> int:
        """Replay what dead processes left in the journal, then start writing."""
        if self.journal is not None:
            orphans = await asyncio.to_thread(self.journal.recover)
            rows = [r for r in map(row_from_json, orphans.lines) if r is not None]
            for i in range(0, len(rows), self.max_batch):
                self.recovered += await self.db.insert_ignore(
                    TABLE, COLUMNS, KEY, rows[i:i + self.max_batch])
            self.journal.discard(orphans)
            if rows:
                log.info("ledger: replayed %d journal rows, %d were missing from %s",
                         len(rows), self.recovered, self.db.display)
            self.journal.start()
        self._task = asyncio.ensure_future(self._run())
        return self.recovered

    async def flush(self) -> None:
        """Write everything queued so far."""
        async with self._lock:
            while self._pending:
                if not await self._write_batch():
                    raise RuntimeError(f"ledger: cannot write to {self.db.display}")

    async def close(self) -> None:
        # a flag, not cancel(): wait_for may swallow a cancellation (CPython gh-86296)
        self._closing = True
        self._wake.set()
        self._stop.set()
        if self._task is not None:
            await self._task
            self._task = None
        try:
            await self.flush()
        except Exception as exc:  # the journal keeps them for the next start
            log.error("ledger: %d rows left in the journal: %s", len(self._pending), exc)
        await self.writer.close()
        if self.journal is not None:
            await asyncio.to_thread(self.journal.close)

    # -- the writer -------------------------------------------------------------------------
    async def _run(self) -> None:
        while not self._closing:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval_s)
            self._wake.clear()
            if self._closing:
                return
            async with self._lock:
                while self._pending:
                    if not await self._write_batch():
                        break
                    if len(self._pending) < self.max_batch:
                        break
            if self._failures and not self._closing:
                with contextlib.suppress(TimeoutError):  # back off; close() cuts it short
                    await asyncio.wait_for(self._stop.wait(),
                                           min(5.0, 0.1 * 2 ** self._failures))

    async def _write_batch(self) -> bool:
        batch = self._pending[:self.max_batch]
        try:
            await self.writer.write([entry[1] for entry in batch],
                                    [entry[2] for entry in batch], self._ranges(batch))
        except Exception as exc:
            self._failures = min(self._failures + 1, 6)
            log.warning("ledger: write of %d rows to %s failed (%s); will retry",
                        len(batch), self.db.display, exc)
            return False
        self._failures = 0
        del self._pending[:len(batch)]
        self.written += len(batch)
        if self.journal is not None:
            self.journal.committed(batch[-1][0])
        return True

    def _ranges(self, batch: list[tuple[int, tuple[Any, ...], bytes, int | None]]
                ) -> list[Range] | None:
        """Where the batch's lines are in the journal's files, consecutive lines of a
        segment as one range; None when a row is not in a file."""
        if self.journal is None:
            return None
        spans: list[tuple[int, int]] = []
        start = end = -1
        for _, _, line, at in batch:
            if at is None:
                return None
            if at != end:  # a location's high bits are its segment: no run spans two
                if start >= 0:
                    spans.append((start, end))
                start = at
            end = at + len(line)
        spans.append((start, end))
        out: list[Range] = []
        for start, end in spans:
            path, offset = self.journal.where(start)
            out.append((path, offset, offset + end - start))
        return out
