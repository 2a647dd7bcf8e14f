"""From the client's ``model`` to an ordered list of targets to try.

A plain model name resolves to one target. A route name (settings.routes)
filters the catalog by the route's constraints and ranks what is left by the
route's objective; for ``cheapest`` that is this request's expected cost at the
price in force now (tiers and off-peak windows included), converted to one
currency so that CNY and USD vendors compare.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import random
import tomllib
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from importlib import resources
from typing import Any, Protocol

from kanjia.catalog import Catalog, Usage, cost_of, estimate_cost
from kanjia.config import RouteSettings, Settings
from kanjia.errors import BadRequest, ModelNotFound
from kanjia.routing._price_controls import PriceControls, apply_controls, take_controls
from kanjia.routing.directory import ModelDirectory, Target
from kanjia.routing.health import HealthBoard
from kanjia.routing.misses import closest_misses, farthest
from kanjia.routing.prefix import Prefix, PrefixTracker, part_texts, prefix_blocks
from kanjia.tokens import output_limit, rough_prompt_tokens

__all__ = [
    "Candidate",
    "Planner",
    "PriceControls",
    "QualityTiers",
    "RoutePlan",
    "cache_slot",
    "narrow",
    "take_controls",
]


class QualityModel(Protocol):
    """The learned quality router's decision interface (kanjia.routing.quality)."""

    def choose(self, prompt: str, candidates: Sequence[tuple[str, float]],
               quality_target: float, task: str | None = None) -> str: ...

    def choose_weighted(self, prompt: str, candidates: Sequence[tuple[str, float]],
                        weight: float, task: str | None = None) -> str: ...

    def start(self, prompt: str, task: str | None = None,
              weight: float = 0.9) -> CascadeRunner: ...


class CascadeRunner(Protocol):
    """One request through a cascade (kanjia.routing.quality.CascadeRun): call
    ``next_model()`` until it returns None, ``observe`` each answer, reply ``answer()``."""

    def next_model(self) -> str | None: ...

    def observe(self, model: str, response: str | None) -> None: ...

    def answer(self) -> str: ...


@dataclass(slots=True)
class Cascade:
    """A cascade route's run for one request, and the targets its model names stand for."""

    run: CascadeRunner
    targets: dict[str, Target]


def _prompt_text(messages: Any) -> str:
    parts: list[str] = []
    for m in messages if isinstance(messages, list) else ():
        if isinstance(m, dict) and m.get("role") == "user":
            content = m.get("content")
            if isinstance(content, str):
                parts.append(content)
            elif isinstance(content, list):
                parts.extend(part_texts(content))
    return "\n".join(parts)[-4096:]


class QualityTiers:
    """Coarse 0-5 quality tiers by model pattern (data in quality_tiers.toml)."""

    def __init__(self, rules: list[tuple[str, int]] | None = None) -> None:
        if rules is None:
            text = resources.files("kanjia.routing").joinpath("quality_tiers.toml").read_text()
            rules = [(str(p), int(t)) for p, t in tomllib.loads(text)["tiers"]]
        self._rules = rules
        self._cache: dict[str, int] = {}

    def tier(self, key: str) -> int:
        hit = self._cache.get(key)
        if hit is None:
            hit = next((t for p, t in self._rules if fnmatch.fnmatchcase(key, p)), 0)
            self._cache[key] = hit
        return hit


@dataclass(frozen=True, slots=True)
class Candidate:
    key: str
    kept: bool
    reason: str
    expected_cost: Decimal | None = None
    currency: str | None = None
    expected_cost_ref: Decimal | None = None  # in the reference currency, for ranking
    #: the expected cost with no prompt token cached (the list price), in ``currency``;
    #: ``expected_cost`` is the effective one (the share likely served from cache counted)
    base_cost: Decimal | None = None
    #: the prompt tokens counted as served from the vendor's cache
    cached_tokens: int = 0


@dataclass(slots=True)
class RoutePlan:
    requested: str
    route: str | None
    targets: list[Target]
    prompt_tokens: int
    candidates: list[Candidate] = field(default_factory=list)
    cascade: Cascade | None = None
    #: the prompt's block boundaries (chat requests on a route): cache-aware routing
    prefix: Prefix | None = None

    @property
    def candidate_keys(self) -> list[str]:
        return [t.key for t in self.targets]


def _models(route: RouteSettings) -> str:
    return ", ".join(route.models[:6]) + (" ..." if len(route.models) > 6 else "")


def narrow(plan: RoutePlan, why_not: Callable[[Target], str | None]
           ) -> tuple[RoutePlan, list[tuple[str, str]]]:
    """``plan`` without the targets ``why_not`` rules out (a reason each), and those reasons
    as (target key, reason). A cascade that loses a model becomes a plain request."""
    reasons: list[tuple[str, str]] = []
    keep: list[Target] = []
    for target in plan.targets:
        why = why_not(target)
        if why is None:
            keep.append(target)
        else:
            reasons.append((target.key, why))
    if not reasons:
        return plan, reasons
    cascade = plan.cascade
    left = {t.key for t in keep}
    if cascade is not None and any(t.key not in left for t in cascade.targets.values()):
        cascade = None  # its chain may need a model that is out: plain failover instead
    dropped = {k for k, _ in reasons}
    cands = [Candidate(c.key, False, dict(reasons)[c.key]) if c.key in dropped else c
             for c in plan.candidates]
    return RoutePlan(plan.requested, plan.route, keep, plan.prompt_tokens, cands, cascade,
                     plan.prefix), reasons


def cache_slot(target: Target, deployment_id: str) -> str:
    """What holds a vendor prompt cache: one model at one deployment (key, base URL)."""
    return f"{deployment_id}|{target.model}"


class Planner:
    def __init__(self, settings: Settings, directory: ModelDirectory, catalog: Catalog,
                 health: HealthBoard, tiers: QualityTiers | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 rng: random.Random | None = None, quality: QualityModel | None = None,
                 prefixes: PrefixTracker | None = None) -> None:
        self.routes: Mapping[str, RouteSettings] = settings.routes
        self.directory = directory
        self.catalog = catalog
        self.health = health
        self.tiers = tiers or QualityTiers()
        self.reference_currency = settings.server.reporting_currency
        self._clock = clock
        self._rng = rng or random.Random()
        self._pools: dict[str, list[tuple[int, Target, str | None]]] = {}
        self._ranked: OrderedDict[tuple[object, ...], RoutePlan] = OrderedDict()
        self._ranked_max = 4096
        self.quality = quality
        #: prompt prefixes sent recently, per deployment (cache-aware routing)
        self.prefixes = prefixes if prefixes is not None else PrefixTracker()

    def plan(self, name: str, body: Mapping[str, Any], endpoint: str = "chat",
             controls: PriceControls | None = None) -> RoutePlan:
        prompt = rough_prompt_tokens(body.get("messages")) if endpoint == "chat" else 0
        route = self.routes.get(name)
        if route is None:
            plan = RoutePlan(name, None, [self.directory.resolve(name)], prompt)
            if endpoint == "chat":
                plan.prefix = prefix_blocks(body)  # deployment affinity
            if controls is not None:
                self._controls(plan, controls)
            return plan
        max_out = output_limit(body) or 0
        needs = set(route.capabilities)
        if body.get("tools"):
            needs.add("tools")
        fmt = body.get("response_format")
        if isinstance(fmt, dict) and fmt.get("type") in ("json_object", "json_schema"):
            needs.add("json_mode")
        if endpoint == "embeddings":
            needs = {"embeddings"}
        at = self._clock()
        plan = self._cached_rank(name, route, prompt, max_out, at, needs)
        if endpoint == "chat" and route.cache_aware:
            plan.prefix = prefix_blocks(body)
            if route.objective == "cheapest" and len(plan.targets) > 1:
                self._cache_aware(plan, route, max_out, at)
        if route.objective == "quality" and self.quality is not None and len(plan.targets) > 1:
            self._apply_quality(plan, route, body)
        elif (route.objective == "cascade" and self.quality is not None
              and len(plan.targets) > 1 and endpoint == "chat"):
            self._start_cascade(plan, route, body)
        if controls is not None and plan.targets:
            self._controls(plan, controls)
        if not plan.targets:
            misses = closest_misses([(c.key, c.reason) for c in plan.candidates if not c.kept])
            raise BadRequest(f"route {name!r}: no model fits this request ("
                             f"{misses or 'none of its models is configured: ' + _models(route)}"
                             ")")
        return plan

    # -- prompt caches -----------------------------------------------------------------
    def cached_tokens(self, target: Target, prefix: Prefix, prompt: int) -> int:
        """Prompt tokens ``target`` would likely serve from its vendor's cache: the longest
        live prefix any of its deployments was sent, by the vendor's rules (explicit
        caches only store marked prefixes)."""
        info = self.catalog.vendors.get(target.vendor)
        rules = info.cache if info is not None else None
        if rules is None or (rules.mode == "explicit" and not prefix.marked):
            return 0
        held = max((self.prefixes.held(cache_slot(target, d.id), prefix)
                    for d in target.deployments), default=0)
        return rules.cached(min(held, prompt))

    def stable_tokens(self, target: Target, prefix: Prefix) -> int:
        """Prompt tokens of ``prefix`` before its last block (the part a conversation's
        next turn sends again) that ``target``'s vendor would cache, by its rules."""
        info = self.catalog.vendors.get(target.vendor)
        rules = info.cache if info is not None else None
        if rules is None or len(prefix.bounds) < 2 or (rules.mode == "explicit"
                                                       and not prefix.marked):
            return 0
        return rules.cached(prefix.bounds[-2][1])

    def sent(self, target: Target, deployment_id: str, plan: RoutePlan) -> None:
        """``plan``'s prompt reached ``deployment_id``: its vendor's cache now holds it."""
        info = self.catalog.vendors.get(target.vendor)
        if plan.prefix is not None and info is not None and info.cache is not None:
            self.prefixes.sent(cache_slot(target, deployment_id), plan.prefix,
                               info.cache.ttl_s)

    def _cache_aware(self, plan: RoutePlan, route: RouteSettings, max_out: int,
                     at: datetime) -> None:
        """Re-rank a cheapest plan by effective cost: each candidate's expected cost with
        the share of this prompt its deployments likely hold in cache.

        Warm (some candidate's deployment was sent a live part of this prompt): each
        candidate is priced with what it holds (the others read nothing). Cold (none
        holds any): each is priced as the conversation will pay on it once it sticks
        there, its stable prefix (everything before the last message: the system prompt,
        tools and history its next turn sends again) read from cache by its vendor's
        rules; a route's ``expected_cached_share``, when set, is used instead."""
        prefix = plan.prefix
        assert prefix is not None
        prompt = max(plan.prompt_tokens, 1)
        held = {t.key: self.cached_tokens(t, prefix, prompt) for t in plan.targets}
        if not any(held.values()):
            if route.expected_cached_share:
                return
            held = {t.key: self.stable_tokens(t, prefix) for t in plan.targets}
            if not any(held.values()):
                return
            self._rerank(plan, route, max_out, at, held)
            return
        # explicit caches with a write premium write the marked prefix they do not hold
        writes = {t.key: max(0, self.stable_tokens(t, prefix) - held[t.key])
                  for t in plan.targets if self._write_premium(t)}
        self._rerank(plan, route, max_out, at, held, writes)

    def _write_premium(self, target: Target) -> bool:
        info = self.catalog.vendors.get(target.vendor)
        return info is not None and info.cache is not None and info.cache.write_premium

    def _rerank(self, plan: RoutePlan, route: RouteSettings, max_out: int, at: datetime,
                held: Mapping[str, int], writes: Mapping[str, int] | None = None) -> None:
        """Price each kept candidate with ``held[key]`` prompt tokens read from cache and
        ``writes[key]`` written to it (explicit caches bill writes at a premium): its
        effective cost; order the plan by it, cheapest first."""
        prompt = max(plan.prompt_tokens, 1)
        out_tokens = max_out or route.expected_output_tokens
        costs: dict[str, Decimal] = {}
        cands = {c.key: c for c in plan.candidates}
        for t in plan.targets:
            c = cands.get(t.key)
            if t.entry is None or c is None:
                continue
            cached = min(held.get(t.key, 0), prompt)
            written = min((writes or {}).get(t.key, 0), prompt - cached)
            est = cost_of(Usage(prompt, cached, written, out_tokens, 0), t.entry, at)
            ref = self.catalog.fx.convert(est.amount, est.currency, self.reference_currency,
                                          at.date())
            costs[t.key] = ref
            note = f"; ~{cached} prompt tokens cached" if cached else ""
            base = est.amount if not cached else \
                cost_of(Usage(prompt, 0, 0, out_tokens, 0), t.entry, at).amount
            cands[t.key] = dataclasses.replace(
                c, expected_cost=est.amount, currency=est.currency, expected_cost_ref=ref,
                base_cost=base, cached_tokens=cached,
                reason=f"fits; period {est.period_id}{note}")
        order = {t.key: i for i, t in enumerate(plan.targets)}
        inf = Decimal("Infinity")
        plan.targets.sort(key=lambda t: (costs.get(t.key, inf), order[t.key]))
        kept = sorted((cands[c.key] for c in plan.candidates if c.kept),
                      key=lambda c: (costs.get(c.key, inf), order.get(c.key, 0)))
        plan.candidates = kept + [c for c in plan.candidates if not c.kept]

    def _controls(self, plan: RoutePlan, controls: PriceControls) -> None:
        """The request's own price controls (``provider``, ``:floor``/``:nitro``)."""
        def exclude(t: Target, why: str) -> None:
            plan.candidates = [Candidate(t.key, False, why) if c.key == t.key else c
                               for c in plan.candidates]
        apply_controls(plan, controls, catalog=self.catalog, health=self.health,
                       at=self._clock(), exclude=exclude)

    def explain(self, name: str, prompt_tokens: int, max_tokens: int,
                at: datetime | None = None, cached_tokens: int | None = None) -> RoutePlan:
        """The route's ranking for a request of this size. ``cached_tokens``: a prompt
        prefix of this many tokens was sent to every candidate before (within its
        cache lifetime): each is priced with what its vendor's cache rules make of it
        (minimum, unit; explicit caches as if the prefix were marked), and the ranking
        is by that effective cost."""
        route = self.routes.get(name)
        if route is None:
            raise ModelNotFound(f"no route named {name!r}; routes: {', '.join(self.routes)}")
        when = at or self._clock()
        plan = self.rank(name, route, prompt_tokens, max_tokens, when,
                         set(route.capabilities))
        if cached_tokens is not None and route.objective in ("cheapest", "quality",
                                                               "cascade"):
            held: dict[str, int] = {}
            for t in plan.targets:
                info = self.catalog.vendors.get(t.vendor)
                rules = info.cache if info is not None else None
                held[t.key] = rules.cached(min(cached_tokens, prompt_tokens)) \
                    if rules is not None else 0
            self._rerank(plan, route, max_tokens, when, held)
        return plan

    def _apply_quality(self, plan: RoutePlan, route: RouteSettings,
                       body: Mapping[str, Any]) -> None:
        """Move the cheapest candidate the learned router expects to answer well to the
        front; the others stay behind it, cheapest first, as fallbacks."""
        assert self.quality is not None
        costs = {c.key: float(c.expected_cost_ref or 0) for c in plan.candidates if c.kept}
        names = route.quality_models
        cands = [(names[t.key], costs.get(t.key, 0.0)) for t in plan.targets if t.key in names]
        if len(cands) < 2:
            return
        text = _prompt_text(body.get("messages"))
        if route.quality_target is not None:
            chosen = self.quality.choose(text, cands, route.quality_target, route.task)
        else:
            chosen = self.quality.choose_weighted(text, cands, route.quality_weight, route.task)
        key = next(k for k, v in names.items() if v == chosen and
                   any(t.key == k for t in plan.targets))
        plan.targets.sort(key=lambda t: t.key != key)

    def _start_cascade(self, plan: RoutePlan, route: RouteSettings,
                       body: Mapping[str, Any]) -> None:
        """Start the learned cascade for this prompt; its first model goes to the front.
        When the router's chain starts with a model this route cannot serve now, the
        request stays a plain ``cheapest`` one."""
        assert self.quality is not None
        names = route.quality_models
        by_name = {names[t.key]: t for t in plan.targets if t.key in names}
        if len(by_name) < 2:
            return
        run = self.quality.start(_prompt_text(body.get("messages")), route.task,
                                 route.quality_weight)
        first = by_name.get(run.next_model() or "")
        if first is None:
            return
        plan.cascade = Cascade(run, by_name)
        plan.targets.sort(key=lambda t: t is not first)

    # -- ranking --------------------------------------------------------------------
    def _cached_rank(self, name: str, route: RouteSettings, prompt: int, max_out: int,
                     at: datetime, needs: set[str]) -> RoutePlan:
        """Rank once per (route, needs, prompt-size bucket, output, minute), then re-check
        this request's exact context need on the cached ranking. Prices change at most
        per minute (period starts and time-of-day windows are minute-aligned)."""
        if route.objective in ("weighted", "fastest"):  # per-request orderings: no cache
            return self.rank(name, route, prompt, max_out, at, needs)
        shift = max(0, prompt.bit_length() - 3)
        low = (prompt >> shift) << shift  # ~12% buckets; ranking uses the bucket floor
        key = (name, frozenset(needs), low, max_out, at.replace(second=0, microsecond=0))
        cached = self._ranked.get(key)
        if cached is None:
            cached = self.rank(name, route, low, max_out, at, needs, limit=False)
            self._ranked[key] = cached
            if len(self._ranked) > self._ranked_max:
                self._ranked.popitem(last=False)
        out_tokens = max_out or route.expected_output_tokens
        need_ctx = max(route.min_context, prompt + out_tokens)
        targets = [t for t in cached.targets
                   if t.entry is None or not t.entry.context_window
                   or t.entry.context_window >= need_ctx]
        too_small = [] if len(targets) == len(cached.targets) else [
            Candidate(t.key, False, f"context {t.entry.context_window} < {need_ctx}")
            for t in cached.targets if t.entry is not None and t.entry.context_window
            and t.entry.context_window < need_ctx]
        targets = targets[: route.max_candidates]
        keep = {t.key for t in targets}
        cands = [c for c in cached.candidates if not c.kept or c.key in keep] + too_small
        return RoutePlan(name, name, targets, prompt, cands)

    def _pool(self, route_name: str, route: RouteSettings) -> list[tuple[int, Target, str | None]]:
        """The route's candidates with their static verdict (request-independent checks)."""
        pool = self._pools.get(route_name)
        if pool is not None:
            return pool
        if "*" in route.models:
            targets = list(self.directory.targets)
        else:
            targets = []
            for key in route.models:
                try:
                    targets.append(self.directory.resolve(key))
                except ModelNotFound:
                    continue
        pool = [(i, t, self._check_static(t, route)) for i, t in enumerate(targets)]
        self._pools[route_name] = pool
        return pool

    def _check_static(self, t: Target, route: RouteSettings) -> str | None:
        if route.vendors and t.vendor not in route.vendors:
            return "vendor not allowed"
        spec = self.directory.specs.get(t.vendor)
        if route.regions and (spec is None or spec.region not in route.regions):
            return f"region {spec.region if spec else '?'} not allowed"
        entry = t.entry
        if entry is None:
            return "not in the price catalog" if "*" in route.models else None
        if route.open_weights_only and not entry.open_weights:
            return "not open weights"
        tier = self.tiers.tier(t.key)
        if tier < route.min_quality:
            return f"unrated (the route needs quality tier {route.min_quality})" if tier == 0 \
                else f"quality tier {tier} < {route.min_quality}"
        if route.min_context and not entry.context_window:
            return "context window unknown"
        return None

    @staticmethod
    def _check_request(t: Target, route: RouteSettings, needs: set[str], prompt: int,
                       out: int) -> str | None:
        entry = t.entry
        if entry is None:
            return None
        missing = needs - entry.capabilities
        if missing:
            return f"lacks {', '.join(sorted(missing))}"
        window = entry.context_window or 0
        need_ctx = max(route.min_context, prompt + out)
        if window and window < need_ctx:
            return f"context {window} < {need_ctx}"
        return None

    def rank(self, name: str, route: RouteSettings, prompt: int, max_out: int, at: datetime,
             needs: set[str], limit: bool = True) -> RoutePlan:
        out_tokens = max_out or route.expected_output_tokens
        kept: list[tuple[Decimal, int, Target, Candidate]] = []
        dropped: list[Candidate] = []
        for order, t, static_why in self._pool(name, route):
            why = farthest(static_why, self._check_request(t, route, needs, prompt, out_tokens))
            if why is None and t.entry is not None and t.entry.price_at(at) is None:
                why = "no price in force"
            if why is not None:
                dropped.append(Candidate(t.key, False, why))
                continue
            cost_ref = Decimal(0)
            cand = Candidate(t.key, True, "fits")
            if t.entry is not None:
                est = estimate_cost(t.entry, prompt, out_tokens, route.expected_cached_share, at)
                base = est.amount if not route.expected_cached_share else \
                    estimate_cost(t.entry, prompt, out_tokens, 0.0, at).amount
                cost_ref = self.catalog.fx.convert(est.amount, est.currency,
                                                   self.reference_currency, at.date())
                if route.max_price_mtok is not None:
                    per_m = cost_ref * 1_000_000 / max(1, prompt + out_tokens)
                    cap = self.catalog.fx.convert(route.max_price_mtok,
                                                  route.max_price_currency,
                                                  self.reference_currency, at.date())
                    if per_m > cap:
                        dropped.append(Candidate(t.key, False,
                                                 f"blended {per_m:.4f}/1M > max_price"))
                        continue
                cand = Candidate(t.key, True, f"fits; period {est.period_id}", est.amount,
                                 est.currency, cost_ref, base,
                                 int(prompt * route.expected_cached_share))
            kept.append((cost_ref, order, t, cand))
        kept = self._objective(route, kept)
        if limit:
            kept = kept[: route.max_candidates]
        return RoutePlan(name, name, [t for _, _, t, _ in kept], prompt,
                    [c for _, _, _, c in kept] + dropped)

    def _objective(self, route: RouteSettings,
                   kept: list[tuple[Decimal, int, Target, Candidate]]
                   ) -> list[tuple[Decimal, int, Target, Candidate]]:
        if route.objective == "ordered":
            return sorted(kept, key=lambda k: k[1])
        if route.objective == "weighted":
            weights = list(route.weights) or [1.0] * len(kept)
            keyed = [(self._rng.random() ** (1.0 / max(weights[k[1]] if k[1] < len(weights)
                                                      else 1.0, 1e-9)), k) for k in kept]
            return [k for _, k in sorted(keyed, key=lambda x: -x[0])]
        if route.objective == "fastest":
            def latency(k: tuple[Decimal, int, Target, Candidate]) -> float:
                lat = [self.health.get(d.id).latency_ewma_ms for d in k[2].deployments]
                known = [x for x in lat if x is not None]
                return min(known) if known else float("inf")
            return sorted(kept, key=lambda k: (latency(k), k[0]))
        # cheapest (default; the learned quality objectives narrow the pool first)
        return sorted(kept, key=lambda k: (k[0], -self.tiers.tier(k[2].key), k[1]))
