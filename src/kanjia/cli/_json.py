"""JSON output of the CLI: money (``Decimal``) as exact JSON numbers in plain notation.

``json`` cannot write a ``Decimal``; ``str(Decimal)`` gives ``"0E-8"`` (a string, and in
exponent form) and ``float`` rounds. Here each ``Decimal`` becomes its fixed-point text
(``0.00000001``, ``0``) written as a number, digit for digit."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

__all__ = ["dumps", "plain"]

_MARK = "\x00kanjia-decimal:"
_PLACED = re.compile(r'"\\u0000kanjia-decimal:(-?[0-9]+(?:\.[0-9]+)?)"')


def plain(amount: Decimal) -> str:
    """``amount`` in fixed-point notation without trailing zeros: 0E-8 → "0"."""
    if not amount:
        return "0"
    text = format(amount.normalize(), "f")
    return text


def _marked(obj: Any) -> Any:
    if isinstance(obj, Decimal):
        return _MARK + plain(obj) if obj.is_finite() else None
    if isinstance(obj, dict):
        return {k: _marked(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_marked(v) for v in obj]
    return obj


def dumps(obj: Any, **kwargs: Any) -> str:
    """``json.dumps(obj, **kwargs)`` with every ``Decimal`` an exact, plain JSON number."""
    return _PLACED.sub(r"\1", json.dumps(_marked(obj), **kwargs))
