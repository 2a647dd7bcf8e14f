"""Where cached answers live: Redis when the gateway has one (shared by every instance,
bounded by Redis's own memory policy), else a local SQLite file that survives restarts,
bounded by entries and bytes (least recently used first, expired entries before that)."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

__all__ = ["LocalStore", "RedisStore", "Store"]


class Store(Protocol):
    async def get(self, key: str) -> bytes | None: ...

    async def put(self, key: str, value: bytes, ttl_s: int) -> None: ...

    async def close(self) -> None: ...


_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    key     TEXT PRIMARY KEY,
    value   BLOB NOT NULL,
    size    INTEGER NOT NULL,
    expires REAL NOT NULL,
    used    REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS entries_used ON entries (used);
CREATE INDEX IF NOT EXISTS entries_expires ON entries (expires);
"""


class LocalStore:
    """A bounded SQLite store. Its work runs in a worker thread, one call at a time."""

    def __init__(self, path: str, *, max_entries: int, max_bytes: int,
                 clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._clock = clock
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            folder = os.path.dirname(os.path.abspath(self.path))
            os.makedirs(folder, exist_ok=True)
            db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.executescript(_SCHEMA)
            self._db = db
        return self._db

    def get_now(self, key: str) -> bytes | None:
        now = self._clock()
        with self._lock:
            db = self._conn()
            row = db.execute("SELECT value FROM entries WHERE key = ? AND expires > ?",
                             (key, now)).fetchone()
            if row is None:
                return None
            db.execute("UPDATE entries SET used = ? WHERE key = ?", (now, key))
            return bytes(row[0])

    def put_now(self, key: str, value: bytes, ttl_s: int) -> None:
        if len(value) > self.max_bytes:
            return
        now = self._clock()
        with self._lock:
            db = self._conn()
            db.execute("BEGIN IMMEDIATE")
            try:
                db.execute("INSERT OR REPLACE INTO entries (key, value, size, expires, used) "
                           "VALUES (?, ?, ?, ?, ?)", (key, value, len(value), now + ttl_s, now))
                self._evict(db, now)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def _evict(self, db: sqlite3.Connection, now: float) -> None:
        db.execute("DELETE FROM entries WHERE expires <= ?", (now,))
        count, size = db.execute("SELECT COUNT(*), COALESCE(SUM(size), 0) FROM entries"
                                 ).fetchone()
        if count > self.max_entries:
            db.execute("DELETE FROM entries WHERE key IN (SELECT key FROM entries "
                       "ORDER BY used LIMIT ?)", (count - self.max_entries,))
            count, size = db.execute("SELECT COUNT(*), COALESCE(SUM(size), 0) FROM entries"
                                     ).fetchone()
        if size > self.max_bytes:
            over = size - self.max_bytes
            drop: list[str] = []
            for key, n in db.execute("SELECT key, size FROM entries ORDER BY used"):
                drop.append(key)
                over -= n
                if over <= 0:
                    break
            db.executemany("DELETE FROM entries WHERE key = ?", [(k,) for k in drop])

    def stats(self) -> tuple[int, int]:
        """(entries, bytes) held now."""
        with self._lock:
            row = self._conn().execute(
                "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM entries").fetchone()
        return int(row[0]), int(row[1])

    async def get(self, key: str) -> bytes | None:
        return await asyncio.to_thread(self.get_now, key)

    async def put(self, key: str, value: bytes, ttl_s: int) -> None:
        await asyncio.to_thread(self.put_now, key, value, ttl_s)

    async def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None


class RedisStore:
    """Entries as Redis strings with a TTL, under ``prefix``."""

    def __init__(self, url: str, prefix: str = "kanjia:rc:", timeout_s: float = 0.5) -> None:
        import redis.asyncio as aioredis

        self.prefix = prefix
        self._client: Any = aioredis.Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)

    async def get(self, key: str) -> bytes | None:
        value = await self._client.get(self.prefix + key)
        return None if value is None else bytes(value)

    async def put(self, key: str, value: bytes, ttl_s: int) -> None:
        await self._client.set(self.prefix + key, value, ex=ttl_s)

    async def close(self) -> None:
        await self._client.aclose()
