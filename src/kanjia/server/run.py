"""Running the gateway: in the foreground (CLI), or in a thread (tests, demo)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import socket
import sys
import threading
from typing import Any

import uvicorn

from kanjia.config import ServerSettings, Settings, load_settings
from kanjia.server._gc import tune_gc
from kanjia.server._protocol import guarded_protocol
from kanjia.server.app import KanjiaApp
from kanjia.server.wiring import build_app

__all__ = ["ServerThread", "app_from_env", "serve"]

_CONFIG_ENV = "KANJIA_CONFIG"
_OVERRIDES_ENV = "KANJIA_SETTINGS_JSON"


def _uvicorn_config(app: Any, server: ServerSettings) -> uvicorn.Config:
    """uvicorn with read timeouts and a connection cap (``_protocol``); the cap is kept
    within the file-descriptor limit (each client may need an upstream socket too);
    uvicorn's own ``limit_concurrency`` (503 past it) bounds requests in flight, with
    room for those of connections just shed that have not noticed yet."""
    conns = max(16, min(server.max_connections, (_fd_limit() - 64) // 2))
    http = guarded_protocol(header_timeout_s=server.header_timeout_s,
                            body_timeout_s=server.body_timeout_s, max_connections=conns)
    return uvicorn.Config(app, host=server.host, port=server.port, loop="uvloop", http=http,
                          lifespan="on", access_log=False, log_level="warning",
                          timeout_graceful_shutdown=10,
                          timeout_keep_alive=server.keep_alive_s,
                          limit_concurrency=2 * conns)


def _fd_limit() -> int:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return soft if soft != resource.RLIM_INFINITY else 1 << 20


def _raise_fd_limit() -> None:
    """A gateway process may use as many descriptors as it is allowed (soft = hard)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def make_app(settings: Settings) -> KanjiaApp:
    app = build_app(settings)
    # only a vendor that omits usage needs a tokenizer. The estimating one (o200k: every
    # model without an exact tokenizer, OpenAI's too) loads before serving, as loading holds
    # the GIL ~0.4 s; the exact families load on first need (all five cost ~230 MB RSS)
    counter = app.services.gateway.counter
    app.on_startup.append(lambda: asyncio.to_thread(counter.load_estimator))
    return app


def _own_process(app: KanjiaApp) -> KanjiaApp:
    """An app that has its process to itself: tune the collector once it has started
    (not for ServerThread, which shares its process with tests or the demo)."""
    threshold = app.services.settings.server.gc_threshold

    async def tune() -> None:
        tune_gc(threshold)

    app.on_startup.append(tune)
    return app


def app_from_env() -> KanjiaApp:
    """uvicorn factory for multi-worker mode: settings come from the environment."""
    import orjson

    overrides = orjson.loads(os.environ.get(_OVERRIDES_ENV, "{}"))
    return _own_process(make_app(load_settings(os.environ.get(_CONFIG_ENV) or None,
                                               **overrides)))


def serve(settings: Settings, config_path: str | None, workers: int = 1,
          overrides: dict[str, Any] | None = None, app: KanjiaApp | None = None) -> None:
    _raise_fd_limit()
    if workers > 1:
        import orjson

        from kanjia.server._workers import run_workers

        if config_path:
            os.environ[_CONFIG_ENV] = config_path
        os.environ[_OVERRIDES_ENV] = orjson.dumps(overrides or {}).decode()
        status = run_workers(settings.server.host, settings.server.port, workers)
        if status:
            raise SystemExit(status)
        return
    uvicorn.Server(_uvicorn_config(_own_process(app or make_app(settings)),
                                   settings.server)).run()


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class ServerThread:
    """The gateway in a background thread with its own event loop (tests, demo)."""

    def __init__(self, app: KanjiaApp, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        self.host = host
        self.port = port or free_port(host)
        server = app.services.settings.server.model_copy(
            update={"host": self.host, "port": self.port})
        self._server = uvicorn.Server(_uvicorn_config(app, server))
        self._thread = threading.Thread(target=self._run, name="kanjia-gateway", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _run(self) -> None:
        import uvloop

        loop = uvloop.new_event_loop()
        try:
            loop.run_until_complete(self._server.serve())
        finally:
            loop.close()

    def start(self) -> ServerThread:
        self._thread.start()
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError("gateway failed to start")
            threading.Event().wait(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=15)

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def worker_main(fd: int) -> None:
    """One worker of ``kanjia serve --workers N``: serve on the socket ``fd`` that the
    parent bound and passed down (see ``kanjia.server._workers``); uvicorn makes it
    listen once the app has started."""
    _raise_fd_limit()
    sock = socket.socket(fileno=fd)
    app = app_from_env()
    uvicorn.Server(_uvicorn_config(app, app.services.settings.server)).run(sockets=[sock])


if __name__ == "__main__" and len(sys.argv) == 3 and sys.argv[1] == "--worker":
    worker_main(int(sys.argv[2]))
