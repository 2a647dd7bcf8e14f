"""The nearest equivalent of a model among others: for re-pricing when a model had no
price at that date, or on another vendor.

Candidates of the same kind (chat or embeddings) are ranked by, in order: the same
vendor within one quality tier (when asked), the same model under another vendor (an
id or alias in common), the same family, the distance in quality tier
(``routing/quality_tiers.toml``; on a tie the higher tier), missing capabilities (and
reasoning on one side only), a context window under 90% of the source's, another
region, and how far the context windows differ. Self-hosted models only stand in for
self-hosted ones, unless the candidates are one vendor's models.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from kanjia.catalog import ModelEntry
from kanjia.reports._replay import kind_of
from kanjia.routing.planner import QualityTiers

__all__ = ["Equivalent", "closest"]


@dataclass(frozen=True, slots=True)
class Equivalent:
    model: ModelEntry
    why: str                # "same family (Qwen-Plus)", "quality tier 4 = 4, ..."


def _names(m: ModelEntry) -> set[str]:
    out: set[str] = set()
    for name in (m.model, *m.aliases, *m.catalog_ids.values()):
        low = name.lower()
        out.add(low)
        out.add(low.rsplit("/", 1)[-1])
    return out


def _ctx_gap(src: ModelEntry, cand: ModelEntry) -> tuple[int, float]:
    a, b = src.context_window, cand.context_window
    if a is None or b is None:
        return 0, 0.0
    return (1 if b < 0.9 * a else 0), abs(math.log(b / a))


def _caps_gap(src: ModelEntry, cand: ModelEntry) -> int:
    """Capabilities ``cand`` lacks, plus one if only one of them is a reasoning model."""
    return len(src.capabilities - cand.capabilities) + int(
        ("reasoning" in src.capabilities) != ("reasoning" in cand.capabilities))


def closest(source: ModelEntry, candidates: Iterable[ModelEntry], tiers: QualityTiers, *,
            same_vendor_first: bool = False, any_hosting: bool = False) -> Equivalent | None:
    """The candidate nearest to ``source`` (never ``source`` itself), or None.

    ``same_vendor_first``: a model of the source's vendor wins when it is within one
    quality tier of the source. ``any_hosting``: self-hosted and hosted models may stand
    in for each other (when the candidates were chosen by hand, e.g. one vendor's)."""
    kind = kind_of(source)
    hosted = source.region == "self-hosted"
    names = _names(source)
    tier = tiers.tier(source.key)
    best: tuple[tuple[object, ...], ModelEntry] | None = None
    for cand in candidates:
        if cand is source or kind_of(cand) != kind or (
                not any_hosting and (cand.region == "self-hosted") != hosted):
            continue
        t = tiers.tier(cand.key)
        shortfall, spread = _ctx_gap(source, cand)
        near = cand.vendor == source.vendor and abs(t - tier) <= 1
        score = (int(same_vendor_first and not near),
                 0 if names & _names(cand) else 1,
                 0 if source.family and cand.family == source.family else 1,
                 abs(t - tier), int(t < tier), _caps_gap(source, cand),
                 shortfall, int(cand.region != source.region), spread, cand.key)
        if best is None or score < best[0]:
            best = (score, cand)
    if best is None:
        return None
    return Equivalent(best[1], _why(source, best[1], tiers, names))


def _why(source: ModelEntry, cand: ModelEntry, tiers: QualityTiers, names: set[str]) -> str:
    common = sorted(names & _names(cand))
    if common:
        return f"the same model ({common[0]}) at {cand.vendor}"
    parts: list[str] = []
    if source.family and cand.family == source.family:
        parts.append(f"same family ({source.family})")
    if cand.vendor == source.vendor:
        parts.append("same vendor")
    ts, tc = tiers.tier(source.key), tiers.tier(cand.key)
    parts.append(f"quality tier {tc}" + (" (the same)" if ts == tc else f" vs {ts}"))
    missing = sorted(source.capabilities - cand.capabilities)
    extra = sorted({"reasoning"} & (cand.capabilities - source.capabilities))
    parts.append(("lacks " + ", ".join(missing)) if missing else "has its capabilities")
    if extra:
        parts.append("adds reasoning")
    if cand.context_window and source.context_window:
        parts.append(f"context {cand.context_window:,} vs {source.context_window:,}")
    return "closest: " + "; ".join(parts)
