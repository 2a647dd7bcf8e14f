"""Server-sent-event frames, including a template for the hot per-token frame."""

from __future__ import annotations

from typing import Any

import orjson

__all__ = ["SENTINEL", "FrameTemplate", "sse_data", "sse_event"]

#: placeholder for the per-token value inside a frame template
SENTINEL = "\x00sandbox-piece\x00"
_SENTINEL_JSON = orjson.dumps(SENTINEL)


def sse_data(obj: Any, end: bytes = b"\n\n") -> bytes:
    return b"data: " + orjson.dumps(obj) + end


def sse_event(name: str, obj: Any) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(obj) + b"\n\n"


class FrameTemplate:
    """A frame whose only varying part is one string: serialise the skeleton
    once (with ``SENTINEL`` where the string goes), then each frame costs one
    small ``orjson.dumps`` and two concatenations."""

    __slots__ = ("_prefix", "_suffix")

    def __init__(self, skeleton: Any, head: bytes = b"data: ", end: bytes = b"\n\n") -> None:
        prefix, suffix = orjson.dumps(skeleton).split(_SENTINEL_JSON, 1)
        self._prefix = head + prefix
        self._suffix = suffix + end

    def frame(self, value: str) -> bytes:
        return self._prefix + orjson.dumps(value) + self._suffix

    def frames(self, values: list[str]) -> list[bytes]:
        prefix, suffix, dumps = self._prefix, self._suffix, orjson.dumps
        return [prefix + dumps(v) + suffix for v in values]
