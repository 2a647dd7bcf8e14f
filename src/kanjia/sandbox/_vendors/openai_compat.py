"""Handlers of the OpenAI-compatible vendors: chat completions, embeddings, models.

One handler per endpoint, built per vendor by a factory that closes over the
vendor's profile and the server state, so a request does no registry lookup.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import orjson
from aiohttp import web

from kanjia.sandbox._cache import cache_scope
from kanjia.sandbox._directives import parse_directives
from kanjia.sandbox._embeddings import as_base64, embedding
from kanjia.sandbox._faults import ERROR_FAULTS
from kanjia.sandbox._json import int_or_none
from kanjia.sandbox._limits import chat_refusal
from kanjia.sandbox._plan import plan
from kanjia.sandbox._state import SandboxState
from kanjia.sandbox._tokens import text_tokens
from kanjia.sandbox._vendors.openai_compat_render import BROKEN_CHUNK, ChatRender
from kanjia.sandbox._vendors.openai_compat_request import parse_chat
from kanjia.sandbox._vendors.openai_compat_vendors import OpenAIVendor
from kanjia.sandbox._wire import (
    BAD_KEY,
    Handler,
    bad_json,
    bearer_key,
    json_response,
    read_json,
    reply,
    stream,
)

__all__ = ["chat_handler", "embeddings_handler", "models_handler"]


def bearer_ok(request: web.Request, vendor: OpenAIVendor | None = None) -> bool:
    """A good key in ``Authorization: Bearer`` (or the vendor's own key header)."""
    key = bearer_key(request)
    if not key and vendor is not None and vendor.key_header:
        key = request.headers.get(vendor.key_header, "").strip()
    return bool(key) and key != BAD_KEY


def chat_handler(state: SandboxState, vendor: OpenAIVendor,
                 path_model: str | None = None) -> Handler:
    """``path_model``: the route part naming the model (Azure's deployment), which then
    wins over the body's ``model``."""
    retry_after = state.settings.retry_after_s

    async def chat_completions(request: web.Request) -> web.StreamResponse:
        try:
            data = await read_json(request)
            if path_model and isinstance(data, dict):
                data["model"] = request.match_info[path_model]
            req = parse_chat(data, vendor)
        except ValueError as exc:
            return bad_json(str(exc))
        if vendor.needs_key and not bearer_ok(request, vendor):
            state.stats.count(vendor.id, req.model, None)
            return vendor.errors["auth"].response(retry_after)
        refused = chat_refusal(vendor.id, req.model, data)
        if refused is not None:
            return refused
        fault = state.admit(vendor.id, req.model, req.directives)
        ask = req.ask
        if fault in ERROR_FAULTS:
            if fault != "content_filter" or vendor.filter_finish is None:
                return vendor.errors[fault].response(retry_after)
            ask = dataclasses.replace(ask, filtered=True)
        cached = state.cached_tokens(
            cache_scope(request, vendor.id, req.model), vendor.cache_for(req.model),
            req.segments, req.directives, ask.prompt_tokens
        )
        choices = plan(ask)
        state.usage.record(vendor.id, "completions", req.model, ask.prompt_tokens, cached, 0,
                           sum(c.tokens for c in choices))
        render = ChatRender(
            vendor, req, choices, cached, state.response_id(vendor.id_prefix), int(time.time())
        )
        timing = state.timing(req.directives, fault, req.stream)
        if req.stream:
            frames = render.frames()
            return await stream(
                request, state, frames, timing, fault, BROKEN_CHUNK, keepalive=vendor.keepalive
            )
        tokens = max(c.tokens for c in choices)
        return await reply(request, state, render.body(), timing, tokens, fault)

    return chat_completions


def _embedding_inputs(data: Any) -> list[str]:
    raw = data.get("input") if isinstance(data, dict) else None
    if isinstance(raw, str):
        return [raw]
    if isinstance(raw, list) and raw:
        if all(isinstance(x, str) for x in raw):
            return list(raw)
        if all(isinstance(x, int) for x in raw):
            return [" ".join(map(str, raw))]
        if all(isinstance(x, list) for x in raw):
            return [" ".join(map(str, x)) for x in raw]
    raise ValueError("'input' must be a string, an array of strings or of token arrays")


def embeddings_handler(state: SandboxState, vendor: OpenAIVendor,
                       path_model: str | None = None) -> Handler:
    retry_after = state.settings.retry_after_s

    async def embeddings(request: web.Request) -> web.StreamResponse:
        try:
            data = await read_json(request)
            texts = _embedding_inputs(data)
        except ValueError as exc:
            return bad_json(str(exc))
        model = request.match_info[path_model] if path_model else str(data.get("model") or "")
        if vendor.needs_key and not bearer_ok(request, vendor):
            state.stats.count(vendor.id, model, None)
            return vendor.errors["auth"].response(retry_after)
        directives = parse_directives(texts[-1])
        fault = state.admit(vendor.id, model, directives)
        if fault in ERROR_FAULTS and (fault != "content_filter" or vendor.filter_finish is None):
            return vendor.errors[fault].response(retry_after)
        dim = int_or_none(data.get("dimensions")) or vendor.embedding_dim
        b64 = data.get("encoding_format") == "base64"
        items = []
        for i, text in enumerate(texts):
            vector = embedding(text, dim)
            items.append(
                {
                    "object": "embedding",
                    "index": i,
                    "embedding": as_base64(vector) if b64 else vector,
                }
            )
        tokens = sum(text_tokens(t) for t in texts)
        state.usage.record(vendor.id, "embeddings", model, tokens)
        body: dict[str, Any] = {"object": "list", "data": items, "model": model}
        if not directives.no_usage:
            body["usage"] = {"prompt_tokens": tokens, "total_tokens": tokens}
        timing = state.timing(directives, fault, False)
        return await reply(request, state, orjson.dumps(body), timing, 0, fault)

    return embeddings


def models_handler(state: SandboxState, vendor: OpenAIVendor) -> Handler:
    listing = {
        "object": "list",
        "data": [
            {"id": m, "object": "model", "created": 1_700_000_000, "owned_by": vendor.id}
            for m in vendor.models
        ],
    }

    async def models(request: web.Request) -> web.StreamResponse:
        if vendor.needs_key and not bearer_ok(request, vendor):
            return vendor.errors["auth"].response(state.settings.retry_after_s)
        return json_response(listing)

    return models
