"""Budgets and rate limits shared through Redis by leases: Redis once per many requests.

A worker does not ask Redis for every request. Per budget window it holds a **lease**:
an amount reserved in Redis under the worker's own hold (``h:L<worker>`` in the window's
hash, with an expiry in its sorted set, exactly like a request's hold), so every other
worker and instance counts it as reserved. Requests are admitted and settled against
the lease in memory (``admit_now``/``settle_now``: no await, no round trip); one script
call (a *sync*) pushes the spend settled meanwhile, renews the lease's expiry and
resizes it. Rate limits work the same way: a worker leases requests and tokens of the
current minute's counters and hands them out locally.

Admission rule, the same as ``LocalLimiter``'s with the leases counted as reserved: a
request passes while ``spent + reserved + amount <= limit`` over all workers; so
admitted requests together never reserve more than the limit. What leases change:

- **refused early**: a request may be refused while up to one lease of every *other*
  worker is unused. A lease's spare part is at most ``LEASE_REQUESTS`` requests' worst
  case and at most 1/8 of what was free when it was granted, so leases shrink as a
  budget nears its limit; a worker gives its spare back after ``IDLE_S`` without
  requests, on shutdown, and when the budget's limit is lowered.
- **overspend bound**: one lease per worker, and only if a worker dies: the spend it
  settled since its last sync (at most ``SYNC_S`` ago) is not yet in Redis, and its lease
  expires ``LEASE_TTL_S`` after its last sync. The ledger has those records; the next
  seed (a new window, a restart of Redis) counts them.
- rate limits: a worker may admit a request while its own tokens lease is not used up
  (the same "while under" rule as one process), so a minute's tokens may pass the limit
  by one request's tokens per worker; requests per minute never pass it.

Budget edits and revocations reach a worker through the key directory (``poll_s``,
2 s): a lowered limit makes the next request sync first, with the new limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Collection, Mapping, Sequence
from typing import Any, Literal

import orjson

from kanjia.metering._redis import EXPIRE_HOLDS_LUA, RedisLimiter
from kanjia.metering.limits import (
    MAX_NANO,
    MAX_TOKENS,
    Claim,
    Denied,
    Rate,
    SettlesNow,
    Unseeded,
    retry_after,
)

__all__ = ["IDLE_S", "LEASE_REQUESTS", "LEASE_TTL_S", "SYNC_S", "LeasedLimiter"]

log = logging.getLogger("kanjia.metering")

#: the spare part of a lease: this many of the window's largest recent reservations
LEASE_REQUESTS = 128
#: settled spend goes to Redis at least this often while there is any
SYNC_S = 0.05
#: a lease (and the spend settled under it) nobody renews is released after this long
LEASE_TTL_S = 30.0
#: a worker with no request on a window for this long gives its lease's spare back
IDLE_S = 1.0
#: syncs a waiting request goes through before it is refused anyway (others keep
#: taking what each sync brought)
_MAX_TRIES = 6

# ARGV[1]: JSON [now, expiry, hold id, windows, rates, returns]; every number a string.
# windows: [hash, zset, limit, push, shrink, need, extra, ttl]
#   push: spend settled here since the last sync (spent += push, the lease -= push);
#   shrink: spare given back; need: granted as far as it fits (a waiting request);
#   extra: spare, at most 1/8 of what is left free after need.
#   -> [lease, short (need not met), spent, reserved]
# rates: [rq, rq_prev, tk, tk_prev, rpm, tpm, share, t_push, r_need, r_extra, t_need, t_extra]
#   -> [r_grant, t_grant, short_r, short_t, r_prev, r_cur, t_prev, t_cur]
# returns: [key, amount]: unused leases of a minute that ended (DECRBY)
_SYNC = EXPIRE_HOLDS_LUA + """
local function int(x)
  if type(x) ~= 'string' or #x > 20 or not string.match(x, '^%-?%d+$') then
    error('not a bounded integer: ' .. tostring(x))
  end
  return tonumber(x)
end
local function s(x) return string.format('%.0f', x) end

local req = cjson.decode(ARGV[1])
if redis.call('EXISTS', KEYS[1]) == 0 then return {-1} end
local now, expiry, lid = req[1], req[2], req[3]
local field = 'h:' .. lid
local wout = {}
for i, w in ipairs(req[4]) do
  local h, z = w[1], w[2]
  local limit, push, shrink = int(w[3]), int(w[4]), int(w[5])
  local need, extra = int(w[6]), int(w[7])
  expire_holds(h, z, now)
  if push ~= 0 then redis.call('HINCRBY', h, 'spent', w[4]) end
  local spent = tonumber(redis.call('HGET', h, 'spent') or '0')
  local reserved = tonumber(redis.call('HGET', h, 'reserved') or '0') - push - shrink
  local free = limit - spent - reserved
  local grant, short = 0, 0
  if need > 0 or extra > 0 then
    if free > 0 then grant = math.min(need, free) end
    if grant < need then short = 1 end
    local rest = math.floor((free - grant) / 8)
    if rest > 0 then grant = grant + math.min(extra, rest) end
  end
  local delta = grant - push - shrink
  local lease = 0
  if delta ~= 0 then
    redis.call('HINCRBY', h, 'reserved', s(delta))
    lease = redis.call('HINCRBY', h, field, s(delta))
  else
    lease = tonumber(redis.call('HGET', h, field) or '0')
  end
  reserved = reserved + grant
  if lease ~= 0 then
    redis.call('ZADD', z, expiry, lid)
  else
    redis.call('HDEL', h, field)
    redis.call('ZREM', z, lid)
  end
  if w[8] ~= '' then
    redis.call('EXPIRE', h, w[8])
    redis.call('EXPIRE', z, w[8])
  end
  wout[i] = {s(lease), short, s(spent), s(reserved)}
end
local rout = {}
for i, r in ipairs(req[5]) do
  local share = tonumber(r[7])
  local t_push, r_need, r_extra = int(r[8]), int(r[9]), int(r[10])
  local t_need, t_extra = int(r[11]), int(r[12])
  if t_push > 0 then
    redis.call('INCRBY', r[3], r[8])
    redis.call('EXPIRE', r[3], 180)
  end
  local rc = tonumber(redis.call('GET', r[1]) or '0')
  local rp = tonumber(redis.call('GET', r[2]) or '0')
  local tc = tonumber(redis.call('GET', r[3]) or '0')
  local tp = tonumber(redis.call('GET', r[4]) or '0')
  local gr, gt, sr, st = 0, 0, 0, 0
  if r[5] ~= '' and (r_need > 0 or r_extra > 0) then
    local free = math.floor(int(r[5]) - rp * share - rc)
    if free > 0 then gr = math.min(r_need, free) end
    if gr < r_need then sr = 1 end
    local rest = math.floor((free - gr) / 8)
    if rest > 0 then gr = gr + math.min(r_extra, rest) end
    if gr > 0 then
      redis.call('INCRBY', r[1], s(gr))
      redis.call('EXPIRE', r[1], 180)
    end
  end
  if r[6] ~= '' and (t_need > 0 or t_extra > 0) then
    local free = math.ceil(int(r[6]) - tp * share - tc)
    if free > 0 then
      gt = math.min(t_need, free)
      local rest = math.floor((free - gt) / 8)
      if rest > 0 then gt = gt + math.min(t_extra, rest) end
      redis.call('INCRBY', r[3], s(gt))
      redis.call('EXPIRE', r[3], 180)
    elseif t_need > 0 then st = 1 end
  end
  rout[i] = {s(gr), s(gt), sr, st, s(rp), s(rc + gr), s(tp), s(tc + gt)}
end
for _, r in ipairs(req[6]) do
  int(r[2])
  local left = tonumber(redis.call('GET', r[1]) or '0')
  if left > 0 then
    redis.call('DECRBY', r[1], s(math.min(left, tonumber(r[2]))))
  end
end
return {0, wout, rout}
"""


def _n(value: int) -> str:
    return str(max(-MAX_NANO - 1, min(int(value), MAX_NANO + 1)))


class _Window:
    """This worker's part of one budget window."""

    __slots__ = ("demand", "denied", "held", "last_used", "lease", "limit", "lowered",
                 "peak", "renewed", "returning", "ttl", "unflushed")

    def __init__(self, limit: int, ttl: int | None) -> None:
        self.limit = limit  # the limit the lease was last synced under
        self.ttl = ttl
        self.lease = 0  # what Redis holds for this worker (as of the last sync)
        self.held = 0  # reserved by requests in flight here
        self.unflushed = 0  # settled here since the last sync
        self.returning = 0  # spare on its way back to Redis
        self.demand = 0  # what waiting requests need
        self.peak = 1  # the largest reservation lately, decaying (sizes the lease's spare)
        self.last_used = 0.0
        self.renewed = 0.0
        self.lowered = False  # the limit went down: give the spare back at the next sync
        #: the last sync could not grant what waiting requests needed: (spent, reserved)
        self.denied: tuple[int, int] | None = None

    def available(self) -> int:
        return self.lease - self.held - self.unflushed - self.returning


class _Minute:
    """This worker's lease of one key's rate-limit counters in one minute."""

    __slots__ = ("demand", "denied", "minute", "peak", "r_granted", "r_used", "rpm",
                 "t_granted", "t_used", "tpm")

    def __init__(self, minute: int, rpm: int | None, tpm: int | None) -> None:
        self.minute = minute
        self.rpm, self.tpm = rpm, tpm
        self.r_granted = self.r_used = self.t_granted = self.t_used = 0
        self.demand = 0
        self.peak = 1
        #: the last sync refused: ("rpm"|"tpm", prev, cur)
        self.denied: tuple[Literal["rpm", "tpm"], int, int] | None = None


class LeasedLimiter(SettlesNow):
    """The ``Limiter`` for gateways sharing budgets and rate limits through Redis."""

    def __init__(self, url: str, hold_ttl_s: float = 1800.0, *, sync_s: float = SYNC_S,
                 lease_ttl_s: float = LEASE_TTL_S, idle_s: float = IDLE_S,
                 lease_requests: int = LEASE_REQUESTS) -> None:
        self.store = RedisLimiter(url, hold_ttl_s)
        self.prefix = self.store.prefix
        self.hold_ttl_s = hold_ttl_s
        self.sync_s = sync_s
        self.lease_ttl_s = lease_ttl_s
        self.idle_s = idle_s
        self.lease_requests = lease_requests
        self.lease_id = "L" + uuid.uuid4().hex[:16]
        self.syncs = 0  # script calls made (tests, benchmarks)
        self._script = self.store.client.register_script(_SYNC)
        self._windows: dict[str, _Window] = {}
        self._minutes: dict[str, _Minute] = {}
        #: unused rate leases of minutes that ended: counter key -> amount
        self._returns: dict[str, int] = {}
        #: hold id -> (expiry, claims) of requests in flight here
        self._holds: dict[str, tuple[float, Sequence[Claim]]] = {}
        self._swept = 0.0
        self._syncing: asyncio.Future[None] | None = None
        self._next: asyncio.Future[None] | None = None
        self._loop_task: asyncio.Task[None] | None = None
        self._sync_task: asyncio.Task[None] | None = None
        self._closed = False
        self._warned = -60.0

    @property
    def client(self) -> Any:
        return self.store.client

    def _w(self, window: str) -> tuple[str, str]:
        return f"{self.prefix}:b:{window}", f"{self.prefix}:bz:{window}"

    def _rk(self, key_id: str, minute: int) -> tuple[str, str, str, str]:
        p = self.prefix
        return (f"{p}:rq:{key_id}:{minute}", f"{p}:rq:{key_id}:{minute - 1}",
                f"{p}:tk:{key_id}:{minute}", f"{p}:tk:{key_id}:{minute - 1}")

    # -- the request path: memory only ----------------------------------------------------
    def admit_now(self, hold: str, claims: Sequence[Claim], rate: Rate | None,
                  now: float) -> bool:
        """Admit against this worker's leases (True), or False: a sync must come first
        (nothing changed). Never refuses: ``admit`` does, after a sync."""
        if self._loop_task is None:
            self._start()
        if now - self._swept >= 1.0:
            self._sweep(now)
        windows = self._windows
        for c in claims:
            w = windows.get(c.window) or self._window(c)
            if c.limit != w.limit:
                if c.limit < w.limit:  # lowered: sync under the new limit first
                    w.lowered = True
                w.limit = c.limit
            if w.lowered:
                return False
            avail = w.available()
            if c.amount > avail or avail <= 0:
                return False
        m: _Minute | None = None
        if rate is not None:
            m = self._minute(rate, now)
            if (rate.rpm is not None and m.r_used + 1 > m.r_granted) or \
                    (rate.tpm is not None and m.t_used >= m.t_granted):
                return False
        for c in claims:
            w = windows[c.window]
            w.held += c.amount
            w.last_used = now
            if c.amount > w.peak:
                w.peak = c.amount
        if m is not None and rate is not None:
            m.r_used += 1
            m.t_used += rate.tokens
            if rate.tokens > m.peak:
                m.peak = rate.tokens
        if claims:
            self._holds[hold] = (now + self.hold_ttl_s, claims)
        return True

    def _window(self, c: Claim) -> _Window:
        w = self._windows.get(c.window)
        if w is None:
            w = self._windows[c.window] = _Window(c.limit, c.ttl_s)
        return w

    def _minute(self, rate: Rate, now: float) -> _Minute:
        """The key's current minute: a request that waited past the end of the minute
        it arrived in counts in the one it is admitted in."""
        m = self._minutes.get(rate.key_id)
        minute = max(rate.minute, int(now // 60))
        if m is None or m.minute < minute:
            if m is not None:
                self._retire(rate.key_id, m)
            m = self._minutes[rate.key_id] = _Minute(minute, rate.rpm, rate.tpm)
        m.rpm, m.tpm = rate.rpm, rate.tpm
        return m

    def _retire(self, key_id: str, m: _Minute) -> None:
        """Give back what a minute that ended left of its leases (at the next sync)."""
        rq, _, tk, _ = self._rk(key_id, m.minute)
        for key, unused in ((rq, m.r_granted - m.r_used), (tk, m.t_granted - m.t_used)):
            if unused > 0:
                self._returns[key] = self._returns.get(key, 0) + unused

    def settle_now(self, hold: str, claims: Sequence[Claim], actual: Sequence[int],
                   rate: Rate | None, tokens: int) -> None:
        """Release the hold, count what it cost against the lease (pushed at the next
        sync)."""
        known = self._holds.pop(hold, None)
        windows = self._windows
        for c, amount in zip(claims, actual, strict=True):
            w = windows.get(c.window) or self._window(c)
            if known is not None:
                w.held -= c.amount
            w.unflushed += amount
        if rate is not None and tokens != rate.tokens:
            m = self._minutes.get(rate.key_id)
            if m is not None and m.minute == rate.minute:
                m.t_used += min(tokens, MAX_TOKENS) - rate.tokens

    def _sweep(self, now: float) -> None:
        self._swept = now
        for hold_id in [h for h, (exp, _) in self._holds.items() if exp <= now]:
            _, claims = self._holds.pop(hold_id)
            for c in claims:
                w = self._windows.get(c.window)
                if w is not None:
                    w.held -= c.amount

    # -- the Limiter interface ---------------------------------------------------------------
    async def admit(self, hold: str, claims: Sequence[Claim], rate: Rate | None,
                    now: float) -> None:
        """Admit, syncing with Redis as often as it takes; or raise ``Denied``."""
        if self.admit_now(hold, claims, rate, now):
            return
        for tries in range(_MAX_TRIES):
            waiting = [self._window(c) for c in claims]
            m = self._minute(rate, time.time()) if rate is not None else None
            for c, w in zip(claims, waiting, strict=True):
                w.demand += max(c.amount, 1)
                w.peak = max(w.peak, c.amount)
            if m is not None and rate is not None:
                m.demand += 1
                m.peak = max(m.peak, rate.tokens)
            try:
                await self._sync_after()
            finally:
                for c, w in zip(claims, waiting, strict=True):
                    w.demand -= max(c.amount, 1)
                if m is not None:
                    m.demand -= 1
            now = time.time()
            if self.admit_now(hold, claims, rate, now):
                return
            self._refused(claims, rate, now, final=tries == _MAX_TRIES - 1)

    def _refused(self, claims: Sequence[Claim], rate: Rate | None, now: float,
                 final: bool) -> None:
        """Raise ``Denied`` where the last sync could not grant what this request needs
        (or, ``final``, wherever it does not fit)."""
        for i, c in enumerate(claims):
            w = self._window(c)
            avail = w.available()
            if (w.denied is not None or final) and (c.amount > avail or avail <= 0):
                spent, reserved = w.denied or (0, w.lease)
                raise Denied("budget", i, spent, reserved)
        if rate is not None:
            m = self._minute(rate, now)
            over_r = rate.rpm is not None and m.r_used + 1 > m.r_granted
            over_t = rate.tpm is not None and m.t_used >= m.t_granted
            if (m.denied is not None or final) and (over_r or over_t):
                kind, prev, cur = m.denied or ("rpm" if over_r else "tpm", 0, 0)
                limit = rate.rpm if kind == "rpm" else rate.tpm
                raise Denied(kind, retry_after=retry_after(prev, cur, limit or 1, 1, now))
        if final:  # (a limit lowered again at every try)
            raise Denied("budget", 0, 0, 0)

    # -- syncs -------------------------------------------------------------------------------
    def _start(self) -> None:
        with contextlib.suppress(RuntimeError):  # no running loop: the next call starts it
            self._loop_task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while not self._closed:
            await asyncio.sleep(self.sync_s)
            if self._due(time.time()):
                try:
                    await self._sync_after()
                except Exception as exc:  # leases keep until they expire; retried
                    if time.monotonic() - self._warned > 10:
                        self._warned = time.monotonic()
                        log.warning("budgets: sync with Redis failed: %r", exc)

    def _due(self, now: float) -> bool:
        if self._returns:
            return True
        renew = now - self.lease_ttl_s / 3
        for w in self._windows.values():
            if w.unflushed or (w.lease and w.renewed < renew) or \
                    (w.available() > 0 and now - w.last_used > self.idle_s):
                return True
        return any(m.t_used > m.t_granted for m in self._minutes.values())

    async def _sync_after(self) -> None:
        """Wait for a sync that starts after this call (it sees this caller's demand)."""
        loop = asyncio.get_running_loop()
        if self._syncing is None:
            self._syncing = loop.create_future()
            fut = self._syncing
            self._sync_task = loop.create_task(self._sync_loop())
            await asyncio.shield(fut)
            return
        if self._next is None:
            self._next = loop.create_future()
        await asyncio.shield(self._next)

    async def _sync_loop(self) -> None:
        """Run syncs back to back while callers wait for one (one in flight at a time)."""
        while self._syncing is not None:
            fut = self._syncing
            try:
                await self._sync()
            except BaseException as exc:
                if not fut.done():
                    fut.set_exception(exc)
                    fut.exception()  # (retrieved: not every waiter may look)
            else:
                if not fut.done():
                    fut.set_result(None)
            self._syncing, self._next = self._next, None

    async def _sync(self, give_back: bool = False) -> None:
        now = time.time()
        renew = now - self.lease_ttl_s / 3
        wsent: list[tuple[_Window, int, int]] = []
        wops: list[list[str]] = []
        for name, w in self._windows.items():
            avail = w.available()
            spare = avail - w.demand
            target = self.lease_requests * w.peak
            idle = not w.demand and now - w.last_used > self.idle_s
            push, shrink, extra = w.unflushed, 0, 0
            if give_back or idle or w.lowered:
                shrink = max(0, avail)
            elif spare > 2 * target:
                shrink = spare - target
            elif spare < target // 2:
                extra = target - max(0, spare)
            need = max(0, w.demand - (avail - shrink))
            if not (push or need or shrink or extra or w.denied
                    or (w.lease and w.renewed < renew)):
                continue
            w.returning += shrink
            wsent.append((w, push, shrink))
            h, z = self._w(name)
            wops.append([h, z, _n(w.limit), _n(push), _n(shrink), _n(need), _n(extra),
                         "" if w.ttl is None else str(int(w.ttl))])
        minute = int(now // 60)
        share = repr(1 - (now % 60) / 60)
        msent: list[tuple[_Minute, int]] = []
        rops: list[list[str]] = []
        for key_id, m in list(self._minutes.items()):
            if m.minute < minute or give_back:
                self._retire(key_id, m)
                del self._minutes[key_id]
                continue
            t_push = max(0, m.t_used - m.t_granted)
            r_left, t_left = m.r_granted - m.r_used, m.t_granted - m.t_used
            r_need = max(0, m.demand - r_left) if m.rpm is not None else 0
            t_need = 1 if m.tpm is not None and m.demand and t_left <= 0 else 0
            r_extra = self.lease_requests \
                if m.rpm is not None and r_left - m.demand < self.lease_requests // 2 else 0
            t_target = min(self.lease_requests * m.peak, MAX_TOKENS)
            t_extra = t_target if m.tpm is not None and t_left < t_target // 2 else 0
            if not (t_push or r_need or t_need or r_extra or t_extra or m.denied):
                continue
            msent.append((m, t_push))
            rops.append([*self._rk(key_id, m.minute), "" if m.rpm is None else str(m.rpm),
                         "" if m.tpm is None else str(m.tpm), share, str(t_push),
                         str(r_need), str(r_extra), str(t_need), str(t_extra)])
        returns, self._returns = self._returns, {}
        if not wops and not rops and not returns:
            return
        payload = orjson.dumps([repr(now), repr(now + self.lease_ttl_s), self.lease_id, wops,
                                rops, [[k, str(v)] for k, v in returns.items()]])
        try:
            out = await self._script(keys=[f"{self.prefix}:alive"], args=[payload])
        except BaseException:
            for w, _, shrink in wsent:
                w.returning -= shrink
            for k, v in returns.items():
                self._returns[k] = self._returns.get(k, 0) + v
            raise
        self.syncs += 1
        if int(out[0]) == -1:
            for w, _, shrink in wsent:
                w.returning -= shrink
            raise Unseeded()
        for (w, push, shrink), res in zip(wsent, out[1], strict=True):
            w.lease = int(res[0])
            w.unflushed -= push
            w.returning -= shrink
            w.renewed = now
            w.lowered = False
            w.peak = max(1, w.peak * 3 // 4)  # admissions raise it again
            w.denied = (int(res[2]), int(res[3])) if int(res[1]) else None
        for (m, t_push), res in zip(msent, out[2], strict=True):
            m.r_granted += int(res[0])
            m.t_granted += t_push + int(res[1])
            if int(res[2]):
                m.denied = ("rpm", int(res[4]), int(res[5]))
            elif int(res[3]):
                m.denied = ("tpm", int(res[6]), int(res[7]))
            else:
                m.denied = None

    # -- the rest of the Limiter interface ----------------------------------------------------
    async def seed(self, spent: Mapping[str, tuple[int, int | None]],
                   complete: bool = False) -> None:
        await self.store.seed(spent, complete)
        if complete:  # Redis was empty: the ledger's spend counts what was settled here
            for w in self._windows.values():
                w.lease = w.unflushed = 0
            self._minutes.clear()
            self._returns.clear()

    async def alive(self) -> bool:
        return await self.store.alive()

    async def retain(self, windows: Collection[str]) -> None:
        for name in [n for n, w in self._windows.items() if n not in windows
                     and not (w.lease or w.held or w.unflushed or w.demand)]:
            del self._windows[name]

    async def windows(self, names: Sequence[str]) -> dict[str, tuple[int, int]]:
        """(spent, reserved) of each window in Redis, after pushing what was settled here
        (reserved counts every worker's lease)."""
        with contextlib.suppress(Exception):
            await self._sync_after()
        return await self.store.windows(names)

    async def clear(self) -> None:
        await self.store.clear()

    async def close(self) -> None:
        """Push what was settled here and give every lease back."""
        self._closed = True
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
        try:
            while self._syncing is not None:
                await asyncio.shield(self._syncing)
            await self._sync(give_back=True)
        except Exception as exc:  # the leases expire on their own
            log.warning("budgets: giving leases back to Redis failed: %r", exc)
        await self.store.close()

    def state(self, window: str) -> tuple[int, int, int]:
        """(lease, held, unflushed) of a window here (tests, the admin API)."""
        w = self._windows.get(window)
        return (w.lease, w.held, w.unflushed) if w is not None else (0, 0, 0)

