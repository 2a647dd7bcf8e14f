"""A gateway with a SQLite ledger whose writer never runs on its own, in front of the
sandbox: every record stays queued until ``flush()``, so tests can read through the queue
(``GET /v1/requests/{id}``) or check what was written."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from kanjia.config import load_settings
from kanjia.server import KanjiaApp, ServerThread, build_app


class LedgerGateway:
    def __init__(self, srv: ServerThread, app: KanjiaApp) -> None:
        self.srv = srv
        self.app = app
        self.loop: asyncio.AbstractEventLoop | None = None

    @property
    def url(self) -> str:
        return self.srv.url

    @property
    def ledger(self) -> Any:
        metering = self.app.services.metering
        assert metering is not None
        return metering.ledger

    def flush(self) -> None:
        """Write the ledger's queue to the database now (on the gateway's loop)."""
        assert self.loop is not None
        asyncio.run_coroutine_threadsafe(self.ledger.flush(), self.loop).result(10)

    def pending(self) -> int:
        return int(self.ledger.pending)


@contextmanager
def ledger_gateway(sandbox_url: str, root: Path, master: str,
                   first_byte_timeout_s: float) -> Iterator[LedgerGateway]:
    settings = load_settings(None, sandbox_url=sandbox_url, database=str(root / "ledger.db"),
                             server={"upstream_timeout_s": 5.0,
                                     "first_byte_timeout_s": first_byte_timeout_s})
    app = build_app(settings, env={"KANJIA_MASTER_KEY": master,
                                   "KANJIA_JOURNAL_DIR": str(root / "journal"),
                                   "KANJIA_LEDGER_FLUSH_S": "3600"})
    gw = LedgerGateway(ServerThread(app), app)

    async def capture() -> None:
        gw.loop = asyncio.get_running_loop()

    app.on_startup.append(capture)
    with gw.srv:
        yield gw
