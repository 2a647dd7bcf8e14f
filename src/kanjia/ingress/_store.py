"""Stored responses (``store: true``) for ``previous_response_id`` and ``GET/DELETE
/v1/responses/{id}``.

Two stores behind one async interface. ``ResponseStore``: in memory, per gateway process,
bounded (least recently used responses go first); a restart forgets them, and with
several worker processes a follow-up may land on a worker that never saw the response.
``SQLiteResponseStore`` (used when the ledger is a SQLite file: a ``.responses`` file
beside it): shared by every worker on the machine, kept 30 days, each call on one
dedicated thread so the event loop never waits on the disk.

Each response belongs to the key that created it (kept as a hash): another key sees a 404,
as if it did not exist.
"""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import orjson

__all__ = ["ResponseStore", "Responses", "SQLiteResponseStore", "Stored", "owner_of"]


def owner_of(api_key: str | None) -> str:
    """Who owns a stored response: a hash of the key (never the key itself)."""
    return hashlib.sha256((api_key or "").encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Stored:
    owner: str
    response: dict[str, Any]
    #: the conversation after this response, as chat messages (without instructions)
    history: list[dict[str, Any]]
    input_items: list[dict[str, Any]]
    size: int
    #: the whole conversation after this response as Responses input items (what a
    #: vendor that speaks the Responses API is sent for ``previous_response_id``); None
    #: for a response stored before kanjia kept them
    items: list[dict[str, Any]] | None = None


class Responses(Protocol):
    """Where stored responses live."""

    async def get(self, owner: str, rid: str) -> Stored | None: ...

    async def put(self, owner: str, response: dict[str, Any], history: list[dict[str, Any]],
                  input_items: list[dict[str, Any]],
                  items: list[dict[str, Any]] | None = None) -> None: ...

    async def delete(self, owner: str, rid: str) -> bool: ...

    async def close(self) -> None: ...


class ResponseStore:
    """In memory, per process, bounded by count and size."""

    def __init__(self, max_items: int = 2000, max_bytes: int = 64 * 1024 * 1024) -> None:
        self.max_items = max_items
        self.max_bytes = max_bytes
        self._items: OrderedDict[str, Stored] = OrderedDict()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._items)

    async def put(self, owner: str, response: dict[str, Any],
                  history: list[dict[str, Any]], input_items: list[dict[str, Any]],
                  items: list[dict[str, Any]] | None = None) -> None:
        size = len(orjson.dumps([response, history, input_items, items]))
        if size > self.max_bytes:
            return  # larger than the whole store: not kept (a later lookup is a 404)
        rid = response["id"]
        self._drop(rid)
        self._items[rid] = Stored(owner, response, history, input_items, size, items)
        self._bytes += size
        while len(self._items) > self.max_items or self._bytes > self.max_bytes:
            self._drop(next(iter(self._items)))

    async def get(self, owner: str, rid: str) -> Stored | None:
        return self._get(owner, rid)

    def _get(self, owner: str, rid: str) -> Stored | None:
        item = self._items.get(rid)
        if item is None or item.owner != owner:
            return None
        self._items.move_to_end(rid)
        return item

    async def delete(self, owner: str, rid: str) -> bool:
        if self._get(owner, rid) is None:
            return False
        self._drop(rid)
        return True

    async def close(self) -> None:
        self._items.clear()
        self._bytes = 0

    def _drop(self, rid: str) -> None:
        old = self._items.pop(rid, None)
        if old is not None:
            self._bytes -= old.size


_SCHEMA = """CREATE TABLE IF NOT EXISTS responses (
    id TEXT PRIMARY KEY, owner TEXT NOT NULL, created REAL NOT NULL, body BLOB NOT NULL)"""


class SQLiteResponseStore:
    """A SQLite file shared by the gateway's workers; responses older than ``ttl_s`` go."""

    def __init__(self, path: str, ttl_s: float = 30 * 86400) -> None:
        self.path = path
        self.ttl_s = ttl_s
        self._conn: sqlite3.Connection | None = None
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="kanjia-responses")

    async def _run(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._thread, fn, *args)

    def _c(self) -> sqlite3.Connection:
        if self._conn is None:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                                   timeout=30)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(_SCHEMA)
            conn.execute("DELETE FROM responses WHERE created < ?", (time.time() - self.ttl_s,))
            self._conn = conn
        return self._conn

    def _get(self, owner: str, rid: str) -> Stored | None:
        row = self._c().execute("SELECT body FROM responses WHERE id = ? AND owner = ? "
                                "AND created >= ?",
                                (rid, owner, time.time() - self.ttl_s)).fetchone()
        if row is None:
            return None
        data = orjson.loads(row[0])
        return Stored(owner, data["response"], data["history"], data["input_items"],
                      len(row[0]), data.get("items"))

    async def get(self, owner: str, rid: str) -> Stored | None:
        result: Stored | None = await self._run(self._get, owner, rid)
        return result

    def _put(self, owner: str, rid: str, body: bytes) -> None:
        self._c().execute("INSERT OR REPLACE INTO responses (id, owner, created, body) "
                          "VALUES (?, ?, ?, ?)", (rid, owner, time.time(), body))

    async def put(self, owner: str, response: dict[str, Any], history: list[dict[str, Any]],
                  input_items: list[dict[str, Any]],
                  items: list[dict[str, Any]] | None = None) -> None:
        body = orjson.dumps({"response": response, "history": history,
                             "input_items": input_items, "items": items})
        await self._run(self._put, owner, response["id"], body)

    def _delete(self, owner: str, rid: str) -> bool:
        cur = self._c().execute("DELETE FROM responses WHERE id = ? AND owner = ?",
                                (rid, owner))
        return cur.rowcount > 0

    async def delete(self, owner: str, rid: str) -> bool:
        return bool(await self._run(self._delete, owner, rid))

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    async def close(self) -> None:
        await self._run(self._close)
        self._thread.shutdown(wait=True)
