"""The in-memory copy of keys, tenants and budgets the request path reads.

Kept fresh by polling the registry for rows updated since the last poll (with an
overlap, for clock skew between writers); a key it does not know triggers one
poll that starts after it was presented (at most five polls a second), so a key
made a moment ago elsewhere works at once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable

from kanjia.metering._pricing import Tenant
from kanjia.metering._registry import Budget, KeyInfo, Registry, Scope

__all__ = ["Directory"]

_OVERLAP_S = 30.0
_MIN_GAP_S = 0.2


class Directory:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.by_hash: dict[str, KeyInfo] = {}
        self.by_id: dict[str, KeyInfo] = {}
        self.tenants: dict[str, Tenant] = {}
        self.budgets: dict[tuple[Scope, str], dict[str, Budget]] = {}
        self.any_keys = False
        #: counts changes, so that what is derived from keys and budgets can be cached
        self.version = 0
        self._since = 0.0
        self._polled = 0.0
        self._lock = asyncio.Lock()

    def tenant(self, name: str) -> Tenant | None:
        return self.tenants.get(name)

    def budgets_of(self, key: KeyInfo) -> list[Budget]:
        out = list(self.budgets.get(("key", key.id), {}).values())
        if key.tenant:
            out.extend(self.budgets.get(("tenant", key.tenant), {}).values())
        return out

    def all_budgets(self) -> Iterable[Budget]:
        for group in self.budgets.values():
            yield from group.values()

    async def poll(self) -> None:
        async with self._lock:
            await self._poll()

    async def poll_for_miss(self, asked_at: float) -> None:
        """Make sure a poll started after ``asked_at`` (monotonic) has finished."""
        async with self._lock:
            if self._polled >= asked_at:
                return
            wait = self._polled + _MIN_GAP_S - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            await self._poll()

    async def _poll(self) -> None:
        self._polled = time.monotonic()
        changes = await self.registry.changes(max(0.0, self._since - _OVERLAP_S))
        for key in changes.keys:
            self.add_key(key)
        for tenant in changes.tenants:
            self.tenants[tenant.name] = tenant
            self.version += 1
        for budget in changes.budgets:
            self.add_budget(budget)
        self._since = max(self._since, changes.newest)

    def add_key(self, key: KeyInfo) -> None:
        self.by_hash[key.key_hash] = key
        self.by_id[key.id] = key
        self.any_keys = True
        self.version += 1

    def add_budget(self, budget: Budget) -> None:
        self.version += 1
        group = self.budgets.setdefault((budget.scope, budget.subject), {})
        if budget.deleted:
            group.pop(budget.id, None)
        else:
            group[budget.id] = budget
