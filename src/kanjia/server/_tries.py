"""The attempts of one request: (candidate, deployment) pairs in order, at most
``max_attempts`` of them, skipping deployments whose circuit is open, pausing only before a
retry of the same deployment. The caller reports each failure; ``last`` is the error to
raise when no attempt is left."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Sequence

from kanjia.errors import KanjiaError, NoDeploymentAvailable
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
        #: the candidate of the last attempt made (else the first one skipped)
        self.target: Target | None = None
        #: the (candidate, deployment, breaker) passed over because the circuit was open
        self.skipped: list[tuple[Target, Deployment, Breaker]] = []

    def failed(self, exc: KanjiaError, dep: Deployment) -> None:
        self.last, self._last_dep = exc, dep

    def error(self, requested: str) -> KanjiaError:
        """What to raise when no attempt is left: the last attempt's error, else why every
        circuit is open (each deployment's reason) and when the first probe is due."""
        if self.last is not None:
            return self.last
        return circuits_open(requested, self.skipped)

    async def __aiter__(self) -> AsyncIterator[tuple[Target, Deployment, Breaker]]:
        tried = 0
        for target, dep in self._pairs:
            if tried >= self._max:
                return
            breaker = self._health.get(dep.id)
            if not breaker.available():
                if all(d is not dep for _, d, _ in self.skipped):  # a lone one comes twice
                    self.skipped.append((target, dep, breaker))
                if self.target is None:
                    self.target = target
                continue
            self.target = target
            if self.last is not None:
                await backoff(self.last, tried, same=self._last_dep is dep)
            tried += 1
            self._log.append(f"{target.key}@{dep.name}")
            yield target, dep, breaker


#: what a deployment-disabling error class means for the operator
_MEANS = {"upstream_auth_failed": " (the vendor refused the gateway's key)",
          "insufficient_quota": " (the gateway's balance at the vendor is used up)"}


def circuits_open(requested: str,
                  skipped: Sequence[tuple[Target, Deployment, Breaker]]) -> KanjiaError:
    """503 ``no_deployment_available``: every deployment's circuit is open. The message
    names each one's reason (the error class that opened it; an auth or balance failure
    takes a deployment out until a probe) and ``retry_after`` is the soonest probe."""
    reasons: list[str] = []
    waits: list[float] = []
    for target, dep, breaker in skipped[:6]:
        wait = breaker.probe_in()
        waits.append(wait)
        cause = breaker.reason or "unknown error"
        if breaker.state == "disabled":
            why = f"taken out by {cause}" + _MEANS.get(cause, "")
        else:
            why = f"opened by repeated {cause}"
        when = f"next probe in {wait:.0f} s" if wait > 0 else "a probe is under way"
        reasons.append(f"{target.key}@{dep.name}: {why}, {when}")
    if len(skipped) > 6:
        reasons.append(f"and {len(skipped) - 6} more")
    soonest = min(waits, default=0.0)
    retry = max(1.0, soonest)
    detail = "; ".join(reasons) if reasons else "no deployment to try"
    return NoDeploymentAvailable(
        f"no healthy deployment for {requested!r}: every circuit is open ({detail}); "
        f"retry after {math.ceil(retry)} s", retry_after=retry)
