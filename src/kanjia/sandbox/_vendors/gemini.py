"""Gemini API: ``POST /gemini/v1beta/models/{model}:{action}`` for
generateContent, streamGenerateContent (``alt=sse`` or a JSON array),
countTokens, embedContent and batchEmbedContents."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from kanjia.sandbox._cache import CachePolicy, cache_scope
from kanjia.sandbox._directives import parse_directives
from kanjia.sandbox._embeddings import embedding
from kanjia.sandbox._faults import ERROR_FAULTS
from kanjia.sandbox._json import as_dict
from kanjia.sandbox._plan import Choice, plan
from kanjia.sandbox._state import SandboxState, Timing
from kanjia.sandbox._tokens import PRIMING, text_tokens
from kanjia.sandbox._vendors.gemini_errors import GEMINI_ERRORS, MISSING_KEY, gemini_error
from kanjia.sandbox._vendors.gemini_request import GenerateRequest, parse_generate, parts_text
from kanjia.sandbox._wire import BAD_KEY, Handler, json_response, read_json, reply, stream

__all__ = ["GEMINI_MODELS", "gemini_handler", "gemini_models_handler"]

GEMINI_MODELS = ("gemini-2.0-flash", "gemini-2.5-flash", "gemini-2.5-pro", "text-embedding-004")
_FINISH = {
    "stop": "STOP",
    "stop_sequence": "STOP",
    "length": "MAX_TOKENS",
    "tool": "STOP",
    "filter": "SAFETY",
}
_CACHE = CachePolicy(unit=1, minimum=1024)
_PIECES_PER_CHUNK = 8
_SSE_END = b"\r\n\r\n"
_BROKEN = b'data: {"candidates": [{"content": {"parts": [{"text": "trunc' + _SSE_END
_SAFETY_RATINGS = [
    {"category": "HARM_CATEGORY_HARASSMENT", "probability": "HIGH"},
    {"category": "HARM_CATEGORY_HATE_SPEECH", "probability": "NEGLIGIBLE"},
    {"category": "HARM_CATEGORY_SEXUALLY_EXPLICIT", "probability": "NEGLIGIBLE"},
    {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "NEGLIGIBLE"},
]


@dataclass(frozen=True, slots=True)
class GenerateRender:
    request: GenerateRequest
    choices: list[Choice]
    cached: int
    response_id: str

    def usage(self, final: bool = True) -> dict[str, Any]:
        prompt = self.request.ask.prompt_tokens
        thoughts = sum(c.reasoning_tokens for c in self.choices)
        usage: dict[str, Any] = {"promptTokenCount": prompt}
        if final:
            usage["candidatesTokenCount"] = sum(c.tokens for c in self.choices) - thoughts
        usage["totalTokenCount"] = prompt + (
            usage.get("candidatesTokenCount", 0) + thoughts if final else 0
        )
        if self.cached:
            usage["cachedContentTokenCount"] = self.cached
        usage["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": prompt}]
        if thoughts and final:
            usage["thoughtsTokenCount"] = thoughts
        return usage

    def _wrap(self, candidates: list[dict[str, Any]], final: bool) -> dict[str, Any]:
        body: dict[str, Any] = {"candidates": candidates}
        if not self.request.directives.no_usage:
            body["usageMetadata"] = self.usage(final)
        body["modelVersion"] = self.request.model
        body["responseId"] = self.response_id
        return body

    def _parts(self, choice: Choice, pieces: list[str], thoughts: bool) -> list[dict[str, Any]]:
        parts: list[dict[str, Any]] = []
        if thoughts and choice.reasoning and self.request.include_thoughts:
            parts.append({"text": "".join(choice.reasoning), "thought": True})
        if choice.tool is not None:
            parts.append({"functionCall": {"name": choice.tool.name, "args": choice.tool.args}})
        elif pieces or not parts:
            parts.append({"text": "".join(pieces)})
        return parts

    def _candidate(self, i: int, parts: list[dict[str, Any]], finish: str | None) -> dict[str, Any]:
        candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}}
        if finish is not None:
            candidate["finishReason"] = finish
            if finish == "SAFETY":
                candidate["safetyRatings"] = _SAFETY_RATINGS
        candidate["index"] = i
        return candidate

    def body(self) -> bytes:
        candidates = [
            self._candidate(i, self._parts(c, c.pieces, True), _FINISH[c.finish])
            for i, c in enumerate(self.choices)
        ]
        return orjson.dumps(self._wrap(candidates, True))

    def chunks(self) -> list[dict[str, Any]]:
        """The stream's response objects: text in groups of a few tokens, each
        candidate's last group with its finishReason, full usage on the very last."""
        out: list[dict[str, Any]] = []
        for i, choice in enumerate(self.choices):
            pieces = choice.pieces
            groups = [
                pieces[k : k + _PIECES_PER_CHUNK] for k in range(0, len(pieces), _PIECES_PER_CHUNK)
            ]
            groups = groups or [[]]
            for g, group in enumerate(groups):
                last = g == len(groups) - 1
                parts = self._parts(choice, group, g == 0)
                candidate = self._candidate(i, parts, _FINISH[choice.finish] if last else None)
                out.append(self._wrap([candidate], last and i == len(self.choices) - 1))
        return out


def _prompt_blocked(req: GenerateRequest) -> dict[str, Any]:
    body: dict[str, Any] = {
        "promptFeedback": {"blockReason": "SAFETY", "safetyRatings": _SAFETY_RATINGS}
    }
    if not req.directives.no_usage:
        prompt = req.ask.prompt_tokens
        body["usageMetadata"] = {"promptTokenCount": prompt, "totalTokenCount": prompt}
    body["modelVersion"] = req.model
    return body


def _key_error(request: web.Request) -> web.Response | None:
    key = request.headers.get("x-goog-api-key") or request.query.get("key", "")
    if not key:
        return MISSING_KEY.response(0)
    if key == BAD_KEY:
        return GEMINI_ERRORS["auth"].response(0)
    return None


def _bad(message: str) -> web.Response:
    return json_response(gemini_error(400, "INVALID_ARGUMENT", message), status=400)


def _embed_dim(model: str, data: Any) -> int:
    dim = data.get("outputDimensionality") if isinstance(data, dict) else None
    if isinstance(dim, int) and dim > 0:
        return dim
    return 3072 if model.startswith("gemini-embedding") else 768


class _Gemini:
    """The per-server handler; one method per action."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self.retry_after = state.settings.retry_after_s

    async def generate(
        self, request: web.Request, model: str, data: Any, streamed: bool
    ) -> web.StreamResponse:
        state = self.state
        try:
            req = parse_generate(model, data)
        except ValueError as exc:
            return _bad(str(exc))
        fault = state.admit("gemini", model, req.directives)
        ask = req.ask
        timing = state.timing(req.directives, fault, streamed)
        if fault == "content_filter":
            body = _prompt_blocked(req)
            if streamed:
                return await self._stream(request, [body], timing, None)
            return await reply(request, state, orjson.dumps(body), timing, 0, None)
        if fault in ERROR_FAULTS:
            return GEMINI_ERRORS[fault].response(self.retry_after)
        cached = state.cached_tokens(
            cache_scope(request, "gemini", model), _CACHE, req.segments, req.directives,
            ask.prompt_tokens
        )
        render = GenerateRender(req, plan(ask), cached, state.response_id("")[-22:])
        state.usage.record("gemini", "completions", model, ask.prompt_tokens, cached, 0,
                           sum(c.tokens for c in render.choices))
        if streamed:
            return await self._stream(request, render.chunks(), timing, fault)
        tokens = max(c.tokens for c in render.choices)
        return await reply(request, state, render.body(), timing, tokens, fault)

    async def _stream(
        self, request: web.Request, chunks: list[Any], timing: Timing, fault: str | None
    ) -> web.StreamResponse:
        if request.query.get("alt") == "sse":
            frames = [b"data: " + orjson.dumps(c) + _SSE_END for c in chunks]
            return await stream(request, self.state, frames, timing, fault, _BROKEN)
        frames = [(b"[" if i == 0 else b",\r\n") + orjson.dumps(c) for i, c in enumerate(chunks)]
        frames.append(b"]")
        headers = {"Content-Type": "application/json; charset=UTF-8"}
        return await stream(
            request, self.state, frames, timing, fault, b',\r\n{"candidates": [', headers=headers
        )

    async def embed(
        self, request: web.Request, model: str, data: Any, batch: bool
    ) -> web.StreamResponse:
        requests = data.get("requests") if batch and isinstance(data, dict) else [data]
        if not isinstance(requests, list) or not requests:
            return _bad("* BatchEmbedContentsRequest.requests: requests is not specified")
        texts = [parts_text(as_dict(as_dict(r).get("content")).get("parts"))[0] for r in requests]
        directives = parse_directives(texts[-1])
        fault = self.state.admit("gemini", model, directives)
        if fault in ERROR_FAULTS and fault != "content_filter":
            return GEMINI_ERRORS[fault].response(self.retry_after)
        vectors = [
            {"values": embedding(t, _embed_dim(model, r))}
            for t, r in zip(texts, requests, strict=True)
        ]
        body = {"embeddings": vectors} if batch else {"embedding": vectors[0]}
        self.state.usage.record("gemini", "embeddings", model, sum(map(text_tokens, texts)))
        return await reply(
            request,
            self.state,
            orjson.dumps(body),
            self.state.timing(directives, fault, False),
            0,
            fault,
        )

    async def count_tokens(self, model: str, data: Any) -> web.StreamResponse:
        contents = data.get("contents") if isinstance(data, dict) else None
        total = PRIMING + sum(
            text_tokens(parts_text(c.get("parts"))[0])
            for c in contents or ()
            if isinstance(c, dict)
        )
        return json_response(
            {
                "totalTokens": total,
                "promptTokensDetails": [{"modality": "TEXT", "tokenCount": total}],
            }
        )

    async def handle(self, request: web.Request) -> web.StreamResponse:
        key_error = _key_error(request)
        if key_error is not None:
            return key_error
        model, _, action = request.match_info["target"].partition(":")
        try:
            data = await read_json(request)
        except ValueError as exc:
            return _bad(str(exc))
        if action == "generateContent":
            return await self.generate(request, model, data, False)
        if action == "streamGenerateContent":
            return await self.generate(request, model, data, True)
        if action in ("embedContent", "batchEmbedContents"):
            return await self.embed(request, model, data, action == "batchEmbedContents")
        if action == "countTokens":
            return await self.count_tokens(model, data)
        body = gemini_error(404, "NOT_FOUND", f"Method {action!r} not found for model {model!r}.")
        return json_response(body, status=404)


def gemini_handler(state: SandboxState) -> Handler:
    return _Gemini(state).handle


def gemini_models_handler(state: SandboxState) -> Handler:
    listing = {
        "models": [
            {
                "name": f"models/{m}",
                "displayName": m,
                "supportedGenerationMethods": ["generateContent"],
            }
            for m in GEMINI_MODELS
        ]
    }

    async def models(request: web.Request) -> web.StreamResponse:
        key_error = _key_error(request)
        return key_error if key_error is not None else json_response(listing)

    return models
