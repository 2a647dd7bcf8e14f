"""Access by virtual keys, with budgets and rate limits: the policy over the ledger's
``metering.Gatekeeper`` (which owns keys, reservations and settlement)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from kanjia.access._policy import ANONYMOUS, OPERATOR, Principal, Reservation
from kanjia.ledger.record import CallRecord
from kanjia.metering import Caller, Gatekeeper, Hold, WorstCase

__all__ = ["KeyedAccess"]

#: principals remembered per key id before the map is cleared
_PRINCIPALS = 100_000


@dataclass(frozen=True, slots=True)
class _KeyPrincipal(Principal):
    caller: Caller = field(default_factory=Caller)
    metered: bool = True


class KeyedAccess:
    """Callers are the Gatekeeper's: the master key (unmetered), anonymous (while no key
    is required) or a virtual key, whose requests are reserved and settled."""

    def __init__(self, gate: Gatekeeper) -> None:
        self.gate = gate
        self._principals: dict[str, _KeyPrincipal] = {}

    async def authenticate(self, api_key: str | None, model: str) -> Principal:
        return self._principal(await self.gate.authenticate(api_key, model))

    async def principal_of(self, key_id: str | None, model: str) -> Principal:
        if key_id is None:
            return OPERATOR
        return self._principal(await self.gate.caller_of(key_id, model))

    def _principal(self, caller: Caller) -> Principal:
        if caller.admin:
            return OPERATOR
        if caller.key is None:
            return ANONYMOUS
        key = caller.key
        known = self._principals.get(key.id)
        if known is not None and known.caller is caller:
            return known
        if len(self._principals) > _PRINCIPALS:
            self._principals.clear()
        made = self._principals[key.id] = _KeyPrincipal(
            key_id=key.id, tenant=key.tenant, name=key.name, caller=caller,
            response_cache=key.response_cache)
        return made

    def may_use(self, principal: Principal, model_key: str) -> bool:
        return not isinstance(principal, _KeyPrincipal) or \
            self.gate.may_use(principal.caller, model_key)

    async def reserve(self, principal: Principal, model_key: str, max_cost: Decimal | None,
                      currency: str, tokens: int, *,
                      others: Sequence[WorstCase] = ()) -> Reservation | None:
        if not isinstance(principal, _KeyPrincipal):
            return None
        hold = await self.gate.reserve(principal.caller, model_key, max_cost, currency, tokens,
                                       others=others)
        if hold is None:
            return None
        return Reservation(principal, hold.max_charge, hold.currency, tokens, hold)

    def settle(self, reservation: Reservation | None, record: CallRecord) -> None:
        hold = reservation.handle if reservation is not None else None
        self.gate.settle_soon(hold if isinstance(hold, Hold) else None, record)

    def release(self, reservation: Reservation | None) -> None:
        hold = reservation.handle if reservation is not None else None
        if isinstance(hold, Hold):
            self.gate.release_soon(hold)
