"""Internal chat chunks → the Responses API's typed stream events.

``response.created``, ``response.in_progress``, then per output item
``response.output_item.added`` … ``response.output_item.done`` (a reasoning item with
``response.reasoning_text.delta``/``.done``; a message with ``response.content_part.added``,
``response.output_text.delta``/``.done``, ``response.content_part.done``; a function call
with ``response.function_call_arguments.delta``/``.done``), and ``response.completed``
(or ``response.incomplete``). A stream that fails upstream ends with ``error`` and
``response.failed``. Every event carries its ``sequence_number``.
"""

from __future__ import annotations

from typing import Any

import orjson

from kanjia.ingress._common import stream_error
from kanjia.ingress._responses import ResponsesRequest
from kanjia.ingress._responses_render import (
    call_item,
    custom_item,
    finish,
    message_item,
    reasoning_item,
    shell,
    usage_of,
)

__all__ = ["ResponsesStream"]

#: the delta events, their constant parts written once (sequence number, item id as JSON,
#: output index, the delta as JSON): the same bytes as ``ResponsesStream._event`` writes
_TEXT_DELTA = (b'event: response.output_text.delta\ndata: {"type":"response.output_text.delta",'
               b'"sequence_number":%d,"item_id":%s,"output_index":%d,"content_index":0,'
               b'"delta":%s,"logprobs":[]}\n\n')
_REASONING_DELTA = (b'event: response.reasoning_text.delta\ndata: {"type":'
                    b'"response.reasoning_text.delta","sequence_number":%d,"item_id":%s,'
                    b'"output_index":%d,"content_index":0,"delta":%s}\n\n')
_ARGUMENTS_DELTA = (b'event: response.function_call_arguments.delta\ndata: {"type":'
                    b'"response.function_call_arguments.delta","sequence_number":%d,'
                    b'"item_id":%s,"output_index":%d,"delta":%s}\n\n')


class ResponsesStream:
    """Re-renders one chat stream; ``feed`` takes chunk payloads, returns SSE bytes.
    After a clean end, ``response`` is the final response object (to store)."""

    def __init__(self, rid: str, req: ResponsesRequest) -> None:
        self.response = shell(rid, req.model, req.echo, "in_progress")
        self._custom = req.custom
        #: the open item's text (or arguments) so far, joined into it when it is shown
        self._parts: list[str] = []
        self._item_id = b""  # the open item's id, as JSON
        self._seq = 0
        self._item: dict[str, Any] | None = None  # the open output item
        self._tool: int | None = None
        self._finish: Any = None
        self._usage: Any = None
        self.failed = False
        self.completed = False

    def _event(self, kind: str, **data: Any) -> bytes:
        payload = {"type": kind, "sequence_number": self._seq, **data}
        self._seq += 1
        return b"event: %s\ndata: %s\n\n" % (kind.encode(), orjson.dumps(payload))

    def _delta(self, template: bytes, delta: str) -> bytes:
        self._parts.append(delta)
        out = template % (self._seq, self._item_id, self._index, orjson.dumps(delta))
        self._seq += 1
        return out

    def _joined(self) -> None:
        """Put the open item's text so far into it (before the item is shown)."""
        item = self._item
        if item is None or not self._parts:
            return
        text = "".join(self._parts)
        if item["type"] in ("message", "reasoning"):
            item["content"][0]["text"] = text
        elif item["type"] == "function_call":
            item["arguments"] = text

    @property
    def _index(self) -> int:
        return len(self.response["output"]) - 1

    def start(self) -> bytes:
        return self._event("response.created", response=self.response) + \
            self._event("response.in_progress", response=self.response)

    def _close(self) -> bytes:
        item = self._item
        if item is None:
            return b""
        self._joined()
        args = "".join(self._parts)
        self._parts = []
        self._item = None
        self._tool = None
        idx, out = self._index, []
        if item["type"] == "message":
            part = item["content"][0]
            out.append(self._event("response.output_text.done", item_id=item["id"],
                                   output_index=idx, content_index=0, text=part["text"],
                                   logprobs=[]))
            out.append(self._event("response.content_part.done", item_id=item["id"],
                                   output_index=idx, content_index=0, part=part))
        elif item["type"] == "reasoning":
            out.append(self._event("response.reasoning_text.done", item_id=item["id"],
                                   output_index=idx, content_index=0,
                                   text=item["content"][0]["text"]))
        elif item["type"] == "custom_tool_call":
            done = custom_item(item["call_id"], item["name"], args)
            item["input"] = done["input"]
            out.append(self._event("response.custom_tool_call_input.delta",
                                   item_id=item["id"], output_index=idx, delta=item["input"]))
            out.append(self._event("response.custom_tool_call_input.done",
                                   item_id=item["id"], output_index=idx, input=item["input"]))
        else:
            out.append(self._event("response.function_call_arguments.done",
                                   item_id=item["id"], output_index=idx, name=item["name"],
                                   arguments=item["arguments"]))
        item["status"] = "completed"
        out.append(self._event("response.output_item.done", output_index=idx, item=item))
        return b"".join(out)

    def _open(self, item: dict[str, Any]) -> bytes:
        out = self._close()
        self.response["output"].append(item)
        self._item = item
        self._item_id = orjson.dumps(item["id"])
        shown = dict(item)
        if item["type"] == "message":
            shown["status"], shown["content"] = "in_progress", []
        elif item["type"] == "reasoning":
            shown["content"] = []
        else:
            shown["status"] = "in_progress"
        out += self._event("response.output_item.added", output_index=self._index, item=shown)
        if item["type"] == "message":
            out += self._event("response.content_part.added", item_id=item["id"],
                               output_index=self._index, content_index=0,
                               part={"type": "output_text", "text": "", "annotations": [],
                                     "logprobs": []})
        return out

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
                message, code, _ = stream_error(body)
                out.append(self.fail(message, code))
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
            if self._item is None or self._item["type"] != "reasoning":
                out.append(self._open(reasoning_item("")))
            out.append(self._delta(_REASONING_DELTA, reasoning))
        text = delta.get("content")
        if isinstance(text, str) and text:
            if self._item is None or self._item["type"] != "message":
                out.append(self._open(message_item("", "in_progress")))
            out.append(self._delta(_TEXT_DELTA, text))
        for call in delta.get("tool_calls") or ():
            if not isinstance(call, dict):
                continue
            fn_raw = call.get("function")
            fn: dict[str, Any] = fn_raw if isinstance(fn_raw, dict) else {}
            index = call.get("index", 0)
            if self._item is None \
                    or self._item["type"] not in ("function_call", "custom_tool_call") \
                    or (call.get("id") and index != self._tool):
                name = str(fn.get("name") or "")
                make = custom_item if name in self._custom else call_item
                out.append(self._open(make(str(call.get("id") or ""), name, "", "in_progress")))
                self._tool = index
            assert self._item is not None
            args = fn.get("arguments")
            if isinstance(args, str) and args and self._item["type"] == "custom_tool_call":
                self._parts.append(args)  # a custom tool's input is sent whole, at its end
            elif isinstance(args, str) and args:
                out.append(self._delta(_ARGUMENTS_DELTA, args))
        if choice.get("finish_reason"):
            self._finish = choice["finish_reason"]
        return b"".join(out)

    def finish(self) -> bytes:
        if self.failed:
            return b""
        out = self._close()
        self.response["usage"] = usage_of(self._usage)
        finish(self.response, self._finish)
        self.completed = True
        kind = "response.completed" if self.response["status"] == "completed" \
            else "response.incomplete"
        return out + self._event(kind, response=self.response)

    def fail(self, message: str, kind: str = "upstream_error") -> bytes:
        if self.failed:
            return b""
        self.failed = True
        self._joined()
        self.response["status"] = "failed"
        self.response["error"] = {"code": kind, "message": message}
        return self._event("error", code=kind, message=message, param=None) + \
            self._event("response.failed", response=self.response)
