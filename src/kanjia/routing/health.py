"""Per-deployment circuit breakers.

closed ──N failures within window──> open ──cooldown──> half-open ──success──> closed
                                                        └──failure──> open
A deployment whose credentials or balance failed is *disabled* until an operator
or a periodic probe restores it; rate limits never open a breaker.

A board may be shared (``kanjia.routing.shared_health``: several workers and instances
through Redis): a breaker that opens, is disabled or closes again calls the board's
``on_change``, and ``apply`` takes another process's change without calling it back.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from kanjia.errors import KanjiaError, RateLimited

__all__ = ["Breaker", "BreakerPolicy", "HealthBoard"]

State = Literal["closed", "open", "half_open", "disabled"]


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    failures: int = 5
    window_s: float = 30.0
    cooldown_s: float = 15.0
    disabled_probe_s: float = 300.0


@dataclass(slots=True)
class Breaker:
    policy: BreakerPolicy
    clock: Callable[[], float]
    state: State = "closed"
    opened_at: float = 0.0
    reason: str = ""
    failures: deque[float] = field(default_factory=deque)
    probing: bool = False
    latency_ewma_ms: float | None = None
    #: the deployment's id and who hears of its opening and closing (a shared board)
    deployment_id: str = ""
    notify: Callable[[Breaker], None] | None = None

    def available(self) -> bool:
        """May a request be sent now? In half-open, only one probe at a time."""
        if self.state == "closed":
            return True
        now = self.clock()
        wait = self.policy.disabled_probe_s if self.state == "disabled" else self.policy.cooldown_s
        if self.state in ("open", "disabled") and now - self.opened_at >= wait:
            self.state = "half_open"
            self.probing = False
        if self.state == "half_open" and not self.probing:
            self.probing = True
            return True
        return False

    def view(self) -> State:
        """The state as ``available()`` would find it, without changing anything: an open
        or disabled breaker past its wait shows ``half_open`` (a probe is due) but is
        not moved there, so looking never takes the single probe slot."""
        if self.state in ("open", "disabled"):
            wait = self.policy.disabled_probe_s if self.state == "disabled" \
                else self.policy.cooldown_s
            if self.clock() - self.opened_at >= wait:
                return "half_open"
        return self.state

    def probe_in(self) -> float:
        """Seconds until this breaker lets a probe through (0 when it is closed or a
        probe is due or under way); never changes anything."""
        if self.state not in ("open", "disabled"):
            return 0.0
        wait = self.policy.disabled_probe_s if self.state == "disabled" \
            else self.policy.cooldown_s
        return max(0.0, self.opened_at + wait - self.clock())

    def success(self, latency_ms: float | None = None) -> None:
        if self.state != "closed" and self.notify is not None:
            self.state = "closed"
            self.notify(self)
        self.state = "closed"
        self.probing = False
        self.failures.clear()
        self.reason = ""
        if latency_ms is not None:
            prev = self.latency_ewma_ms
            self.latency_ewma_ms = latency_ms if prev is None else 0.8 * prev + 0.2 * latency_ms

    def failure(self, error: KanjiaError) -> None:
        now = self.clock()
        if error.disables_deployment:
            self.state, self.opened_at, self.reason = "disabled", now, error.code
            self.probing = False
            self._changed()
            return
        if isinstance(error, RateLimited):
            return
        if self.state == "half_open":
            self.state, self.opened_at, self.reason = "open", now, error.code
            self.probing = False
            self._changed()
            return
        self.failures.append(now)
        while self.failures and now - self.failures[0] > self.policy.window_s:
            self.failures.popleft()
        if len(self.failures) >= self.policy.failures:
            was = self.state
            self.state, self.opened_at, self.reason = "open", now, error.code
            if was != "open":
                self._changed()

    def _changed(self) -> None:
        if self.notify is not None:
            self.notify(self)


class HealthBoard:
    """The breakers of every deployment, owned by one gateway instance."""

    def __init__(self, policy: BreakerPolicy | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.policy = policy or BreakerPolicy()
        self._clock = clock
        self._breakers: dict[str, Breaker] = {}
        #: told when a breaker opens, is disabled or closes (a shared board); not told
        #: of what ``apply`` changes
        self.on_change: Callable[[Breaker], None] | None = None

    @property
    def clock(self) -> Callable[[], float]:
        return self._clock

    def get(self, deployment_id: str) -> Breaker:
        b = self._breakers.get(deployment_id)
        if b is None:
            b = self._breakers[deployment_id] = Breaker(
                self.policy, self._clock, deployment_id=deployment_id, notify=self._notify)
        return b

    def _notify(self, breaker: Breaker) -> None:
        if self.on_change is not None:
            self.on_change(breaker)

    def apply(self, deployment_id: str, state: State, reason: str, age_s: float) -> None:
        """Take another process's change: ``deployment_id`` went ``state`` (open, disabled
        or closed) ``age_s`` seconds ago, for ``reason``. Nobody is told (no echo)."""
        b = self.get(deployment_id)
        if state == "closed":
            b.state, b.reason, b.probing = "closed", "", False
            b.failures.clear()
            return
        if state in ("open", "disabled"):
            b.state, b.reason, b.probing = state, reason, False
            b.opened_at = self._clock() - max(0.0, age_s)

    def restore(self, deployment_id: str) -> None:
        self.get(deployment_id).success()

    def reset(self) -> None:
        """Forget every breaker (an operator's "restore all"); a shared board tells the
        others each open one closed."""
        if self.on_change is not None:
            for b in self._breakers.values():
                if b.state != "closed":
                    b.state = "closed"
                    self.on_change(b)
        self._breakers.clear()

    def states(self) -> dict[str, Breaker]:
        return dict(self._breakers)

    def snapshot(self, deployment_id: str) -> dict[str, object]:
        """A read-only view of one deployment's breaker (``/status``, the dashboard):
        never creates, moves or probes one (``get`` + ``available`` would)."""
        b = self._breakers.get(deployment_id)
        if b is None:
            return {"state": "closed", "reason": "", "recent_failures": 0,
                    "latency_ewma_ms": None}
        return {"state": b.view(), "reason": b.reason, "recent_failures": len(b.failures),
                "latency_ewma_ms": b.latency_ewma_ms}
