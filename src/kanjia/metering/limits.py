"""Budgets and rate limits: the interface, and the in-process store.

A request is *admitted* against its claims (one per budget window it draws on)
and its key's rate limits in one atomic step, then *settled* with what it really
cost. Amounts are nano-units of the budget's currency.

Admission rule: a claim passes while ``spent + reserved + amount <= limit`` (its
worst case fits in what is left), and then reserves that worst case. So admitted
requests together never reserve more than the limit, and spend more only where a
call cost more than its reservation (a vendor counting more prompt tokens than the
gateway's tokenizer; the reservation's margin covers that).
Amounts are bounded (``MAX_NANO`` per step, ``MAX_TOKENS`` tokens), so no sum a store
keeps can overflow a 64-bit integer.

Requests per minute pass while the sliding-window count (this minute plus the
unexpired share of the last) is below the limit; tokens per minute likewise, with
the request's maximum tokens reserved at admission and corrected at settlement.
A reservation nobody settles (a crashed task) expires after ``hold_ttl_s``.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping, Sequence
from typing import Literal, NamedTuple, Protocol

from kanjia.metering._money import MAX_NANO

__all__ = ["MAX_NANO", "MAX_TOKENS", "Claim", "Denied", "Limiter", "LocalLimiter", "Rate",
           "Settlement", "SettlesNow", "StoreError", "Unseeded", "retry_after"]

#: the most tokens one request counts against a tokens-per-minute limit
MAX_TOKENS = 10**15


# tuples: a few are made for every metered request, and a tuple is made fastest
class Claim(NamedTuple):
    """``amount`` drawn on the budget window ``window`` whose limit is ``limit``."""

    window: str
    limit: int
    amount: int
    ttl_s: int | None = None


class Rate(NamedTuple):
    key_id: str
    rpm: int | None
    tpm: int | None
    tokens: int
    minute: int


class Settlement(NamedTuple):
    """What ``settle`` takes, for ``settle_many``."""

    hold: str
    claims: Sequence[Claim]
    actual: Sequence[int]
    rate: Rate | None
    tokens: int


class Denied(Exception):
    def __init__(self, kind: Literal["budget", "rpm", "tpm"], index: int = 0, spent: int = 0,
                 reserved: int = 0, retry_after: float = 1.0) -> None:
        super().__init__(kind)
        self.kind = kind
        self.index = index
        self.spent = spent
        self.reserved = reserved
        self.retry_after = retry_after


class StoreError(Exception):
    """The shared store refused one operation (the others batched with it went on)."""


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

    async def settle_many(self, items: Sequence[Settlement]) -> None:
        """``settle`` each, in order (one round trip for a shared store)."""
        ...

    async def seed(self, spent: Mapping[str, tuple[int, int | None]],
                   complete: bool = False) -> None:
        """Raise each window's spend to at least the given (nano, ttl): the ledger's view.
        ``complete``: these are all the budgets' windows (the store is whole again)."""
        ...

    async def alive(self) -> bool:
        """False when the store has lost its state and needs a complete seed."""
        ...

    async def retain(self, windows: Collection[str]) -> None:
        """Forget the windows not listed (closed periods, deleted budgets) once idle."""
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


class _Minutes:
    """One key's requests and tokens in this minute and the last."""

    __slots__ = ("minute", "req", "req_prev", "tok", "tok_prev")

    def __init__(self, minute: int) -> None:
        self.minute = minute
        self.req = self.req_prev = self.tok = self.tok_prev = 0

    def roll(self, minute: int) -> None:
        if minute != self.minute:
            last = minute == self.minute + 1
            self.req_prev, self.tok_prev = (self.req, self.tok) if last else (0, 0)
            self.req = self.tok = 0
            self.minute = minute


class SettlesNow:
    """``settle`` and ``settle_many`` of a ``Limiter`` that settles in memory: its
    ``settle_now`` (no await) does each."""

    def settle_now(self, hold: str, claims: Sequence[Claim], actual: Sequence[int],
                   rate: Rate | None, tokens: int) -> None:
        raise NotImplementedError

    async def settle(self, hold: str, claims: Sequence[Claim], actual: Sequence[int],
                     rate: Rate | None, tokens: int) -> None:
        self.settle_now(hold, claims, actual, rate, tokens)

    async def settle_many(self, items: Sequence[Settlement]) -> None:
        for item in items:
            self.settle_now(*item)


class LocalLimiter(SettlesNow):
    """One gateway process: all state in this object, changed without awaiting."""

    def __init__(self, hold_ttl_s: float = 1800.0) -> None:
        self.hold_ttl_s = hold_ttl_s
        self._spent: dict[str, int] = {}
        self._reserved: dict[str, int] = {}
        #: hold id -> (expiry, its claims)
        self._holds: dict[str, tuple[float, Sequence[Claim]]] = {}
        self._minutes: dict[str, _Minutes] = {}
        self._swept = 0.0

    def _sweep(self, now: float) -> None:
        self._swept = now
        for hold_id in [h for h, (expires, _) in self._holds.items() if expires <= now]:
            self._release(hold_id)

    def _release(self, hold: str) -> None:
        held = self._holds.pop(hold, None)
        if held is not None:
            reserved = self._reserved
            for c in held[1]:
                reserved[c.window] -= c.amount

    async def admit(self, hold: str, claims: Sequence[Claim], rate: Rate | None,
                    now: float) -> None:
        self.admit_now(hold, claims, rate, now)

    def admit_now(self, hold: str, claims: Sequence[Claim], rate: Rate | None,
                  now: float) -> bool:
        """``admit`` without awaiting: all the state is in this object (always True:
        admitted, or ``Denied`` raised)."""
        if now - self._swept >= 1.0:
            self._sweep(now)
        spent, reserved = self._spent, self._reserved
        for i, c in enumerate(claims):
            s, r = spent.get(c.window, 0), reserved.get(c.window, 0)
            if s + r + c.amount > c.limit or s + r >= c.limit:
                raise Denied("budget", i, s, r)
        if rate is not None:
            m = self._minutes.get(rate.key_id)
            if m is None:
                m = self._minutes[rate.key_id] = _Minutes(rate.minute)
            elif m.minute != rate.minute:
                m.roll(rate.minute)
            _check_rate(m, rate, now)
            m.req += 1
            m.tok += rate.tokens
        if claims:
            for c in claims:
                reserved[c.window] = reserved.get(c.window, 0) + c.amount
            self._holds[hold] = (now + self.hold_ttl_s, claims)
        return True

    def settle_now(self, hold: str, claims: Sequence[Claim], actual: Sequence[int],
                   rate: Rate | None, tokens: int) -> None:
        """``settle`` without awaiting: all the state is in this object."""
        self._release(hold)
        spent = self._spent
        for c, amount in zip(claims, actual, strict=True):
            spent[c.window] = spent.get(c.window, 0) + amount
        if rate is not None and tokens != rate.tokens:
            m = self._minutes.get(rate.key_id)
            if m is not None and m.minute == rate.minute:
                m.tok += tokens - rate.tokens
            elif m is not None and m.minute == rate.minute + 1:
                m.tok_prev += tokens - rate.tokens

    async def seed(self, spent: Mapping[str, tuple[int, int | None]],
                   complete: bool = False) -> None:
        for window, (nano, _) in spent.items():
            self._spent[window] = max(self._spent.get(window, 0), nano)

    async def alive(self) -> bool:
        return True

    async def retain(self, windows: Collection[str]) -> None:
        for table in (self._spent, self._reserved):
            for name in [n for n in table if n not in windows and not self._reserved.get(n)]:
                del table[name]

    async def windows(self, names: Sequence[str]) -> dict[str, tuple[int, int]]:
        return {n: (self._spent.get(n, 0), self._reserved.get(n, 0)) for n in names}

    async def close(self) -> None:
        return None


def _check_rate(m: _Minutes, rate: Rate, now: float) -> None:
    share = 1 - (now % 60) / 60
    if rate.rpm is not None and m.req_prev * share + m.req + 1 > rate.rpm:
        raise Denied("rpm", retry_after=retry_after(m.req_prev, m.req, rate.rpm, 1, now))
    if rate.tpm is not None and m.tok_prev * share + m.tok >= rate.tpm:
        raise Denied("tpm", retry_after=retry_after(m.tok_prev, m.tok, rate.tpm, 1, now))


def minute_of(now: float | None = None) -> int:
    return int((time.time() if now is None else now) // 60)
