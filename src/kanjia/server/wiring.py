"""One gateway instance, wired from validated settings in one place: ``build_app``.

In order: the catalog, vendor directory and planner; with ``settings.redis``, circuit
breakers shared through Redis; with ``settings.database`` (``kanjia serve --db
PATH|postgresql://...``), the ledger and its Gatekeeper; then the one access policy,
the gateway (given that policy and the ledger's sinks) and the app. With a ledger:
- every request's record goes to the ledger (a sink; journaled, batched writes);
- access is keyed: virtual keys, budgets and rate limits (``--redis`` shares them
  across instances), with a 401 for requests without a valid key once the database
  holds any key (or from the start with ``server.require_keys``);
- ``/admin/`` serves keys, tenants, budgets and usage to the master key;
- ``/ui`` serves the dashboard (``kanjia.dashboard``) to the master key.
Without one, access is open (``OpenAccess``: the master key alone with
``server.require_keys``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

from kanjia.access import AccessPolicy, access_policy
from kanjia.catalog import Catalog, load_catalog, price_overrides_path
from kanjia.config import Settings
from kanjia.errors import ConfigError
from kanjia.metering import Metering, SellPrice, Unpriced
from kanjia.routing.directory import ModelDirectory
from kanjia.routing.health import HealthBoard
from kanjia.routing.planner import Planner
from kanjia.scrub import Scrubber
from kanjia.server._response_cache import CacheHook
from kanjia.server.admin import handle_admin
from kanjia.server.app import KanjiaApp, Services
from kanjia.server.gateway import Gateway, RecordSink
from kanjia.server.metrics import Metrics
from kanjia.server.upstream import Upstream
from kanjia.tokens import TokenCounter
from kanjia.vendors import load_vendor_specs

__all__ = ["build_app"]

log = logging.getLogger("kanjia.server")


def build_app(settings: Settings, *, env: Mapping[str, str] | None = None,
              catalog: Catalog | None = None, access: AccessPolicy | None = None,
              sinks: list[RecordSink] | None = None) -> KanjiaApp:
    """Wire one gateway instance from validated settings. ``env``: the secrets (vendor
    keys, the master key) and the ledger's ``KANJIA_JOURNAL_DIR`` /
    ``KANJIA_LEDGER_FLUSH_S`` (the process environment by default). ``access``: a policy
    to use instead of the one the settings ask for (tests); ``sinks``: record sinks
    told before the ledger."""
    env = os.environ if env is None else env
    catalog = catalog or load_catalog(fx_overrides=settings.fx or None,
                                      overrides=price_overrides_path(settings.price_overrides))
    specs = load_vendor_specs()
    directory = ModelDirectory(settings, catalog, specs, env)
    health = HealthBoard()
    quality = None
    if settings.quality_router:
        from kanjia.routing.quality import QualityRouter

        try:
            quality = QualityRouter.load(settings.quality_router)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"quality_router {settings.quality_router!r}: {exc}") from None
    planner = Planner(settings, directory, catalog, health, quality=quality)
    metrics = Metrics(health, known_models=[(t.vendor, t.model) for t in directory.targets])
    upstream = Upstream(settings.server)
    master = env.get(settings.server.master_key_env) or None
    scrub = Scrubber.from_config(settings, env, specs, [
        d.api_key for deps in directory.deployments.values() for d in deps] + [
        v for deps in directory.deployments.values() for d in deps for v in d.headers.values()])

    shared_health = None
    if settings.redis:  # breakers opened by one worker or instance are seen by all
        from kanjia.metering import split_prefix
        from kanjia.routing.shared_health import SharedHealth

        plain, prefix = split_prefix(settings.redis)
        shared_health = SharedHealth(health, plain, prefix)
    metering = None
    if settings.database:
        metering = Metering.create(settings.database, catalog.fx, redis=settings.redis,
                                   require_keys=settings.server.require_keys,
                                   master_key=master, env=env,
                                   writer=settings.ledger_writer, unpriced=_unpriced(settings))
    elif settings.redis:
        log.warning("--redis without --db shares circuit breakers only: keys and "
                    "budgets live in the ledger")
    access = access or access_policy(metering.gate if metering is not None else None,
                                     master_key=master,
                                     require_keys=settings.server.require_keys)

    sinks = list(sinks or [])
    if metering is not None:
        # order matters: the charge is stamped on the record before the ledger copies it
        sinks += [metering.gate.stamp, metering.ledger.record]
    gateway = Gateway(catalog=catalog, planner=planner, upstream=upstream, health=health,
                      metrics=metrics, access=access, counter=TokenCounter(),
                      reporting_currency=settings.server.reporting_currency,
                      max_attempts=settings.server.max_attempts, sinks=sinks, scrub=scrub)
    if metering is not None:
        gateway.guards.append(metering.ledger.check)  # no request that could not be billed
    from kanjia.cache import ResponseCache

    gateway.cache = CacheHook(ResponseCache(settings.response_cache, redis=settings.redis,
                                            database=settings.database),
                              catalog, settings.routes, settings.server.reporting_currency)
    services = Services(settings, catalog, directory, planner, health, metrics, gateway,
                        upstream, access, master, metering=metering,
                        shared_health=shared_health, scrub=scrub)

    app = KanjiaApp(services)
    app.on_shutdown.append(gateway.cache.close)
    if shared_health is not None:
        app.on_startup.append(shared_health.start)
        app.on_shutdown.append(shared_health.close)
    if metering is not None:
        app.health_checks.append(metering.ledger.problem)
        app.on_startup.append(metering.start)
        app.on_shutdown.append(metering.close)
        app.mount("/admin/", handle_admin)
        from kanjia.dashboard import Dashboard  # here: it imports the server package

        app.mount("/ui", Dashboard())
    return app


def _unpriced(settings: Settings) -> Unpriced:
    b = settings.budgets
    price = b.unpriced_price
    if price is None:
        return Unpriced(allow=b.allow_unpriced)
    return Unpriced(SellPrice(price.input_mtok, price.output_mtok), price.currency,
                    b.allow_unpriced)
