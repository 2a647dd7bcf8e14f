"""The ledger sink: batched writes off the request path, replay without double counting."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.ledger._records import make_record

from kanjia.ledger import Journal, Ledger
from kanjia.ledger._rows import COLUMNS, KEY, TABLE, row_of
from kanjia.ledger.store import Database


async def _ids(db: Database) -> list[str]:
    return [r[0] for r in await db.fetch(f"SELECT request_id FROM {TABLE}")]


async def test_records_are_batched_and_flushed(db: Database, tmp_path: Path) -> None:
    ledger = Ledger(db, Journal(tmp_path / "j"), interval_s=0.05, max_batch=100)
    await ledger.start()
    recs = [make_record() for _ in range(250)]
    for rec in recs:
        ledger.record(rec)  # never awaits
    assert ledger.pending > 0
    for _ in range(100):
        if ledger.pending == 0:
            break
        await asyncio.sleep(0.02)
    assert sorted(await _ids(db)) == sorted(r.request_id for r in recs)
    await ledger.close()
    assert not list((tmp_path / "j").iterdir())  # clean shutdown leaves no journal


async def test_close_flushes_everything(db: Database, tmp_path: Path) -> None:
    ledger = Ledger(db, Journal(tmp_path / "j"), interval_s=60)
    await ledger.start()
    recs = [make_record(client_disconnected=True, usage_estimated=True, stream=True)
            for _ in range(30)]
    for rec in recs:
        ledger.record(rec)
    await ledger.close()
    assert sorted(await _ids(db)) == sorted(r.request_id for r in recs)
    rows = await db.fetch(f"SELECT client_disconnected, usage_estimated FROM {TABLE}")
    assert set(rows) == {(1, 1)}


async def test_replay_after_crash_counts_once(db: Database, tmp_path: Path) -> None:
    journal_dir = tmp_path / "j"
    crashed = Ledger(db, Journal(journal_dir, interval_s=0.01), interval_s=60)
    await crashed.start()
    recs = [make_record() for _ in range(40)]
    for rec in recs:
        crashed.record(rec)
    assert crashed.journal is not None
    while crashed.journal.durable_seq < 40:
        await asyncio.sleep(0.01)
    # half of them reached the database before the "crash"
    await db.insert_ignore(TABLE, COLUMNS, KEY, [row_of(r) for r in recs[:20]])
    # the process dies: its journal thread stops, its lock is released, nothing is flushed
    crashed.journal._stop.set()
    assert crashed.journal._thread is not None
    crashed.journal._thread.join()
    import os
    os.close(crashed.journal._lock_fd)
    assert crashed._task is not None
    crashed._task.cancel()

    fresh = Ledger(db, Journal(journal_dir), interval_s=0.05)
    assert await fresh.start() == 20
    await fresh.close()
    ids = await _ids(db)
    assert len(ids) == len(set(ids)) == 40
    again = Ledger(db, Journal(journal_dir))
    assert await again.start() == 0  # nothing left to replay
    await again.close()


class _Flaky:
    """A database whose first writes fail."""

    def __init__(self, db: Database, failures: int) -> None:
        self.db = db
        self.failures = failures
        self.display = "flaky"

    async def insert_ignore(self, *args: object) -> int:
        if self.failures:
            self.failures -= 1
            raise OSError("connection refused")
        return await self.db.insert_ignore(*args)  # type: ignore[arg-type]


async def test_failed_writes_are_retried(db: Database) -> None:
    ledger = Ledger(_Flaky(db, 2), interval_s=0.02)  # type: ignore[arg-type]
    await ledger.start()
    recs = [make_record() for _ in range(5)]
    for rec in recs:
        ledger.record(rec)
    for _ in range(200):
        if ledger.pending == 0:
            break
        await asyncio.sleep(0.02)
    assert sorted(await _ids(db)) == sorted(r.request_id for r in recs)
    await ledger.close()


async def test_a_database_far_behind_refuses_new_requests(db: Database) -> None:
    """F9: rows waiting for an unreachable database are bounded: past ``max_pending`` the
    admission guard refuses (503) and the health check says why, until they are written."""
    from kanjia.errors import LedgerUnavailable

    ledger = Ledger(_Flaky(db, 3), interval_s=0.02, max_pending=4)  # type: ignore[arg-type]
    await ledger.start()
    ledger.check()
    for _ in range(4):
        ledger.record(make_record())
    try:
        ledger.check()
    except LedgerUnavailable as exc:
        assert exc.status == 503 and exc.code == "ledger_unavailable"
    else:
        raise AssertionError("a full queue must refuse new requests")
    assert "behind" in (ledger.problem() or "")
    for _ in range(500):
        if ledger.pending == 0:
            break
        await asyncio.sleep(0.02)
    ledger.check()
    assert ledger.problem() is None
    await ledger.close()
