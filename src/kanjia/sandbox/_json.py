"""Defensive readers for untrusted, already-parsed JSON values."""

from __future__ import annotations

from typing import Any

__all__ = ["as_dict", "as_list", "int_or_none"]


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
