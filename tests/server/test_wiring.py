"""``build_app`` wires one instance from its settings: the access policy is chosen once
and is the object the gateway asks; the ledger's parts are there only with a ledger."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from kanjia.access import KeyedAccess, OpenAccess
from kanjia.config import load_settings
from kanjia.errors import AuthFailed
from kanjia.server import build_app

MASTER = "test-master-key-wiring"


def test_without_a_ledger_access_is_open_and_nothing_of_the_ledger_is_mounted() -> None:
    app = build_app(load_settings(None, server={"require_keys": True}),
                    env={"KANJIA_MASTER_KEY": MASTER})
    s = app.services
    assert isinstance(s.access, OpenAccess)
    assert s.gateway.access is s.access
    assert s.metering is None and s.shared_health is None
    assert not any(p in ("/admin/", "/ui") for p, _ in app.prefix_routes)
    assert app.health_checks == [] and s.gateway.guards == []
    # require_keys without a ledger: the master key alone gets in
    assert asyncio.run(s.access.authenticate(MASTER, "m")).is_admin
    with pytest.raises(AuthFailed):
        asyncio.run(s.access.authenticate("kj-not-a-key", "m"))


def test_with_a_ledger_access_is_keyed_over_its_gatekeeper(tmp_path: Path) -> None:
    settings = load_settings(None, database=str(tmp_path / "ledger.db"),
                             redis="redis://127.0.0.1:1/0")
    app = build_app(settings, env={"KANJIA_MASTER_KEY": MASTER,
                                   "KANJIA_JOURNAL_DIR": str(tmp_path / "journal")},
                    sinks=[print])
    s = app.services
    assert s.metering is not None and s.shared_health is not None
    assert isinstance(s.access, KeyedAccess) and s.access.gate is s.metering.gate
    assert s.gateway.access is s.access
    # the charge is stamped before the ledger copies the record; the caller's sink first
    assert s.gateway.sinks == [print, s.metering.gate.stamp, s.metering.ledger.record]
    assert s.gateway.guards == [s.metering.ledger.check]
    assert app.health_checks == [s.metering.ledger.problem]
    assert [p for p, _ in app.prefix_routes if p in ("/admin/", "/ui")] == ["/admin/", "/ui"]
    assert s.metering.start in app.on_startup and s.metering.close in app.on_shutdown
    assert s.shared_health.start in app.on_startup
