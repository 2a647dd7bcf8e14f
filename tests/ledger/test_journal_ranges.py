"""The writer process reads each batch back from the journal's files: ``Journal.append``
tells where a line went, the ledger hands the writer file ranges when every row of a
batch has a place, else the lines inline, and a batch the child cannot read back whole
is resent inline. Nothing lost, nothing counted twice."""

from __future__ import annotations

import errno
import os
import signal
from pathlib import Path
from typing import Any

import pytest
from tests._waiting import until, until_async
from tests.ledger._records import make_record
from tests.ledger._writer_ledger import writer_ledger, written_ids

from kanjia.ledger import Journal, Ledger
from kanjia.ledger._rows import TABLE, row_from_json, row_of, row_to_json, rows_from_json
from kanjia.ledger._writer import ProcessWriter
from kanjia.ledger.store import Database


def _read(j: Journal, at: int, size: int) -> bytes:
    path, offset = j.where(at)
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.pread(fd, size, offset)
    finally:
        os.close(fd)


def _segment(j: Journal, at: int) -> str:
    return j.where(at)[0]


def test_append_tells_where_the_line_is_across_rotations(tmp_path: Path) -> None:
    j = Journal(tmp_path, interval_s=0.01, segment_s=0.02)
    j.start()
    try:
        placed: list[tuple[int, bytes]] = []
        first = j.append(0, b'["r0"]\n')
        assert first is not None
        placed.append((first, b'["r0"]\n'))

        def rotated() -> bool:  # one more row per poll, until one lands in a new segment
            line = b'["r%d"]\n' % len(placed)
            at = j.append(len(placed), line)
            assert at is not None
            placed.append((at, line))
            return _segment(j, at) != _segment(j, first)

        until(rotated, "a row in the next segment")
        for at, line in placed:
            assert _read(j, at, len(line)) == line
        assert len({_segment(j, at) for at, _ in placed}) >= 2
    finally:
        j.committed(len(placed))
        j.close()


def _fail_journal_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    """os.write fails (ENOSPC) on journal segments only (the writer's pipe still works)."""
    real_write = os.write

    def bad_write(fd: int, data: Any) -> int:
        if os.readlink(f"/proc/self/fd/{fd}").endswith(".jsonl"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", bad_write)


def test_a_row_written_by_the_repair_has_no_place_and_later_ones_do(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    j = Journal(tmp_path, interval_s=0.01)
    j.start()
    try:
        a = j.append(0, b'["a"]\n')
        _fail_journal_writes(monkeypatch)
        assert j.append(1, b'["b"]\n') is None
        monkeypatch.undo()
        until(lambda: j.error is None, "the journal's repair")
        c = j.append(2, b'["c"]\n')
        assert a is not None and c is not None and _segment(j, a) != _segment(j, c)
        assert _read(j, a, 6) == b'["a"]\n' and _read(j, c, 6) == b'["c"]\n'
    finally:
        monkeypatch.undo()
        j.committed(2)
        j.close()


def _ledger(db: Database, db_url: str, tmp_path: Path, *, segment_s: float = 5.0,
            **kw: Any) -> Ledger:
    return writer_ledger(db, db_url, tmp_path,
                         journal={"interval_s": 0.01, "segment_s": segment_s}, **kw)


def _writer(ledger: Ledger) -> ProcessWriter:
    assert isinstance(ledger.writer, ProcessWriter)
    return ledger.writer


async def _ids(db: Database) -> set[str]:
    return set(await written_ids(db))


async def test_a_batch_across_a_segment_rotation_is_read_from_both_files(
        db: Database, db_url: str, tmp_path: Path) -> None:
    ledger = _ledger(db, db_url, tmp_path, interval_s=60, segment_s=0.02)
    await ledger.start()
    assert ledger.journal is not None
    recs = [make_record()]
    ledger.record(recs[0])

    async def rotated() -> bool:
        recs.append(make_record())
        ledger.record(recs[-1])
        ranges = ledger._ranges(ledger._pending)
        return ranges is not None and len({path for path, _, _ in ranges}) == 2

    await until_async(rotated, "a pending batch in two segments")
    await ledger.flush()
    assert (_writer(ledger).ranged, _writer(ledger).unreadable) == (1, 0)
    assert await _ids(db) == {r.request_id for r in recs}
    await ledger.close()
    assert not list((tmp_path / "j").glob("*.jsonl"))


async def test_a_batch_with_a_row_not_in_the_journal_goes_inline(
        db: Database, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The journal broken for one row, then repaired: that batch goes inline (the
    repaired segment holds the row at a place nobody was told), the next as ranges."""
    ledger = _ledger(db, db_url, tmp_path, interval_s=60)
    await ledger.start()
    journal = ledger.journal
    assert journal is not None
    recs = [make_record() for _ in range(3)]
    ledger.record(recs[0])
    _fail_journal_writes(monkeypatch)
    ledger.record(recs[1])
    monkeypatch.undo()
    assert journal.error is not None
    await until_async(lambda: journal.error is None, "the journal's repair")
    ledger.record(recs[2])
    assert [at is None for *_, at in ledger._pending] == [False, True, False]
    await ledger.flush()
    assert _writer(ledger).ranged == 0 and await _ids(db) == {r.request_id for r in recs}
    more = [make_record() for _ in range(5)]
    for rec in more:
        ledger.record(rec)
    await ledger.flush()
    assert (_writer(ledger).ranged, _writer(ledger).unreadable) == (1, 0)
    assert await _ids(db) == {r.request_id for r in recs + more}
    await ledger.close()
    assert not list((tmp_path / "j").glob("*.jsonl"))


async def test_a_writer_restarted_between_batches_opens_the_segment_afresh(
        db: Database, db_url: str, tmp_path: Path) -> None:
    ledger = _ledger(db, db_url, tmp_path, interval_s=60)
    await ledger.start()
    first = [make_record() for _ in range(10)]
    for rec in first:
        ledger.record(rec)
    await ledger.flush()
    writer = _writer(ledger)
    old = writer.pid
    assert old is not None and writer._proc is not None
    os.kill(old, signal.SIGKILL)
    proc = writer._proc
    await until_async(lambda: proc.returncode is not None, "the killed writer reaped")
    second = [make_record() for _ in range(10)]
    for rec in second:
        ledger.record(rec)
    await ledger.flush()
    assert writer.pid != old and (writer.ranged, writer.unreadable) == (2, 0)
    assert await _ids(db) == {r.request_id for r in first + second}
    await ledger.close()


async def test_a_torn_read_is_resent_inline(db: Database, db_url: str, tmp_path: Path) -> None:
    """The segment shorter than the ranges say (as after a torn write): the child answers
    that it could not read the batch, and the gateway sends the lines themselves."""
    ledger = _ledger(db, db_url, tmp_path, interval_s=60)
    await ledger.start()
    recs = [make_record() for _ in range(4)]
    for rec in recs:
        ledger.record(rec)
    ranges = ledger._ranges(ledger._pending)
    assert ranges is not None and len(ranges) == 1
    path, _, end = ranges[0]
    os.truncate(path, end - 10)
    await ledger.flush()
    assert (_writer(ledger).ranged, _writer(ledger).unreadable) == (1, 1)
    assert await _ids(db) == {r.request_id for r in recs}
    await ledger.close()


async def test_ranges_that_are_not_the_rows_sent_are_resent_inline_and_then_given_up(
        db: Database, db_url: str, tmp_path: Path) -> None:
    writer = ProcessWriter(db_url)
    rows = [row_of(make_record()) for _ in range(3)]
    lines = [row_to_json(row) for row in rows]
    seg = tmp_path / "seg.jsonl"
    seg.write_bytes(b"".join(lines[:2]))
    try:  # the file holds two of the three rows: whole lines, but not the batch
        assert await writer.write(rows, lines, [(str(seg), 0, seg.stat().st_size)]) == 3
        assert (writer.ranged, writer.unreadable) == (1, 1)
        missing = tmp_path / "gone.jsonl"
        assert await writer.write(rows, lines, [(str(missing), 0, 10)]) == 0
        assert (writer.ranged, writer.unreadable) == (2, 2)
        # a third batch in a row that cannot be read back: ranges are given up
        assert await writer.write(rows, lines, [(str(missing), 0, 10)]) == 0
        assert await writer.write(rows, lines, [(str(missing), 0, 10)]) == 0
        assert (writer.ranged, writer.unreadable) == (3, 3)
    finally:
        await writer.close()
    assert len(await _ids(db)) == 3


async def test_the_same_ranges_twice_insert_once(db: Database, db_url: str,
                                                 tmp_path: Path) -> None:
    ledger = _ledger(db, db_url, tmp_path, interval_s=60)
    await ledger.start()
    recs = [make_record() for _ in range(20)]
    for rec in recs:
        ledger.record(rec)
    pending = list(ledger._pending)
    ranges = ledger._ranges(pending)
    assert ranges is not None
    rows, lines = [e[1] for e in pending], [e[2] for e in pending]
    writer = _writer(ledger)
    assert await writer.write(rows, lines, ranges) == 20
    assert await writer.write(rows, lines, ranges) == 0
    await ledger.flush()  # the ledger's own write of the same batch: nothing new
    assert ledger.written == 20 and writer.unreadable == 0
    ((count,),) = await db.fetch(f"SELECT COUNT(*) FROM {TABLE}")
    assert count == 20
    await ledger.close()


async def test_totals_in_the_database_are_the_rows_recorded(
        db: Database, db_url: str, tmp_path: Path) -> None:
    """Many small batches through rotating segments: every row once, the sums exact."""
    ledger = _ledger(db, db_url, tmp_path, interval_s=0.005, max_batch=37, segment_s=0.01)
    await ledger.start()
    assert ledger.journal is not None
    recs = [make_record(input_tokens=i, output_tokens=3 * i + 1) for i in range(600)]
    segments: set[str] = set()
    for i, rec in enumerate(recs):
        ledger.record(rec)
        at = ledger._pending[-1][3]
        assert at is not None
        segments.add(ledger.journal.where(at)[0])
        if i % 50 == 49:  # let the batches and the rotations happen in between
            await until_async(lambda: ledger.pending == 0, "the writer to catch up")
    await ledger.close()
    assert len(segments) >= 2
    writer = _writer(ledger)
    assert writer.ranged >= 2 and writer.unreadable == 0
    ((count, inp, out),) = await db.fetch(
        f"SELECT COUNT(*), SUM(input_tokens), SUM(output_tokens) FROM {TABLE}")
    assert (count, inp, out) == (600, sum(range(600)), sum(3 * i + 1 for i in range(600)))
    assert ledger.written == 600
    assert not list((tmp_path / "j").glob("*.jsonl"))


def test_one_parse_per_batch_gives_the_rows_of_the_line_by_line_parse() -> None:
    rows = [row_of(make_record()) for _ in range(3)]
    data = b"".join(row_to_json(row) for row in rows)
    assert [tuple(r) for r in rows_from_json(data)] == rows
    legacy = row_to_json(rows[0][:-2])  # before cache_hit and saved_nano
    torn = row_to_json(rows[1])[:-20] + b"\n"
    foreign = b'{"x": 1}\n'
    for mixed in (legacy + data, data + torn, foreign + data, b"\n" + data, data[:-1]):
        expect = [r for r in map(row_from_json, mixed.splitlines()) if r is not None]
        assert [tuple(r) for r in rows_from_json(mixed)] == expect
    assert rows_from_json(b"") == []
