"""A vendor's error answer, precomputed once as bytes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

__all__ = ["ErrorReply", "error_reply"]


@dataclass(frozen=True, slots=True)
class ErrorReply:
    """Status, body and whether a ``Retry-After`` header goes with it."""

    status: int
    body: bytes
    retry_after: bool = False
    content_type: str = "application/json"

    def response(self, retry_after_s: int) -> web.Response:
        headers = {"Retry-After": str(retry_after_s)} if self.retry_after else None
        return web.Response(
            body=self.body, status=self.status, content_type=self.content_type, headers=headers
        )

    @property
    def json(self) -> Any:
        return orjson.loads(self.body)


def error_reply(status: int, body: Any, retry: bool | None = None) -> ErrorReply:
    """An ``ErrorReply``; 429s carry ``Retry-After`` unless ``retry`` is False
    (balance errors that happen to use 429 should not invite a retry)."""
    raw = body.encode() if isinstance(body, str) else orjson.dumps(body)
    content_type = "text/plain" if isinstance(body, str) else "application/json"
    return ErrorReply(status, raw, status == 429 if retry is None else retry, content_type)
