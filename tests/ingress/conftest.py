"""A gateway in front of the sandbox whose ledger records the tests can read."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from kanjia.config import load_settings
from kanjia.ledger.record import CallRecord
from kanjia.sandbox import SandboxThread
from kanjia.server import ServerThread, build_app


class Ledger:
    """The records the gateway emits, with a wait for one (streams settle after the
    last byte reaches the client)."""

    def __init__(self) -> None:
        self.records: list[CallRecord] = []
        self._cond = threading.Condition()

    def append(self, rec: CallRecord) -> None:
        with self._cond:
            self.records.append(rec)
            self._cond.notify_all()

    def wait(self, request_id: str, timeout: float = 10.0) -> CallRecord:
        """The record of ``request_id``: a whole request id, or the part after its prefix
        (what ``msg_…``/``resp_…`` ids carry)."""
        def found() -> CallRecord | None:
            return next((r for r in self.records if request_id in
                         (r.request_id, r.request_id.split("-", 1)[-1])), None)

        with self._cond:
            self._cond.wait_for(lambda: found() is not None, timeout)
            rec = found()
        assert rec is not None, f"no ledger record for {request_id}"
        return rec


@pytest.fixture(scope="module")
def ledger() -> Ledger:
    return Ledger()


@pytest.fixture(scope="module")
def gw(sandbox: SandboxThread, ledger: Ledger) -> Iterator[ServerThread]:
    settings = load_settings(None, sandbox_url=sandbox.url,
                             server={"upstream_timeout_s": 2.0, "first_byte_timeout_s": 2.0})
    with ServerThread(build_app(settings, env={}, sinks=[ledger.append])) as srv:
        yield srv
