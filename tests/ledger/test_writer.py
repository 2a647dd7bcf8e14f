"""The ledger writer process: rows reach the database through it, a dead writer is
replaced without losing or doubling a row, and it leaves with the ledger."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tests._waiting import until_async
from tests.ledger._records import make_record
from tests.ledger._writer_ledger import writer_ledger, written_ids

from kanjia.ledger import Journal, Ledger
from kanjia.ledger._rows import TABLE
from kanjia.ledger._writer import ProcessWriter, Range
from kanjia.ledger.store import Database


def _writer_pid(ledger: Ledger) -> int:
    """The pid of the ledger's writer process (one is running)."""
    writer = ledger.writer
    assert isinstance(writer, ProcessWriter) and writer.pid is not None
    return writer.pid


async def _wait_written(ledger: Ledger, n: int) -> None:
    for _ in range(500):
        if ledger.written >= n:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"only {ledger.written} of {n} rows written")


async def test_rows_go_through_the_writer_process(db: Database, db_url: str,
                                                  tmp_path: Path) -> None:
    ledger = writer_ledger(db, db_url, tmp_path, interval_s=0.05, max_batch=100)
    await ledger.start()
    recs = [make_record(stream=True, usage_estimated=True) for _ in range(250)]
    for rec in recs:
        ledger.record(rec)
    await _wait_written(ledger, 250)
    pid = _writer_pid(ledger)
    assert sorted(await written_ids(db)) == sorted(r.request_id for r in recs)
    rows = await db.fetch(f"SELECT DISTINCT stream, usage_estimated, cost_nano FROM {TABLE}")
    assert rows == [(1, 1, 460_000)]
    await ledger.close()
    assert not _alive(pid)  # it leaves with the ledger
    assert not list((tmp_path / "j").glob("*.jsonl"))


async def test_a_killed_writer_is_replaced_and_nothing_is_lost_or_doubled(
        db: Database, db_url: str, tmp_path: Path) -> None:
    ledger = writer_ledger(db, db_url, tmp_path, interval_s=0.02)
    await ledger.start()
    first = [make_record() for _ in range(50)]
    for rec in first:
        ledger.record(rec)
    await _wait_written(ledger, 50)
    old = _writer_pid(ledger)
    os.kill(old, signal.SIGKILL)
    second = [make_record() for _ in range(50)]
    for rec in second:
        ledger.record(rec)
    await _wait_written(ledger, 100)
    assert _writer_pid(ledger) != old  # a new writer process
    ids = await written_ids(db)
    assert len(ids) == 100 and sorted(ids) == sorted(r.request_id for r in first + second)
    await ledger.close()


async def test_the_writer_ignores_sigint_so_the_last_flush_gets_through(
        db: Database, db_url: str, tmp_path: Path) -> None:
    """Ctrl-C reaches the whole process group: the writer must wait for the gateway."""
    ledger = writer_ledger(db, db_url, tmp_path, interval_s=60)
    await ledger.start()
    ledger.record(make_record())
    await ledger.flush()
    pid = _writer_pid(ledger)
    os.kill(pid, signal.SIGINT)
    os.kill(pid, signal.SIGTERM)
    recs = [make_record() for _ in range(20)]
    for rec in recs:
        ledger.record(rec)
    await ledger.close()
    assert len(await written_ids(db)) == 21


class _CountingWriter(ProcessWriter):
    """A writer process that counts the batches it failed to write."""

    failed = 0

    async def write(self, rows: Sequence[tuple[Any, ...]], lines: Sequence[bytes],
                    ranges: Sequence[Range] | None = None) -> int:
        try:
            return await super().write(rows, lines, ranges)
        except Exception:
            self.failed += 1
            raise


async def test_a_write_error_keeps_the_batch_for_a_retry(tmp_path: Path) -> None:
    from kanjia.ledger.store import migrate, open_database

    path = tmp_path / "l.db"
    db = open_database(str(path))
    await db.connect()
    await migrate(db)
    # the child's database has no tables: every insert fails
    broken = _CountingWriter(str(tmp_path / "other" / "l.db"))
    ledger = Ledger(db, Journal(tmp_path / "j"), interval_s=0.02, writer=broken)
    await ledger.start()
    ledger.record(make_record())
    await until_async(lambda: broken.failed >= 1, "the writer process's failed insert")
    assert ledger.written == 0 and ledger.pending == 1  # the child could not write: kept
    await broken.close()
    ledger.writer = ProcessWriter(str(path))
    await _wait_written(ledger, 1)
    await ledger.close()
    await db.close()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is not alive either
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
