"""Anthropic Messages API: ``POST /anthropic/v1/messages``, plain and streamed, and
``POST /anthropic/v1/messages/count_tokens``."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from kanjia.sandbox._cache import cache_scope
from kanjia.sandbox._faults import ERROR_FAULTS
from kanjia.sandbox._limits import messages_refusal
from kanjia.sandbox._plan import Choice, plan
from kanjia.sandbox._sse import SENTINEL, FrameTemplate, sse_event
from kanjia.sandbox._state import SandboxState
from kanjia.sandbox._tools import split_args
from kanjia.sandbox._vendors.anthropic_errors import ANTHROPIC_ERRORS, anthropic_error
from kanjia.sandbox._vendors.anthropic_request import (
    CacheUsage,
    MessagesRequest,
    cache_usage,
    parse_messages,
)
from kanjia.sandbox._wire import (
    BAD_KEY,
    Handler,
    bearer_key,
    json_response,
    read_json,
    reply,
    stream,
)

__all__ = ["count_tokens_handler", "messages_handler"]

_STOP = {
    "stop": "end_turn",
    "stop_sequence": "stop_sequence",
    "length": "max_tokens",
    "tool": "tool_use",
    "filter": "refusal",
}
_BROKEN = (
    b"event: content_block_delta\n"
    b'data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"trunc\n\n'
)
_SIGNATURE = "EqQBCkgIARABGAIiQNsandboxsignature0000000000000000000000000000000000"


def _key(request: web.Request) -> str:
    return request.headers.get("x-api-key", "") or bearer_key(request)


@dataclass(frozen=True, slots=True)
class MessageRender:
    request: MessagesRequest
    choice: Choice
    cache: CacheUsage
    message_id: str

    def usage(self, output_tokens: int) -> dict[str, Any]:
        """``input_tokens`` excludes the cache reads and writes, as Anthropic's does."""
        cache = self.cache
        return {
            "input_tokens": self.request.ask.prompt_tokens - cache.read - cache.write,
            "cache_creation_input_tokens": cache.write,
            "cache_read_input_tokens": cache.read,
            "cache_creation": {
                "ephemeral_5m_input_tokens": cache.write_5m,
                "ephemeral_1h_input_tokens": cache.write_1h,
            },
            "output_tokens": output_tokens,
            "service_tier": "standard",
        }

    def _message(
        self, content: list[Any], stop_reason: str | None, output_tokens: int
    ) -> dict[str, Any]:
        message: dict[str, Any] = {
            "id": self.message_id,
            "type": "message",
            "role": "assistant",
            "model": self.request.model,
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": self.choice.stop_sequence if stop_reason else None,
        }
        if not self.request.directives.no_usage:
            message["usage"] = self.usage(output_tokens)
        return message

    def _tool_id(self) -> str:
        return "toolu_01" + self.message_id[-22:]

    def body(self) -> bytes:
        choice = self.choice
        content: list[dict[str, Any]] = []
        if choice.reasoning:
            content.append(
                {"type": "thinking", "thinking": "".join(choice.reasoning), "signature": _SIGNATURE}
            )
        if choice.tool is not None:
            content.append(
                {
                    "type": "tool_use",
                    "id": self._tool_id(),
                    "name": choice.tool.name,
                    "input": choice.tool.args,
                }
            )
        else:
            content.append({"type": "text", "text": choice.text})
        return orjson.dumps(self._message(content, _STOP[choice.finish], choice.tokens))

    def frames(self) -> list[bytes]:
        choice = self.choice
        frames = [
            sse_event(
                "message_start", {"type": "message_start", "message": self._message([], None, 1)}
            )
        ]
        index = 0
        if choice.reasoning:
            frames += _block(
                index,
                {"type": "thinking", "thinking": ""},
                "thinking_delta",
                "thinking",
                choice.reasoning,
            )
            frames.insert(-1, _delta(index, {"type": "signature_delta", "signature": _SIGNATURE}))
            index += 1
        if choice.tool is not None:
            start = {
                "type": "tool_use",
                "id": self._tool_id(),
                "name": choice.tool.name,
                "input": {},
            }
            pieces = ["", *split_args(choice.tool.args_json)]
            frames += _block(index, start, "input_json_delta", "partial_json", pieces)
        else:
            frames += _block(
                index, {"type": "text", "text": ""}, "text_delta", "text", choice.pieces
            )
        frames.insert(2, sse_event("ping", {"type": "ping"}))
        delta: dict[str, Any] = {
            "type": "message_delta",
            "delta": {"stop_reason": _STOP[choice.finish], "stop_sequence": choice.stop_sequence},
        }
        if not self.request.directives.no_usage:
            # cumulative, as the API sends it today: the prompt's counts and the output
            usage = self.usage(choice.tokens)
            delta["usage"] = {
                k: usage[k]
                for k in (
                    "input_tokens",
                    "cache_creation_input_tokens",
                    "cache_read_input_tokens",
                    "output_tokens",
                )
            }
        frames.append(sse_event("message_delta", delta))
        frames.append(sse_event("message_stop", {"type": "message_stop"}))
        return frames


def _delta(index: int, delta: dict[str, Any]) -> bytes:
    return sse_event(
        "content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}
    )


def _block(
    index: int, start: dict[str, Any], kind: str, field: str, pieces: list[str]
) -> list[bytes]:
    skeleton = {
        "type": "content_block_delta",
        "index": index,
        "delta": {"type": kind, field: SENTINEL},
    }
    template = FrameTemplate(skeleton, head=b"event: content_block_delta\ndata: ")
    return [
        sse_event(
            "content_block_start",
            {"type": "content_block_start", "index": index, "content_block": start},
        ),
        *template.frames(pieces),
        sse_event("content_block_stop", {"type": "content_block_stop", "index": index}),
    ]


def _invalid(message: str) -> web.Response:
    return json_response(anthropic_error("invalid_request_error", message), status=400)


def _unheaded(request: web.Request, key: str) -> web.Response | None:
    """Anthropic's refusal of a request without an API key or ``anthropic-version``."""
    if not key:
        return json_response(
            anthropic_error("authentication_error", "x-api-key header is required"), 401
        )
    if "anthropic-version" not in request.headers:
        return _invalid("anthropic-version: header is required")
    return None


def messages_handler(state: SandboxState) -> Handler:
    retry_after = state.settings.retry_after_s
    auth_error = ANTHROPIC_ERRORS["auth"]

    async def messages(request: web.Request) -> web.StreamResponse:
        key = _key(request)
        refused = _unheaded(request, key)
        if refused is not None:
            return refused
        try:
            req = parse_messages(await read_json(request))
        except ValueError as exc:
            return _invalid(str(exc))
        if key == BAD_KEY:
            state.stats.count("anthropic", req.model, None)
            return auth_error.response(retry_after)
        too_long = messages_refusal(req.model, req.ask.max_tokens)
        if too_long is not None:
            return _invalid(too_long)
        fault = state.admit("anthropic", req.model, req.directives)
        ask = req.ask
        if fault in ERROR_FAULTS:
            if fault != "content_filter":
                return ANTHROPIC_ERRORS[fault].response(retry_after)
            ask = dataclasses.replace(ask, filtered=True)
        message_id = state.response_id("msg_01")
        cache = cache_usage(state, req, message_id,
                            cache_scope(request, "anthropic", req.model))
        choice = plan(ask)[0]
        # the usage export bills 1-hour writes at the 5-minute write price (one field)
        state.usage.record("anthropic", "completions", req.model, ask.prompt_tokens,
                           cache.read, cache.write, choice.tokens)
        render = MessageRender(req, choice, cache, message_id)
        timing = state.timing(req.directives, fault, req.stream)
        if req.stream:
            return await stream(request, state, render.frames(), timing, fault, _BROKEN)
        return await reply(request, state, render.body(), timing, choice.tokens, fault)

    return messages


#: the fields Anthropic's count_tokens takes; any other (``max_tokens``, ``stream``, ...)
#: is refused as Anthropic refuses it
_COUNT_FIELDS = frozenset({"model", "messages", "system", "tools", "tool_choice", "thinking",
                           "output_config", "cache_control", "speed", "mcp_servers",
                           "context_management"})


def count_tokens_handler(state: SandboxState) -> Handler:
    """``count_tokens``: the prompt's tokens as a message with the same prompt bills them
    (its ``input_tokens`` plus cache reads and writes). Free, so nothing is recorded as
    usage; an error fault directive in the last user turn answers with that error."""
    retry_after = state.settings.retry_after_s

    async def count_tokens(request: web.Request) -> web.StreamResponse:
        key = _key(request)
        refused = _unheaded(request, key)
        if refused is not None:
            return refused
        if key == BAD_KEY:
            return ANTHROPIC_ERRORS["auth"].response(retry_after)
        try:
            data = await read_json(request)
            if not isinstance(data, dict):
                raise ValueError("body: Input should be a valid dictionary")
            extra = next((k for k in data if k not in _COUNT_FIELDS), None)
            if extra is not None:
                raise ValueError(f"{extra}: Extra inputs are not permitted")
            req = parse_messages({**data, "max_tokens": 1})
        except ValueError as exc:
            return _invalid(str(exc))
        fault = req.directives.fault
        if fault in ERROR_FAULTS and fault != "content_filter":
            return ANTHROPIC_ERRORS[fault].response(retry_after)
        return json_response({"input_tokens": req.ask.prompt_tokens})

    return count_tokens
