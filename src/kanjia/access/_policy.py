"""The interface the gateway asks before and after a call, and who a caller is."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from kanjia.ledger.record import CallRecord
from kanjia.metering import WorstCase

__all__ = ["ANONYMOUS", "OPERATOR", "AccessPolicy", "Principal", "Reservation"]


@dataclass(frozen=True, slots=True)
class Principal:
    key_id: str | None = None
    tenant: str | None = None
    name: str | None = None
    is_admin: bool = False
    #: its requests are reserved and settled (the gateway skips both otherwise)
    metered: bool = False
    #: its requests use the response cache (its key says so)
    response_cache: bool = False


@dataclass(slots=True)
class Reservation:
    principal: Principal
    amount: Decimal
    currency: str
    tokens: int
    handle: object = None


#: the master key's caller, and who the gateway's own work (batch jobs queued by the
#: operator) runs as: unmetered
OPERATOR = Principal(key_id="master", name="master", is_admin=True)
#: a caller without a key, where none is required
ANONYMOUS = Principal()


class AccessPolicy(Protocol):
    async def authenticate(self, api_key: str | None, model: str) -> Principal: ...

    def may_use(self, principal: Principal, model_key: str) -> bool:
        """May this caller be answered by ``model_key`` (a route's candidate)?"""
        ...

    async def reserve(self, principal: Principal, model_key: str, max_cost: Decimal | None,
                      currency: str, tokens: int, *,
                      others: Sequence[WorstCase] = ()) -> Reservation | None:
        """Reserve the worst case of the dearest candidate (``model_key`` at ``max_cost``,
        None when it has no price, or one of ``others``), or refuse (429, 403)."""
        ...

    def settle(self, reservation: Reservation | None, record: CallRecord) -> None:
        """Hand over what the call really cost (settled in the background; never waits)."""
        ...

    def release(self, reservation: Reservation | None) -> None:
        """Give a reservation back unused (no call was made)."""
        ...

    async def principal_of(self, key_id: str | None, model: str) -> Principal:
        """The caller a queued job (deferred work) runs as: the key it was queued with,
        if still valid (else 401), or the operator's (unmetered) for ``None``."""
        ...
