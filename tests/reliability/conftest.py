"""Fixtures for the reliability suite: a sandbox of its own (server-wide fault rules set
here never reach other suites) and a fresh in-process gateway per test (breakers start
closed), each with a fallback route over two vendors."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kanjia.sandbox import SandboxSettings, SandboxThread

from ._util import FALLBACK_ROUTE, Gw, clear_faults, gateway


@pytest.fixture(scope="session")
def rel_sandbox() -> Iterator[SandboxThread]:
    # the ``timeout`` fault hangs 4 s: well past the gateway's 1 s deadlines below
    with SandboxThread(SandboxSettings(port=0, hang_s=4.0)) as sb:
        yield sb


@pytest.fixture()
def sb(rel_sandbox: SandboxThread) -> Iterator[str]:
    """The sandbox URL, with every server-wide fault rule cleared after the test."""
    clear_faults(rel_sandbox.url)
    yield rel_sandbox.url
    clear_faults(rel_sandbox.url)


@pytest.fixture()
def gw(sb: str) -> Iterator[Gw]:
    with gateway(sb, routes={"fb": FALLBACK_ROUTE}) as g:
        yield g
