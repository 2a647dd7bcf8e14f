"""Translating adapter for Google Gemini generateContent / streamGenerateContent."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import orjson

from kanjia.catalog import Usage
from kanjia.errors import BadRequest, ContentFiltered, KanjiaError, UpstreamProtocolError
from kanjia.vendors._errors import make_error
from kanjia.vendors._messages import data_url, image_url_of, json_args, system_text, text_of
from kanjia.vendors._openai_format import chunk, completion
from kanjia.vendors._paths import path_segment
from kanjia.vendors._spec import VendorSpec
from kanjia.vendors.base import ChatResult, Deployment, UpstreamRequest
from kanjia.vendors.sse import SSEParser

__all__ = ["GeminiAdapter"]

_FINISH = {"STOP": "stop", "MAX_TOKENS": "length", "SAFETY": "content_filter",
           "RECITATION": "content_filter", "BLOCKLIST": "content_filter",
           "PROHIBITED_CONTENT": "content_filter", "SPII": "content_filter"}


def _parts(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str) or content is None:
        return [{"text": content or ""}]
    parts: list[dict[str, Any]] = []
    for p in content:
        if isinstance(p, dict) and p.get("type") == "text":
            parts.append({"text": p.get("text", "")})
        elif isinstance(p, dict) and p.get("type") == "image_url":
            url = image_url_of(p)
            split = data_url(url)
            if split:
                parts.append({"inlineData": {"mimeType": split[0], "data": split[1]}})
            else:
                parts.append({"fileData": {"fileUri": url}})
    return parts


def _contents(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    names: dict[str, str] = {}
    out: list[dict[str, Any]] = []
    for m in messages:
        role = m.get("role")
        if role in ("system", "developer"):
            continue
        if role == "assistant":
            parts: list[dict[str, Any]] = []
            text = text_of(m.get("content"))
            if text:
                parts.append({"text": text})
            for call in m.get("tool_calls") or ():
                fn = call.get("function") or {}
                names[call.get("id", "")] = fn.get("name", "")
                parts.append({"functionCall": {"name": fn.get("name", ""),
                                               "args": json_args(fn.get("arguments"))}})
            out.append({"role": "model", "parts": parts or [{"text": ""}]})
        elif role == "tool":
            name = names.get(m.get("tool_call_id", ""), m.get("name", "tool"))
            part = {"functionResponse": {"name": name,
                                         "response": {"content": text_of(m.get("content"))}}}
            if out and out[-1]["role"] == "user" and "functionResponse" in out[-1]["parts"][0]:
                out[-1]["parts"].append(part)
            else:
                out.append({"role": "user", "parts": [part]})
        elif role == "user":
            out.append({"role": "user", "parts": _parts(m.get("content"))})
        else:
            raise BadRequest(f"unsupported message role {role!r}")
    return out


def _tool_config(choice: Any) -> dict[str, Any] | None:
    if choice is None or choice == "auto":
        return None
    if choice == "required":
        return {"functionCallingConfig": {"mode": "ANY"}}
    if choice == "none":
        return {"functionCallingConfig": {"mode": "NONE"}}
    if isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name", "")
        return {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": [name]}}
    raise BadRequest("tool_choice must be 'auto', 'none', 'required' or a function")


def _usage(meta: Mapping[str, Any]) -> Usage | None:
    """Gemini ``usageMetadata``: ``promptTokenCount`` includes the cached content
    (``cachedContentTokenCount``, billed at the cache price); tool-use prompt tokens are
    input, thoughts are output. None when malformed (the caller then estimates)."""
    counts = {}
    for name in ("promptTokenCount", "toolUsePromptTokenCount", "cachedContentTokenCount",
                 "candidatesTokenCount", "thoughtsTokenCount"):
        value = meta.get(name)
        if value is None:
            value = 0
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            return None
        counts[name] = value
    prompt = counts["promptTokenCount"] + counts["toolUsePromptTokenCount"]
    thoughts = counts["thoughtsTokenCount"]
    return Usage(input_tokens=prompt, cached_tokens=min(counts["cachedContentTokenCount"], prompt),
                 cache_write_tokens=0, output_tokens=counts["candidatesTokenCount"] + thoughts,
                 reasoning_tokens=thoughts)


def _candidate(cand: Mapping[str, Any], call_base: int) -> tuple[str, list[dict[str, Any]]]:
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for part in (cand.get("content") or {}).get("parts") or ():
        if "text" in part and not part.get("thought"):
            texts.append(part["text"])
        elif "functionCall" in part:
            fc = part["functionCall"]
            calls.append({"id": f"call_{call_base + len(calls)}", "type": "function",
                          "function": {"name": fc.get("name", ""),
                                       "arguments": orjson.dumps(fc.get("args") or {}).decode()}})
    return "".join(texts), calls


def _segment(model: str) -> str:
    """The model as one escaped URL segment; ``:`` is refused (it starts the action)."""
    return path_segment(model, forbid=":")


class GeminiAdapter:
    def __init__(self, spec: VendorSpec) -> None:
        self.spec = spec

    def _headers(self, dep: Deployment) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if dep.api_key:
            headers["x-goog-api-key"] = dep.api_key
        return headers

    def chat_request(self, dep: Deployment, body: dict[str, Any], model: str,
                     stream: bool) -> UpstreamRequest:
        messages = body["messages"]
        out: dict[str, Any] = {"contents": _contents(messages)}
        system = system_text(messages)
        if system:
            out["systemInstruction"] = {"parts": [{"text": system}]}
        gen: dict[str, Any] = {}
        max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
        if max_tokens:
            gen["maxOutputTokens"] = max_tokens
        for src, dst in (("temperature", "temperature"), ("top_p", "topP"),
                         ("n", "candidateCount"), ("seed", "seed")):
            if body.get(src) is not None:
                gen[dst] = body[src]
        stop = body.get("stop")
        if stop:
            gen["stopSequences"] = [stop] if isinstance(stop, str) else list(stop)
        fmt = body.get("response_format") or {}
        if isinstance(fmt, dict) and fmt.get("type") in ("json_object", "json_schema"):
            gen["responseMimeType"] = "application/json"
        if gen:
            out["generationConfig"] = gen
        if body.get("tools"):
            out["tools"] = [{"functionDeclarations": [
                {"name": t["function"]["name"],
                 "description": t["function"].get("description", ""),
                 **({"parameters": t["function"]["parameters"]}
                    if t["function"].get("parameters") else {})}
                for t in body["tools"] if t.get("type") == "function"]}]
            config = _tool_config(body.get("tool_choice"))
            if config:
                out["toolConfig"] = config
        action = "streamGenerateContent?alt=sse" if stream else "generateContent"
        return UpstreamRequest(f"{dep.base_url}/v1beta/models/{_segment(model)}:{action}",
                               self._headers(dep), orjson.dumps(out))

    def _load(self, data: bytes) -> dict[str, Any]:
        try:
            body = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise UpstreamProtocolError("gemini: response is not valid JSON",
                                        vendor=self.spec.id) from None
        if isinstance(body, list):  # some proxies wrap stream-less replies in a list
            body = body[0] if body else {}
        if not isinstance(body, dict):
            raise UpstreamProtocolError("gemini: response is not an object", vendor=self.spec.id)
        if "error" in body:
            raise self.classify_error(200, data, {})
        return body

    def parse_chat(self, data: bytes, model: str) -> ChatResult:
        body = self._load(data)
        cands = body.get("candidates") or []
        block = (body.get("promptFeedback") or {}).get("blockReason")
        if not cands and block:
            raise ContentFiltered(f"gemini: prompt blocked ({block})", vendor=self.spec.id)
        choices = []
        texts = []
        for i, cand in enumerate(cands):
            text, calls = _candidate(cand, 0)
            texts.append(text)
            message: dict[str, Any] = {"role": "assistant", "content": text or None}
            finish = _FINISH.get(cand.get("finishReason", "STOP"), "stop")
            if calls:
                message["tool_calls"] = calls
                finish = "tool_calls"
            choices.append({"index": i, "message": message, "finish_reason": finish})
        meta = body.get("usageMetadata")
        usage = _usage(meta) if isinstance(meta, dict) else None
        rid = "chatcmpl-" + str(body.get("responseId") or "gemini")
        return ChatResult(completion(rid, body.get("modelVersion", model), choices, usage),
                          usage, "".join(texts))

    def stream_decoder(self) -> SSEParser:
        return SSEParser()

    def stream_translator(self, model: str, include_usage: bool) -> GeminiStream:
        return GeminiStream(self, model, include_usage)

    def embeddings_request(self, dep: Deployment, body: dict[str, Any],
                           model: str) -> UpstreamRequest:
        inputs = body.get("input")
        texts = [inputs] if isinstance(inputs, str) else list(inputs or [])
        if not texts or not all(isinstance(t, str) for t in texts):
            raise BadRequest("gemini embeddings need 'input' as a string or a list of strings")
        req: dict[str, Any] = {"requests": [
            {"model": f"models/{model}", "content": {"parts": [{"text": t}]},
             **({"outputDimensionality": body["dimensions"]} if body.get("dimensions") else {})}
            for t in texts]}
        return UpstreamRequest(
            f"{dep.base_url}/v1beta/models/{_segment(model)}:batchEmbedContents",
            self._headers(dep), orjson.dumps(req))

    def parse_embeddings(self, data: bytes, model: str) -> ChatResult:
        body = self._load(data)
        embs = body.get("embeddings")
        if embs is None and isinstance(body.get("embedding"), dict):
            embs = [body["embedding"]]
        if not isinstance(embs, list):
            raise UpstreamProtocolError("gemini: embeddings response has no embeddings",
                                        vendor=self.spec.id)
        out = {"object": "list", "model": model,
               "data": [{"object": "embedding", "index": i, "embedding": e.get("values", [])}
                        for i, e in enumerate(embs)]}
        return ChatResult(orjson.dumps(out), None)

    def classify_error(self, status: int, data: bytes,
                       headers: Mapping[str, str]) -> KanjiaError:
        return make_error(self.spec.id, self.spec.errors, status, data, headers)


class GeminiStream:
    """Gemini stream chunks (each a GenerateContentResponse) → OpenAI chunks."""

    def __init__(self, adapter: GeminiAdapter, model: str, include_usage: bool) -> None:
        self._adapter = adapter
        self._model = model
        self._include_usage = include_usage
        self._rid = "chatcmpl-gemini"
        self._created = int(time.time())
        self._started = False
        self._calls = 0
        self.usage: Usage | None = None
        self.output_text: list[str] = []
        self.done = False

    @property
    def complete(self) -> bool:
        """The vendor's end marker (a ``finishReason``) arrived."""
        return self.done

    def feed(self, event: str | None, data: bytes) -> list[bytes]:
        body = self._adapter._load(data)
        out: list[bytes] = []
        if not self._started:
            self._started = True
            self._rid = "chatcmpl-" + str(body.get("responseId") or "gemini")
            out.append(chunk(self._rid, self._model, self._created,
                             {"role": "assistant", "content": ""}))
        cands = body.get("candidates") or []
        block = (body.get("promptFeedback") or {}).get("blockReason")
        if not cands and block:
            raise ContentFiltered(f"gemini: prompt blocked ({block})", vendor="gemini")
        if isinstance(body.get("usageMetadata"), dict):
            self.usage = _usage(body["usageMetadata"])
        finish: str | None = None
        for cand in cands:
            text, calls = _candidate(cand, self._calls)
            if text:
                self.output_text.append(text)
                out.append(chunk(self._rid, self._model, self._created, {"content": text}))
            if calls:
                deltas = [{"index": self._calls + i, **c} for i, c in enumerate(calls)]
                self._calls += len(calls)
                self.output_text.extend(c["function"]["arguments"] for c in calls)
                out.append(chunk(self._rid, self._model, self._created, {"tool_calls": deltas}))
            if cand.get("finishReason"):
                finish = "tool_calls" if self._calls else \
                    _FINISH.get(cand["finishReason"], "stop")
        if finish is not None:
            self.done = True
            out.append(chunk(self._rid, self._model, self._created, {}, finish))
            if self._include_usage and self.usage is not None:
                out.append(chunk(self._rid, self._model, self._created, None, usage=self.usage))
        return out
