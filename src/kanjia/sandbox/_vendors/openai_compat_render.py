"""Rendering planned choices as OpenAI chat-completion bodies and stream chunks,
with each vendor's usage quirks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from kanjia.sandbox._plan import Choice
from kanjia.sandbox._sse import SENTINEL, FrameTemplate, sse_data
from kanjia.sandbox._tools import split_args
from kanjia.sandbox._vendors.openai_compat_request import ChatRequest
from kanjia.sandbox._vendors.openai_compat_vendors import OpenAIVendor

__all__ = ["BROKEN_CHUNK", "ChatRender"]

DONE = b"data: [DONE]\n\n"
BROKEN_CHUNK = (
    b'data: {"id":"chatcmpl-broken","object":"chat.completion.chunk",'
    b'"choices":[{"index":0,"delta":{"content":"trunc\n\n'
)
_FINISH = {"stop": "stop", "stop_sequence": "stop", "length": "length", "tool": "tool_calls"}


@dataclass(frozen=True, slots=True)
class ChatRender:
    vendor: OpenAIVendor
    request: ChatRequest
    choices: list[Choice]
    cached: int
    response_id: str
    created: int

    def finish_reason(self, choice: Choice) -> str:
        if choice.finish == "filter":
            return self.vendor.filter_finish or "content_filter"
        return _FINISH[choice.finish]

    def usage(self) -> dict[str, Any] | None:
        if self.request.directives.no_usage:
            return None
        vendor = self.vendor
        prompt = self.request.ask.prompt_tokens
        completion = sum(c.tokens for c in self.choices)
        reasoning = sum(c.reasoning_tokens for c in self.choices)
        usage: dict[str, Any] = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }
        if vendor.cache is not None and vendor.cache_style == "deepseek":
            usage["prompt_tokens_details"] = {"cached_tokens": self.cached}
            usage["prompt_cache_hit_tokens"] = self.cached
            usage["prompt_cache_miss_tokens"] = prompt - self.cached
        elif vendor.usage_details:
            usage["prompt_tokens_details"] = {"cached_tokens": self.cached, "audio_tokens": 0}
        elif vendor.cache is not None and self.cached:
            usage["prompt_tokens_details"] = {"cached_tokens": self.cached}
        if vendor.usage_details:
            usage["completion_tokens_details"] = {
                "reasoning_tokens": reasoning,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            }
        elif reasoning:
            usage["completion_tokens_details"] = {"reasoning_tokens": reasoning}
        return usage

    def _head(self, obj: str) -> dict[str, Any]:
        head: dict[str, Any] = {
            "id": self.response_id,
            "object": obj,
            "created": self.created,
            "model": self.request.model,
        }
        if self.vendor.system_fingerprint is not None:
            head["system_fingerprint"] = self.vendor.system_fingerprint
        return head

    def _tool_call(self, choice: Choice, index: int) -> dict[str, Any]:
        assert choice.tool is not None
        function = {"name": choice.tool.name, "arguments": choice.tool.args_json}
        return {
            "id": f"call_{self.response_id[-16:]}{index:02d}",
            "type": "function",
            "function": function,
        }

    def body(self) -> bytes:
        out = self._head("chat.completion")
        rendered = []
        for i, choice in enumerate(self.choices):
            message: dict[str, Any] = {"role": "assistant", "content": choice.text}
            if choice.reasoning:
                message["reasoning_content"] = "".join(choice.reasoning)
            if choice.tool is not None:
                message["content"] = None
                message["tool_calls"] = [self._tool_call(choice, i)]
            finish = self.finish_reason(choice)
            rendered.append(
                {"index": i, "message": message, "logprobs": None, "finish_reason": finish}
            )
        out["choices"] = rendered
        usage = self.usage()
        if usage is not None:
            out["usage"] = usage
        out.update(self.vendor.extra)
        return orjson.dumps(out)

    def frames(self) -> list[bytes]:
        """Every SSE frame of the stream, ``[DONE]`` included."""
        head = self._head("chat.completion.chunk")
        usage = self.usage()
        usage_chunk = (
            self.vendor.stream_usage == "include_usage"
            and self.request.include_usage
            and usage is not None
        )
        if usage_chunk:
            head["usage"] = None
        frames: list[bytes] = []
        for i, choice in enumerate(self.choices):
            frames.extend(self._choice_frames(head, i, choice))
        last = _chunk(head, len(self.choices) - 1, {}, self.finish_reason(self.choices[-1]))
        if self.vendor.stream_usage == "last_chunk" and usage is not None:
            last["usage"] = usage
        if usage_chunk:
            frames.append(sse_data(last))
            last = {**head, "choices": [], "usage": usage}
        last.update(self.vendor.extra)
        frames.append(sse_data(last))
        frames.append(DONE)
        return frames

    def _choice_frames(self, head: dict[str, Any], i: int, choice: Choice) -> list[bytes]:
        """Frames of one choice; the finish chunk only when it is not the last."""
        if choice.reasoning:
            first: dict[str, Any] = {"role": "assistant", "content": None, "reasoning_content": ""}
        else:
            first = {"role": "assistant", "content": ""}
        frames = [sse_data(_chunk(head, i, first, None))]
        if choice.reasoning:
            delta = {"content": None, "reasoning_content": SENTINEL}
            frames += FrameTemplate(_chunk(head, i, delta, None)).frames(choice.reasoning)
        if choice.tool is not None:
            call = self._tool_call(choice, i)
            opening = {
                **call,
                "index": 0,
                "function": {"name": call["function"]["name"], "arguments": ""},
            }
            frames.append(sse_data(_chunk(head, i, {"tool_calls": [opening]}, None)))
            piece = {"tool_calls": [{"index": 0, "function": {"arguments": SENTINEL}}]}
            args = split_args(call["function"]["arguments"])
            frames += FrameTemplate(_chunk(head, i, piece, None)).frames(args)
        elif choice.pieces:
            skeleton = _chunk(head, i, {"content": SENTINEL}, None)
            frames += FrameTemplate(skeleton).frames(choice.pieces)
        if i < len(self.choices) - 1:
            frames.append(sse_data(_chunk(head, i, {}, self.finish_reason(choice))))
        return frames


def _chunk(
    head: dict[str, Any], index: int, delta: dict[str, Any], finish: str | None
) -> dict[str, Any]:
    choice = {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}
    return {**head, "choices": [choice]}
