"""Who may call, what they may spend: the interface the gateway asks before and after a call.

``OpenAccess`` lets everyone through (optionally requiring the master key); the
metering package provides the keyed, budgeted implementation.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from kanjia.errors import AuthFailed
from kanjia.metering.record import CallRecord

__all__ = ["AccessPolicy", "OpenAccess", "Principal", "Reservation"]


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


class AccessPolicy(Protocol):
    async def authenticate(self, api_key: str | None, model: str) -> Principal: ...

    async def reserve(self, principal: Principal, model_key: str, max_cost: Decimal,
                      currency: str, tokens: int) -> Reservation | None: ...

    def settle(self, reservation: Reservation | None, record: CallRecord) -> None:
        """Hand over what the call really cost (settled in the background; never waits)."""
        ...


class OpenAccess:
    """No virtual keys: anyone may call, unless ``require_key`` demands the master key."""

    def __init__(self, master_key: str | None = None, require_key: bool = False) -> None:
        self._master = master_key
        self._require = require_key

    async def authenticate(self, api_key: str | None, model: str) -> Principal:
        if self._master and api_key and hmac.compare_digest(api_key.encode(),
                                                            self._master.encode()):
            return Principal(key_id="master", name="master", is_admin=True)
        if self._require:
            raise AuthFailed("a valid API key is required in the Authorization header")
        return Principal()

    async def reserve(self, principal: Principal, model_key: str, max_cost: Decimal,
                      currency: str, tokens: int) -> Reservation | None:
        return None

    def settle(self, reservation: Reservation | None, record: CallRecord) -> None:
        return None
