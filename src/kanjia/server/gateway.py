"""The request path: plan → admit → call a vendor (with failover) → meter.

Protocol-agnostic: the ASGI layer in app.py parses HTTP and writes replies.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import hashlib
import random
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson

from kanjia.access import AccessPolicy, Principal, Reservation
from kanjia.cache import CacheRequest
from kanjia.catalog import Catalog, Usage, cost_of
from kanjia.errors import (
    BadRequest,
    ClientError,
    KanjiaError,
    NoDeploymentAvailable,
    StreamTruncated,
    UpstreamError,
    UpstreamProtocolError,
    redact,
)
from kanjia.ledger.record import CallRecord
from kanjia.routing.directory import Target
from kanjia.routing.health import HealthBoard
from kanjia.routing.planner import Planner, PriceControls, RoutePlan, cache_slot, take_controls
from kanjia.routing.prefix import Prefix
from kanjia.server._admission import Admission
from kanjia.server._asgi import safe_headers
from kanjia.server._costs import add_cost, chunk_with_cost, price_of
from kanjia.server._ids import RequestIds
from kanjia.server._response_cache import CacheHook, CacheSlot
from kanjia.server._tries import Tries
from kanjia.server.metrics import Metrics
from kanjia.server.model_ids import check_model_id
from kanjia.server.upstream import Upstream, UpstreamResponse
from kanjia.tokens import TokenCounter
from kanjia.vendors import (
    ChatResult,
    Deployment,
    NativeAdapter,
    NativeCall,
    StreamDecoder,
    StreamTranslator,
    UpstreamRequest,
    native_adapter,
)

__all__ = ["CallOutcome", "Gateway", "StreamOutcome"]

RecordSink = Callable[[CallRecord], None]

#: upstream bodies larger than this are parsed in a worker thread (F18)
_PARSE_ON_LOOP_BYTES = 1 << 20

#: a usage object (not ``"usage": null``) somewhere in a chunk payload
_USAGE_OBJECT = re.compile(rb'"usage"\s*:\s*\{')


@dataclass(slots=True)
class CallOutcome:
    """A finished non-streamed call."""

    body: bytes
    headers: dict[str, str]
    record: CallRecord | None = None  # the ledger record of the call that answered
    text: str = ""                    # the answer's text (what a cascade judges)
    native: bool = False              # ``body`` is the vendor's own reply (pass-through)


@dataclass(slots=True)
class StreamOutcome:
    """A stream whose first client-visible chunk has arrived; ``rest`` yields the
    remaining chunk payloads (the ``data:`` of each SSE event, unframed), one list per
    upstream read: the relay frames or re-renders them (``server/_relay.py``).

    ``complete()`` after ``rest`` is exhausted: the vendor's end marker arrived, so the
    client may get ``[DONE]``. A stream cut short ends with an error payload and no
    ``[DONE]`` (the client must be able to tell its answer is not whole)."""

    headers: dict[str, str]
    first: list[bytes]
    rest: AsyncIterator[list[bytes]]
    #: records the stream (``disconnected``); returns what to await before the final
    #: frame when the record waits for a tokenizer, else None
    finish: Callable[[bool], Awaitable[None] | None] = field(repr=False)
    complete: Callable[[], bool] = field(repr=False, default=lambda: True)
    #: the vendor's stream has ended: what ``rest`` yields now is the last of it
    ended: Callable[[], bool] = field(repr=False, default=lambda: True)
    #: the frames carry the vendor's own events (pass-through), not chat chunks
    native: bool = False


@dataclass(slots=True)
class _Ctx:
    rid: str
    t0: float
    ts: float
    endpoint: str
    body: dict[str, Any]
    plan: RoutePlan
    principal: Principal
    reservation: Reservation | None = None
    upstream_s: float = 0.0
    attempts: list[str] = field(default_factory=list)
    cache: CacheSlot | None = None    # the response cache's slot, when it is used
    after: Callable[[CallRecord], None] | None = None  # told of the record once emitted
    native: NativeCall | None = None  # the client's own request, for a vendor that speaks it


class Gateway:
    def __init__(self, *, catalog: Catalog, planner: Planner, upstream: Upstream,
                 health: HealthBoard, metrics: Metrics, access: AccessPolicy,
                 counter: TokenCounter, reporting_currency: str, max_attempts: int,
                 sinks: Sequence[RecordSink] = (),
                 scrub: Callable[[str], str] = redact) -> None:
        self.catalog = catalog
        self.planner = planner
        self.upstream = upstream
        self.health = health
        self.metrics = metrics
        self.access = access
        self.counter = counter
        self.reporting_currency = reporting_currency
        self.admission = Admission(counter, planner.directory.specs, reporting_currency,
                                   self._tokenizer)
        self.max_attempts = max_attempts
        self.sinks = list(sinks)
        #: removes the configured secrets from error text (kanjia.scrub.Scrubber)
        self.scrub = scrub
        #: admission guards: each raises (e.g. a 503) when no new request may start
        self.guards: list[Callable[[], None]] = []
        self._rng = random.Random()
        self._ids = RequestIds()
        #: tokenizers being loaded off the event loop, by encoding
        self._loading: dict[str, asyncio.Future[None]] = {}
        #: records waiting for a tokenizer before they can be settled
        self._settling: set[asyncio.Future[None]] = set()
        #: streams answered (or answering) whose record is not emitted yet, by request id
        self._unsettled: dict[str, asyncio.Future[None]] = {}
        #: the response cache (build_app sets it)
        self.cache: CacheHook | None = None

    # -- public entry points ----------------------------------------------------
    async def chat(self, body: dict[str, Any], api_key: str | None, t0: float, *,
                   api: str = "chat", principal: Principal | None = None,
                   cache: CacheRequest | None = None,
                   native: NativeCall | None = None) -> CallOutcome | StreamOutcome:
        """A chat request; ``api`` is the client API it came in on ("chat", "messages",
        "responses"), recorded as the ledger's ``endpoint``. ``principal``: the caller,
        when known already (deferred work runs as the key that queued it); else
        ``api_key`` is authenticated. ``cache`` is what the client asked of the response
        cache (its ``x-kanjia-cache`` headers). ``native``: the client's request in its own
        API (``body`` is its chat form, which admission reserves from): it goes unchanged
        to a candidate whose vendor speaks that API, translated to any other (the outcome
        says which). The response cache keeps chat forms: with it, every call translates."""
        self._admit()
        controls = take_controls(body, self.planner.directory.specs)
        ctx = await self._begin(api, body, api_key, t0, principal, cache, controls)
        ctx.native = native if ctx.cache is None else None
        if native is not None and native.refusal is not None:
            self._native_only(ctx, native)
        if ctx.cache is not None:
            if ctx.cache.hit is not None:
                return self._cached(ctx, ctx.cache)
            return await self._cache_miss(ctx, ctx.cache)
        if body.get("stream"):
            return await self._stream(ctx)
        if ctx.plan.cascade is not None:
            return await self._cascade(ctx)
        return await self._complete(ctx)

    def _native_only(self, ctx: _Ctx, native: NativeCall) -> None:
        """A request no translation can carry: only the candidates that speak its API (no
        cascade), else a 400 saying why (the reservation released)."""
        targets = [t for t in ctx.plan.targets if native_adapter(t.adapter, native.api)]
        if not targets or ctx.native is None:
            self.access.release(ctx.reservation)
            raise BadRequest(native.refusal or "this request cannot be translated")
        p = ctx.plan
        ctx.plan = RoutePlan(p.requested, p.route, targets, p.prompt_tokens, p.candidates)

    def _cached(self, ctx: _Ctx, slot: CacheSlot) -> CallOutcome | StreamOutcome:
        """A response-cache hit: nothing reserved, nothing called, recorded at cost 0."""
        assert self.cache is not None
        ans = self.cache.answer(slot, rid=ctx.rid, ts=ctx.ts, t0=ctx.t0,
                                endpoint=ctx.endpoint, body=ctx.body, plan=ctx.plan,
                                principal=ctx.principal)
        if ans.body is not None:
            self._emit(ctx, ans.record)
            return CallOutcome(ans.body, ans.headers, ans.record)

        def finish(disconnected: bool) -> None:
            ans.record.client_disconnected = disconnected
            self._emit(ctx, ans.record)
        return StreamOutcome(ans.headers, ans.chunks or [], _no_frames(), finish)

    async def _cache_miss(self, ctx: _Ctx, slot: CacheSlot) -> CallOutcome | StreamOutcome:
        """Answer from the vendor and keep the answer when it is whole."""
        assert self.cache is not None
        if ctx.body.get("stream"):
            out = await self._stream(ctx)
            out.headers["x-kanjia-cache"] = slot.mode
            ctx.after = self.cache.after(slot)
            return dataclasses.replace(out, rest=self.cache.tee(slot, out.first, out.rest))
        done = await (self._cascade(ctx) if ctx.plan.cascade is not None
                      else self._complete(ctx))
        await self.cache.store_json(slot, done.body, done.record, done.headers)
        return done

    async def embeddings(self, body: dict[str, Any], api_key: str | None,
                         t0: float) -> CallOutcome:
        self._admit()
        ctx = await self._begin("embeddings", body, api_key, t0)
        return await self._complete(ctx)

    async def admissible(self, body: dict[str, Any], principal: Principal) -> None:
        """Would this chat request be admitted now (model, limits, key, budget)? Raises
        what a call would; reserves nothing (deferred work is checked when queued)."""
        ctx = await self._begin("chat", body, None, time.perf_counter(), principal)
        self.access.release(ctx.reservation)

    def _admit(self) -> None:
        for guard in self.guards:
            guard()

    # -- stages -------------------------------------------------------------------
    async def _begin(self, endpoint: str, body: dict[str, Any], api_key: str | None,
                     t0: float, principal: Principal | None = None,
                     cache: CacheRequest | None = None,
                     controls: PriceControls | None = None) -> _Ctx:
        model = check_model_id(body["model"])
        if principal is None:
            principal = await self.access.authenticate(api_key, model)
        kind = _kind(endpoint)
        plan = self.admission.narrow(self.planner.plan(model, body, kind, controls), body,
                                     kind, principal, self.access)
        ts = time.time()
        ctx = _Ctx(rid=self._ids.new(ts), t0=t0, ts=ts, endpoint=endpoint,
                   body=body, plan=plan, principal=principal)
        if self.cache is not None:
            ctx.cache = await self.cache.open(endpoint, body, plan, principal, cache,
                                              controls.key() if controls else None)
            hit = ctx.cache.hit if ctx.cache is not None else None
            if hit is not None:
                # a hit costs nothing: reserve 0, which still applies the key's model
                # allowlist and rate limits to the model that answered
                if principal.metered:
                    ctx.reservation = await self.access.reserve(
                        principal, f"{hit.vendor}/{hit.model}", Decimal(0),
                        self.reporting_currency, 0)
                return ctx
        if principal.metered:
            ctx.reservation = await self._reserve(ctx, plan.targets)
        return ctx

    async def _reserve(self, ctx: _Ctx, targets: Sequence[Target]) -> Reservation | None:
        """Reserve the request's worst case on the dearest of ``targets`` (every candidate
        failover may try)."""
        cases = await self.admission.worst_cases(ctx.body, _kind(ctx.endpoint), targets)
        first = cases[0]
        return await self.access.reserve(ctx.principal, first.model_key, first.amount,
                                         first.currency, first.tokens, others=cases[1:])

    def _order(self, target: Target, session: str | None = None,
               prefix: Prefix | None = None) -> list[Deployment]:
        """Deployments in the order to try them: a weighted shuffle, each draw in
        proportion to its weight. With a session (the request's ``user``), the draw is a
        weighted rendezvous hash of (session, deployment): the same end user keeps the same
        key and base URL while it is healthy, so the vendor's prompt cache keeps hitting.
        With the prompt's ``prefix`` (cache-aware routes), the deployment that was sent the
        longest live part of it goes first (prefix affinity); when none was, the session
        defaults to the hash of the prompt's first block, so conversations that share a
        system prompt or tool list meet on one deployment. The rest stay behind it, in
        order, for failover."""
        deps = list(target.deployments)
        if len(deps) > 1:
            if session is None and prefix is not None and prefix.bounds:
                session = prefix.bounds[0][0].hex()
            if session is None:
                keyed = [(self._rng.random() ** (1.0 / d.weight), d) for d in deps]
            else:
                keyed = [(_unit(session, d.id) ** (1.0 / d.weight), d) for d in deps]
            deps = [d for _, d in sorted(keyed, key=lambda kd: -kd[0])]
            slots = {cache_slot(target, d.id): d.id for d in deps}
            holder = self.planner.prefixes.holder(list(slots), prefix) \
                if prefix is not None else None
            if holder is not None:
                deps.sort(key=lambda d: d.id != slots[holder])
        return deps

    def _attempts(self, ctx: _Ctx) -> list[tuple[Target, Deployment]]:
        out: list[tuple[Target, Deployment]] = []
        user = ctx.body.get("user")
        session = user if isinstance(user, str) and user else None
        for target in ctx.plan.targets:
            out.extend((target, dep) for dep in self._order(target, session, ctx.plan.prefix))
        if len(out) == 1:
            out = out * 2  # a lone deployment gets one retry on a retryable error
        return out

    async def _complete(self, ctx: _Ctx) -> CallOutcome:
        tries = self._tries(ctx)
        async for target, dep, breaker in tries:
            t_up = time.perf_counter()
            try:
                req = self._request(ctx, target, dep, False)
                try:
                    status, data, resp = await self.upstream.send_read(req)
                finally:
                    ctx.upstream_s += time.perf_counter() - t_up
                if status >= 400:
                    raise target.adapter.classify_error(status, data, resp.headers)
                parse = target.adapter.parse_chat if ctx.endpoint != "embeddings" \
                    else target.adapter.parse_embeddings
                if (native := _native(ctx, target)) is not None and ctx.native is not None:
                    parse = functools.partial(native.parse_native, ctx.native.api)
                # a big body (embeddings of a long batch: tens of MB) parses off the loop
                result = parse(data, target.model) if len(data) <= _PARSE_ON_LOOP_BYTES \
                    else await asyncio.to_thread(parse, data, target.model)
            except UpstreamError as exc:
                breaker.failure(exc)
                self.metrics.fallback(target.vendor, exc.code)
                tries.failed(exc, dep)
                continue
            except ClientError as exc:
                self._finish_error(ctx, exc, target)
                raise
            breaker.success((time.perf_counter() - t_up) * 1000)
            done = await self._finish_ok(ctx, target, dep, result)
            done.native = _native(ctx, target) is not None
            return done
        raise self._exhausted(ctx, tries)

    def _tries(self, ctx: _Ctx) -> Tries:
        return Tries(self._attempts(ctx), self.health, self.max_attempts, ctx.attempts)

    def _exhausted(self, ctx: _Ctx, tries: Tries) -> KanjiaError:
        """The error of a request whose attempts are used up (recorded as such)."""
        err = tries.error(ctx.plan.requested)
        self._finish_error(ctx, err, tries.target)  # under the model it tried, not (none)
        return err

    @staticmethod
    def _request(ctx: _Ctx, target: Target, dep: Deployment, stream: bool) -> UpstreamRequest:
        try:
            if (native := _native(ctx, target)) is not None and ctx.native is not None:
                return native.native_request(dep, ctx.native, target.model, stream)
            if ctx.endpoint != "embeddings":
                return target.adapter.chat_request(dep, ctx.body, target.model, stream)
            return target.adapter.embeddings_request(dep, ctx.body, target.model)
        except orjson.JSONEncodeError as exc:  # e.g. nested deeper than orjson writes
            raise BadRequest(f"the request cannot be forwarded as JSON: {exc}") from None

    async def _stream(self, ctx: _Ctx) -> StreamOutcome:
        include_usage = bool((ctx.body.get("stream_options") or {}).get("include_usage"))
        tries = self._tries(ctx)
        async for target, dep, breaker in tries:
            t_up = time.perf_counter()
            resp: UpstreamResponse | None = None
            try:
                req = self._request(ctx, target, dep, True)
                resp = await self.upstream.send(req, stream=True)
                if resp.status >= 400 or not resp.is_event_stream:
                    data = await resp.read()
                    resp.release()
                    if resp.status >= 400:
                        raise target.adapter.classify_error(resp.status, data, resp.headers)
                    # a JSON body where a stream was expected: an error in a 200 (MiniMax)
                    target.adapter.parse_chat(data, target.model)
                    raise UpstreamProtocolError(f"{target.vendor}: expected an event stream")
                native = _native(ctx, target)
                translator = target.adapter.stream_translator(target.model, include_usage) \
                    if native is None or ctx.native is None \
                    else native.native_stream(ctx.native.api, target.model)
                parser = target.adapter.stream_decoder()
                chunks = resp.chunks()
                first, pending = await self._first_chunks(chunks, parser, translator)
            except UpstreamError as exc:
                ctx.upstream_s += time.perf_counter() - t_up
                if resp is not None:
                    resp.close()
                breaker.failure(exc)
                self.metrics.fallback(target.vendor, exc.code)
                tries.failed(exc, dep)
                continue
            except ClientError as exc:
                if resp is not None:
                    resp.close()
                self._finish_error(ctx, exc, target)
                raise
            ttft = time.perf_counter() - t_up
            ctx.upstream_s += ttft
            return self._stream_outcome(ctx, target, dep, resp, chunks, parser, translator,
                                        first, pending, ttft)
        raise self._exhausted(ctx, tries)

    @staticmethod
    async def _first_chunks(chunks: AsyncIterator[bytes], parser: StreamDecoder,
                            translator: StreamTranslator
                            ) -> tuple[list[bytes], list[tuple[str | None, bytes]]]:
        """Read until the first client-visible payload: failover is possible until then.
        Returns it with the events of the same read not translated yet: they wait for
        ``rest``, so that the first byte goes out as soon as there is one (a short answer
        arrives in one read)."""
        async for raw in chunks:
            events = parser.feed(raw)
            for i, (event, data) in enumerate(events):
                first = translator.feed(event, data)
                if first:
                    return first, events[i + 1:]
            if translator.done:
                return [], []
        for event, data in parser.flush():
            first = translator.feed(event, data)
            if first:
                return first, []
        if not translator.done:
            raise UpstreamProtocolError("vendor closed the stream before sending anything")
        return [], []

    def _stream_outcome(self, ctx: _Ctx, target: Target, dep: Deployment,
                        resp: UpstreamResponse, chunks: AsyncIterator[bytes],
                        parser: StreamDecoder, translator: StreamTranslator, first: list[bytes],
                        pending: list[tuple[str | None, bytes]], ttft: float) -> StreamOutcome:
        breaker = self.health.get(dep.id)
        state: dict[str, Any] = {"error": None, "done": False}
        #: the cost of the usage last priced (a stream reports its usage once, at the end)
        price: list[Any] = [None, None]

        def priced(out: bytes) -> bytes:
            """A chunk carrying usage also carries its cost (``usage.cost``)."""
            usage = translator.usage
            if usage is None or _USAGE_OBJECT.search(out) is None:
                return out  # most chunks: none, or OpenAI's ``"usage":null``
            if price[0] is not usage:
                price[0], price[1] = usage, price_of(target.entry, usage, ctx.ts,
                                                     self.reporting_currency)
            return chunk_with_cost(out, price[1])

        def translated(events: list[tuple[str | None, bytes]]) -> list[bytes]:
            return [priced(out) for event, data in events
                    for out in translator.feed(event, data)]

        async def rest() -> AsyncIterator[list[bytes]]:
            """Payloads, one list per upstream read (one write to the client each)."""
            try:
                if pending and (payloads := translated(pending)):
                    yield payloads
                if not translator.done:
                    async for raw in _cut(chunks, target.vendor):
                        payloads = translated(parser.feed(raw))
                        if payloads:
                            yield payloads
                        if translator.done:
                            break
                    payloads = translated(parser.flush())
                    if payloads:
                        yield payloads
                if not translator.complete:
                    raise StreamTruncated(f"{target.vendor}: the stream ended before its end "
                                          "marker; the answer is incomplete",
                                          vendor=target.vendor)
                state["done"] = True
            except KanjiaError as exc:
                state["error"] = exc
                breaker.failure(exc)
                yield [_error_payload(exc.scrub(self.scrub))]
            finally:
                resp.close() if not state["done"] else resp.release()

        def finish(disconnected: bool) -> Awaitable[None] | None:
            err: KanjiaError | None = state["error"]
            if err is None and not disconnected:
                breaker.success(ttft * 1000)
            usage, text = translator.usage, "".join(translator.output_text)
            # cut short (the vendor's or the client's doing): the vendor's usage so far, if
            # any, may not cover what was delivered
            partial = not state["done"]

            def settle() -> None:
                self._settle(ctx, target, dep, usage, text,
                             status=err.status if err else 200,
                             error_class=err.code if err else None,
                             ttft_ms=ttft * 1000, disconnected=disconnected, stream=True,
                             partial=partial)

            if (usage is not None and not partial) \
                    or self.counter.ready(target.vendor, target.model):
                settle()
                return None
            # the estimate needs a tokenizer not loaded yet: load it off the event loop
            task = asyncio.ensure_future(self._settle_later(target, settle))
            self._settling.add(task)
            task.add_done_callback(self._settling.discard)
            task.add_done_callback(_quiet)
            task.add_done_callback(lambda _: self._emitted(ctx.rid))  # even if it failed
            guarded = asyncio.shield(task)  # a client gone mid-wait must not cancel it
            guarded.add_done_callback(_quiet)
            return guarded

        headers = self._headers(ctx, target, None)
        # a stream's headers go out before its cost is known; its price period is known
        period = price_of(target.entry, Usage(ctx.plan.prompt_tokens), ctx.ts,
                          self.reporting_currency)[2]
        headers.update(safe_headers({"x-kanjia-price-period": period}))
        self._unsettled[ctx.rid] = asyncio.get_running_loop().create_future()
        return StreamOutcome(headers, [priced(out) for out in first], rest(), finish,
                             lambda: bool(state["done"]), lambda: translator.done,
                             _native(ctx, target) is not None)

    # -- metering -----------------------------------------------------------------
    async def warm_tokenizers(self) -> None:
        """Load, in a worker thread, the tokenizer of every model the gateway can call.

        A start-up hook (``kanjia serve``): loading one takes a few hundred ms during which
        the loading thread holds the GIL, so even off the event loop a first load while
        serving stalls every request; before serving, it stalls none.
        """
        models = [(t.vendor, t.model) for t in self.planner.directory.targets]
        await asyncio.to_thread(self.counter.warm, models)

    async def _tokenizer(self, target: Target) -> None:
        """Load the tokenizer that estimates ``target``'s usage in a worker thread (a few
        hundred ms that must not stall the event loop); concurrent callers share one load."""
        encoding = self.counter.family(target.vendor, target.model).encoding
        loading = self._loading.get(encoding)
        if loading is None:
            loading = asyncio.ensure_future(
                asyncio.to_thread(self.counter.load, target.vendor, target.model))
            self._loading[encoding] = loading
            loading.add_done_callback(lambda _: self._loading.pop(encoding, None))
            loading.add_done_callback(_quiet)  # awaiters see the error; none may be left
        await asyncio.shield(loading)

    async def _settle_later(self, target: Target, settle: Callable[[], None]) -> None:
        await self._tokenizer(target)
        settle()

    async def drain(self, timeout_s: float = 30.0) -> None:
        """Wait for the records still being settled (a stream's usage estimate waiting for
        a tokenizer): at shutdown, before the ledger closes, so none is lost."""
        if self._settling:
            await asyncio.wait(set(self._settling), timeout=timeout_s)

    async def settled(self, request_id: str, timeout_s: float = 10.0) -> None:
        """Wait until the record of ``request_id`` has gone to the sinks, if it has not
        yet: a stream's record is made after its last byte has gone out, so a client can
        ask for it a moment before it exists. Returns at once for any other id."""
        waiting = self._unsettled.get(request_id)
        if waiting is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(waiting), timeout_s)

    def _emitted(self, request_id: str) -> None:
        waiting = self._unsettled.pop(request_id, None)
        if waiting is not None and not waiting.done():
            waiting.set_result(None)

    def _settle(self, ctx: _Ctx, target: Target, dep: Deployment, usage: Usage | None,
                output_text: str, *, status: int, error_class: str | None,
                ttft_ms: float | None, disconnected: bool, stream: bool,
                partial: bool = False) -> CallRecord:
        estimated = usage is None
        if usage is None:
            prompt = self._count_prompt(ctx, target)
            out = self.counter.count_text_tokens(target.vendor, target.model, output_text) \
                if output_text else 0
            usage = Usage(prompt, 0, 0, out, 0)
        elif partial and output_text:
            # a stream cut short: the vendor's usage so far (e.g. Anthropic's message_start)
            # may count less output than was delivered; bill what was delivered, marked
            out = self.counter.count_text_tokens(target.vendor, target.model, output_text)
            if out > usage.output_tokens:
                usage = Usage(usage.input_tokens, usage.cached_tokens,
                              usage.cache_write_tokens, out, usage.reasoning_tokens)
                estimated = True
        rec = CallRecord(
            request_id=ctx.rid, ts=ctx.ts, endpoint=ctx.endpoint, route=ctx.plan.route,
            requested_model=ctx.plan.requested, vendor=target.vendor, model=target.model,
            deployment=dep.name, tenant=ctx.principal.tenant, key_id=ctx.principal.key_id,
            input_tokens=usage.input_tokens, cached_tokens=usage.cached_tokens,
            cache_write_tokens=usage.cache_write_tokens, output_tokens=usage.output_tokens,
            cache_write_1h_tokens=usage.cache_write_1h_tokens,
            reasoning_tokens=usage.reasoning_tokens, usage_estimated=estimated,
            reporting_currency=self.reporting_currency,
            latency_ms=(time.perf_counter() - ctx.t0) * 1000, ttft_ms=ttft_ms, status=status,
            error_class=error_class, stream=stream, client_disconnected=disconnected,
            attempts=list(ctx.attempts))
        if target.entry is not None:
            at = datetime.fromtimestamp(ctx.ts, UTC)
            cost = cost_of(usage, target.entry, at)
            rec.cost, rec.currency, rec.price_period = cost.amount, cost.currency, cost.period_id
            rec.cost_reporting = self.catalog.fx.convert(cost.amount, cost.currency,
                                                         self.reporting_currency, at.date())
        else:
            rec.currency, rec.price_period = self.reporting_currency, "unpriced"
        if status == 200:
            self.planner.sent(target, dep.id, ctx.plan)  # the vendor's cache now holds it
        self._emit(ctx, rec)
        return rec

    def _count_prompt(self, ctx: _Ctx, target: Target) -> int:
        return self.counter.input_tokens(target.vendor, target.model, ctx.body, ctx.endpoint)

    def _emit(self, ctx: _Ctx, rec: CallRecord) -> None:
        overhead = max(0.0, (time.perf_counter() - ctx.t0) - ctx.upstream_s) \
            if not rec.stream else None
        self.metrics.observe(rec, overhead)
        for sink in self.sinks:
            sink(rec)
        if ctx.after is not None:
            ctx.after(rec)
        if ctx.reservation is not None:
            self.access.settle(ctx.reservation, rec)
        if rec.stream:
            self._emitted(rec.request_id)

    async def _finish_ok(self, ctx: _Ctx, target: Target, dep: Deployment,
                         result: ChatResult) -> CallOutcome:
        if result.usage is None and not self.counter.ready(target.vendor, target.model):
            await self._tokenizer(target)
        rec = self._settle(ctx, target, dep, result.usage, result.output_text, status=200,
                           error_class=None, ttft_ms=None, disconnected=False, stream=False)
        headers = self._headers(ctx, target, rec)
        body = add_cost(result.body, rec.cost if rec.price_period != "unpriced" else None,
                        rec.currency, usage=_usage_of(rec), endpoint=_kind(ctx.endpoint),
                        estimated=rec.usage_estimated)
        return CallOutcome(body, headers, rec, result.output_text)

    async def _cascade(self, ctx: _Ctx) -> CallOutcome:
        """The cascade objective: call the chain's models one after another until the
        learned judge finds the answers so far reliable, and reply with the best one.
        Every call is a ledger record of its own (``<request id>.<n>`` after the first),
        reserved against the budget before it is made and billed after; a call the budget
        refuses ends the cascade with the answers already in hand."""
        cascade = ctx.plan.cascade
        assert cascade is not None
        answers: dict[str, CallOutcome] = {}
        made: list[str] = []
        last: KanjiaError | None = None
        while (name := cascade.run.next_model()) is not None:
            target = cascade.targets.get(name)
            if target is None:
                break
            sub = await self._cascade_step(ctx, target, len(made) + 1)
            if sub is None:
                break
            made.append(target.key)
            try:
                outcome = await self._complete(sub)
            except UpstreamError as exc:
                last = exc
                cascade.run.observe(name, None)
                continue
            finally:
                ctx.upstream_s += sub.upstream_s
                ctx.attempts.extend(sub.attempts)
            answers[name] = outcome
            cascade.run.observe(name, outcome.text or _answer_text(outcome.body))
        chosen = answers.get(cascade.run.answer()) if cascade.run.next_model() is None \
            else None
        if chosen is None and answers:  # stopped early: the latest answer
            chosen = answers[next(reversed(answers))]
        if chosen is None:
            raise last or NoDeploymentAvailable("the cascade got no answer")
        headers = dict(chosen.headers)
        headers["x-kanjia-request-id"] = ctx.rid
        headers["x-kanjia-cascade"] = ",".join(made)
        if ctx.plan.route is not None:
            headers["x-kanjia-candidates"] = ",".join(ctx.plan.candidate_keys)
        records = [o.record for o in answers.values() if o.record is not None]
        currencies = {r.currency for r in records}
        body = chosen.body
        if len(currencies) == 1:
            total, currency = sum((r.cost for r in records), Decimal(0)), currencies.pop()
        else:
            total = sum((r.cost_reporting for r in records), Decimal(0))
            currency = self.reporting_currency
        if records:  # the reply's usage.cost is what the whole cascade cost, as the header
            headers["x-kanjia-cost"] = f"{_fmt(total)} {currency}"
            body = add_cost(body, total, currency)
        overhead_ms = ((time.perf_counter() - ctx.t0) - ctx.upstream_s) * 1000
        headers["x-kanjia-overhead-ms"] = f"{max(0.0, overhead_ms):.3f}"
        return CallOutcome(body, headers, chosen.record, chosen.text)

    async def _cascade_step(self, ctx: _Ctx, target: Target, n: int) -> _Ctx | None:
        """The context of the cascade's ``n``-th call (to ``target`` alone), with its own
        budget reservation (the first call has the request's); None when the budget or
        the rate limit refuses it."""
        plan = RoutePlan(ctx.plan.requested, ctx.plan.route, [target], ctx.plan.prompt_tokens,
                    ctx.plan.candidates)
        if n == 1:
            return _Ctx(rid=ctx.rid, t0=ctx.t0, ts=ctx.ts, endpoint=ctx.endpoint,
                        body=ctx.body, plan=plan, principal=ctx.principal,
                        reservation=ctx.reservation)
        sub = _Ctx(rid=f"{ctx.rid}.{n}", t0=time.perf_counter(), ts=time.time(),
                   endpoint=ctx.endpoint, body=ctx.body, plan=plan, principal=ctx.principal)
        if not ctx.principal.metered:
            return sub
        try:
            sub.reservation = await self._reserve(sub, [target])
        except ClientError:
            return None
        return sub

    def _finish_error(self, ctx: _Ctx, err: KanjiaError, target: Target | None) -> None:
        err.scrub(self.scrub)  # vendor text may echo a key: before it is recorded or sent
        err.request_id = ctx.rid  # the reply names the record's id
        rec = CallRecord(request_id=ctx.rid, ts=ctx.ts, endpoint=ctx.endpoint,
                         route=ctx.plan.route, requested_model=ctx.plan.requested,
                         vendor=target.vendor if target else None,
                         model=target.model if target else None,
                         tenant=ctx.principal.tenant, key_id=ctx.principal.key_id,
                         reporting_currency=self.reporting_currency,
                         latency_ms=(time.perf_counter() - ctx.t0) * 1000, status=err.status,
                         error_class=err.code, attempts=list(ctx.attempts),
                         stream=bool(ctx.body.get("stream")))
        self._emit(ctx, rec)

    def _headers(self, ctx: _Ctx, target: Target, rec: CallRecord | None) -> dict[str, str]:
        overhead_ms = ((time.perf_counter() - ctx.t0) - ctx.upstream_s) * 1000
        headers = {
            "x-kanjia-request-id": ctx.rid,
            "x-kanjia-vendor": target.vendor,
            "x-kanjia-model": target.model,
            "x-kanjia-overhead-ms": f"{max(0.0, overhead_ms):.3f}",
        }
        if len(ctx.attempts) > 1:
            headers["x-kanjia-attempts"] = ",".join(ctx.attempts)
        if ctx.plan.route is not None:
            headers["x-kanjia-route"] = ctx.plan.route
            headers["x-kanjia-candidates"] = ",".join(ctx.plan.candidate_keys)
        if rec is not None:
            headers["x-kanjia-cost"] = f"{_fmt(rec.cost)} {rec.currency}"
            headers["x-kanjia-price-period"] = rec.price_period or "unpriced"
            if rec.usage_estimated:
                headers["x-kanjia-usage"] = "estimated"
        return safe_headers(headers)


def _native(ctx: _Ctx, target: Target) -> NativeAdapter | None:
    """``target``'s adapter when the request goes to it unchanged (pass-through)."""
    return None if ctx.native is None else native_adapter(target.adapter, ctx.native.api)


def _kind(endpoint: str) -> str:
    """What a request asks of a model: "embeddings", else "chat" (chat completions and
    the Messages and Responses APIs, which are chat underneath)."""
    return "embeddings" if endpoint == "embeddings" else "chat"


def _fmt(amount: Decimal) -> str:
    text = format(amount.normalize(), "f") if amount else "0"
    return text


def _error_payload(exc: KanjiaError) -> bytes:
    return orjson.dumps(exc.body())


def _usage_of(rec: CallRecord) -> Usage:
    return Usage(rec.input_tokens, rec.cached_tokens, rec.cache_write_tokens,
                 rec.output_tokens, rec.reasoning_tokens)


async def _cut(chunks: AsyncIterator[bytes], vendor: str) -> AsyncIterator[bytes]:
    """The rest of a stream whose first byte has reached the client: a connection that
    breaks or stalls now truncates the answer (no failover can repair it)."""
    try:
        async for raw in chunks:
            yield raw
    except StreamTruncated:
        raise
    except UpstreamError as exc:
        raise StreamTruncated(f"{vendor}: the stream broke before its end marker "
                              f"({exc.message}); the answer is incomplete",
                              vendor=vendor) from None
async def _no_frames() -> AsyncIterator[list[bytes]]:
    return
    yield  # an async generator that yields nothing


def _quiet(task: asyncio.Future[None]) -> None:
    if not task.cancelled():
        task.exception()


def _unit(session: str, deployment: str) -> float:
    """A uniform number in (0, 1], fixed for (session, deployment)."""
    digest = hashlib.blake2b(f"{session}\0{deployment}".encode(), digest_size=8).digest()
    return (int.from_bytes(digest, "big") + 1) / 2**64


def _answer_text(body: bytes) -> str | None:
    """The first choice's text of an OpenAI chat completion body (what a cascade judges)."""
    try:
        message = orjson.loads(body)["choices"][0]["message"]
    except (orjson.JSONDecodeError, KeyError, IndexError, TypeError):
        return None
    content = message.get("content") if isinstance(message, dict) else None
    return content if isinstance(content, str) else None
