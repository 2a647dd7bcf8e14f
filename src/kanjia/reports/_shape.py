"""JSON pieces shared by the savings and re-pricing reports."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any

from kanjia.reports._amounts import Amounts, money
from kanjia.reports._replay import Line, Replay

__all__ = ["counts", "diff", "notes", "ordered", "window"]


def window(since: date | None, until: date | None) -> dict[str, str | None]:
    return {"since": since.isoformat() if since else None,
            "until": until.isoformat() if until else None}


def counts(line: Line) -> dict[str, Any]:
    return {"requests": line.requests, "tokens": line.input_tokens + line.output_tokens,
            "input_tokens": line.input_tokens, "cached_tokens": line.cached_tokens,
            "output_tokens": line.output_tokens}


def diff(new: Amounts, old: Amounts, currency: str, *,
         share_of: Amounts | None = None) -> dict[str, Any]:
    """``new - old`` as money, with its ``share`` of ``share_of`` (default ``old``; None
    when that is zero)."""
    delta = new.minus(old)
    base = (old if share_of is None else share_of).get(currency)
    share = float(delta.get(currency) / base) if base else None
    return {**money(delta, currency), "share": None if share is None else round(share, 6)}


def ordered(lines: Iterable[Line], by: str, currency: str) -> list[Line]:
    if by == "day":
        return sorted(lines, key=lambda x: x.label)
    return sorted(lines, key=lambda x: (-x.actual.get(currency), x.label))


def notes(result: Replay, shifted_what: str) -> list[str]:
    """Plain sentences about requests kept at the ledger's cost or priced at another time."""
    out: list[str] = []
    for src, stat in sorted(result.sources.items()):
        for reason, n in sorted(stat.kept.items()):
            out.append(f"{n} request(s) of {src} kept at the ledger's cost: {reason}")
        for target, n in sorted(stat.shifted.items()):
            out.append(f"{n} request(s) of {src}: {target} had no price at their time; "
                       f"{shifted_what}")
    return out
