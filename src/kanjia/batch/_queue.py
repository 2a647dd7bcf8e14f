"""A durable job queue in SQLite (stdlib; one small file, WAL mode)."""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

__all__ = ["Job", "JobQueue"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS batch_jobs (
    id TEXT PRIMARY KEY,
    batch_id TEXT NOT NULL,
    created REAL NOT NULL,
    send_at REAL NOT NULL,
    status TEXT NOT NULL,            -- queued | sent | done | failed
    route TEXT,
    model TEXT NOT NULL,             -- what the request asked for
    target TEXT,                     -- vendor/model chosen when queued
    body BLOB NOT NULL,
    expected_cost_now TEXT,
    expected_cost_then TEXT,
    currency TEXT,
    result BLOB,
    error TEXT,
    finished REAL,
    owner TEXT,                      -- sha256 of the API key that queued it (HTTP), or NULL
    key_id TEXT                      -- the virtual key it is billed to (NULL: the operator)
);
CREATE INDEX IF NOT EXISTS batch_jobs_due ON batch_jobs (status, send_at);
CREATE INDEX IF NOT EXISTS batch_jobs_batch ON batch_jobs (batch_id);
"""


@dataclass(frozen=True, slots=True)
class Job:
    id: str
    batch_id: str
    created: float
    send_at: float
    status: str
    route: str | None
    model: str
    target: str | None
    body: dict[str, Any]
    expected_cost_now: str | None
    expected_cost_then: str | None
    currency: str | None
    result: dict[str, Any] | None
    error: str | None
    finished: float | None
    key_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "batch_id": self.batch_id, "status": self.status,
                "model": self.model, "route": self.route, "target": self.target,
                "created": self.created, "send_at": self.send_at, "finished": self.finished,
                "expected_cost_now": self.expected_cost_now,
                "expected_cost_then": self.expected_cost_then, "currency": self.currency,
                "result": self.result, "error": self.error}


_COLS = ("id, batch_id, created, send_at, status, route, model, target, body, "
         "expected_cost_now, expected_cost_then, currency, result, error, finished, key_id")


def _job(row: tuple[Any, ...]) -> Job:
    (jid, bid, created, send_at, status, route, model, target, body, now, then, cur, result,
     error, finished, key_id) = row
    return Job(jid, bid, created, send_at, status, route, model, target, orjson.loads(body),
               now, then, cur, orjson.loads(result) if result else None, error, finished,
               key_id)


class JobQueue:
    """Thread-safe; every call is one short transaction."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False,
                                   isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        columns = {r[1] for r in self._db.execute("PRAGMA table_info(batch_jobs)")}
        if "owner" not in columns:  # a queue made before jobs had owners
            self._db.execute("ALTER TABLE batch_jobs ADD COLUMN owner TEXT")
        if "key_id" not in columns:  # a queue made before jobs were billed to keys
            self._db.execute("ALTER TABLE batch_jobs ADD COLUMN key_id TEXT")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def add(self, *, batch_id: str, model: str, body: dict[str, Any], send_at: float,
            route: str | None, target: str | None, cost_now: str | None,
            cost_then: str | None, currency: str | None, owner: str | None = None,
            key_id: str | None = None) -> str:
        """Queue one job; ``owner`` is who may read it back over HTTP (a key's hash),
        ``key_id`` the virtual key it is billed to (None: the operator)."""
        jid = "job-" + uuid.uuid4().hex[:20]
        with self._lock:
            self._db.execute(
                f"INSERT INTO batch_jobs ({_COLS}, owner) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (jid, batch_id, time.time(), send_at, "queued", route, model, target,
                 orjson.dumps(body), cost_now, cost_then, currency, None, None, None, key_id,
                 owner))
        return jid

    def owner(self, jid: str) -> str | None:
        """The owner given to ``add`` (None: queued without a key, e.g. by the CLI)."""
        with self._lock:
            row = self._db.execute("SELECT owner FROM batch_jobs WHERE id = ?",
                                   (jid,)).fetchone()
        return str(row[0]) if row and row[0] is not None else None

    def claim_due(self, now: float, limit: int = 100, *, keyed: bool = True) -> list[Job]:
        """Mark due jobs as sent and return them (at most once per job). ``keyed=False``:
        only the operator's jobs (a sender that cannot bill a key's budget)."""
        only = "" if keyed else " AND key_id IS NULL"
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            rows = self._db.execute(
                f"SELECT {_COLS} FROM batch_jobs WHERE status = 'queued' AND send_at <= ?"
                f"{only} ORDER BY send_at LIMIT ?", (now, limit)).fetchall()
            self._db.executemany("UPDATE batch_jobs SET status = 'sent' WHERE id = ?",
                                 [(r[0],) for r in rows])
            self._db.execute("COMMIT")
        return [_job(r) for r in rows]

    def finish(self, jid: str, result: dict[str, Any] | None, error: str | None) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE batch_jobs SET status = ?, result = ?, error = ?, finished = ? "
                "WHERE id = ?", ("failed" if error else "done",
                                 orjson.dumps(result) if result is not None else None, error,
                                 time.time(), jid))

    def requeue_sent(self) -> int:
        """After a crash: jobs marked sent but never finished go back to the queue."""
        with self._lock:
            cur = self._db.execute(
                "UPDATE batch_jobs SET status = 'queued' WHERE status = 'sent'")
            return cur.rowcount

    def get(self, jid: str) -> Job | None:
        with self._lock:
            row = self._db.execute(f"SELECT {_COLS} FROM batch_jobs WHERE id = ?",
                                   (jid,)).fetchone()
        return _job(row) if row else None

    def jobs(self, batch_id: str | None = None) -> list[Job]:
        with self._lock:
            if batch_id:
                rows = self._db.execute(f"SELECT {_COLS} FROM batch_jobs WHERE batch_id = ? "
                                        "ORDER BY created", (batch_id,)).fetchall()
            else:
                rows = self._db.execute(f"SELECT {_COLS} FROM batch_jobs "
                                        "ORDER BY created").fetchall()
        return [_job(r) for r in rows]

    def counts(self, batch_id: str | None = None) -> dict[str, int]:
        with self._lock:
            sql = "SELECT status, COUNT(*) FROM batch_jobs"
            args: tuple[Any, ...] = ()
            if batch_id:
                sql += " WHERE batch_id = ?"
                args = (batch_id,)
            rows = self._db.execute(sql + " GROUP BY status", args).fetchall()
        return {str(s): int(n) for s, n in rows}

    def next_due(self) -> float | None:
        with self._lock:
            row = self._db.execute("SELECT MIN(send_at) FROM batch_jobs "
                                   "WHERE status = 'queued'").fetchone()
        return float(row[0]) if row and row[0] is not None else None
