"""Keyed access: who is calling, may they use this model, may they spend this much.

The gateway asks ``authenticate`` (key → caller; 401 / 403), then ``reserve`` with
the request's maximum cost before calling a vendor (budgets and rate limits; 429),
then ``settle`` with the record of what happened. Only in-memory state and the
limit store are touched on the way; the database is read by a background poll.

Keys are required when ``require_keys`` is set or as soon as the database holds
any virtual key; until then callers without a key pass unmetered.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import hmac
import itertools
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, NamedTuple

from kanjia.errors import AuthFailed, ConfigError, Overloaded, PermissionDenied
from kanjia.ledger import from_nano
from kanjia.ledger.record import CallRecord
from kanjia.ledger.store import Database
from kanjia.metering._directory import Directory
from kanjia.metering._fx import Fx
from kanjia.metering._money import to_nano_capped
from kanjia.metering._pricing import SellPrices, Unpriced
from kanjia.metering._refusals import UnpricedModel, WorstCase, refusal
from kanjia.metering._registry import Budget, KeyInfo, Registry, hash_key, is_master_key
from kanjia.metering._seeding import ledger_spend
from kanjia.metering._windows import (
    WindowClock,
    window_end,
    window_id,
    window_reset,
    window_ttl_s,
)
from kanjia.metering.limits import (
    MAX_TOKENS,
    Claim,
    Denied,
    Limiter,
    Rate,
    Settlement,
    StoreError,
    Unseeded,
)

__all__ = ["Caller", "Gatekeeper", "Hold"]

log = logging.getLogger("kanjia.metering")
_TTL = {p: window_ttl_s(p) for p in ("day", "month", "total")}
#: the gateway's maximum cost counts the prompt with an offline tokenizer; the vendor's
#: count can be a little higher, so reservations carry this margin
_MARGIN = Decimal("1.05")
_ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class Caller:
    key: KeyInfo | None = None
    admin: bool = False
    #: the requested name itself is on the key's allowlist
    model_ok: bool = True


class Hold(NamedTuple):
    id: str
    claims: tuple[Claim, ...]
    budgets: tuple[Budget, ...]
    rate: Rate | None
    max_charge: Decimal
    currency: str
    #: the currency of every budget when they share one (None: several, or none)
    budget_currency: str | None = None


@dataclass(frozen=True, slots=True)
class _KeyTerms:
    """What a key's requests claim, derived once per key, directory change and window."""

    key: KeyInfo
    version: int
    until: float  # the first of its windows to end (unix time)
    budgets: tuple[Budget, ...]
    #: per budget: window name, limit (nano), window TTL, currency
    windows: tuple[tuple[str, int, int | None, str], ...]
    metered: bool
    #: the currency of every budget when they share one (None: several, or no budget)
    currency: str | None
    #: the key has a requests or tokens per minute limit
    rated: bool


_ANONYMOUS = Caller()
#: ``_new(Claim, (...))`` makes the tuple without the named tuple's Python ``__new__``
#: (a few are made for every metered request)
_new = tuple.__new__
_DIGESTS = 10_000


def _allowed(key: KeyInfo, model: str) -> bool:
    return key.models is None or any(fnmatch.fnmatchcase(model, p) for p in key.models)


class Gatekeeper:
    def __init__(self, db: Database, limiter: Limiter, fx: Fx, *, require_keys: bool = False,
                 master_key: str | None = None, poll_s: float = 2.0,
                 before_seed: Callable[[], Awaitable[None]] | None = None,
                 unpriced: Unpriced | None = None) -> None:
        self.db = db
        self.registry = Registry(db)
        self.directory = Directory(self.registry)
        self.limiter = limiter  # (a property: see below)
        self.fx = fx
        self.unpriced = unpriced or Unpriced()
        self.pricing = SellPrices(self.directory.tenant, self.unpriced)
        self.require_keys = require_keys
        self.poll_s = poll_s
        self._master = master_key
        self._before_seed = before_seed
        self._seeded: set[str] = set()
        self._clock = WindowClock()
        self._hold_prefix = uuid.uuid4().hex[:12] + "-"
        self._hold_ids = itertools.count()
        self._reseed_lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._plans: dict[str, _KeyTerms] = {}
        #: the SHA-256 of keys presented lately (a key is hashed once, not per request;
        #: it is in this process's memory while its requests are served anyway)
        self._digests: dict[str, str] = {}
        #: per key id: the key, the model last asked for, the caller that made
        self._callers: dict[str, tuple[KeyInfo, str, Caller]] = {}
        self._settling: list[Settlement] = []
        self._settle_tasks: set[asyncio.Task[None]] = set()

    @property
    def limiter(self) -> Limiter:
        return self._limiter

    @limiter.setter
    def limiter(self, limiter: Limiter) -> None:
        self._limiter = limiter
        # a limiter with state in this process (LocalLimiter; LeasedLimiter while its
        # leases cover the request) is called without awaiting
        self._admit_now: Callable[[str, Sequence[Claim], Rate | None, float], bool] | None = \
            getattr(limiter, "admit_now", None)
        self._settle_now: Callable[..., None] | None = getattr(limiter, "settle_now", None)

    @property
    def keys_required(self) -> bool:
        return self.require_keys or self.directory.any_keys

    # -- lifecycle --------------------------------------------------------------------------
    async def start(self) -> None:
        await self.refresh(complete=True)
        self._task = asyncio.ensure_future(self._poll_loop())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.drain()
        await self.limiter.close()

    async def _poll_loop(self) -> None:
        while True:
            await asyncio.sleep(self.poll_s)
            try:
                await self.refresh()
            except Exception as exc:  # the database is away: keep the last directory
                log.warning("keys: refresh from %s failed: %s", self.db.display, exc)

    async def refresh(self, complete: bool = False) -> None:
        """Read changed keys, tenants and budgets; seed windows this process has not seen."""
        await self.directory.poll()
        await self._seed(complete)

    async def _seed(self, complete: bool) -> None:
        now = time.time()
        current = {self._window(b, now): b for b in self.directory.all_budgets()}
        self._seeded &= current.keys()  # windows that closed are forgotten
        await self.limiter.retain(current.keys())
        todo = [b for w, b in current.items() if complete or w not in self._seeded]
        if not todo and not complete:
            return
        if self._before_seed is not None:
            await self._before_seed()
        spent = await ledger_spend(self.db, self.fx, todo, now)
        values = {self._window(b, now): (spent.get(b.id, 0), window_ttl_s(b.period))
                  for b in todo}
        await self.limiter.seed(values, complete=complete)
        self._seeded.update(values)

    def _window(self, budget: Budget, now: float) -> str:
        return f"{budget.id}:{budget.currency}:{self._clock.id(budget.period, now)}"

    # -- the request path ---------------------------------------------------------------------
    async def authenticate(self, api_key: str | None, model: str) -> Caller:
        if is_master_key(api_key, self._master):
            return Caller(admin=True)
        if not api_key:
            if self.keys_required:
                raise AuthFailed("a kanjia API key (kj-...) is required in the "
                                 "Authorization header")
            return _ANONYMOUS
        if not api_key.startswith("kj-"):  # every virtual key does: this is none of ours
            if self.keys_required:
                raise AuthFailed("invalid API key")
            return _ANONYMOUS
        digest = self._digests.get(api_key)
        if digest is None:
            digest = hash_key(api_key)
            if len(self._digests) >= _DIGESTS:
                self._digests.clear()
            self._digests[api_key] = digest
        key = self.directory.by_hash.get(digest)
        if key is None:
            await self.directory.poll_for_miss(time.monotonic())
            key = self.directory.by_hash.get(digest)
        if key is None or not hmac.compare_digest(key.key_hash, digest):
            raise AuthFailed("invalid API key")
        if key.revoked_at is not None:
            raise AuthFailed(f"API key {key.hint} was revoked")
        cached = self._callers.get(key.id)
        if cached is not None and cached[0] is key and cached[1] == model:
            return cached[2]
        caller = Caller(key=key, model_ok=_allowed(key, model))
        if len(self._callers) > 100_000:
            self._callers.clear()
        self._callers[key.id] = (key, model, caller)
        return caller

    async def caller_of(self, key_id: str, model: str) -> Caller:
        """The caller of a key by id (deferred work queued with it): 401 once revoked."""
        key = self.directory.by_id.get(key_id)
        if key is None:
            await self.directory.poll_for_miss(time.monotonic())
            key = self.directory.by_id.get(key_id)
        if key is None:
            raise AuthFailed(f"API key {key_id} no longer exists")
        if key.revoked_at is not None:
            raise AuthFailed(f"API key {key.hint} was revoked")
        return Caller(key=key, model_ok=_allowed(key, model))

    def may_use(self, caller: Caller, model_key: str) -> bool:
        """May ``caller`` be answered by ``model_key`` (a route's candidate, a failover)?
        Yes when its key allows the name it asked for (a route it may use) or this model."""
        key = caller.key
        return key is None or caller.model_ok or _allowed(key, model_key)

    async def reserve(self, caller: Caller, model_key: str, max_cost: Decimal | None,
                      currency: str, tokens: int, *,
                      others: Sequence[WorstCase] = ()) -> Hold | None:
        """Reserve the request's worst case: the dearest of ``model_key`` at ``max_cost``
        and every other candidate that may answer it (``others``), at the caller's sell
        price. ``max_cost`` None: the model has no price (refused under a budget unless
        the settings price it or allow it)."""
        key = caller.key
        if key is None:
            return None
        if not self.may_use(caller, model_key):
            allowed = ", ".join(key.models or ())
            raise PermissionDenied(f"key {key.name!r} may not use {model_key!r} "
                                   f"(allowed: {allowed})")
        tenant = self.directory.tenant(key.tenant) if key.tenant else None
        if tenant is not None and tenant.error is not None:
            raise ConfigError(tenant.error)
        now = time.time()
        plan = self._plan(key, now)
        if not plan.metered:
            return None
        first = self._ceiling(key, plan, model_key, max_cost, currency, tokens)
        if not others:  # the common case: one candidate
            charge, cur = first
            if plan.currency is not None:  # every budget in one currency: one conversion
                amount = to_nano_capped(charge if plan.currency == cur else self.fx.convert(
                    charge, cur, plan.currency, self._clock.date(now)))
                claims = tuple([_new(Claim, (window, limit, amount, ttl))
                                for window, limit, ttl, _ in plan.windows])
            else:
                claims = self._claims(plan, [first], now)
        else:
            charges = [first]
            charges.extend(self._ceiling(key, plan, *case) for case in others)
            tokens = max(tokens, *(case.tokens for case in others))
            claims = self._claims(plan, charges, now)
            charge, cur = self._dearest(charges, now)
        rate = _new(Rate, (key.id, key.rpm, key.tpm, min(tokens, MAX_TOKENS),
                           int(now // 60))) if plan.rated else None
        hold_id = f"{self._hold_prefix}{next(self._hold_ids)}"
        try:
            try:
                if self._admit_now is None or not self._admit_now(hold_id, claims, rate, now):
                    await self.limiter.admit(hold_id, claims, rate, now)
            except Unseeded:
                await self._reseed()
                await self.limiter.admit(hold_id, claims, rate, now)
        except Denied as denied:
            raise refusal(denied, key, plan.budgets, claims, now) from None
        except StoreError as exc:
            raise Overloaded(f"the budget store refused this request's reservation ({exc})"
                             ) from None
        except (Unseeded, OSError, ConnectionError) as exc:
            raise Overloaded(f"the budget store is unavailable ({type(exc).__name__}); "
                             "refusing metered requests until it is back") from None
        except Exception as exc:
            if type(exc).__module__.startswith("redis"):
                raise Overloaded("the budget store is unavailable; refusing metered "
                                 "requests until it is back") from None
            raise
        return _new(Hold, (hold_id, claims, plan.budgets, rate, charge, cur, plan.currency))

    def _claims(self, plan: _KeyTerms, charges: Sequence[tuple[Decimal, str]],
                now: float) -> tuple[Claim, ...]:
        """Per budget window: the dearest of ``charges`` in the budget's currency."""
        nano: dict[str, int] = {}
        claims: list[Claim] = []
        for window, limit, ttl, bcur in plan.windows:
            amount = nano.get(bcur)
            if amount is None:
                amount = nano[bcur] = max(
                    to_nano_capped(c if cur == bcur else
                                   self.fx.convert(c, cur, bcur, self._clock.date(now)))
                    for c, cur in charges)
            claims.append(Claim(window, limit, amount, ttl))
        return tuple(claims)

    def _dearest(self, charges: Sequence[tuple[Decimal, str]],
                 now: float) -> tuple[Decimal, str]:
        cur, day = charges[0][1], self._clock.date(now)
        return max(charges, key=lambda c: c[0] if c[1] == cur
                   else self.fx.convert(c[0], c[1], cur, day))

    def _ceiling(self, key: KeyInfo, plan: _KeyTerms, model_key: str, amount: Decimal | None,
                 currency: str, tokens: int) -> tuple[Decimal, str]:
        """The most a candidate whose worst case is ``amount`` may be charged (with the
        margin for the prompt estimate)."""
        if amount is None and not self.pricing.prices_unpriced(key.tenant, model_key):
            if plan.budgets and not self.unpriced.allow:
                raise UnpricedModel(
                    f"{model_key!r} has no price in the catalog, so key {key.name!r}'s "
                    "budget cannot cover it; set [budgets] unpriced_price (or allow_unpriced "
                    "= true) in the config, or use a priced model")
            return _ZERO, currency
        if not key.tenant and amount is not None:  # no sell price: the charge is the cost
            return amount * _MARGIN, currency
        charge, cur = self.pricing.ceiling(key.tenant, model_key, amount, currency, tokens)
        return charge * _MARGIN, cur

    def _plan(self, key: KeyInfo, now: float) -> _KeyTerms:
        plan = self._plans.get(key.id)
        if plan is not None and plan.key is key and plan.version == self.directory.version \
                and now < plan.until:
            return plan
        budgets = tuple(self.directory.budgets_of(key))
        windows = tuple((f"{b.id}:{b.currency}:{self._clock.id(b.period, now)}", b.limit_nano,
                         _TTL[b.period], b.currency) for b in budgets)
        until = min((window_end(b.period, now) for b in budgets), default=float("inf"))
        currencies = {b.currency for b in budgets}
        rated = key.rpm is not None or key.tpm is not None
        plan = _KeyTerms(key, self.directory.version, until, budgets, windows,
                         bool(budgets) or rated,
                         currencies.pop() if len(currencies) == 1 else None, rated)
        if len(self._plans) > 100_000:
            self._plans.clear()
        self._plans[key.id] = plan
        return plan

    async def _reseed(self) -> None:
        async with self._reseed_lock:
            if await self.limiter.alive():
                return  # re-seeded while we waited
            self._seeded.clear()
            await self._seed(complete=True)

    def _settlement(self, hold: Hold, rec: CallRecord) -> Settlement:
        return Settlement(hold.id, hold.claims, self._actual(hold, rec), hold.rate,
                          min(rec.input_tokens + rec.output_tokens, MAX_TOKENS))

    def _actual(self, hold: Hold, rec: CallRecord) -> list[int]:
        """What ``rec`` is charged, in nano-units of each of ``hold``'s budgets."""
        if rec.charge is None:
            rec.charge, rec.charge_currency = self.pricing.charge(rec)
        charge, cur = rec.charge, rec.charge_currency or rec.currency
        budget_currency = hold.budget_currency
        if budget_currency is not None:  # every budget in one currency: one conversion
            nano = to_nano_capped(charge if budget_currency == cur else self.fx.convert(
                charge, cur, budget_currency, self._clock.date(rec.ts)))
            actual = [nano] * len(hold.budgets)
        elif all(b.currency == cur for b in hold.budgets):
            actual = [to_nano_capped(charge)] * len(hold.budgets)
        else:
            day = self._clock.date(rec.ts)
            actual = [to_nano_capped(self.fx.convert(charge, cur, b.currency, day))
                      for b in hold.budgets]
        return actual

    async def settle(self, hold: Hold | None, rec: CallRecord) -> None:
        if hold is None:
            return
        item = self._settlement(hold, rec)
        try:
            await self.limiter.settle(*item)
        except Exception as exc:  # the hold expires on its own; the ledger has the record
            log.error("budgets: settling %s failed: %s", rec.request_id, exc)

    def settle_soon(self, hold: Hold | None, rec: CallRecord) -> None:
        """``settle`` from the request path without a task per request: a limiter with
        its state in this process (``settle_now``) settles here and now; for any other,
        the settlements of one pass of the event loop go to it together, right after."""
        if hold is None:
            return
        if self._settle_now is not None:  # an in-process store: settled here and now
            self._settle_now(hold.id, hold.claims, self._actual(hold, rec), hold.rate,
                             min(rec.input_tokens + rec.output_tokens, MAX_TOKENS))
            return
        if not self._settling:
            asyncio.get_running_loop().call_soon(self._settle_queued)
        self._settling.append(self._settlement(hold, rec))

    def release_soon(self, hold: Hold) -> None:
        """Give ``hold`` back unused (no call was made), like ``settle_soon``."""
        if not self._settling:
            asyncio.get_running_loop().call_soon(self._settle_queued)
        self._settling.append(Settlement(hold.id, hold.claims, [0] * len(hold.claims),
                                         hold.rate, 0))

    def _settle_queued(self) -> None:
        items, self._settling = self._settling, []
        if not items:
            return
        if self._settle_now is not None:  # an in-process store: nothing to await
            for item in items:
                self._settle_now(*item)
            return
        task = asyncio.ensure_future(self._settle_many(items))
        self._settle_tasks.add(task)
        task.add_done_callback(self._settle_tasks.discard)

    async def _settle_many(self, items: list[Settlement]) -> None:
        try:
            await self.limiter.settle_many(items)
        except Exception as exc:  # the holds expire on their own; the ledger has the records
            log.error("budgets: settling %d requests failed: %s", len(items), exc)

    async def drain(self) -> None:
        """Wait for every settlement handed over so far (shutdown, tests)."""
        self._settle_queued()
        while self._settle_tasks:
            await asyncio.gather(*self._settle_tasks, return_exceptions=True)

    def stamp(self, rec: CallRecord) -> None:
        """Sink: set the record's charge before the ledger takes it."""
        self.pricing.stamp(rec)

    # -- for the admin API -------------------------------------------------------------------------
    async def budget_status(self, budgets: Sequence[Budget]) -> list[dict[str, Any]]:
        now = time.time()
        names = [self._window(b, now) for b in budgets]
        state = await self.limiter.windows(names)
        out = []
        for b, name in zip(budgets, names, strict=True):
            spent, reserved = state.get(name, (0, 0))
            out.append({**b.public(), "window": window_id(b.period, now),
                        "spent": str(from_nano(spent)), "reserved": str(from_nano(reserved)),
                        "resets": window_reset(b.period, now)})
        return out

