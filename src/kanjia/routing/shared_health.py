"""Circuit breakers shared by every worker and instance through Redis.

A breaker that opens, is disabled or closes in one process is published on
``<prefix>:health`` (pub/sub) and written to the hash ``<prefix>:health:state``;
every other process's subscription applies it to its own board. Nothing waits on
Redis on the request path: a change is queued and sent by a background task, and
routing reads only the local board. A process that starts (or reconnects) reads the
hash first, so it does not have to learn of an outage that is already known.
Clocks: a change carries the wall-clock time it happened; each process turns that into
its own monotonic time, so cooldowns end at the same moment everywhere (within the
machines' clock skew).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from typing import Any

import orjson

from kanjia.routing.health import Breaker, HealthBoard

__all__ = ["SharedHealth"]

log = logging.getLogger("kanjia.routing")
#: how long a published state is kept in the hash (longer than any cooldown that matters)
_KEEP_S = 3600
_RETRY_S = 1.0


class SharedHealth:
    def __init__(self, board: HealthBoard, url: str, prefix: str) -> None:
        import redis.asyncio as aioredis  # only a gateway with --redis needs it

        self.board = board
        self.channel = f"{prefix}:health"
        self.state_key = f"{prefix}:health:state"
        self.origin = uuid.uuid4().hex[:12]
        self.client: Any = aioredis.Redis.from_url(url)
        self._pending: list[bytes] = []
        self._flushing: asyncio.Task[None] | None = None
        self._listening: asyncio.Task[None] | None = None
        self.subscribed = asyncio.Event()
        #: changes applied from other processes, and an event set on each (tests)
        self.applied = 0
        self.heard = asyncio.Event()

    # -- publishing (called from the request path: never awaits) -------------------------
    def changed(self, breaker: Breaker) -> None:
        age = max(0.0, self.board.clock() - breaker.opened_at) if breaker.state != "closed" \
            else 0.0
        self._pending.append(orjson.dumps({
            "o": self.origin, "d": breaker.deployment_id, "s": breaker.state,
            "r": breaker.reason, "t": time.time() - age}))
        if self._flushing is None or self._flushing.done():
            try:
                asyncio.get_running_loop()
            except RuntimeError:  # not on the gateway's loop: sent with the next change
                return
            self._flushing = asyncio.ensure_future(self._flush())

    async def _flush(self) -> None:
        while self._pending:
            items, self._pending = self._pending, []
            try:
                async with self.client.pipeline(transaction=False) as pipe:
                    for item in items:
                        dep = orjson.loads(item)["d"]
                        pipe.hset(self.state_key, dep, item)
                        pipe.publish(self.channel, item)
                    pipe.expire(self.state_key, _KEEP_S)
                    await pipe.execute()
            except Exception as exc:  # Redis away: this process still routes on its own
                log.warning("breakers: publishing %d changes failed: %s", len(items), exc)
                return

    # -- listening ------------------------------------------------------------------------
    def _apply(self, raw: bytes | str) -> None:
        try:
            msg = orjson.loads(raw)
            if msg["o"] == self.origin:
                return
            self.board.apply(str(msg["d"]), msg["s"], str(msg.get("r") or ""),
                             time.time() - float(msg["t"]))
            self.applied += 1
            self.heard.set()
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            log.warning("breakers: ignored a malformed shared state: %s", exc)

    async def start(self) -> None:
        self.board.on_change = self.changed
        self._listening = asyncio.ensure_future(self._listen())

    async def _listen(self) -> None:
        while True:
            try:
                async with self.client.pubsub() as pubsub:
                    await pubsub.subscribe(self.channel)
                    # what is already known (subscribed first: no change falls between)
                    for raw in (await self.client.hgetall(self.state_key)).values():
                        self._apply(raw)
                    self.subscribed.set()
                    async for message in pubsub.listen():
                        if message.get("type") == "message":
                            self._apply(message["data"])
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.subscribed.clear()
                log.warning("breakers: the Redis subscription failed (%s); retrying", exc)
                await asyncio.sleep(_RETRY_S)

    async def close(self) -> None:
        self.board.on_change = None
        for task in (self._listening, self._flushing):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        await self.client.aclose()
