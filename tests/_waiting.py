"""Waiting on a condition, never for a fixed time: poll it until it holds, and fail with
what was awaited once a deadline has passed (generous: the machine may be loaded)."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable

__all__ = ["until", "until_async"]


def until(ready: Callable[[], object], what: str, timeout: float = 10.0,
          every: float = 0.01) -> None:
    """Return as soon as ``ready()`` is true; raise AssertionError naming ``what`` after
    ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not ready():
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        time.sleep(every)


async def until_async(ready: Callable[[], object | Awaitable[object]], what: str,
                      timeout: float = 10.0, every: float = 0.01) -> None:
    """``until`` on the event loop; ``ready`` may be a coroutine function."""
    deadline = time.monotonic() + timeout
    while True:
        got = ready()
        if inspect.isawaitable(got):
            got = await got
        if got:
            return
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        await asyncio.sleep(every)
