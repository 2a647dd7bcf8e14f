"""Issue 18: a deferred request (``x-kanjia-defer: until-offpeak``) is authenticated once,
whether it is queued for the cheaper window (202) or answered now (200): the caller found at
the door is the one its admission check and its call run as."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from tests.metering._gateway import MASTER, admin, chat_body

import kanjia.batch
from kanjia.access import KeyedAccess
from kanjia.config import load_settings
from kanjia.metering import Caller
from kanjia.sandbox import SandboxThread
from kanjia.server import ServerThread, build_app

# deepseek-chat on a Monday (UTC): 02:00 is peak with off-peak ahead, 12:00 the cheapest
PEAK = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)
CHEAPEST_NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def srv(sandbox: SandboxThread, tmp_path_factory: pytest.TempPathFactory
        ) -> Iterator[ServerThread]:
    root = tmp_path_factory.mktemp("defer")
    settings = load_settings(None, sandbox_url=sandbox.url, database=str(root / "ledger.db"),
                             batch_queue=str(root / "queue.db"))
    app = build_app(settings, env={"KANJIA_MASTER_KEY": MASTER,
                                   "KANJIA_JOURNAL_DIR": str(root / "journal"),
                                   "KANJIA_LEDGER_FLUSH_S": "0.05"})
    with ServerThread(app) as server:
        yield server


@pytest.mark.parametrize(("at", "status", "deferred"),
                         [(PEAK, 202, "yes"), (CHEAPEST_NOW, 200, "no")])
async def test_a_deferred_request_is_authenticated_once(
        srv: ServerThread, monkeypatch: pytest.MonkeyPatch, at: datetime, status: int,
        deferred: str) -> None:
    async with aiohttp.ClientSession() as s:
        made_status, made = await admin(s, srv.url, "POST", "/admin/keys",
                                        {"name": f"defer-{status}", "budget": "10CNY/day"})
        assert made_status == 201
        access = srv.app.services.access
        assert isinstance(access, KeyedAccess)
        gate, calls = access.gate, []
        real_authenticate = gate.authenticate

        async def authenticate(api_key: str | None, model: str) -> Caller:
            calls.append(model)
            return await real_authenticate(api_key, model)

        real_schedule = kanjia.batch.schedule

        def schedule(planner: Any, body: dict[str, Any], now: datetime | None = None) -> Any:
            return real_schedule(planner, body, at)  # the moment under test, not the clock's

        monkeypatch.setattr(gate, "authenticate", authenticate)
        monkeypatch.setattr(kanjia.batch, "schedule", schedule)
        async with s.post(srv.url + "/v1/chat/completions", json=chat_body(5),
                          headers={"Authorization": f"Bearer {made['key']}",
                                   "x-kanjia-defer": "until-offpeak"}) as resp:
            data = await resp.json()
            assert resp.status == status, data
            assert resp.headers["x-kanjia-deferred"] == deferred
    assert calls == ["deepseek/deepseek-chat"]  # once, for the request's model
