"""Translating adapter for the Anthropic Messages API (/v1/messages)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import orjson

from kanjia.catalog import Usage
from kanjia.errors import BadRequest, KanjiaError, UpstreamProtocolError
from kanjia.vendors._errors import make_error
from kanjia.vendors._messages import data_url, image_url_of, json_args, system_text, text_of
from kanjia.vendors._openai_format import chunk, completion
from kanjia.vendors._spec import VendorSpec
from kanjia.vendors.base import ChatResult, Deployment, NativeCall, UpstreamRequest
from kanjia.vendors.sse import SSEParser

__all__ = ["AnthropicAdapter", "AnthropicNativeStream"]

_STOP = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length",
         "tool_use": "tool_calls", "refusal": "content_filter", "pause_turn": "stop"}
_VERSION = "2023-06-01"
_DEFAULT_MAX_TOKENS = 4096
_TTLS = ("5m", "1h")
_JSON_INSTRUCTION = "Respond with one valid JSON object and nothing else."


def _cache_control(raw: Any) -> dict[str, Any] | None:
    """An Anthropic ``cache_control`` as a client sent it (LiteLLM/OpenRouter style, on
    content parts, messages and tools): ``{"type": "ephemeral"}``, optionally
    ``"ttl": "5m" | "1h"``. None when absent; BadRequest when malformed."""
    if raw is None:
        return None
    if not isinstance(raw, dict) or raw.get("type") != "ephemeral" \
            or set(raw) - {"type", "ttl"}:
        raise BadRequest("cache_control must be {\"type\": \"ephemeral\"} "
                         "with an optional \"ttl\": \"5m\" or \"1h\"")
    ttl = raw.get("ttl")
    if ttl is None:
        return {"type": "ephemeral"}
    if ttl not in _TTLS:
        raise BadRequest("cache_control.ttl must be \"5m\" or \"1h\"")
    return {"type": "ephemeral", "ttl": ttl}


def _mark(block: dict[str, Any], raw: Any) -> dict[str, Any]:
    """``block`` with the client's cache_control (if any) carried over."""
    control = _cache_control(raw)
    if control is not None:
        block["cache_control"] = control
    return block


def _content_parts(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str) or content is None:
        return [{"type": "text", "text": content or ""}]
    parts: list[dict[str, Any]] = []
    for p in content:
        if not isinstance(p, dict):
            raise BadRequest("content parts must be objects")
        if p.get("type") == "text":
            parts.append(_mark({"type": "text", "text": p.get("text", "")},
                               p.get("cache_control")))
        elif p.get("type") == "image_url":
            url = image_url_of(p)
            split = data_url(url)
            source = ({"type": "base64", "media_type": split[0], "data": split[1]} if split
                      else {"type": "url", "url": url})
            parts.append(_mark({"type": "image", "source": source}, p.get("cache_control")))
    return parts


def _mark_last(blocks: list[dict[str, Any]], message: dict[str, Any]) -> None:
    """A message-level ``cache_control`` goes on the message's last block."""
    if blocks and message.get("cache_control") is not None:
        _mark(blocks[-1], message["cache_control"])


def _system(messages: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
    """System/developer messages as Anthropic system text blocks, when any of them
    carries a cache_control (else None: the system goes as one string, as before)."""
    system = [m for m in messages if m.get("role") in ("system", "developer")]
    if not any(m.get("cache_control") is not None or
               (isinstance(m.get("content"), list) and
                any(isinstance(p, dict) and p.get("cache_control") is not None
                    for p in m["content"])) for m in system):
        return None
    blocks: list[dict[str, Any]] = []
    for m in system:
        content = m.get("content")
        if isinstance(content, list):
            mine = [_mark({"type": "text", "text": p["text"]}, p.get("cache_control"))
                    for p in content if isinstance(p, dict) and p.get("type") == "text"
                    and isinstance(p.get("text"), str) and p["text"]]
        else:
            text = text_of(content)
            mine = [{"type": "text", "text": text}] if text else []
        _mark_last(mine, m)
        blocks.extend(mine)
    return blocks


def _tools(tools: list[Any]) -> list[dict[str, Any]]:
    out = []
    for t in tools:
        if t.get("type") != "function":
            continue
        fn = t["function"]
        tool = {"name": fn["name"], "description": fn.get("description", ""),
                "input_schema": fn.get("parameters") or {"type": "object", "properties": {}}}
        control = t.get("cache_control")
        out.append(_mark(tool, control if control is not None else fn.get("cache_control")))
    return out


def _messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for m in messages:
        role = m.get("role")
        if role in ("system", "developer"):
            continue
        if role == "tool":
            block = {"type": "tool_result", "tool_use_id": m.get("tool_call_id", ""),
                     "content": text_of(m.get("content"))}
            content = m.get("content")
            if isinstance(content, list):
                for p in content:
                    if isinstance(p, dict) and p.get("cache_control") is not None:
                        _mark(block, p["cache_control"])
            _mark_last([block], m)
            if out and out[-1]["role"] == "user" and isinstance(out[-1]["content"], list) \
                    and out[-1]["content"] and out[-1]["content"][0].get("type") == "tool_result":
                out[-1]["content"].append(block)
            else:
                out.append({"role": "user", "content": [block]})
            continue
        if role == "assistant":
            blocks: list[dict[str, Any]] = []
            content = m.get("content")
            if isinstance(content, list):
                blocks.extend(_mark({"type": "text", "text": p["text"]}, p.get("cache_control"))
                              for p in content if isinstance(p, dict)
                              and p.get("type") == "text" and isinstance(p.get("text"), str)
                              and p["text"])
            else:
                text = text_of(content)
                if text:
                    blocks.append({"type": "text", "text": text})
            for call in m.get("tool_calls") or ():
                fn = call.get("function") or {}
                blocks.append({"type": "tool_use", "id": call.get("id", ""),
                               "name": fn.get("name", ""), "input": json_args(fn.get("arguments"))})
            blocks = blocks or [{"type": "text", "text": ""}]
            _mark_last(blocks, m)
            out.append({"role": "assistant", "content": blocks})
            continue
        if role != "user":
            raise BadRequest(f"unsupported message role {role!r}")
        parts = _content_parts(m.get("content"))
        _mark_last(parts, m)
        out.append({"role": "user", "content": parts})
    return out


def _tool_choice(choice: Any) -> dict[str, Any] | None:
    if choice is None or choice == "auto":
        return {"type": "auto"} if choice else None
    if choice == "required":
        return {"type": "any"}
    if choice == "none":
        return {"type": "none"}
    if isinstance(choice, dict):
        return {"type": "tool", "name": (choice.get("function") or {}).get("name", "")}
    raise BadRequest("tool_choice must be 'auto', 'none', 'required' or a function")


def _usage(u: Mapping[str, Any]) -> Usage | None:
    """Anthropic usage: ``input_tokens`` EXCLUDES the cache, so the prompt is
    ``input_tokens + cache_read_input_tokens + cache_creation_input_tokens``; the writes
    split by TTL in ``cache_creation.ephemeral_5m_input_tokens`` / ``_1h_``. None when
    malformed (the caller then estimates)."""
    try:
        base_in = _tokens(u, "input_tokens")
        read = _tokens(u, "cache_read_input_tokens")
        write = _tokens(u, "cache_creation_input_tokens")
        split = u.get("cache_creation")
        hour = 0
        if isinstance(split, Mapping):
            five = _tokens(split, "ephemeral_5m_input_tokens")
            hour = _tokens(split, "ephemeral_1h_input_tokens")
            write = max(write, five + hour)
        output = _tokens(u, "output_tokens")
    except ValueError:
        return None
    return Usage(input_tokens=base_in + read + write, cached_tokens=read,
                 cache_write_tokens=write, output_tokens=output, reasoning_tokens=0,
                 cache_write_1h_tokens=min(hour, write))


def _tokens(u: Mapping[str, Any], name: str) -> int:
    value = u.get(name)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(name)
    return value


class AnthropicAdapter:
    def __init__(self, spec: VendorSpec) -> None:
        self.spec = spec

    def _headers(self, dep: Deployment) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "anthropic-version": _VERSION}
        if dep.api_key:
            headers["x-api-key"] = dep.api_key
        return headers

    def chat_request(self, dep: Deployment, body: dict[str, Any], model: str,
                     stream: bool) -> UpstreamRequest:
        messages = body["messages"]
        out: dict[str, Any] = {
            "model": model,
            "messages": _messages(messages),
            "max_tokens": body.get("max_completion_tokens") or body.get("max_tokens")
            or _DEFAULT_MAX_TOKENS,
        }
        system = system_text(messages)
        fmt = body.get("response_format") or {}
        json_mode = isinstance(fmt, dict) and fmt.get("type") in ("json_object", "json_schema")
        blocks = _system(messages)
        if blocks is not None:  # cache_control on the system prompt: send text blocks
            if json_mode:  # after the cached prefix, so the cache still hits
                blocks.append({"type": "text", "text": _JSON_INSTRUCTION})
            out["system"] = blocks
        else:
            if json_mode:
                system = (system + "\n\n" if system else "") + _JSON_INSTRUCTION
            if system:
                out["system"] = system
        for src, dst in (("temperature", "temperature"), ("top_p", "top_p")):
            if body.get(src) is not None:
                out[dst] = body[src]
        stop = body.get("stop")
        if stop:
            out["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
        if body.get("tools"):
            out["tools"] = _tools(body["tools"])
        choice = _tool_choice(body.get("tool_choice"))
        if choice is not None and body.get("tools"):
            out["tool_choice"] = choice
        if body.get("user"):
            out["metadata"] = {"user_id": str(body["user"])}
        if stream:
            out["stream"] = True
        return UpstreamRequest(f"{dep.base_url}/v1/messages", self._headers(dep),
                               orjson.dumps(out))

    def parse_chat(self, data: bytes, model: str) -> ChatResult:
        try:
            body = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise UpstreamProtocolError("anthropic: response is not valid JSON",
                                        vendor=self.spec.id) from None
        if not isinstance(body, dict) or body.get("type") == "error":
            raise self.classify_error(200, data, {})
        texts: list[str] = []
        calls: list[dict[str, Any]] = []
        content = body.get("content")
        for block in content if isinstance(content, list) else ():
            if not isinstance(block, dict):
                continue
            if block.get("type") == "text":
                texts.append(block.get("text", ""))
            elif block.get("type") == "tool_use":
                calls.append({"id": block.get("id"), "type": "function",
                              "function": {"name": block.get("name"),
                                           "arguments": orjson.dumps(block.get("input", {}))
                                           .decode()}})
        message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) or None}
        if calls:
            message["tool_calls"] = calls
        finish = _STOP.get(body.get("stop_reason") or "end_turn", "stop")
        usage = _usage(body["usage"]) if isinstance(body.get("usage"), dict) else None
        rid = "chatcmpl-" + str(body.get("id", ""))
        out = completion(rid, body.get("model", model),
                         [{"index": 0, "message": message, "finish_reason": finish}], usage)
        return ChatResult(out, usage, "".join(texts))

    def stream_decoder(self) -> SSEParser:
        return SSEParser()

    def stream_translator(self, model: str, include_usage: bool) -> AnthropicStream:
        return AnthropicStream(self, model, include_usage)

    def embeddings_request(self, dep: Deployment, body: dict[str, Any],
                           model: str) -> UpstreamRequest:
        raise BadRequest("anthropic does not offer an embeddings API")

    def parse_embeddings(self, data: bytes, model: str) -> ChatResult:
        raise BadRequest("anthropic does not offer an embeddings API")

    def classify_error(self, status: int, data: bytes,
                       headers: Mapping[str, str]) -> KanjiaError:
        return make_error(self.spec.id, self.spec.errors, status, data, headers)

    # -- native pass-through (the client spoke the Messages API) ---------------------
    #: client APIs this vendor speaks itself (base.NativeAdapter)
    native_apis = frozenset({"messages"})

    def native_request(self, dep: Deployment, call: NativeCall, model: str,
                       stream: bool) -> UpstreamRequest:
        """The client's Messages body as it came, with the vendor's model id: cache_control,
        thinking blocks and their signatures, top_k, betas all reach Anthropic."""
        if call.api not in self.native_apis:
            raise BadRequest(f"anthropic does not speak the {call.api!r} API")
        body = dict(call.body)
        body["model"] = model
        if stream:
            body["stream"] = True
        return self._native(dep, call, "/v1/messages", body)

    def count_tokens_request(self, dep: Deployment, call: NativeCall,
                             model: str) -> UpstreamRequest:
        """Anthropic's own count of a Messages prompt (``POST /v1/messages/count_tokens``,
        free of charge): the client's count_tokens body as it came, with the vendor's model
        id; the answer is ``{"input_tokens": n}``."""
        body = dict(call.body)
        body["model"] = model
        return self._native(dep, call, "/v1/messages/count_tokens", body)

    def _native(self, dep: Deployment, call: NativeCall, path: str,
                body: dict[str, Any]) -> UpstreamRequest:
        """``body`` to ``path`` with the vendor's key and the client's ``anthropic-version``,
        ``anthropic-beta`` and query string (Claude Code's ``beta=true``)."""
        headers = self._headers(dep)
        for name in ("anthropic-version", "anthropic-beta"):
            if call.headers.get(name):
                headers[name] = call.headers[name]
        query = f"?{call.query}" if call.query else ""
        return UpstreamRequest(f"{dep.base_url}{path}{query}", headers, orjson.dumps(body))

    def parse_native(self, api: str, data: bytes, model: str) -> ChatResult:
        """The vendor's message unchanged, with its usage (as the translated path reads it);
        a 200 that is not a message is the vendor's protocol error, never a success."""
        parsed = self.parse_chat(data, model)
        if orjson.loads(data).get("type") != "message":
            raise UpstreamProtocolError("anthropic: the answer is not a message",
                                        vendor=self.spec.id)
        return ChatResult(data, parsed.usage, parsed.output_text)

    def native_stream(self, api: str, model: str) -> AnthropicNativeStream:
        return AnthropicNativeStream(self, model, include_usage=False)


class AnthropicStream:
    """Anthropic stream events → OpenAI chunks."""

    def __init__(self, adapter: AnthropicAdapter, model: str, include_usage: bool) -> None:
        self._adapter = adapter
        self._model = model
        self._include_usage = include_usage
        self._rid = "chatcmpl-anthropic"
        self._created = int(time.time())
        self._tool_index: dict[int, int] = {}
        self.usage: Usage | None = None
        self._raw_usage: dict[str, Any] = {}
        self.output_text: list[str] = []
        self.done = False

    @property
    def complete(self) -> bool:
        """The vendor's end marker (``message_stop``) arrived."""
        return self.done

    def _chunk(self, delta: dict[str, Any] | None, finish: str | None = None,
               usage: Usage | None = None) -> bytes:
        return chunk(self._rid, self._model, self._created, delta, finish, usage)

    def feed(self, event: str | None, data: bytes) -> list[bytes]:
        try:
            ev = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise UpstreamProtocolError("anthropic: malformed stream event",
                                        vendor=self._adapter.spec.id) from None
        kind = ev.get("type") if isinstance(ev, dict) else None
        if kind == "message_start":
            msg = ev.get("message") or {}
            self._rid = "chatcmpl-" + str(msg.get("id", ""))
            self._model = msg.get("model", self._model)
            if isinstance(msg.get("usage"), dict):
                self._raw_usage = dict(msg["usage"])
                self.usage = _usage(self._raw_usage)
            return [self._chunk({"role": "assistant", "content": ""})]
        if kind == "content_block_start":
            block = ev.get("content_block") or {}
            if block.get("type") == "tool_use":
                idx = self._tool_index.setdefault(ev.get("index", 0), len(self._tool_index))
                self.output_text.append(block.get("name", ""))
                return [self._chunk({"tool_calls": [{
                    "index": idx, "id": block.get("id"), "type": "function",
                    "function": {"name": block.get("name"), "arguments": ""}}]})]
            return []
        if kind == "content_block_delta":
            delta = ev.get("delta") or {}
            if delta.get("type") == "text_delta":
                self.output_text.append(delta.get("text", ""))
                return [self._chunk({"content": delta.get("text", "")})]
            if delta.get("type") == "input_json_delta":
                idx = self._tool_index.get(ev.get("index", 0), 0)
                part = delta.get("partial_json", "")
                self.output_text.append(part)
                return [self._chunk({"tool_calls": [{"index": idx,
                                                     "function": {"arguments": part}}]})]
            if delta.get("type") == "thinking_delta":
                self.output_text.append(delta.get("thinking", ""))
            return []
        if kind == "message_delta":
            if isinstance(ev.get("usage"), dict):
                # cumulative counts; fields it leaves out (or null) keep message_start's
                self._raw_usage.update((k, v) for k, v in ev["usage"].items()
                                       if v is not None)
                self.usage = _usage(self._raw_usage)
            reason = (ev.get("delta") or {}).get("stop_reason")
            return [self._chunk({}, _STOP.get(reason or "end_turn", "stop"))]
        if kind == "message_stop":
            self.done = True
            if self._include_usage and self.usage is not None:
                return [self._chunk(None, usage=self.usage)]
            return []
        if kind == "error":
            raise self._adapter.classify_error(200, data, {})
        return []


class AnthropicNativeStream(AnthropicStream):
    """Anthropic stream events passed on unchanged (each event's ``data``; its name is the
    payload's ``type``), read as AnthropicStream reads them for usage and ``message_stop``."""

    def feed(self, event: str | None, data: bytes) -> list[bytes]:
        super().feed(event, data)  # usage, the end marker; raises on an error event
        # one SSE data line per event (Anthropic's are already single-line JSON)
        return [data if b"\n" not in data else orjson.dumps(orjson.loads(data))]
