"""Per-request directives written into the last user message.

``[[sandbox:fault=rate_limit]]``, ``[[sandbox:latency_ms=200]]``,
``[[sandbox:chunk_ms=20]]``, ``[[sandbox:tokens=100]]``, ``[[sandbox:cached=64]]``,
``[[sandbox:no_usage]]`` and ``[[sandbox:tool]]`` steer one request only, so tests
running in parallel never interfere. A message without ``[[sandbox:`` costs one
substring test.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from kanjia.sandbox._faults import FAULTS

__all__ = ["NO_DIRECTIVES", "Directives", "parse_directives"]

_MARK = "[[sandbox:"
_PATTERN = re.compile(r"\[\[sandbox:([a-z_]+)(?:=([^\]]*))?\]\]")
_INT_FIELDS = frozenset({"latency_ms", "chunk_ms", "tokens", "cached"})
_FLAG_FIELDS = frozenset({"no_usage", "tool"})


@dataclass(frozen=True, slots=True)
class Directives:
    fault: str | None = None
    latency_ms: int | None = None
    chunk_ms: int | None = None
    tokens: int | None = None
    cached: int | None = None
    no_usage: bool = False
    tool: bool = False


NO_DIRECTIVES = Directives()


def parse_directives(text: str) -> Directives:
    """The directives in ``text``; unknown names, unknown faults and bad numbers
    are ignored."""
    if _MARK not in text:
        return NO_DIRECTIVES
    values: dict[str, str | int | bool] = {}
    for name, raw in _PATTERN.findall(text):
        if name == "fault" and raw.strip() in FAULTS:
            values["fault"] = raw.strip()
        elif name in _INT_FIELDS and raw.strip().isdigit():
            values[name] = int(raw)
        elif name in _FLAG_FIELDS:
            values[name] = True
    return Directives(**values)  # type: ignore[arg-type]
