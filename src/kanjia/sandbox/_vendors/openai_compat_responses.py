"""OpenAI's Responses API (``POST /openai/responses``), as OpenAI serves it.

The request is read into the chat form the sandbox already plans from (its own reading,
independent of the gateway's): ``instructions`` and ``input`` items become messages
(``function_call`` an assistant tool call, ``function_call_output`` a tool message,
reasoning items their summary), function tools become chat tools; hosted tools
(``web_search`` ...) are accepted and not run. The answer is a ``response`` object, or the
typed event stream (``response.created`` ... ``response.completed``, each with its
``sequence_number``), with Responses usage (``input_tokens``,
``input_tokens_details.cached_tokens``, ``output_tokens``,
``output_tokens_details.reasoning_tokens``).

As OpenAI with ``store: false`` keeps nothing, this sandbox stores no response: a
``previous_response_id`` is a 400 ``previous_response_not_found``, and a reasoning item
sent back without its ``encrypted_content`` is a 404 (OpenAI could only look it up).
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from aiohttp import web

from kanjia.sandbox._cache import cache_scope
from kanjia.sandbox._faults import ERROR_FAULTS
from kanjia.sandbox._plan import Choice, plan
from kanjia.sandbox._sse import sse_event
from kanjia.sandbox._state import SandboxState
from kanjia.sandbox._tools import split_args
from kanjia.sandbox._vendors.openai_compat import bearer_ok
from kanjia.sandbox._vendors.openai_compat_request import ChatRequest, parse_chat
from kanjia.sandbox._vendors.openai_compat_vendors import OpenAIVendor
from kanjia.sandbox._wire import Handler, bad_json, json_response, read_json, reply, stream

__all__ = ["responses_handler"]

BROKEN_EVENT = (b'event: response.output_text.delta\ndata: {"type":"response.output_text.'
                b'delta","delta":"trunc\n\n')
_ECHO = ("instructions", "max_output_tokens", "metadata", "parallel_tool_calls",
         "previous_response_id", "reasoning", "temperature", "text", "tool_choice", "tools",
         "top_p", "user")
_DEFAULTS: dict[str, Any] = {"metadata": {}, "parallel_tool_calls": True,
                             "reasoning": {"effort": None, "summary": None},
                             "temperature": 1.0, "text": {"format": {"type": "text"}},
                             "tool_choice": "auto", "tools": [], "top_p": 1.0}


#: a custom (freeform) tool planned as a function of one string (its ``input``)
_CUSTOM = {"type": "object", "properties": {"input": {"type": "string"}}, "required": ["input"]}


class _Refused(Exception):
    def __init__(self, status: int, message: str, code: str | None, param: str | None) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.param = status, message, code, param

    def response(self) -> web.Response:
        return json_response({"error": {"message": self.message, "type":
                                        "invalid_request_error", "param": self.param,
                                        "code": self.code}}, status=self.status)


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    parts = content if isinstance(content, list) else []
    return "\n".join(p["text"] for p in parts
                     if isinstance(p, dict) and isinstance(p.get("text"), str))


def _messages(data: dict[str, Any]) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    if isinstance(data.get("instructions"), str):
        messages.append({"role": "system", "content": data["instructions"]})
    raw = data.get("input")
    if isinstance(raw, str):
        return [*messages, {"role": "user", "content": raw}]
    if not isinstance(raw, list) or not raw:
        raise _Refused(400, "Missing required parameter: 'input'.", "missing_required_parameter",
                       "input")
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            raise _Refused(400, f"Invalid type for 'input[{i}]'.", "invalid_type", f"input[{i}]")
        kind = item.get("type", "message")
        if kind == "message":
            role = item.get("role") if item.get("role") in ("user", "assistant", "system",
                                                            "developer") else "user"
            messages.append({"role": "system" if role == "developer" else role,
                             "content": _text(item.get("content"))})
        elif kind == "function_call":
            messages.append({"role": "assistant", "content": None, "tool_calls": [
                {"id": item.get("call_id"), "type": "function",
                 "function": {"name": item.get("name"), "arguments": item.get("arguments")}}]})
        elif kind == "custom_tool_call":
            args = orjson.dumps({"input": item.get("input")}).decode()
            messages.append({"role": "assistant", "content": None, "tool_calls": [
                {"id": item.get("call_id"), "type": "function",
                 "function": {"name": item.get("name"), "arguments": args}}]})
        elif kind in ("function_call_output", "custom_tool_call_output"):
            messages.append({"role": "tool", "tool_call_id": item.get("call_id"),
                             "content": _text(item.get("output"))})
        elif kind == "reasoning":
            if not item.get("encrypted_content"):
                raise _Refused(404, f"Item with id '{item.get('id')}' not found. Items are not "
                               "persisted when `store` is set to false. Try again with `store` "
                               "set to true, or remove this item from your input.", None,
                               "input")
            summary = "".join(s.get("text", "") for s in item.get("summary") or ()
                              if isinstance(s, dict))
            messages.append({"role": "assistant", "content": summary,
                             "reasoning_content": str(item["encrypted_content"])})
        # other items (hosted tool calls, item references): context the sandbox ignores
    return messages


def _chat_form(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise _Refused(400, "request body must be a JSON object", None, None)
    if data.get("previous_response_id"):
        raise _Refused(400, f"Previous response with id '{data['previous_response_id']}' not "
                       "found.", "previous_response_not_found", "previous_response_id")
    chat: dict[str, Any] = {"model": data.get("model"), "messages": _messages(data)}
    tools = [{"type": "function", "function": {"name": t.get("name"), "parameters":
                                               t.get("parameters") or {}
                                               if t["type"] == "function" else _CUSTOM}}
             for t in data.get("tools") or () if isinstance(t, dict)
             and t.get("type") in ("function", "custom")]
    if tools:
        chat["tools"] = tools
        choice = data.get("tool_choice")
        if isinstance(choice, dict) and choice.get("type") in ("function", "custom"):
            chat["tool_choice"] = {"type": "function", "function": {"name": choice.get("name")}}
        elif isinstance(choice, str):
            chat["tool_choice"] = choice
    if data.get("max_output_tokens") is not None:
        chat["max_completion_tokens"] = data["max_output_tokens"]
    fmt = (data.get("text") or {}).get("format") if isinstance(data.get("text"), dict) else None
    if isinstance(fmt, dict) and fmt.get("type") in ("json_object", "json_schema"):
        chat["response_format"] = {"type": fmt["type"]}
    return chat


class _Render:
    """One response object and its event stream."""

    def __init__(self, state: SandboxState, data: dict[str, Any], req: ChatRequest,
                 choice: Choice, cached: int) -> None:
        self.rid = state.response_id("resp_")
        self.req, self.choice, self.cached = req, choice, cached
        self.encrypted = "reasoning.encrypted_content" in (data.get("include") or ())
        self.custom = {t.get("name") for t in data.get("tools") or ()
                       if isinstance(t, dict) and t.get("type") == "custom"}
        self.base: dict[str, Any] = {
            "id": self.rid, "object": "response", "created_at": int(time.time()),
            "status": "in_progress", "background": False, "error": None,
            "incomplete_details": None, "model": req.model, "output": [],
            "store": data.get("store", True) is not False, "truncation": "disabled",
            "usage": None,
            **{k: data.get(k, _DEFAULTS.get(k)) for k in _ECHO}}
        self.seq = 0

    def items(self) -> list[dict[str, Any]]:
        c, out = self.choice, []
        if c.reasoning:
            item: dict[str, Any] = {"id": f"rs_{self.rid[5:]}", "type": "reasoning",
                                    "summary": []}
            if self.encrypted:
                item["encrypted_content"] = "gAAAA" + "".join(c.reasoning).encode().hex()[:64]
            out.append(item)
        if c.tool is not None and c.tool.name in self.custom:
            out.append({"id": f"ctc_{self.rid[5:]}", "type": "custom_tool_call",
                        "status": "completed", "call_id": f"call_{self.rid[-12:]}",
                        "name": c.tool.name, "input": str(c.tool.args.get("input", ""))})
        elif c.tool is not None:
            out.append({"id": f"fc_{self.rid[5:]}", "type": "function_call",
                        "status": "completed", "arguments": c.tool.args_json,
                        "call_id": f"call_{self.rid[-12:]}", "name": c.tool.name})
        else:
            out.append({"id": f"msg_{self.rid[5:]}", "type": "message", "status": "completed",
                        "role": "assistant", "content": [{
                            "type": "output_text", "text": c.text, "annotations": [],
                            "logprobs": []}]})
        return out

    def final(self) -> dict[str, Any]:
        done = dict(self.base)
        done["output"] = self.items()
        if self.choice.finish == "length":
            done["status"] = "incomplete"
            done["incomplete_details"] = {"reason": "max_output_tokens"}
        elif self.choice.finish == "filter":
            done["status"] = "incomplete"
            done["incomplete_details"] = {"reason": "content_filter"}
        else:
            done["status"] = "completed"
        if not self.req.directives.no_usage:
            prompt, out = self.req.ask.prompt_tokens, self.choice.tokens
            done["usage"] = {"input_tokens": prompt,
                             "input_tokens_details": {"cached_tokens": self.cached},
                             "output_tokens": out,
                             "output_tokens_details": {
                                 "reasoning_tokens": self.choice.reasoning_tokens},
                             "total_tokens": prompt + out}
        return done

    def _ev(self, kind: str, **data: Any) -> bytes:
        frame = sse_event(kind, {"type": kind, "sequence_number": self.seq, **data})
        self.seq += 1
        return frame

    def frames(self) -> list[bytes]:
        final = self.final()
        frames = [self._ev("response.created", response=self.base),
                  self._ev("response.in_progress", response=self.base)]
        for index, item in enumerate(final["output"]):
            frames += self._item_frames(index, item)
        return [*frames, self._ev(f"response.{final['status']}", response=final)]

    def _item_frames(self, index: int, item: dict[str, Any]) -> list[bytes]:
        ids = {"item_id": item["id"], "output_index": index}
        if item["type"] == "message":
            opened = {**item, "status": "in_progress", "content": []}
            part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
            out = [self._ev("response.output_item.added", output_index=index, item=opened),
                   self._ev("response.content_part.added", content_index=0, part=part, **ids)]
            out += [self._ev("response.output_text.delta", content_index=0, delta=p,
                             logprobs=[], **ids) for p in self.choice.pieces]
            text = item["content"][0]["text"]
            out += [self._ev("response.output_text.done", content_index=0, text=text,
                             logprobs=[], **ids),
                    self._ev("response.content_part.done", content_index=0,
                             part=item["content"][0], **ids)]
        elif item["type"] == "function_call":
            opened = {**item, "status": "in_progress", "arguments": ""}
            out = [self._ev("response.output_item.added", output_index=index, item=opened)]
            out += [self._ev("response.function_call_arguments.delta", delta=p, **ids)
                    for p in split_args(item["arguments"])]
            out.append(self._ev("response.function_call_arguments.done",
                                arguments=item["arguments"], **ids))
        elif item["type"] == "custom_tool_call":
            opened = {**item, "input": ""}
            out = [self._ev("response.output_item.added", output_index=index, item=opened)]
            out += [self._ev("response.custom_tool_call_input.delta", delta=p, **ids)
                    for p in split_args(item["input"])]
            out.append(self._ev("response.custom_tool_call_input.done", input=item["input"],
                                **ids))
        else:
            out = [self._ev("response.output_item.added", output_index=index, item=item)]
        return [*out, self._ev("response.output_item.done", output_index=index, item=item)]


def responses_handler(state: SandboxState, vendor: OpenAIVendor) -> Handler:
    retry_after = state.settings.retry_after_s

    async def responses(request: web.Request) -> web.StreamResponse:
        try:
            data = await read_json(request)
            req = parse_chat(_chat_form(data), vendor)
        except _Refused as exc:
            return exc.response()
        except ValueError as exc:
            return bad_json(str(exc))
        if vendor.needs_key and not bearer_ok(request, vendor):
            state.stats.count(vendor.id, req.model, None)
            return vendor.errors["auth"].response(retry_after)
        fault = state.admit(vendor.id, req.model, req.directives)
        if fault in ERROR_FAULTS:
            return vendor.errors[fault].response(retry_after)
        cached = state.cached_tokens(cache_scope(request, vendor.id, req.model),
                                     vendor.cache_for(req.model), req.segments,
                                     req.directives, req.ask.prompt_tokens)
        choice = plan(req.ask)[0]
        state.usage.record(vendor.id, "completions", req.model, req.ask.prompt_tokens, cached,
                           0, choice.tokens)
        render = _Render(state, data, req, choice, cached)
        timing = state.timing(req.directives, fault, data.get("stream") is True)
        if data.get("stream") is True:
            return await stream(request, state, render.frames(), timing, fault, BROKEN_EVENT)
        return await reply(request, state, orjson.dumps(render.final()), timing,
                           choice.tokens, fault)

    return responses
