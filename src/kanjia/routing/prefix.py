"""Prompt prefixes this gateway sent recently, per deployment: cache-aware routing.

A vendor's prompt cache only serves a prefix that reached the same deployment (key and
base URL) before, within the vendor's cache lifetime. ``prefix_blocks`` cuts a chat
request at its block boundaries (the tool list, then each message) into chained hashes
with the rough token count up to each boundary; ``PrefixTracker`` remembers, for each
deployment, the boundaries it was sent and when they expire (refreshed by each use, as
the vendors' caches are), bounded in size. The planner asks it how many prompt tokens a
candidate would likely serve from cache; the gateway asks which deployment of a target
holds the longest live prefix (affinity) and tells it what was sent.

The tracker is a guess about the vendor's cache, never a bill: the ledger prices the
cached tokens the vendor reports.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

__all__ = ["Prefix", "PrefixTracker", "part_texts", "prefix_blocks"]

_MAX_ENTRIES = 100_000
_MARK = b'"cache_control"'


def part_texts(parts: list[Any]) -> list[str]:
    """The string ``text`` of each content part (other shapes are the validator's job)."""
    return [t for p in parts if isinstance(p, dict) and isinstance(t := p.get("text"), str)]


@dataclass(frozen=True, slots=True)
class Prefix:
    """A prompt's block boundaries: (chained hash, rough tokens up to it), in order."""

    bounds: tuple[tuple[bytes, int], ...]
    #: whether the request marks cache breakpoints (``cache_control``), which explicit
    #: caches (Anthropic) need before they store anything
    marked: bool = False

    @property
    def tokens(self) -> int:
        return self.bounds[-1][1] if self.bounds else 0


def _dump(value: Any) -> bytes:
    try:
        return orjson.dumps(value)
    except (TypeError, orjson.JSONEncodeError):
        return repr(value).encode()


def prefix_blocks(body: Mapping[str, Any]) -> Prefix:
    """The block boundaries of a chat request: tools first (vendors put them ahead of the
    messages), then each message."""
    chain = b""
    bounds: list[tuple[bytes, int]] = []
    tokens = 0
    marked = False
    tools = body.get("tools")
    if isinstance(tools, list) and tools:
        raw = _dump(tools)
        marked = _MARK in raw
        chain = hashlib.blake2b(raw, digest_size=16).digest()
        tokens += (len(raw) + 3) // 4
        bounds.append((chain, tokens))
    messages = body.get("messages")
    for m in messages if isinstance(messages, list) else ():
        raw = _dump(m)
        marked = marked or _MARK in raw
        chain = hashlib.blake2b(chain + raw, digest_size=16).digest()
        tokens += (len(raw) + 3) // 4  # rough: ~4 bytes of JSON per token
        bounds.append((chain, tokens))
    return Prefix(tuple(bounds), marked=marked)


class PrefixTracker:
    """Per deployment, the prefix boundaries sent to it and when each expires.

    Bounded: past ``max_entries`` the least recently used boundaries are forgotten."""

    def __init__(self, max_entries: int = _MAX_ENTRIES,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._entries: OrderedDict[tuple[str, bytes], float] = OrderedDict()
        self._max = max_entries
        self._clock = clock

    def __len__(self) -> int:
        return len(self._entries)

    def held(self, deployment: str, prefix: Prefix) -> int:
        """Rough tokens of the longest live prefix of ``prefix`` sent to ``deployment``."""
        now = self._clock()
        entries = self._entries
        for chain, tokens in reversed(prefix.bounds):
            expiry = entries.get((deployment, chain))
            if expiry is not None and expiry > now:
                return tokens
        return 0

    def holder(self, deployments: Sequence[str], prefix: Prefix) -> str | None:
        """The deployment holding the longest live prefix, or None when none holds any."""
        best, best_tokens = None, 0
        for dep in deployments:
            tokens = self.held(dep, prefix)
            if tokens > best_tokens:
                best, best_tokens = dep, tokens
        return best

    def sent(self, deployment: str, prefix: Prefix, ttl_s: float) -> None:
        """``prefix`` reached ``deployment``: every boundary lives ``ttl_s`` from now."""
        expiry = self._clock() + ttl_s
        entries = self._entries
        for chain, _ in prefix.bounds:
            key = (deployment, chain)
            entries[key] = expiry
            entries.move_to_end(key)
        while len(entries) > self._max:
            entries.popitem(last=False)
