"""The mutable state of one sandbox server, owned by its aiohttp application."""

from __future__ import annotations

import collections
import itertools
from dataclasses import dataclass

from aiohttp import web

from kanjia.sandbox._cache import CachePolicy, PromptCache, Segments
from kanjia.sandbox._directives import Directives
from kanjia.sandbox._faults import SLOW_STREAM_CHUNK_MS, FaultBook
from kanjia.sandbox._settings import SandboxSettings
from kanjia.sandbox._stats import Stats
from kanjia.sandbox._usage import UsageBook

__all__ = ["STATE_KEY", "SandboxState", "Timing"]


@dataclass(frozen=True, slots=True)
class Timing:
    """Seconds to wait before the first token and between stream chunks."""

    first: float
    chunk: float


class SandboxState:
    def __init__(self, settings: SandboxSettings) -> None:
        self.settings = settings
        self.faults = FaultBook(settings.seed)
        self.stats = Stats()
        self.cache = PromptCache()
        self.usage = UsageBook()
        self._ids = itertools.count(1)
        #: method and raw path of the latest requests (``GET /_sandbox/requests``)
        self.received: collections.deque[dict[str, str]] = collections.deque(maxlen=1000)

    def admit(self, vendor: str, model: str, directives: Directives) -> str | None:
        """Count the request and pick its fault: its directive, else a server rule."""
        fault = directives.fault or self.faults.pick(vendor, model)
        self.stats.count(vendor, model, fault)
        return fault

    def cached_tokens(
        self,
        scope: str,
        policy: CachePolicy | None,
        segments: Segments,
        directives: Directives,
        prompt_tokens: int,
    ) -> int:
        """Cached prompt tokens: the ``cached`` directive, else the prefix cache of the
        deployment ``scope`` (``_cache.cache_scope``)."""
        if policy is None:
            return 0
        if directives.cached is not None:
            return min(directives.cached, prompt_tokens)
        return min(self.cache.lookup(scope, segments, policy), prompt_tokens)

    def response_id(self, prefix: str) -> str:
        return f"{prefix}sandbox{next(self._ids):013d}"

    def timing(self, directives: Directives, fault: str | None, streamed: bool) -> Timing:
        """Directives first, then server settings; ``slow_stream`` paces streams only."""
        first = directives.latency_ms
        chunk = directives.chunk_ms
        if fault == "slow_stream" and streamed:
            chunk = SLOW_STREAM_CHUNK_MS
        return Timing(
            (self.settings.ttft_ms if first is None else first) / 1000,
            (self.settings.chunk_ms if chunk is None else chunk) / 1000,
        )

    def reset(self) -> None:
        self.faults.reset()
        self.stats.reset()
        self.cache.reset()
        self.usage.reset()
        self.received.clear()
        self._ids = itertools.count(1)


STATE_KEY = web.AppKey("kanjia_sandbox_state", SandboxState)
