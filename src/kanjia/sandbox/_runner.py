"""Running the sandbox: in the caller's event loop (``run_sandbox``) or in a
background thread with its own loop (``SandboxThread``, for synchronous code)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from types import TracebackType

from aiohttp import web

from kanjia.sandbox._app import VENDORS, build_app
from kanjia.sandbox._settings import SandboxSettings

__all__ = ["Sandbox", "SandboxThread", "new_event_loop", "run_sandbox", "serve"]

#: in-flight requests (a hanging ``timeout`` fault) get this long at shutdown
_SHUTDOWN_TIMEOUT_S = 0.5
_BACKLOG = 2048
_START_TIMEOUT_S = 15.0


@dataclass(frozen=True, slots=True)
class Sandbox:
    """Where a running sandbox listens."""

    host: str
    port: int

    @property
    def url(self) -> str:
        host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(self.host, self.host)
        return f"http://[{host}]:{self.port}" if ":" in host else f"http://{host}:{self.port}"

    def base_url(self, vendor: str) -> str:
        """The base URL the gateway configures for ``vendor``."""
        if vendor not in VENDORS:
            raise ValueError(f"the sandbox does not serve vendor {vendor!r}")
        return f"{self.url}/{vendor}"


@asynccontextmanager
async def run_sandbox(settings: SandboxSettings | None = None) -> AsyncIterator[Sandbox]:
    """Serve the sandbox in the running event loop for the ``async with`` block."""
    settings = settings or SandboxSettings()
    runner = web.AppRunner(
        build_app(settings), access_log=None, shutdown_timeout=_SHUTDOWN_TIMEOUT_S
    )
    await runner.setup()
    try:
        site = web.TCPSite(runner, settings.host, settings.port, backlog=_BACKLOG)
        await site.start()
        port = int(runner.addresses[0][1])
        yield Sandbox(settings.host, port)
    finally:
        await runner.cleanup()


def new_event_loop() -> asyncio.AbstractEventLoop:
    """A uvloop loop when uvloop is installed, else asyncio's default."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop


def serve(
    settings: SandboxSettings | None = None,
    on_ready: Callable[[Sandbox], None] | None = None,
) -> None:
    """Serve in the foreground (uvloop when available) until SIGINT or SIGTERM;
    ``on_ready`` is called once the server listens."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        async with run_sandbox(settings) as sandbox:
            if on_ready is not None:
                on_ready(sandbox)
            await stop.wait()

    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        runner.run(main())


class SandboxThread:
    """The sandbox in a background thread: ``start()`` returns once it listens.

    Usable as a context manager: ``with SandboxThread() as sb: ... sb.url``.
    """

    def __init__(self, settings: SandboxSettings | None = None) -> None:
        self.settings = settings or SandboxSettings()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._sandbox: Sandbox | None = None
        self._error: BaseException | None = None

    def start(self) -> SandboxThread:
        if self._thread is not None:
            raise RuntimeError("the sandbox thread is already started")
        self._thread = threading.Thread(target=self._run, name="kanjia-sandbox", daemon=True)
        self._thread.start()
        if not self._ready.wait(_START_TIMEOUT_S):
            raise RuntimeError("the sandbox did not start listening in time")
        if self._error is not None:
            raise RuntimeError(f"the sandbox failed to start: {self._error}") from self._error
        return self

    def stop(self) -> None:
        loop, stop, thread = self._loop, self._stop, self._thread
        if loop is not None and stop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(stop.set)
        if thread is not None:
            thread.join(_START_TIMEOUT_S)
        self._thread = None

    def _run(self) -> None:
        loop = new_event_loop()
        try:
            loop.run_until_complete(self._serve())
        except BaseException as exc:  # reported to start(), which re-raises
            self._error = exc
        finally:
            self._ready.set()
            loop.close()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with run_sandbox(self.settings) as sandbox:
            self._sandbox = sandbox
            self._ready.set()
            await self._stop.wait()

    @property
    def sandbox(self) -> Sandbox:
        if self._sandbox is None:
            raise RuntimeError("the sandbox thread is not started")
        return self._sandbox

    @property
    def port(self) -> int:
        return self.sandbox.port

    @property
    def url(self) -> str:
        return self.sandbox.url

    def base_url(self, vendor: str) -> str:
        return self.sandbox.base_url(vendor)

    def __enter__(self) -> SandboxThread:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
