"""Access without virtual keys: anyone may call, or only the master key holder."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from kanjia.access._policy import ANONYMOUS, OPERATOR, Principal, Reservation
from kanjia.errors import AuthFailed
from kanjia.ledger.record import CallRecord
from kanjia.metering import WorstCase, is_master_key

__all__ = ["OpenAccess"]


class OpenAccess:
    """No virtual keys: anyone may call, unless ``require_key`` demands the master key."""

    def __init__(self, master_key: str | None = None, require_key: bool = False) -> None:
        self._master = master_key
        self._require = require_key

    async def authenticate(self, api_key: str | None, model: str) -> Principal:
        if is_master_key(api_key, self._master):
            return OPERATOR
        if self._require:
            raise AuthFailed("a valid API key is required in the Authorization header")
        return ANONYMOUS

    def may_use(self, principal: Principal, model_key: str) -> bool:
        return True

    async def reserve(self, principal: Principal, model_key: str, max_cost: Decimal | None,
                      currency: str, tokens: int, *,
                      others: Sequence[WorstCase] = ()) -> Reservation | None:
        return None

    def settle(self, reservation: Reservation | None, record: CallRecord) -> None:
        return None

    def release(self, reservation: Reservation | None) -> None:
        return None

    async def principal_of(self, key_id: str | None, model: str) -> Principal:
        if key_id is not None:
            raise AuthFailed("this gateway has no virtual keys")
        return OPERATOR
