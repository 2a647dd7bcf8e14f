"""Registers the Anthropic Messages and OpenAI Responses APIs on the app: one call from
``KanjiaApp``, so the routes of these APIs live beside their handlers."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kanjia.server import _messages_http as m
from kanjia.server import _responses_http as r

if TYPE_CHECKING:
    from kanjia.server.app import KanjiaApp

__all__ = ["register"]


def register(app: KanjiaApp) -> None:
    app.routes.update({
        ("POST", "/v1/messages"): m.messages,
        ("POST", "/v1/messages/count_tokens"): m.count_tokens,
        ("HEAD", "/"): m.head_ok,
        ("HEAD", "/v1"): m.head_ok,
        ("POST", "/v1/responses"): r.responses,
    })
    app.mount("/v1/responses/", r.response_item)
    app.mount("/v1/messages", m.unknown)  # anything else there: an Anthropic-shaped 404
