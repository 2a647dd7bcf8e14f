"""A Messages request passed through to Anthropic: the reply as Anthropic wrote it.

Only two things change on the way back, as on the translated path: ``model`` is the name
the client asked for (a route or ``vendor/model``; ``x-kanjia-model`` names the model that
answered), and ``usage`` carries kanjia's ``cost`` and ``cost_currency`` (added by the
gateway). Content blocks, thinking signatures, ids and stop reasons are the vendor's bytes.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from kanjia.ingress._common import stream_error, typed_events

__all__ = ["MessagesPassThrough", "dropped_message_fields", "native_message", "native_only_form",
           "native_request_body"]

#: block types the translator reads, by role (anything else is only Anthropic's)
_READ = {"user": frozenset({"text", "image", "tool_result", "thinking", "redacted_thinking",
                            "search_result"}),
         "assistant": frozenset({"text", "tool_use", "thinking", "redacted_thinking",
                                 "server_tool_use"})}


#: block types the translator reads inside a tool result
_IN_RESULT = frozenset({"text", "image", "search_result"})
#: image and document sources the translator reads
_IMAGE_SOURCES = frozenset({"base64", "url"})
_TEXT_SOURCES = frozenset({"text", "content"})


def _sent_speed(speed: Any) -> bool:
    """Is this ``speed`` sent to Anthropic? Only the one billed at the catalog's prices."""
    return speed is None or speed == "standard"


def dropped_message_fields(body: dict[str, Any]) -> list[str]:
    """The fields of the client's request that kanjia does not send on (named to the client
    in ``x-kanjia-dropped-fields``): ``speed`` other than ``standard``."""
    return [] if _sent_speed(body.get("speed")) else ["speed"]


def native_request_body(body: dict[str, Any]) -> dict[str, Any]:
    """What Anthropic is sent: the client's body, without a ``speed`` other than
    ``standard``: fast mode is billed at a premium the catalog has no price for, so the
    request runs (and is billed) at standard speed, Anthropic's ``usage.speed`` says so and
    ``x-kanjia-dropped-fields`` names it. Everything else goes as it came."""
    if _sent_speed(body.get("speed")):
        return body
    return {k: v for k, v in body.items() if k != "speed"}


def native_message(body: bytes, model: str) -> bytes:
    """The vendor's message with the client's model name."""
    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body
    if isinstance(obj, dict):
        obj["model"] = model
        return orjson.dumps(obj)
    return body


def native_only_form(body: dict[str, Any]) -> dict[str, Any]:
    """A stand-in for a request only Anthropic can take (``Untranslatable``), for what
    admission needs (the worst case to reserve, a prompt to count): each block only
    Anthropic reads becomes a text block of its JSON (at least as many tokens), MCP servers
    and a forced server tool go. The request itself is sent as the client wrote it."""
    out = dict(body)
    out.pop("mcp_servers", None)
    if out.get("max_tokens") == 0 and type(out["max_tokens"]) is int:
        out["max_tokens"] = 1  # cache warming: admission reserves for one token
    choice = out.get("tool_choice")
    if isinstance(choice, dict) and choice.get("type") == "tool":
        out.pop("tool_choice")
    messages = out.get("messages")
    if isinstance(messages, list):
        out["messages"] = [_readable(m) for m in messages]
    return out


def _readable(message: Any) -> Any:
    if not isinstance(message, dict) or not isinstance(message.get("content"), list):
        return message
    role = message.get("role")
    read = _READ.get(role, frozenset()) if isinstance(role, str) else frozenset()
    return {**message, "content": [_readable_block(b, read) for b in message["content"]]}


def _source_type(block: dict[str, Any]) -> Any:
    source = block.get("source")
    return source.get("type") if isinstance(source, dict) else None


def _readable_block(block: Any, read: frozenset[str]) -> Any:
    """``block`` if the translator reads it, else a text block of its JSON."""
    kind = block.get("type") if isinstance(block, dict) else None
    if not isinstance(kind, str):
        return block
    if kind == "tool_result" and isinstance(block.get("content"), list):
        return {**block, "content": [_readable_block(b, _IN_RESULT)
                                     for b in block["content"]]}
    if kind == "image" and _source_type(block) not in _IMAGE_SOURCES:
        kind = ""  # an image by file_id
    if (kind == "document" and _source_type(block) in _TEXT_SOURCES) \
            or kind in read or kind.endswith("_tool_result"):
        return block
    return {"type": "text", "text": orjson.dumps(block).decode()}


def _event(name: str, payload: bytes) -> bytes:
    return b"event: %s\ndata: %s\n\n" % (name.encode(), payload)


#: the head of an event passed on as it is (not ``message_start``, whose model is the
#: client's name, nor ``message_stop``, held back), as Anthropic writes it: not parsed
#: again (the gateway has checked each payload is a typed JSON object)
_PLAIN_EVENT = re.compile(
    rb'\{"type":"(content_block_(?:delta|start|stop)|ping|message_delta)"[,}]')


class MessagesPassThrough:
    """Relays Anthropic's own stream events (the gateway hands on each event's ``data``;
    its event name is the payload's ``type``). ``message_stop`` is held back until
    ``finish``: the call is recorded before the client's last frame. A failure becomes an
    Anthropic ``error`` event and no ``message_stop``."""

    __slots__ = ("_model", "_stop", "failed")

    def __init__(self, model: str) -> None:
        self._model = model
        self._stop: bytes | None = None
        self.failed = False

    def start(self) -> bytes:
        return b""

    def feed(self, payloads: list[bytes]) -> bytes:
        out: list[bytes] = []
        for payload in payloads:
            if self.failed:
                break
            head = _PLAIN_EVENT.match(payload)
            if head is not None:  # a delta, most of a stream: passed on as it is
                out.append(b"event: %s\ndata: %s\n\n" % (head[1], payload))
                continue
            out.extend(self._typed((payload,)))
        return b"".join(out)

    def _typed(self, payloads: tuple[bytes]) -> list[bytes]:
        out: list[bytes] = []
        for payload, body, kind in typed_events(payloads):
            if kind is None:
                if "error" in body:  # the gateway's own error frame (a broken stream)
                    message, _, err = stream_error(body)
                    out.append(self.fail(message, err))
                continue
            if kind == "message_start":
                payload = self._renamed(body, payload)
            elif kind == "message_stop":
                self._stop = _event(kind, payload)
                continue
            out.append(_event(kind, payload))
        return out

    def _renamed(self, body: dict[str, Any], payload: bytes) -> bytes:
        message = body.get("message")
        if not isinstance(message, dict):
            return payload
        message["model"] = self._model
        return orjson.dumps(body)

    def finish(self) -> bytes:
        """The held ``message_stop`` (the gateway calls this only after the vendor's)."""
        if self.failed:
            return b""
        return self._stop or _event("message_stop", b'{"type":"message_stop"}')

    def fail(self, message: str, kind: str = "api_error") -> bytes:
        if self.failed:
            return b""
        self.failed = True
        return _event("error", orjson.dumps({"type": "error",
                                             "error": {"type": kind, "message": message}}))
