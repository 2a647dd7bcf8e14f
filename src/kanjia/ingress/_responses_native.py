"""A Responses request passed through to a vendor that speaks the Responses API (OpenAI):
the request as the client wrote it, the reply as the vendor wrote it.

kanjia keeps the conversation itself: a ``previous_response_id`` is expanded into the
whole input (the stored conversation's items, then the client's), and the vendor gets
``store: false`` (nothing is left at the vendor; the answer is stored in kanjia's response
store as on the translated path). On the way back only these change: ``model`` is the name
the client asked for (``x-kanjia-model`` names the model that answered), ``usage`` carries
kanjia's ``cost`` and ``cost_currency`` (added by the gateway), and the echoed ``store``
and ``previous_response_id`` are the client's (the vendor saw ``false`` and none). Output
items, reasoning with its encrypted content, hosted tool calls, ids and events are the
vendor's bytes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import orjson

from kanjia.ingress._common import stream_error, typed_events

__all__ = ["ResponsesPassThrough", "conversation_items", "dropped_response_fields", "native_body",
           "native_response", "readable_form"]

#: input item types whose ``id`` is optional and names an item only the vendor's own
#: store would hold (sent without it: with ``store: false`` the vendor keeps none)
_ID_OPTIONAL = frozenset({"message", "function_call", "function_call_output",
                          "custom_tool_call", "custom_tool_call_output"})
#: the service tiers billed at the catalog's prices (absent means ``auto``)
_BILLED_TIERS = frozenset({"auto", "default"})
#: the vendor's terminal events of a whole answer (held back until the call is recorded)
_TERMINAL = frozenset({"response.completed", "response.incomplete"})


def conversation_items(value: Any) -> list[dict[str, Any]]:
    """A request's ``input`` as items (a string is one user message)."""
    if isinstance(value, str):
        return [{"type": "message", "role": "user", "content": value}]
    return [i for i in value if isinstance(i, dict)] if isinstance(value, list) else []


#: input item types the translator reads (others only a Responses vendor can take)
_READ_ITEMS = frozenset({"message", "function_call", "function_call_output", "custom_tool_call",
                         "custom_tool_call_output", "reasoning", "web_search_call",
                         "file_search_call", "code_interpreter_call", "image_generation_call",
                         "mcp_call", "mcp_list_tools", "mcp_approval_request",
                         "mcp_approval_response"})
#: content part types the translator reads
_READ_PARTS = frozenset({"input_text", "output_text", "text", "summary_text", "reasoning_text",
                         "refusal"})
#: ``tool_choice`` types the chat form can express
_CHOOSABLE = frozenset({"function", "custom", "allowed_tools"})


def readable_form(body: Mapping[str, Any]) -> dict[str, Any]:
    """A stand-in for a request only a Responses vendor can take, for what admission
    needs (a prompt to count, the worst case to reserve): each item or content part the
    translator cannot read (an ``input_file``, an image by ``file_id``, an item type only
    OpenAI knows) becomes text of its JSON (at least as many tokens), and a ``tool_choice``
    forcing a hosted tool goes. The request itself is sent as the client wrote it."""
    out = dict(body)
    choice = out.get("tool_choice")
    if isinstance(choice, dict) and choice.get("type") not in _CHOOSABLE:
        out.pop("tool_choice")
    if isinstance(out.get("input"), list):
        out["input"] = [_readable_item(i) for i in out["input"]]
    return out


def _as_text(value: Any, kind: str = "input_text") -> dict[str, Any]:
    return {"type": kind, "text": orjson.dumps(value).decode()}


def _readable_parts(parts: Any) -> Any:
    if not isinstance(parts, list):
        return parts
    return [p if isinstance(p, dict) and (p.get("type") in _READ_PARTS or (
        p.get("type") == "input_image" and isinstance(p.get("image_url"), str)))
        else _as_text(p) for p in parts]


def _readable_item(item: Any) -> Any:
    if not isinstance(item, dict):
        return item
    kind = item.get("type", "message")
    if not isinstance(kind, str):  # malformed for every vendor: the translator says so
        return item
    if kind not in _READ_ITEMS:
        return {"type": "message", "role": "user", "content": [_as_text(item)]}
    if kind == "message" and isinstance(item.get("content"), list):
        parts = _readable_parts(item["content"])
        if item.get("role") == "assistant":  # assistant turns carry text only
            parts = [p if p.get("type") != "input_text" else {**p, "type": "output_text"}
                     for p in parts]
        return {**item, "content": parts}
    if kind.endswith("_output") and isinstance(item.get("output"), list):
        return {**item, "output": _readable_parts(item["output"])}
    return item


def _resendable(item: dict[str, Any]) -> dict[str, Any] | None:
    """An item of a stored conversation as it can be sent again with ``store: false``:
    a reasoning item only with its encrypted content (without it the vendor can only look
    the item up in its own store, which holds none), other ids left out where optional."""
    kind = item.get("type")
    if kind == "reasoning":
        return item if item.get("encrypted_content") else None
    if kind in _ID_OPTIONAL and "id" in item:
        return {k: v for k, v in item.items() if k != "id"}
    return item


def _sent_tier(tier: Any) -> bool:
    """Is this ``service_tier`` sent to the vendor? Only those billed at the catalog's prices."""
    return tier is None or (isinstance(tier, str) and tier in _BILLED_TIERS)


def dropped_response_fields(body: Mapping[str, Any]) -> list[str]:
    """The fields of the client's request that kanjia does not send on (named to the client
    in ``x-kanjia-dropped-fields``): a ``service_tier`` other than ``auto`` / ``default``."""
    return [] if _sent_tier(body.get("service_tier")) else ["service_tier"]


def native_body(body: Mapping[str, Any], prior: list[dict[str, Any]] | None
                ) -> dict[str, Any]:
    """What the vendor is sent: the client's body, with ``store: false`` and, for a
    ``previous_response_id``, the stored conversation's items before the client's input.
    A ``service_tier`` other than ``auto`` / ``default`` (flex, priority, fast, ...) is
    left out: those tiers have prices the catalog does not hold, so the request runs at
    the tier it is billed at, the vendor's ``service_tier`` in its answer says so and
    ``x-kanjia-dropped-fields`` names it."""
    out = dict(body)
    out["store"] = False
    if not _sent_tier(out.get("service_tier")):
        out.pop("service_tier")
    if out.pop("previous_response_id", None) is not None and prior is not None:
        kept = [r for i in prior if (r := _resendable(i)) is not None]
        out["input"] = [*kept, *conversation_items(body.get("input"))]
    return out


def _restore(response: dict[str, Any], model: str, echo: Mapping[str, Any]) -> None:
    response["model"] = model
    response.update(echo)


def native_response(data: bytes, model: str, echo: Mapping[str, Any]) -> dict[str, Any]:
    """The vendor's response object with the client's model name and echoed fields."""
    response: dict[str, Any] = orjson.loads(data)
    _restore(response, model, echo)
    return response


def _event(kind: str, payload: bytes) -> bytes:
    return b"event: %s\ndata: %s\n\n" % (kind.encode(), payload)


#: the head of an event that carries no response object (its type has a dot after
#: ``response.``: ``response.output_text.delta``, ...), as OpenAI writes it: passed on
#: without parsing (the gateway has checked each payload is a typed JSON object)
_ITEM_EVENT = re.compile(rb'\{"type":"(response\.[a-z_]+\.[a-z_.]+)","sequence_number":(\d+)[,}]')


class ResponsesPassThrough:
    """Relays the vendor's own typed events (the gateway hands on each event's ``data``;
    its event name is the payload's ``type``). The terminal ``response.completed`` is held
    back until ``finish``: the call is recorded (and the response stored) before the
    client's last frame. A failure becomes an ``error`` event and ``response.failed``,
    numbered after the vendor's last ``sequence_number``. After a clean end, ``response``
    is the final response object (to store)."""

    __slots__ = ("_echo", "_end", "_model", "_seq", "completed", "failed", "response")

    def __init__(self, model: str, echo: Mapping[str, Any]) -> None:
        self._model, self._echo = model, dict(echo)
        self._end: bytes | None = None
        self._seq = 0
        self.response: dict[str, Any] = {"object": "response", "status": "in_progress",
                                         "model": model, "output": [], **self._echo}
        self.failed = self.completed = False

    def start(self) -> bytes:
        return b""

    def feed(self, payloads: list[bytes]) -> bytes:
        out: list[bytes] = []
        for payload in payloads:
            if self.failed:
                break
            head = _ITEM_EVENT.match(payload)
            if head is not None:  # a delta, most of a stream: passed on as it is
                self._seq = max(self._seq, int(head[2]) + 1)
                out.append(b"event: %s\ndata: %s\n\n" % (head[1], payload))
                continue
            for raw, body, kind in typed_events((payload,)):
                out.append(self._typed(raw, body, kind))
        return b"".join(out)

    def _typed(self, payload: bytes, body: dict[str, Any], kind: str | None) -> bytes:
        if kind is None:
            if "error" in body:  # the gateway's own error frame (a broken stream)
                message, code, _ = stream_error(body)
                return self.fail(message, code)
            return b""
        seq = body.get("sequence_number")
        if isinstance(seq, int) and not isinstance(seq, bool):
            self._seq = max(self._seq, seq + 1)
        response = body.get("response")
        if isinstance(response, dict):
            _restore(response, self._model, self._echo)
            self.response = response
            payload = orjson.dumps(body)
        if kind in _TERMINAL:
            self._end = _event(kind, payload)
            return b""
        return _event(kind, payload)

    def finish(self) -> bytes:
        """The held terminal event (the gateway calls this only after the vendor's)."""
        if self.failed or self._end is None:
            return b""
        self.completed = True
        return self._end

    def fail(self, message: str, kind: str = "upstream_error") -> bytes:
        if self.failed:
            return b""
        self.failed = True
        error = {"type": "error", "code": kind, "message": message, "param": None,
                 "sequence_number": self._seq}
        failed = {**self.response, "status": "failed",
                  "error": {"code": kind, "message": message}}
        done = {"type": "response.failed", "sequence_number": self._seq + 1,
                "response": failed}
        self._seq += 2
        return _event("error", orjson.dumps(error)) + \
            _event("response.failed", orjson.dumps(done))
