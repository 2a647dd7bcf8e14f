"""HTTP handlers of the OpenAI Responses API: ``POST /v1/responses``, and
``GET /v1/responses/{id}``, ``GET /v1/responses/{id}/input_items``,
``DELETE /v1/responses/{id}`` over the stored responses."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import orjson

from kanjia.cache import CacheRequest
from kanjia.errors import BadRequest, KanjiaError, ModelNotFound
from kanjia.ingress import (
    ModelHints,
    Responses,
    ResponsesPassThrough,
    ResponsesRequest,
    ResponsesStream,
    ResponseStore,
    SQLiteResponseStore,
    assistant_turn,
    chat_to_response,
    conversation_items,
    dropped_response_fields,
    native_body,
    native_response,
    owner_of,
    readable_form,
    responses_to_chat,
)
from kanjia.routing.directory import ModelDirectory
from kanjia.server import _asgi
from kanjia.server._asgi import Receive, Scope, Send
from kanjia.server._messages_http import EFFORT_VENDORS, api_key, checked, name_list
from kanjia.server._relay import relay
from kanjia.server._response_cache import cache_headers
from kanjia.server.gateway import CallOutcome, StreamOutcome
from kanjia.server.validate import parse_json
from kanjia.vendors import NativeCall

if TYPE_CHECKING:
    from kanjia.server.app import KanjiaApp

__all__ = ["hints_for", "response_item", "responses", "sqlite_path"]

class ResponseNotFound(ModelNotFound):
    code = "response_not_found"


class PreviousResponseNotFound(ModelNotFound):
    code = "previous_response_not_found"


def _store(app: KanjiaApp) -> Responses:
    """The gateway's response store (one per app, made on first use): a SQLite file beside
    a SQLite ledger (``<ledger>.responses``), shared by all workers; else in memory."""
    s = app.services
    if s.responses is None:
        path = sqlite_path(s.settings.database)
        s.responses = SQLiteResponseStore(path + ".responses") if path else ResponseStore()
        app.on_shutdown.append(s.responses.close)
    return s.responses


def sqlite_path(database: str | None) -> str | None:
    """The file of a SQLite ledger (None for PostgreSQL, in-memory or no ledger)."""
    if not database or database.startswith(("postgresql://", "postgres://")):
        return None
    if database.startswith("sqlite:///"):
        database = database[len("sqlite:///"):]
    return None if database in ("", ":memory:") else database


def hints_for(directory: ModelDirectory) -> Callable[[str], ModelHints]:
    def hints(model: str) -> ModelHints:
        try:
            target = directory.resolve(model)
        except KanjiaError:
            return ModelHints()
        caps = target.entry.capabilities if target.entry is not None else ()
        return ModelHints(reasoning="reasoning" in caps and target.vendor in EFFORT_VENDORS,
                          completion_tokens=target.vendor == "openai")
    return hints


async def responses(app: KanjiaApp, scope: Scope, receive: Receive, send: Send) -> None:
    t0 = time.perf_counter()
    s = app.services
    raw = await _asgi.read_body(scope, receive, s.settings.server.max_body_bytes)
    body = parse_json(raw)
    key = api_key(scope)
    owner = owner_of(key)
    store = _store(app)
    history: list[dict[str, Any]] = []
    prior: list[dict[str, Any]] | None = []  # the conversation so far, as Responses items
    prev = body.get("previous_response_id")
    if prev is not None:
        if not isinstance(prev, str) or not prev:
            raise BadRequest("previous_response_id: must be a string")
        model = body.get("model")
        await s.access.authenticate(key, model if isinstance(model, str) else "")
        stored = await store.get(owner, prev)
        if stored is None:
            raise PreviousResponseNotFound(f"Previous response with id '{prev}' not found.")
        history, prior = stored.history, stored.items
    req, refusal = _translated(body, history, hints_for(s.directory))
    if refusal is not None and prior is None:
        raise BadRequest(refusal)
    # a vendor that speaks the Responses API gets the client's own request (a stored
    # response from before kanjia kept items can only continue translated)
    native = None if prior is None else NativeCall("responses", native_body(body, prior),
                                                    refusal=refusal)
    try:
        outcome = await s.gateway.chat(checked(req.chat), key, t0, api="responses",
                                       cache=cache_headers(scope) if refusal is None
                                       else CacheRequest("skip"), native=native)
    except BadRequest as exc:  # the limit's name as the client wrote it
        for name in ("'max_completion_tokens'", "'max_tokens'"):
            exc.message = exc.message.replace(name, "'max_output_tokens'")
        raise
    headers = dict(outcome.headers)
    headers["x-request-id"] = headers.get("x-kanjia-request-id", "")  # the SDK's _request_id
    fields = dropped_response_fields(body)
    if fields:  # what the client asked for that was not sent (a tier the catalog cannot price)
        headers["x-kanjia-dropped-fields"] = name_list(fields)
    if outcome.native:  # the vendor answered the client's own request: its reply as is
        sent = conversation_items(body.get("input"))
        await _native(store, owner, req, prior or [], sent, prev, outcome, receive, send,
                      headers)
        return
    rid = "resp_" + _suffix(outcome.headers)
    if req.dropped_tools:
        headers["x-kanjia-dropped-tools"] = name_list(req.dropped_tools)

    def items(output: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
        return None if prior is None else [*prior, *req.input_items, *output]

    if isinstance(outcome, CallOutcome):
        response = chat_to_response(orjson.loads(outcome.body), req, rid)
        if req.store:
            await store.put(owner, response,
                            [*req.history, assistant_turn(response["output"])],
                            req.input_items, items(response["output"]))
        await _asgi.send_json(send, 200, response, headers)
        return
    renderer = ResponsesStream(rid, req)

    async def keep() -> None:
        if req.store and renderer.completed:
            done = renderer.response
            await store.put(owner, done, [*req.history, assistant_turn(done["output"])],
                            req.input_items, items(done["output"]))

    await relay(outcome, renderer, receive, send, headers, keep)


def _translated(body: dict[str, Any], history: list[dict[str, Any]],
                hints: Callable[[str], ModelHints]) -> tuple[ResponsesRequest, str | None]:
    """The request in the chat form, and why only a vendor that speaks the Responses API
    may take it (an ``input_file``, an item type only OpenAI knows, a ``tool_choice``
    forcing a hosted tool that runs at the vendor), else None."""
    try:
        return responses_to_chat(body, history, hints), None
    except BadRequest as exc:
        readable = readable_form(body)
        if readable == body:
            raise
        try:
            return responses_to_chat(readable, history, hints), exc.message
        except BadRequest:
            raise exc from None


async def _native(store: Responses, owner: str, req: ResponsesRequest,
                  prior: list[dict[str, Any]], sent: list[dict[str, Any]], prev: Any,
                  outcome: CallOutcome | StreamOutcome, receive: Receive, send: Send,
                  headers: dict[str, str]) -> None:
    """Relay a passed-through answer; keep it (``store``, default true) in kanjia's store,
    with the conversation in both forms (chat messages, Responses items)."""
    echo = {"store": req.store, "previous_response_id": prev}

    async def keep(response: dict[str, Any]) -> None:
        output = [i for i in response.get("output") or () if isinstance(i, dict)]
        if req.store and isinstance(response.get("id"), str):
            await store.put(owner, response, [*req.history, assistant_turn(output)],
                            req.input_items, [*prior, *sent, *output])

    if isinstance(outcome, CallOutcome):
        response = native_response(outcome.body, req.model, echo)
        await keep(response)
        await _asgi.send_json(send, 200, response, headers)
        return
    renderer = ResponsesPassThrough(req.model, echo)

    async def kept() -> None:
        if renderer.completed:
            await keep(renderer.response)

    await relay(outcome, renderer, receive, send, headers, kept)


async def response_item(app: KanjiaApp, scope: Scope, receive: Receive, send: Send) -> None:
    """``GET|DELETE /v1/responses/{id}`` and ``GET /v1/responses/{id}/input_items``."""
    rest = scope["path"][len("/v1/responses/"):]
    rid, _, tail = rest.partition("/")
    method = scope["method"]
    if not rid or tail not in ("", "input_items") or (tail and method != "GET") \
            or method not in ("GET", "DELETE"):
        raise ResponseNotFound(f"the endpoint {method} {scope['path']} does not exist")
    key = api_key(scope)
    await app.services.access.authenticate(key, "")
    store, owner = _store(app), owner_of(key)
    stored = await store.get(owner, rid)
    if stored is None:
        raise ResponseNotFound(f"Response with id '{rid}' not found.")
    if method == "DELETE":
        await store.delete(owner, rid)
        await _asgi.send_json(send, 200, {"id": rid, "object": "response", "deleted": True})
    elif tail == "input_items":
        await _asgi.send_json(send, 200, _page(stored.input_items, scope))
    else:
        await _asgi.send_json(send, 200, stored.response)


def _page(items: list[dict[str, Any]], scope: Scope) -> dict[str, Any]:
    query = parse_qs(bytes(scope.get("query_string") or b"").decode("latin-1"))
    order = (query.get("order") or ["desc"])[0]
    if order not in ("asc", "desc"):
        raise BadRequest("order: must be 'asc' or 'desc'")
    try:
        limit = int((query.get("limit") or ["20"])[0])
    except ValueError:
        raise BadRequest("limit: must be an integer from 1 to 100") from None
    if not 1 <= limit <= 100:
        raise BadRequest("limit: must be an integer from 1 to 100")
    ordered = list(items) if order == "asc" else list(reversed(items))
    after = (query.get("after") or [""])[0]
    if after:
        ids = [i.get("id") for i in ordered]
        ordered = ordered[ids.index(after) + 1:] if after in ids else []
    page = ordered[:limit]
    return {"object": "list", "data": page,
            "first_id": page[0]["id"] if page else None,
            "last_id": page[-1]["id"] if page else None,
            "has_more": len(ordered) > limit}


def _suffix(headers: dict[str, str]) -> str:
    """The request id without its prefix: ids of the form ``kj-...`` read like keys to
    the secret scrubber, so a response id carries only the unique part."""
    return headers.get("x-kanjia-request-id", "").split("-", 1)[-1]
