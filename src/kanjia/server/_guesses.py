"""Wrong admin keys offered, counted per client address so that guessing is slow.

Each client address may offer ``per_client`` wrong master keys a minute (to ``/ui``,
``/admin/``, ``/status``, ``/metrics``); past that, that address gets 429 with
Retry-After until the minute's count drops, for the right key too (otherwise the 429
would tell a guesser when it had found the key). Other addresses are never held up:
there is no global count, so wrong keys from many addresses cannot lock the operator
out. The table is bounded (``max_clients`` addresses; the one whose latest wrong key is
oldest is forgotten first), so spraying from many addresses cannot grow memory.
Behind a reverse proxy every client shares the proxy's address.
"""

from __future__ import annotations

import collections
import time

__all__ = ["Guesses"]

_WINDOW_S = 60.0


class Guesses:
    def __init__(self, per_client: int = 10, max_clients: int = 10_000) -> None:
        self.per_client = per_client
        self.max_clients = max_clients
        #: address -> times of its wrong keys this window; insertion order = latest last
        self._by_client: collections.OrderedDict[str, collections.deque[float]] = \
            collections.OrderedDict()

    def __len__(self) -> int:
        return len(self._by_client)

    def wait_s(self, client: str, now: float | None = None) -> float:
        """Seconds before ``client`` may offer a key again (0: now)."""
        now = time.monotonic() if now is None else now
        mine = self._by_client.get(client)
        if mine is None:
            return 0.0
        cutoff = now - _WINDOW_S
        while mine and mine[0] <= cutoff:
            mine.popleft()
        if not mine:
            del self._by_client[client]
            return 0.0
        return max(0.0, mine[0] + _WINDOW_S - now) if len(mine) >= self.per_client else 0.0

    def failed(self, client: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        mine = self._by_client.pop(client, None)
        if mine is None:
            mine = collections.deque(maxlen=self.per_client)
            while len(self._by_client) >= self.max_clients:
                self._by_client.popitem(last=False)
        mine.append(now)
        self._by_client[client] = mine  # now the most recent
