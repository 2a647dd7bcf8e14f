"""Wrong admin keys offered to the dashboard, counted so that guessing is slow.

Each client address may offer ``per_client`` wrong keys a minute, and all clients
together ``overall`` (so guesses spread over many addresses are slowed too); past
either, sign-in answers 429 with Retry-After until the minute's count drops, for a
right key too (otherwise the 429 would tell a guesser when it had found the key).
"""

from __future__ import annotations

import collections
import time

__all__ = ["Guesses"]

_WINDOW_S = 60.0


class Guesses:
    def __init__(self, per_client: int = 10, overall: int = 100) -> None:
        self.per_client = per_client
        self.overall = overall
        self._by_client: dict[str, collections.deque[float]] = {}
        self._all: collections.deque[float] = collections.deque()

    def wait_s(self, client: str, now: float | None = None) -> float:
        """Seconds before ``client`` may offer a key again (0: now)."""
        now = time.monotonic() if now is None else now
        self._expire(now)
        waits = [0.0]
        mine = self._by_client.get(client)
        if mine is not None and len(mine) >= self.per_client:
            waits.append(mine[0] + _WINDOW_S - now)
        if len(self._all) >= self.overall:
            waits.append(self._all[0] + _WINDOW_S - now)
        return max(waits)

    def failed(self, client: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        self._by_client.setdefault(client, collections.deque()).append(now)
        self._all.append(now)

    def _expire(self, now: float) -> None:
        cutoff = now - _WINDOW_S
        while self._all and self._all[0] <= cutoff:
            self._all.popleft()
        for client in [c for c, q in self._by_client.items() if not q or q[-1] <= cutoff]:
            del self._by_client[client]
        for q in self._by_client.values():
            while q and q[0] <= cutoff:
                q.popleft()
