"""The response cache: when it applies to a request, and its entries in a store that may
fail (a failing store is no cache, with a warning at most once a minute, never a failed
request)."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from kanjia.cache._stores import LocalStore, RedisStore, Store
from kanjia.catalog import Usage
from kanjia.config import ResponseCacheSettings, RouteSettings
from kanjia.errors import BadRequest

__all__ = ["CacheRequest", "Cached", "ResponseCache", "cache_request", "default_path"]

log = logging.getLogger("kanjia.cache")

MODES = ("use", "skip", "refresh")
#: the longest TTL a request may ask for (30 days)
MAX_TTL_S = 30 * 86_400


@dataclass(frozen=True, slots=True)
class CacheRequest:
    """What the client asked of the cache: ``x-kanjia-cache`` and ``x-kanjia-cache-ttl``."""

    mode: str | None = None       # "use" | "skip" | "refresh"; None: the settings decide
    ttl_s: int | None = None


def cache_request(mode: str | None, ttl: str | None) -> CacheRequest:
    """The request's cache headers, checked (a bad one is a 400 naming it)."""
    m = mode.strip().lower() if mode is not None else None
    if m is not None and m not in MODES:
        raise BadRequest("x-kanjia-cache must be one of use, skip, refresh")
    seconds: int | None = None
    if ttl is not None:
        try:
            seconds = int(ttl.strip())
        except ValueError:
            seconds = 0
        if not 1 <= seconds <= MAX_TTL_S:
            raise BadRequest(f"x-kanjia-cache-ttl must be a whole number of seconds "
                             f"from 1 to {MAX_TTL_S}")
    return CacheRequest(m, seconds)


@dataclass(frozen=True, slots=True)
class Cached:
    """One cached answer: the chat completion, who answered it and its usage then."""

    completion: dict[str, Any]
    vendor: str
    model: str
    usage: Usage
    estimated: bool
    stored: float

    def dump(self) -> bytes:
        u = self.usage
        return orjson.dumps({
            "v": 1, "completion": self.completion, "vendor": self.vendor,
            "model": self.model, "estimated": self.estimated, "stored": self.stored,
            "usage": [u.input_tokens, u.cached_tokens, u.cache_write_tokens,
                      u.output_tokens, u.reasoning_tokens, u.cache_write_1h_tokens]})

    @classmethod
    def load(cls, raw: bytes) -> Cached | None:
        try:
            d = orjson.loads(raw)
            usage = Usage(*(int(x) for x in d["usage"]))
            return cls(dict(d["completion"]), str(d["vendor"]), str(d["model"]), usage,
                       bool(d["estimated"]), float(d["stored"]))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return None


def default_path(settings: ResponseCacheSettings, database: str | None) -> str:
    """The local store's file: the configured path, else beside a SQLite ledger."""
    if settings.path:
        return settings.path
    name = "kanjia-response-cache.db"
    if database and "://" not in database and database != ":memory:":
        return os.path.join(os.path.dirname(os.path.abspath(database)), name)
    return name


class ResponseCache:
    def __init__(self, settings: ResponseCacheSettings, *, redis: str | None = None,
                 database: str | None = None, store: Store | None = None,
                 clock: Callable[[], float] = time.time, warn_every_s: float = 60.0) -> None:
        self.settings = settings
        self._redis = redis
        self._path = default_path(settings, database)
        self._store = store
        self._clock = clock
        self._warn_every_s = warn_every_s
        self._warned_at: float | None = None
        #: store failures seen (each one a request answered without the cache)
        self.failures = 0
        #: answers stored so far (``wait_stored`` waits for a count)
        self.stored = 0
        self._cond = threading.Condition()

    @property
    def store(self) -> Store:
        """The store, opened on first use (no file exists until a request uses it)."""
        if self._store is None:
            s = self.settings
            self._store = RedisStore(self._redis) if self._redis else LocalStore(
                self._path, max_entries=s.max_entries, max_bytes=s.max_bytes,
                clock=self._clock)
        return self._store

    def active(self, req: CacheRequest, route: RouteSettings | None, key_on: bool) -> bool:
        """Is the cache used for this request? The header decides; without one the
        config, the route or the key turns it on."""
        if req.mode is not None:
            return req.mode != "skip"
        return self.settings.enabled or (route is not None and route.response_cache) \
            or key_on

    def ttl(self, req: CacheRequest, route: RouteSettings | None) -> int:
        if req.ttl_s is not None:
            return req.ttl_s
        if route is not None and route.response_cache_ttl_s is not None:
            return route.response_cache_ttl_s
        return self.settings.ttl_s

    def scope(self, tenant: str | None, key_id: str | None) -> str:
        if self.settings.scope == "global":
            return "*"
        if tenant:
            return f"tenant:{tenant}"
        return f"key:{key_id}" if key_id else "open"

    def _failed(self, what: str, exc: BaseException) -> None:
        self.failures += 1
        now = time.monotonic()
        if self._warned_at is None or now - self._warned_at >= self._warn_every_s:
            self._warned_at = now
            log.warning("response cache %s failed, answering without it: %s: %s",
                        what, type(exc).__name__, str(exc)[:200])

    async def get(self, key: str, max_age_s: int | None = None) -> Cached | None:
        """The entry under ``key`` (not older than ``max_age_s``), or None; never raises."""
        try:
            raw = await self.store.get(key)
        except Exception as exc:  # any backend failure: no cache, not a failed request
            self._failed("lookup", exc)
            return None
        entry = Cached.load(raw) if raw is not None else None
        if entry is not None and max_age_s is not None \
                and self._clock() - entry.stored > max_age_s:
            return None
        return entry

    async def put(self, key: str, entry: Cached, ttl_s: int) -> bool:
        """Store ``entry``; False (and a warning) when the store failed."""
        try:
            await self.store.put(key, entry.dump(), ttl_s)
        except Exception as exc:
            self._failed("store", exc)
            return False
        with self._cond:
            self.stored += 1
            self._cond.notify_all()
        return True

    def wait_stored(self, count: int, timeout: float = 10.0) -> bool:
        """Block until ``count`` answers were stored (a stream's is stored after its
        last byte reached the client); from another thread than the gateway's loop."""
        with self._cond:
            return self._cond.wait_for(lambda: self.stored >= count, timeout)

    def now(self) -> float:
        return self._clock()

    async def close(self) -> None:
        if self._store is not None:
            try:
                await self._store.close()
            except Exception as exc:
                log.debug("closing the response cache: %s", exc)
