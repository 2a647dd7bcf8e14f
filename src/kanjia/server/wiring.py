"""Optional parts of a gateway instance (ledger, keys, dashboard), wired from settings.

Each part registers itself here; build_app stays free of them so the core
request path can be built and tested alone.

With ``settings.database`` (``kanjia serve --db PATH|postgresql://...``):
- every request's record goes to the ledger (a sink; journaled, batched writes);
- access becomes keyed: virtual keys, budgets and rate limits (``--redis`` shares
  them across instances), with a 401 for requests without a valid key once the
  database holds any key (or from the start with ``server.require_keys``);
- ``/admin/`` serves keys, tenants, budgets and usage to the master key;
- ``/ui`` serves the dashboard (``kanjia.dashboard``) to the master key.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from kanjia.config import Settings
from kanjia.metering import Caller, Gatekeeper, Hold, Metering, SellPrice, Unpriced, WorstCase
from kanjia.metering.record import CallRecord
from kanjia.server.access import OPERATOR, Principal, Reservation
from kanjia.server.admin import handle_admin
from kanjia.server.app import KanjiaApp

__all__ = ["MeteredAccess", "wire_extras"]

log = logging.getLogger("kanjia.server")


@dataclass(frozen=True, slots=True)
class _KeyPrincipal(Principal):
    caller: Caller = field(default_factory=Caller)
    metered: bool = True


_MASTER = Principal(key_id="master", name="master", is_admin=True)
_ANONYMOUS = Principal()


class MeteredAccess:
    """The gateway's AccessPolicy over the metering Gatekeeper."""

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
            return _MASTER
        if caller.key is None:
            return _ANONYMOUS
        key = caller.key
        known = self._principals.get(key.id)
        if known is not None and known.caller is caller:
            return known
        if len(self._principals) > 100_000:
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


def _unpriced(settings: Settings) -> Unpriced:
    b = settings.budgets
    price = b.unpriced_price
    if price is None:
        return Unpriced(allow=b.allow_unpriced)
    return Unpriced(SellPrice(price.input_mtok, price.output_mtok), price.currency,
                    b.allow_unpriced)


def _share_health(app: KanjiaApp, url: str) -> None:
    """Breakers opened by one worker or instance are seen by all (Redis pub/sub)."""
    from kanjia.metering import split_prefix
    from kanjia.routing.shared_health import SharedHealth

    plain, prefix = split_prefix(url)
    shared = SharedHealth(app.services.health, plain, prefix)
    app.services.extras["shared_health"] = shared
    app.on_startup.append(shared.start)
    app.on_shutdown.append(shared.close)


def wire_extras(app: KanjiaApp, env: Mapping[str, str] | None = None) -> None:
    """Attach the ledger, keyed access and the admin API when a database is configured."""
    s = app.services
    settings = s.settings
    if settings.redis:
        _share_health(app, settings.redis)
    if not settings.database:
        if settings.redis:
            log.warning("--redis without --db shares circuit breakers only: keys and "
                        "budgets live in the ledger")
        return
    metering = Metering.create(settings.database, s.catalog.fx, redis=settings.redis,
                               require_keys=settings.server.require_keys,
                               master_key=s.master_key,
                               env=os.environ if env is None else env,
                               writer=settings.ledger_writer, unpriced=_unpriced(settings))
    access = MeteredAccess(metering.gate)
    s.access = access
    s.gateway.access = access
    # order matters: the charge is stamped on the record before the ledger copies it
    s.gateway.sinks.extend([metering.gate.stamp, metering.ledger.record])
    s.gateway.guards.append(metering.ledger.check)  # no request that could not be billed
    app.health_checks.append(metering.ledger.problem)
    s.extras["metering"] = metering
    app.on_startup.append(metering.start)
    app.on_shutdown.append(metering.close)
    app.mount("/admin/", handle_admin)
    from kanjia.dashboard import Dashboard  # here: it imports the server package

    app.mount("/ui", Dashboard())
