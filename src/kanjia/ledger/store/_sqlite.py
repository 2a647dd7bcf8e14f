"""SQLite: one connection in WAL mode, used from one dedicated thread."""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from kanjia.ledger.store._db import Conflict, Step

__all__ = ["SQLiteDatabase"]

T = TypeVar("T")

#: rows per multi-row INSERT statement, and the batch size from which they are used.
#: Measured (34 columns, 4 indexes): in 2000-row batches, chunks of 64-256 rows take
#: ~23% less CPU than ``executemany`` (in one process) and the writer process ~18% less
#: end to end; in ~120-row batches, the writer process on the gateway's core,
#: ``executemany`` was ~6% cheaper end to end (in one process chunks were ~9% cheaper).
_CHUNK = 128
_MULTI_FROM = 512


class SQLiteDatabase:
    dialect = "sqlite"

    def __init__(self, path: str) -> None:
        self.path = path
        self.display = path
        self._conn: sqlite3.Connection | None = None
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="kanjia-sqlite")
        #: multi-row INSERT statements by (table, key, rows, columns)
        self._inserts: dict[tuple[str, str, int, tuple[str, ...]], str] = {}

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._thread, fn, *args)

    def _open(self) -> None:
        if self._conn is not None:
            return
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                               timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=30000")
        self._conn = conn

    def _c(self) -> sqlite3.Connection:
        if self._conn is None:
            self._open()
        assert self._conn is not None
        return self._conn

    async def connect(self) -> None:
        await self._run(self._open)

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    async def close(self) -> None:
        await self._run(self._close)
        self._thread.shutdown(wait=True)

    def _execute(self, sql: str, args: Sequence[Any]) -> int:
        try:
            return self._c().execute(sql, tuple(args)).rowcount
        except sqlite3.IntegrityError as exc:
            raise Conflict(str(exc)) from None

    async def execute(self, sql: str, args: Sequence[Any] = ()) -> int:
        return await self._run(self._execute, sql, args)

    def _fetch(self, sql: str, args: Sequence[Any]) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in self._c().execute(sql, tuple(args)).fetchall()]

    async def fetch(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return await self._run(self._fetch, sql, args)

    def _transaction(self, steps: Sequence[Step]) -> list[int]:
        conn = self._c()
        conn.execute("BEGIN IMMEDIATE")
        try:
            counts = [conn.execute(sql, tuple(args)).rowcount for sql, args in steps]
        except sqlite3.IntegrityError as exc:
            conn.execute("ROLLBACK")
            raise Conflict(str(exc)) from None
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return counts

    async def transaction(self, steps: Sequence[Step]) -> list[int]:
        return await self._run(self._transaction, steps)

    def _insert_ignore(self, table: str, names: list[str], key: str,
                       rows: Sequence[Sequence[Any]]) -> int:
        """One transaction; returns the rows inserted (a row whose key is there already
        is not counted). A batch of ``_MULTI_FROM`` rows or more goes in multi-row
        ``INSERT ... VALUES (...), (...) ON CONFLICT DO NOTHING`` statements of
        ``_CHUNK`` rows (fewer when SQLite's variable limit is lower), the rest with
        ``executemany`` of the one-row statement, as smaller batches do."""
        conn = self._c()
        width = len(names)
        size = min(_CHUNK, conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // width)
        n = len(rows)
        multi = n - n % size if n >= _MULTI_FROM and size > 1 else 0
        before = conn.total_changes
        conn.execute("BEGIN IMMEDIATE")
        try:
            if multi:
                sql = self._insert_sql(table, names, key, size)
                for i in range(0, multi, size):
                    conn.execute(sql, list(itertools.chain.from_iterable(rows[i:i + size])))
            if multi < n:
                conn.executemany(self._insert_sql(table, names, key, 1),
                                 rows[multi:] if multi else rows)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return conn.total_changes - before

    def _insert_sql(self, table: str, names: list[str], key: str, rows: int) -> str:
        cache_key = (table, key, rows, tuple(names))
        sql = self._inserts.get(cache_key)
        if sql is None:
            one = f"({', '.join('?' * len(names))})"
            sql = self._inserts[cache_key] = (
                f"INSERT INTO {table} ({', '.join(names)}) VALUES "
                f"{', '.join([one] * rows)} ON CONFLICT ({key}) DO NOTHING")
        return sql

    async def insert_ignore(self, table: str, columns: Sequence[tuple[str, str]],
                            key: str, rows: Sequence[Sequence[Any]]) -> int:
        return await self._run(self._insert_ignore, table, [c for c, _ in columns], key, rows)
