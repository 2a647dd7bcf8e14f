"""Why no candidate of a route could serve a request, closest misses first.

Each exclusion reason (the planner's, admission's) is ranked by how near its candidate
came to serving: a candidate that fits but is past the route's ``max_candidates`` is
nearest, then a request parameter in the way (an output limit, ``n``, a price cap) is
nearer than a context window (the largest window first), which is nearer than a missing
price or an unknown window, a quality tier (the highest first), a missing capability,
and last what the configuration rules out (the key, vendor, region, licence). Identical
reasons are told once with the candidates they cover."""

from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = ["closeness", "closest_misses", "farthest"]

#: (pattern on the reason, rank): lower is nearer to serving
_RANKS: tuple[tuple[re.Pattern[str], int], ...] = tuple(
    (re.compile(p), r) for p, r in (
        (r"past max_candidates", -1),
        (r"output limit|does not support 'n'|max_price|blended .*/1M", 0),
        (r"^context \d+ < \d+", 1),
        (r"no price in force|context window unknown", 2),
        (r"^unrated|^quality tier", 3),
        (r"^lacks |embeddings model", 4),
    ))
_NUMBER = re.compile(r"\d+")
#: configuration-level exclusions (key, vendor, region, licence, catalog)
_LAST = 5


def closeness(reason: str) -> tuple[int, int]:
    """(rank, -size): the rank of ``reason``, then the larger window or tier first."""
    for pattern, rank in _RANKS:
        if pattern.search(reason):
            if rank in (1, 3):
                nums = _NUMBER.findall(reason)
                return rank, -int(nums[0]) if nums else 0
            return rank, 0
    return _LAST, 0


def closest_misses(misses: Sequence[tuple[str, str]], limit: int = 4) -> str:
    """``misses`` (candidate key, reason) told nearest first: up to ``limit`` reasons,
    each with its candidates (at most three named); "" when there are none."""
    groups: dict[str, list[str]] = {}
    for key, why in misses:
        groups.setdefault(why, []).append(key)
    ordered = sorted(groups.items(), key=lambda kv: closeness(kv[0]))
    parts: list[str] = []
    for why, keys in ordered[:limit]:
        if len(keys) == 1:
            parts.append(f"{keys[0]}: {why}")
            continue
        named = ", ".join(keys[:3]) + (f" and {len(keys) - 3} more" if len(keys) > 3 else "")
        parts.append(f"{len(keys)} candidates lack {why[6:]} ({named})"
                     if why.startswith("lacks ") else f"{why}: {named}")
    rest = sum(len(keys) for _, keys in ordered[limit:])
    if rest:
        parts.append(f"{rest} more further off")
    return "; ".join(parts)


def farthest(*reasons: str | None) -> str | None:
    """Of a candidate's reasons (None: no objection), the one furthest from serving: what
    to tell about a candidate ruled out twice over."""
    given = [r for r in reasons if r is not None]
    if len(given) < 2:
        return given[0] if given else None
    return max(given, key=lambda r: closeness(r)[0])
