"""Deterministic prompt-cache simulation.

A prompt is a sequence of segments (messages, system blocks). The cache keeps a
chained hash for every segment boundary it has seen, per deployment (``scope``:
the vendor, the model, the host the request came to and a hash of its API key, so
two keys or two sandbox servers are two deployments with caches of their own, as at
the vendors); a later prompt whose first k segments match a boundary seen on the
same deployment within the policy's lifetime (refreshed by each use) gets the tokens
up to that boundary as cached, rounded down to the vendor's cache unit and dropped
below its minimum (DeepSeek: 64-token units; OpenAI: 128-token units from 1024
tokens).

Explicit caches (Anthropic ``cache_control``) are entries with a lifetime
(5 minutes or 1 hour, refreshed by each hit): ``hit`` and ``keep``. The last
requests' cache breakpoints are logged (``GET /_sandbox/cache``), so tests can see
what reached the vendor.
"""

from __future__ import annotations

import hashlib
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from kanjia.sandbox._tokens import text_tokens

__all__ = ["CachePolicy", "PromptCache", "Segments", "cache_scope"]

_MAX_ENTRIES = 200_000
_LOG = 256


@dataclass(frozen=True, slots=True)
class CachePolicy:
    unit: int = 1
    minimum: int = 1024
    #: seconds an implicit entry lives after its last use
    ttl_s: float = 300.0


def _credential(request: web.Request) -> str:
    """The API key the request carries, in whichever header or query the vendor uses
    (SigV4: the access key id of its credential scope)."""
    auth = request.headers.get("Authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    if "Credential=" in auth:
        return auth.split("Credential=", 1)[1].split("/", 1)[0]
    for header in ("x-api-key", "x-goog-api-key", "api-key"):
        if value := request.headers.get(header, ""):
            return value
    return request.query.get("key", "")


def cache_scope(request: web.Request, vendor: str, model: str) -> str:
    """The deployment a request reached, as its cache sees it: vendor, model, host and a
    hash of the API key (the key itself is never kept)."""
    key = hashlib.blake2b(_credential(request).encode(), digest_size=8).hexdigest()
    return f"{vendor}|{model}|{request.host}|{key}"


class Segments:
    """Chained hashes and cumulative token counts at each segment boundary."""

    __slots__ = ("_hash", "bounds", "tokens")

    def __init__(self) -> None:
        self._hash = 0
        self.bounds: list[tuple[int, int]] = []
        self.tokens = 0

    def add(self, text: str, tokens: int) -> None:
        self._hash = hash((self._hash, text))
        self.tokens += tokens
        self.bounds.append((self._hash, self.tokens))

    def add_tools(self, tools: Any) -> None:
        """A request's ``tools`` as one segment, counted as their JSON text (nothing
        when they are not a non-empty list)."""
        if isinstance(tools, list) and tools:
            text = orjson.dumps(tools).decode()
            self.add(text, text_tokens(text))


class PromptCache:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        #: implicit entries: (scope, chain) -> expiry
        self._seen: dict[tuple[str, int], float] = {}
        #: explicit entries: (scope, chain) -> (expiry, lifetime in seconds)
        self._timed: dict[tuple[str, int], tuple[float, float]] = {}
        self._log: deque[dict[str, Any]] = deque(maxlen=_LOG)
        self.clock = clock

    def lookup(self, scope: str, segments: Segments, policy: CachePolicy) -> int:
        """Cached tokens for this prompt on the deployment ``scope``; then remembers all
        its boundaries there for ``policy.ttl_s``."""
        seen = self._seen
        now = self.clock()
        cached = 0
        for chain, tokens in reversed(segments.bounds):
            expiry = seen.get((scope, chain))
            if expiry is not None and expiry > now:
                cached = tokens
                break
        if len(seen) > _MAX_ENTRIES:
            seen.clear()
        for chain, _ in segments.bounds:
            seen[(scope, chain)] = now + policy.ttl_s
        cached = cached // policy.unit * policy.unit
        return cached if cached >= policy.minimum else 0

    def hit(self, scope: str, chain: int) -> bool:
        """Whether an explicit entry for ``chain`` is alive; a hit refreshes its life."""
        entry = self._timed.get((scope, chain))
        now = self.clock()
        if entry is None or entry[0] <= now:
            return False
        self._timed[(scope, chain)] = (now + entry[1], entry[1])
        return True

    def keep(self, scope: str, chain: int, ttl_s: float) -> None:
        """Write (or extend) an explicit entry for ``ttl_s`` seconds from now."""
        if len(self._timed) > _MAX_ENTRIES:
            self._timed.clear()
        old = self._timed.get((scope, chain))
        expiry = self.clock() + ttl_s
        if old is not None and old[0] > expiry:
            return
        self._timed[(scope, chain)] = (expiry, ttl_s)

    def log(self, vendor: str, entry: dict[str, Any]) -> None:
        self._log.append({"vendor": vendor, **entry})

    def recent(self) -> list[dict[str, Any]]:
        """The last requests' cache breakpoints and usage, oldest first."""
        return list(self._log)

    def reset(self) -> None:
        self._seen.clear()
        self._timed.clear()
        self._log.clear()
