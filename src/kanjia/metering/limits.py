"""Budgets and rate limits: the interface, and the in-process store.

A request is *admitted* against its claims (one per budget window it draws on)
and its key's rate limits in one atomic step, then *settled* with what it really
cost. Amounts are nano-units of the budget's currency.

Admission rule: a claim passes while ``spent + reserved < limit`` (something is
left), and then reserves its maximum. So the requests admitted before the last one
left at most ``limit`` and the last one adds at most its reservation: concurrent
requests together never overspend by more than one reservation, and a small
remainder still admits one more request instead of refusing everything.

Requests per minute pass while the sliding-window count (this minute plus the
unexpired share of the last) is below the limit; tokens per minute likewise, with
the request's maximum tokens reserved at admission and corrected at settlement.
A reservation nobody settles (a crashed task) expires after ``hold_ttl_s``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

__all__ = ["Claim", "Denied", "Limiter", "LocalLimiter", "Rate", "Unseeded", "retry_after"]


@dataclass(frozen=True, slots=True)
class Claim:
    """``amount`` drawn on the budget window ``window`` whose limit is ``limit``."""

    window: str
    limit: int
    amount: int
    ttl_s: int | None = None


@dataclass(frozen=True, slots=True)
class Rate:
    key_id: str
    rpm: int | None
    tpm: int | None
    tokens: int
    minute: int


class Denied(Exception):
    def __init__(self, kind: Literal["budget", "rpm", "tpm"], index: int = 0, spent: int = 0,
                 reserved: int = 0, retry_after: float = 1.0) -> None:
        super().__init__(kind)
        self.kind = kind
        self.index = index
        self.spent = spent
        self.reserved = reserved
        self.retry_after = retry_after


class Unseeded(Exception):
    """The shared store lost its state (Redis restarted empty): re-seed from the ledger."""


class Limiter(Protocol):
    async def admit(self, hold: str, claims: Sequence[Claim], rate: Rate | None,
                    now: float) -> None:
        """Reserve every claim and count the request, or raise ``Denied`` and change nothing."""
        ...

    async def settle(self, hold: str, claims: Sequence[Claim], actual: Sequence[int],
                     rate: Rate | None, tokens: int) -> None:
        """Release the hold's reservations, add the actual amounts, correct the tokens."""
        ...

    async def seed(self, spent: Mapping[str, tuple[int, int | None]],
                   complete: bool = False) -> None:
        """Raise each window's spend to at least the given (nano, ttl): the ledger's view.
        ``complete``: these are all the budgets' windows (the store is whole again)."""
        ...

    async def alive(self) -> bool:
        """False when the store has lost its state and needs a complete seed."""
        ...

    async def windows(self, names: Sequence[str]) -> dict[str, tuple[int, int]]:
        """(spent, reserved) of each window."""
        ...

    async def close(self) -> None: ...


def retry_after(prev: float, cur: float, limit: float, need: float, now: float) -> float:
    """Seconds until the sliding window ``prev·(1-f) + cur + need <= limit`` again."""
    into = now % 60
    if cur + need > limit:
        return 60 - into + 1
    if prev <= 0:
        return 1.0
    frac = 1 - (limit - need - cur) / prev  # the share of the minute that must pass
    return max(1.0, frac * 60 - into)


@dataclass(slots=True)
class _Hold:
    expires: float
    amounts: dict[str, int] = field(default_factory=dict)


class LocalLimiter:
    """One gateway process: all state in this object, changed without awaiting."""

    def __init__(self, hold_ttl_s: float = 1800.0) -> None:
        self.hold_ttl_s = hold_ttl_s
        self._spent: dict[str, int] = {}
        self._reserved: dict[str, int] = {}
        self._holds: dict[str, _Hold] = {}
        self._requests: dict[tuple[str, int], int] = {}
        self._tokens: dict[tuple[str, int], int] = {}
        self._swept = 0.0

    def _sweep(self, now: float) -> None:
        if now - self._swept < 1.0:
            return
        self._swept = now
        for hold_id in [h for h, v in self._holds.items() if v.expires <= now]:
            self._release(hold_id)
        minute = int(now // 60)
        for table in (self._requests, self._tokens):
            for k in [k for k in table if k[1] < minute - 1]:
                del table[k]

    def _release(self, hold: str) -> None:
        held = self._holds.pop(hold, None)
        if held is not None:
            for window, amount in held.amounts.items():
                self._reserved[window] = self._reserved.get(window, 0) - amount

    async def admit(self, hold: str, claims: Sequence[Claim], rate: Rate | None,
                    now: float) -> None:
        self._sweep(now)
        for i, c in enumerate(claims):
            spent, reserved = self._spent.get(c.window, 0), self._reserved.get(c.window, 0)
            if spent + reserved >= c.limit:
                raise Denied("budget", i, spent, reserved)
        if rate is not None:
            self._check_rate(rate, now)
            k, m = rate.key_id, rate.minute
            self._requests[k, m] = self._requests.get((k, m), 0) + 1
            self._tokens[k, m] = self._tokens.get((k, m), 0) + rate.tokens
        held = _Hold(now + self.hold_ttl_s)
        for c in claims:
            self._reserved[c.window] = self._reserved.get(c.window, 0) + c.amount
            held.amounts[c.window] = held.amounts.get(c.window, 0) + c.amount
        if claims:
            self._holds[hold] = held

    def _check_rate(self, rate: Rate, now: float) -> None:
        k, m = rate.key_id, rate.minute
        share = 1 - (now % 60) / 60
        if rate.rpm is not None:
            prev, cur = self._requests.get((k, m - 1), 0), self._requests.get((k, m), 0)
            if prev * share + cur + 1 > rate.rpm:
                raise Denied("rpm", retry_after=retry_after(prev, cur, rate.rpm, 1, now))
        if rate.tpm is not None:
            prev, cur = self._tokens.get((k, m - 1), 0), self._tokens.get((k, m), 0)
            if prev * share + cur >= rate.tpm:
                raise Denied("tpm", retry_after=retry_after(prev, cur, rate.tpm, 1, now))

    async def settle(self, hold: str, claims: Sequence[Claim], actual: Sequence[int],
                     rate: Rate | None, tokens: int) -> None:
        self._release(hold)
        for c, amount in zip(claims, actual, strict=True):
            self._spent[c.window] = self._spent.get(c.window, 0) + amount
        if rate is not None and tokens != rate.tokens:
            key = (rate.key_id, rate.minute)
            self._tokens[key] = self._tokens.get(key, 0) + tokens - rate.tokens

    async def seed(self, spent: Mapping[str, tuple[int, int | None]],
                   complete: bool = False) -> None:
        for window, (nano, _) in spent.items():
            self._spent[window] = max(self._spent.get(window, 0), nano)

    async def alive(self) -> bool:
        return True

    async def windows(self, names: Sequence[str]) -> dict[str, tuple[int, int]]:
        return {n: (self._spent.get(n, 0), self._reserved.get(n, 0)) for n in names}

    async def close(self) -> None:
        return None


def minute_of(now: float | None = None) -> int:
    return int((time.time() if now is None else now) // 60)
