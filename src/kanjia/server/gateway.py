"""The request path: plan → admit → call a vendor (with failover) → meter.

Protocol-agnostic: the ASGI layer in app.py parses HTTP and writes replies.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import re
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson

from kanjia.catalog import Catalog, Usage, cost_of, most_cost
from kanjia.errors import (
    BadRequest,
    ClientError,
    KanjiaError,
    NoDeploymentAvailable,
    UpstreamError,
    UpstreamProtocolError,
)
from kanjia.metering.record import CallRecord
from kanjia.routing.directory import Target
from kanjia.routing.health import HealthBoard
from kanjia.routing.planner import Plan, Planner
from kanjia.server._ids import RequestIds
from kanjia.server._tries import Tries
from kanjia.server.access import AccessPolicy, Principal, Reservation
from kanjia.server.metrics import Metrics
from kanjia.server.upstream import Upstream, UpstreamResponse
from kanjia.tokens import TokenCounter
from kanjia.vendors import (
    ChatResult,
    Deployment,
    StreamDecoder,
    StreamTranslator,
    UpstreamRequest,
)

__all__ = ["CallOutcome", "Gateway", "StreamOutcome"]

RecordSink = Callable[[CallRecord], None]

#: what may not appear in a header value (uvicorn refuses C0 controls and DEL)
_HEADER_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f]")


@dataclass(slots=True)
class CallOutcome:
    """A finished non-streamed call."""

    body: bytes
    headers: dict[str, str]
    record: CallRecord | None = None  # the ledger record of the call that answered
    text: str = ""                    # the answer's text (what a cascade judges)


@dataclass(slots=True)
class StreamOutcome:
    """A stream whose first chunks have arrived; ``rest`` yields the remaining SSE frames
    (already framed as ``data: ...\n\n``, batched per upstream read)."""

    headers: dict[str, str]
    first: list[bytes]
    rest: AsyncIterator[bytes]
    finish: Callable[[bool], None] = field(repr=False)


@dataclass(slots=True)
class _Ctx:
    rid: str
    t0: float
    ts: float
    endpoint: str
    body: dict[str, Any]
    plan: Plan
    principal: Principal
    reservation: Reservation | None = None
    upstream_s: float = 0.0
    attempts: list[str] = field(default_factory=list)


def _now() -> datetime:
    return datetime.now(UTC)


class Gateway:
    def __init__(self, *, catalog: Catalog, planner: Planner, upstream: Upstream,
                 health: HealthBoard, metrics: Metrics, access: AccessPolicy,
                 counter: TokenCounter, reporting_currency: str, max_attempts: int,
                 sinks: Sequence[RecordSink] = ()) -> None:
        self.catalog = catalog
        self.planner = planner
        self.upstream = upstream
        self.health = health
        self.metrics = metrics
        self.access = access
        self.counter = counter
        self.reporting_currency = reporting_currency
        self.max_attempts = max_attempts
        self.sinks = list(sinks)
        self._rng = random.Random()
        self._ids = RequestIds()
        #: tokenizers being loaded off the event loop, by encoding
        self._loading: dict[str, asyncio.Future[None]] = {}
        #: records waiting for a tokenizer before they can be settled
        self._settling: set[asyncio.Future[None]] = set()

    # -- public entry points ----------------------------------------------------
    async def chat(self, body: dict[str, Any], api_key: str | None,
                   t0: float, *, api: str = "chat") -> CallOutcome | StreamOutcome:
        """A chat request; ``api`` is the client API it came in on ("chat", "messages",
        "responses"), recorded as the ledger's ``endpoint``."""
        ctx = await self._begin(api, body, api_key, t0)
        if body.get("stream"):
            return await self._stream(ctx)
        if ctx.plan.cascade is not None:
            return await self._cascade(ctx)
        return await self._complete(ctx)

    async def embeddings(self, body: dict[str, Any], api_key: str | None,
                         t0: float) -> CallOutcome:
        ctx = await self._begin("embeddings", body, api_key, t0)
        return await self._complete(ctx)

    # -- stages -------------------------------------------------------------------
    async def _begin(self, endpoint: str, body: dict[str, Any], api_key: str | None,
                     t0: float) -> _Ctx:
        model = body["model"]
        principal = await self.access.authenticate(api_key, model)
        plan = self.planner.plan(model, body, "embeddings" if endpoint == "embeddings"
                                 else "chat")
        ts = time.time()
        ctx = _Ctx(rid=self._ids.new(ts), t0=t0, ts=ts, endpoint=endpoint,
                   body=body, plan=plan, principal=principal)
        if principal.metered:
            first = plan.targets[0]
            max_cost, currency, tokens = self._max_cost(first, body, plan)
            ctx.reservation = await self.access.reserve(principal, first.key, max_cost,
                                                        currency, tokens)
        return ctx

    def _max_cost(self, target: Target, body: dict[str, Any],
                  plan: Plan) -> tuple[Decimal, str, int]:
        entry = target.entry
        prompt = plan.prompt_tokens
        out = int(body.get("max_completion_tokens") or body.get("max_tokens") or 0)
        if not out:
            out = entry.max_output if entry is not None and entry.max_output else 4096
        out *= max(1, int(body.get("n") or 1))
        if entry is None:
            return Decimal(0), self.reporting_currency, prompt + out
        amount, currency = most_cost(entry, prompt, out, _now())
        return amount, currency, prompt + out

    def _order(self, target: Target, session: str | None = None) -> list[Deployment]:
        """Deployments in the order to try them: a weighted shuffle, each draw in
        proportion to its weight. With a session (the request's ``user``), the draw is a
        weighted rendezvous hash of (session, deployment): the same end user keeps the same
        key and base URL while it is healthy, so the vendor's prompt cache keeps hitting."""
        deps = list(target.deployments)
        if len(deps) > 1:
            if session is None:
                keyed = [(self._rng.random() ** (1.0 / d.weight), d) for d in deps]
            else:
                keyed = [(_unit(session, d.id) ** (1.0 / d.weight), d) for d in deps]
            deps = [d for _, d in sorted(keyed, key=lambda kd: -kd[0])]
        return deps

    def _attempts(self, ctx: _Ctx) -> list[tuple[Target, Deployment]]:
        out: list[tuple[Target, Deployment]] = []
        user = ctx.body.get("user")
        session = user if isinstance(user, str) and user else None
        for target in ctx.plan.targets:
            out.extend((target, dep) for dep in self._order(target, session))
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
                if ctx.endpoint != "embeddings":
                    result = target.adapter.parse_chat(data, target.model)
                else:
                    result = target.adapter.parse_embeddings(data, target.model)
            except UpstreamError as exc:
                breaker.failure(exc)
                self.metrics.fallback(target.vendor, exc.code)
                tries.failed(exc, dep)
                continue
            except ClientError as exc:
                self._finish_error(ctx, exc, target)
                raise
            breaker.success((time.perf_counter() - t_up) * 1000)
            return await self._finish_ok(ctx, target, dep, result)
        raise self._exhausted(ctx, tries)

    def _tries(self, ctx: _Ctx) -> Tries:
        return Tries(self._attempts(ctx), self.health, self.max_attempts, ctx.attempts)

    def _exhausted(self, ctx: _Ctx, tries: Tries) -> KanjiaError:
        """The error of a request whose attempts are used up (recorded as such)."""
        err = tries.last or NoDeploymentAvailable(
            f"no healthy deployment for {ctx.plan.requested!r}: every circuit is open")
        self._finish_error(ctx, err, None)
        return err

    @staticmethod
    def _request(ctx: _Ctx, target: Target, dep: Deployment, stream: bool) -> UpstreamRequest:
        try:
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
                translator = target.adapter.stream_translator(target.model, include_usage)
                parser = target.adapter.stream_decoder()
                chunks = resp.chunks()
                first = await self._first_chunks(chunks, parser, translator)
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
                                        first, ttft)
        raise self._exhausted(ctx, tries)

    @staticmethod
    async def _first_chunks(chunks: AsyncIterator[bytes], parser: StreamDecoder,
                            translator: StreamTranslator) -> list[bytes]:
        """Read until the first client-visible payload: failover is possible until then."""
        first: list[bytes] = []
        async for raw in chunks:
            for event, data in parser.feed(raw):
                first.extend(translator.feed(event, data))
            if first or translator.done:
                return first
        for event, data in parser.flush():
            first.extend(translator.feed(event, data))
        if not first and not translator.done:
            raise UpstreamProtocolError("vendor closed the stream before sending anything")
        return first

    def _stream_outcome(self, ctx: _Ctx, target: Target, dep: Deployment,
                        resp: UpstreamResponse, chunks: AsyncIterator[bytes],
                        parser: StreamDecoder, translator: StreamTranslator, first: list[bytes],
                        ttft: float) -> StreamOutcome:
        breaker = self.health.get(dep.id)
        state: dict[str, Any] = {"error": None, "done": False}

        async def rest() -> AsyncIterator[bytes]:
            """SSE frames, one batch per upstream read (one write to the client each)."""
            try:
                if not translator.done:
                    async for raw in chunks:
                        frames = [b"data: %s\n\n" % out for event, data in parser.feed(raw)
                                  for out in translator.feed(event, data)]
                        if frames:
                            yield b"".join(frames)
                        if translator.done:
                            break
                    frames = [b"data: %s\n\n" % out for event, data in parser.flush()
                              for out in translator.feed(event, data)]
                    if frames:
                        yield b"".join(frames)
                state["done"] = True
            except KanjiaError as exc:
                state["error"] = exc
                breaker.failure(exc)
                yield b"data: %s\n\n" % _error_payload(exc)
            finally:
                resp.close() if not state["done"] else resp.release()

        def finish(disconnected: bool) -> None:
            err: KanjiaError | None = state["error"]
            if err is None and not disconnected:
                breaker.success(ttft * 1000)
            usage, text = translator.usage, "".join(translator.output_text)

            def settle() -> None:
                self._settle(ctx, target, dep, usage, text,
                             status=err.status if err else 200,
                             error_class=err.code if err else None,
                             ttft_ms=ttft * 1000, disconnected=disconnected, stream=True)

            if usage is not None or self.counter.ready(target.vendor, target.model):
                settle()
                return
            # the estimate needs a tokenizer not loaded yet: load it off the event loop
            task = asyncio.ensure_future(self._settle_later(target, settle))
            self._settling.add(task)
            task.add_done_callback(self._settling.discard)
            task.add_done_callback(_quiet)

        headers = self._headers(ctx, target, None)
        return StreamOutcome(headers, first, rest(), finish)

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

    def _settle(self, ctx: _Ctx, target: Target, dep: Deployment, usage: Usage | None,
                output_text: str, *, status: int, error_class: str | None,
                ttft_ms: float | None, disconnected: bool, stream: bool) -> CallRecord:
        estimated = usage is None
        if usage is None:
            prompt = self._count_prompt(ctx, target)
            out = self.counter.count_text_tokens(target.vendor, target.model, output_text) \
                if output_text else 0
            usage = Usage(prompt, 0, 0, out, 0)
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
        self._emit(ctx, rec)
        return rec

    def _count_prompt(self, ctx: _Ctx, target: Target) -> int:
        if ctx.endpoint == "embeddings":
            inp = ctx.body.get("input")
            texts = [inp] if isinstance(inp, str) else [t for t in inp or () if isinstance(t, str)]
            return sum(self.counter.count_text_tokens(target.vendor, target.model, t)
                       for t in texts)
        return self.counter.count_prompt_tokens(target.vendor, target.model,
                                                ctx.body.get("messages") or [])

    def _emit(self, ctx: _Ctx, rec: CallRecord) -> None:
        overhead = max(0.0, (time.perf_counter() - ctx.t0) - ctx.upstream_s) \
            if not rec.stream else None
        self.metrics.observe(rec, overhead)
        for sink in self.sinks:
            sink(rec)
        if ctx.reservation is not None:
            self.access.settle(ctx.reservation, rec)

    async def _finish_ok(self, ctx: _Ctx, target: Target, dep: Deployment,
                         result: ChatResult) -> CallOutcome:
        if result.usage is None and not self.counter.ready(target.vendor, target.model):
            await self._tokenizer(target)
        rec = self._settle(ctx, target, dep, result.usage, result.output_text, status=200,
                           error_class=None, ttft_ms=None, disconnected=False, stream=False)
        headers = self._headers(ctx, target, rec)
        return CallOutcome(result.body, headers, rec, result.output_text)

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
        if len(currencies) == 1:
            total = sum((r.cost for r in records), Decimal(0))
            headers["x-kanjia-cost"] = f"{_fmt(total)} {currencies.pop()}"
        elif records:
            total = sum((r.cost_reporting for r in records), Decimal(0))
            headers["x-kanjia-cost"] = f"{_fmt(total)} {self.reporting_currency}"
        overhead_ms = ((time.perf_counter() - ctx.t0) - ctx.upstream_s) * 1000
        headers["x-kanjia-overhead-ms"] = f"{max(0.0, overhead_ms):.3f}"
        return CallOutcome(chosen.body, headers, chosen.record, chosen.text)

    async def _cascade_step(self, ctx: _Ctx, target: Target, n: int) -> _Ctx | None:
        """The context of the cascade's ``n``-th call (to ``target`` alone), with its own
        budget reservation (the first call has the request's); None when the budget or
        the rate limit refuses it."""
        plan = Plan(ctx.plan.requested, ctx.plan.route, [target], ctx.plan.prompt_tokens,
                    ctx.plan.candidates)
        if n == 1:
            return _Ctx(rid=ctx.rid, t0=ctx.t0, ts=ctx.ts, endpoint=ctx.endpoint,
                        body=ctx.body, plan=plan, principal=ctx.principal,
                        reservation=ctx.reservation)
        sub = _Ctx(rid=f"{ctx.rid}.{n}", t0=time.perf_counter(), ts=time.time(),
                   endpoint=ctx.endpoint, body=ctx.body, plan=plan, principal=ctx.principal)
        if not ctx.principal.metered:
            return sub
        max_cost, currency, tokens = self._max_cost(target, ctx.body, plan)
        try:
            sub.reservation = await self.access.reserve(ctx.principal, target.key, max_cost,
                                                        currency, tokens)
        except ClientError:
            return None
        return sub

    def _finish_error(self, ctx: _Ctx, err: KanjiaError, target: Target | None) -> None:
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
        # model, vendor, deployment and route names come from configs, clients and
        # vendors: none may put a control character into a header
        return {k: _HEADER_UNSAFE.sub("?", v) for k, v in headers.items()}


def _fmt(amount: Decimal) -> str:
    text = format(amount.normalize(), "f") if amount else "0"
    return text


def _error_payload(exc: KanjiaError) -> bytes:
    return orjson.dumps(exc.body())


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
