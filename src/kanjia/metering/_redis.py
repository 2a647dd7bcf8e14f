"""Budgets and rate limits shared by several gateway processes through Redis.

Admission and settlement are Lua functions, so each is one atomic step on the Redis
server whatever the number of gateways (the same rules as ``LocalLimiter``). The
admissions and settlements a process makes while a call is in flight go together in
the next call: one round trip (and one pass through the client library) for many.
A budget window is a hash (``spent``, ``reserved``, ``h:<hold>`` per live hold)
plus a sorted set of hold expiries; rate limits are per-minute counters.
``redis://host:port/db?prefix=NAME`` keeps one deployment's keys apart (default
``kanjia``). If Redis comes back empty the ``alive`` marker is gone and admission
answers "unseeded": the gateway re-reads spend from the ledger, then retries.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import orjson
import redis.asyncio as aioredis

from kanjia.metering.limits import (
    MAX_NANO,
    MAX_TOKENS,
    Claim,
    Denied,
    Rate,
    Settlement,
    StoreError,
    Unseeded,
    retry_after,
)

__all__ = ["EXPIRE_HOLDS_LUA", "RedisLimiter", "split_prefix"]

#: Lua: drop the holds of a budget window (hash ``h``, expiry set ``z``) that expired by
#: ``now``, their amounts out of ``reserved``; this module's batch and the leases' sync
#: both begin with it
EXPIRE_HOLDS_LUA = """
local function expire_holds(h, z, now)
  local expired = redis.call('ZRANGEBYSCORE', z, '-inf', now)
  for _, id in ipairs(expired) do
    local amt = redis.call('HGET', h, 'h:' .. id)
    if amt then
      redis.call('HDEL', h, 'h:' .. id)
      if amt ~= '0' then redis.call('HINCRBY', h, 'reserved', '-' .. amt) end
    end
    redis.call('ZREM', z, id)
  end
end
"""

# One script runs a batch of operations (every admit and settle queued while the
# previous batch was in flight), each atomic and in order: one round trip for many.
# ARGV[1]: a JSON array of [kind ("a"|"s"), keys, args] (one argument: cheap to send).
# The keys travel in ARGV, so this needs a single Redis server, not a cluster.
# Every operation checks its numbers before it writes anything, and runs under pcall:
# one that fails answers {-2, message} and the others in the batch go on.
_BATCH = EXPIRE_HOLDS_LUA + """
local function int(x)
  if type(x) ~= 'string' or #x > 19 or not string.match(x, '^%-?%d+$') then
    error('not a bounded integer: ' .. tostring(x))
  end
  return x
end

local function ints(a, from, step)
  for j = from, #a, step do if a[j] ~= '' then int(a[j]) end end
end

local function admit(k, a)
  int(a[6])
  ints(a, 8, 3)
  ints(a, 9, 3)
  if redis.call('EXISTS', k[1]) == 0 then return {-1} end
  local n = (#k - 5) / 2
  for i = 1, n do
    local h, z = k[4 + 2 * i], k[5 + 2 * i]
    expire_holds(h, z, a[1])
    local spent = redis.call('HGET', h, 'spent') or '0'
    local reserved = redis.call('HGET', h, 'reserved') or '0'
    local used, limit = tonumber(spent) + tonumber(reserved), tonumber(a[5 + 3 * i])
    if used >= limit or used + tonumber(a[6 + 3 * i]) > limit then
      return {1, i - 1, spent, reserved}
    end
  end
  local share = tonumber(a[7])
  if a[4] ~= '' then
    local cur = redis.call('GET', k[2]) or '0'
    local prev = redis.call('GET', k[3]) or '0'
    if tonumber(prev) * share + tonumber(cur) + 1 > tonumber(a[4]) then
      return {2, 0, prev, cur}
    end
  end
  if a[5] ~= '' then
    local cur = redis.call('GET', k[4]) or '0'
    local prev = redis.call('GET', k[5]) or '0'
    if tonumber(prev) * share + tonumber(cur) >= tonumber(a[5]) then
      return {3, 0, prev, cur}
    end
  end
  if a[4] ~= '' or a[5] ~= '' then
    redis.call('INCR', k[2])
    redis.call('EXPIRE', k[2], 180)
    redis.call('INCRBY', k[4], a[6])
    redis.call('EXPIRE', k[4], 180)
  end
  for i = 1, n do
    local h, z = k[4 + 2 * i], k[5 + 2 * i]
    local amount, ttl = a[6 + 3 * i], a[7 + 3 * i]
    if amount ~= '0' then
      redis.call('HINCRBY', h, 'reserved', amount)
      redis.call('HSET', h, 'h:' .. a[2], amount)
      redis.call('ZADD', z, a[3], a[2])
    end
    if ttl ~= '' then
      redis.call('EXPIRE', h, ttl)
      redis.call('EXPIRE', z, ttl)
    end
  end
  return {0}
end

local function settle(k, a)
  if a[2] ~= '' then int(a[2]) end
  ints(a, 3, 2)
  if a[2] ~= '' and a[2] ~= '0' then
    redis.call('INCRBY', k[1], a[2])
    redis.call('EXPIRE', k[1], 180)
  end
  local n = (#k - 1) / 2
  for i = 1, n do
    local h, z = k[2 * i], k[1 + 2 * i]
    local amt = redis.call('HGET', h, 'h:' .. a[1])
    if amt then
      redis.call('HDEL', h, 'h:' .. a[1])
      if amt ~= '0' then redis.call('HINCRBY', h, 'reserved', '-' .. amt) end
    end
    redis.call('ZREM', z, a[1])
    local actual, ttl = a[1 + 2 * i], a[2 + 2 * i]
    if actual ~= '0' then redis.call('HINCRBY', h, 'spent', actual) end
    if ttl ~= '' then redis.call('EXPIRE', h, ttl) end
  end
  return {0}
end

local out = {}
for i, op in ipairs(cjson.decode(ARGV[1])) do
  local ok, res = pcall(op[1] == 'a' and admit or settle, op[2], op[3])
  if ok then out[i] = res else out[i] = {-2, tostring(res)} end
end
return out
"""

_SEED = """
for i = 2, #KEYS do
  local v = ARGV[2 * i - 2]
  local cur = redis.call('HGET', KEYS[i], 'spent') or '0'
  if tonumber(v) > tonumber(cur) then redis.call('HSET', KEYS[i], 'spent', v) end
  local ttl = ARGV[2 * i - 1]
  if ttl ~= '' then redis.call('EXPIRE', KEYS[i], ttl) end
end
if ARGV[1] == '1' then redis.call('SET', KEYS[1], '1') end
return 0
"""


_MAX_BATCH = 256


def split_prefix(url: str) -> tuple[str, str]:
    """Take ``prefix=`` out of a Redis URL's query: (url without it, prefix)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    prefix = next((v for k, v in query if k == "prefix"), "kanjia") or "kanjia"
    rest = urlencode([(k, v) for k, v in query if k != "prefix"])
    return urlunsplit(parts._replace(query=rest)), prefix


def _s(value: int | None) -> str:
    return "" if value is None else str(int(value))


def _n(value: int) -> str:
    """An amount as the script takes it: bounded, so no counter can overflow."""
    return str(max(-MAX_NANO - 1, min(int(value), MAX_NANO + 1)))


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _check(result: Any) -> None:
    if int(result[0]) == -2:
        raise StoreError(_text(result[1]))


class RedisLimiter:
    def __init__(self, url: str, hold_ttl_s: float = 1800.0) -> None:
        url, self.prefix = split_prefix(url)
        self.hold_ttl_s = hold_ttl_s
        # batching keeps one script call in flight, so few connections are ever used
        self._pool = aioredis.ConnectionPool.from_url(url, max_connections=64)
        self.client: Any = aioredis.Redis(connection_pool=self._pool)
        self._batch = self.client.register_script(_BATCH)
        self._seed = self.client.register_script(_SEED)
        self._queue: list[tuple[str, list[str], list[str], asyncio.Future[Any]]] = []
        self._draining = False
        self._tasks: set[asyncio.Task[None]] = set()

    def _w(self, window: str) -> tuple[str, str]:
        return f"{self.prefix}:b:{window}", f"{self.prefix}:bz:{window}"

    def _rate_keys(self, rate: Rate | None) -> list[str]:
        if rate is None:
            return [f"{self.prefix}:none"] * 4
        p, k, m = self.prefix, rate.key_id, rate.minute
        return [f"{p}:rq:{k}:{m}", f"{p}:rq:{k}:{m - 1}", f"{p}:tk:{k}:{m}", f"{p}:tk:{k}:{m - 1}"]

    async def admit(self, hold: str, claims: Sequence[Claim], rate: Rate | None,
                    now: float) -> None:
        keys = [f"{self.prefix}:alive", *self._rate_keys(rate)]
        args: list[str] = [repr(now), hold, repr(now + self.hold_ttl_s),
                           _s(rate.rpm) if rate else "", _s(rate.tpm) if rate else "",
                           _n(min(rate.tokens, MAX_TOKENS)) if rate else "0",
                           repr(1 - (now % 60) / 60)]
        for c in claims:
            keys.extend(self._w(c.window))
            args.extend((_n(c.limit), _n(c.amount), _s(c.ttl_s)))
        out = await self._call("a", keys, args)
        code = int(out[0])
        if code == 0:
            return
        if code == -1:
            raise Unseeded()
        if code == -2:
            raise StoreError(_text(out[1]))
        a, b = int(out[2]), int(out[3])
        if code == 1:
            raise Denied("budget", int(out[1]), a, b)
        assert rate is not None
        limit = rate.rpm if code == 2 else rate.tpm
        assert limit is not None
        raise Denied("rpm" if code == 2 else "tpm",
                     retry_after=retry_after(a, b, limit, 1, now))

    def _settle_op(self, hold: str, claims: Sequence[Claim], actual: Sequence[int],
                   rate: Rate | None, tokens: int) -> tuple[list[str], list[str]]:
        keys = [self._rate_keys(rate)[2]]
        args = [hold, _n(min(tokens, MAX_TOKENS) - min(rate.tokens, MAX_TOKENS)) if rate else ""]
        for c, amount in zip(claims, actual, strict=True):
            keys.extend(self._w(c.window))
            args.extend((_n(amount), _s(c.ttl_s)))
        return keys, args

    async def settle(self, hold: str, claims: Sequence[Claim], actual: Sequence[int],
                     rate: Rate | None, tokens: int) -> None:
        _check(await self._call("s", *self._settle_op(hold, claims, actual, rate, tokens)))

    async def settle_many(self, items: Sequence[Settlement]) -> None:
        """Queue them all for the next script call (one future each, no task each)."""
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[Any]] = []
        for item in items:
            fut: asyncio.Future[Any] = loop.create_future()
            self._queue.append(("s", *self._settle_op(*item), fut))
            futures.append(fut)
        if not self._draining:
            self._draining = True
            self._next()
        failed = [r for r in await asyncio.gather(*futures) if int(r[0]) == -2]
        if failed:
            raise StoreError(f"{len(failed)} of {len(items)} settlements failed: "
                             f"{_text(failed[0][1])}")

    async def _call(self, kind: str, keys: list[str], args: list[str]) -> Any:
        if not self._draining:  # nothing in flight: send at once, no task, no queue
            self._draining = True
            try:
                return (await self._send([(kind, keys, args)]))[0]
            finally:
                self._next()
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.append((kind, keys, args, fut))
        return await fut

    def _next(self) -> None:
        if self._queue:
            task = asyncio.ensure_future(self._drain())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        else:
            self._draining = False

    async def _drain(self) -> None:
        """Send what queued up meanwhile as one script call; go on while more arrives."""
        try:
            ops, self._queue = self._queue[:_MAX_BATCH], self._queue[_MAX_BATCH:]
            try:
                results = await self._send([(kind, k, a) for kind, k, a, _ in ops])
            except Exception as exc:
                for *_, fut in ops:
                    if not fut.done():
                        fut.set_exception(exc)
                return
            for (*_, fut), result in zip(ops, results, strict=True):
                if not fut.done():
                    fut.set_result(result)
        finally:
            self._next()

    async def _send(self, ops: Sequence[tuple[str, list[str], list[str]]]) -> list[Any]:
        payload = orjson.dumps([[kind, k, a] for kind, k, a in ops])
        return list(await self._batch(keys=[], args=[payload]))

    async def seed(self, spent: Mapping[str, tuple[int, int | None]],
                   complete: bool = False) -> None:
        keys = [f"{self.prefix}:alive"]
        args = ["1" if complete else "0"]
        for window, (nano, ttl) in spent.items():
            keys.append(self._w(window)[0])
            args.extend((_n(nano), _s(ttl)))
        await self._seed(keys=keys, args=args)

    async def alive(self) -> bool:
        return bool(await self.client.exists(f"{self.prefix}:alive"))

    async def retain(self, windows: Collection[str]) -> None:
        return None  # closed windows expire on their own (EXPIRE)

    async def windows(self, names: Sequence[str]) -> dict[str, tuple[int, int]]:
        out: dict[str, tuple[int, int]] = {}
        for name in names:
            spent, reserved = await self.client.hmget(self._w(name)[0], "spent", "reserved")
            out[name] = (int(spent or 0), int(reserved or 0))
        return out

    async def clear(self) -> None:
        """Delete every key under this prefix (tests)."""
        async for key in self.client.scan_iter(match=f"{self.prefix}:*", count=500):
            await self.client.delete(key)

    async def close(self) -> None:
        await self.client.aclose()
        await self._pool.disconnect()
