"""OpenAI's Responses API spoken natively (``POST {base_url}/responses``): the client's
request passed on, the vendor's reply and typed stream events passed back unchanged.

Usage is read from the Responses usage fields (``input_tokens``,
``input_tokens_details.cached_tokens``, ``output_tokens``,
``output_tokens_details.reasoning_tokens``). A stream is complete only on the vendor's own
terminal event (``response.completed``, or ``response.incomplete``: the answer stopped at
``max_output_tokens`` or a content filter, as OpenAI ended it); ``error`` and
``response.failed`` are errors, and a stream that just stops is truncated.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import orjson

from kanjia.catalog import Usage
from kanjia.errors import KanjiaError, UpstreamProtocolError
from kanjia.vendors._openai_format import usage_from_openai
from kanjia.vendors.base import ChatResult

__all__ = ["ResponsesNativeStream", "parse_response", "response_body"]

#: the vendor's terminal events of a whole answer
_DONE = frozenset({"response.completed", "response.incomplete"})


class _Classifier(Protocol):
    def classify_error(self, status: int, data: bytes,
                       headers: Mapping[str, str]) -> KanjiaError: ...


def response_body(body: Mapping[str, Any], model: str, stream: bool) -> bytes:
    """The client's Responses body with the vendor's model id (and ``stream``)."""
    out = dict(body)
    out["model"] = model
    if stream:
        out["stream"] = True
    else:
        out.pop("stream", None)
    return orjson.dumps(out)


def _usage(response: Any) -> Usage | None:
    raw = response.get("usage") if isinstance(response, dict) else None
    return usage_from_openai(raw) if isinstance(raw, dict) else None


def _output_text(response: dict[str, Any]) -> str:
    """What the model wrote (to estimate usage from when the vendor reports none)."""
    parts: list[str] = []
    for item in response.get("output") or ():
        if not isinstance(item, dict):
            continue
        for part in item.get("content") or ():
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                parts.append(part["text"])
        for key in ("name", "arguments", "input"):
            if isinstance(item.get(key), str):
                parts.append(item[key])
    return "".join(parts)


def _error_body(err: Any) -> bytes:
    """An OpenAI ``{"error": {...}}`` body for the error classifier."""
    err = err if isinstance(err, dict) else {}
    return orjson.dumps({"error": {"code": err.get("code"), "type": err.get("type"),
                                   "message": err.get("message") or "the response failed"}})


def parse_response(vendor: _Classifier, vid: str, data: bytes) -> ChatResult:
    """The vendor's ``response`` object unchanged, with its usage."""
    try:
        body = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise UpstreamProtocolError(f"{vid}: response is not valid JSON", vendor=vid) from None
    if not isinstance(body, dict):
        raise UpstreamProtocolError(f"{vid}: response is not a JSON object", vendor=vid)
    if body.get("object") != "response":
        if "error" in body:
            raise vendor.classify_error(200, data, {})
        raise UpstreamProtocolError(f"{vid}: the reply is not a response object", vendor=vid)
    if body.get("status") == "failed":
        raise vendor.classify_error(200, _error_body(body.get("error")), {})
    usage = _usage(body)
    return ChatResult(data, usage, "" if usage is not None else _output_text(body))


class ResponsesNativeStream:
    """Responses stream events passed on unchanged (each event's ``data``: its name is the
    payload's ``type``), read for usage and the terminal event."""

    __slots__ = ("_vendor", "_vid", "done", "output_text", "usage")

    def __init__(self, vendor: _Classifier, vid: str) -> None:
        self._vendor, self._vid = vendor, vid
        self.usage: Usage | None = None
        self.output_text: list[str] = []
        self.done = False

    @property
    def complete(self) -> bool:
        return self.done

    def feed(self, event: str | None, data: bytes) -> list[bytes]:
        try:
            ev = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise UpstreamProtocolError(f"{self._vid}: malformed stream event",
                                        vendor=self._vid) from None
        kind = ev.get("type") if isinstance(ev, dict) else None
        if not isinstance(kind, str):
            raise UpstreamProtocolError(f"{self._vid}: stream event without a type",
                                        vendor=self._vid)
        if kind == "error":
            raise self._vendor.classify_error(200, _error_body(ev), {})
        if kind == "response.failed":
            response = ev.get("response")
            err = response.get("error") if isinstance(response, dict) else None
            raise self._vendor.classify_error(200, _error_body(err), {})
        if kind in ("response.output_text.delta", "response.function_call_arguments.delta",
                    "response.reasoning_text.delta", "response.refusal.delta",
                    "response.custom_tool_call_input.delta") \
                and isinstance(ev.get("delta"), str):
            self.output_text.append(ev["delta"])
        elif kind in _DONE:
            self.usage = _usage(ev.get("response"))
            self.done = True
        # one SSE data line per event (OpenAI's are single-line JSON already)
        return [data if b"\n" not in data else orjson.dumps(ev)]
