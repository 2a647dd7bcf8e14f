"""The response cache on the request path: looked up after the request is authenticated
and planned, before anything is reserved; stored after a whole, successful answer.

A hit is answered in the shape it was asked in (JSON, or a stream replayed from the
cached completion) with ``x-kanjia-cache: hit``, and recorded in the ledger with cost 0,
``cache_hit`` and ``saved``: what the cached usage would cost on the answering model at
the price in force now. A request that looked up and missed, or refreshed, carries
``x-kanjia-cache: miss`` / ``refresh`` and its answer is stored when it is whole.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson

from kanjia.cache import (
    Cached,
    CacheRequest,
    ResponseCache,
    assemble,
    cache_key,
    cache_request,
    is_complete,
    replay_chunks,
)
from kanjia.catalog import Catalog, Usage, cost_of
from kanjia.config import RouteSettings
from kanjia.ledger.record import CallRecord
from kanjia.server import _asgi
from kanjia.server._asgi import Scope, safe_headers

if TYPE_CHECKING:
    from kanjia.access import Principal
    from kanjia.routing.planner import RoutePlan

__all__ = ["CacheHook", "CacheSlot", "HitAnswer", "cache_headers"]


def cache_headers(scope: Scope) -> CacheRequest:
    """The request's ``x-kanjia-cache`` and ``x-kanjia-cache-ttl`` (a bad one: 400)."""
    return cache_request(_asgi.header(scope, b"x-kanjia-cache"),
                         _asgi.header(scope, b"x-kanjia-cache-ttl"))


@dataclass(slots=True)
class CacheSlot:
    """One request's place in the cache: its key, and the entry found there."""

    key: str
    ttl_s: int
    mode: str                       # "miss" | "refresh" (what the header will say)
    hit: Cached | None = None
    record: CallRecord | None = None     # the record of the call that answered (streams)
    payloads: list[bytes] = field(default_factory=list)


@dataclass(slots=True)
class HitAnswer:
    record: CallRecord
    headers: dict[str, str]
    body: bytes | None = None       # a JSON answer
    chunks: list[bytes] | None = None   # a streamed answer's chunk payloads


class CacheHook:
    def __init__(self, cache: ResponseCache, catalog: Catalog,
                 routes: Mapping[str, RouteSettings], reporting_currency: str) -> None:
        self.cache = cache
        self.catalog = catalog
        self.routes = routes
        self.reporting_currency = reporting_currency
        self._tasks: set[asyncio.Task[bool]] = set()

    # -- lookup -----------------------------------------------------------------------
    async def open(self, endpoint: str, body: dict[str, Any], plan: RoutePlan,
                   principal: Principal, req: CacheRequest | None,
                   controls: Mapping[str, Any] | None) -> CacheSlot | None:
        """The request's slot (with the entry, on a hit), or None when the cache is not
        used for it."""
        if endpoint == "embeddings" or not plan.targets:
            return None
        req = req or CacheRequest()
        route = self.routes.get(plan.route) if plan.route is not None else None
        if not self.cache.active(req, route, principal.response_cache):
            return None
        model = plan.route if plan.route is not None else plan.targets[0].key
        scope = self.cache.scope(principal.tenant, principal.key_id)
        slot = CacheSlot(cache_key(scope, model, body, controls), self.cache.ttl(req, route),
                         "refresh" if req.mode == "refresh" else "miss")
        if req.mode != "refresh":
            slot.hit = await self.cache.get(slot.key, req.ttl_s)
        return slot

    def answer(self, slot: CacheSlot, *, rid: str, ts: float, t0: float, endpoint: str,
               body: Mapping[str, Any], plan: RoutePlan, principal: Principal) -> HitAnswer:
        """The reply to a hit and its ledger record (cost 0, ``cache_hit``, ``saved``)."""
        hit = slot.hit
        assert hit is not None
        stream = bool(body.get("stream"))
        rec = CallRecord(request_id=rid, ts=ts, endpoint=endpoint, route=plan.route,
                         requested_model=plan.requested, vendor=hit.vendor, model=hit.model,
                         deployment=None, tenant=principal.tenant, key_id=principal.key_id,
                         reporting_currency=self.reporting_currency, status=200,
                         stream=stream, cache_hit=True, usage_estimated=hit.estimated,
                         price_period="response-cache")
        entry = self.catalog.get(hit.vendor, hit.model)
        if entry is not None:
            cost = cost_of(hit.usage, entry, datetime.fromtimestamp(ts, UTC))
            rec.currency, rec.saved = cost.currency, cost.amount
        else:
            rec.currency = self.reporting_currency
        rec.latency_ms = (time.perf_counter() - t0) * 1000
        completion = dict(hit.completion)
        completion["id"] = f"chatcmpl-{rid}"
        completion["created"] = int(ts)
        usage = completion.get("usage")
        if isinstance(usage, dict) and "cost" in usage:
            completion["usage"] = {**usage, "cost": 0}
        headers = {"x-kanjia-request-id": rid, "x-kanjia-vendor": hit.vendor,
                   "x-kanjia-model": hit.model, "x-kanjia-cache": "hit",
                   "x-kanjia-cost": f"0 {rec.currency}",
                   "x-kanjia-price-period": "response-cache",
                   "x-kanjia-overhead-ms": f"{rec.latency_ms:.3f}"}
        if plan.route is not None:
            headers["x-kanjia-route"] = plan.route
        if hit.estimated:
            headers["x-kanjia-usage"] = "estimated"
        headers = safe_headers(headers)
        if not stream:
            return HitAnswer(rec, headers, body=orjson.dumps(completion))
        include = bool((body.get("stream_options") or {}).get("include_usage"))
        return HitAnswer(rec, headers, chunks=replay_chunks(completion, f"chatcmpl-{rid}",
                                                            include))

    # -- store ------------------------------------------------------------------------
    async def store_json(self, slot: CacheSlot, body: bytes, rec: CallRecord | None,
                         headers: dict[str, str]) -> None:
        """Keep a non-streamed answer when it is whole and successful."""
        headers["x-kanjia-cache"] = slot.mode
        if rec is None or rec.status != 200 or rec.vendor is None or rec.model is None:
            return
        try:
            completion = orjson.loads(body)
        except orjson.JSONDecodeError:
            return
        if is_complete(completion):
            await self.cache.put(slot.key, self._entry(completion, rec), slot.ttl_s)

    def tee(self, slot: CacheSlot, first: list[bytes],
            rest: AsyncIterator[list[bytes]]) -> AsyncIterator[list[bytes]]:
        """``rest``, keeping a copy of every chunk payload for the store."""
        slot.payloads.extend(first)

        async def copy() -> AsyncIterator[list[bytes]]:
            async for payloads in rest:
                slot.payloads.extend(payloads)
                yield payloads
        return copy()

    def after(self, slot: CacheSlot) -> Callable[[CallRecord], None]:
        """Called with a stream's ledger record: store the assembled answer when the
        stream ended whole (not broken, not disconnected, every choice finished)."""
        def done(rec: CallRecord) -> None:
            if rec.status != 200 or rec.error_class is not None or rec.client_disconnected \
                    or rec.vendor is None or rec.model is None:
                return
            completion = assemble(slot.payloads)
            if completion is None or not is_complete(completion):
                return
            if "usage" not in completion:
                completion["usage"] = _usage_json(rec)
            task = asyncio.ensure_future(self.cache.put(slot.key, self._entry(completion, rec),
                                                        slot.ttl_s))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return done

    def _entry(self, completion: dict[str, Any], rec: CallRecord) -> Cached:
        assert rec.vendor is not None and rec.model is not None
        usage = Usage(rec.input_tokens, rec.cached_tokens, rec.cache_write_tokens,
                      rec.output_tokens, rec.reasoning_tokens, rec.cache_write_1h_tokens)
        return Cached(completion, rec.vendor, rec.model, usage, rec.usage_estimated,
                      self.cache.now())

    async def close(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.cache.close()


def _usage_json(rec: CallRecord) -> dict[str, Any]:
    out: dict[str, Any] = {"prompt_tokens": rec.input_tokens,
                           "completion_tokens": rec.output_tokens,
                           "total_tokens": rec.input_tokens + rec.output_tokens}
    if rec.cached_tokens:
        out["prompt_tokens_details"] = {"cached_tokens": rec.cached_tokens}
    return out
