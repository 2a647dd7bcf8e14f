"""HTTP handlers of the Anthropic Messages API: ``POST /v1/messages`` and
``POST /v1/messages/count_tokens``. Every error here is Anthropic-shaped."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import quote

import orjson

from kanjia.cache import CacheRequest
from kanjia.errors import ClientError, KanjiaError, PermissionDenied
from kanjia.ingress import (
    MessagesPassThrough,
    MessagesStream,
    Untranslatable,
    chat_to_message,
    count_input,
    dropped_message_fields,
    messages_to_chat,
    native_message,
    native_only_form,
    native_request_body,
)
from kanjia.routing.directory import ModelDirectory, Target
from kanjia.server import _asgi
from kanjia.server._asgi import Receive, Scope, Send
from kanjia.server._relay import relay
from kanjia.server._response_cache import cache_headers
from kanjia.server.gateway import CallOutcome
from kanjia.server.model_ids import check_model_id
from kanjia.server.validate import parse_chat, parse_json
from kanjia.vendors import NativeCall
from kanjia.vendors.anthropic import AnthropicAdapter

if TYPE_CHECKING:
    from kanjia.server.app import KanjiaApp

__all__ = ["EFFORT_VENDORS", "api_key", "checked", "count_tokens", "head_ok", "messages",
           "name_list", "reasoning_check", "send_anthropic_error", "unknown"]


def api_key(scope: Scope) -> str | None:
    """The client's key: ``Authorization: Bearer``, ``x-api-key`` or ``api-key``."""
    auth = _asgi.header(scope, b"authorization")
    if auth and auth[:7].lower() == "bearer ":
        return auth[7:].strip() or None
    return _asgi.header(scope, b"x-api-key") or _asgi.header(scope, b"api-key")


async def send_anthropic_error(app: KanjiaApp, send: Send, exc: KanjiaError) -> None:
    # where the app carries a scrubber of exact configured secrets, errors pass through it
    # here as they do in the app's own error path (KanjiaError already redacts key shapes)
    scrub = getattr(app.services, "scrub", None)
    if scrub is not None and callable(getattr(exc, "scrub", None)):
        exc = cast(Any, exc).scrub(scrub)
    status, body = exc.anthropic()
    headers = {}
    if exc.retry_after is not None:
        headers["retry-after"] = str(int(exc.retry_after + 0.999))
    if exc.request_id is not None:
        headers["x-kanjia-request-id"] = exc.request_id
    await _asgi.send_json(send, status, body, headers)


def checked(chat: dict[str, Any]) -> dict[str, Any]:
    """The translated body, through the chat endpoint's own checks: whatever chat refuses
    (limits, shapes), the other client APIs refuse too."""
    return parse_chat(orjson.dumps(chat))


#: vendors whose chat API documents ``reasoning_effort`` (others may reject the field, or
#: spell thinking their own way: Qwen's enable_thinking, Doubao's thinking, ...)
EFFORT_VENDORS = frozenset({"openai"})


def reasoning_check(directory: ModelDirectory) -> Callable[[str], bool]:
    """Does a model take ``reasoning_effort``? (a reasoning model of a vendor that reads
    it; routes and unknown models: no, the setting is dropped)"""
    def check(model: str) -> bool:
        try:
            target = directory.resolve(model)
        except KanjiaError:
            return False
        return target.entry is not None and "reasoning" in target.entry.capabilities \
            and target.vendor in EFFORT_VENDORS
    return check


#: what a name in a header list keeps as it is (the rest is percent-encoded, the comma too)
_HEADER_SAFE = "-_.~:/@!$&'()*+;="


def name_list(names: list[str]) -> str:
    """Names (the client's own tool names among them) as one header value: comma-separated,
    each percent-encoded beyond printable ASCII, so a CR, LF or non-Latin-1 character in a
    name can neither split the response nor make the server refuse to send it."""
    return ",".join(quote(name, safe=_HEADER_SAFE) for name in names)


def _headers(base: dict[str, str], dropped: list[str], fields: list[str]) -> dict[str, str]:
    headers = dict(base)
    headers["request-id"] = base.get("x-kanjia-request-id", "")  # the SDK's _request_id
    if dropped:
        headers["x-kanjia-dropped-tools"] = name_list(dropped)
    if fields:  # what the client asked for that was not sent (speed fast: not billable)
        headers["x-kanjia-dropped-fields"] = name_list(fields)
    return headers


async def messages(app: KanjiaApp, scope: Scope, receive: Receive, send: Send) -> None:
    t0 = time.perf_counter()
    s = app.services
    try:
        raw = await _asgi.read_body(scope, receive, s.settings.server.max_body_bytes)
        body = parse_json(raw)
        check, refusal, cache = reasoning_check(s.directory), None, cache_headers(scope)
        try:
            req = messages_to_chat(body, check)
        except Untranslatable as exc:  # only Anthropic can take it (a PDF, MCP servers)
            req = messages_to_chat(native_only_form(body), check)
            refusal, cache = exc.message, CacheRequest("skip")
        outcome = await s.gateway.chat(checked(req.chat), api_key(scope), t0, api="messages",
                                       cache=cache,
                                       native=_native_call(scope, body, refusal))
    except KanjiaError as exc:
        await send_anthropic_error(app, send, exc)
        return
    fields = dropped_message_fields(body)
    if outcome.native:  # Anthropic answered the client's own request: its reply as is
        headers = _headers(outcome.headers, [], fields)
        if isinstance(outcome, CallOutcome):
            await _asgi.send_bytes(send, 200, native_message(outcome.body, req.model),
                                   headers)
        else:
            await relay(outcome, MessagesPassThrough(req.model), receive, send, headers)
        return
    rid = "msg_" + _suffix(outcome.headers)
    headers = _headers(outcome.headers, req.dropped_tools, fields)
    if isinstance(outcome, CallOutcome):
        chat = orjson.loads(outcome.body)
        await _asgi.send_json(send, 200, chat_to_message(chat, req.model, rid), headers)
        return
    await relay(outcome, MessagesStream(rid, req.model), receive, send, headers)


async def count_tokens(app: KanjiaApp, scope: Scope, receive: Receive, send: Send) -> None:
    """The prompt's input tokens. When the model (a route: its first candidate the key may
    use) is Anthropic's, Anthropic's own count: the client's body goes to its
    ``count_tokens`` as it came. Otherwise, or when that call fails, kanjia's estimate by
    its tokenizer, marked ``x-kanjia-estimate: true``. No ledger row either way."""
    s = app.services
    try:
        raw = await _asgi.read_body(scope, receive, s.settings.server.max_body_bytes)
        body = parse_json(raw)
        refusal: Untranslatable | None = None
        try:
            chat = count_input(body)
        except Untranslatable as exc:  # a PDF, MCP servers: only Anthropic takes them
            chat, refusal = count_input(native_only_form(body)), exc
        model = check_model_id(chat["model"])
        principal = await s.access.authenticate(api_key(scope), model)
        target = next((t for t in s.planner.plan(model, chat).targets
                       if s.access.may_use(principal, t.key)), None)
        if target is None:  # as /v1/messages: a key counts only on models it may use
            raise PermissionDenied(f"key {principal.name!r} may not use {model!r}")
        headers = {"x-kanjia-model": f"{target.vendor}/{target.model}"}
        if not isinstance(target.adapter, AnthropicAdapter):
            if refusal is not None:  # what this model could never be sent
                raise refusal
        else:
            n = await _vendor_count(app, target, target.adapter,
                                    _native_call(scope, body, None))
            if n is not None:
                fields = dropped_message_fields(body)
                if fields:
                    headers["x-kanjia-dropped-fields"] = name_list(fields)
                await _asgi.send_json(send, 200, {"input_tokens": n}, headers)
                return
        counter = s.gateway.counter
        if not counter.ready(target.vendor, target.model):
            await asyncio.to_thread(counter.load, target.vendor, target.model)
        n = counter.count_prompt_tokens(target.vendor, target.model, chat["messages"])
        if chat.get("tools"):
            n += counter.count_text_tokens(target.vendor, target.model,
                                           orjson.dumps(chat["tools"]).decode())
    except KanjiaError as exc:
        await send_anthropic_error(app, send, exc)
        return
    await _asgi.send_json(send, 200, {"input_tokens": n},
                          {**headers, "x-kanjia-estimate": "true",
                           "x-kanjia-usage": "estimated"})


async def _vendor_count(app: KanjiaApp, target: Target, adapter: AnthropicAdapter,
                        call: NativeCall) -> int | None:
    """Anthropic's count from the first of the target's deployments that answers (those
    whose circuit is open are passed over; a count neither opens nor closes a circuit);
    None when none does. A request Anthropic refuses as malformed is the client's error."""
    s = app.services
    for dep in target.deployments:
        if not s.gateway.health.get(dep.id).available():
            continue
        try:
            req = adapter.count_tokens_request(dep, call, target.model)
            status, data, resp = await s.gateway.upstream.send_read(req)
            if status >= 400:
                raise adapter.classify_error(status, data, resp.headers)
        except ClientError:
            raise
        except KanjiaError:
            continue
        n = _input_tokens(data)
        if n is not None:
            return n
    return None


def _input_tokens(data: bytes) -> int | None:
    """``input_tokens`` of Anthropic's count_tokens answer; None when it is not one."""
    try:
        body = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    n = body.get("input_tokens") if isinstance(body, dict) else None
    return n if isinstance(n, int) and not isinstance(n, bool) and n >= 0 else None


async def unknown(app: KanjiaApp, scope: Scope, receive: Receive, send: Send) -> None:
    """Any other method or path under /v1/messages: an Anthropic-shaped 404."""
    from kanjia.errors import ModelNotFound

    await send_anthropic_error(app, send, ModelNotFound(
        f"the endpoint {scope['method']} {scope['path']} does not exist on this gateway"))


async def head_ok(app: KanjiaApp, scope: Scope, receive: Receive, send: Send) -> None:
    """``HEAD /`` and ``HEAD /v1``: the connectivity probe Claude Code makes."""
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": b""})


#: the client's headers that belong to the Messages API, passed on to Anthropic
_NATIVE_HEADERS = (b"anthropic-version", b"anthropic-beta")


def _native_call(scope: Scope, body: dict[str, Any], refusal: str | None) -> NativeCall:
    """The client's request as it came, for an upstream that speaks the Messages API."""
    headers = {name.decode(): value for name in _NATIVE_HEADERS
               if (value := _asgi.header(scope, name))}
    query = "beta=true" if scope.get("query_string") == b"beta=true" else ""
    return NativeCall("messages", native_request_body(body), headers, query, refusal)


def _suffix(headers: dict[str, str]) -> str:
    """The request id without its prefix: ids of the form ``kj-...`` read like keys to
    the secret scrubber, so a response id carries only the unique part."""
    return headers.get("x-kanjia-request-id", "").split("-", 1)[-1]
