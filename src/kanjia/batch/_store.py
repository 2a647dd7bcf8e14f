"""Files and batches of the OpenAI-compatible Batch API, durable in SQLite (WAL).

One small file beside the deferred-work queue. Every row has an ``owner`` (the key id
that created it, "" on an open gateway); lookups by another owner find nothing.
"""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

__all__ = ["BatchRow", "BatchStore", "FileRow", "LineRow", "store_path"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS api_files (
    id TEXT PRIMARY KEY, owner TEXT NOT NULL, purpose TEXT NOT NULL, filename TEXT NOT NULL,
    bytes INTEGER NOT NULL, created_at INTEGER NOT NULL, content BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS api_batches (
    id TEXT PRIMARY KEY, owner TEXT NOT NULL, seq INTEGER NOT NULL, doc BLOB NOT NULL,
    deadline REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS api_batches_owner ON api_batches (owner, seq);
CREATE TABLE IF NOT EXISTS api_lines (
    batch_id TEXT NOT NULL, n INTEGER NOT NULL, custom_id TEXT NOT NULL, body BLOB NOT NULL,
    way TEXT NOT NULL,               -- now | offpeak | vendor_batch
    target TEXT NOT NULL, send_at REAL NOT NULL,
    status TEXT NOT NULL,            -- pending | submitted | done | failed | cancelled
    vendor_batch TEXT, out BLOB, ok INTEGER, cost TEXT, currency TEXT,
    PRIMARY KEY (batch_id, n)
);
CREATE INDEX IF NOT EXISTS api_lines_status ON api_lines (status, send_at);
"""


def store_path(queue_path: str) -> Path:
    """The store's file: beside the batch queue (``kanjia-batch.db`` -> ``kanjia-batch.api.db``)."""
    p = Path(queue_path)
    return p.with_name(p.stem + ".api" + (p.suffix or ".db"))


@dataclass(frozen=True, slots=True)
class FileRow:
    id: str
    owner: str
    purpose: str
    filename: str
    bytes: int
    created_at: int

    def as_openai(self) -> dict[str, Any]:
        return {"id": self.id, "object": "file", "bytes": self.bytes,
                "created_at": self.created_at, "filename": self.filename,
                "purpose": self.purpose, "status": "processed", "expires_at": None,
                "status_details": None}


@dataclass(frozen=True, slots=True)
class BatchRow:
    id: str
    owner: str
    doc: dict[str, Any]              # the OpenAI batch object
    deadline: float


@dataclass(frozen=True, slots=True)
class LineRow:
    batch_id: str
    n: int
    custom_id: str
    body: dict[str, Any]
    way: str
    target: str
    send_at: float
    status: str
    vendor_batch: str | None
    out: dict[str, Any] | None
    ok: bool | None
    cost: str | None
    currency: str | None


_LCOLS = ("batch_id, n, custom_id, body, way, target, send_at, status, vendor_batch, out, ok, "
          "cost, currency")


def _line(r: tuple[Any, ...]) -> LineRow:
    return LineRow(r[0], r[1], r[2], orjson.loads(r[3]), r[4], r[5], r[6], r[7], r[8],
                   orjson.loads(r[9]) if r[9] else None, None if r[10] is None else bool(r[10]),
                   r[11], r[12])


class BatchStore:
    """Thread-safe; every call is one short transaction."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False,
                                   isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- files ------------------------------------------------------------------
    def add_file(self, owner: str, purpose: str, filename: str, content: bytes) -> FileRow:
        row = FileRow("file-" + uuid.uuid4().hex[:24], owner, purpose, filename, len(content),
                      int(time.time()))
        with self._lock:
            self._db.execute("INSERT INTO api_files VALUES (?,?,?,?,?,?,?)",
                             (row.id, owner, purpose, filename, row.bytes, row.created_at,
                              content))
        return row

    def file(self, owner: str, fid: str) -> FileRow | None:
        with self._lock:
            r = self._db.execute("SELECT id, owner, purpose, filename, bytes, created_at "
                                 "FROM api_files WHERE id = ? AND owner = ?",
                                 (fid, owner)).fetchone()
        return FileRow(*r) if r else None

    def content(self, owner: str, fid: str) -> bytes | None:
        with self._lock:
            r = self._db.execute("SELECT content FROM api_files WHERE id = ? AND owner = ?",
                                 (fid, owner)).fetchone()
        return bytes(r[0]) if r else None

    # -- batches ----------------------------------------------------------------
    def add_batch(self, owner: str, doc: dict[str, Any], deadline: float,
                  lines: list[tuple[int, str, dict[str, Any], str, str, float]]) -> None:
        """A batch with its lines (n, custom_id, body, way, target, send_at), at once."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            seq = self._db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM api_batches"
                                   ).fetchone()[0]
            self._db.execute("INSERT INTO api_batches VALUES (?,?,?,?,?)",
                             (doc["id"], owner, seq, orjson.dumps(doc), deadline))
            self._db.executemany(
                f"INSERT INTO api_lines ({_LCOLS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                [(doc["id"], n, cid, orjson.dumps(body), way, target, send_at, "pending",
                  None, None, None, None, None) for n, cid, body, way, target, send_at in lines])
            self._db.execute("COMMIT")

    def batch(self, bid: str, owner: str | None = None) -> BatchRow | None:
        sql = "SELECT id, owner, doc, deadline FROM api_batches WHERE id = ?"
        args: tuple[Any, ...] = (bid,)
        if owner is not None:
            sql += " AND owner = ?"
            args = (bid, owner)
        with self._lock:
            r = self._db.execute(sql, args).fetchone()
        return BatchRow(r[0], r[1], orjson.loads(r[2]), r[3]) if r else None

    def batches(self, owner: str, after: str | None, limit: int) -> list[BatchRow]:
        """Newest first; ``after``: the page after that batch id."""
        with self._lock:
            top = None
            if after:
                row = self._db.execute("SELECT seq FROM api_batches WHERE id = ? AND owner = ?",
                                       (after, owner)).fetchone()
                top = row[0] if row else None
            sql = "SELECT id, owner, doc, deadline FROM api_batches WHERE owner = ?"
            args: list[Any] = [owner]
            if top is not None:
                sql += " AND seq < ?"
                args.append(top)
            rows = self._db.execute(sql + " ORDER BY seq DESC LIMIT ?",
                                    (*args, limit)).fetchall()
        return [BatchRow(r[0], r[1], orjson.loads(r[2]), r[3]) for r in rows]

    def open_batches(self) -> list[BatchRow]:
        with self._lock:
            rows = self._db.execute("SELECT id, owner, doc, deadline FROM api_batches "
                                    "ORDER BY seq").fetchall()
        out = [BatchRow(r[0], r[1], orjson.loads(r[2]), r[3]) for r in rows]
        return [b for b in out if b.doc["status"] in ("validating", "in_progress",
                                                       "finalizing", "cancelling")]

    def save_batch(self, doc: dict[str, Any]) -> None:
        with self._lock:
            self._db.execute("UPDATE api_batches SET doc = ? WHERE id = ?",
                             (orjson.dumps(doc), doc["id"]))

    # -- lines ------------------------------------------------------------------
    def lines(self, bid: str, status: str | None = None) -> list[LineRow]:
        sql = f"SELECT {_LCOLS} FROM api_lines WHERE batch_id = ?"
        args: tuple[Any, ...] = (bid,)
        if status is not None:
            sql += " AND status = ?"
            args = (bid, status)
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY n", args).fetchall()
        return [_line(r) for r in rows]

    def set_submitted(self, bid: str, ns: list[int], vendor_batch: str) -> None:
        with self._lock:
            self._db.executemany("UPDATE api_lines SET status = 'submitted', vendor_batch = ? "
                                 "WHERE batch_id = ? AND n = ?",
                                 [(vendor_batch, bid, n) for n in ns])

    def finish_line(self, bid: str, n: int, status: str, out: dict[str, Any] | None,
                    ok: bool, cost: str | None = None, currency: str | None = None) -> None:
        with self._lock:
            self._db.execute("UPDATE api_lines SET status = ?, out = ?, ok = ?, cost = ?, "
                             "currency = ? WHERE batch_id = ? AND n = ?",
                             (status, orjson.dumps(out) if out is not None else None, int(ok),
                              cost, currency, bid, n))
