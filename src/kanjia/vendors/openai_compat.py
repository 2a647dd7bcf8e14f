"""The data-driven adapter for every OpenAI-compatible vendor (quirks in vendors.toml)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from kanjia.catalog import Usage
from kanjia.errors import BadRequest, KanjiaError, UpstreamProtocolError
from kanjia.vendors._errors import make_error
from kanjia.vendors._openai_format import usage_from_openai
from kanjia.vendors._responses_native import ResponsesNativeStream, parse_response, response_body
from kanjia.vendors._spec import VendorSpec
from kanjia.vendors.base import ChatResult, Deployment, NativeCall, UpstreamRequest
from kanjia.vendors.sse import SSEParser

__all__ = ["OpenAICompatAdapter"]

_JSON = "application/json"


class OpenAICompatAdapter:
    def __init__(self, spec: VendorSpec) -> None:
        self.spec = spec
        #: client APIs this vendor speaks itself (base.NativeAdapter): "responses" when
        #: its vendors.toml row says it serves OpenAI's Responses API
        self.native_apis = frozenset({"responses"}) if spec.responses else frozenset()

    # -- requests -------------------------------------------------------------
    def _headers(self, dep: Deployment) -> dict[str, str]:
        headers = {"Content-Type": _JSON, **self.spec.headers, **dep.headers}
        if dep.api_key:
            headers["Authorization"] = f"Bearer {dep.api_key}"
        return headers

    def _url(self, dep: Deployment, model: str, endpoint: str) -> str:
        """Where ``endpoint`` ("chat/completions", "embeddings") lives for ``model``."""
        return f"{dep.base_url}/{endpoint}"

    def _shape(self, body: dict[str, Any], model: str) -> dict[str, Any]:
        out = dict(body)
        out["model"] = self.spec.wire_model(model)
        spec = self.spec
        for old, new in spec.renames.items():
            if old in out:
                value = out.pop(old)
                out.setdefault(new, value)
        for name in spec.drop:
            out.pop(name, None)
        if not spec.supports_n and out.get("n") == 1:
            out.pop("n")
        if not spec.cache_control:
            _drop_cache_control(out)
        return out

    def chat_request(self, dep: Deployment, body: dict[str, Any], model: str,
                     stream: bool) -> UpstreamRequest:
        out = self._shape(body, model)
        if stream:
            out["stream"] = True
            if self.spec.stream_usage == "option":
                opts = dict(out.get("stream_options") or {})
                opts["include_usage"] = True
                out["stream_options"] = opts
        return UpstreamRequest(self._url(dep, model, "chat/completions"), self._headers(dep),
                               orjson.dumps(out))

    def embeddings_request(self, dep: Deployment, body: dict[str, Any],
                           model: str) -> UpstreamRequest:
        out = dict(body)
        out["model"] = self.spec.wire_model(model)
        return UpstreamRequest(self._url(dep, model, "embeddings"), self._headers(dep),
                               orjson.dumps(out))

    # -- responses ------------------------------------------------------------
    def _load(self, data: bytes) -> dict[str, Any]:
        try:
            body = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise UpstreamProtocolError(f"{self.spec.id}: response is not valid JSON",
                                        vendor=self.spec.id) from None
        if not isinstance(body, dict):
            raise UpstreamProtocolError(f"{self.spec.id}: response is not a JSON object",
                                        vendor=self.spec.id)
        if self.spec.body_errors:
            base = body.get("base_resp")
            if isinstance(base, dict) and base.get("status_code") not in (0, None):
                raise self.classify_error(200, data, {})
        if "error" in body and "choices" not in body and "data" not in body:
            raise self.classify_error(200, data, {})
        return body

    def parse_chat(self, data: bytes, model: str) -> ChatResult:
        body = self._load(data)
        choices = body.get("choices")
        if not isinstance(choices, list):
            raise UpstreamProtocolError(f"{self.spec.id}: response has no choices",
                                        vendor=self.spec.id)
        raw_usage = body.get("usage")
        usage = usage_from_openai(raw_usage) if isinstance(raw_usage, dict) else None
        text = ""
        if usage is None:
            text = "".join(_message_text(c) for c in choices if isinstance(c, dict))
        if self.spec.finish_reasons and _fix_finish(choices, self.spec.finish_reasons):
            data = orjson.dumps(body)
        return ChatResult(body=data, usage=usage, output_text=text)

    def parse_embeddings(self, data: bytes, model: str) -> ChatResult:
        body = self._load(data)
        if not isinstance(body.get("data"), list):
            raise UpstreamProtocolError(f"{self.spec.id}: embeddings response has no data",
                                        vendor=self.spec.id)
        raw_usage = body.get("usage")
        usage = usage_from_openai(raw_usage) if isinstance(raw_usage, dict) else None
        return ChatResult(body=data, usage=usage)

    def stream_decoder(self) -> SSEParser:
        return SSEParser()

    def stream_translator(self, model: str, include_usage: bool) -> OpenAIStream:
        return OpenAIStream(self, include_usage)

    def classify_error(self, status: int, data: bytes,
                       headers: Mapping[str, str]) -> KanjiaError:
        return make_error(self.spec.id, self.spec.errors, status, data, headers)

    # -- native pass-through (the client spoke the Responses API) ------------------
    def native_request(self, dep: Deployment, call: NativeCall, model: str,
                       stream: bool) -> UpstreamRequest:
        """The client's Responses body with the vendor's model id: hosted tools, reasoning
        items with their encrypted content, ``include`` all reach the vendor."""
        if call.api not in self.native_apis:
            raise BadRequest(f"{self.spec.id} does not speak the {call.api!r} API")
        return UpstreamRequest(self._url(dep, model, "responses"), self._headers(dep),
                               response_body(call.body, self.spec.wire_model(model), stream))

    def parse_native(self, api: str, data: bytes, model: str) -> ChatResult:
        return parse_response(self, self.spec.id, data)

    def native_stream(self, api: str, model: str) -> ResponsesNativeStream:
        return ResponsesNativeStream(self, self.spec.id)


def _drop_cache_control(body: dict[str, Any]) -> None:
    """Remove Anthropic-style ``cache_control`` marks from messages, their content parts
    and tools (copying only what changes: the client's body is not modified)."""
    messages = body.get("messages")
    if isinstance(messages, list):
        body["messages"] = [_unmarked(m) for m in messages]
    tools = body.get("tools")
    if isinstance(tools, list):
        body["tools"] = [_unmarked(t) for t in tools]


def _unmarked(item: Any) -> Any:
    if not isinstance(item, dict):
        return item
    content = item.get("content")
    parts = isinstance(content, list) and any(
        isinstance(p, dict) and "cache_control" in p for p in content)
    fn = item.get("function")
    in_fn = isinstance(fn, dict) and "cache_control" in fn
    if "cache_control" not in item and not parts and not in_fn:
        return item
    out = {k: v for k, v in item.items() if k != "cache_control"}
    if parts and isinstance(content, list):
        out["content"] = [{k: v for k, v in p.items() if k != "cache_control"}
                          if isinstance(p, dict) else p for p in content]
    if in_fn and isinstance(fn, dict):
        out["function"] = {k: v for k, v in fn.items() if k != "cache_control"}
    return out


def _fix_finish(choices: list[Any], table: Mapping[str, str]) -> bool:
    """Rewrite vendor-specific finish_reason values to OpenAI's; True if any changed."""
    changed = False
    for choice in choices:
        if isinstance(choice, dict) and choice.get("finish_reason") in table:
            choice["finish_reason"] = table[choice["finish_reason"]]
            changed = True
    return changed


def _message_text(choice: dict[str, Any]) -> str:
    msg = choice.get("message") or {}
    parts = [msg.get("content") or "", msg.get("reasoning_content") or ""]
    for call in msg.get("tool_calls") or ():
        fn = call.get("function") or {}
        parts.append(str(fn.get("name") or "") + str(fn.get("arguments") or ""))
    return "".join(p for p in parts if isinstance(p, str))


class OpenAIStream:
    """Pass OpenAI-format chunks through, picking out usage and errors."""

    __slots__ = ("_adapter", "_finish_reasons", "_finished", "_include_usage", "done",
                 "output_text", "usage")

    def __init__(self, adapter: OpenAICompatAdapter, include_usage: bool) -> None:
        self._adapter = adapter
        self._finish_reasons = adapter.spec.finish_reasons  # looked up once, not per chunk
        self._include_usage = include_usage
        self.usage: Usage | None = None
        self.output_text: list[str] = []
        self.done = False
        self._finished = False  # a choice's finish_reason arrived

    @property
    def complete(self) -> bool:
        """Both end markers arrived: a ``finish_reason`` and ``[DONE]``."""
        return self.done and self._finished

    def feed(self, event: str | None, data: bytes) -> list[bytes]:
        if data == b"[DONE]":
            self.done = True
            return []
        try:
            body = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise UpstreamProtocolError(f"{self._adapter.spec.id}: malformed stream chunk",
                                        vendor=self._adapter.spec.id) from None
        if not isinstance(body, dict):
            raise UpstreamProtocolError(f"{self._adapter.spec.id}: malformed stream chunk",
                                        vendor=self._adapter.spec.id)
        if "choices" not in body and ("error" in body or "base_resp" in body):
            base = body.get("base_resp")
            if "error" in body or (isinstance(base, dict) and base.get("status_code")):
                raise self._adapter.classify_error(200, data, {})
        raw_usage = body.get("usage")
        choices = body.get("choices") or []
        if isinstance(raw_usage, dict):
            self.usage = usage_from_openai(raw_usage)
            if not choices and not self._include_usage:
                return []
        if self._finish_reasons and _fix_finish(choices, self._finish_reasons):
            data = orjson.dumps(body)
        for choice in choices:
            if isinstance(choice, dict) and choice.get("finish_reason"):
                self._finished = True
            delta = choice.get("delta") if isinstance(choice, dict) else None
            if isinstance(delta, dict):
                content = delta.get("content") or delta.get("reasoning_content")
                if isinstance(content, str):
                    self.output_text.append(content)
                for call in delta.get("tool_calls") or ():
                    fn = call.get("function") or {}
                    self.output_text.append(str(fn.get("name") or "")
                                            + str(fn.get("arguments") or ""))
        return [data]
