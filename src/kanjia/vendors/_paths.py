"""Client-chosen values that go into an upstream URL path, escaped as one segment."""

from __future__ import annotations

from urllib.parse import quote

from kanjia.errors import BadRequest

__all__ = ["path_segment"]


def path_segment(value: str, *, forbid: str = "") -> str:
    """``value`` percent-escaped as a single path segment: ``/``, ``?``, ``#``, ``%``,
    spaces and every other reserved or non-ASCII character escaped, so it can neither
    leave its segment nor add a query or fragment. ``.``/``..`` (which HTTP clients
    resolve as dot segments) and any character of ``forbid`` are refused with a 400."""
    if value in ("", ".", "..") or any(c in value for c in forbid):
        raise BadRequest(f"model {value!r} cannot be used in this vendor's URL")
    return quote(value, safe="")
