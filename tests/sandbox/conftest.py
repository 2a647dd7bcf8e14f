"""Fixtures for the sandbox tests: a fresh sandbox per test and a raw HTTP client."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from sandbox_helpers import Client

from kanjia.sandbox import SandboxSettings, run_sandbox


@pytest.fixture
def settings() -> SandboxSettings:
    return SandboxSettings(hang_s=0.3)


@pytest.fixture
async def client(settings: SandboxSettings) -> AsyncIterator[Client]:
    async with run_sandbox(settings) as sandbox, aiohttp.ClientSession() as session:
        yield Client(sandbox, session)
