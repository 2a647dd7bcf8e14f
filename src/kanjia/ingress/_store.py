"""Stored responses (``store: true``) for ``previous_response_id`` and ``GET/DELETE
/v1/responses/{id}``: in memory, per gateway process, bounded (least recently used
responses go first). Each response belongs to the key that created it (kept as a hash):
another key sees a 404, as if it did not exist. A restart forgets them; a client that
needs durable conversations sends the whole input each turn (``store: false``).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import orjson

__all__ = ["ResponseStore", "Stored", "owner_of"]


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


class ResponseStore:
    def __init__(self, max_items: int = 2000, max_bytes: int = 64 * 1024 * 1024) -> None:
        self.max_items = max_items
        self.max_bytes = max_bytes
        self._items: OrderedDict[str, Stored] = OrderedDict()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._items)

    def put(self, owner: str, response: dict[str, Any], history: list[dict[str, Any]],
            input_items: list[dict[str, Any]]) -> None:
        size = len(orjson.dumps([response, history, input_items]))
        if size > self.max_bytes:
            return  # larger than the whole store: not kept (a later lookup is a 404)
        rid = response["id"]
        self._drop(rid)
        self._items[rid] = Stored(owner, response, history, input_items, size)
        self._bytes += size
        while len(self._items) > self.max_items or self._bytes > self.max_bytes:
            self._drop(next(iter(self._items)))

    def get(self, owner: str, rid: str) -> Stored | None:
        item = self._items.get(rid)
        if item is None or item.owner != owner:
            return None
        self._items.move_to_end(rid)
        return item

    def delete(self, owner: str, rid: str) -> bool:
        if self.get(owner, rid) is None:
            return False
        self._drop(rid)
        return True

    def _drop(self, rid: str) -> None:
        old = self._items.pop(rid, None)
        if old is not None:
            self._bytes -= old.size
