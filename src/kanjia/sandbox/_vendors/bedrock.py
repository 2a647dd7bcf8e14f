"""AWS Bedrock's Converse API: ``POST /bedrock/model/{modelId}/converse`` (JSON) and
``/converse-stream`` (AWS event-stream binary framing), SigV4-signed.

Errors are AWS's: the status, an ``x-amzn-ErrorType: <Exception>:<namespace>`` header
and a ``{"message": ...}`` body. A content-filter fault ends the reply with stopReason
``content_filtered`` (HTTP 200). Stream events carry AWS's ``p`` padding field.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import orjson
from aiohttp import web

from kanjia.sandbox._cache import cache_scope
from kanjia.sandbox._faults import ERROR_FAULTS
from kanjia.sandbox._plan import Choice, plan
from kanjia.sandbox._state import SandboxState
from kanjia.sandbox._tools import split_args
from kanjia.sandbox._vendors.bedrock_eventstream import event_frame, frame
from kanjia.sandbox._vendors.bedrock_request import (
    VENDOR,
    ConverseRequest,
    cache_usage,
    parse_converse,
)
from kanjia.sandbox._vendors.bedrock_sigv4 import check_sigv4
from kanjia.sandbox._wire import Handler, reply, stream

__all__ = ["BEDROCK_ERRORS", "add_bedrock_routes", "aws_error"]

_NAMESPACE = "http://internal.amazon.com/coral/com.amazon.bedrock/"
_STOP = {"stop": "end_turn", "stop_sequence": "stop_sequence", "length": "max_tokens",
         "tool": "tool_use", "filter": "content_filtered"}
_PADDING = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0"
_STREAM_HEADERS = {"Content-Type": "application/vnd.amazon.eventstream"}

#: fault -> (status, AWS exception, message)
BEDROCK_ERRORS: dict[str, tuple[int, str, str]] = {
    "rate_limit": (429, "ThrottlingException",
                   "Too many requests, please wait before trying again."),
    "server_error": (500, "InternalServerException",
                     "The server encountered an internal error while processing the request."),
    "overloaded": (503, "ServiceUnavailableException",
                   "Bedrock is unable to process your request."),
    "balance": (403, "AccessDeniedException",
                "Model access is denied due to INVALID_PAYMENT_INSTRUMENT:A valid payment "
                "instrument must be provided.. Your AWS Marketplace subscription for this model "
                "cannot be completed at this time. If you recently fixed this issue, try again "
                "after 15 minutes."),
    "auth": (403, "UnrecognizedClientException",
             "The security token included in the request is invalid."),
    "context_too_long": (400, "ValidationException", "Input is too long for requested model."),
}
_STATUS_OF = {"MissingAuthenticationTokenException": 403, "IncompleteSignatureException": 403,
              "UnrecognizedClientException": 403, "InvalidSignatureException": 403}


def aws_error(status: int, exception: str, message: str) -> web.Response:
    return web.Response(
        body=orjson.dumps({"message": message}), status=status, content_type="application/json",
        headers={"x-amzn-ErrorType": f"{exception}:{_NAMESPACE}",
                 "x-amzn-RequestId": "00000000-sandbox-0000-0000-000000000000"})


@dataclasses.dataclass(frozen=True, slots=True)
class ConverseRender:
    request: ConverseRequest
    choice: Choice
    tool_id: str
    cache: tuple[int, int] = (0, 0)

    def usage(self) -> dict[str, Any]:
        """``inputTokens`` leaves out the cache reads and writes, as Bedrock's does."""
        prompt, output = self.request.ask.prompt_tokens, self.choice.tokens
        read, written = self.cache
        return {"inputTokens": prompt - read - written, "outputTokens": output,
                "totalTokens": prompt + output, "cacheReadInputTokens": read,
                "cacheWriteInputTokens": written}

    def body(self) -> bytes:
        choice = self.choice
        content: list[dict[str, Any]]
        if choice.tool is not None:
            content = [{"toolUse": {"toolUseId": self.tool_id, "name": choice.tool.name,
                                    "input": choice.tool.args}}]
        else:
            content = [{"text": choice.text}]
        out: dict[str, Any] = {"output": {"message": {"role": "assistant", "content": content}},
                               "stopReason": _STOP[choice.finish],
                               "metrics": {"latencyMs": 120}}
        if not self.request.directives.no_usage:
            out["usage"] = self.usage()
        return orjson.dumps(out)

    def frames(self) -> list[bytes]:
        choice = self.choice

        def event(kind: str, payload: dict[str, Any]) -> bytes:
            return event_frame(kind, orjson.dumps({**payload, "p": _PADDING[:7]}))

        frames = [event("messageStart", {"role": "assistant"})]
        if choice.tool is not None:
            frames.append(event("contentBlockStart", {"contentBlockIndex": 0, "start": {
                "toolUse": {"toolUseId": self.tool_id, "name": choice.tool.name}}}))
            frames += [event("contentBlockDelta", {"contentBlockIndex": 0,
                                                   "delta": {"toolUse": {"input": part}}})
                       for part in split_args(choice.tool.args_json)]
        else:
            frames += [event("contentBlockDelta", {"contentBlockIndex": 0,
                                                   "delta": {"text": piece}})
                       for piece in choice.pieces]
        frames.append(event("contentBlockStop", {"contentBlockIndex": 0}))
        frames.append(event("messageStop", {"stopReason": _STOP[choice.finish]}))
        metadata: dict[str, Any] = {"metrics": {"latencyMs": 120}}
        if not self.request.directives.no_usage:
            metadata["usage"] = self.usage()
        frames.append(event("metadata", metadata))
        return frames


#: a frame whose message CRC is wrong (the ``malformed`` fault)
_BROKEN = frame({":event-type": "contentBlockDelta", ":message-type": "event"},
                b'{"contentBlockIndex":0,"delta":{"text":"trunc"}}')[:-4] + b"\0\0\0\0"


def _converse_handler(state: SandboxState, streamed: bool) -> Handler:
    async def converse(request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        refused = check_sigv4(request, raw, "bedrock")
        model = request.match_info["model"]
        if refused is not None:
            state.stats.count(VENDOR, model, None)
            return aws_error(_STATUS_OF[refused[0]], *refused)
        try:
            req = parse_converse(model, orjson.loads(raw))
        except (orjson.JSONDecodeError, ValueError) as exc:
            return aws_error(400, "ValidationException", str(exc))
        fault = state.admit(VENDOR, model, req.directives)
        ask = req.ask
        if fault in ERROR_FAULTS:
            if fault != "content_filter":
                return aws_error(*BEDROCK_ERRORS[fault])  # AWS sends no Retry-After
            ask = dataclasses.replace(ask, filtered=True)
        choice = plan(ask)[0]
        read, written = cache_usage(state, req, cache_scope(request, VENDOR, req.model))
        state.usage.record(VENDOR, "completions", model, ask.prompt_tokens, read, written,
                           choice.tokens)
        render = ConverseRender(req, choice, state.response_id("tooluse_"), (read, written))
        timing = state.timing(req.directives, fault, streamed)
        if streamed:
            return await stream(request, state, render.frames(), timing, fault, _BROKEN,
                                headers=_STREAM_HEADERS)
        return await reply(request, state, render.body(), timing, choice.tokens, fault)

    return converse


def add_bedrock_routes(router: web.UrlDispatcher, state: SandboxState) -> None:
    router.add_post("/bedrock/model/{model}/converse", _converse_handler(state, False))
    router.add_post("/bedrock/model/{model}/converse-stream", _converse_handler(state, True))
