"""Helpers to read OpenAI chat messages when translating them for other formats."""

from __future__ import annotations

from typing import Any

import orjson

from kanjia.errors import BadRequest

__all__ = ["data_url", "image_url_of", "json_args", "system_text", "text_of"]


def text_of(content: Any) -> str:
    """The text of an OpenAI message content (a string or a list of parts)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p["text"] for p in content if isinstance(p, dict)
                       and p.get("type") == "text" and isinstance(p.get("text"), str))
    raise BadRequest("message content must be a string or a list of content parts")


def system_text(messages: list[dict[str, Any]]) -> str:
    return "\n\n".join(text_of(m.get("content")) for m in messages
                       if m.get("role") in ("system", "developer"))


def json_args(raw: Any) -> Any:
    """Tool-call arguments arrive as a JSON string; vendors want an object."""
    if isinstance(raw, dict):
        return raw
    if not raw:
        return {}
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise BadRequest("tool_calls[].function.arguments must be a JSON object") from None


def image_url_of(part: dict[str, Any]) -> str:
    """The URL of an ``image_url`` part: ``{"image_url": {"url": ...}}`` or a bare string."""
    image = part.get("image_url")
    url = image.get("url") if isinstance(image, dict) else image
    if not isinstance(url, str):
        raise BadRequest("an image_url part needs 'image_url': {'url': '...'}")
    return url


def data_url(url: str) -> tuple[str, str] | None:
    """Split ``data:image/png;base64,XXXX`` into (media type, data)."""
    if not url.startswith("data:") or ";base64," not in url:
        return None
    head, data = url[5:].split(";base64,", 1)
    return head, data
