"""Internal chat chunks → the Anthropic Messages stream (``event: ...`` SSE frames).

The sequence is Anthropic's: ``message_start``, ``ping``, then per content block
``content_block_start`` / ``content_block_delta`` (``thinking_delta``, ``text_delta``,
``input_json_delta``) / ``content_block_stop``, then ``message_delta`` (stop reason and
usage) and ``message_stop``. A stream that fails upstream ends with an ``error`` event and
no ``message_stop``, so the client never takes a broken answer for a finished one.
"""

from __future__ import annotations

from typing import Any

import orjson

from kanjia.ingress._common import finish_to_stop, stream_error
from kanjia.ingress._messages_render import anthropic_usage

__all__ = ["MessagesStream"]


def _event(name: str, data: dict[str, Any]) -> bytes:
    return b"event: %s\ndata: %s\n\n" % (name.encode(), orjson.dumps(data))


#: a ``content_block_delta`` event, its constant parts written once: (index, delta type,
#: its field, the JSON string); the same bytes as ``_event`` would write
_DELTA = (b'event: content_block_delta\ndata: {"type":"content_block_delta","index":%d,'
          b'"delta":{"type":"%s","%s":%s}}\n\n')


class MessagesStream:
    """Re-renders one chat stream; ``feed`` takes chunk payloads, returns SSE bytes."""

    __slots__ = ("_block", "_index", "_model", "_rid", "_stop", "_tool", "_usage", "failed")

    def __init__(self, rid: str, model: str) -> None:
        self._rid = rid
        self._model = model
        self._index = -1          # index of the open content block (-1: none yet)
        self._block: str | None = None  # "text" | "thinking" | "tool_use" | None (closed)
        self._tool: int | None = None   # OpenAI tool-call index of the open tool_use block
        self._stop: str | None = None
        self._usage: dict[str, Any] | None = None
        self.failed = False

    def start(self) -> bytes:
        message: dict[str, Any] = {
            "id": self._rid, "type": "message", "role": "assistant", "content": [],
            "model": self._model, "stop_reason": None, "stop_sequence": None,
                   "usage": {"input_tokens": 0, "cache_creation_input_tokens": 0,
                             "cache_read_input_tokens": 0, "output_tokens": 0}}
        return _event("message_start", {"type": "message_start", "message": message}) + \
            _event("ping", {"type": "ping"})

    def _close(self) -> bytes:
        if self._block is None:
            return b""
        self._block = None
        self._tool = None
        return _event("content_block_stop", {"type": "content_block_stop",
                                             "index": self._index})

    def _open(self, kind: str, block: dict[str, Any]) -> bytes:
        out = self._close()
        self._index += 1
        self._block = kind
        return out + _event("content_block_start", {"type": "content_block_start",
                                                    "index": self._index,
                                                    "content_block": block})

    def _delta(self, kind: bytes, field: bytes, value: str) -> bytes:
        return _DELTA % (self._index, kind, field, orjson.dumps(value))

    def feed(self, payloads: list[bytes]) -> bytes:
        out: list[bytes] = []
        for payload in payloads:
            if self.failed or payload == b"[DONE]":
                continue
            try:
                body = orjson.loads(payload)
            except orjson.JSONDecodeError:
                continue
            if not isinstance(body, dict):
                continue
            if "error" in body and "choices" not in body:
                out.append(self._fail(body))
                continue
            if isinstance(body.get("usage"), dict):
                self._usage = body["usage"]
            for choice in body.get("choices") or ():
                if isinstance(choice, dict) and choice.get("index", 0) == 0:
                    out.append(self._choice(choice))
        return b"".join(out)

    def _choice(self, choice: dict[str, Any]) -> bytes:
        out: list[bytes] = []
        raw = choice.get("delta")
        delta: dict[str, Any] = raw if isinstance(raw, dict) else {}
        reasoning = delta.get("reasoning_content")
        if isinstance(reasoning, str) and reasoning:
            if self._block != "thinking":
                out.append(self._open("thinking", {"type": "thinking", "thinking": "",
                                                   "signature": ""}))
            out.append(self._delta(b"thinking_delta", b"thinking", reasoning))
        text = delta.get("content")
        if isinstance(text, str) and text:
            if self._block != "text":
                out.append(self._open("text", {"type": "text", "text": ""}))
            out.append(self._delta(b"text_delta", b"text", text))
        for call in delta.get("tool_calls") or ():
            if not isinstance(call, dict):
                continue
            fn_raw = call.get("function")
            fn: dict[str, Any] = fn_raw if isinstance(fn_raw, dict) else {}
            index = call.get("index", 0)
            if self._block != "tool_use" or (call.get("id") and index != self._tool):
                out.append(self._open("tool_use", {"type": "tool_use",
                                                   "id": call.get("id") or "",
                                                   "name": fn.get("name") or "",
                                                   "input": {}}))
                self._tool = index
            args = fn.get("arguments")
            if isinstance(args, str) and args:
                out.append(self._delta(b"input_json_delta", b"partial_json", args))
        finish = choice.get("finish_reason")
        if finish:
            self._stop = finish_to_stop(finish)
        return b"".join(out)

    def _fail(self, body: dict[str, Any]) -> bytes:
        self.failed = True
        message, _, kind = stream_error(body)
        return _event("error", {"type": "error", "error": {"type": kind, "message": message}})

    def finish(self) -> bytes:
        """The closing events of a stream that ended cleanly."""
        if self.failed:
            return b""
        stop = self._stop or "end_turn"
        usage = anthropic_usage(self._usage)
        return self._close() + _event("message_delta", {
            "type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None},
            "usage": usage}) + _event("message_stop", {"type": "message_stop"})

    def fail(self, message: str, kind: str = "api_error") -> bytes:
        """The error event of a stream that broke outside the chat chunks."""
        if self.failed:
            return b""
        self.failed = True
        return _event("error", {"type": "error", "error": {"type": kind, "message": message}})
