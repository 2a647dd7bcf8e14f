"""Send due jobs. The sender is injected: the gateway in-process, or HTTP from the CLI."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

from kanjia.batch._queue import JobQueue
from kanjia.errors import KanjiaError

__all__ = ["BatchRunner", "Sender"]

#: sends one job's body, billed to the virtual key id given (None: the operator's job)
Sender = Callable[[dict[str, Any], str | None], Awaitable[dict[str, Any]]]


class BatchRunner:
    """``keyed=False``: a sender that cannot bill a key's budget (``kanjia batch run``
    over HTTP with the master key) leaves the jobs of keys to the gateway."""

    def __init__(self, queue: JobQueue, send: Sender, *, poll_s: float = 5.0,
                 concurrency: int = 8, clock: Callable[[], float] = time.time,
                 keyed: bool = True) -> None:
        self.queue = queue
        self._send = send
        self._keyed = keyed
        self._poll = poll_s
        self._sem = asyncio.Semaphore(concurrency)
        self._clock = clock
        self._task: asyncio.Task[None] | None = None

    async def _one(self, jid: str, body: dict[str, Any], key_id: str | None) -> None:
        async with self._sem:
            try:
                result = await self._send(body, key_id)
            except KanjiaError as exc:
                self.queue.finish(jid, None, f"{exc.code}: {exc.message}")
            except Exception as exc:  # a transport failure must not kill the runner
                self.queue.finish(jid, None, f"{type(exc).__name__}: {exc}")
            else:
                self.queue.finish(jid, result, None)

    async def run_once(self) -> int:
        jobs = await asyncio.to_thread(self.queue.claim_due, self._clock(), 100,
                                       keyed=self._keyed)
        await asyncio.gather(*(self._one(j.id, j.body, j.key_id) for j in jobs))
        return len(jobs)

    async def run_forever(self) -> None:
        await asyncio.to_thread(self.queue.requeue_sent)
        while True:
            await self.run_once()
            await asyncio.sleep(self._poll)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.ensure_future(self.run_forever())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
