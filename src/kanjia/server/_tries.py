"""The attempts of one request: (candidate, deployment) pairs in order, at most
``max_attempts`` of them, skipping deployments whose circuit is open, pausing only before a
retry of the same deployment. The caller reports each failure; ``last`` is the error to
raise when no attempt is left."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

from kanjia.errors import KanjiaError
from kanjia.routing.directory import Target
from kanjia.routing.health import Breaker, HealthBoard
from kanjia.vendors import Deployment


async def backoff(exc: KanjiaError, tried: int, *, same: bool) -> None:
    """The pause before attempt ``tried + 1``, after ``exc`` failed attempt ``tried``.

    Only a retry of the same deployment waits (its Retry-After when at most 1 s, else an
    exponential back-off); another deployment or candidate goes at once. Nothing waits
    after the last attempt: this runs only when there is a next one.
    """
    if not same:
        return
    if exc.retry_after is not None and exc.retry_after <= 1.0:
        await asyncio.sleep(exc.retry_after)
    elif tried > 1:
        await asyncio.sleep(min(0.05 * 2 ** (tried - 2), 0.5))


class Tries:
    def __init__(self, pairs: Sequence[tuple[Target, Deployment]], health: HealthBoard,
                 max_attempts: int, log: list[str]) -> None:
        self._pairs = pairs
        self._health = health
        self._max = max_attempts
        self._log = log
        self.last: KanjiaError | None = None
        self._last_dep: Deployment | None = None

    def failed(self, exc: KanjiaError, dep: Deployment) -> None:
        self.last, self._last_dep = exc, dep

    async def __aiter__(self) -> AsyncIterator[tuple[Target, Deployment, Breaker]]:
        tried = 0
        for target, dep in self._pairs:
            if tried >= self._max:
                return
            breaker = self._health.get(dep.id)
            if not breaker.available():
                continue
            if self.last is not None:
                await backoff(self.last, tried, same=self._last_dep is dep)
            tried += 1
            self._log.append(f"{target.key}@{dep.name}")
            yield target, dep, breaker
