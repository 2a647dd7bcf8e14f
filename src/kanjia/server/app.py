"""The ASGI application: endpoints on top of the Gateway, wired by ``build_app``."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson

from kanjia.access import AccessPolicy
from kanjia.catalog import Catalog
from kanjia.config import Settings
from kanjia.errors import (
    AuthFailed,
    BadRequest,
    KanjiaError,
    MethodNotAllowed,
    RateLimited,
)
from kanjia.metering import Metering, is_master_key
from kanjia.routing.directory import ModelDirectory
from kanjia.routing.health import HealthBoard
from kanjia.routing.planner import Planner
from kanjia.scrub import Scrubber, install_log_scrubber
from kanjia.server import _asgi
from kanjia.server._asgi import Receive, Scope, Send
from kanjia.server._guesses import Guesses
from kanjia.server._ids import RequestIds
from kanjia.server._jobs import JOBS_PREFIX, job_handler, job_owner
from kanjia.server._relay import ChatFrames, relay
from kanjia.server._response_cache import cache_headers
from kanjia.server.gateway import CallOutcome, Gateway
from kanjia.server.metrics import Metrics
from kanjia.server.model_ids import check_model_id
from kanjia.server.openapi import OPENAPI
from kanjia.server.requests import lookup_request
from kanjia.server.upstream import Upstream
from kanjia.server.validate import parse_chat, parse_embeddings

if TYPE_CHECKING:
    from kanjia.batch import BatchEngine, BatchRunner, JobQueue
    from kanjia.ingress import Responses
    from kanjia.routing.shared_health import SharedHealth
    from kanjia.server.models_list import ModelsList

__all__ = ["KanjiaApp", "Services"]

Handler = Callable[["KanjiaApp", Scope, Receive, Send], Awaitable[None]]
Hook = Callable[[], Awaitable[None]]


@dataclass
class Services:
    """Everything one gateway instance owns. Built once (``kanjia.server.build_app``),
    passed explicitly; nothing in it is replaced after build."""

    settings: Settings
    catalog: Catalog
    directory: ModelDirectory
    planner: Planner
    health: HealthBoard
    metrics: Metrics
    gateway: Gateway
    upstream: Upstream
    #: who may call and spend: this instance's one policy (the gateway holds the same)
    access: AccessPolicy
    master_key: str | None
    #: the ledger and its Gatekeeper (``settings.database``); None without a ledger
    metering: Metering | None = None
    #: circuit breakers shared through Redis (``settings.redis``), else None
    shared_health: SharedHealth | None = None
    #: removes every configured secret from error text, logs and /metrics
    scrub: Scrubber = field(default_factory=Scrubber)
    #: how often the Batch API engine looks for due work, in seconds (tests shorten it)
    batch_poll_s: float = 10.0
    # -- made on first use, each by its one owner ---------------------------------------
    #: the body of GET /v1/models (``_models`` below)
    models_list: ModelsList | None = None
    #: the Batch API's engine (``server/_batches_http.py``)
    batch_engine: BatchEngine | None = None
    #: stored responses of the Responses API (``server/_responses_http.py``)
    responses: Responses | None = None


class KanjiaApp:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.routes: dict[tuple[str, str], Handler] = {
            ("POST", "/v1/chat/completions"): _chat,
            ("POST", "/chat/completions"): _chat,
            ("POST", "/v1/embeddings"): _embeddings,
            ("POST", "/embeddings"): _embeddings,
            ("GET", "/v1/models"): _models,
            ("GET", "/models"): _models,
            ("GET", "/healthz"): _healthz,
            ("GET", "/metrics"): _metrics,
            ("GET", "/openapi.json"): _openapi,
            ("GET", "/status"): _status,
        }
        self.prefix_routes: list[tuple[str, Handler]] = [(JOBS_PREFIX, job_handler),
                                                         ("/v1/requests/", lookup_request)]
        #: wrong master keys per client address (/admin/, /ui, /status, /metrics)
        self.guesses = Guesses()
        self.on_startup: list[Hook] = []
        self.on_shutdown: list[Hook] = []
        #: each says what is wrong (a red /healthz, 503) or None
        self.health_checks: list[Callable[[], str | None]] = []
        self._max_body = services.settings.server.max_body_bytes
        self._queue: JobQueue | None = None
        self._runner: BatchRunner | None = None
        #: the time (unix s) deferred work is planned and sent by (tests fix it)
        self.clock: Callable[[], float] = time.time
        self._unscrub_logs: Callable[[], None] | None = None
        #: ids of replies that have no ledger record (bad JSON, a refused key, /status)
        self._ids = RequestIds()
        from kanjia.server._ingress import register

        register(self)  # the Anthropic Messages and OpenAI Responses APIs
        from kanjia.server._batches_http import register as register_batches

        register_batches(self)  # the OpenAI-compatible Files and Batches APIs

    def mount(self, prefix: str, handler: Handler) -> None:
        self.prefix_routes.append((prefix, handler))

    @staticmethod
    def api_key(scope: Scope) -> str | None:
        """The caller's key (``Authorization: Bearer``, ``x-api-key`` or ``api-key``)."""
        return _bearer(scope)

    def is_admin(self, scope: Scope) -> bool:
        return is_master_key(_bearer(scope), self.services.master_key)

    @staticmethod
    def caller_key(scope: Scope) -> str | None:
        """The API key the request carries (Authorization: Bearer, x-api-key, api-key)."""
        return _bearer(scope)

    def admitted(self, scope: Scope, *, hold: bool = True) -> bool:
        """Whether the request carries the master key. A wrong key counts against the
        client's address (``Guesses``); while that address is held, even the right key is
        refused: 429 with Retry-After (``hold``), or False."""
        if not self.services.master_key or _bearer(scope) is None:
            return False
        client = (scope.get("client") or ("?", 0))[0]
        wait = self.guesses.wait_s(client)
        if wait > 0:
            if not hold:
                return False
            raise RateLimited("too many wrong admin keys from this address: wait before "
                              "trying again", retry_after=wait)
        if self.is_admin(scope):
            return True
        self.guesses.failed(client)
        return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            handler = self.routes.get((scope["method"], scope["path"]))
            if handler is None:
                handler = next((h for p, h in self.prefix_routes
                                if scope["path"].startswith(p)), _not_found)
            send = _with_request_id(send, self._ids)
            try:
                await handler(self, scope, receive, send)
            except KanjiaError as exc:
                allow = {"allow": exc.allow} if isinstance(exc, MethodNotAllowed) else None
                await _asgi.send_error(send, exc.scrub(self.services.scrub), allow)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def existing_batch_queue(self) -> JobQueue | None:
        """The deferred-work queue if it exists; never creates its database."""
        if self._queue is None and not os.path.exists(self.services.settings.batch_queue):
            return None
        return await self.batch_queue()

    async def batch_queue(self) -> JobQueue:
        """The deferred-work queue, opened (and its runner started) on first use."""
        if self._queue is None:
            from kanjia.batch import BatchRunner, JobQueue

            self._queue = await asyncio.to_thread(JobQueue,
                                                  self.services.settings.batch_queue)
            gateway = self.services.gateway

            async def send(body: dict[str, Any], key_id: str | None) -> dict[str, Any]:
                # as the key that queued it (reserved and billed to its budget), or the
                # operator for ``kanjia batch submit`` work
                principal = await self.services.access.principal_of(key_id, body["model"])
                outcome = await gateway.chat(body, None, time.perf_counter(),
                                             principal=principal)
                assert isinstance(outcome, CallOutcome)
                return dict(orjson.loads(outcome.body))

            self._runner = BatchRunner(self._queue, send, clock=lambda: self.clock())
            self._runner.start()
        return self._queue

    async def startup(self) -> None:
        self._unscrub_logs = install_log_scrubber(self.services.scrub)
        await self.services.upstream.start()
        if os.path.exists(self.services.settings.batch_queue):
            await self.batch_queue()
        for hook in self.on_startup:
            await hook()

    async def shutdown(self) -> None:
        await self.services.gateway.drain()  # records still being settled, before the ledger
        for hook in self.on_shutdown:
            await hook()
        if self._runner is not None:
            await self._runner.stop()
        if self._queue is not None:
            self._queue.close()
        await self.services.upstream.close()
        if self._unscrub_logs is not None:
            self._unscrub_logs()

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as exc:  # report start-up failure to the server
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return


_bearer = _asgi.bearer
_RID = b"x-kanjia-request-id"


def _with_request_id(send: Send, ids: RequestIds) -> Send:
    """``send`` that gives every reply an ``x-kanjia-request-id``: the gateway's (its
    ledger record's id) when it set one, else a fresh id of the same form."""

    async def sender(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers") or ())
            if not any(k == _RID for k, _ in headers):
                headers.append((_RID, ids.new(time.time()).encode()))
                message = {**message, "headers": headers}
        await send(message)
    return sender


async def _chat(app: KanjiaApp, scope: Scope, receive: Receive, send: Send) -> None:
    t0 = time.perf_counter()
    raw = await _asgi.read_body(scope, receive, app._max_body)
    body = parse_chat(raw)
    defer = _asgi.header(scope, b"x-kanjia-defer")
    if defer is not None:
        await _deferred(app, scope, send, body, defer)
        return
    outcome = await app.services.gateway.chat(body, _bearer(scope), t0,
                                              cache=cache_headers(scope))
    if isinstance(outcome, CallOutcome):
        await _asgi.send_bytes(send, 200, outcome.body, outcome.headers)
        return
    await relay(outcome, ChatFrames(), receive, send, outcome.headers)


async def _deferred(app: KanjiaApp, scope: Scope, send: Send, body: dict[str, Any],
                    mode: str) -> None:
    """x-kanjia-defer: until-offpeak — hold the request until its vendor's cheaper window
    opens (202 with a job id), or answer now when now is already the cheapest."""
    if mode.strip().lower() != "until-offpeak":
        raise BadRequest("x-kanjia-defer must be 'until-offpeak'")
    if body.get("stream"):
        raise BadRequest("a deferred request cannot stream; poll GET /v1/kanjia/jobs/{id}")
    s = app.services
    check_model_id(body["model"])
    principal = await s.access.authenticate(_bearer(scope), body["model"])
    # a key's deferred work is billed to its budget when sent; refused now if it would be
    await s.gateway.admissible(body, principal)
    from kanjia.batch import schedule

    plan = schedule(s.planner, body, datetime.fromtimestamp(app.clock(), UTC))
    if plan.when is None or not plan.when.deferred:
        outcome = await s.gateway.chat(body, None, time.perf_counter(), principal=principal)
        assert isinstance(outcome, CallOutcome)
        await _asgi.send_bytes(send, 200, outcome.body, {**outcome.headers,
                                                         "x-kanjia-deferred": "no"})
        return
    queue = await app.batch_queue()
    when = plan.when
    jid = queue.add(batch_id="http", model=body["model"], body=body,
                    send_at=when.at.timestamp(), route=plan.route, target=plan.target,
                    cost_now=format(when.cost_now, "f"), cost_then=format(when.cost_then, "f"),
                    currency=when.currency, owner=job_owner(_bearer(scope)),
                    key_id=principal.key_id if principal.metered else None)
    await _asgi.send_json(send, 202, {
        "id": jid, "object": "kanjia.deferred", "status": "queued", "target": plan.target,
        "send_at": when.at.isoformat(), "expected_cost_now": format(when.cost_now, "f"),
        "expected_cost_then": format(when.cost_then, "f"), "currency": when.currency,
        "poll": f"/v1/kanjia/jobs/{jid}"}, {"x-kanjia-deferred": "yes"})


async def _embeddings(app: KanjiaApp, scope: Scope, receive: Receive, send: Send) -> None:
    t0 = time.perf_counter()
    raw = await _asgi.read_body(scope, receive, app._max_body)
    body = parse_embeddings(raw)
    outcome = await app.services.gateway.embeddings(body, _bearer(scope), t0)
    await _asgi.send_bytes(send, 200, outcome.body, outcome.headers)


async def _models(app: KanjiaApp, scope: Scope, receive: Receive, send: Send) -> None:
    s = app.services
    # the same access check as chat: a 401 without a valid key where keys are required
    await s.access.authenticate(_bearer(scope), "")
    from kanjia.server.models_list import ModelsList

    listing = s.models_list
    if listing is None:
        listing = s.models_list = ModelsList(s.catalog)
    body = listing.body(((t.key, t.vendor, t.model, t.entry) for t in s.directory.targets),
                        {name: r.description for name, r in s.settings.routes.items()})
    await _asgi.send_bytes(send, 200, body)


async def _healthz(app: KanjiaApp, scope: Scope, receive: Receive, send: Send) -> None:
    """Liveness: ``{"status": "ok"}`` (503 ``failing`` with the problems when the ledger
    cannot journal); the enabled vendors only for the admin key."""
    problems = [p for check in app.health_checks if (p := check()) is not None]
    if problems:
        await _asgi.send_json(send, 503, {"status": "failing", "problems": problems})
        return
    answer: dict[str, Any] = {"status": "ok"}
    if app.admitted(scope, hold=False):
        answer["vendors"] = list(app.services.directory.enabled_vendors())
    await _asgi.send_json(send, 200, answer)


async def _metrics(app: KanjiaApp, scope: Scope, receive: Receive, send: Send) -> None:
    """Prometheus text; the admin key is required when one is set, unless
    ``[server] metrics_public = true`` makes it public deliberately."""
    s = app.services
    if s.master_key and not s.settings.server.metrics_public and not app.admitted(scope):
        raise AuthFailed("metrics require the admin key (or [server] metrics_public = true)")
    await _asgi.send_bytes(send, 200, s.scrub.exact_bytes(s.metrics.render()), None,
                           b"text/plain; version=0.0.4; charset=utf-8")


async def _status(app: KanjiaApp, scope: Scope, receive: Receive, send: Send) -> None:
    """Circuit breakers of every deployment (admin key required when one is set)."""
    s = app.services
    if s.master_key and not app.admitted(scope):
        raise AuthFailed("status requires the admin key")
    deployments = []
    for vendor, deps in s.directory.deployments.items():
        for dep in deps:  # read-only: looking must not take an open breaker's probe slot
            deployments.append({"deployment": dep.id, "vendor": vendor,
                                **s.health.snapshot(dep.id)})
    await _asgi.send_json(send, 200, {"deployments": deployments,
                                      "disabled_vendors": s.directory.disabled_reason})


async def _openapi(app: KanjiaApp, scope: Scope, receive: Receive, send: Send) -> None:
    await _asgi.send_json(send, 200, OPENAPI)


async def _not_found(app: KanjiaApp, scope: Scope, receive: Receive, send: Send) -> None:
    allow = [m for m, p in app.routes if p == scope["path"]]
    if allow:
        raise MethodNotAllowed(f"{scope['path']} does not answer {scope['method']}",
                               allow=allow)
    from kanjia.errors import UnknownEndpoint

    path: str = scope["path"]
    if path == "/ui" or path.startswith(("/ui/", "/admin/")):  # mounted only with a ledger
        part = "the dashboard" if path.startswith("/ui") else "the admin API"
        env = app.services.settings.server.master_key_env
        raise UnknownEndpoint(f"{part} is off: it needs a ledger. Start kanjia serve with "
                              f"--db FILE and ${env} set, then sign in with that key")
    raise UnknownEndpoint(f"the endpoint {scope['method']} {path} does not exist")
